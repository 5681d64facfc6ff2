/*
 * console.c - the web console's HTTPS server and JSON API (console.h,
 * docs/console.md).
 *
 * Request flow: nng calls on_request() on one of its own threads; that
 * only queues the aio (or answers 503 when the queue is full) so that no
 * nng thread ever waits for LMDB or the HSM.  A worker takes the request,
 * routes it, checks size, type, authentication, CSRF and role in that
 * order, runs it, and completes the aio with a response whose headers
 * are all constants or values this file made itself.
 *
 * Dashboard rate and alerts come from the pipeline's in-memory counters
 * (pipeline_metrics_get): since the authority started; the audit log is
 * the durable record.  Per-order issued counts come from the store.
 */
#include "console.h"

#include "admin_core.h"
#include "admin_format.h"
#include "cs_json.h"
#include "countersign/verify.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"
#include "cs_tls.h"
#include "order_view.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define LOG_MOD "console"

#define WORKERS        4u
#define QUEUE_MAX      64u   /* requests waiting for a worker */
#define SESSIONS_MAX   256u  /* signed-in sessions at once */
#define SESSIONS_PER_NAME 4u /* per token: its own oldest makes room */
#define FAIL_WINDOW_S  60u   /* failed sign-ins: one audit event a window */
#define EXPORT_MAX     200000u /* audit events in one export response */
#define AUDIT_VERIFY_S 10u   /* an audit chain check is reused this long */
#define COOKIE         "__Host-cs_session"
#define COOKIE_LEN     (sizeof(COOKIE) - 1)
#define SECRET_BYTES   32u   /* session ids and CSRF tokens: 256 bits */
#define SECRET_HEX     (2u * SECRET_BYTES)
#define AUDIT_LIMIT_MAX 500u
#define AUDIT_LIMIT_DEF 100u
#define AUDIT_SCAN_MAX 20000u /* events one /api/audit call looks at */
#define QUERY_VALUE_MAX 256u
#define JSON_FIELDS_MAX 16u
#define JSON_ARRAY_MAX  64u
#define HSM_CHECK_MS   2000u
#define ACTOR_MAX      (8u + STORE_NAME_MAX + 1u)

/* The front end, compiled in from authority/console/www by xxd -i. */
extern unsigned char index_html[];
extern unsigned int  index_html_len;
extern unsigned char app_js[];
extern unsigned int  app_js_len;
extern unsigned char app_css[];
extern unsigned int  app_css_len;

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
	uint64_t       hz_at_ms;
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
	char actor[ACTOR_MAX];
	bool cookie; /* by session (CSRF applies), not bearer */
	char csrf[SECRET_HEX + 1];
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

static uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

/* A JSON error {"error": text}. */
static void
resp_error(struct resp *r, uint16_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
resp_error(struct resp *r, uint16_t status, const char *fmt, ...)
{
	char           text[512];
	va_list        ap;
	FILE          *fp;
	struct cs_json j;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	free(r->body);
	r->body   = NULL;
	r->len    = 0;
	r->status = status;
	r->type   = "application/json";
	if ((fp = open_memstream(&r->body, &r->len)) == NULL) {
		return;
	}
	cs_json_init(&j, fp);
	cs_json_open(&j, NULL);
	cs_json_str(&j, "error", text);
	cs_json_close(&j);
	fputc('\n', fp);
	if (fclose(fp) != 0 || cs_json_failed(&j)) {
		free(r->body);
		r->body = NULL;
		r->len  = 0;
	}
}

/* The HTTP status for an error of admin_core or the store. */
static uint16_t
status_of(int rv)
{
	switch (rv) {
	case CS_EINVAL:
		return 400;
	case CS_EPERM:
		return 403;
	case CS_ENOENT:
		return 404;
	case CS_EEXIST:
	case CS_EPRECOND:
		return 409;
	case CS_EEXHAUSTED:
		return 507;
	default:
		return 500;
	}
}

/* A JSON body being written: begin, fill through j, end. */
struct jbody {
	FILE             *fp;
	struct cs_json j;
};

static bool
jbody_begin(struct jbody *b, struct resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len  = 0;
	if ((b->fp = open_memstream(&r->body, &r->len)) == NULL) {
		resp_error(r, 500, "out of memory");
		return false;
	}
	cs_json_init(&b->j, b->fp);
	return true;
}

static void
jbody_end(struct jbody *b, struct resp *r, uint16_t status)
{
	fputc('\n', b->fp);
	if (fclose(b->fp) != 0 || cs_json_failed(&b->j)) {
		free(r->body);
		r->body = NULL;
		resp_error(r, 500, "out of memory");
		return;
	}
	r->status = status;
	r->type   = "application/json";
}

/* ------------------------------------------------------------------ */
/* Request bodies: one JSON object (read by jansson through            */
/* cs_json_parse_object) whose values are strings, integers, booleans, */
/* null or arrays of strings.                                          */
/* ------------------------------------------------------------------ */

/* Parse a request body and check its shape; NULL with err set when it is
 * not what any route accepts. */
static json_t *
body_parse(const char *body, size_t len, char *err, size_t errlen)
{
	json_t     *o = cs_json_parse_object(body, len, 2, err, errlen);
	const char *key;
	json_t     *v, *e;
	size_t      i;

	if (o == NULL) {
		return NULL;
	}
	if (json_object_size(o) > JSON_FIELDS_MAX) {
		snprintf(err, errlen, "malformed JSON: more than %u members",
		    JSON_FIELDS_MAX);
		goto bad;
	}
	json_object_foreach (o, key, v) {
		if (json_is_real(v)) {
			snprintf(err, errlen, "malformed JSON: numbers must be "
			    "integers");
			goto bad;
		}
		if (json_is_object(v)) {
			snprintf(err, errlen, "malformed JSON: \"%.64s\" may "
			    "not be an object", key);
			goto bad;
		}
		if (!json_is_array(v)) {
			continue;
		}
		if (json_array_size(v) > JSON_ARRAY_MAX) {
			snprintf(err, errlen, "malformed JSON: an array longer "
			    "than %u", JSON_ARRAY_MAX);
			goto bad;
		}
		json_array_foreach (v, i, e) {
			if (!json_is_string(e)) {
				snprintf(err, errlen, "malformed JSON: arrays "
				    "may hold strings only");
				goto bad;
			}
		}
	}
	return o;
bad:
	json_decref(o);
	return NULL;
}

/* Every member of o must be one of the NULL-terminated names. */
static const char *
junknown(const json_t *o, const char *const *names)
{
	const char *key;
	json_t     *v;

	json_object_foreach ((json_t *)o, key, v) {
		size_t k;
		for (k = 0; names[k] != NULL; k++) {
			if (strcmp(key, names[k]) == 0) {
				break;
			}
		}
		if (names[k] == NULL) {
			return key;
		}
	}
	return NULL;
}

/* An unsigned integer member in [0, max]; absent: def (or an error when
 * required). */
static bool
juint(const json_t *o, const char *key, uint64_t max, bool required,
    uint64_t def, uint64_t *out, struct resp *r)
{
	const json_t *f = json_object_get(o, key);

	if (f == NULL || json_is_null(f)) {
		if (required) {
			resp_error(r, 400, "\"%s\" is required", key);
			return false;
		}
		*out = def;
		return true;
	}
	if (!json_is_integer(f) || json_integer_value(f) < 0 ||
	    (uint64_t)json_integer_value(f) > max) {
		resp_error(r, 400, "\"%s\" must be an integer 0..%" PRIu64, key,
		    max);
		return false;
	}
	*out = (uint64_t)json_integer_value(f);
	return true;
}

/* A string member, or NULL when absent or not a string. */
static const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ------------------------------------------------------------------ */
/* Sessions and authentication                                         */
/* ------------------------------------------------------------------ */

static bool
random_hex(char out[SECRET_HEX + 1])
{
	uint8_t b[SECRET_BYTES];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		return false;
	}
	cs_hex_encode(b, sizeof(b), out, SECRET_HEX + 1);
	cs_wipe(b, sizeof(b));
	return true;
}

static bool
is_hex64(const char *s, size_t n)
{
	if (n != SECRET_HEX) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (cs_hex_digit((unsigned char)s[i]) < 0) {
			return false;
		}
	}
	return true;
}

/* Is session s expired at now?  c->mtx held. */
static bool
session_expired(const console *c, const struct session *s, uint64_t now)
{
	return now >= s->created_s + c->max_s || now >= s->last_s + c->idle_s;
}

/* A new session for who; the cookie's id into id. */
static int
session_new(console *c, const struct who *w, char id[SECRET_HEX + 1],
    char csrf[SECRET_HEX + 1])
{
	struct session *slot = NULL;
	uint64_t        now  = now_s();
	uint8_t         h[CS_SHA256_LEN];

	if (!random_hex(id) || !random_hex(csrf) ||
	    cs_sha256(id, SECRET_HEX, h) != CS_OK) {
		return CS_ECRYPTO;
	}
	pthread_mutex_lock(&c->mtx);
	{
		struct session *free_slot = NULL, *own_oldest = NULL;
		unsigned        own       = 0;

		for (size_t i = 0; i < SESSIONS_MAX; i++) {
			struct session *s = &c->sess[i];

			if (!s->used || session_expired(c, s, now)) {
				if (free_slot == NULL) {
					free_slot = s;
				}
				continue;
			}
			if (strcmp(s->name, w->name) == 0) {
				own++;
				if (own_oldest == NULL ||
				    s->last_s < own_oldest->last_s) {
					own_oldest = s;
				}
			}
		}
		/* A token makes room among its own sessions only: signing in
		 * never ends somebody else's. */
		slot = own >= SESSIONS_PER_NAME ? own_oldest : free_slot;
	}
	if (slot == NULL) {
		pthread_mutex_unlock(&c->mtx);
		return CS_EUNAVAIL;
	}
	memset(slot, 0, sizeof(*slot));
	slot->used = true;
	memcpy(slot->id_hash, h, sizeof(h));
	memcpy(slot->token_hash, w->token_hash, sizeof(slot->token_hash));
	memcpy(slot->csrf, csrf, SECRET_HEX + 1);
	snprintf(slot->name, sizeof(slot->name), "%s", w->name);
	snprintf(slot->role, sizeof(slot->role), "%s", w->role);
	slot->created_s = slot->last_s = now;
	pthread_mutex_unlock(&c->mtx);
	return CS_OK;
}

