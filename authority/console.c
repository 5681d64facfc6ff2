/*
 * console.c - the web console's HTTPS server (console.h, docs/console.md):
 * the listener, the worker pool, the route table and the dispatch that
 * runs every check a route asks for before its handler.
 *
 * Request flow: nng calls on_request() on one of its own threads; that
 * only queues the aio (or answers 503 when the queue is full) so that no
 * nng thread ever waits for LMDB or the HSM.  A worker takes the request,
 * finds its route, checks method, size, type, authentication, CSRF and
 * role in that order, parses the body when the route takes one, runs the
 * handler, and completes the aio with a response whose headers are all
 * constants or values the console made itself.
 *
 * The handlers live by concern (console_impl.h lists the files); the
 * table below is the one place that says which path goes where and what
 * it requires.
 */
#include "console_impl.h"

#include "console_body.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"
#include "cs_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PATH_MAX_LEN 512u

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

void
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

uint16_t
resp_status(int rv)
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


bool
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

void
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

bool
console_read_begin(console *c, store_txn **txn, struct resp *r)
{
	int rv = store_txn_begin(c->st, false, txn);

	if (rv != CS_OK) {
		resp_error(r, 500, "the store cannot be read (%s); see the "
		    "authority's log", cs_strerror(rv));
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Query strings                                                       */
/* ------------------------------------------------------------------ */

/* Decode %XX (and '+' when plus_is_space); false for a bad escape, %00 or
 * too long. */
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

bool
console_query_get(const char *query, const char *name, char *out,
    size_t outlen, bool *bad)
{
	size_t      nl = strlen(name);
	const char *p  = query;

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

bool
console_query_u64(const char *query, const char *name, uint64_t max,
    uint64_t def, uint64_t *out, struct resp *r)
{
	char  v[32];
	bool  bad = false;
	char *end;

	if (!console_query_get(query, name, v, sizeof(v), &bad)) {
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
/* Routes                                                              */
/* ------------------------------------------------------------------ */

#define M_GET  0x1u
#define M_POST 0x2u

/* Who may use a route. */
enum access {
	ACCESS_ANYONE,    /* no sign-in */
	ACCESS_SIGNED_IN, /* a session or a bearer token, any role */
	ACCESS_METRICS,   /* signed in, unless [console] metrics_public */
};

/* What a route changes, and so what it needs besides sign-in. */
enum change {
	CHANGE_NONE,
	CHANGE_SESSION, /* its own session: the session's CSRF token */
	CHANGE_OFFICER, /* orders or stations: CSRF token and role officer */
};

#define ROUTE_BODY  0x1u /* takes a JSON object body (console_body.h) */
#define ROUTE_ASSET 0x2u /* the front end: Cache-Control no-cache, not
                            no-store */

struct route {
	unsigned         methods; /* M_GET or M_POST */
	const char      *path;    /* exact, or with one '*': a non-empty path
	                             segment, URL-decoded, the handler's
	                             q->arg */
	console_handler *handler;
	enum access      access;
	enum change      change;
	const char      *action; /* a refused or failed change is audited
	                            with this action (console.refused) */
	unsigned         flags;  /* ROUTE_BODY, ROUTE_ASSET */
};

/* Every page and API of the console (docs/console.md). */
static const struct route routes[] = {
	{M_GET, "/", console_asset_index, ACCESS_ANYONE, CHANGE_NONE, NULL,
	    ROUTE_ASSET},
	{M_GET, "/app.js", console_asset_js, ACCESS_ANYONE, CHANGE_NONE, NULL,
	    ROUTE_ASSET},
	{M_GET, "/app.css", console_asset_css, ACCESS_ANYONE, CHANGE_NONE,
	    NULL, ROUTE_ASSET},
	{M_GET, "/healthz", console_healthz, ACCESS_ANYONE, CHANGE_NONE, NULL,
	    0},
	{M_GET, "/metrics", console_metrics, ACCESS_METRICS, CHANGE_NONE,
	    NULL, 0},
	{M_POST, "/api/login", console_login, ACCESS_ANYONE, CHANGE_NONE,
	    NULL, ROUTE_BODY},
	{M_POST, "/api/logout", console_logout, ACCESS_SIGNED_IN,
	    CHANGE_SESSION, "logout", 0},
	{M_GET, "/api/me", console_me, ACCESS_SIGNED_IN, CHANGE_NONE, NULL,
	    0},
	{M_GET, "/api/dashboard", console_api_dashboard, ACCESS_SIGNED_IN,
	    CHANGE_NONE, NULL, 0},
	{M_GET, "/api/orders", console_api_orders, ACCESS_SIGNED_IN,
	    CHANGE_NONE, NULL, 0},
	{M_POST, "/api/orders", console_api_order_create, ACCESS_SIGNED_IN,
	    CHANGE_OFFICER, "order.create", ROUTE_BODY},
	{M_GET, "/api/orders/*", console_api_order, ACCESS_SIGNED_IN,
	    CHANGE_NONE, NULL, 0},
	{M_POST, "/api/orders/*/quota", console_api_order_quota,
	    ACCESS_SIGNED_IN, CHANGE_OFFICER, "order.quota", ROUTE_BODY},
	{M_POST, "/api/orders/*/close", console_api_order_close,
	    ACCESS_SIGNED_IN, CHANGE_OFFICER, "order.close", 0},
	{M_GET, "/api/stations", console_api_stations, ACCESS_SIGNED_IN,
	    CHANGE_NONE, NULL, 0},
	{M_POST, "/api/stations/*/enable", console_api_station_enable,
	    ACCESS_SIGNED_IN, CHANGE_OFFICER, "station.enable", 0},
	{M_POST, "/api/stations/*/disable", console_api_station_disable,
	    ACCESS_SIGNED_IN, CHANGE_OFFICER, "station.disable", 0},
	{M_GET, "/api/devices", console_api_devices, ACCESS_SIGNED_IN,
	    CHANGE_NONE, NULL, 0},
	{M_GET, "/api/audit", console_api_audit, ACCESS_SIGNED_IN,
	    CHANGE_NONE, NULL, 0},
	{M_GET, "/api/audit/export", console_api_audit_export,
	    ACCESS_SIGNED_IN, CHANGE_NONE, NULL, 0},
};

/* Does path match pattern?  A '*' matches one non-empty path segment,
 * which is URL-decoded into arg (too long or badly escaped: no match). */
static bool
path_match(const char *pattern, const char *path, char *arg, size_t arglen)
{
	const char *star = strchr(pattern, '*');
	size_t      pre, seg;

	if (star == NULL) {
		return strcmp(pattern, path) == 0;
	}
	pre = (size_t)(star - pattern);
	if (strncmp(path, pattern, pre) != 0) {
		return false;
	}
	path += pre;
	seg = strcspn(path, "/");
	return strcmp(path + seg, star + 1) == 0 &&
	    url_decode(path, seg, arg, arglen, false) && arg[0] != '\0';
}

/*
 * The route for method at path, or NULL.  *allow: the methods of the
 * routes at path, 0 when there is no such path; *asset: whether it is
 * the front end's.
 */
static const struct route *
route_find(const char *path, unsigned method, char *arg, size_t arglen,
    unsigned *allow, bool *asset)
{
	*allow = 0;
	*asset = false;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *rt = &routes[i];

		if (!path_match(rt->path, path, arg, arglen)) {
			continue;
		}
		*allow |= rt->methods;
		*asset = (rt->flags & ROUTE_ASSET) != 0;
		if ((rt->methods & method) != 0) {
			return rt;
		}
	}
	return NULL;
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

/* Does the request at route rt need a signed-in caller? */
static bool
needs_signin(const console *c, const struct route *rt)
{
	return rt->access == ACCESS_SIGNED_IN ||
	    (rt->access == ACCESS_METRICS && !c->metrics_public);
}

static void
handle(console *c, nng_http_req *req, struct resp *r)
{
	const char         *method = nng_http_req_get_method(req);
	const char         *uri    = nng_http_req_get_uri(req);
	const char         *ct = nng_http_req_get_header(req, "Content-Type");
	char                path[PATH_MAX_LEN], arg[STORE_ORDER_ID_MAX + 1];
	const struct route *rt;
	struct console_req  q;
	unsigned            m, allow;
	bool                asset;
	void               *body = NULL;
	size_t              plen, blen = 0;
	json_t             *o = NULL;
	char                err[192];

	memset(&q, 0, sizeof(q));
	plen    = strcspn(uri, "?");
	q.req   = req;
	q.query = uri[plen] == '?' ? uri + plen + 1 : "";
	if (plen >= sizeof(path)) {
		resp_error(r, 404, "no such page");
		return;
	}
	memcpy(path, uri, plen);
	path[plen] = '\0';
	arg[0]     = '\0';
	m  = strcmp(method, "GET") == 0 ? M_GET
	    : strcmp(method, "POST") == 0 ? M_POST
	                                  : 0;
	rt = route_find(path, m, arg, sizeof(arg), &allow, &asset);
	r->api = allow != 0 ? !asset : strncmp(path, "/api/", 5) == 0;
	if (allow == 0) {
		resp_error(r, 404, "no such page or API; see docs/console.md");
		return;
	}
	if (rt == NULL) {
		r->allow = allow == M_GET ? "GET"
		    : allow == M_POST     ? "POST"
		                          : "GET, POST";
		resp_error(r, 405, "this method is not allowed here (use %s)",
		    r->allow);
		return;
	}
	q.arg    = arg;
	q.action = rt->action;
	if (m == M_POST) {
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
	if (needs_signin(c, rt) && !console_authenticate(c, req, &q.who, r)) {
		return;
	}
	if (rt->change != CHANGE_NONE &&
	    !console_may_change(c, req, &q.who, rt->action,
	        rt->change == CHANGE_OFFICER, r)) {
		return;
	}
	if ((rt->flags & ROUTE_BODY) != 0) {
		if ((o = body_parse(body, blen, err, sizeof(err))) == NULL) {
			resp_error(r, 400, "%s", err);
			return;
		}
		q.body = o;
	}
	rt->handler(c, &q, r);
	json_decref(o);
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
