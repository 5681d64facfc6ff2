/*
 * pipeline_impl.h - private to the sign pipeline: the job queue, the
 * pipeline struct, and what pipeline.c (the read stage, keys, serials and
 * the API) and pipeline_commit.c (the committer) offer each other.  Not
 * for callers of the pipeline: they use pipeline.h only.
 */
#ifndef PIPELINE_IMPL_H
#define PIPELINE_IMPL_H

#include "pipeline.h"

#include "audit_limit.h"
#include "cs_crypto.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	bool                            resign; /* replaces a stale record */
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
#define PIPELINE_INFLIGHT_MAX    512u
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

/* Say what went wrong in msg (len bytes; msg may be NULL). */
void pipeline_set_msg(char *msg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Wall-clock seconds; monotonic milliseconds and seconds. */
uint64_t pipeline_now_s(void);
uint64_t pipeline_now_ms(void);
uint64_t pipeline_mono_s(void);

/* Count a sign refusal by reason, and n records issued; p->mtx held. */
void pipeline_metrics_refusal(pipeline *p, const char *reason);
void pipeline_metrics_issued(pipeline *p, uint64_t n);

/*
 * May station who use order o for this UID?  *reason gets a short word
 * for the audit log; msg what the station is told.
 */
int pipeline_order_check(const StoredOrder *o,
    const struct pipeline_who *who, const uint8_t *uid, size_t uid_len,
    const char **reason, char *msg, size_t msglen);

/*
 * Will the device run what the station programs?  When order o binds a
 * firmware digest, the request must carry the same digest (CS_EPRECOND
 * otherwise: every device of this station would be refused at boot, so
 * nothing is signed and no quota spent); a held image the officer
 * withdrew stops new devices (CS_EPRECOND).  *reason and msg as
 * pipeline_order_check.
 */
/*
 * Does the stored record rec bind the firmware order o binds now?  False
 * only when o binds a digest and rec binds none or another (the officer
 * replaced the image after rec was signed): the device then gets a new
 * record for the same serial (re-signed, no quota spent).
 */
bool pipeline_record_current(const StoredOrder *o, const uint8_t *rec,
    size_t rec_len);

int pipeline_firmware_check(store_txn *txn, const StoredOrder *o,
    const struct pipeline_sign_req *r, const char **reason, char *msg,
    size_t msglen);

/*
 * A UID first seen for this product under another order, or in this
 * order by a station of another CM: a clone (CS_EEXIST; first_order gets
 * the order it was first seen in).
 */
int pipeline_clone_check(store_txn *txn, const StoredOrder *o,
    const struct pipeline_who *who, const uint8_t *uid, size_t uid_len,
    char *msg, size_t msglen, char *first_order, size_t first_len);

/* Is the station still enrolled and enabled?  CS_OK, CS_EUNAUTH or a
 * store error. */
int pipeline_station_check(store_txn *txn, const char *station, char *msg,
    size_t msglen);

/* The audit actor of who ("station:<name>"), in buf. */
const char *pipeline_actor_of(char *buf, size_t len,
    const struct pipeline_who *who);

/* Write the collapsed refusal counts that are due (all: every one). */
void pipeline_write_summaries(pipeline *p, bool all);

/* The committer thread (arg: the pipeline). */
void *pipeline_committer_main(void *arg);

/* Queue j and wait until its batch has committed (or failed). */
int pipeline_submit(pipeline *p, struct job *j);

#endif /* PIPELINE_IMPL_H */
