/*
 * pipeline.c - the sign pipeline (see pipeline.h): the read-stage checks,
 * serials, HSM signing, the in-flight guard against duplicate requests,
 * and handing jobs to the committer (pipeline_commit.c).  The audit
 * events written for others and their collapsing are in
 * pipeline_events.c.
 *
 * Locking: p->mtx guards the job queue, the serial counters, the key cache
 * and the statistics; it is never held across an HSM call or a store
 * transaction.  The committer is the only thread of this module that
 * writes to the store, so the order in which it applies jobs is the order
 * in which they happened; admin changes commit in write transactions of
 * their own, which LMDB serialises with ours.
 */
#include "pipeline_impl.h"

#include "audit_limit.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"
#include "record_encode.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


const double pipeline_latency_le[PIPELINE_LATENCY_BUCKETS] = {0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};
const uint64_t pipeline_batch_le[PIPELINE_BATCH_BUCKETS] = {1, 2, 4, 8,
    16, 32, 64, 128, 256, 512};

/* Count a sign refusal by reason; p->mtx held. */
void
pipeline_metrics_refusal(pipeline *p, const char *reason)
{
	struct pipeline_metrics *m = &p->metrics;
	size_t                   i;

	if (reason == NULL) {
		reason = "other";
	}
	for (i = 0; i < m->n_reasons; i++) {
		if (strcmp(m->refusals[i].reason, reason) == 0) {
			m->refusals[i].n++;
			return;
		}
	}
	if (m->n_reasons == PIPELINE_REASONS_MAX) {
		/* reasons are a fixed set of words; the last slot takes any
		 * surplus rather than growing without bound */
		m->refusals[PIPELINE_REASONS_MAX - 1].n++;
		return;
	}
	m->refusals[m->n_reasons].reason = reason;
	m->refusals[m->n_reasons].n      = 1;
	m->n_reasons++;
}

/* Count n records issued now in the per-minute ring; p->mtx held. */
void
pipeline_metrics_issued(pipeline *p, uint64_t n)
{
	uint64_t minute = (uint64_t)time(NULL) / 60u;
	size_t   slot   = (size_t)(minute % PIPELINE_RATE_MINUTES);

	if (p->metrics.rate_minute[slot] != minute) {
		p->metrics.rate_minute[slot] = minute;
		p->metrics.rate_n[slot]      = 0;
	}
	p->metrics.rate_n[slot] += n;
}

void
pipeline_metrics_get(pipeline *p, struct pipeline_metrics *out)
{
	pthread_mutex_lock(&p->mtx);
	*out = p->metrics;
	pthread_mutex_unlock(&p->mtx);
}