/* The cookie __Host-cs_session's value in the Cookie header, if well-formed. */
static bool
cookie_id(nng_http_req *req, char id[SECRET_HEX + 1])
{
	const char *h = nng_http_req_get_header(req, "Cookie");
	const char *p;

	while (h != NULL && (p = strstr(h, COOKIE "=")) != NULL) {
		const char *v = p + COOKIE_LEN + 1;

		if (p == h || p[-1] == ' ' || p[-1] == ';') {
			size_t n = strcspn(v, "; ");
			if (!is_hex64(v, n)) {
				return false;
			}
			memcpy(id, v, SECRET_HEX);
			id[SECRET_HEX] = '\0';
			return true;
		}
		h = v;
	}
	return false;
}

/* Find the session whose id is id; CS_ENOENT, or CS_ETIMEDOUT when it
 * expired (it is then forgotten). */
static int
session_find(console *c, const char *id, struct who *w, bool remove)
{
	uint8_t  h[CS_SHA256_LEN];
	uint64_t now = now_s();
	int      rv  = CS_ENOENT;

	if (cs_sha256(id, SECRET_HEX, h) != CS_OK) {
		return CS_ECRYPTO;
	}
	pthread_mutex_lock(&c->mtx);
	for (size_t i = 0; i < SESSIONS_MAX; i++) {
		struct session *s = &c->sess[i];
		if (!s->used || !cs_ct_equal(s->id_hash, h, sizeof(h))) {
			continue;
		}
		if (session_expired(c, s, now)) {
			memset(s, 0, sizeof(*s));
			rv = CS_ETIMEDOUT;
			break;
		}
		if (w != NULL) {
			snprintf(w->name, sizeof(w->name), "%s", s->name);
			snprintf(w->role, sizeof(w->role), "%s", s->role);
			memcpy(w->csrf, s->csrf, sizeof(w->csrf));
			memcpy(w->token_hash, s->token_hash,
			    sizeof(w->token_hash));
			w->cookie = true;
			snprintf(w->actor, sizeof(w->actor), "console:%s",
			    s->name);
		}
		s->last_s = now;
		if (remove) {
			memset(s, 0, sizeof(*s));
		}
		rv = CS_OK;
		break;
	}
	pthread_mutex_unlock(&c->mtx);
	return rv;
}

/* Append an audit event through the pipeline's committer (durable). */
static void
audit(console *c, const char *actor, const char *type,
    const char *const *kv)
{
	int rv = pipeline_audit(c->pl, actor, type, kv);

	if (rv != CS_OK) {
		cs_log_error(LOG_MOD, "audit event not written type=%s "
		    "actor=%s err=\"%s\"", type, actor, cs_strerror(rv));
	}
}

/*
 * A failed sign-in (or bearer attempt).  Anyone who reaches the port can
 * cause these, so they must not fill the store: the first failure of each
 * FAIL_WINDOW_S window is audited (and logged) with the number of failures
 * since the previous event; the rest are only counted.
 */
static void
failed_signin(console *c, const char *via, const char *why)
{
	uint64_t now = now_s();
	unsigned before;
	bool     write;
	char     n[16];

	pthread_mutex_lock(&c->mtx);
	write = now >= c->fail_window_s + FAIL_WINDOW_S;
	if (write) {
		before           = c->fail_count;
		c->fail_count    = 0;
		c->fail_window_s = now;
	} else {
		before = 0;
		c->fail_count++;
	}
	pthread_mutex_unlock(&c->mtx);
	if (!write) {
		return;
	}
	snprintf(n, sizeof(n), "%u", before);
	{
		const char *kv[] = {"via", via, "reason", why,
		    "failures_not_audited_before", n, NULL};

		audit(c, "console", "console.signin.failed", kv);
	}
	cs_log_warn(LOG_MOD, "sign-in refused via=%s reason=\"%s\" "
	    "earlier_failures=%u (further failures in the next %u s are "
	    "counted, not logged)", via, why, before, FAIL_WINDOW_S);
}

/* Check a presented admin token; fills w.  Failures are audited. */
static int
token_auth(console *c, const char *token, const char *via, struct who *w,
    struct resp *r)
{
	StoredToken *t = NULL;
	int          rv;

	rv = admin_token_lookup(c->st, token, &t);
	if (rv != CS_OK) {
		const char *why = rv == CS_EPERM ? "token disabled"
		    : rv == CS_EINVAL            ? "malformed token"
		    : rv == CS_ENOENT            ? "unknown token"
		                                 : cs_strerror(rv);
		failed_signin(c, via, why);
		if (rv == CS_EINVAL || rv == CS_ENOENT || rv == CS_EPERM) {
			resp_error(r, 401, "this token is not valid; ask an "
			    "officer for one (countersign-admin token create)");
		} else {
			resp_error(r, 500, "cannot check the token (%s); see the "
			    "authority's log", cs_strerror(rv));
		}
		return rv == CS_OK ? CS_EUNAUTH : rv;
	}
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", t->name);
	snprintf(w->role, sizeof(w->role), "%s", t->role);
	snprintf(w->actor, sizeof(w->actor), "console:%s", t->name);
	countersign__v1__stored_token__free_unpacked(t, NULL);
	if (admin_token_hash(token, w->token_hash) != CS_OK) {
		resp_error(r, 500, "cannot hash the token");
		return CS_ECRYPTO;
	}
	return CS_OK;
}

static bool
token_still_valid(console *c, const uint8_t hash[CS_SHA256_LEN])
{
	StoredToken *t = NULL;
	store_txn   *txn;
	bool         ok = false;

	if (store_txn_begin(c->st, false, &txn) != CS_OK) {
		return false;
	}
	if (store_token_get(txn, hash, &t) == CS_OK) {
		ok = !t->disabled;
		countersign__v1__stored_token__free_unpacked(t, NULL);
	}
	store_txn_abort(txn);
	return ok;
}

/* Authenticate by bearer token or session cookie; 401 otherwise. */
static bool
authenticate(console *c, nng_http_req *req, struct who *w, struct resp *r)
{
	const char *auth = nng_http_req_get_header(req, "Authorization");
	char        id[SECRET_HEX + 1];
	int         rv;

	memset(w, 0, sizeof(*w));
	if (auth != NULL) {
		if (strncmp(auth, "Bearer ", 7) != 0) {
			resp_error(r, 401, "use Authorization: Bearer <admin "
			    "token>");
			return false;
		}
		return token_auth(c, auth + 7, "bearer", w, r) == CS_OK;
	}
	if (!cookie_id(req, id)) {
		resp_error(r, 401, "not signed in: sign in with an admin token");
		return false;
	}
	rv = session_find(c, id, w, false);
	/* The token the session was opened with must still be valid: a
	 * disabled token ends its sessions at their next request. */
	if (rv == CS_OK && !token_still_valid(c, w->token_hash)) {
		(void)session_find(c, id, NULL, true);
		rv = CS_EPERM;
	}
	cs_wipe(id, sizeof(id));
	if (rv == CS_ETIMEDOUT) {
		resp_error(r, 401, "the session expired; sign in again");
		return false;
	}
	if (rv == CS_EPERM) {
		resp_error(r, 401, "the token of this session was disabled; "
		    "sign in with a valid token");
		return false;
	}
	if (rv != CS_OK) {
		resp_error(r, 401, "not signed in (unknown session): sign in "
		    "with an admin token");
		return false;
	}
	return true;
}

/* A change may go ahead: CSRF for sessions and, when officer is set, role
 * officer.  A refusal is audited as console.refused. */
static bool
may_change(console *c, nng_http_req *req, const struct who *w,
    const char *action, bool officer, struct resp *r)
{
	const char *why = NULL;

	if (w->cookie) {
		const char *t = nng_http_req_get_header(req, "X-CSRF-Token");
		if (t == NULL || strlen(t) != SECRET_HEX ||
		    !cs_ct_equal(t, w->csrf, SECRET_HEX)) {
			why = "csrf";
			resp_error(r, 403, "missing or wrong X-CSRF-Token: reload "
			    "the page");
		}
	}
	if (why == NULL && officer &&
	    strcmp(w->role, ADMIN_ROLE_OFFICER) != 0) {
		why = "role";
		resp_error(r, 403, "role %s may not change anything; an officer "
		    "token is needed", w->role);
	}
	if (why != NULL) {
		const char *kv[] = {"action", action, "reason", why, NULL};
		audit(c, w->actor, "console.refused", kv);
		cs_log_warn(LOG_MOD, "change refused action=%s by=%s reason=%s",
		    action, w->actor, why);
		return false;
	}
	return true;
}

/* A change that admin_core refused: audited, reported. */
static void
change_failed(console *c, const struct who *w, const char *action, int rv,
    const char *msg, struct resp *r)
{
	const char *kv[] = {"action", action, "reason", "rejected",
	    "message", msg, NULL};

	audit(c, w->actor, "console.refused", kv);
	resp_error(r, status_of(rv), "%s", msg);
}

/* ------------------------------------------------------------------ */
/* Views                                                               */
/* ------------------------------------------------------------------ */

static void
order_json(struct cs_json *j, const StoredOrder *o)
{
	Countersign__V1__OrderStatus os;

	order_view(&os, o);
	cs_json_open(j, NULL);
	cs_json_str(j, "order_id", os.order_id);
	cs_json_u64(j, "product_id", os.product_id);
	cs_json_str(j, "key_label", os.key_label);
	cs_json_u64(j, "quota", os.quota);
	cs_json_u64(j, "issued", os.issued);
	cs_json_u64(j, "confirmed", os.confirmed);
	cs_json_u64(j, "failed", os.failed);
	cs_json_u64(j, "remaining", os.remaining);
	cs_json_u64(j, "uid_len", os.uid_len);
	cs_json_bool(j, "active", os.active);
	cs_json_bool(j, "closed", os.closed);
	cs_json_u64(j, "expires_unix_s", os.expires_unix_s);
	cs_json_array(j, "cms");
	for (size_t i = 0; i < os.n_cms; i++) {
		cs_json_str(j, NULL, os.cms[i]);
	}
	cs_json_end(j);
	cs_json_bytes(j, "firmware_sha256", os.firmware_sha256.data,
	    os.firmware_sha256.len);
	cs_json_u64(j, "created_unix_s", os.created_unix_s);
	cs_json_close(j);
}

static void
station_json(struct cs_json *j, const StoredStation *s, bool full)
{
	cs_json_open(j, NULL);
	cs_json_str(j, "name", s->name);
	cs_json_str(j, "cm", s->cm);
	cs_json_bool(j, "enabled", s->enabled);
	if (full) {
		cs_json_u64(j, "enrolled_unix_s", s->enrolled_unix_s);
	}
	cs_json_u64(j, "last_seen_unix_s", s->last_seen_unix_s);
	cs_json_close(j);
}

/* Reply with one order. */
static void
reply_order(struct resp *r, const StoredOrder *o, uint16_t status)
{
	struct jbody b;

	if (jbody_begin(&b, r)) {
		order_json(&b.j, o);
		jbody_end(&b, r, status);
	}
}

