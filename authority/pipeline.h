/*
 * pipeline.h - the sign pipeline (DESIGN.md "Authority: store and sign
 * pipeline") and every other change stations make to the store.
 *
 * This is the boundary the design asks for: callers hand in parsed,
 * fixed-size, validated requests (station, CM, order id, UID) and never
 * raw network bytes, so the network side could later move into a
 * sandboxed process that talks to this one.
 *
 * How a signature becomes a record:
 *   1. checks in a read transaction: order known, open, not expired, the
 *      station's CM allowed, UID length and sanity, not a clone, a record
 *      for this UID already in this order (then it is returned again: no
 *      quota spent), quota left;
 *   2. a serial is taken and the record signed by the HSM, on the
 *      caller's thread, so that signatures run in parallel on the shim's
 *      session pool;
 *   3. the job goes to the committer thread, which takes every job that
 *      is waiting, re-checks each against the store inside one write
 *      transaction (quota enforced here: a signature that lost the race
 *      for the last unit is discarded), adds the devices, counters and
 *      audit events, commits with fsync, and only then wakes the callers.
 * Refusals are audited through the same committer, so they are durable
 * before the station hears about them.
 */
#ifndef PIPELINE_H
#define PIPELINE_H

#include "countersign/record.h"
#include "cs_auth.h"
#include "cs_hsm.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pipeline pipeline;

/* Who is asking: an authenticated station. */
struct pipeline_who {
	char station[CS_AUTH_NAME_MAX + 1];
	char cm[CS_AUTH_NAME_MAX + 1];
};

struct pipeline_sign_req {
	struct pipeline_who who;
	char                order_id[STORE_ORDER_ID_MAX + 1];
	uint8_t             uid[STORE_UID_MAX];
	size_t              uid_len;
	/* SHA-256 of the firmware the station will program (0 or 32 bytes):
	 * must equal the order's digest when the order binds one. */
	uint8_t             firmware_sha256[CS_SHA256_LEN];
	size_t              firmware_sha256_len;
};

struct pipeline_sign_res {
	uint8_t  record[CS_RECORD_MAX_LEN];
	size_t   record_len;
	uint64_t serial;
	bool     reissued;
	uint64_t remaining;
};

enum pipeline_outcome {
	PIPELINE_PROGRAMMED = 1,
	PIPELINE_FAILED,
	PIPELINE_VERIFY_FAILED,
};

struct pipeline_report_req {
	struct pipeline_who   who;
	char                  order_id[STORE_ORDER_ID_MAX + 1];
	uint8_t               uid[STORE_UID_MAX];
	size_t                uid_len;
	enum pipeline_outcome outcome;
	char                  detail[256];
	bool                  locked;           /* lock applied, verified */
	bool                  firmware_checked; /* image matched the digest */
};

struct pipeline_stats {
	uint64_t records_issued;
	uint64_t records_reissued;
	uint64_t refusals;
	uint64_t commits;
	uint64_t commit_batch_max;
	uint64_t hsm_signatures;
	uint64_t hsm_errors;
	uint64_t signatures_discarded;
};

/*
 * What the console's dashboard and /metrics show, counted since start (in
 * memory: a restart begins again at zero; the audit log keeps the durable
 * story).  Histogram buckets are per bucket, not cumulative.
 */
#define PIPELINE_RATE_MINUTES   60u /* records per minute, last hour */
#define PIPELINE_REASONS_MAX    16u /* distinct refusal reasons kept */
#define PIPELINE_LATENCY_BUCKETS 12u
#define PIPELINE_BATCH_BUCKETS   10u

/* Upper bounds of the buckets (seconds; jobs per commit); a last, +Inf
 * bucket follows each. */
extern const double   pipeline_latency_le[PIPELINE_LATENCY_BUCKETS];
extern const uint64_t pipeline_batch_le[PIPELINE_BATCH_BUCKETS];