void
pipeline_set_msg(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (msg == NULL || len == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
}

uint64_t
pipeline_now_s(void)
{
	return (uint64_t)time(NULL);
}

/* Milliseconds and seconds of a clock that nobody sets back (collapse
 * intervals, room checks). */
uint64_t
pipeline_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
pipeline_mono_s(void)
{
	return pipeline_now_ms() / 1000u;
}

static void
day_of(uint64_t unix_s, char *buf, size_t len)
{
	time_t    t = (time_t)unix_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------------ */
/* Checks shared by the read stage, the commit stage and reports       */
/* ------------------------------------------------------------------ */

/*
 * May station who use order o for this UID?  *reason gets a short word
 * for the audit log; msg what the station is told.
 */
int
pipeline_order_check(const StoredOrder *o, const struct pipeline_who *who,
    const uint8_t *uid, size_t uid_len, const char **reason, char *msg,
    size_t msglen)
{
	size_t i;
	bool   all00 = true, allff = true;
	char   when[32];

	if (o->closed) {
		*reason = "order-closed";
		pipeline_set_msg(msg, msglen,
		    "order %s is closed; ask the OEM for an "
		    "open order", o->order_id);
		return CS_EPRECOND;
	}
	if (o->expires_unix_s != 0 && pipeline_now_s() >= o->expires_unix_s) {
		day_of(o->expires_unix_s, when, sizeof(when));
		*reason = "order-expired";
		pipeline_set_msg(msg, msglen,
		    "order %s expired at %s; ask the OEM to "
		    "extend it or issue a new one", o->order_id, when);
		return CS_EPRECOND;
	}
	if (o->n_cms > 0) {
		for (i = 0; i < o->n_cms; i++) {
			if (strcmp(o->cms[i], who->cm) == 0) {
				break;
			}
		}
		if (i == o->n_cms) {
			*reason = "cm-not-allowed";
			pipeline_set_msg(msg, msglen,
			    "station %s belongs to CM %s, which "
			    "is not allowed to produce order %s", who->station,
			    who->cm, o->order_id);
			return CS_EPERM;
		}
	}
	if (uid_len != o->uid_len) {
		*reason = "uid-length";
		pipeline_set_msg(msg, msglen,
		    "UID is %zu bytes but order %s expects "
		    "%u-byte UIDs; check the target profile", uid_len,
		    o->order_id, o->uid_len);
		return CS_EINVAL;
	}
	for (i = 0; i < uid_len; i++) {
		all00 = all00 && uid[i] == 0x00;
		allff = allff && uid[i] == 0xff;
	}
	if (all00 || allff) {
		*reason = "uid-invalid";
		pipeline_set_msg(msg, msglen,
		    "UID is all 0x%s: that is erased or "
		    "unreadable memory, not a device UID; check the probe "
		    "connection and the UID address", all00 ? "00" : "FF");
		return CS_EINVAL;
	}
	return CS_OK;
}

/* The first 8 bytes of a digest in hex, for messages. */
static const char *
digest_short(const uint8_t *d, size_t len, char out[17])
{
	if (len < 8) {
		return "none";
	}
	cs_hex_encode(d, 8, out, 17);
	return out;
}

bool
pipeline_record_current(const StoredOrder *o, const uint8_t *rec,
    size_t rec_len)
{
	size_t off;

	if (o->firmware_sha256.len != CS_SHA256_LEN) {
		return true;
	}
	if (rec_len < CS_RECORD_HEADER_LEN ||
	    (rec[CS_RECORD_OFF_FLAGS] & CS_RECORD_FLAG_FIRMWARE) == 0) {
		return false;
	}
	off = CS_RECORD_OFF_UID + rec[CS_RECORD_OFF_UID_LEN];
	return off + CS_SHA256_LEN <= rec_len &&
	       memcmp(rec + off, o->firmware_sha256.data, CS_SHA256_LEN) == 0;
}

int
pipeline_firmware_check(store_txn *txn, const StoredOrder *o,
    const struct pipeline_sign_req *r, const char **reason, char *msg,
    size_t msglen)
{
	StoredFirmware *fw = NULL;
	char            want[17], got[17];
	int             rv;

	if (o->firmware_sha256.len != CS_SHA256_LEN) {
		return CS_OK;
	}
	/* Only orders that bind a digest can hold an image. */
	rv = store_firmware_get(txn, o->order_id, &fw);
	if (rv == CS_OK) {
		bool withdrawn = fw->withdrawn;

		countersign__v1__stored_firmware__free_unpacked(fw, NULL);
		if (withdrawn) {
			*reason = "firmware-withdrawn";
			pipeline_set_msg(msg, msglen,
			    "the OEM withdrew the firmware of order %s: no "
			    "new device may be programmed; set the devices "
			    "aside and ask the OEM", o->order_id);
			return CS_EPRECOND;
		}
	} else if (rv != CS_ENOENT) {
		*reason = "store";
		pipeline_set_msg(msg, msglen, "the authority's store failed "
		    "(%s); try again", cs_strerror(rv));
		return rv;
	}
	if (r->firmware_sha256_len != CS_SHA256_LEN) {
		*reason = "firmware-missing";
		pipeline_set_msg(msg, msglen,
		    "order %s binds firmware %s...: the station must say "
		    "which firmware it programs (update the station); nothing "
		    "was signed", o->order_id,
		    digest_short(o->firmware_sha256.data, CS_SHA256_LEN, want));
		return CS_EPRECOND;
	}
	if (!cs_ct_equal(r->firmware_sha256, o->firmware_sha256.data,
	        CS_SHA256_LEN)) {
		*reason = "firmware-mismatch";
		pipeline_set_msg(msg, msglen,
		    "the station's firmware (%s...) is not the one order %s "
		    "binds (%s...): its devices would refuse to run; nothing "
		    "was signed and no quota spent",
		    digest_short(r->firmware_sha256, CS_SHA256_LEN, got),
		    o->order_id,
		    digest_short(o->firmware_sha256.data, CS_SHA256_LEN, want));
		return CS_EPRECOND;
	}
	return CS_OK;
}

/*
 * A UID first seen for this product under another order, or in this order
 * by a station of another CM: a clone.  (Several stations of one CM may
 * ask for the same UID: a device moved to another line gets its record
 * again.)
 */
int
pipeline_clone_check(store_txn *txn, const StoredOrder *o,
    const struct pipeline_who *who, const uint8_t *uid, size_t uid_len,
    char *msg, size_t msglen, char *first_order, size_t first_len)
{
	StoredUid *u = NULL;
	int        rv;

	rv = store_uid_get(txn, o->product_id, uid, uid_len, &u);
	if (rv == CS_ENOENT) {
		return CS_OK;
	}
	if (rv != CS_OK) {
		pipeline_set_msg(msg, msglen,
		    "the authority's store failed (%s); try "
		    "again, and tell the OEM if it persists", cs_strerror(rv));
		return rv;
	}
	rv = CS_OK;
	if (strcmp(u->order_id, o->order_id) != 0) {
		pipeline_set_msg(msg, msglen,
		    "this UID was already signed for product "
		    "%u under order %s (station %s): refused as a possible "
		    "clone; set the device aside and tell the OEM",
		    o->product_id, u->order_id, u->station);
		rv = CS_EEXIST;
	} else if (u->cm[0] != '\0' && strcmp(u->cm, who->cm) != 0) {
		pipeline_set_msg(msg, msglen,
		    "this UID was already signed in order %s "
		    "for a station of another CM: refused as a possible clone; "
		    "set the device aside and tell the OEM", o->order_id);
		rv = CS_EEXIST;
	}
	if (rv == CS_EEXIST) {
		snprintf(first_order, first_len, "%s", u->order_id);
	}
	countersign__v1__stored_uid__free_unpacked(u, NULL);
	return rv;
}

/* Is the station still enrolled and enabled?  CS_OK, CS_EUNAUTH or a
 * store error. */
int
pipeline_station_check(store_txn *txn, const char *station, char *msg,
    size_t msglen)
{
	StoredStation *s = NULL;
	int            rv;

	rv = store_station_get(txn, station, &s);
	if (rv == CS_OK && !s->enabled) {
		rv = CS_ENOENT;
	}
	if (s != NULL) {
		countersign__v1__stored_station__free_unpacked(s, NULL);
	}
	if (rv == CS_ENOENT) {
		pipeline_set_msg(msg, msglen,
		    "station %s is not enrolled or has been "
		    "disabled; ask the OEM", station);
		return CS_EUNAUTH;
	}
	if (rv != CS_OK) {
		pipeline_set_msg(msg, msglen,
		    "the authority's store failed (%s); try "
		    "again", cs_strerror(rv));
	}
	return rv;
}

/* ------------------------------------------------------------------ */
/* Keys and serials                                                    */
/* ------------------------------------------------------------------ */

/*
 * The HSM key for label, checked against the key id registered with
 * `countersign-admin key add` (a key replaced on the token under the same
 * label is refused, not silently used).
 */
static int
key_for(pipeline *p, const StoredKey *sk, struct cs_hsm_key *out,
    char *msg, size_t msglen)
{
	struct cs_hsm_key k;
	size_t            i;
	int               rv;

	pthread_mutex_lock(&p->mtx);
	for (i = 0; i < p->nkeys; i++) {
		if (strcmp(p->keys[i].label, sk->label) == 0) {
			*out = p->keys[i].key;
			pthread_mutex_unlock(&p->mtx);
			return CS_OK;
		}
	}
	pthread_mutex_unlock(&p->mtx);

	if (p->hsm == NULL) {
		pipeline_set_msg(msg, msglen,
		    "the authority has no HSM configured; no "
		    "quota was spent; tell the OEM");
		return CS_EUNAVAIL;
	}
	if ((rv = cs_hsm_key(p->hsm, sk->label, &k)) != CS_OK) {
		pipeline_set_msg(msg, msglen,
		    "signing key %s is not usable on the HSM "
		    "(%s); no quota was spent; tell the OEM", sk->label,
		    cs_strerror(rv));
		return CS_EUNAVAIL;
	}
	if (sk->key_id.len != CS_KEY_ID_LEN ||
	    memcmp(sk->key_id.data, k.key_id, CS_KEY_ID_LEN) != 0) {
		cs_log_error(LOG_MOD, "HSM key differs from the registered one "
		    "label=%s", sk->label);
		pipeline_set_msg(msg, msglen,
		    "signing key %s on the HSM is not the key "
		    "registered for it; no quota was spent; tell the OEM",
		    sk->label);
		return CS_EPRECOND;
	}
	pthread_mutex_lock(&p->mtx);
	if (p->nkeys < KEYS_MAX) {
		snprintf(p->keys[p->nkeys].label, sizeof(p->keys[0].label),
		    "%s", sk->label);
		p->keys[p->nkeys++].key = k;
	}
	pthread_mutex_unlock(&p->mtx);
	*out = k;
	return CS_OK;
}

void
pipeline_forget_key(pipeline *p, const char *label)
{
	size_t i;

	pthread_mutex_lock(&p->mtx);
	for (i = 0; i < p->nkeys; i++) {
		if (strcmp(p->keys[i].label, label) == 0) {
			p->keys[i] = p->keys[--p->nkeys];
			break;
		}
	}
	pthread_mutex_unlock(&p->mtx);
}

/*
 * The next serial of order o.  Serials are handed out before signing,
 * from memory, starting above the highest one ever committed (after a
 * restart, nothing is in flight); a signature discarded at commit leaves
 * a gap, never a duplicate.
 */
static int
next_serial(pipeline *p, const StoredOrder *o, uint64_t *out)
{
	struct serial_slot *s = NULL;
	uint64_t            floor;
	size_t              i;

	floor = o->serial_high > o->issued ? o->serial_high : o->issued;
	pthread_mutex_lock(&p->mtx);
	for (i = 0; i < p->nserials; i++) {
		if (strcmp(p->serials[i].order_id, o->order_id) == 0) {
			s = &p->serials[i];
			break;
		}
	}
	if (s == NULL) {
		if (p->nserials == p->cap_serials) {
			size_t              cap = p->cap_serials ? 2 * p->cap_serials
			                                         : 64;
			struct serial_slot *ns  = realloc(p->serials,
			     cap * sizeof(*ns));

			if (ns == NULL) {
				pthread_mutex_unlock(&p->mtx);
				return CS_ENOMEM;
			}
			p->serials     = ns;
			p->cap_serials = cap;
		}
		s = &p->serials[p->nserials++];
		snprintf(s->order_id, sizeof(s->order_id), "%s", o->order_id);
		s->next = 0;
	}
	if (s->next <= floor) {
		s->next = floor + 1;
	}
	*out = s->next++;
	pthread_mutex_unlock(&p->mtx);
	return *out > UINT32_MAX ? CS_EEXHAUSTED : CS_OK;
}

/* ------------------------------------------------------------------ */
/* API                                                                 */
/* ------------------------------------------------------------------ */

int
pipeline_open(pipeline **out, store *st, cs_hsm *h)
{
	pipeline *p;

	if (out == NULL || st == NULL) {
		return CS_EINVAL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return CS_ENOMEM;
	}
	p->st  = st;
	p->hsm = h;
	if ((p->limit = audit_limit_new(0)) == NULL) {
		free(p);
		return CS_ENOMEM;
	}
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->work_cv, NULL);
	{
		/* A wall clock step must not stretch a wait. */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->inflight_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (pthread_create(&p->committer, NULL, pipeline_committer_main,
	    p) != 0) {
		pthread_cond_destroy(&p->inflight_cv);
		pthread_cond_destroy(&p->work_cv);
		pthread_mutex_destroy(&p->mtx);
		audit_limit_free(p->limit);
		free(p);
		return CS_ENOMEM;
	}
	*out = p;
	return CS_OK;
}

void
pipeline_close(pipeline *p)
{
	if (p == NULL) {
		return;
	}
	pipeline_write_summaries(p,
	    true); /* what was only counted is not lost */
	pthread_mutex_lock(&p->mtx);
	p->stopping = true;
	pthread_cond_signal(&p->work_cv);
	pthread_mutex_unlock(&p->mtx);
	pthread_join(p->committer, NULL);
	pthread_cond_destroy(&p->inflight_cv);
	pthread_cond_destroy(&p->work_cv);
	pthread_mutex_destroy(&p->mtx);
	cs_wipe(p->keys, sizeof(p->keys));
	free(p->serials);
	audit_limit_free(p->limit);
	free(p);
}

/* Audit a refusal decided before any signature, and return rv. */
static int
refuse(pipeline *p, const struct pipeline_who *who, const char *order_id,
    const uint8_t *uid, size_t uid_len, const char *reason, int rv,
    char *msg, size_t msglen)
{
	char        actor[STORE_AUDIT_ACTOR_MAX], uidhex[2 * STORE_UID_MAX + 1];
	const char *kv[] = {"reason", reason, "order", order_id, "uid", uidhex,
	    "message", msg, NULL};
	struct job  j;
	int         arv;

	cs_hex_encode(uid, uid_len, uidhex, sizeof(uidhex));
	memset(&j, 0, sizeof(j));
	j.kind  = JOB_AUDIT;
	j.actor = pipeline_actor_of(actor, sizeof(actor), who);
	j.type  = "sign.refused";
	j.kv    = kv;
	pthread_mutex_lock(&p->mtx);
	p->stats.refusals++;
	pipeline_metrics_refusal(p, reason);
	pthread_mutex_unlock(&p->mtx);
	if (!audit_limit_admit(p->limit, j.actor, j.type, reason,
	        pipeline_mono_s())) {
		return rv; /* counted into the interval's summary event */
	}
	if ((arv = pipeline_submit(p, &j)) == CS_EEXHAUSTED) {
		/* The store's reserve is for devices: the refusal stands as
		 * it is (the station must hear why), logged, not audited. */
		cs_log_warn(LOG_MOD, "refusal not audited (the store is full "
		    "or into its reserve) station=%s reason=%s", who->station,
		    reason);
	} else if (arv != CS_OK) {
		/* Otherwise every refusal is on record before the station
		 * hears of it; one that cannot be recorded is a store
		 * failure. */
		cs_log_error(LOG_MOD, "refusal not audited station=%s "
		    "reason=%s err=\"%s\"", who->station, reason,
		    cs_strerror(arv));
		pipeline_set_msg(msg, msglen,
		    "the authority's store failed; nothing "
		    "was recorded; try again");
		return CS_EUNAVAIL;
	}
	return rv;
}

static bool
req_ok(const struct pipeline_who *who, const char *order_id,
    size_t uid_len)
{
	return who->station[0] != '\0' &&
	    memchr(who->station, 0, sizeof(who->station)) != NULL &&
	    memchr(who->cm, 0, sizeof(who->cm)) != NULL &&
	    memchr(order_id, 0, STORE_ORDER_ID_MAX + 1) != NULL &&
	    order_id[0] != '\0' && uid_len >= STORE_UID_MIN &&
	    uid_len <= STORE_UID_MAX;
}

/*
 * The read stage: every check that needs no signature.  On CS_OK *o and
 * *k are the order and its key; when the UID already has a record in
 * this order, res is filled and *done set.
 */
static int
sign_checks(pipeline *p, const struct pipeline_sign_req *r,
    StoredOrder **o, StoredKey **k, struct pipeline_sign_res *res,
    bool *done, uint64_t *resign, const char **reason, char *msg,
    size_t msglen)
{
	StoredDevice *d = NULL;
	store_txn    *txn;
	char          first[STORE_ORDER_ID_MAX + 1];
	int           rv;

	*done = false;
	if ((rv = store_txn_begin(p->st, false, &txn)) != CS_OK) {
		*reason = "store";
		pipeline_set_msg(msg, msglen,
		    "the authority's store failed (%s); try "
		    "again", cs_strerror(rv));
		return rv;
	}
	/* The station may have been disabled since it authenticated. */
	rv = pipeline_station_check(txn, r->who.station, msg, msglen);
	if (rv != CS_OK) {
		*reason = rv == CS_EUNAUTH ? "station-disabled" : "store";
		goto out;
	}
	if ((rv = store_order_get(txn, r->order_id, o)) != CS_OK) {
		if (rv == CS_ENOENT) {
			*reason = "unknown-order";
			pipeline_set_msg(msg, msglen,
			    "order %s is not known to this "
			    "authority; check the order id", r->order_id);
		} else {
			*reason = "store";
			pipeline_set_msg(msg, msglen,
			    "the authority's store failed (%s); "
			    "try again", cs_strerror(rv));
		}
		goto out;
	}
	rv = pipeline_order_check(*o, &r->who, r->uid, r->uid_len, reason, msg,
	    msglen);
	if (rv != CS_OK) {
		goto out;
	}
	rv = pipeline_firmware_check(txn, *o, r, reason, msg, msglen);
	if (rv != CS_OK) {
		goto out;
	}
	/* Before the re-issue: another CM must not get this UID's record. */
	rv = pipeline_clone_check(txn, *o, &r->who, r->uid, r->uid_len, msg,
	    msglen,
	    first, sizeof(first));
	if (rv != CS_OK) {
		*reason = rv == CS_EEXIST ? "clone" : "store";
		goto out;
	}
	rv = store_device_get(txn, r->order_id, r->uid, r->uid_len, &d);
	if (rv == CS_OK && d->record.len > 0 &&
	    !pipeline_record_current(*o, d->record.data, d->record.len)) {
		/* Its record binds an image the officer has since replaced:
		 * a new record, same serial, no quota (the unit is counted). */
		*resign = d->serial;
		rv      = CS_ENOENT;
	}
	if (rv == CS_OK) {
		/* Idempotent: the same record again, no quota spent. */
		if (d->record.len == 0 || d->record.len > CS_RECORD_MAX_LEN) {
			rv = CS_ESTORE;
			*reason = "store";
			pipeline_set_msg(msg, msglen,
			    "the stored record of this UID is "
			    "damaged; tell the OEM");
			goto out;
		}
		memcpy(res->record, d->record.data, d->record.len);
		res->record_len = d->record.len;
		res->serial     = d->serial;
		res->reissued   = true;
		res->remaining  =
		    (*o)->quota > (*o)->issued ? (*o)->quota - (*o)->issued : 0;
		*done = true;
		goto out;
	}
	if (rv != CS_ENOENT) {
		*reason = "store";
		pipeline_set_msg(msg, msglen,
		    "the authority's store failed (%s); try "
		    "again", cs_strerror(rv));
		goto out;
	}
	if (*resign == 0 && (*o)->issued >= (*o)->quota) {
		*reason = "quota";
		pipeline_set_msg(msg, msglen,
		    "order %s has no quota left: %" PRIu64
		    " of %" PRIu64 " issued", (*o)->order_id, (*o)->issued,
		    (*o)->quota);
		res->remaining = 0;
		rv             = CS_EEXHAUSTED;
		goto out;
	}
	if ((rv = store_key_get(txn, (*o)->key_label, k)) != CS_OK) {
		*reason = "key";
		pipeline_set_msg(msg, msglen,
		    "signing key %s of order %s is not "
		    "registered; tell the OEM", (*o)->key_label, (*o)->order_id);
		rv = CS_EPRECOND;
		goto out;
	}
out:
	if (d != NULL) {
		countersign__v1__stored_device__free_unpacked(d, NULL);
	}
	store_txn_abort(txn);
	return rv;
}

/* p->mtx held: the in-flight entry of r's device, or NULL. */
static struct inflight *
inflight_find(pipeline *p, const struct pipeline_sign_req *r)
{
	for (size_t i = 0; i < PIPELINE_INFLIGHT_MAX; i++) {
		struct inflight *e = &p->inflight[i];

		if (e->used && e->uid_len == r->uid_len &&
		    memcmp(e->uid, r->uid, r->uid_len) == 0 &&
		    strcmp(e->order_id, r->order_id) == 0) {
			return e;
		}
	}
	return NULL;
}

/*
 * Mark r's device as being signed for, first waiting (at most
 * PIPELINE_INFLIGHT_WAIT_S) while another request for it is between its
 * checks and its commit; the checks that follow then find its record.
 * Returns the entry to release, or NULL when none was taken (the wait
 * ran out, or the table is full): the request then goes on unguarded,
 * which costs at most a signature, never a second record.
 */
static struct inflight *
inflight_claim(pipeline *p, const struct pipeline_sign_req *r)
{
	struct inflight *e = NULL;
	struct timespec  until;

	clock_gettime(CLOCK_MONOTONIC, &until); /* inflight_cv's clock */
	until.tv_sec += PIPELINE_INFLIGHT_WAIT_S;
	pthread_mutex_lock(&p->mtx);
	while (inflight_find(p, r) != NULL) {
		if (pthread_cond_timedwait(&p->inflight_cv, &p->mtx, &until) !=
		    0) {
			pthread_mutex_unlock(&p->mtx);
			return NULL;
		}
	}
	for (size_t i = 0; i < PIPELINE_INFLIGHT_MAX && e == NULL; i++) {
		if (!p->inflight[i].used) {
			e          = &p->inflight[i];
			e->used    = true;
			e->uid_len = r->uid_len;
			memcpy(e->uid, r->uid, r->uid_len);
			snprintf(e->order_id, sizeof(e->order_id), "%s",
			    r->order_id);
		}
	}
	pthread_mutex_unlock(&p->mtx);
	return e;
}

static void
inflight_release(pipeline *p, struct inflight *e)
{
	if (e == NULL) {
		return;
	}
	pthread_mutex_lock(&p->mtx);
	e->used = false;
	pthread_cond_broadcast(&p->inflight_cv);
	pthread_mutex_unlock(&p->mtx);
}

int
pipeline_sign(pipeline *p, const struct pipeline_sign_req *r,
    struct pipeline_sign_res *res, char *msg, size_t msglen)
{
	struct inflight        *claim = NULL;
	StoredOrder            *o = NULL;
	StoredKey              *k = NULL;
	struct cs_hsm_key       key;
	struct cs_record_fields f;
	struct job              j;
	const char             *reason = "invalid";
	struct timespec         t0, t1;
	bool                    done;
	uint64_t                resign = 0;
	int                     rv;

	if (p == NULL || r == NULL || res == NULL) {
		return CS_EINVAL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(res, 0, sizeof(*res));
	if (!req_ok(&r->who, r->order_id, r->uid_len)) {
		pipeline_set_msg(msg, msglen, "malformed sign request");
		return CS_EINVAL;
	}
	claim = inflight_claim(p, r);
	rv    = sign_checks(p, r, &o, &k, res, &done, &resign, &reason, msg,
	    msglen);
	if (rv != CS_OK) {
		if (strcmp(reason, "store") != 0) {
			rv = refuse(p, &r->who, r->order_id, r->uid, r->uid_len,
			    reason, rv, msg, msglen);
		}
		goto out;
	}
	if (done) {
		/* Re-issue: nothing changes, but the officer sees it. */
		char        uidhex[2 * STORE_UID_MAX + 1], actor[128];
		const char *kv[] = {"order", r->order_id, "uid", uidhex, NULL};

		cs_hex_encode(r->uid, r->uid_len, uidhex, sizeof(uidhex));
		rv = pipeline_audit(p, pipeline_actor_of(actor, sizeof(actor),
		    &r->who),
		    "sign.reissued", kv);
		if (rv == CS_EEXHAUSTED) {
			/* Into the reserve: the record is served all the
			 * same (nothing changes); only its event is missed. */
			cs_log_warn(LOG_MOD, "re-issue not audited (the store "
			    "is full or into its reserve) station=%s order=%s",
			    r->who.station, r->order_id);
			rv = CS_OK;
		}
		if (rv == CS_OK) {
			pthread_mutex_lock(&p->mtx);
			p->stats.records_reissued++;
			pthread_mutex_unlock(&p->mtx);
		} else {
			pipeline_set_msg(msg, msglen,
			    "the authority's store failed "
			    "(%s); try again", cs_strerror(rv));
			memset(res, 0, sizeof(*res));
		}
		goto out;
	}
	if ((rv = key_for(p, k, &key, msg, msglen)) != CS_OK) {
		rv = refuse(p, &r->who, r->order_id, r->uid, r->uid_len, "hsm",
		    rv, msg, msglen);
		goto out;
	}

	memset(&j, 0, sizeof(j));
	j.serial = resign;
	j.resign = resign != 0;
	if (!j.resign && (rv = next_serial(p, o, &j.serial)) != CS_OK) {
		pipeline_set_msg(msg, msglen, rv == CS_ENOMEM
		        ? "the authority is out of memory (order %s); try again"
		        : "order %s has used every serial number",
		    o->order_id);
		rv = refuse(p, &r->who, r->order_id, r->uid, r->uid_len,
		    "serials", rv, msg, msglen);
		goto out;
	}
	memset(&f, 0, sizeof(f));
	f.product_id = o->product_id;
	f.serial     = (uint32_t)j.serial;
	f.uid        = r->uid;
	f.uid_len    = r->uid_len;
	if (o->firmware_sha256.len == CS_SHA256_LEN) {
		f.firmware_digest = o->firmware_sha256.data;
	}
	if ((rv = cs_record_order_hash(o->order_id, f.order_hash)) == CS_OK) {
		rv = cs_record_sign_hsm(p->hsm, &key, &f, j.record,
		    sizeof(j.record), &j.record_len);
	}
	pthread_mutex_lock(&p->mtx);
	if (rv == CS_OK) {
		p->stats.hsm_signatures++;
	} else {
		p->stats.hsm_errors++;
	}
	pthread_mutex_unlock(&p->mtx);
	if (rv != CS_OK) {
		cs_log_error(LOG_MOD, "signing failed order=%s key=%s err=\"%s\"",
		    o->order_id, o->key_label, cs_strerror(rv));
		pipeline_set_msg(msg, msglen,
		    "the HSM could not sign (%s); no quota was "
		    "spent; try again, and tell the OEM if it persists",
		    cs_strerror(rv));
		/* A stale key handle must not stick. */
		pipeline_forget_key(p, o->key_label);
		rv = refuse(p, &r->who, r->order_id, r->uid, r->uid_len, "hsm",
		    CS_EUNAVAIL, msg, msglen);
		goto out;
	}
	j.kind   = JOB_ISSUE;
	j.sreq   = r;
	j.sres   = res;
	j.msg    = msg;
	j.msglen = msglen;
	rv       = pipeline_submit(p, &j);
out:
	inflight_release(p, claim);
	if (o != NULL) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
	}
	if (k != NULL) {
		countersign__v1__stored_key__free_unpacked(k, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	{
		double secs = (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		size_t b = 0;

		while (b < PIPELINE_LATENCY_BUCKETS &&
		    secs > pipeline_latency_le[b]) {
			b++;
		}
		pthread_mutex_lock(&p->mtx);
		p->metrics.latency[b]++;
		p->metrics.latency_sum_s += secs;
		p->metrics.latency_count++;
		pthread_mutex_unlock(&p->mtx);
	}
	return rv;
}

int
pipeline_report(pipeline *p, const struct pipeline_report_req *r,
    StoredOrder **order_out, char *msg, size_t msglen)
{
	struct job j;
	store_txn *txn;
	int        rv;

	if (order_out != NULL) {
		*order_out = NULL;
	}
	if (p == NULL || r == NULL || !req_ok(&r->who, r->order_id, r->uid_len) ||
	    r->outcome < PIPELINE_PROGRAMMED ||
	    r->outcome > PIPELINE_VERIFY_FAILED ||
	    memchr(r->detail, 0, sizeof(r->detail)) == NULL) {
		pipeline_set_msg(msg, msglen, "malformed report");
		return CS_EINVAL;
	}
	memset(&j, 0, sizeof(j));
	j.kind   = JOB_REPORT;
	j.rreq   = r;
	j.msg    = msg;
	j.msglen = msglen;
	if ((rv = pipeline_submit(p, &j)) != CS_OK || order_out == NULL) {
		return rv;
	}
	if (store_txn_begin(p->st, false, &txn) == CS_OK) {
		if (store_order_get(txn, r->order_id, order_out) != CS_OK) {
			*order_out = NULL;
		}
		store_txn_abort(txn);
	}
	return CS_OK;
}

void
pipeline_stats_get(pipeline *p, struct pipeline_stats *out)
{
	pthread_mutex_lock(&p->mtx);
	*out = p->stats;
	pthread_mutex_unlock(&p->mtx);
}