/* ------------------------------------------------------------------ */
/* Query strings                                                       */
/* ------------------------------------------------------------------ */

/* Decode %XX and '+'; false for a bad escape, %00 or too long. */
static bool
url_decode(const char *s, size_t n, char *out, size_t outlen,
    bool plus_is_space)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= n ||
			    (h = cs_hex_digit((unsigned char)s[i + 1])) < 0 ||
			    (l = cs_hex_digit((unsigned char)s[i + 2])) < 0) {
				return false;
			}
			c = h * 16 + l;
			i += 2;
			if (c == 0) {
				return false;
			}
		} else if (c == '+' && plus_is_space) {
			c = ' '; /* in a query string only; '+' is itself in paths */
		}
		if (o + 1 >= outlen) {
			return false;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

/* The value of parameter name in query (NULL: absent).  *bad when the
 * value cannot be decoded. */
static bool
query_get(const char *query, const char *name, char *out, size_t outlen,
    bool *bad)
{
	size_t nl = strlen(name);
	const char *p = query;

	while (p != NULL && *p != '\0') {
		size_t n = strcspn(p, "&");
		if (n > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			if (!url_decode(p + nl + 1, n - nl - 1, out, outlen,
			        true)) {
				*bad = true;
				return false;
			}
			return true;
		}
		p += n;
		if (*p == '&') {
			p++;
		}
	}
	return false;
}

/* An unsigned parameter; absent: def. */
static bool
query_u64(const char *query, const char *name, uint64_t max, uint64_t def,
    uint64_t *out, struct resp *r)
{
	char  v[32];
	bool  bad = false;
	char *end;

	if (!query_get(query, name, v, sizeof(v), &bad)) {
		if (bad) {
			resp_error(r, 400, "parameter %s is malformed", name);
			return false;
		}
		*out = def;
		return true;
	}
	if (v[0] < '0' || v[0] > '9') {
		resp_error(r, 400, "parameter %s must be a number", name);
		return false;
	}
	errno = 0;
	*out  = strtoull(v, &end, 10);
	if (*end != '\0' || errno != 0 || *out > max) {
		resp_error(r, 400, "parameter %s must be a number 0..%" PRIu64,
		    name, max);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Read endpoints                                                      */
/* ------------------------------------------------------------------ */

static bool
read_begin(console *c, store_txn **txn, struct resp *r)
{
	int rv = store_txn_begin(c->st, false, txn);

	if (rv != CS_OK) {
		resp_error(r, 500, "the store cannot be read (%s); see the "
		    "authority's log", cs_strerror(rv));
		return false;
	}
	return true;
}

static void
api_me(const struct who *w, struct resp *r)
{
	struct jbody b;

	if (!jbody_begin(&b, r)) {
		return;
	}
	cs_json_open(&b.j, NULL);
	cs_json_str(&b.j, "name", w->name);
	cs_json_str(&b.j, "role", w->role);
	cs_json_str(&b.j, "csrf", w->csrf);
	cs_json_close(&b.j);
	jbody_end(&b, r, 200);
}

static void
orders_json(struct cs_json *j, StoredOrder **list, size_t n)
{
	cs_json_array(j, "orders");
	for (size_t i = 0; i < n; i++) {
		order_json(j, list[i]);
	}
	cs_json_end(j);
}

static void
api_orders(console *c, struct resp *r)
{
	StoredOrder **list = NULL;
	store_txn    *txn;
	struct jbody  b;
	size_t        n = 0;
	int           rv;

	if (!read_begin(c, &txn, r)) {
		return;
	}
	rv = store_order_list(txn, &list, &n);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		resp_error(r, 500, "cannot list orders (%s)", cs_strerror(rv));
		return;
	}
	if (jbody_begin(&b, r)) {
		cs_json_open(&b.j, NULL);
		orders_json(&b.j, list, n);
		cs_json_close(&b.j);
		jbody_end(&b, r, 200);
	}
	store_order_list_free(list, n);
}

static void
api_order(console *c, const char *id, struct resp *r)
{
	StoredOrder *o = NULL;
	store_txn   *txn;
	int          rv;

	if (!store_id_ok(id, STORE_ORDER_ID_MAX)) {
		resp_error(r, 404, "no such order");
		return;
	}
	if (!read_begin(c, &txn, r)) {
		return;
	}
	rv = store_order_get(txn, id, &o);
	store_txn_abort(txn);
	if (rv == CS_ENOENT) {
		resp_error(r, 404, "no order %s", id);
		return;
	}
	if (rv != CS_OK) {
		resp_error(r, 500, "cannot read the order (%s)", cs_strerror(rv));
		return;
	}
	reply_order(r, o, 200);
	countersign__v1__stored_order__free_unpacked(o, NULL);
}

static void
api_stations(console *c, struct resp *r)
{
	StoredStation **list = NULL;
	store_txn      *txn;
	struct jbody    b;
	size_t          n = 0;
	int             rv;

	if (!read_begin(c, &txn, r)) {
		return;
	}
	rv = store_station_list(txn, &list, &n);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		resp_error(r, 500, "cannot list stations (%s)", cs_strerror(rv));
		return;
	}
	if (jbody_begin(&b, r)) {
		cs_json_open(&b.j, NULL);
		cs_json_array(&b.j, "stations");
		for (size_t i = 0; i < n; i++) {
			station_json(&b.j, list[i], true);
		}
		cs_json_end(&b.j);
		cs_json_close(&b.j);
		jbody_end(&b, r, 200);
	}
	store_station_list_free(list, n);
}

static void
api_dashboard(console *c, struct resp *r)
{
	StoredOrder            **orders   = NULL;
	StoredStation          **stations = NULL;
	struct pipeline_metrics *m;
	store_txn               *txn;
	struct jbody             b;
	size_t                   no = 0, ns = 0;
	uint64_t                 minute = now_s() / 60u, clones = 0;
	int                      rv;

	if ((m = malloc(sizeof(*m))) == NULL) {
		resp_error(r, 500, "out of memory");
		return;
	}
	pipeline_metrics_get(c->pl, m);
	if (!read_begin(c, &txn, r)) {
		free(m);
		return;
	}
	if ((rv = store_order_list(txn, &orders, &no)) != CS_OK ||
	    (rv = store_station_list(txn, &stations, &ns)) != CS_OK) {
		store_txn_abort(txn);
		resp_error(r, 500, "cannot read the store (%s)", cs_strerror(rv));
		goto out;
	}
	store_txn_abort(txn);
	for (size_t i = 0; i < m->n_reasons; i++) {
		if (strcmp(m->refusals[i].reason, "clone") == 0) {
			clones = m->refusals[i].n;
		}
	}
	if (!jbody_begin(&b, r)) {
		goto out;
	}
	cs_json_open(&b.j, NULL);
	orders_json(&b.j, orders, no);
	/* the last 60 minutes, oldest first, the current one last */
	cs_json_array(&b.j, "rate");
	for (uint64_t k = PIPELINE_RATE_MINUTES; k-- > 0;) {
		uint64_t mi   = minute - k;
		size_t   slot = (size_t)(mi % PIPELINE_RATE_MINUTES);

		cs_json_open(&b.j, NULL);
		cs_json_u64(&b.j, "t", mi * 60u);
		cs_json_u64(&b.j, "n",
		    m->rate_minute[slot] == mi ? m->rate_n[slot] : 0);
		cs_json_close(&b.j);
	}
	cs_json_end(&b.j);
	cs_json_array(&b.j, "stations");
	for (size_t i = 0; i < ns; i++) {
		station_json(&b.j, stations[i], false);
	}
	cs_json_end(&b.j);
	cs_json_open(&b.j, "alerts");
	cs_json_u64(&b.j, "clones", clones);
	cs_json_open(&b.j, "refusals");
	for (size_t i = 0; i < m->n_reasons; i++) {
		cs_json_u64(&b.j, m->refusals[i].reason, m->refusals[i].n);
	}
	cs_json_close(&b.j);
	cs_json_close(&b.j);
	cs_json_close(&b.j);
	jbody_end(&b, r, 200);
out:
	store_order_list_free(orders, no);
	store_station_list_free(stations, ns);
	free(m);
}

/* Verify a stored record as a device would: against the order's key and
 * product.  "ok" or the verifier's reason. */
static const char *
device_verify(store_txn *txn, const StoredDevice *d, uint32_t *product)
{
	StoredOrder         *o = NULL;
	StoredKey           *k = NULL;
	struct cs_trust_key  tk;
	struct cs_verify_trust trust;
	uint8_t              pub[CS_P256_POINT_LEN];
	size_t               pub_len = 0;
	cs_alg               alg;
	cs_verify_result     vr;
	const char          *res;

	*product = 0;
	if (store_order_get(txn, d->order_id, &o) != CS_OK) {
		return "order-unknown";
	}
	*product = o->product_id;
	if (store_key_get(txn, o->key_label, &k) != CS_OK) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return "key-unknown";
	}
	if (k->key_id.len != CS_KEY_ID_LEN ||
	    cs_spki_decode(k->public_key_der.data, k->public_key_der.len,
	        &alg, pub, &pub_len) != CS_OK) {
		res = "key-unusable";
		goto out;
	}
	memset(&tk, 0, sizeof(tk));
	tk.alg     = (uint8_t)alg;
	tk.key_id  = k->key_id.data;
	tk.pub     = pub;
	tk.pub_len = pub_len;
	memset(&trust, 0, sizeof(trust));
	trust.keys            = &tk;
	trust.n_keys          = 1;
	trust.product_id      = o->product_id;
	trust.firmware_digest = o->firmware_sha256.len == CS_SHA256_LEN
	    ? o->firmware_sha256.data
	    : NULL;
	vr  = cs_verify_record(d->record.data, d->record.len, d->uid.data,
	    d->uid.len, &trust, NULL);
	res = CS_VERIFY_AUTHORIZED(vr) ? "ok" : cs_verify_name(vr);
out:
	countersign__v1__stored_key__free_unpacked(k, NULL);
	countersign__v1__stored_order__free_unpacked(o, NULL);
	return res;
}

