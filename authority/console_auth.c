/*
 * console_auth.c - who is asking the console, and may they: admin tokens
 * (bearer or at sign-in), sessions and their cookie, CSRF tokens, the
 * role check of changes, and the audit events all of these write.
 *
 * Sessions live in memory only (a restart signs everyone out), kept as
 * the SHA-256 of their cookie's id, compared in constant time.  A token
 * makes room among its own sessions only.  Failed sign-ins can come from
 * anyone who reaches the port, so they are audited at most once a
 * FAIL_WINDOW_S window, with a count.  POST /api/login, POST /api/logout
 * and GET /api/me are handled here: they are the session's own routes.
 */
#include "console_impl.h"

#include "console_body.h"

#include "admin_core.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SESSIONS_PER_NAME 4u /* per token: its own oldest makes room */
#define FAIL_WINDOW_S     60u /* failed sign-ins: one audit event a window */
#define COOKIE            "__Host-cs_session"
#define COOKIE_LEN        (sizeof(COOKIE) - 1)

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
	uint64_t        now  = console_now_s();
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
	uint64_t now = console_now_s();
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

void
console_audit(console *c, const char *actor, const char *type,
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
	uint64_t now = console_now_s();
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

		console_audit(c, "console", "console.signin.failed", kv);
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

bool
console_authenticate(console *c, nng_http_req *req, struct who *w,
    struct resp *r)
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

/* A refusal is audited as console.refused. */
bool
console_may_change(console *c, nng_http_req *req, const struct who *w,
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
		console_audit(c, w->actor, "console.refused", kv);
		cs_log_warn(LOG_MOD, "change refused action=%s by=%s reason=%s",
		    action, w->actor, why);
		return false;
	}
	return true;
}

void
console_change_failed(console *c, const struct console_req *q, int rv,
    const char *msg, struct resp *r)
{
	const char *kv[] = {"action", q->action, "reason", "rejected",
	    "message", msg, NULL};

	console_audit(c, q->who.actor, "console.refused", kv);
	resp_error(r, resp_status(rv), "%s", msg);
}

/* Who is signed in, and the session's CSRF token (login and me). */
static void
reply_who(const struct who *w, struct resp *r)
{
	struct jbody b;

	if (jbody_begin(&b, r)) {
		cs_json_open(&b.j, NULL);
		cs_json_str(&b.j, "name", w->name);
		cs_json_str(&b.j, "role", w->role);
		cs_json_str(&b.j, "csrf", w->csrf);
		cs_json_close(&b.j);
		jbody_end(&b, r, 200);
	}
}

void
console_me(console *c, const struct console_req *q, struct resp *r)
{
	(void)c;
	reply_who(&q->who, r);
}

void
console_login(console *c, const struct console_req *q, struct resp *r)
{
	static const char *const names[] = {"token", NULL};
	const char *tok = body_str(q->body, "token");
	struct who  w;
	char        id[SECRET_HEX + 1];

	if (body_unknown(q->body, names) != NULL || tok == NULL) {
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
		console_audit(c, w.actor, "console.signin", kv);
	}
	cs_log_info(LOG_MOD, "signed in name=%s role=%s", w.name, w.role);
	/* id is 64 hex digits made here: no request data in the header. */
	snprintf(r->cookie, sizeof(r->cookie), COOKIE "=%s; Path=/; "
	    "HttpOnly; Secure; SameSite=Strict; Max-Age=%u", id, c->max_s);
	cs_wipe(id, sizeof(id));
	reply_who(&w, r);
}

void
console_logout(console *c, const struct console_req *q, struct resp *r)
{
	char id[SECRET_HEX + 1];

	if (q->who.cookie && cookie_id(q->req, id)) {
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
