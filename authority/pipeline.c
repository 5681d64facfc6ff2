/*
 * pipeline.c - the sign pipeline and the committer (see pipeline.h).
 *
 * Locking: p->mtx guards the job queue, the serial counters, the key cache
 * and the statistics; it is never held across an HSM call or a store
 * transaction.  The committer is the only thread of this module that
 * writes to the store, so the order in which it applies jobs is the order
 * in which they happened; admin changes commit in write transactions of
 * their own, which LMDB serialises with ours.
 */
#include "pipeline.h"

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

#define LOG_MOD "pipeline"

/* Most jobs in one write transaction: keeps one commit's latency and its
 * dirty pages bounded while still amortising the fsync. */
#define BATCH_MAX 512u

/* Signing keys remembered in memory. */
#define KEYS_MAX 64u

enum job_kind {
	JOB_ISSUE,  /* commit a freshly signed record */
	JOB_AUDIT,  /* append one event (a refusal, ...) */
	JOB_REPORT, /* a station's report */
	JOB_SEEN,   /* a station authenticated */
};

struct job {
	enum job_kind  kind;
	struct job    *next;
	pthread_cond_t cv; /* signalled when done */
	bool           done;
	int           rv;
	char         *msg; /* the caller's message buffer */
	size_t        msglen;

	/* JOB_ISSUE */
	const struct pipeline_sign_req *sreq;
	struct pipeline_sign_res       *sres;
	uint8_t                         record[CS_RECORD_MAX_LEN];
	size_t                          record_len;
	uint64_t                        serial;
	/* JOB_REPORT */
	const struct pipeline_report_req *rreq;
	/* JOB_AUDIT */
	const char        *actor;
	const char        *type;
	const char *const *kv;
	/* JOB_SEEN */
	const char *station;
	bool        seen_audit; /* write station.authenticated too */

	/* statistics this job adds once its transaction has committed */
	unsigned st_issued, st_reissued, st_refused, st_discarded;
	const char *st_reason; /* why, when st_refused */
};

struct key_slot {
	char              label[STORE_NAME_MAX + 1];
	struct cs_hsm_key key;
};

struct serial_slot {
	char     order_id[STORE_ORDER_ID_MAX + 1];
	uint64_t next;
};

/* More than [authority] workers (at most 256) can ever fill. */
#define PIPELINE_INFLIGHT_MAX  512u
/* How long a duplicate waits for the first request of its device. */
#define PIPELINE_INFLIGHT_WAIT_S 30

struct inflight {
	bool    used;
	char    order_id[STORE_ORDER_ID_MAX + 1];
	uint8_t uid[STORE_UID_MAX];
	size_t  uid_len;
};

struct pipeline {
	store          *st;
	cs_hsm         *hsm;
	pthread_t       committer;
	pthread_mutex_t mtx;
	pthread_cond_t  work_cv; /* a job was queued, or stop */
	struct job     *head, *tail;
	bool            stopping;

	struct key_slot    keys[KEYS_MAX];
	size_t             nkeys;
	/* One counter per order that signed since start; never evicted (a
	 * forgotten counter could hand out a serial still in flight). */
	struct serial_slot *serials;
	size_t              nserials, cap_serials;

	struct pipeline_stats   stats;
	struct pipeline_metrics metrics;

	audit_limit *limit; /* collapses the events peers cause at will */
	/* Sign requests between their checks and their commit, by order and
	 * UID: a second request for the same device waits for the first
	 * and is then served its record, so duplicates cost no signature. */
	struct inflight inflight[PIPELINE_INFLIGHT_MAX];
	pthread_cond_t  inflight_cv; /* an entry was released */
	/* The store's room as the last batch saw it: below the reserve only
	 * device commits (and their events) are written. */
	bool     low;
	uint64_t low_checked_ms;
};

static void write_summaries(pipeline *p, bool all);

const double pipeline_latency_le[PIPELINE_LATENCY_BUCKETS] = {0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};
const uint64_t pipeline_batch_le[PIPELINE_BATCH_BUCKETS] = {1, 2, 4, 8,
    16, 32, 64, 128, 256, 512};

/* Count a sign refusal by reason; p->mtx held. */
static void
metrics_refusal(pipeline *p, const char *reason)
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
static void
metrics_issued(pipeline *p, uint64_t n)
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