static void
api_devices(console *c, const char *query, struct resp *r)
{
	StoredDevice **list = NULL;
	store_txn     *txn;
	struct jbody   b;
	char           hex[QUERY_VALUE_MAX];
	uint8_t        uid[STORE_UID_MAX];
	size_t         uid_len = 0, n = 0;
	bool           bad     = false;
	int            rv;

	if (!query_get(query, "uid", hex, sizeof(hex), &bad) ||
	    cs_hex_decode(hex, uid, sizeof(uid), &uid_len) != CS_OK) {
		resp_error(r, 400, "give uid=HEX: the device UID, %u..%u bytes "
		    "in hex", STORE_UID_MIN, STORE_UID_MAX);
		return;
	}
	if (!read_begin(c, &txn, r)) {
		return;
	}
	rv = store_device_find(txn, uid, uid_len, &list, &n);
	if (rv != CS_OK && rv != CS_ENOENT) {
		store_txn_abort(txn);
		resp_error(r, 500, "cannot read devices (%s)", cs_strerror(rv));
		return;
	}
	if (rv == CS_ENOENT) {
		n = 0;
	}
	if (jbody_begin(&b, r)) {
		cs_json_open(&b.j, NULL);
		cs_json_array(&b.j, "devices");
		for (size_t i = 0; i < n; i++) {
			const StoredDevice *d = list[i];
			uint32_t            product;
			const char         *v = device_verify(txn, d, &product);

			cs_json_open(&b.j, NULL);
			cs_json_bytes(&b.j, "uid", d->uid.data, d->uid.len);
			cs_json_str(&b.j, "order_id", d->order_id);
			cs_json_u64(&b.j, "product_id", product);
			cs_json_str(&b.j, "station", d->station);
			cs_json_u64(&b.j, "serial", d->serial);
			cs_json_u64(&b.j, "issued_unix_s", d->issued_unix_s);
			cs_json_str(&b.j, "state", d->state);
			cs_json_bytes(&b.j, "record", d->record.data,
			    d->record.len);
			cs_json_str(&b.j, "verify", v);
			cs_json_close(&b.j);
		}
		cs_json_end(&b.j);
		cs_json_close(&b.j);
		jbody_end(&b, r, 200);
	}
	store_txn_abort(txn);
	store_device_list_free(list, n);
}

static const char *
event_field(const StoredAuditEvent *e, const char *key)
{
	for (size_t i = 0; i < e->n_fields; i++) {
		if (strcmp(e->fields[i]->key, key) == 0) {
			return e->fields[i]->value;
		}
	}
	return NULL;
}

static void
event_json(struct cs_json *j, const StoredAuditEvent *e)
{
	cs_json_open(j, NULL);
	cs_json_u64(j, "seq", e->seq);
	cs_json_u64(j, "time_unix_ms", e->time_unix_ms);
	cs_json_str(j, "actor", e->actor);
	cs_json_str(j, "type", e->type);
	cs_json_open(j, "fields");
	for (size_t i = 0; i < e->n_fields; i++) {
		cs_json_str(j, e->fields[i]->key, e->fields[i]->value);
	}
	cs_json_close(j);
	cs_json_bytes(j, "hash", e->hash.data, e->hash.len);
	cs_json_close(j);
}

/*
 * The chain's state for the audit page.  Walking the chain reads every
 * event, so the answer is reused for AUDIT_VERIFY_S seconds: a page that
 * polls cannot keep a read transaction (and the store's old pages) busy.
 */
static int
audit_verified(console *c, uint64_t *good, uint64_t *first)
{
	uint64_t now = now_s();
	int      rv;

	pthread_mutex_lock(&c->mtx);
	if (c->verify_at_s != 0 && now < c->verify_at_s + AUDIT_VERIFY_S) {
		*good = c->verify_good;
		*first = c->verify_first;
		rv = c->verify_rv;
		pthread_mutex_unlock(&c->mtx);
		return rv;
	}
	pthread_mutex_unlock(&c->mtx);
	rv = store_audit_verify(c->st, good, first);
	if (rv == CS_OK || rv == CS_ECRYPTO) {
		pthread_mutex_lock(&c->mtx);
		c->verify_at_s  = now;
		c->verify_good  = *good;
		c->verify_first = *first;
		c->verify_rv    = rv;
		pthread_mutex_unlock(&c->mtx);
	}
	return rv;
}

static void
api_audit(console *c, const char *query, struct resp *r)
{
	char              type[QUERY_VALUE_MAX] = "", actor[QUERY_VALUE_MAX] = "";
	char              order[QUERY_VALUE_MAX] = "";
	bool              has_type, has_actor, has_order, bad = false;
	uint64_t          since_ms, until_ms, after, limit, good = 0, first = 0;
	uint64_t          next, scanned = 0;
	StoredAuditEvent **keep = NULL;
	size_t            nkeep = 0;
	struct jbody      b;
	int               vrv;

	has_type  = query_get(query, "type", type, sizeof(type), &bad);
	has_actor = query_get(query, "actor", actor, sizeof(actor), &bad);
	has_order = query_get(query, "order", order, sizeof(order), &bad);
	if (bad) {
		resp_error(r, 400, "a filter value is malformed or longer than "
		    "%u bytes", QUERY_VALUE_MAX - 1);
		return;
	}
	if (!query_u64(query, "since_ms", UINT64_MAX, 0, &since_ms, r) ||
	    !query_u64(query, "until_ms", UINT64_MAX, UINT64_MAX, &until_ms,
	        r) ||
	    !query_u64(query, "after_seq", UINT64_MAX, 0, &after, r) ||
	    !query_u64(query, "limit", UINT64_MAX, AUDIT_LIMIT_DEF, &limit,
	        r)) {
		return;
	}
	if (limit == 0 || limit > AUDIT_LIMIT_MAX) {
		resp_error(r, 400, "limit must be 1..%u", AUDIT_LIMIT_MAX);
		return;
	}
	if ((keep = calloc(limit, sizeof(*keep))) == NULL) {
		resp_error(r, 500, "out of memory");
		return;
	}
	/* Page through the log after `after`, keeping what matches, until
	 * limit events matched, the log ended or AUDIT_SCAN_MAX were looked
	 * at; next_after_seq lets the caller go on from there. */
	next = after;
	while (nkeep < limit && scanned < AUDIT_SCAN_MAX) {
		StoredAuditEvent **ev = NULL;
		size_t             n  = 0, i;
		int                rv = store_audit_list(c->st, next, 0, &ev, &n);

		if (rv != CS_OK) {
			resp_error(r, 500, "cannot read the audit log (%s)",
			    cs_strerror(rv));
			goto out;
		}
		if (n == 0) {
			store_audit_list_free(ev, n);
			break;
		}
		for (i = 0; i < n && nkeep < limit; i++) {
			StoredAuditEvent *e = ev[i];
			const char       *o = event_field(e, "order");

			next = e->seq;
			scanned++;
			if ((has_type && strcmp(e->type, type) != 0) ||
			    (has_actor && strcmp(e->actor, actor) != 0) ||
			    (has_order && (o == NULL || strcmp(o, order) != 0)) ||
			    e->time_unix_ms < since_ms ||
			    e->time_unix_ms > until_ms) {
				continue;
			}
			keep[nkeep++] = e;
			ev[i]         = NULL;
		}
		for (i = 0; i < n; i++) {
			if (ev[i] != NULL) {
				countersign__v1__stored_audit_event__free_unpacked(
				    ev[i], NULL);
			}
		}
		free(ev);
	}
	vrv = audit_verified(c, &good, &first);
	if (vrv != CS_OK && vrv != CS_ECRYPTO) {
		resp_error(r, 500, "cannot verify the audit log (%s)",
		    cs_strerror(vrv));
		goto out;
	}
	if (!jbody_begin(&b, r)) {
		goto out;
	}
	cs_json_open(&b.j, NULL);
	cs_json_array(&b.j, "events");
	for (size_t i = 0; i < nkeep; i++) {
		event_json(&b.j, keep[i]);
	}
	cs_json_end(&b.j);
	cs_json_u64(&b.j, "next_after_seq", next);
	cs_json_u64(&b.j, "verified_up_to", good);
	cs_json_bool(&b.j, "intact", vrv == CS_OK);
	cs_json_close(&b.j);
	jbody_end(&b, r, 200);
out:
	store_audit_list_free(keep, nkeep);
}

/* One event as countersign-admin audit export writes it. */
static void
export_line(FILE *fp, const StoredAuditEvent *e, bool csv)
{
	char t[ADMIN_TIME_LEN];

	admin_time_iso(e->time_unix_ms, t);
	if (!csv) {
		struct cs_json j;

		cs_json_init(&j, fp);
		cs_json_open(&j, NULL);
		cs_json_u64(&j, "seq", e->seq);
		cs_json_u64(&j, "time_unix_ms", e->time_unix_ms);
		cs_json_str(&j, "time", t);
		cs_json_str(&j, "actor", e->actor);
		cs_json_str(&j, "type", e->type);
		cs_json_open(&j, "fields");
		for (size_t i = 0; i < e->n_fields; i++) {
			cs_json_str(&j, e->fields[i]->key,
			    e->fields[i]->value);
		}
		cs_json_close(&j);
		cs_json_bytes(&j, "prev_hash", e->prev_hash.data,
		    e->prev_hash.len);
		cs_json_bytes(&j, "hash", e->hash.data, e->hash.len);
		cs_json_close(&j);
		fputc('\n', fp);
		return;
	}
	{
		char   *kv = NULL, hx[2 * STORE_HASH_LEN + 1];
		size_t  kvl = 0;
		FILE   *m   = open_memstream(&kv, &kvl);

		if (m != NULL) {
			for (size_t i = 0; i < e->n_fields; i++) {
				admin_csv_kv(m, e->fields[i]->key, e->fields[i]->value,
				    i == 0);
			}
			fclose(m);
		}
		fprintf(fp, "%" PRIu64 ",%s,", e->seq, t);
		admin_csv_field(fp, e->actor, strlen(e->actor));
		fputc(',', fp);
		admin_csv_field(fp, e->type, strlen(e->type));
		fputc(',', fp);
		admin_csv_field(fp, kv != NULL ? kv : "", kv != NULL ? kvl : 0);
		cs_hex_encode(e->prev_hash.data, e->prev_hash.len, hx,
		    sizeof(hx));
		fprintf(fp, ",%s,", hx);
		cs_hex_encode(e->hash.data, e->hash.len, hx, sizeof(hx));
		fprintf(fp, "%s\r\n", hx);
		free(kv);
	}
}

static void
export_done(console *c)
{
	pthread_mutex_lock(&c->mtx);
	c->exporting = false;
	pthread_mutex_unlock(&c->mtx);
}

