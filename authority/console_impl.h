/*
 * console_impl.h - what the console's files share and nothing else sees:
 * the console struct, who is asking, the request a route handler gets and
 * the response it builds, and the functions one file offers the others.
 *
 * The files, by concern (docs/console.md, "Where things live"):
 *   console.c         listener, worker pool, route table, dispatch,
 *                     responses and query strings
 *   console_auth.c    sign-in, sessions, cookies, CSRF, tokens, audit
 *   console_api.c     the JSON API of orders, stations and devices
 *   console_audit.c   the audit log's page and export
 *   console_ops.c     /healthz and /metrics
 *   console_assets.c  the compiled-in front end
 *   console_body.c    request bodies (console_body.h)
 *
 * Locking: c->mtx guards the queue, the sessions, the /healthz cache, the
 * failed sign-in window, the export flag and the audit check cache.
 */
#ifndef CONSOLE_IMPL_H
#define CONSOLE_IMPL_H

#include "console.h"
#include "cs_crypto.h"
#include "cs_json.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define LOG_MOD "console"

#define WORKERS         4u
#define QUEUE_MAX       64u   /* requests waiting for a worker */
#define SESSIONS_MAX    256u  /* signed-in sessions at once */
#define SECRET_BYTES    32u   /* session ids and CSRF tokens: 256 bits */
#define SECRET_HEX      (2u * SECRET_BYTES)
#define QUERY_VALUE_MAX 256u
#define HSM_CHECK_MS    2000u
#define ACTOR_MAX       (8u + STORE_NAME_MAX + 1u)

struct session {
	bool     used;
	uint8_t  id_hash[CS_SHA256_LEN]; /* SHA-256 of the cookie's id */
	uint8_t  token_hash[CS_SHA256_LEN]; /* the token it was opened with */
	char     csrf[SECRET_HEX + 1];
	char     name[STORE_NAME_MAX + 1];
	char     role[16];
	uint64_t created_s, last_s;
};

struct console {
	nng_http_server  *srv;
	nng_http_handler *h;
	nng_tls_config   *tls;
	nng_url          *url;
	int               port;
	store            *st;
	cs_hsm           *hsm;
	pipeline         *pl;
	sessions         *ss;
	revocation       *rev;
	cs_srv           *stations;
	unsigned          idle_s, max_s;
	char             *data_dir;
	char             *hsm_check_key;

	pthread_mutex_t mtx;
	pthread_cond_t  cv;  /* a request was queued, or stop */
	pthread_cond_t  hcv; /* an HSM check ended */
	nng_aio        *queue[QUEUE_MAX];
	size_t          q_head, q_len;
	bool            stopping;
	pthread_t       workers[WORKERS];
	size_t          n_workers;

	struct session sess[SESSIONS_MAX]; /* under mtx */
	unsigned       hsm_checks;         /* HSM check threads running */
	/* /healthz answers from a check at most HEALTH_MAX_AGE_MS old. */
	int            hz_status;
	char          *hz_body;
	uint64_t       hz_at_ms;           /* start of the last check */
	bool           hz_refreshing;      /* a request is making one */
	uint64_t       hz_hsm_calls;       /* HSM checks made, for /metrics */
	bool           metrics_public;
	uint64_t       fail_window_s;      /* failed sign-ins: window start */
	unsigned       fail_count;         /* ... failures not yet audited */
	bool           exporting;          /* an audit export is running */
	uint64_t       verify_at_s;        /* audit chain check, cached */
	uint64_t       verify_good, verify_first;
	int            verify_rv;
};

/* Who is asking, once authenticated. */
struct who {
	char    name[STORE_NAME_MAX + 1];
	char    role[16];
	uint8_t token_hash[CS_SHA256_LEN];
	char    actor[ACTOR_MAX];
	bool    cookie; /* by session (CSRF applies), not bearer */
	char    csrf[SECRET_HEX + 1];
};

