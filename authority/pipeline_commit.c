/*
 * pipeline_commit.c - the sign pipeline's committer (pipeline.h): the one
 * thread that applies finished jobs (issued records, reports, refusals,
 * stations seen) in grouped write transactions, enforces quota at commit
 * time, and releases the waiting replies only once the batch is durable.
 * Apart from pipeline.c (the read stage, keys, serials and the API) so
 * that the commit stage and its invariants sit in one file.
 */
#include "pipeline_impl.h"

#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"
#include "record_encode.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The committer                                                       */
/* ------------------------------------------------------------------ */

const char *
pipeline_actor_of(char *buf, size_t len, const struct pipeline_who *who)
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
	return store_audit_append(txn, pipeline_actor_of(actor, sizeof(actor),
	    who),
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

	if (p->low || !audit_limit_admit(p->limit, pipeline_actor_of(actor,
	                  sizeof(actor), who), "sign.refused", reason,
	                  pipeline_mono_s())) {
		return CS_OK;
	}
	return audit_refusal(txn, who, order_id, uid, uid_len, reason,
	    message, extra_k, extra_v);
}

/*
 * A device whose record binds an image the officer has replaced gets a
 * record for the current one: same serial, no quota, the old record
 * overwritten (it only ever ran the withdrawn image).  Frees o and d.
 */