static void
api_export(console *c, const char *query, struct resp *r)
{
	char     fmt[16], num[32];
	bool     bad = false, csv, busy;
	uint64_t since = 0, count = 0;
	FILE    *fp;

	if (!query_get(query, "format", fmt, sizeof(fmt), &bad) ||
	    (strcmp(fmt, "jsonl") != 0 && strcmp(fmt, "csv") != 0)) {
		resp_error(r, 400, "give format=jsonl or format=csv");
		return;
	}
	if (query_get(query, "after_seq", num, sizeof(num), &bad)) {
		char *end;

		errno = 0;
		since = strtoull(num, &end, 10);
		if (errno != 0 || end == num || *end != '\0' || num[0] == '-') {
			bad = true;
		}
	}
	if (bad) {
		resp_error(r, 400, "after_seq must be a sequence number");
		return;
	}
	csv = strcmp(fmt, "csv") == 0;
	/* The export is built in memory: one at a time, and at most
	 * EXPORT_MAX events per request (continue with after_seq). */
	pthread_mutex_lock(&c->mtx);
	busy = c->exporting;
	c->exporting = true;
	pthread_mutex_unlock(&c->mtx);
	if (busy) {
		resp_error(r, 503, "another audit export is running; try again "
		    "in a moment");
		return;
	}
	free(r->body);
	r->body = NULL;
	if ((fp = open_memstream(&r->body, &r->len)) == NULL) {
		export_done(c);
		resp_error(r, 500, "out of memory");
		return;
	}
	if (csv) {
		fputs("seq,time,actor,type,fields,prev_hash,hash\r\n", fp);
	}
	for (;;) {
		StoredAuditEvent **ev = NULL;
		size_t             n  = 0;
		int                rv = store_audit_list(c->st, since, 0, &ev, &n);

		if (rv != CS_OK) {
			fclose(fp);
			export_done(c);
			resp_error(r, 500, "cannot read the audit log (%s)",
			    cs_strerror(rv));
			return;
		}
		for (size_t i = 0; i < n && count < EXPORT_MAX; i++, count++) {
			export_line(fp, ev[i], csv);
			since = ev[i]->seq;
		}
		store_audit_list_free(ev, n);
		if (n == 0 || count >= EXPORT_MAX) {
			break;
		}
	}
	export_done(c);
	if (fclose(fp) != 0) {
		free(r->body);
		r->body = NULL;
		resp_error(r, 500, "out of memory");
		return;
	}
	r->status      = 200;
	r->type        = csv ? "text/csv; charset=utf-8"
	                     : "application/x-ndjson; charset=utf-8";
	r->disposition = csv ? "attachment; filename=\"audit.csv\""
	                     : "attachment; filename=\"audit.jsonl\"";
}

/* ------------------------------------------------------------------ */
/* Sign-in and changes                                                 */
/* ------------------------------------------------------------------ */

static void
api_login(console *c, const json_t *o, struct resp *r)
{
	static const char *const names[] = {"token", NULL};
	const char  *tok = jstr(o, "token");
	struct who   w;
	char         id[SECRET_HEX + 1];
	struct jbody b;

	if (junknown(o, names) != NULL || tok == NULL) {
		resp_error(r, 400, "send {\"token\": \"<admin token>\"}");
		return;
	}
	if (token_auth(c, tok, "login", &w, r) != CS_OK) {
		return;
	}
	{
		int rv = session_new(c, &w, id, w.csrf);

		if (rv == CS_EUNAVAIL) {
			resp_error(r, 503, "too many console sessions are open; "
			    "sign out elsewhere or try again later");
			return;
		}
		if (rv != CS_OK) {
			resp_error(r, 500, "no random bytes for a session");
			return;
		}
	}
	{
		const char *kv[] = {"via", "login", "role", w.role, NULL};
		audit(c, w.actor, "console.signin", kv);
	}
	cs_log_info(LOG_MOD, "signed in name=%s role=%s", w.name, w.role);
	/* id is 64 hex digits made here: no request data in the header. */
	snprintf(r->cookie, sizeof(r->cookie), COOKIE "=%s; Path=/; "
	    "HttpOnly; Secure; SameSite=Strict; Max-Age=%u", id, c->max_s);
	cs_wipe(id, sizeof(id));
	if (jbody_begin(&b, r)) {
		cs_json_open(&b.j, NULL);
		cs_json_str(&b.j, "name", w.name);
		cs_json_str(&b.j, "role", w.role);
		cs_json_str(&b.j, "csrf", w.csrf);
		cs_json_close(&b.j);
		jbody_end(&b, r, 200);
	}
}

static void
api_logout(console *c, nng_http_req *req, const struct who *w,
    struct resp *r)
{
	char id[SECRET_HEX + 1];

	if (w->cookie && cookie_id(req, id)) {
		session_find(c, id, NULL, true);
		cs_wipe(id, sizeof(id));
	}
	snprintf(r->cookie, sizeof(r->cookie), COOKIE "=; Path=/; "
	    "HttpOnly; Secure; SameSite=Strict; Max-Age=0");
	free(r->body);
	r->body   = NULL;
	r->len    = 0;
	r->status = 204;
	r->type   = "application/json";
}

static void
api_order_create(console *c, const struct who *w, const json_t *o,
    struct resp *r)
{
	static const char *const names[] = {"order_id", "product_id",
	    "key_label", "quota", "uid_len", "cms", "expires_unix_s",
	    "firmware_sha256", NULL};
	Countersign__V1__CreateOrderRequest in =
	    COUNTERSIGN__V1__CREATE_ORDER_REQUEST__INIT;
	const json_t        *cms = json_object_get(o, "cms");
	const char          *bad = junknown(o, names), *fw;
	const char          *cm[JSON_ARRAY_MAX];
	size_t               n_cm = 0;
	StoredOrder         *out = NULL;
	uint8_t              fwd[CS_SHA256_LEN];
	size_t               fwl = 0;
	uint64_t             product, quota, uid_len, expires;
	char                 msg[512];
	int                  rv;

	if (bad != NULL) {
		resp_error(r, 400, "unknown member \"%.64s\"", bad);
		return;
	}
	if (!juint(o, "product_id", UINT32_MAX, true, 0, &product, r) ||
	    !juint(o, "quota", UINT32_MAX, true, 0, &quota, r) ||
	    !juint(o, "uid_len", STORE_UID_MAX, true, 0, &uid_len, r) ||
	    !juint(o, "expires_unix_s", UINT64_MAX, false, 0, &expires, r)) {
		return;
	}
	if (jstr(o, "order_id") == NULL || jstr(o, "key_label") == NULL) {
		resp_error(r, 400, "\"order_id\" and \"key_label\" are required "
		    "strings");
		return;
	}
	if (cms != NULL && !json_is_array(cms) && !json_is_null(cms)) {
		resp_error(r, 400, "\"cms\" must be an array of CM names");
		return;
	}
	for (; json_is_array(cms) && n_cm < json_array_size(cms); n_cm++) {
		cm[n_cm] = json_string_value(json_array_get(cms, n_cm));
	}
	fw = jstr(o, "firmware_sha256");
	if (fw != NULL && fw[0] != '\0' &&
	    (cs_hex_decode(fw, fwd, sizeof(fwd), &fwl) != CS_OK ||
	        fwl != sizeof(fwd))) {
		resp_error(r, 400, "\"firmware_sha256\" must be 64 hex digits");
		return;
	}
	in.order_id             = (char *)jstr(o, "order_id");
	in.key_label            = (char *)jstr(o, "key_label");
	in.product_id           = (uint32_t)product;
	in.quota                = quota;
	in.uid_len              = (uint32_t)uid_len;
	in.expires_unix_s       = expires;
	in.n_cms                = n_cm;
	in.cms                  = n_cm > 0 ? (char **)cm : NULL;
	in.firmware_sha256.data = fwd;
	in.firmware_sha256.len  = fwl;
	rv = admin_order_create(c->st, w->actor, &in, &out, msg, sizeof(msg));
	if (rv != CS_OK) {
		change_failed(c, w, "order.create", rv, msg, r);
		return;
	}
	reply_order(r, out, 201);
	countersign__v1__stored_order__free_unpacked(out, NULL);
}

static void
api_order_quota(console *c, const struct who *w, const char *id,
    const json_t *o, struct resp *r)
{
	static const char *const names[] = {"delta", NULL};
	const json_t        *d   = json_object_get(o, "delta");
	StoredOrder         *out = NULL;
	char                 msg[512];
	int64_t              delta;
	int                  rv;

	if (junknown(o, names) != NULL || !json_is_integer(d) ||
	    json_integer_value(d) == 0 ||
	    json_integer_value(d) > (json_int_t)UINT32_MAX ||
	    json_integer_value(d) < -(json_int_t)UINT32_MAX) {
		resp_error(r, 400, "send {\"delta\": N}: a non-zero change, "
		    "e.g. 100 or -20");
		return;
	}
	delta = (int64_t)json_integer_value(d);
	rv    = admin_order_quota(c->st, w->actor, id, delta, &out, msg,
	       sizeof(msg));
	if (rv != CS_OK) {
		change_failed(c, w, "order.quota", rv, msg, r);
		return;
	}
	reply_order(r, out, 200);
	countersign__v1__stored_order__free_unpacked(out, NULL);
}

static void
api_order_close(console *c, const struct who *w, const char *id,
    struct resp *r)
{
	StoredOrder *out = NULL;
	char         msg[512];
	int          rv;

	rv = admin_order_close(c->st, w->actor, id, &out, msg, sizeof(msg));
	if (rv != CS_OK) {
		change_failed(c, w, "order.close", rv, msg, r);
		return;
	}
	reply_order(r, out, 200);
	countersign__v1__stored_order__free_unpacked(out, NULL);
}

static void
api_station_enable(console *c, const struct who *w, const char *name,
    bool enable, struct resp *r)
{
	StoredStation *s = NULL;
	struct jbody   b;
	char           msg[512];
	int            rv;

	rv = admin_station_set_enabled(c->st, c->ss, c->rev, w->actor, name,
	    enable,
	    &s, msg, sizeof(msg));
	if (rv != CS_OK) {
		change_failed(c, w, enable ? "station.enable" : "station.disable",
		    rv, msg, r);
		return;
	}
	if (jbody_begin(&b, r)) {
		station_json(&b.j, s, true);
		jbody_end(&b, r, 200);
	}
	countersign__v1__stored_station__free_unpacked(s, NULL);
}

/* ------------------------------------------------------------------ */
/* /healthz and /metrics                                               */
/* ------------------------------------------------------------------ */

/*
 * The HSM check runs on a thread of its own so that a hung token costs
 * the request HSM_CHECK_MS, not a worker for ever.  At most one runs at
 * a time; console_close waits for it.
 */
struct hsm_check {
	console *c;
	char     label[STORE_NAME_MAX + 1];
	bool     done, abandoned;
	int      rv;
};

/* c->mtx held. */
static bool
hsm_check_busy(console *c)
{
	return c->hsm_checks > 0;
}

static void *
hsm_check_main(void *arg)
{
	struct hsm_check *h = arg;
	console          *c = h->c;
	struct cs_hsm_key k;
	int               rv = cs_hsm_key(c->hsm, h->label, &k);

	pthread_mutex_lock(&c->mtx);
	h->rv   = rv;
	h->done = true;
	if (h->abandoned) {
		free(h);
	}
	c->hsm_checks--;
	pthread_cond_broadcast(&c->hcv);
	pthread_mutex_unlock(&c->mtx);
	return NULL;
}