struct pipeline_metrics {
	/* records issued in the minute starting at rate_minute[i] * 60
	 * (unix time); slot = minute % PIPELINE_RATE_MINUTES */
	uint64_t rate_minute[PIPELINE_RATE_MINUTES];
	uint64_t rate_n[PIPELINE_RATE_MINUTES];
	/* sign refusals by reason ("clone", "quota", ...: static strings) */
	struct {
		const char *reason;
		uint64_t    n;
	} refusals[PIPELINE_REASONS_MAX];
	size_t n_reasons;
	/* pipeline_sign calls, from entry to return */
	uint64_t latency[PIPELINE_LATENCY_BUCKETS + 1];
	double   latency_sum_s;
	uint64_t latency_count;
	/* jobs per commit transaction */
	uint64_t batch[PIPELINE_BATCH_BUCKETS + 1];
	uint64_t batch_sum;
	uint64_t batch_count;
};

/*
 * Start the pipeline over an open store and HSM (h may be NULL: every
 * signature then fails UNAVAILABLE).  actor prefix for audit events is
 * "station:<name>".  Errors: CS_EINVAL, CS_ENOMEM.
 */
int pipeline_open(pipeline **out, store *st, cs_hsm *h);

/* Stop the committer after the jobs already queued; NULL-safe.  No call
 * may be running. */
void pipeline_close(pipeline *p);

/*
 * Sign: returns CS_OK with *res filled, or an error with a message for
 * the station in msg (what was wrong and what to do): CS_ENOENT (unknown
 * order), CS_EPRECOND (closed or expired order), CS_EPERM (station's CM
 * not allowed), CS_EINVAL (UID length or value), CS_EEXIST (UID signed
 * under another order: cloning signal), CS_EEXHAUSTED (quota used up;
 * res->remaining 0) or the store is full, CS_EUNAVAIL (HSM unavailable),
 * CS_ESTORE/CS_EIO.  Every refusal is audited.
 */
int pipeline_sign(pipeline *p, const struct pipeline_sign_req *req,
    struct pipeline_sign_res *res, char *msg, size_t msglen);

/*
 * Report how programming a device ended; updates the device's state and
 * the order's confirmed/failed counters.  *order_out (may be NULL) gets
 * the order as it is after the report (free with
 * countersign__v1__stored_order__free_unpacked).  Errors as pipeline_sign
 * plus CS_ENOENT when this UID has no record in this order.
 */
int pipeline_report(pipeline *p, const struct pipeline_report_req *req,
    StoredOrder **order_out, char *msg, size_t msglen);

/*
 * Append one audit event through the committer (durable when this
 * returns CS_OK).  kv as store_audit_append.
 */
int pipeline_audit(pipeline *p, const char *actor, const char *type,
    const char *const *kv);

/* Record that a station authenticated: last_seen and an audit event. */
int pipeline_station_seen(pipeline *p, const char *station);

/*
 * Events that stations cause as often as they like (auth.refused,
 * sign.refused, sign.reissued, station.authenticated) go
 * through audit_limit.h: per actor, type and reason the first of each
 * interval is written, the rest are counted into one summary event
 * (fields collapsed, since_unix_s, interval_s).  pipeline_tick writes the
 * summaries due; call it about once a second.  pipeline_close writes the
 * pending ones.
 */
void pipeline_tick(pipeline *p);

/* The interval of that collapsing ([limits] audit_collapse_s); call
 * before the first request.  0 keeps AUDIT_LIMIT_INTERVAL_S. */
int pipeline_set_collapse(pipeline *p, unsigned interval_s);

/*
 * The store's reserve: when less than pipeline_reserve_bytes(map size)
 * is left in the map or free on data_dir's filesystem, only device
 * commits (and their events) are written; other events are refused with
 * CS_EEXHAUSTED and authentications no longer update last_seen.  5 % of
 * the map, at least PIPELINE_RESERVE_MIN, at most a quarter of it.
 */
#define PIPELINE_RESERVE_MIN (256u * 1024u)
uint64_t pipeline_reserve_bytes(uint64_t map_size);

/* A snapshot of the counters. */
void pipeline_stats_get(pipeline *p, struct pipeline_stats *out);

/* A snapshot of the console's metrics. */
void pipeline_metrics_get(pipeline *p, struct pipeline_metrics *out);

/* Forget the cached HSM key of label (after the key was re-registered). */
void pipeline_forget_key(pipeline *p, const char *label);

#endif /* PIPELINE_H */