static int
apply_resign(store_txn *txn, struct job *j, StoredOrder *o, StoredDevice *d,
    const char *actor, const char *uidhex)
{
	ProtobufCBinaryData old = d->record;
	char                serial[24], fw[2 * CS_SHA256_LEN + 1];
	const char         *kv[] = {"order", o->order_id, "uid", uidhex,
	    "serial", serial, "firmware_sha256", fw, NULL};
	int                 rv;

	snprintf(serial, sizeof(serial), "%" PRIu64, d->serial);
	cs_hex_encode(o->firmware_sha256.data, o->firmware_sha256.len, fw,
	    sizeof(fw));
	d->record.data = j->record;
	d->record.len  = j->record_len;
	if ((rv = store_device_put(txn, d)) == CS_OK) {
		rv = store_audit_append(txn, actor, "device.resigned", kv, NULL);
	}
	d->record = old; /* ours is not the unpacked message's to free */
	if (rv == CS_OK) {
		memcpy(j->sres->record, j->record, j->record_len);
		j->sres->record_len = j->record_len;
		j->sres->serial     = d->serial;
		j->sres->reissued   = false;
		j->sres->remaining  =
		    o->quota > o->issued ? o->quota - o->issued : 0;
		j->rv = CS_OK;
	}
	countersign__v1__stored_device__free_unpacked(d, NULL);
	countersign__v1__stored_order__free_unpacked(o, NULL);
	return rv == CS_EINVAL || rv == CS_ETOOBIG ? CS_ESTORE : rv;
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
	pipeline_actor_of(actor, sizeof(actor), &r->who);
	/* Everything the read stage checked may have changed while the HSM
	 * was signing: the station disabled, the order closed, the last unit
	 * taken, the UID signed by another request. */
	rv = pipeline_station_check(txn, r->who.station, j->msg, j->msglen);
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
		pipeline_set_msg(j->msg, j->msglen, "order %s is not known",
		    r->order_id);
		reason = "unknown-order";
		goto refuse;
	}
	rv = pipeline_order_check(o, &r->who, r->uid, r->uid_len, &reason,
	    j->msg,
	    j->msglen);
	if (rv == CS_OK) {
		/* The officer may have replaced or withdrawn the image
		 * while the HSM signed. */
		rv = pipeline_firmware_check(txn, o, r, &reason, j->msg,
		    j->msglen);
	}
	if (rv != CS_OK) {
		goto refuse;
	}
	rv = pipeline_clone_check(txn, o, &r->who, r->uid, r->uid_len, j->msg,
	    j->msglen, first, sizeof(first));
	if (rv == CS_EEXIST) {
		reason = "clone";
		goto refuse;
	}
	if (rv != CS_OK) {
		goto fatal;
	}
	rv = store_device_get(txn, r->order_id, r->uid, r->uid_len, &d);
	if (rv == CS_OK && j->resign && d->record.len > 0 &&
	    !pipeline_record_current(o, d->record.data, d->record.len)) {
		return apply_resign(txn, j, o, d, actor, uidhex);
	}
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
		        "sign.reissued", NULL, pipeline_mono_s()) &&
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
		pipeline_set_msg(j->msg, j->msglen,
		    "order %s has no quota left: "
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
	dev.issued_unix_s = pipeline_now_s();
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
	const char *prev, *lock, *detail = r->detail;
	char       *prev_detail, *prev_lock;
	uint64_t   *c;
	char        actor[STORE_AUDIT_ACTOR_MAX], uidhex[2 * STORE_UID_MAX + 1];
	int         rv;

	cs_hex_encode(r->uid, r->uid_len, uidhex, sizeof(uidhex));
	rv = pipeline_station_check(txn, r->who.station, j->msg, j->msglen);
	if (rv != CS_OK) {
		j->rv = rv;
		return rv == CS_EUNAUTH ? CS_OK : rv;
	}
	if ((rv = store_order_get(txn, r->order_id, &o)) != CS_OK) {
		if (rv != CS_ENOENT) {
			return rv;
		}
		pipeline_set_msg(j->msg, j->msglen, "order %s is not known",
		    r->order_id);
		j->rv = CS_ENOENT;
		return CS_OK;
	}
	/* A report may come after the order closed or expired: only the
	 * station's right to the order and the UID matter here. */
	if (o->n_cms > 0) {
		StoredOrder tmp = *o;

		tmp.closed         = false;
		tmp.expires_unix_s = 0;
		rv = pipeline_order_check(&tmp, &r->who, r->uid, r->uid_len,
		    &reason,
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
		pipeline_set_msg(j->msg, j->msglen,
		    "UID %s has no record in order %s; "
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
		pipeline_set_msg(j->msg, j->msglen,
		    "UID %s of order %s was issued to "
		    "another CM; a station of CM %s cannot report on it", uidhex,
		    r->order_id, r->who.cm);
		j->rv = CS_EPERM;
		countersign__v1__stored_device__free_unpacked(d, NULL);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return audit_refusal_limited(p, txn, &r->who, r->order_id,
		    r->uid, r->uid_len, "report-other-cm", j->msg, NULL, NULL);
	}
	prev = d->state;
	lock = r->locked ? "locked" : "not-locked";
	/* An order that requires the lock counts a device that left the
	 * line unlocked as failed, whatever else went well. */
	if (r->outcome == PIPELINE_PROGRAMMED && o->require_lock &&
	    !r->locked) {
		state = outcome_state(PIPELINE_FAILED);
		if (r->detail[0] == '\0') {
			detail = "programmed but not locked, and the order "
			         "requires the lock";
		}
	}
	/*
	 * A device's first report is part of its record and always written.
	 * Reports after it are a station's to repeat at will: the same again
	 * changes nothing and writes nothing; a changed one is collapsed
	 * per station (device.reported reason=re-report) and never written
	 * into the reserve.
	 */
	if (state_counter(o, prev) != NULL &&
	    (strcmp(prev, state) == 0 &&
	        strcmp(d->detail != NULL ? d->detail : "", detail) == 0 &&
	        strcmp(d->lock != NULL ? d->lock : "", lock) == 0 &&
	        d->firmware_checked == r->firmware_checked)) {
		countersign__v1__stored_device__free_unpacked(d, NULL);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		j->rv = CS_OK;
		return CS_OK;
	}
	if (state_counter(o, prev) != NULL &&
	    (p->low || !audit_limit_admit(p->limit, pipeline_actor_of(actor,
	                   sizeof(actor), &r->who), "device.reported",
	                   "re-report", pipeline_mono_s()))) {
		countersign__v1__stored_device__free_unpacked(d, NULL);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		pipeline_set_msg(j->msg, j->msglen,
		    "UID %s of order %s was reported "
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
	/* unlocked: devices programmed (counted confirmed) but not locked. */
	if (strcmp(prev, "programmed") == 0 && d->lock != NULL &&
	    strcmp(d->lock, "not-locked") == 0 && o->unlocked > 0) {
		o->unlocked--;
	}
	if (strcmp(state, "programmed") == 0 && !r->locked) {
		o->unlocked++;
	}
	prev_detail = d->detail;
	prev_lock   = d->lock;
	d->state    = (char *)state;
	d->detail   = (char *)detail;
	d->lock     = (char *)lock;
	d->firmware_checked = r->firmware_checked;
	{
		const char *kv[] = {"order", r->order_id, "uid", uidhex,
		    "outcome", state, "previous", prev, "detail", detail,
		    "lock", lock, "firmware_checked",
		    r->firmware_checked ? "yes" : "no", NULL};

		if ((rv = store_device_put(txn, d)) == CS_OK &&
		    (rv = store_order_put(txn, o)) == CS_OK) {
			rv = store_audit_append(txn,
			    pipeline_actor_of(actor, sizeof(actor), &r->who),
			    "device.reported", kv, NULL);
		}
	}
	/* d->state and d->detail point at our strings: the unpacked
	 * message must not free them. */
	d->state  = (char *)prev;
	d->detail = prev_detail;
	d->lock   = prev_lock;
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
	s->last_seen_unix_s = pipeline_now_s();
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
	uint64_t now = pipeline_now_ms(), used, size, map_left, disk_left,
	    reserve;
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
		pipeline_set_msg(j->msg, j->msglen,
		    "the authority's store is full; "
		    "nothing was recorded and no quota spent; " STORE_FULL_TODO);
	} else {
		pipeline_set_msg(j->msg, j->msglen,
		    "the authority's store failed (%s); "
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
			pipeline_metrics_issued(p, j->st_issued);
		}
		if (j->st_refused != 0) {
			pipeline_metrics_refusal(p, j->st_reason);
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

void *
pipeline_committer_main(void *arg)
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
int
pipeline_submit(pipeline *p, struct job *j)
{
	pthread_mutex_lock(&p->mtx);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		pipeline_set_msg(j->msg, j->msglen,
		    "the authority is shutting down; "
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