#define HEALTH_MAX_AGE_MS 2000u

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void healthz_check(console *c, struct resp *r);

/*
 * /healthz needs no sign-in, so it must cost the HSM nothing per request:
 * the answer comes from a check at most HEALTH_MAX_AGE_MS old, and only
 * one request at a time makes a new one.
 */
static void
healthz(console *c, struct resp *r)
{
	uint64_t now = mono_ms();

	pthread_mutex_lock(&c->mtx);
	if (c->hz_body != NULL && now - c->hz_at_ms < HEALTH_MAX_AGE_MS) {
		r->status = c->hz_status;
		r->body   = strdup(c->hz_body);
		pthread_mutex_unlock(&c->mtx);
		r->type = "text/plain; charset=utf-8";
		r->len  = r->body != NULL ? strlen(r->body) : 0;
		return;
	}
	pthread_mutex_unlock(&c->mtx);
	healthz_check(c, r);
	if (r->body != NULL && (r->status == 200 || r->status == 503)) {
		char *copy = strdup(r->body);
		pthread_mutex_lock(&c->mtx);
		if (copy != NULL) {
			free(c->hz_body);
			c->hz_body   = copy;
			c->hz_status = r->status;
			c->hz_at_ms  = mono_ms();
		}
		pthread_mutex_unlock(&c->mtx);
	}
}

static void
healthz_check(console *c, struct resp *r)
{
	StoredKey       **keys = NULL;
	struct hsm_check *h;
	store_txn        *txn;
	size_t            nk = 0;
	pthread_t         t;
	struct timespec   dl;
	int               rv;

	if ((rv = store_txn_begin(c->st, false, &txn)) != CS_OK) {
		goto store_bad;
	}
	rv = store_key_list(txn, &keys, &nk);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		goto store_bad;
	}
	if (c->hsm == NULL) {
		store_key_list_free(keys, nk);
		r->status = 503;
		r->body   = strdup("unavailable: no HSM configured ([hsm])\n");
		goto text;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		store_key_list_free(keys, nk);
		resp_error(r, 500, "out of memory");
		return;
	}
	h->c = c;
	snprintf(h->label, sizeof(h->label), "%s",
	    nk > 0 ? keys[0]->label : c->hsm_check_key);
	store_key_list_free(keys, nk);
	pthread_mutex_lock(&c->mtx);
	if (hsm_check_busy(c)) {
		pthread_mutex_unlock(&c->mtx);
		free(h);
		r->status = 503;
		r->body   = strdup("unavailable: an earlier HSM check has not "
		      "returned\n");
		goto text;
	}
	c->hsm_checks++;
	c->hz_hsm_calls++;
	pthread_mutex_unlock(&c->mtx);
	if (pthread_create(&t, NULL, hsm_check_main, h) != 0) {
		pthread_mutex_lock(&c->mtx);
		c->hsm_checks--;
		pthread_mutex_unlock(&c->mtx);
		free(h);
		resp_error(r, 500, "cannot start the HSM check");
		return;
	}
	pthread_detach(t);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += HSM_CHECK_MS / 1000u;
	pthread_mutex_lock(&c->mtx);
	while (!h->done) {
		if (pthread_cond_timedwait(&c->hcv, &c->mtx, &dl) != 0 &&
		    !h->done) {
			break;
		}
	}
	if (!h->done) {
		h->abandoned = true; /* the thread frees it */
		pthread_mutex_unlock(&c->mtx);
		r->status = 503;
		r->body   = strdup("unavailable: the HSM did not answer within "
		      "2 s\n");
		goto text;
	}
	rv = h->rv;
	pthread_mutex_unlock(&c->mtx);
	free(h);
	if (rv != CS_OK) {
		char buf[160];
		snprintf(buf, sizeof(buf), "unavailable: HSM key check failed "
		    "(%s)\n", cs_strerror(rv));
		r->status = 503;
		r->body   = strdup(buf);
		goto text;
	}
	r->status = 200;
	r->body   = strdup("ok\n");
	goto text;
store_bad:
	{
		char buf[160];
		snprintf(buf, sizeof(buf), "unavailable: the store cannot be "
		    "read (%s)\n", cs_strerror(rv));
		r->status = 503;
		r->body   = strdup(buf);
	}
text:
	r->type = "text/plain; charset=utf-8";
	r->len  = r->body != NULL ? strlen(r->body) : 0;
}

/* A Prometheus label value: \, " and newline escaped. */
static void
prom_label(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"') {
			fputc('\\', fp);
			fputc(*s, fp);
		} else if (*s == '\n') {
			fputs("\\n", fp);
		} else {
			fputc(*s, fp);
		}
	}
}

static void
metrics(console *c, struct resp *r)
{
	StoredOrder            **orders   = NULL;
	StoredStation          **stations = NULL;
	struct pipeline_metrics *m;
	struct pipeline_stats    ps;
	store_txn               *txn;
	size_t                   no = 0, ns = 0, active = 0;
	uint64_t                 cum;
	struct stat              sb;
	char                     path[4096];
	FILE                    *fp;
	int                      rv;

	if ((m = malloc(sizeof(*m))) == NULL) {
		resp_error(r, 500, "out of memory");
		return;
	}
	pipeline_metrics_get(c->pl, m);
	pipeline_stats_get(c->pl, &ps);
	if (!read_begin(c, &txn, r)) {
		free(m);
		return;
	}
	if ((rv = store_order_list(txn, &orders, &no)) != CS_OK ||
	    (rv = store_station_list(txn, &stations, &ns)) != CS_OK) {
		store_txn_abort(txn);
		resp_error(r, 500, "cannot read the store (%s)", cs_strerror(rv));
		goto out;
	}
	store_txn_abort(txn);
	free(r->body);
	r->body = NULL;
	if ((fp = open_memstream(&r->body, &r->len)) == NULL) {
		resp_error(r, 500, "out of memory");
		goto out;
	}
	fputs("# HELP countersign_records_issued_total Records issued, per "
	      "order (durable, from the store).\n"
	      "# TYPE countersign_records_issued_total counter\n", fp);
	for (size_t i = 0; i < no; i++) {
		fputs("countersign_records_issued_total{order=\"", fp);
		prom_label(fp, orders[i]->order_id);
		fprintf(fp, "\"} %" PRIu64 "\n", orders[i]->issued);
	}
	fputs("# HELP countersign_order_remaining Units an order may still "
	      "issue (quota - issued).\n"
	      "# TYPE countersign_order_remaining gauge\n", fp);
	for (size_t i = 0; i < no; i++) {
		fputs("countersign_order_remaining{order=\"", fp);
		prom_label(fp, orders[i]->order_id);
		fprintf(fp, "\"} %" PRIu64 "\n",
		    orders[i]->quota > orders[i]->issued
		        ? orders[i]->quota - orders[i]->issued : 0);
	}
	{
		uint64_t used = 0, size = 0;
		if (store_space(c->st, &used, &size) == CS_OK) {
			fprintf(fp, "# HELP countersign_store_used_bytes Bytes of "
			    "the store's map in use.\n"
			    "# TYPE countersign_store_used_bytes gauge\n"
			    "countersign_store_used_bytes %" PRIu64 "\n"
			    "# HELP countersign_store_free_bytes Bytes of the map "
			    "left (map_size_mb - used).\n"
			    "# TYPE countersign_store_free_bytes gauge\n"
			    "countersign_store_free_bytes %" PRIu64 "\n", used,
			    size > used ? size - used : 0);
		}
	}
	fputs("# HELP countersign_sign_latency_seconds Time from a sign "
	      "request entering the pipeline to its reply.\n"
	      "# TYPE countersign_sign_latency_seconds histogram\n", fp);
	cum = 0;
	for (size_t i = 0; i < PIPELINE_LATENCY_BUCKETS; i++) {
		cum += m->latency[i];
		fprintf(fp, "countersign_sign_latency_seconds_bucket{le=\"%g\"} "
		    "%" PRIu64 "\n", pipeline_latency_le[i], cum);
	}
	cum += m->latency[PIPELINE_LATENCY_BUCKETS];
	fprintf(fp, "countersign_sign_latency_seconds_bucket{le=\"+Inf\"} "
	    "%" PRIu64 "\n", cum);
	fprintf(fp, "countersign_sign_latency_seconds_sum %.6f\n",
	    m->latency_sum_s);
	fprintf(fp, "countersign_sign_latency_seconds_count %" PRIu64 "\n",
	    m->latency_count);
	fputs("# HELP countersign_refusals_total Sign requests refused since "
	      "start, by reason.\n"
	      "# TYPE countersign_refusals_total counter\n", fp);
	for (size_t i = 0; i < m->n_reasons; i++) {
		fputs("countersign_refusals_total{reason=\"", fp);
		prom_label(fp, m->refusals[i].reason);
		fprintf(fp, "\"} %" PRIu64 "\n", m->refusals[i].n);
	}
	fprintf(fp, "# HELP countersign_hsm_errors_total HSM signing errors "
	    "since start.\n"
	    "# TYPE countersign_hsm_errors_total counter\n"
	    "countersign_hsm_errors_total %" PRIu64 "\n", ps.hsm_errors);
	snprintf(path, sizeof(path), "%s/data.mdb", c->data_dir);
	fprintf(fp, "# HELP countersign_lmdb_bytes Size of the store's data "
	    "file.\n"
	    "# TYPE countersign_lmdb_bytes gauge\n"
	    "countersign_lmdb_bytes %lld\n",
	    stat(path, &sb) == 0 ? (long long)sb.st_size : 0LL);
	for (size_t i = 0; i < ns; i++) {
		active += stations[i]->enabled ? 1u : 0u;
	}
	fprintf(fp, "# HELP countersign_stations_active Enrolled stations that "
	    "are enabled.\n"
	    "# TYPE countersign_stations_active gauge\n"
	    "countersign_stations_active %zu\n", active);
	if (c->stations != NULL) {
		struct cs_srv_stats ss;
		cs_srv_stats(c->stations, &ss);
		fprintf(fp, "# HELP countersign_station_connections Open "
		    "connections on the station port.\n"
		    "# TYPE countersign_station_connections gauge\n"
		    "countersign_station_connections %u\n"
		    "# HELP countersign_station_connections_max The cap in force "
		    "(max_connections, lowered to fit the descriptor limit).\n"
		    "# TYPE countersign_station_connections_max gauge\n"
		    "countersign_station_connections_max %u\n"
		    "# HELP countersign_station_connections_refused_total "
		    "Connections closed at once, by the limit that refused "
		    "them.\n"
		    "# TYPE countersign_station_connections_refused_total "
		    "counter\n"
		    "countersign_station_connections_refused_total"
		    "{limit=\"max_connections\"} %" PRIu64 "\n"
		    "countersign_station_connections_refused_total"
		    "{limit=\"max_connections_per_source\"} %" PRIu64 "\n"
		    "countersign_station_connections_refused_total"
		    "{limit=\"descriptors\"} %" PRIu64 "\n"
		    "# HELP countersign_station_connections_dropped_total "
		    "Connections the authority ended, by cause.\n"
		    "# TYPE countersign_station_connections_dropped_total "
		    "counter\n"
		    "countersign_station_connections_dropped_total"
		    "{cause=\"handshake_timeout\"} %" PRIu64 "\n"
		    "countersign_station_connections_dropped_total"
		    "{cause=\"handshake_failed\"} %" PRIu64 "\n"
		    "countersign_station_connections_dropped_total"
		    "{cause=\"send_timeout\"} %" PRIu64 "\n"
		    "countersign_station_connections_dropped_total"
		    "{cause=\"protocol_error\"} %" PRIu64 "\n",
		    ss.open, ss.max_conns, ss.refused_total, ss.refused_source,
		    ss.refused_fd, ss.handshake_timeouts, ss.handshake_failures,
		    ss.send_timeouts, ss.protocol_errors);
	}
	pthread_mutex_lock(&c->mtx);
	uint64_t hz_calls = c->hz_hsm_calls;
	pthread_mutex_unlock(&c->mtx);
	fprintf(fp, "# HELP countersign_healthz_hsm_checks_total HSM checks "
	    "made for /healthz (at most one per 2 s).\n"
	    "# TYPE countersign_healthz_hsm_checks_total counter\n"
	    "countersign_healthz_hsm_checks_total %" PRIu64 "\n", hz_calls);
	{
		struct cs_tls_gate_stats gs;
		cs_tls_server_limits_stats(&gs);
		fprintf(fp, "# HELP countersign_console_connections Open "
		    "connections on the console port.\n"
		    "# TYPE countersign_console_connections gauge\n"
		    "countersign_console_connections %u\n"
		    "# HELP countersign_console_connections_refused_total "
		    "Console connections refused by a connection cap.\n"
		    "# TYPE countersign_console_connections_refused_total "
		    "counter\n"
		    "countersign_console_connections_refused_total %" PRIu64
		    "\n"
		    "# HELP countersign_console_connections_dropped_total "
		    "Console connections the authority ended, by cause.\n"
		    "# TYPE countersign_console_connections_dropped_total "
		    "counter\n"
		    "countersign_console_connections_dropped_total"
		    "{cause=\"handshake_timeout\"} %" PRIu64 "\n"
		    "countersign_console_connections_dropped_total"
		    "{cause=\"idle_timeout\"} %" PRIu64 "\n",
		    gs.open, gs.refused, gs.timeouts, gs.idle);
	}
	fputs("# HELP countersign_commit_batch_size Jobs committed per LMDB "
	      "write transaction of the pipeline.\n"
	      "# TYPE countersign_commit_batch_size histogram\n", fp);
	cum = 0;
	for (size_t i = 0; i < PIPELINE_BATCH_BUCKETS; i++) {
		cum += m->batch[i];
		fprintf(fp, "countersign_commit_batch_size_bucket{le=\"%" PRIu64
		    "\"} %" PRIu64 "\n", pipeline_batch_le[i], cum);
	}
	cum += m->batch[PIPELINE_BATCH_BUCKETS];
	fprintf(fp, "countersign_commit_batch_size_bucket{le=\"+Inf\"} "
	    "%" PRIu64 "\n", cum);
	fprintf(fp, "countersign_commit_batch_size_sum %" PRIu64 "\n"
	    "countersign_commit_batch_size_count %" PRIu64 "\n", m->batch_sum,
	    m->batch_count);
	if (fclose(fp) != 0) {
		free(r->body);
		r->body = NULL;
		resp_error(r, 500, "out of memory");
		goto out;
	}
	r->status = 200;
	r->type   = "text/plain; version=0.0.4; charset=utf-8";
out:
	store_order_list_free(orders, no);
	store_station_list_free(stations, ns);
	free(m);
}