/* A request as a route handler sees it, every check of its route done. */
struct console_req {
	nng_http_req *req;
	const char   *query;  /* after '?', or "" */
	const char   *arg;    /* the path's argument (its '*'), or "" */
	const json_t *body;   /* for routes that take a body, else NULL */
	const char   *action; /* the route's audit action, or NULL */
	struct who    who;    /* zero on routes open to anyone */
};

/* The response being built. */
struct resp {
	uint16_t    status;
	const char *type;        /* Content-Type */
	char       *body;        /* malloc'ed, or NULL */
	size_t      len;
	const void *static_body; /* compiled-in asset, instead of body */
	char        cookie[160]; /* Set-Cookie, or "" */
	const char *disposition; /* Content-Disposition, or NULL */
	const char *allow;       /* Allow (405), or NULL */
	bool        api;         /* Cache-Control: no-store */
};

/* A JSON body being written: begin, fill through j, end. */
struct jbody {
	FILE          *fp;
	struct cs_json j;
};

/* A route's handler (the route table is in console.c). */
typedef void console_handler(console *c, const struct console_req *q,
    struct resp *r);

static inline uint64_t
console_now_s(void)
{
	return (uint64_t)time(NULL);
}

/* console.c: responses, the store, query strings. */

/* Replace r with a JSON error {"error": text}. */
void resp_error(struct resp *r, uint16_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The HTTP status for an error of admin_core or the store. */
uint16_t resp_status(int rv);
/* Start a JSON body (false: r is already a 500). */
bool jbody_begin(struct jbody *b, struct resp *r);
/* Finish it as r with status (or a 500 when it could not be written). */
void jbody_end(struct jbody *b, struct resp *r, uint16_t status);
/* A read transaction, or false with r a 500. */
bool console_read_begin(console *c, store_txn **txn, struct resp *r);
/* The value of parameter name in query (false: absent).  *bad when the
 * value cannot be decoded. */
bool console_query_get(const char *query, const char *name, char *out,
    size_t outlen, bool *bad);
/* An unsigned parameter in [0, max]; absent: def.  false: r is a 400. */
bool console_query_u64(const char *query, const char *name, uint64_t max,
    uint64_t def, uint64_t *out, struct resp *r);

/* console_auth.c: who is asking, and may they. */

/* Authenticate by bearer token or session cookie; false: r is a 401. */
bool console_authenticate(console *c, nng_http_req *req, struct who *w,
    struct resp *r);
/* A change may go ahead: CSRF for sessions and, when officer is set,
 * role officer.  A refusal is audited and r is a 403. */
bool console_may_change(console *c, nng_http_req *req, const struct who *w,
    const char *action, bool officer, struct resp *r);
/* A change that admin_core refused (q->action): audited, reported. */
void console_change_failed(console *c, const struct console_req *q, int rv,
    const char *msg, struct resp *r);
/* Append an audit event through the pipeline's committer (durable). */
void console_audit(console *c, const char *actor, const char *type,
    const char *const *kv);
/* Handlers of POST /api/login, POST /api/logout and GET /api/me. */
console_handler console_login, console_logout, console_me;

/* console_api.c: orders, stations, devices, the dashboard. */

/* What the dashboard and /metrics show: the pipeline's counters (since
 * start) and the store's orders and stations (one read transaction). */
struct console_overview {
	struct pipeline_metrics *m;
	StoredOrder            **orders;
	size_t                   no;
	StoredStation          **stations;
	size_t                   ns;
};

/* Fill v; false with r a 500 (v then holds nothing to free). */
bool console_overview_get(console *c, struct console_overview *v,
    struct resp *r);
void console_overview_free(struct console_overview *v);

console_handler console_api_dashboard, console_api_orders,
    console_api_order, console_api_order_create, console_api_order_quota,
    console_api_order_close, console_api_stations,
    console_api_station_enable, console_api_station_disable,
    console_api_devices;

/* console_audit.c: the audit log. */
console_handler console_api_audit, console_api_audit_export;

/* console_ops.c: for supervisors and Prometheus. */
console_handler console_healthz, console_metrics;

/* console_assets.c: the front end. */
console_handler console_asset_index, console_asset_js, console_asset_css;

#endif /* CONSOLE_IMPL_H */