static void
set_msg(char *msg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_msg(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (msg == NULL || len == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
}

static uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

/* Milliseconds and seconds of a clock that nobody sets back (collapse
 * intervals, room checks). */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
mono_s(void)
{
	return now_ms() / 1000u;
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
static int
order_check(const StoredOrder *o, const struct pipeline_who *who,
    const uint8_t *uid, size_t uid_len, const char **reason, char *msg,
    size_t msglen)
{
	size_t i;
	bool   all00 = true, allff = true;
	char   when[32];

	if (o->closed) {
		*reason = "order-closed";
		set_msg(msg, msglen, "order %s is closed; ask the OEM for an "
		    "open order", o->order_id);
		return CS_EPRECOND;
	}
	if (o->expires_unix_s != 0 && now_s() >= o->expires_unix_s) {
		day_of(o->expires_unix_s, when, sizeof(when));
		*reason = "order-expired";
		set_msg(msg, msglen, "order %s expired at %s; ask the OEM to "
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
			set_msg(msg, msglen, "station %s belongs to CM %s, which "
			    "is not allowed to produce order %s", who->station,
			    who->cm, o->order_id);
			return CS_EPERM;
		}
	}
	if (uid_len != o->uid_len) {
		*reason = "uid-length";
		set_msg(msg, msglen, "UID is %zu bytes but order %s expects "
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
		set_msg(msg, msglen, "UID is all 0x%s: that is erased or "
		    "unreadable memory, not a device UID; check the probe "
		    "connection and the UID address", all00 ? "00" : "FF");
		return CS_EINVAL;
	}
	return CS_OK;
}

/*
 * A UID first seen for this product under another order, or in this order
 * by a station of another CM: a clone.  (Several stations of one CM may
 * ask for the same UID: a device moved to another line gets its record
 * again.)
 */
static int
clone_check(store_txn *txn, const StoredOrder *o, const struct pipeline_who *who,
    const uint8_t *uid, size_t uid_len, char *msg, size_t msglen,
    char *first_order, size_t first_len)
{
	StoredUid *u = NULL;
	int        rv;

	rv = store_uid_get(txn, o->product_id, uid, uid_len, &u);
	if (rv == CS_ENOENT) {
		return CS_OK;
	}
	if (rv != CS_OK) {
		set_msg(msg, msglen, "the authority's store failed (%s); try "
		    "again, and tell the OEM if it persists", cs_strerror(rv));
		return rv;
	}
	rv = CS_OK;
	if (strcmp(u->order_id, o->order_id) != 0) {
		set_msg(msg, msglen, "this UID was already signed for product "
		    "%u under order %s (station %s): refused as a possible "
		    "clone; set the device aside and tell the OEM",
		    o->product_id, u->order_id, u->station);
		rv = CS_EEXIST;
	} else if (u->cm[0] != '\0' && strcmp(u->cm, who->cm) != 0) {
		set_msg(msg, msglen, "this UID was already signed in order %s "
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
static int
station_check(store_txn *txn, const char *station, char *msg, size_t msglen)
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
		set_msg(msg, msglen, "station %s is not enrolled or has been "
		    "disabled; ask the OEM", station);
		return CS_EUNAUTH;
	}
	if (rv != CS_OK) {
		set_msg(msg, msglen, "the authority's store failed (%s); try "
		    "again", cs_strerror(rv));
	}
	return rv;
}

/* ------------------------------------------------------------------ */
/* The committer                                                       */
/* ------------------------------------------------------------------ */

static const char *
actor_of(char *buf, size_t len, const struct pipeline_who *who)
{
	snprintf(buf, len, "station:%s", who->station);
	return buf;
}

/* Audit a refusal inside txn; returns the store error, if any. */
static int
audit_refusal(store_txn *txn, const struct pipeline_who *who,
    const char *order_id, const uint8_t *uid, size_t uid_len,
    const char *reason, const char *message, const char *extra_k,
    const char *extra_v)
{
	char        actor[STORE_AUDIT_ACTOR_MAX], uidhex[2 * STORE_UID_MAX + 1];
	const char *kv[] = {"reason", reason, "order", order_id, "uid", uidhex,
	    "message", message, extra_k, extra_v, NULL};

	cs_hex_encode(uid, uid_len, uidhex, sizeof(uidhex));
	return store_audit_append(txn, actor_of(actor, sizeof(actor), who),
	    "sign.refused", kv, NULL);
}

/*
 * A refusal inside the committer: audited like refuse()'s, through the
 * collapsing and never into the reserve (the answer stands either way).
 */
static int
audit_refusal_limited(pipeline *p, store_txn *txn,
    const struct pipeline_who *who, const char *order_id,
    const uint8_t *uid, size_t uid_len, const char *reason,
    const char *message, const char *extra_k, const char *extra_v)
{
	char actor[STORE_AUDIT_ACTOR_MAX];

	if (p->low || !audit_limit_admit(p->limit, actor_of(actor,
	                  sizeof(actor), who), "sign.refused", reason,
	                  mono_s())) {
		return CS_OK;
	}
	return audit_refusal(txn, who, order_id, uid, uid_len, reason,
	    message, extra_k, extra_v);
}

static int
apply_issue(pipeline *p, store_txn *txn, struct job *j)
{
	const struct pipeline_sign_req *r = j->sreq;
	StoredOrder                    *o = NULL;
	StoredDevice                   *d = NULL;
	StoredDevice dev = COUNTERSIGN__V1__STORED_DEVICE__INIT;
	const char  *reason = NULL;
	char         actor[STORE_AUDIT_ACTOR_MAX], uidhex[2 * STORE_UID_MAX + 1];
	char         serial[24], product[16], first[STORE_ORDER_ID_MAX + 1];
	int          rv, frv;

	cs_hex_encode(r->uid, r->uid_len, uidhex, sizeof(uidhex));
	actor_of(actor, sizeof(actor), &r->who);
	/* Everything the read stage checked may have changed while the HSM
	 * was signing: the station disabled, the order closed, the last unit
	 * taken, the UID signed by another request. */
	rv = station_check(txn, r->who.station, j->msg, j->msglen);
	if (rv == CS_EUNAUTH) {
		reason = "station-disabled";
		goto refuse;
	}
	if (rv != CS_OK) {
		return rv;
	}
	if ((rv = store_order_get(txn, r->order_id, &o)) != CS_OK) {
		if (rv != CS_ENOENT) {
			return rv;
		}
		set_msg(j->msg, j->msglen, "order %s is not known", r->order_id);
		reason = "unknown-order";
		goto refuse;
	}
	rv = order_check(o, &r->who, r->uid, r->uid_len, &reason, j->msg,
	    j->msglen);
	if (rv != CS_OK) {
		goto refuse;
	}
	rv = clone_check(txn, o, &r->who, r->uid, r->uid_len, j->msg,
	    j->msglen, first, sizeof(first));
	if (rv == CS_EEXIST) {
		reason = "clone";
		goto refuse;
	}
	if (rv != CS_OK) {
		goto fatal;
	}
	rv = store_device_get(txn, r->order_id, r->uid, r->uid_len, &d);
	if (rv == CS_OK) {
		/* Two requests for one UID raced: the first won, this one
		 * gets its record and the new signature is discarded. */
		const char *kv[] = {"order", r->order_id, "uid", uidhex, NULL};

		if (d->record.len == 0 || d->record.len > CS_RECORD_MAX_LEN) {
			countersign__v1__stored_device__free_unpacked(d, NULL);
			rv = CS_ESTORE;
			goto fatal;
		}
		memcpy(j->sres->record, d->record.data, d->record.len);
		j->sres->record_len = d->record.len;
		j->sres->serial     = d->serial;
		j->sres->reissued   = true;
		j->sres->remaining  =
		    o->quota > o->issued ? o->quota - o->issued : 0;
		countersign__v1__stored_device__free_unpacked(d, NULL);
		/* Collapsed like every re-issue, and never into the
		 * reserve. */
		if (!p->low && audit_limit_admit(p->limit, actor,
		        "sign.reissued", NULL, mono_s()) &&
		    (rv = store_audit_append(txn, actor, "sign.reissued", kv,
		         NULL)) != CS_OK) {
			goto fatal;
		}
		j->st_reissued  = 1;
		j->st_discarded = 1;
		j->rv           = CS_OK;
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return CS_OK;
	}
	if (rv != CS_ENOENT) {
		goto fatal;
	}
	if (o->issued >= o->quota) {
		reason = "quota";
		rv     = CS_EEXHAUSTED;
		set_msg(j->msg, j->msglen, "order %s has no quota left: "
		    "%" PRIu64 " of %" PRIu64 " issued", o->order_id, o->issued,
		    o->quota);
		goto refuse;
	}

	dev.order_id      = o->order_id;
	dev.uid.data      = (uint8_t *)r->uid;
	dev.uid.len       = r->uid_len;
	dev.station       = (char *)r->who.station;
	dev.cm            = (char *)r->who.cm;
	dev.serial        = j->serial;
	dev.issued_unix_s = now_s();
	dev.record.data   = j->record;
	dev.record.len    = j->record_len;
	dev.state         = "issued";
	o->issued++;
	if (j->serial > o->serial_high) {
		o->serial_high = j->serial;
	}
	snprintf(serial, sizeof(serial), "%" PRIu64, j->serial);
	snprintf(product, sizeof(product), "%u", o->product_id);
	{
		const char *kv[] = {"order", o->order_id, "uid", uidhex,
		    "serial", serial, "product", product, "key", o->key_label,
		    NULL};

		if ((rv = store_device_put(txn, &dev)) != CS_OK ||
		    (rv = store_uid_put(txn, o->product_id, r->uid, r->uid_len,
		         o->order_id, r->who.station, r->who.cm)) != CS_OK ||
		    (rv = store_order_put(txn, o)) != CS_OK ||
		    (rv = store_audit_append(txn, actor, "sign.issued", kv,
		         NULL)) != CS_OK) {
			goto fatal;
		}
	}
	memcpy(j->sres->record, j->record, j->record_len);
	j->sres->record_len = j->record_len;
	j->sres->serial     = j->serial;
	j->sres->reissued   = false;
	j->sres->remaining  = o->quota - o->issued;
	j->st_issued        = 1;
	j->rv               = CS_OK;
	countersign__v1__stored_order__free_unpacked(o, NULL);
	return CS_OK;

refuse:
	/* A refusal decided at commit: the signature is discarded, the
	 * refusal audited in this transaction. */
	j->rv              = rv;
	j->st_refused      = 1;
	j->st_reason       = reason;
	j->st_discarded    = 1;
	j->sres->remaining = o != NULL && o->quota > o->issued
	    ? o->quota - o->issued
	    : 0;
	frv = audit_refusal_limited(p, txn, &r->who, r->order_id, r->uid,
	    r->uid_len, reason, j->msg, rv == CS_EEXIST ? "first_order" : NULL,
	    rv == CS_EEXIST ? first : NULL);
	if (o != NULL) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
	}
	return frv;
fatal:
	if (o != NULL) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
	}
	return rv == CS_EINVAL || rv == CS_ETOOBIG || rv == CS_EEXIST ||
	        rv == CS_ENOENT
	    ? CS_ESTORE
	    : rv;
}

/* The order counter a device state counts in. */
static uint64_t *
state_counter(StoredOrder *o, const char *state)
{
	if (strcmp(state, "programmed") == 0) {
		return &o->confirmed;
	}
	if (strcmp(state, "failed") == 0 ||
	    strcmp(state, "verify-failed") == 0) {
		return &o->failed;
	}
	return NULL;
}

static const char *
outcome_state(enum pipeline_outcome oc)
{
	switch (oc) {
	case PIPELINE_PROGRAMMED:
		return "programmed";
	case PIPELINE_FAILED:
		return "failed";
	case PIPELINE_VERIFY_FAILED:
		return "verify-failed";
	}
	return "issued";
}

static int
apply_report(pipeline *p, store_txn *txn, struct job *j)
{
	const struct pipeline_report_req *r = j->rreq;
	StoredOrder                      *o = NULL;
	StoredDevice                     *d = NULL;
	const char *reason = NULL, *state = outcome_state(r->outcome);
	const char *prev;
	char       *prev_detail;
	uint64_t   *c;
	char        actor[STORE_AUDIT_ACTOR_MAX], uidhex[2 * STORE_UID_MAX + 1];
	int         rv;

	cs_hex_encode(r->uid, r->uid_len, uidhex, sizeof(uidhex));
	rv = station_check(txn, r->who.station, j->msg, j->msglen);
	if (rv != CS_OK) {
		j->rv = rv;
		return rv == CS_EUNAUTH ? CS_OK : rv;
	}
	if ((rv = store_order_get(txn, r->order_id, &o)) != CS_OK) {
		if (rv != CS_ENOENT) {
			return rv;
		}
		set_msg(j->msg, j->msglen, "order %s is not known", r->order_id);
		j->rv = CS_ENOENT;
		return CS_OK;
	}
	/* A report may come after the order closed or expired: only the
	 * station's right to the order and the UID matter here. */
	if (o->n_cms > 0) {
		StoredOrder tmp = *o;

		tmp.closed         = false;
		tmp.expires_unix_s = 0;
		rv = order_check(&tmp, &r->who, r->uid, r->uid_len, &reason,
		    j->msg, j->msglen);
		if (rv == CS_EPERM) {
			j->rv = rv;
			countersign__v1__stored_order__free_unpacked(o, NULL);
			return audit_refusal_limited(p, txn, &r->who,
			    r->order_id, r->uid, r->uid_len, reason, j->msg,
			    NULL, NULL);
		}
	}
	rv = store_device_get(txn, r->order_id, r->uid, r->uid_len, &d);
	if (rv == CS_ENOENT) {
		set_msg(j->msg, j->msglen, "UID %s has no record in order %s; "
		    "nothing to report", uidhex, r->order_id);
		j->rv = CS_ENOENT;
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return CS_OK;
	}
	if (rv != CS_OK) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return rv;
	}
	/* Only the CM the record was issued to reports on the device. */
	if (d->cm[0] != '\0' && strcmp(d->cm, r->who.cm) != 0) {
		set_msg(j->msg, j->msglen, "UID %s of order %s was issued to "
		    "another CM; a station of CM %s cannot report on it", uidhex,
		    r->order_id, r->who.cm);
		j->rv = CS_EPERM;
		countersign__v1__stored_device__free_unpacked(d, NULL);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return audit_refusal_limited(p, txn, &r->who, r->order_id,
		    r->uid, r->uid_len, "report-other-cm", j->msg, NULL, NULL);
	}
	prev = d->state;
	/*
	 * A device's first report is part of its record and always written.
	 * Reports after it are a station's to repeat at will: the same again
	 * changes nothing and writes nothing; a changed one is collapsed
	 * per station (device.reported reason=re-report) and never written
	 * into the reserve.
	 */
	if (state_counter(o, prev) != NULL &&
	    (strcmp(prev, state) == 0 &&
	        strcmp(d->detail != NULL ? d->detail : "",
	            r->detail) == 0)) {
		countersign__v1__stored_device__free_unpacked(d, NULL);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		j->rv = CS_OK;
		return CS_OK;
	}
	if (state_counter(o, prev) != NULL &&
	    (p->low || !audit_limit_admit(p->limit, actor_of(actor,
	                   sizeof(actor), &r->who), "device.reported",
	                   "re-report", mono_s()))) {
		countersign__v1__stored_device__free_unpacked(d, NULL);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		set_msg(j->msg, j->msglen, "UID %s of order %s was reported "
		    "before; this report was counted, not recorded (reports "
		    "that change a device's outcome are recorded once per %u s "
		    "per station)", uidhex, r->order_id,
		    audit_limit_interval(p->limit));
		j->rv = CS_OK;
		return CS_OK;
	}
	if ((c = state_counter(o, prev)) != NULL && *c > 0) {
		(*c)--;
	}
	if ((c = state_counter(o, state)) != NULL) {
		(*c)++;
	}
	prev_detail = d->detail;
	d->state    = (char *)state;
	d->detail   = (char *)r->detail;
	{
		const char *kv[] = {"order", r->order_id, "uid", uidhex,
		    "outcome", state, "previous", prev, "detail", r->detail,
		    NULL};

		if ((rv = store_device_put(txn, d)) == CS_OK &&
		    (rv = store_order_put(txn, o)) == CS_OK) {
			rv = store_audit_append(txn,
			    actor_of(actor, sizeof(actor), &r->who),
			    "device.reported", kv, NULL);
		}
	}
	/* d->state and d->detail point at our strings: the unpacked
	 * message must not free them. */
	d->state  = (char *)prev;
	d->detail = prev_detail;
	countersign__v1__stored_device__free_unpacked(d, NULL);
	countersign__v1__stored_order__free_unpacked(o, NULL);
	if (rv == CS_OK) {
		j->rv = CS_OK;
	}
	return rv;
}

static int
apply_seen(pipeline *p, store_txn *txn, struct job *j)
{
	StoredStation *s = NULL;
	const char    *kv[] = {"station", j->station, NULL};
	char           actor[STORE_AUDIT_ACTOR_MAX];
	int            rv;

	if ((rv = store_station_get(txn, j->station, &s)) != CS_OK) {
		j->rv = rv;
		return rv == CS_ENOENT ? CS_OK : rv;
	}
	if (!s->enabled) {
		/* Disabled between the check of its answer and now. */
		countersign__v1__stored_station__free_unpacked(s, NULL);
		j->rv = CS_EPERM;
		return CS_OK;
	}
	if (p->low) {
		/* The reserve is for devices: last_seen and the event wait
		 * until there is room; the station is served all the same. */
		countersign__v1__stored_station__free_unpacked(s, NULL);
		j->rv = CS_OK;
		return CS_OK;
	}
	s->last_seen_unix_s = now_s();
	snprintf(actor, sizeof(actor), "station:%s", j->station);
	if ((rv = store_station_put(txn, s)) == CS_OK && j->seen_audit) {
		rv = store_audit_append(txn, actor, "station.authenticated", kv,
		    NULL);
	}
	countersign__v1__stored_station__free_unpacked(s, NULL);
	if (rv == CS_OK) {
		j->rv = CS_OK;
	}
	return rv;
}

static int
apply(pipeline *p, store_txn *txn, struct job *j)
{
	int rv;

	j->st_issued = j->st_reissued = j->st_refused = j->st_discarded = 0;
	switch (j->kind) {
	case JOB_ISSUE:
		return apply_issue(p, txn, j);
	case JOB_REPORT:
		return apply_report(p, txn, j);
	case JOB_SEEN:
		return apply_seen(p, txn, j);
	case JOB_AUDIT:
		if (p->low) {
			/* Not fatal to the batch: the devices in it go on. */
			j->rv = CS_EEXHAUSTED;
			return CS_OK;
		}
		rv = store_audit_append(txn, j->actor, j->type, j->kv, NULL);
		j->rv = rv;
		return rv;
	}
	return CS_EINVAL;
}

/*
 * Whether the store is into its reserve (pipeline.h): read at most every
 * 100 ms, by the committer only.  Logged when it changes.
 */
static void
check_room(pipeline *p)
{
	uint64_t now = now_ms(), used, size, map_left, disk_left, reserve;
	bool     low;

	if (p->low_checked_ms != 0 && now < p->low_checked_ms + 100) {
		return;
	}
	p->low_checked_ms = now;
	if (store_space(p->st, &used, &size) != CS_OK ||
	    store_room(p->st, &map_left, &disk_left) != CS_OK) {
		return;
	}
	reserve = pipeline_reserve_bytes(size);
	low     = map_left < reserve || disk_left < reserve;
	if (low != p->low) {
		if (low) {
			cs_log_warn(LOG_MOD, "the store is into its reserve "
			    "map_left=%" PRIu64 " disk_left=%" PRIu64
			    " reserve=%" PRIu64 ": only devices are recorded "
			    "now; refusals and authentications are logged, not "
			    "audited; " STORE_FULL_TODO, map_left, disk_left,
			    reserve);
		} else {
			cs_log_info(LOG_MOD, "the store is out of its reserve "
			    "map_left=%" PRIu64 " disk_left=%" PRIu64,
			    map_left, disk_left);
		}
	}
	p->low = low;
}

uint64_t
pipeline_reserve_bytes(uint64_t map_size)
{
	uint64_t r = map_size / 20; /* 5 % */

	if (r < PIPELINE_RESERVE_MIN) {
		r = PIPELINE_RESERVE_MIN;
	}
	return r > map_size / 4 ? map_size / 4 : r;
}

/*
 * Apply jobs [first, last) in one write transaction and commit.  Returns
 * CS_OK when committed (each job's rv says how it went), or the store
 * error that stopped the whole transaction (nothing was written).
 */
static int
run_batch(pipeline *p, struct job *first, struct job *last)
{
	store_txn  *txn;
	struct job *j;
	int         rv;

	check_room(p);
	if ((rv = store_txn_begin(p->st, true, &txn)) != CS_OK) {
		return rv;
	}
	for (j = first; j != last; j = j->next) {
		j->rv = CS_EINTERNAL;
		if ((rv = apply(p, txn, j)) != CS_OK) {
			cs_log_warn(LOG_MOD, "write transaction failed kind=%d "
			    "err=\"%s\"", (int)j->kind, cs_strerror(rv));
			store_txn_abort(txn);
			return rv;
		}
	}
	return store_txn_commit(txn);
}

static void
fail_store(struct job *j, int rv)
{
	j->rv = rv == CS_EEXHAUSTED ? CS_EEXHAUSTED : CS_ESTORE;
	if (rv == CS_EEXHAUSTED) {
		set_msg(j->msg, j->msglen, "the authority's store is full; "
		    "nothing was recorded and no quota spent; " STORE_FULL_TODO);
	} else {
		set_msg(j->msg, j->msglen, "the authority's store failed (%s); "
		    "nothing was recorded and no quota spent; try again",
		    cs_strerror(rv));
	}
	j->st_issued = j->st_reissued = 0;
	j->st_discarded = j->kind == JOB_ISSUE;
}

static void
finish(pipeline *p, struct job *first, struct job *last, size_t n)
{
	struct job *j, *next;

	pthread_mutex_lock(&p->mtx);
	p->stats.commits++;
	if (n > p->stats.commit_batch_max) {
		p->stats.commit_batch_max = n;
	}
	{
		size_t b = 0;

		while (b < PIPELINE_BATCH_BUCKETS && n > pipeline_batch_le[b]) {
			b++;
		}
		p->metrics.batch[b]++;
		p->metrics.batch_sum += n;
		p->metrics.batch_count++;
	}
	for (j = first; j != last; j = next) {
		next = j->next;
		if (j->st_issued != 0) {
			metrics_issued(p, j->st_issued);
		}
		if (j->st_refused != 0) {
			metrics_refusal(p, j->st_reason);
		}
		p->stats.records_issued += j->st_issued;
		p->stats.records_reissued += j->st_reissued;
		p->stats.refusals += j->st_refused;
		p->stats.signatures_discarded += j->st_discarded;
		j->done = true;
		/* Wake exactly the callers of this batch; j belongs to its
		 * caller again once done is set and the mutex released. */
		pthread_cond_signal(&j->cv);
	}
	pthread_mutex_unlock(&p->mtx);
}

static void *
committer_main(void *arg)
{
	pipeline   *p = arg;
	struct job *first, *last, *j;
	size_t      n;
	int         rv;

	for (;;) {
		pthread_mutex_lock(&p->mtx);
		while (p->head == NULL && !p->stopping) {
			pthread_cond_wait(&p->work_cv, &p->mtx);
		}
		if (p->head == NULL) {
			pthread_mutex_unlock(&p->mtx);
			break;
		}
		/* Take up to BATCH_MAX jobs off the queue. */
		first = p->head;
		for (n = 0, last = first; last != NULL && n < BATCH_MAX; n++) {
			last = last->next;
		}
		p->head = last;
		if (last == NULL) {
			p->tail = NULL;
		}
		pthread_mutex_unlock(&p->mtx);

		rv = run_batch(p, first, last);
		if (rv != CS_OK && n > 1) {
			/* One job may have filled the map: give each its own
			 * transaction so the others still go through. */
			for (j = first; j != last; j = j->next) {
				struct job *after = j->next;

				if ((rv = run_batch(p, j, after)) != CS_OK) {
					fail_store(j, rv);
				}
			}
		} else if (rv != CS_OK) {
			fail_store(first, rv);
		}
		finish(p, first, last, n);
	}
	return NULL;
}

/* Queue j and wait until its batch has committed (or failed). */
static int
submit(pipeline *p, struct job *j)
{
	pthread_mutex_lock(&p->mtx);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		set_msg(j->msg, j->msglen, "the authority is shutting down; "
		    "try again in a moment");
		return CS_EUNAVAIL;
	}
	j->next = NULL;
	j->done = false;
	pthread_cond_init(&j->cv, NULL);
	if (p->tail != NULL) {
		p->tail->next = j;
	} else {
		p->head = j;
	}
	p->tail = j;
	pthread_cond_signal(&p->work_cv);
	while (!j->done) {
		pthread_cond_wait(&j->cv, &p->mtx);
	}
	pthread_mutex_unlock(&p->mtx);
	pthread_cond_destroy(&j->cv);
	return j->rv;
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
		set_msg(msg, msglen, "the authority has no HSM configured; no "
		    "quota was spent; tell the OEM");
		return CS_EUNAVAIL;
	}
	if ((rv = cs_hsm_key(p->hsm, sk->label, &k)) != CS_OK) {
		set_msg(msg, msglen, "signing key %s is not usable on the HSM "
		    "(%s); no quota was spent; tell the OEM", sk->label,
		    cs_strerror(rv));
		return CS_EUNAVAIL;
	}
	if (sk->key_id.len != CS_KEY_ID_LEN ||
	    memcmp(sk->key_id.data, k.key_id, CS_KEY_ID_LEN) != 0) {
		cs_log_error(LOG_MOD, "HSM key differs from the registered one "
		    "label=%s", sk->label);
		set_msg(msg, msglen, "signing key %s on the HSM is not the key "
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
	pthread_cond_init(&p->inflight_cv, NULL);
	if (pthread_create(&p->committer, NULL, committer_main, p) != 0) {
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
	write_summaries(p, true); /* what was only counted is not lost */
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
	j.actor = actor_of(actor, sizeof(actor), who);
	j.type  = "sign.refused";
	j.kv    = kv;
	pthread_mutex_lock(&p->mtx);
	p->stats.refusals++;
	metrics_refusal(p, reason);
	pthread_mutex_unlock(&p->mtx);
	if (!audit_limit_admit(p->limit, j.actor, j.type, reason, mono_s())) {
		return rv; /* counted into the interval's summary event */
	}
	if ((arv = submit(p, &j)) == CS_EEXHAUSTED) {
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
		set_msg(msg, msglen, "the authority's store failed; nothing "
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
    bool *done, const char **reason, char *msg, size_t msglen)
{
	StoredDevice *d = NULL;
	store_txn    *txn;
	char          first[STORE_ORDER_ID_MAX + 1];
	int           rv;

	*done = false;
	if ((rv = store_txn_begin(p->st, false, &txn)) != CS_OK) {
		*reason = "store";
		set_msg(msg, msglen, "the authority's store failed (%s); try "
		    "again", cs_strerror(rv));
		return rv;
	}
	/* The station may have been disabled since it authenticated. */
	rv = station_check(txn, r->who.station, msg, msglen);
	if (rv != CS_OK) {
		*reason = rv == CS_EUNAUTH ? "station-disabled" : "store";
		goto out;
	}
	if ((rv = store_order_get(txn, r->order_id, o)) != CS_OK) {
		if (rv == CS_ENOENT) {
			*reason = "unknown-order";
			set_msg(msg, msglen, "order %s is not known to this "
			    "authority; check the order id", r->order_id);
		} else {
			*reason = "store";
			set_msg(msg, msglen, "the authority's store failed (%s); "
			    "try again", cs_strerror(rv));
		}
		goto out;
	}
	rv = order_check(*o, &r->who, r->uid, r->uid_len, reason, msg,
	    msglen);
	if (rv != CS_OK) {
		goto out;
	}
	/* Before the re-issue: another CM must not get this UID's record. */
	rv = clone_check(txn, *o, &r->who, r->uid, r->uid_len, msg, msglen,
	    first, sizeof(first));
	if (rv != CS_OK) {
		*reason = rv == CS_EEXIST ? "clone" : "store";
		goto out;
	}
	rv = store_device_get(txn, r->order_id, r->uid, r->uid_len, &d);
	if (rv == CS_OK) {
		/* Idempotent: the same record again, no quota spent. */
		if (d->record.len == 0 || d->record.len > CS_RECORD_MAX_LEN) {
			rv = CS_ESTORE;
			*reason = "store";
			set_msg(msg, msglen, "the stored record of this UID is "
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
		set_msg(msg, msglen, "the authority's store failed (%s); try "
		    "again", cs_strerror(rv));
		goto out;
	}
	if ((*o)->issued >= (*o)->quota) {
		*reason = "quota";
		set_msg(msg, msglen, "order %s has no quota left: %" PRIu64
		    " of %" PRIu64 " issued", (*o)->order_id, (*o)->issued,
		    (*o)->quota);
		res->remaining = 0;
		rv             = CS_EEXHAUSTED;
		goto out;
	}
	if ((rv = store_key_get(txn, (*o)->key_label, k)) != CS_OK) {
		*reason = "key";
		set_msg(msg, msglen, "signing key %s of order %s is not "
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

	clock_gettime(CLOCK_REALTIME, &until);
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
	int                     rv;

	if (p == NULL || r == NULL || res == NULL) {
		return CS_EINVAL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(res, 0, sizeof(*res));
	if (!req_ok(&r->who, r->order_id, r->uid_len)) {
		set_msg(msg, msglen, "malformed sign request");
		return CS_EINVAL;
	}
	claim = inflight_claim(p, r);
	rv    = sign_checks(p, r, &o, &k, res, &done, &reason, msg, msglen);
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
		rv = pipeline_audit(p, actor_of(actor, sizeof(actor), &r->who),
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
			set_msg(msg, msglen, "the authority's store failed "
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
	if ((rv = next_serial(p, o, &j.serial)) != CS_OK) {
		set_msg(msg, msglen, rv == CS_ENOMEM
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
		set_msg(msg, msglen, "the HSM could not sign (%s); no quota was "
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
	rv       = submit(p, &j);
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
		set_msg(msg, msglen, "malformed report");
		return CS_EINVAL;
	}
	memset(&j, 0, sizeof(j));
	j.kind   = JOB_REPORT;
	j.rreq   = r;
	j.msg    = msg;
	j.msglen = msglen;
	if ((rv = submit(p, &j)) != CS_OK || order_out == NULL) {
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

/* The "reason" of an event's key/value list, or NULL. */
/* The value of key in kv, or NULL. */
static const char *
kv_get(const char *const *kv, const char *key)
{
	for (size_t i = 0; kv != NULL && kv[i] != NULL && kv[i + 1] != NULL;
	     i += 2) {
		if (strcmp(kv[i], key) == 0) {
			return kv[i + 1];
		}
	}
	return NULL;
}

/*
 * What an event is collapsed by, besides actor and type: its reason, and
 * its action when it names one (a console refusal of order.close is not
 * the same story as one of order.quota).
 */
static const char *
kv_group(const char *const *kv, char *buf, size_t len)
{
	const char *reason = kv_get(kv, "reason"), *action = kv_get(kv,
	    "action");

	if (action == NULL) {
		return reason;
	}
	snprintf(buf, len, "%s %s", reason != NULL ? reason : "", action);
	return buf;
}

int
pipeline_audit(pipeline *p, const char *actor, const char *type,
    const char *const *kv)
{
	struct job j;
	char       group[AUDIT_LIMIT_FIELD_MAX];

	if (p == NULL || actor == NULL || type == NULL) {
		return CS_EINVAL;
	}
	if (!audit_limit_admit(p->limit, actor, type, kv_group(kv, group,
	        sizeof(group)), mono_s())) {
		return CS_OK; /* counted into the interval's summary event */
	}
	memset(&j, 0, sizeof(j));
	j.kind  = JOB_AUDIT;
	j.actor = actor;
	j.type  = type;
	j.kv    = kv;
	return submit(p, &j);
}

int
pipeline_station_seen(pipeline *p, const char *station)
{
	struct job j;
	char       actor[STORE_AUDIT_ACTOR_MAX];

	if (p == NULL || station == NULL) {
		return CS_EINVAL;
	}
	memset(&j, 0, sizeof(j));
	j.kind    = JOB_SEEN;
	j.station = station;
	snprintf(actor, sizeof(actor), "station:%s", station);
	j.seen_audit = audit_limit_admit(p->limit, actor,
	    "station.authenticated", NULL, mono_s());
	return submit(p, &j);
}

/* Write the summaries due (all of them with all): one event each. */
static void
write_summaries(pipeline *p, bool all)
{
	struct audit_limit_sum sums[32];
	unsigned               n;

	do {
		uint64_t mono = mono_s(), wall = now_s();
		n = audit_limit_due(p->limit, mono, all, sums, 32);
		for (unsigned i = 0; i < n; i++) {
			char        count[24], since[24], interval[16];
			/* The group is "reason" or "reason action"
			 * (kv_group): written back as the two fields. */
			char       *reason = sums[i].reason;
			char       *action = strchr(reason, ' ');
			const char *kv[12], **k = kv;
			struct job  j;

			if (action != NULL) {
				*action++ = '\0';
			}
			if (reason[0] != '\0') {
				*k++ = "reason", *k++ = reason;
			}
			if (action != NULL) {
				*k++ = "action", *k++ = action;
			}
			*k++ = "collapsed", *k++ = count;
			*k++ = "since_unix_s", *k++ = since;
			*k++ = "interval_s", *k++ = interval;
			*k   = NULL;
			snprintf(count, sizeof(count), "%" PRIu64, sums[i].count);
			/* The interval began this long ago, on the wall. */
			snprintf(since, sizeof(since), "%" PRIu64,
			    wall - (mono - sums[i].since_s));
			snprintf(interval, sizeof(interval), "%u",
			    audit_limit_interval(p->limit));
			memset(&j, 0, sizeof(j));
			j.kind  = JOB_AUDIT;
			j.actor = sums[i].actor;
			j.type  = sums[i].type;
			j.kv    = kv;
			if (submit(p, &j) != CS_OK) {
				cs_log_warn(LOG_MOD, "audit summary not written "
				    "type=%s actor=%s collapsed=%s (the store is "
				    "full or failing)", sums[i].type,
				    sums[i].actor, count);
			}
		}
	} while (n == 32);
}

int
pipeline_set_collapse(pipeline *p, unsigned interval_s)
{
	audit_limit *l;

	if (p == NULL || (l = audit_limit_new(interval_s)) == NULL) {
		return p == NULL ? CS_EINVAL : CS_ENOMEM;
	}
	audit_limit_free(p->limit);
	p->limit            = l;
	return CS_OK;
}

void
pipeline_tick(pipeline *p)
{
	if (p != NULL) {
		write_summaries(p, false);
	}
}

void
pipeline_stats_get(pipeline *p, struct pipeline_stats *out)
{
	pthread_mutex_lock(&p->mtx);
	*out = p->stats;
	pthread_mutex_unlock(&p->mtx);
}