/* ------------------------------------------------------------------ */
/* Routing                                                             */
/* ------------------------------------------------------------------ */

enum route {
	R_NONE,
	R_INDEX,
	R_JS,
	R_CSS,
	R_HEALTHZ,
	R_METRICS,
	R_LOGIN,
	R_LOGOUT,
	R_ME,
	R_DASHBOARD,
	R_ORDERS,
	R_ORDER,
	R_QUOTA,
	R_CLOSE,
	R_STATIONS,
	R_ENABLE,
	R_DISABLE,
	R_DEVICES,
	R_AUDIT,
	R_EXPORT,
};

#define PATH_MAX_LEN 512u

/* Split "/api/<kind>/<arg>[/<action>]": arg decoded into arg. */
static enum route
route_of(const char *path, char *arg, size_t arglen)
{
	static const struct {
		const char *path;
		enum route  r;
	} fixed[] = {
	    {"/", R_INDEX},
	    {"/app.js", R_JS},
	    {"/app.css", R_CSS},
	    {"/healthz", R_HEALTHZ},
	    {"/metrics", R_METRICS},
	    {"/api/login", R_LOGIN},
	    {"/api/logout", R_LOGOUT},
	    {"/api/me", R_ME},
	    {"/api/dashboard", R_DASHBOARD},
	    {"/api/orders", R_ORDERS},
	    {"/api/stations", R_STATIONS},
	    {"/api/devices", R_DEVICES},
	    {"/api/audit", R_AUDIT},
	    {"/api/audit/export", R_EXPORT},
	};
	const char *rest, *slash;
	bool        orders;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(path, fixed[i].path) == 0) {
			return fixed[i].r;
		}
	}
	if (strncmp(path, "/api/orders/", 12) == 0) {
		orders = true;
		rest   = path + 12;
	} else if (strncmp(path, "/api/stations/", 14) == 0) {
		orders = false;
		rest   = path + 14;
	} else {
		return R_NONE;
	}
	slash = strchr(rest, '/');
	if (!url_decode(rest, slash != NULL ? (size_t)(slash - rest)
	                                    : strlen(rest),
	        arg, arglen, false) ||
	    arg[0] == '\0') {
		return R_NONE;
	}
	if (slash == NULL) {
		return orders ? R_ORDER : R_NONE;
	}
	if (orders && strcmp(slash, "/quota") == 0) {
		return R_QUOTA;
	}
	if (orders && strcmp(slash, "/close") == 0) {
		return R_CLOSE;
	}
	if (!orders && strcmp(slash, "/enable") == 0) {
		return R_ENABLE;
	}
	if (!orders && strcmp(slash, "/disable") == 0) {
		return R_DISABLE;
	}
	return R_NONE;
}

/* Is the request's Content-Type application/json (parameters allowed)? */
static bool
is_json(const char *ct)
{
	size_t n = strlen("application/json");

	while (ct != NULL && (*ct == ' ' || *ct == '\t')) {
		ct++;
	}
	return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void
serve_static(struct resp *r, const void *data, size_t len, const char *type)
{
	r->status      = 200;
	r->type        = type;
	r->static_body = data;
	r->len         = len;
}

static void
handle(console *c, nng_http_req *req, struct resp *r)
{
	const char *method = nng_http_req_get_method(req);
	const char *uri    = nng_http_req_get_uri(req);
	const char *ct     = nng_http_req_get_header(req, "Content-Type");
	char        path[PATH_MAX_LEN], arg[STORE_ORDER_ID_MAX + 1];
	const char *query;
	size_t      plen;
	bool        get, post, want_post;
	void       *body = NULL;
	size_t      blen = 0;
	enum route  rt;
	struct who  w;
	json_t     *o;
	char        err[192];

	o = NULL;
	plen  = strcspn(uri, "?");
	query = uri[plen] == '?' ? uri + plen + 1 : "";
	if (plen >= sizeof(path)) {
		resp_error(r, 404, "no such page");
		return;
	}
	memcpy(path, uri, plen);
	path[plen] = '\0';
	rt         = route_of(path, arg, sizeof(arg));
	r->api     = rt >= R_HEALTHZ || strncmp(path, "/api/", 5) == 0;
	if (rt == R_NONE) {
		resp_error(r, 404, "no such page or API; see docs/console.md");
		return;
	}
	get       = strcmp(method, "GET") == 0;
	post      = strcmp(method, "POST") == 0;
	want_post = rt == R_LOGIN || rt == R_LOGOUT || rt == R_QUOTA ||
	    rt == R_CLOSE || rt == R_ENABLE || rt == R_DISABLE;
	if (rt == R_ORDERS ? !(get || post) : want_post ? !post : !get) {
		r->allow = rt == R_ORDERS ? "GET, POST" : want_post ? "POST"
		                                                    : "GET";
		resp_error(r, 405, "this method is not allowed here (use %s)",
		    r->allow);
		return;
	}
	switch (rt) {
	case R_INDEX:
		serve_static(r, index_html, index_html_len,
		    "text/html; charset=utf-8");
		return;
	case R_JS:
		serve_static(r, app_js, app_js_len,
		    "text/javascript; charset=utf-8");
		return;
	case R_CSS:
		serve_static(r, app_css, app_css_len, "text/css; charset=utf-8");
		return;
	case R_HEALTHZ:
		healthz(c, r);
		return;
	case R_METRICS:
		if (c->metrics_public) {
			metrics(c, r);
			return;
		}
		break; /* after sign-in, below */
	default:
		break;
	}
	if (post) {
		nng_http_req_get_data(req, &body, &blen);
		if (blen > CONSOLE_BODY_MAX) {
			resp_error(r, 413, "the body is larger than %u bytes",
			    CONSOLE_BODY_MAX);
			return;
		}
		if ((ct != NULL || blen > 0) && !is_json(ct)) {
			resp_error(r, 415, "send Content-Type: application/json");
			return;
		}
	}
	if (rt == R_LOGIN) {
		if ((o = body_parse(body, blen, err, sizeof(err))) == NULL) {
			resp_error(r, 400, "%s", err);
			return;
		}
		api_login(c, o, r);
		json_decref(o);
		return;
	}
	if (!authenticate(c, req, &w, r)) {
		return;
	}
	switch (rt) {
	case R_METRICS: /* a viewer's token (Prometheus: authorization) */
		metrics(c, r);
		return;
	case R_ME:
		api_me(&w, r);
		return;
	case R_DASHBOARD:
		api_dashboard(c, r);
		return;
	case R_ORDERS:
		if (get) {
			api_orders(c, r);
			return;
		}
		break;
	case R_ORDER:
		api_order(c, arg, r);
		return;
	case R_STATIONS:
		api_stations(c, r);
		return;
	case R_DEVICES:
		api_devices(c, query, r);
		return;
	case R_AUDIT:
		api_audit(c, query, r);
		return;
	case R_EXPORT:
		api_export(c, query, r);
		return;
	default:
		break;
	}
	/* Changes from here on. */
	if (rt == R_LOGOUT) {
		if (may_change(c, req, &w, "logout", false, r)) {
			api_logout(c, req, &w, r);
		}
		return;
	}
	if (!may_change(c, req, &w,
	        rt == R_ORDERS  ? "order.create"
	        : rt == R_QUOTA ? "order.quota"
	        : rt == R_CLOSE ? "order.close"
	        : rt == R_ENABLE ? "station.enable"
	                         : "station.disable",
	        true, r)) {
		return;
	}
	if (rt == R_ORDERS || rt == R_QUOTA) {
		if ((o = body_parse(body, blen, err, sizeof(err))) == NULL) {
			resp_error(r, 400, "%s", err);
			return;
		}
		if (rt == R_ORDERS) {
			api_order_create(c, &w, o, r);
		} else {
			api_order_quota(c, &w, arg, o, r);
		}
		json_decref(o);
		return;
	}
	if (rt == R_CLOSE) {
		api_order_close(c, &w, arg, r);
	} else {
		api_station_enable(c, &w, arg, rt == R_ENABLE, r);
	}
}

/* ------------------------------------------------------------------ */
/* nng plumbing                                                        */
/* ------------------------------------------------------------------ */

/* Complete aio with r.  Every header value is a constant or made here. */
static void
respond(nng_aio *aio, struct resp *r)
{
	nng_http_res *res;
	int           rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	if ((rv = nng_http_res_set_status(res, r->status)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Type",
	         r->type != NULL ? r->type : "application/json")) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Security-Policy",
	         "default-src 'self'; frame-ancestors 'none'")) != 0 ||
	    (rv = nng_http_res_set_header(res, "X-Content-Type-Options",
	         "nosniff")) != 0 ||
	    (rv = nng_http_res_set_header(res, "Referrer-Policy",
	         "no-referrer")) != 0 ||
	    (rv = nng_http_res_set_header(res, "X-Frame-Options", "DENY")) !=
	        0 ||
	    (rv = nng_http_res_set_header(res, "Cache-Control",
	         r->api ? "no-store" : "no-cache")) != 0 ||
	    (r->cookie[0] != '\0' &&
	        (rv = nng_http_res_set_header(res, "Set-Cookie", r->cookie)) !=
	            0) ||
	    (r->disposition != NULL &&
	        (rv = nng_http_res_set_header(res, "Content-Disposition",
	             r->disposition)) != 0) ||
	    (r->allow != NULL &&
	        (rv = nng_http_res_set_header(res, "Allow", r->allow)) != 0)) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	/* Always a body (possibly empty) so that Content-Length is set:
	 * keep-alive breaks without it. */
	if (r->static_body != NULL) {
		rv = nng_http_res_set_data(res, r->static_body, r->len);
	} else if (r->body == NULL || r->len == 0) {
		/* copy_data of 0 bytes fails in nng 1.5.2 (it cannot
		 * allocate 0 bytes); set_data still sets Content-Length */
		rv = nng_http_res_set_data(res, "", 0);
	} else {
		rv = nng_http_res_copy_data(res, r->body, r->len);
	}
	if (rv != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void
serve(console *c, nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	struct resp   r;

	memset(&r, 0, sizeof(r));
	r.status = 500;
	handle(c, req, &r);
	respond(aio, &r);
	free(r.body);
}

static void *
worker_main(void *arg)
{
	console *c = arg;

	pthread_mutex_lock(&c->mtx);
	for (;;) {
		nng_aio *aio;

		while (c->q_len == 0 && !c->stopping) {
			pthread_cond_wait(&c->cv, &c->mtx);
		}
		if (c->q_len == 0) {
			break;
		}
		aio      = c->queue[c->q_head];
		c->q_head = (c->q_head + 1) % QUEUE_MAX;
		c->q_len--;
		pthread_mutex_unlock(&c->mtx);
		serve(c, aio);
		pthread_mutex_lock(&c->mtx);
	}
	pthread_mutex_unlock(&c->mtx);
	return NULL;
}

/* nng's callback: queue, never block. */
static void
on_request(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	console          *c = nng_http_handler_get_data(h);
	struct resp       r;

	pthread_mutex_lock(&c->mtx);
	if (!c->stopping && c->q_len < QUEUE_MAX) {
		c->queue[(c->q_head + c->q_len) % QUEUE_MAX] = aio;
		c->q_len++;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mtx);
		return;
	}
	pthread_mutex_unlock(&c->mtx);
	memset(&r, 0, sizeof(r));
	r.api = true;
	resp_error(&r, 503, "the console is busy; try again");
	respond(aio, &r);
	free(r.body);
}

int
console_open(console **out, const struct console_opts *o, store *st,
    cs_hsm *hsm, pipeline *pl, sessions *ss)
{
	struct cs_tls_files f;
	nng_sockaddr        sa;
	console            *c;
	int                 rv, nrv;

	*out = NULL;
	if (o == NULL || o->listen == NULL || o->cert == NULL ||
	    o->key == NULL || st == NULL || pl == NULL ||
	    o->session_idle_s == 0 || o->session_max_s == 0) {
		return CS_EINVAL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return CS_ENOMEM;
	}
	pthread_mutex_init(&c->mtx, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->hcv, NULL);
	c->st       = st;
	c->hsm      = hsm;
	c->pl       = pl;
	c->ss       = ss;
	c->rev      = o->rev;
	c->metrics_public = o->metrics_public;
	c->stations = o->stations;
	c->idle_s   = o->session_idle_s;
	c->max_s    = o->session_max_s;
	c->data_dir = strdup(o->data_dir != NULL ? o->data_dir : ".");
	c->hsm_check_key =
	    strdup(o->hsm_check_key != NULL ? o->hsm_check_key : "station-ca");
	if (c->data_dir == NULL || c->hsm_check_key == NULL) {
		rv = CS_ENOMEM;
		goto fail;
	}
	if ((rv = cs_tls_server_limits(&o->limits)) != CS_OK) {
		goto fail;
	}
	memset(&f, 0, sizeof(f));
	f.cert = o->cert;
	f.key  = o->key;
	if ((rv = cs_tls_config_make(&c->tls, NNG_TLS_MODE_SERVER,
	         NNG_TLS_AUTH_MODE_NONE, &f)) != CS_OK) {
		goto fail;
	}
	if ((nrv = nng_url_parse(&c->url, o->listen)) != 0 ||
	    strcmp(c->url->u_scheme, "https") != 0) {
		cs_log_error(LOG_MOD, "bad listen URL url=%s (want "
		    "https://host:port)", o->listen);
		rv = CS_EADDR;
		goto fail;
	}
	for (size_t i = 0; i < WORKERS; i++) {
		if (pthread_create(&c->workers[i], NULL, worker_main, c) != 0) {
			rv = CS_ENOMEM;
			goto fail;
		}
		c->n_workers++;
	}
	if ((nrv = nng_http_server_hold(&c->srv, c->url)) != 0 ||
	    (nrv = nng_http_server_set_tls(c->srv, c->tls)) != 0 ||
	    (nrv = nng_http_handler_alloc(&c->h, "/", on_request)) != 0) {
		goto nng_fail;
	}
	if ((nrv = nng_http_handler_set_method(c->h, NULL)) != 0 ||
	    (nrv = nng_http_handler_set_tree(c->h)) != 0 ||
	    /* nng's own limit (over it: 400) stays above ours (413) */
	    (nrv = nng_http_handler_collect_body(c->h, true,
	         16u * CONSOLE_BODY_MAX)) != 0 ||
	    (nrv = nng_http_handler_set_data(c->h, c, NULL)) != 0 ||
	    (nrv = nng_http_server_add_handler(c->srv, c->h)) != 0) {
		nng_http_handler_free(c->h);
		c->h = NULL;
		goto nng_fail;
	}
	if ((nrv = nng_http_server_start(c->srv)) != 0 ||
	    (nrv = nng_http_server_get_addr(c->srv, &sa)) != 0) {
		goto nng_fail;
	}
	c->port = sa.s_family == NNG_AF_INET6 ? ntohs(sa.s_in6.sa_port)
	                                       : ntohs(sa.s_in.sa_port);
	cs_log_info(LOG_MOD, "listening url=https://%s:%d port=%d",
	    c->url->u_hostname, c->port, c->port);
	*out = c;
	return CS_OK;
nng_fail:
	cs_log_error(LOG_MOD, "cannot serve the console url=%s err=\"%s\"",
	    o->listen, nng_strerror(nrv));
	rv = nrv == NNG_EADDRINUSE || nrv == NNG_EADDRINVAL ? CS_EADDR
	                                                    : CS_EIO;
fail:
	console_close(c);
	return rv;
}

int
console_port(const console *c)
{
	return c != NULL ? c->port : 0;
}

void
console_close(console *c)
{
	if (c == NULL) {
		return;
	}
	/* Stop nng first: requests already queued still get their answer
	 * from the workers, which run until the queue is empty. */
	if (c->srv != NULL) {
		nng_http_server_stop(c->srv);
	}
	pthread_mutex_lock(&c->mtx);
	c->stopping = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mtx);
	for (size_t i = 0; i < c->n_workers; i++) {
		pthread_join(c->workers[i], NULL);
	}
	/* A /healthz HSM check may hang with the HSM: wait a while, then
	 * leave it (and this console's memory, which it still uses) behind
	 * rather than hang the shutdown. */
	pthread_mutex_lock(&c->mtx);
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)(2 * HSM_CHECK_MS / 1000u) + 1;
		while (c->hsm_checks > 0 &&
		    pthread_cond_timedwait(&c->hcv, &c->mtx, &until) == 0) {
		}
		if (c->hsm_checks > 0) {
			pthread_mutex_unlock(&c->mtx);
			cs_log_error(LOG_MOD, "an HSM check is still running at "
			    "shutdown; leaving it");
			return;
		}
	}
	pthread_mutex_unlock(&c->mtx);
	if (c->srv != NULL) {
		nng_http_server_release(c->srv);
	}
	if (c->tls != NULL) {
		nng_tls_config_free(c->tls);
	}
	nng_url_free(c->url);
	cs_wipe(c->sess, sizeof(c->sess));
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->hcv);
	pthread_mutex_destroy(&c->mtx);
	free(c->data_dir);
	free(c->hz_body);
	free(c->hsm_check_key);
	free(c);
}
