/*
 * console_test.c - the authority's web console end to end: a real
 * authority process (SoftHSM token, LMDB, TLS) with a [console] section,
 * admin tokens made with countersign-admin, and an HTTPS client built
 * from nng's HTTP client over the project's wolfSSL engine, checking the
 * server certificate against the test CA.
 *
 * Every endpoint of docs/console.md is called, with the refusals that
 * matter: no or bad credentials (401), expired session, missing or wrong
 * CSRF token and viewer role (403, audited), malformed JSON (400),
 * oversized body (413), wrong Content-Type (415), unknown path (404) and
 * wrong method (405).  The tests run in order against one authority.
 */
#include "countersign/v1/authority.pb-c.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_rpc.h"
#include "cs_tls.h"
#include "station_config.h"
#include "station_fixture.h"
#include "station_session.h"
#include "test_util.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define TOKEN   "authority"
#define PIN     "123456"
#define KEY     "oem-p256"
#define PRODUCT 4242u
#define UIDLEN  12u
#define IDLE_S  4u

struct fx {
	char *dir;
	char  authority[512], admin[512], station[512], keytool[512];
	char  conf[600], log[600], sock[600], data[600];
	char  out[16384];
	pid_t pid;
	int   port, web_port;
	char  officer[65], viewer[65];
	nng_http_client *client;
	nng_http_conn   *conn; /* one keep-alive connection */
	nng_tls_config  *tls;
};

/* One HTTP exchange's answer. */
struct hres {
	int           status;
	char         *body; /* NUL-terminated copy */
	size_t        len;
	nng_http_res *res;
};

#define run(f, ...) tu_runl((f)->out, sizeof((f)->out), __VA_ARGS__)
#define ADMIN(f, ...) run(f, (f)->admin, "-c", (f)->conf, __VA_ARGS__, NULL)
#define STATION(f, conf, ...)                                                 \
	run(f, (f)->station, "-c", conf, __VA_ARGS__, NULL)
#define expect(f, got, want, needle)                                         \
	tu_expect((f)->out, (got), (want), (needle))

/* ------------------------------------------------------------------ */
/* HTTPS client                                                        */
/* ------------------------------------------------------------------ */

static void
hres_free(struct hres *h)
{
	free(h->body);
	if (h->res != NULL) {
		nng_http_res_free(h->res);
	}
	memset(h, 0, sizeof(*h));
}

static const char *
hdr(struct hres *h, const char *name)
{
	return nng_http_res_get_header(h->res, name);
}

/*
 * method path; body of blen bytes with Content-Type ctype (NULL: none);
 * extra headers as name, value pairs ending with NULL.
 */
static void
http(struct fx *f, struct hres *h, const char *method, const char *path,
    const char *ctype, const void *body, size_t blen, ...)
{
	nng_http_req *req = NULL;
	nng_aio      *aio = NULL;
	nng_url      *url = NULL;
	char          u[128];
	void         *data;
	size_t        dlen;
	va_list       ap;
	const char   *k;

	memset(h, 0, sizeof(*h));
	snprintf(u, sizeof(u), "https://127.0.0.1:%d%s", f->web_port, path);
	assert_int_equal(nng_url_parse(&url, u), 0);
	assert_int_equal(nng_http_req_alloc(&req, url), 0);
	assert_int_equal(nng_http_req_set_method(req, method), 0);
	if (ctype != NULL) {
		assert_int_equal(nng_http_req_set_header(req, "Content-Type",
		    ctype), 0);
	}
	va_start(ap, blen);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		assert_int_equal(nng_http_req_set_header(req, k, v), 0);
	}
	va_end(ap);
	if (blen > 0) {
		assert_int_equal(nng_http_req_copy_data(req, body, blen), 0);
	} else if (strcmp(method, "POST") == 0) {
		/* Content-Length: 0 (copy_data cannot copy 0 bytes) */
		assert_int_equal(nng_http_req_set_data(req, "", 0), 0);
	}
	assert_int_equal(nng_http_res_alloc(&h->res), 0);
	assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
	nng_aio_set_timeout(aio, 20000);
	if (f->conn == NULL) {
		nng_http_client_connect(f->client, aio);
		nng_aio_wait(aio);
		assert_int_equal(nng_aio_result(aio), 0);
		f->conn = nng_aio_get_output(aio, 0);
	}
	/*
	 * One keep-alive connection for every request, as a browser does:
	 * nng's client_transact (a connection per request, closed after
	 * the answer) lost answers now and then in this setup.
	 */
	nng_http_conn_transact(f->conn, req, h->res, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0) {
		fprintf(stderr, "%s %s: %s\n", method, path,
		    nng_strerror(nng_aio_result(aio)));
		fail();
	}
	nng_aio_free(aio);
	nng_http_req_free(req);
	nng_url_free(url);
	h->status = nng_http_res_get_status(h->res);
	nng_http_res_get_data(h->res, &data, &dlen);
	h->body = malloc(dlen + 1);
	assert_non_null(h->body);
	if (dlen > 0) {
		memcpy(h->body, data, dlen);
	}
	h->body[dlen] = '\0';
	h->len        = dlen;
}

#define GET(f, h, path, ...) http(f, h, "GET", path, NULL, NULL, 0, __VA_ARGS__)
#define JSON "application/json"

/* Expect status and (when not NULL) a substring of the body. */
static void
want(struct hres *h, int status, const char *needle)
{
	if (h->status != status ||
	    (needle != NULL && strstr(h->body, needle) == NULL)) {
		fprintf(stderr, "got %d %s\nwanted %d with \"%s\"\n", h->status,
		    h->body, status, needle != NULL ? needle : "");
		fail();
	}
}

static char bearer_officer[80], bearer_viewer[80];

/* The security headers every response carries. */
static void
check_security_headers(struct hres *h)
{
	assert_string_equal(hdr(h, "Content-Security-Policy"),
	    "default-src 'self'; frame-ancestors 'none'");
	assert_string_equal(hdr(h, "X-Content-Type-Options"), "nosniff");
	assert_string_equal(hdr(h, "Referrer-Policy"), "no-referrer");
	assert_non_null(hdr(h, "Content-Length"));
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

static void
write_conf(struct fx *f)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "[authority]\n"
	    "id = test-authority\n"
	    "data_dir = %s\n"
	    "station_listen = tls+tcp://127.0.0.1:0\n"
	    "admin_listen = ipc://%s\n"
	    "map_size_mb = 64\n"
	    "[tls]\n"
	    "cert = %s/server.pem\n"
	    "key = %s/server.key\n"
	    "station_ca = %s/station-ca.pem\n"
	    "[hsm]\n"
	    "module = " CS_SOFTHSM_MODULE "\n"
	    "token = " TOKEN "\n"
	    "pin_file = %s/pin\n"
	    "[console]\n"
	    "listen = https://127.0.0.1:0\n"
	    "cert = %s/server.pem\n"
	    "key = %s/server.key\n"
	    "session_idle_s = %u\n",
	    f->data, f->sock, f->dir, f->dir, f->dir, f->dir, f->dir, f->dir,
	    IDLE_S);
	tu_write_file(f->conf, text);
}

static void
start_authority(struct fx *f)
{
	char *argv[] = {f->authority, (char *)"-c", f->conf, NULL};

	unlink(f->log);
	f->pid      = tu_spawn(argv, f->log);
	f->port     = tu_wait_port(f->log, "tls");
	f->web_port = tu_wait_port(f->log, "https");
}

/* countersign-admin token create: the token is the 64 hex digits in its
 * output (the warning to store it goes to stderr). */
static void
make_token(struct fx *f, const char *name, const char *role, char out[65])
{
	const char *p;

	expect(f, ADMIN(f, "token", "create", "--name", name, "--role", role),
	    0, "shown this once");
	for (p = f->out; *p != '\0'; p++) {
		if (strspn(p, "0123456789abcdef") == 64) {
			break;
		}
	}
	assert_int_equal(strspn(p, "0123456789abcdef"), 64);
	memcpy(out, p, 64);
	out[64] = '\0';
}

static void
enroll(struct fx *f, const char *name, const char *cm)
{
	char conf[700], csr[700], cert[700], text[2048];

	snprintf(conf, sizeof(conf), "%s/%s.conf", f->dir, name);
	snprintf(text, sizeof(text),
	    "[station]\nname = %s\nauthority_url = tls+tcp://127.0.0.1:%d\n"
	    "authority_id = test-authority\nca = %s/ca.pem\n"
	    "cert = %s/%s.pem\nkey = %s/%s.key\ntimeout_ms = 20000\n",
	    name, f->port, f->dir, f->dir, name, f->dir, name);
	tu_write_file(conf, text);
	expect(f, STATION(f, conf, "init"), 0, ".csr");
	snprintf(csr, sizeof(csr), "%s/%s.csr", f->dir, name);
	snprintf(cert, sizeof(cert), "%s/%s.pem", f->dir, name);
	expect(f, ADMIN(f, "station", "enroll", "--csr", csr, "--name", name,
	    "--cm", cm, "-o", cert), 0, name);
}

static int
setup(void **state)
{
	struct fx          *f = calloc(1, sizeof(*f));
	struct cs_tls_files tf;
	nng_url            *url = NULL;
	char                env[700], ca[700], u[64];

	assert_non_null(f);
	*state = f;
	f->dir = tu_tmpdir();
	tu_programs(f->authority, f->admin, f->station, f->keytool,
	    sizeof(f->authority));
	tu_make_pki(f->dir);
	tu_make_token(f->dir, TOKEN, PIN);
	snprintf(f->conf, sizeof(f->conf), "%s/authority.conf", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/authority.log", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/admin.sock", f->dir);
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	write_conf(f);
	setenv("COUNTERSIGN_HSM_MODULE", CS_SOFTHSM_MODULE, 1);
	setenv("COUNTERSIGN_HSM_TOKEN", TOKEN, 1);
	snprintf(env, sizeof(env), "%s/pin", f->dir);
	setenv("COUNTERSIGN_HSM_PIN_FILE", env, 1);
	expect(f, run(f, f->keytool, "keygen", "--label", KEY, "--alg", "p256",
	    NULL), 0, NULL);
	expect(f, ADMIN(f, "ca", "init"), 0, "station-ca.pem");
	start_authority(f);
	expect(f, ADMIN(f, "key", "add", "--label", KEY), 0, KEY);
	enroll(f, "st1", "acme");
	make_token(f, "alice", "officer", f->officer);
	make_token(f, "bob", "viewer", f->viewer);
	expect(f, ADMIN(f, "token", "list"), 0, "alice");
	assert_non_null(strstr(f->out, "viewer"));
	/* the token itself is never shown again */
	assert_null(strstr(f->out, f->officer));
	snprintf(bearer_officer, sizeof(bearer_officer), "Bearer %s",
	    f->officer);
	snprintf(bearer_viewer, sizeof(bearer_viewer), "Bearer %s", f->viewer);

	snprintf(ca, sizeof(ca), "%s/ca.pem", f->dir);
	memset(&tf, 0, sizeof(tf));
	tf.ca          = ca;
	tf.server_name = "127.0.0.1";
	assert_int_equal(cs_tls_config_make(&f->tls, NNG_TLS_MODE_CLIENT,
	    NNG_TLS_AUTH_MODE_REQUIRED, &tf), CS_OK);
	snprintf(u, sizeof(u), "https://127.0.0.1:%d", f->web_port);
	assert_int_equal(nng_url_parse(&url, u), 0);
	assert_int_equal(nng_http_client_alloc(&f->client, url), 0);
	assert_int_equal(nng_http_client_set_tls(f->client, f->tls), 0);
	nng_url_free(url);
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f == NULL) {
		return 0;
	}
	if (f->pid > 0) {
		assert_int_equal(tu_stop(f->pid, SIGTERM, 20000), 0);
	}
	if (f->conn != NULL) {
		nng_http_conn_close(f->conn);
	}
	if (f->client != NULL) {
		nng_http_client_free(f->client);
	}
	if (f->tls != NULL) {
		nng_tls_config_free(f->tls);
	}
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* The audit log has an event of type with actor and field text. */
static void
audit_has(struct fx *f, const char *type, const char *actor,
    const char *text)
{
	struct hres h;
	char        path[256];

	snprintf(path, sizeof(path), "/api/audit?type=%s&actor=%s&limit=500",
	    type, actor);
	GET(f, &h, path, "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"intact\":true");
	if (strstr(h.body, text) == NULL) {
		fprintf(stderr, "no %s by %s with %s in %s\n", type, actor, text,
		    h.body);
		fail();
	}
	hres_free(&h);
}

/* How many events of type the audit log holds (one page of 500). */
static unsigned
audit_count(struct fx *f, const char *type)
{
	struct hres h;
	char        path[256];
	unsigned    n = 0;
	const char *p;

	snprintf(path, sizeof(path), "/api/audit?type=%s&limit=500", type);
	GET(f, &h, path, "Authorization", bearer_viewer, NULL);
	want(&h, 200, NULL);
	for (p = h.body; (p = strstr(p, "\"seq\":")) != NULL; p++) {
		n++;
	}
	hres_free(&h);
	return n;
}

/* Copy the csrf value out of a login or /api/me body. */
static void
csrf_of(const char *body, char out[65])
{
	const char *p = strstr(body, "\"csrf\":\"");

	assert_non_null(p);
	memcpy(out, p + 8, 64);
	out[64] = '\0';
}

/* Sign in with token; the cookie header value ("__Host-cs_session=...") and
 * the CSRF token. */
static void
login(struct fx *f, const char *token, char *cookie, size_t clen,
    char csrf[65])
{
	struct hres h;
	char        body[128];
	const char *sc, *end;

	snprintf(body, sizeof(body), "{\"token\": \"%s\"}", token);
	http(f, &h, "POST", "/api/login", JSON, body, strlen(body), NULL);
	want(&h, 200, "\"csrf\":\"");
	check_security_headers(&h);
	sc = hdr(&h, "Set-Cookie");
	assert_non_null(sc);
	/* exactly one cookie, with every attribute */
	assert_ptr_equal(strstr(sc, "__Host-cs_session="), sc);
	assert_null(strstr(sc + 1, "__Host-cs_session="));
	assert_non_null(strstr(sc, "; HttpOnly"));
	assert_non_null(strstr(sc, "; Secure"));
	assert_non_null(strstr(sc, "; SameSite=Strict"));
	assert_non_null(strstr(sc, "; Path=/"));
	end = strchr(sc, ';');
	assert_int_equal(end - sc, 18 + 64);
	snprintf(cookie, clen, "%.*s", (int)(end - sc), sc);
	csrf_of(h.body, csrf);
	hres_free(&h);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void
test_static_and_unknown(void **state)
{
	struct fx  *f = *state;
	struct hres h;

	GET(f, &h, "/", NULL);
	want(&h, 200, "<");
	assert_non_null(strstr(hdr(&h, "Content-Type"), "text/html"));
	check_security_headers(&h);
	hres_free(&h);
	GET(f, &h, "/app.js", NULL);
	want(&h, 200, NULL);
	assert_non_null(strstr(hdr(&h, "Content-Type"), "javascript"));
	assert_true(h.len > 0);
	hres_free(&h);
	GET(f, &h, "/app.css", NULL);
	want(&h, 200, NULL);
	assert_non_null(strstr(hdr(&h, "Content-Type"), "text/css"));
	hres_free(&h);

	/* no directory handler: nothing else is served */
	GET(f, &h, "/index.html/../../etc/passwd", NULL);
	want(&h, 404, "\"error\":");
	assert_string_equal(hdr(&h, "Content-Type"), JSON);
	check_security_headers(&h);
	hres_free(&h);
	GET(f, &h, "/api/nothing", "Authorization", bearer_officer, NULL);
	want(&h, 404, "\"error\":");
	assert_string_equal(hdr(&h, "Cache-Control"), "no-store");
	hres_free(&h);
	GET(f, &h, "/api/orders/PO-X/explode", "Authorization",
	    bearer_officer, NULL);
	want(&h, 404, "\"error\":");
	hres_free(&h);

	/* wrong methods */
	http(f, &h, "PUT", "/api/orders", JSON, "{}", 2, "Authorization",
	    bearer_officer, NULL);
	want(&h, 405, "GET, POST");
	assert_string_equal(hdr(&h, "Allow"), "GET, POST");
	hres_free(&h);
	GET(f, &h, "/api/login", NULL);
	want(&h, 405, "POST");
	hres_free(&h);
	http(f, &h, "POST", "/healthz", JSON, "{}", 2, NULL);
	want(&h, 405, NULL);
	hres_free(&h);
	http(f, &h, "DELETE", "/api/orders/PO-1", NULL, NULL, 0, NULL);
	want(&h, 405, NULL);
	hres_free(&h);
}

static void
test_unauthenticated(void **state)
{
	struct fx  *f = *state;
	struct hres h;
	const char *bad = "Bearer 00000000000000000000000000000000"
	                  "00000000000000000000000000000000";

	GET(f, &h, "/api/me", NULL);
	want(&h, 401, "not signed in");
	assert_string_equal(hdr(&h, "Cache-Control"), "no-store");
	check_security_headers(&h);
	hres_free(&h);
	GET(f, &h, "/api/dashboard", NULL);
	want(&h, 401, NULL);
	hres_free(&h);
	GET(f, &h, "/api/orders", "Authorization", bad, NULL);
	want(&h, 401, "not valid");
	hres_free(&h);
	GET(f, &h, "/api/orders", "Authorization", "Basic YWxpY2U6eA==",
	    NULL);
	want(&h, 401, "Bearer");
	hres_free(&h);
	GET(f, &h, "/api/orders", "Cookie", "__Host-cs_session=1234", NULL);
	want(&h, 401, NULL);
	hres_free(&h);
	GET(f, &h, "/api/orders", "Cookie",
	    "__Host-cs_session=00000000000000000000000000000000"
	    "00000000000000000000000000000000", NULL);
	want(&h, 401, "unknown session");
	hres_free(&h);
	http(f, &h, "POST", "/api/orders", JSON, "{}", 2, NULL);
	want(&h, 401, NULL);
	hres_free(&h);

	/* failed sign-ins: refused and audited, the token never logged */
	http(f, &h, "POST", "/api/login", JSON, "{\"token\":\"abc\"}", 15,
	    NULL);
	want(&h, 401, "not valid");
	assert_null(hdr(&h, "Set-Cookie"));
	hres_free(&h);
	http(f, &h, "POST", "/api/login", JSON, "{\"token\":", 9, NULL);
	want(&h, 400, "malformed JSON");
	hres_free(&h);
	http(f, &h, "POST", "/api/login", JSON, "{\"tok\":\"x\"}", 11, NULL);
	want(&h, 400, "token");
	hres_free(&h);
	/* The first failure of the minute is audited; the rest are counted
	 * into the next event, so a flood cannot fill the store. */
	audit_has(f, "console.signin.failed", "console", "unknown token");
	audit_has(f, "console.signin.failed", "console",
	    "failures_not_audited_before");
	{
		unsigned before = audit_count(f, "console.signin.failed");

		for (int i = 0; i < 20; i++) {
			GET(f, &h, "/api/orders", "Authorization",
			    "Bearer 0123456789abcdef0123456789abcdef0123456789abcdef"
			    "0123456789abcdef", NULL);
			want(&h, 401, "not valid");
			hres_free(&h);
		}
		assert_int_equal(audit_count(f, "console.signin.failed"), before);
	}
}

static void
test_session_csrf_logout(void **state)
{
	struct fx  *f = *state;
	struct hres h;
	char        cookie[128], csrf[65], wrong[65];
	const char *order = "{\"order_id\":\"PO-S\",\"product_id\":4242,"
	                    "\"key_label\":\"" KEY "\",\"quota\":10,"
	                    "\"uid_len\":12,\"cms\":[\"acme\"],"
	                    "\"expires_unix_s\":0}";

	login(f, f->officer, cookie, sizeof(cookie), csrf);
	audit_has(f, "console.signin", "console:alice", "\"role\":\"officer\"");
	GET(f, &h, "/api/me", "Cookie", cookie, NULL);
	want(&h, 200, "\"name\":\"alice\"");
	assert_non_null(strstr(h.body, "\"role\":\"officer\""));
	assert_non_null(strstr(h.body, csrf));
	hres_free(&h);

	/* a change by cookie needs the CSRF token */
	http(f, &h, "POST", "/api/orders", JSON, order, strlen(order),
	    "Cookie", cookie, NULL);
	want(&h, 403, "X-CSRF-Token");
	hres_free(&h);
	memcpy(wrong, csrf, sizeof(wrong));
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	http(f, &h, "POST", "/api/orders", JSON, order, strlen(order),
	    "Cookie", cookie, "X-CSRF-Token", wrong, NULL);
	want(&h, 403, "X-CSRF-Token");
	hres_free(&h);
	audit_has(f, "console.refused", "console:alice", "\"reason\":\"csrf\"");
	http(f, &h, "POST", "/api/orders", JSON, order, strlen(order),
	    "Cookie", cookie, "X-CSRF-Token", csrf, NULL);
	want(&h, 201, "\"order_id\":\"PO-S\"");
	assert_non_null(strstr(h.body, "\"remaining\":10"));
	assert_non_null(strstr(h.body, "\"cms\":[\"acme\"]"));
	assert_non_null(strstr(h.body, "\"active\":true"));
	hres_free(&h);
	audit_has(f, "order.created", "console:alice", "\"order\":\"PO-S\"");

	/* logout: CSRF too, then the session is gone */
	http(f, &h, "POST", "/api/logout", NULL, NULL, 0, "Cookie", cookie,
	    NULL);
	want(&h, 403, NULL);
	hres_free(&h);
	http(f, &h, "POST", "/api/logout", NULL, NULL, 0, "Cookie", cookie,
	    "X-CSRF-Token", csrf, NULL);
	want(&h, 204, NULL);
	assert_int_equal(h.len, 0);
	assert_string_equal(hdr(&h, "Content-Length"), "0");
	assert_non_null(strstr(hdr(&h, "Set-Cookie"), "Max-Age=0"));
	hres_free(&h);
	GET(f, &h, "/api/me", "Cookie", cookie, NULL);
	want(&h, 401, NULL);
	hres_free(&h);
}

static void
test_session_expiry(void **state)
{
	struct fx  *f = *state;
	struct hres h;
	char        cookie[128], csrf[65];

	login(f, f->viewer, cookie, sizeof(cookie), csrf);
	GET(f, &h, "/api/me", "Cookie", cookie, NULL);
	want(&h, 200, "\"role\":\"viewer\"");
	hres_free(&h);
	sleep(IDLE_S + 1);
	GET(f, &h, "/api/me", "Cookie", cookie, NULL);
	want(&h, 401, "expired");
	hres_free(&h);
}

static void
test_viewer_refused(void **state)
{
	struct fx  *f = *state;
	struct hres h;
	char        cookie[128], csrf[65];

	GET(f, &h, "/api/orders", "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"orders\":[");
	hres_free(&h);
	http(f, &h, "POST", "/api/orders/PO-S/quota", JSON, "{\"delta\":5}",
	    11, "Authorization", bearer_viewer, NULL);
	want(&h, 403, "viewer");
	hres_free(&h);
	/* by session, with a valid CSRF token: still the role */
	login(f, f->viewer, cookie, sizeof(cookie), csrf);
	http(f, &h, "POST", "/api/orders/PO-S/close", NULL, NULL, 0, "Cookie",
	    cookie, "X-CSRF-Token", csrf, NULL);
	want(&h, 403, "officer");
	hres_free(&h);
	http(f, &h, "POST", "/api/stations/st1/disable", NULL, NULL, 0,
	    "Authorization", bearer_viewer, NULL);
	want(&h, 403, NULL);
	hres_free(&h);
	audit_has(f, "console.refused", "console:bob", "\"action\":\"order.quota\"");
	audit_has(f, "console.refused", "console:bob", "\"action\":\"order.close\"");
	audit_has(f, "console.refused", "console:bob", "\"reason\":\"role\"");
	/* A token can repeat a refused change, or sign in, as often as it
	 * likes: the events are collapsed (one written per token, reason
	 * and action, the rest counted into a summary), so the store does
	 * not fill. */
	unsigned refused0 = audit_count(f, "console.refused");
	unsigned signin0  = audit_count(f, "console.signin");
	for (int i = 0; i < 60; i++) {
		http(f, &h, "POST", "/api/orders/PO-S/quota", JSON,
		    "{\"delta\":5}", 11, "Authorization", bearer_viewer, NULL);
		want(&h, 403, "viewer");
		hres_free(&h);
		login(f, f->viewer, cookie, sizeof(cookie), csrf);
	}
	printf("collapsing: 60 refused changes and 60 sign-ins wrote %u and "
	    "%u events\n", audit_count(f, "console.refused") - refused0,
	    audit_count(f, "console.signin") - signin0);
	assert_true(audit_count(f, "console.refused") - refused0 <= 1);
	assert_true(audit_count(f, "console.signin") - signin0 <= 1);
	/* nothing changed */
	GET(f, &h, "/api/orders/PO-S", "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"quota\":10");
	assert_non_null(strstr(h.body, "\"closed\":false"));
	hres_free(&h);
}

static void
test_bad_inputs(void **state)
{
	struct fx  *f = *state;
	struct hres h;
	char       *big;

	/* malformed JSON, wrong types, unknown members */
	static const char *const bad[] = {"", "[]", "{\"delta\":}",
	    "{\"delta\":1.5}", "{\"delta\":\"5\"}", "{\"delta\":5,\"x\":1}",
	    "{\"delta\":5}}", "{\"delta\":5,\"delta\":6}", "{\"delta\":0}",
	    "{\"delta\":\"\\ud800\"}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http(f, &h, "POST", "/api/orders/PO-S/quota", JSON, bad[i],
		    strlen(bad[i]), "Authorization", bearer_officer, NULL);
		want(&h, 400, "\"error\":");
		hres_free(&h);
	}
	http(f, &h, "POST", "/api/orders", JSON, "{\"order_id\":\"X\"}", 16,
	    "Authorization", bearer_officer, NULL);
	want(&h, 400, "required");
	hres_free(&h);

	/* oversized: 413 (ours), not nng's 400 */
	big = malloc(70000);
	assert_non_null(big);
	memset(big, ' ', 70000);
	big[0] = '{';
	big[69999] = '}';
	http(f, &h, "POST", "/api/orders/PO-S/quota", JSON, big, 70000,
	    "Authorization", bearer_officer, NULL);
	want(&h, 413, "larger than");
	hres_free(&h);
	free(big);

	/* wrong Content-Type */
	http(f, &h, "POST", "/api/orders/PO-S/quota", "text/plain",
	    "{\"delta\":5}", 11, "Authorization", bearer_officer, NULL);
	want(&h, 415, "application/json");
	hres_free(&h);
	http(f, &h, "POST", "/api/orders/PO-S/quota",
	    "application/x-www-form-urlencoded", "delta=5", 7,
	    "Authorization", bearer_officer, NULL);
	want(&h, 415, NULL);
	hres_free(&h);
	http(f, &h, "POST", "/api/orders/PO-S/quota", NULL, "{\"delta\":5}",
	    11, "Authorization", bearer_officer, NULL);
	want(&h, 415, NULL);
	hres_free(&h);

	/* refusals of the shared admin logic: right status, audited */
	http(f, &h, "POST", "/api/orders/PO-S/quota",
	    "application/json; charset=utf-8", "{\"delta\":-11}", 13,
	    "Authorization", bearer_officer, NULL);
	want(&h, 409, "cannot go below");
	hres_free(&h);
	http(f, &h, "POST", "/api/orders/NOPE/quota", JSON, "{\"delta\":1}",
	    11, "Authorization", bearer_officer, NULL);
	want(&h, 404, "no order NOPE");
	hres_free(&h);
	http(f, &h, "POST", "/api/stations/nobody/enable", NULL, NULL, 0,
	    "Authorization", bearer_officer, NULL);
	want(&h, 404, "no station nobody");
	hres_free(&h);
	{
		const char *dup = "{\"order_id\":\"PO-S\",\"product_id\":1,"
		                  "\"key_label\":\"" KEY "\",\"quota\":1,"
		                  "\"uid_len\":12}";
		http(f, &h, "POST", "/api/orders", JSON, dup, strlen(dup),
		    "Authorization", bearer_officer, NULL);
		want(&h, 409, "never reused");
		hres_free(&h);
	}
	audit_has(f, "console.refused", "console:alice", "never reused");
	GET(f, &h, "/api/orders/NOPE", "Authorization", bearer_viewer, NULL);
	want(&h, 404, NULL);
	hres_free(&h);
	GET(f, &h, "/api/devices?uid=zz", "Authorization", bearer_viewer,
	    NULL);
	want(&h, 400, "uid=HEX");
	hres_free(&h);
	GET(f, &h, "/api/devices", "Authorization", bearer_viewer, NULL);
	want(&h, 400, NULL);
	hres_free(&h);
	GET(f, &h, "/api/audit?limit=501", "Authorization", bearer_viewer,
	    NULL);
	want(&h, 400, "limit");
	hres_free(&h);
	GET(f, &h, "/api/audit?after_seq=x", "Authorization", bearer_viewer,
	    NULL);
	want(&h, 400, "after_seq");
	hres_free(&h);
	GET(f, &h, "/api/audit/export?format=xml", "Authorization",
	    bearer_viewer, NULL);
	want(&h, 400, "format");
	hres_free(&h);
}

static station_session *
session(struct fx *f, const char *name)
{
	return tf_session(f->dir, f->port, name);
}

static int
sign(station_session *s, const char *order, const uint8_t *uid)
{
	Countersign__V1__SignRequest  in = COUNTERSIGN__V1__SIGN_REQUEST__INIT;
	Countersign__V1__SignResponse *out = NULL;
	struct cs_rpc_result           res;
	int                            rv;

	in.order_id = (char *)order;
	in.uid.data = (uint8_t *)uid;
	in.uid.len  = UIDLEN;
	rv = station_session_call(s, "Sign", &in.base,
	    (ProtobufCMessage **)&out, &res);
	if (rv == CS_OK) {
		protobuf_c_message_free_unpacked(&out->base, NULL);
	}
	return rv;
}

static void
test_changes_by_bearer(void **state)
{
	struct fx  *f = *state;
	struct hres h;
	const char *order = "{\"order_id\":\"PO-B\",\"product_id\":4242,"
	                    "\"key_label\":\"" KEY "\",\"quota\":3,"
	                    "\"uid_len\":12,\"cms\":[]}";

	/* bearer tokens need no CSRF */
	http(f, &h, "POST", "/api/orders", JSON, order, strlen(order),
	    "Authorization", bearer_officer, NULL);
	want(&h, 201, "\"quota\":3");
	hres_free(&h);
	http(f, &h, "POST", "/api/orders/PO-B/quota", JSON, "{\"delta\":2}",
	    11, "Authorization", bearer_officer, NULL);
	want(&h, 200, "\"quota\":5");
	assert_non_null(strstr(h.body, "\"remaining\":5"));
	hres_free(&h);
	audit_has(f, "order.quota", "console:alice", "\"to\":\"5\"");
	http(f, &h, "POST", "/api/stations/st1/disable", NULL, NULL, 0,
	    "Authorization", bearer_officer, NULL);
	want(&h, 200, "\"enabled\":false");
	assert_non_null(strstr(h.body, "\"name\":\"st1\""));
	hres_free(&h);
	GET(f, &h, "/api/stations", "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"enabled\":false");
	assert_non_null(strstr(h.body, "\"enrolled_unix_s\":"));
	hres_free(&h);
	http(f, &h, "POST", "/api/stations/st1/enable", NULL, NULL, 0,
	    "Authorization", bearer_officer, NULL);
	want(&h, 200, "\"enabled\":true");
	hres_free(&h);
	audit_has(f, "station.disabled", "console:alice", "st1");
	audit_has(f, "station.enabled", "console:alice", "st1");
	http(f, &h, "POST", "/api/orders/PO-S/close", NULL, NULL, 0,
	    "Authorization", bearer_officer, NULL);
	want(&h, 200, "\"closed\":true");
	assert_non_null(strstr(h.body, "\"active\":false"));
	hres_free(&h);
	http(f, &h, "POST", "/api/orders/PO-S/close", NULL, NULL, 0,
	    "Authorization", bearer_officer, NULL);
	want(&h, 409, "already closed");
	hres_free(&h);
	audit_has(f, "order.closed", "console:alice", "PO-S");
	/* the admin CLI sees the console's work */
	expect(f, ADMIN(f, "order", "show", "PO-B"), 0, "PO-B");
}

static void
test_signing_views(void **state)
{
	struct fx       *f = *state;
	struct hres      h;
	station_session *s = session(f, "st1");
	uint8_t          uid[UIDLEN];
	char             path[128], line[128];
	unsigned long    total = 0;
	const char      *p;

	for (unsigned i = 0; i < 3; i++) {
		memset(uid, 0, sizeof(uid));
		uid[0]  = 0xa5;
		uid[11] = (uint8_t)(i + 1);
		assert_int_equal(sign(s, "PO-B", uid), CS_OK);
	}
	/* refused: the order is closed */
	assert_int_not_equal(sign(s, "PO-S", uid), CS_OK);
	station_session_close(s);

	/* the device: its record verifies against the order's key */
	GET(f, &h, "/api/devices?uid=a5000000000000000000000003",
	    "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"devices\":[]");
	hres_free(&h);
	GET(f, &h, "/api/devices?uid=a50000000000000000000003",
	    "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"verify\":\"ok\"");
	assert_non_null(strstr(h.body, "\"order_id\":\"PO-B\""));
	assert_non_null(strstr(h.body, "\"product_id\":4242"));
	assert_non_null(strstr(h.body, "\"station\":\"st1\""));
	assert_non_null(strstr(h.body, "\"state\":\"issued\""));
	assert_non_null(strstr(h.body, "\"uid\":\"a50000000000000000000003\""));
	assert_non_null(strstr(h.body, "\"record\":\""));
	hres_free(&h);

	/* dashboard: orders, the last hour by minute, stations, alerts */
	GET(f, &h, "/api/dashboard", "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"orders\":[");
	assert_non_null(strstr(h.body, "\"order_id\":\"PO-B\""));
	assert_non_null(strstr(h.body, "\"issued\":3"));
	assert_non_null(strstr(h.body, "\"stations\":[{\"name\":\"st1\""));
	assert_non_null(strstr(h.body, "\"last_seen_unix_s\":"));
	assert_non_null(strstr(h.body, "\"alerts\":{\"clones\":0"));
	assert_non_null(strstr(h.body, "\"order-closed\":1"));
	{
		size_t n = 0;
		for (p = strstr(h.body, "\"rate\":["); p != NULL &&
		     (p = strstr(p, "{\"t\":")) != NULL; p++) {
			const char *nn = strstr(p, "\"n\":");
			n++;
			total += strtoul(nn + 4, NULL, 10);
		}
		assert_int_equal(n, 60);
		assert_int_equal(total, 3);
	}
	hres_free(&h);

	/* metrics: Prometheus text, for a viewer's token only */
	GET(f, &h, "/metrics", NULL);
	want(&h, 401, NULL);
	hres_free(&h);
	GET(f, &h, "/metrics", "Authorization", bearer_viewer, NULL);
	want(&h, 200, NULL);
	assert_non_null(strstr(hdr(&h, "Content-Type"), "text/plain"));
	static const char *const lines[] = {
	    "# TYPE countersign_records_issued_total counter\n",
	    "countersign_records_issued_total{order=\"PO-B\"} 3\n",
	    "# TYPE countersign_sign_latency_seconds histogram\n",
	    "countersign_sign_latency_seconds_bucket{le=\"+Inf\"} 4\n",
	    "countersign_sign_latency_seconds_count 4\n",
	    "countersign_sign_latency_seconds_sum ",
	    "# TYPE countersign_refusals_total counter\n",
	    "countersign_refusals_total{reason=\"order-closed\"} 1\n",
	    "# TYPE countersign_hsm_errors_total counter\n",
	    "countersign_hsm_errors_total 0\n",
	    "# TYPE countersign_lmdb_bytes gauge\n",
	    "countersign_lmdb_bytes ",
	    "# TYPE countersign_stations_active gauge\n",
	    "countersign_stations_active 1\n",
	    "# TYPE countersign_commit_batch_size histogram\n",
	    "countersign_commit_batch_size_bucket{le=\"1\"} ",
	    "countersign_commit_batch_size_bucket{le=\"+Inf\"} ",
	    "countersign_commit_batch_size_sum ",
	    "countersign_commit_batch_size_count ",
	    "# HELP countersign_commit_batch_size ",
	    "countersign_order_remaining{order=\"PO-B\"} ",
	    "countersign_store_used_bytes ",
	    "countersign_store_free_bytes ",
	    "countersign_station_connections ",
	    "countersign_station_connections_max ",
	    "countersign_station_connections_refused_total{limit=\"descriptors\"} ",
	    "countersign_station_connections_dropped_total{cause=\"send_timeout\"} ",
	    "countersign_console_connections ",
	    "countersign_console_connections_dropped_total{cause=\"idle_timeout\"} ",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (strstr(h.body, lines[i]) == NULL) {
			fprintf(stderr, "missing \"%s\" in\n%s\n", lines[i],
			    h.body);
			fail();
		}
	}
	/* every line is a comment or "name{labels} value" */
	for (p = h.body; *p != '\0';) {
		size_t n = strcspn(p, "\n");
		assert_true(n > 0 && n < sizeof(line));
		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		assert_true(line[0] == '#' || strchr(line, ' ') != NULL);
		assert_int_equal(strncmp(line, line[0] == '#' ? "# " :
		    "countersign_", line[0] == '#' ? 2 : 12), 0);
		p += n + (p[n] == '\n');
	}
	hres_free(&h);
	snprintf(path, sizeof(path), "/api/orders/%s", "PO-B");
	GET(f, &h, path, "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"remaining\":2");
	hres_free(&h);
}

static void
test_audit_and_export(void **state)
{
	struct fx  *f = *state;
	struct hres h;
	const char *p;
	char        path[128];
	unsigned    lines = 0;
	unsigned long next;

	GET(f, &h, "/api/audit?limit=2", "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"events\":[{\"seq\":1,");
	assert_non_null(strstr(h.body, "\"seq\":2,"));
	assert_null(strstr(h.body, "\"seq\":3,"));
	assert_non_null(strstr(h.body, "\"next_after_seq\":2"));
	assert_non_null(strstr(h.body, "\"intact\":true"));
	assert_non_null(strstr(h.body, "\"hash\":\""));
	hres_free(&h);
	GET(f, &h, "/api/audit?after_seq=2&limit=1", "Authorization",
	    bearer_viewer, NULL);
	want(&h, 200, "\"events\":[{\"seq\":3,");
	hres_free(&h);
	GET(f, &h, "/api/audit?order=PO-B&type=sign.issued", "Authorization",
	    bearer_viewer, NULL);
	want(&h, 200, "\"type\":\"sign.issued\"");
	assert_null(strstr(h.body, "\"type\":\"order.created\""));
	hres_free(&h);
	GET(f, &h, "/api/audit?since_ms=1&until_ms=2", "Authorization",
	    bearer_viewer, NULL);
	want(&h, 200, "\"events\":[]");
	p = strstr(h.body, "\"next_after_seq\":");
	assert_non_null(p);
	next = strtoul(p + 17, NULL, 10);
	assert_true(next > 10);
	hres_free(&h);
	GET(f, &h, "/api/audit?actor=console%3Aalice&type=order.created",
	    "Authorization", bearer_viewer, NULL);
	want(&h, 200, "\"order\":\"PO-B\"");
	hres_free(&h);

	GET(f, &h, "/api/audit/export?format=jsonl", "Authorization",
	    bearer_viewer, NULL);
	want(&h, 200, "{\"seq\":1,");
	assert_non_null(strstr(hdr(&h, "Content-Disposition"), "attachment"));
	for (p = h.body; (p = strchr(p, '\n')) != NULL; p++) {
		lines++;
	}
	/* one line per event, as many as the log holds */
	assert_int_equal(lines, next);
	assert_non_null(strstr(h.body, "\"prev_hash\":\""));
	hres_free(&h);
	GET(f, &h, "/api/audit/export?format=csv", "Authorization",
	    bearer_viewer, NULL);
	want(&h, 200, NULL);
	assert_int_equal(strncmp(h.body,
	    "seq,time,actor,type,fields,prev_hash,hash\r\n", 43), 0);
	assert_non_null(strstr(hdr(&h, "Content-Type"), "text/csv"));
	assert_non_null(strstr(hdr(&h, "Content-Disposition"), ".csv"));
	snprintf(path, sizeof(path), "\r\n%lu,", next);
	assert_non_null(strstr(h.body, path));
	hres_free(&h);
	/* the CLI export agrees on the number of events */
	expect(f, ADMIN(f, "audit", "verify"), 0, "intact");
}

/* countersign_healthz_hsm_checks_total, read from /metrics. */
static uint64_t
healthz_hsm_checks(struct fx *f)
{
	struct hres h;
	const char *p;
	uint64_t    n;

	GET(f, &h, "/metrics", "Authorization", bearer_viewer, NULL);
	want(&h, 200, NULL);
	p = strstr(h.body, "\ncountersign_healthz_hsm_checks_total ");
	assert_non_null(p);
	n = strtoull(p + strlen("\ncountersign_healthz_hsm_checks_total "),
	    NULL, 10);
	hres_free(&h);
	return n;
}

#define HZ_THREADS  8
#define HZ_REQUESTS 40

struct hz_load {
	struct fx f; /* a copy with a connection of its own */
	unsigned  not_ok;
};

static void *
hz_main(void *arg)
{
	struct hz_load *w = arg;
	struct hres     h;

	for (int i = 0; i < HZ_REQUESTS; i++) {
		GET(&w->f, &h, "/healthz", NULL);
		w->not_ok += h.status != 200;
		hres_free(&h);
	}
	nng_http_conn_close(w->f.conn);
	cs_crypto_thread_end(); /* wolfSSL's per-thread ECC cache */
	return NULL;
}

static void
test_healthz(void **state)
{
	struct fx  *f = *state;
	struct hres h;

	GET(f, &h, "/healthz", NULL);
	want(&h, 200, NULL);
	assert_string_equal(h.body, "ok\n");
	check_security_headers(&h);
	hres_free(&h);

	/* Back-to-back requests make at most one HSM call per 2 s. */
	uint64_t before = healthz_hsm_checks(f);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 80; i++) {
		GET(f, &h, "/healthz", NULL);
		want(&h, 200, NULL);
		hres_free(&h);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	uint64_t calls = healthz_hsm_checks(f) - before;
	double   secs  = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("healthz: 80 requests in %.1f s made %llu HSM checks\n", secs,
	    (unsigned long long)calls);
	assert_true(calls <= (uint64_t)(secs / 2.0) + 2);

	/* The same from 8 connections at once, starting on a stale answer:
	 * every request answered 200 (from the last check while another
	 * request refreshes it), still at most one HSM call per 2 s. */
	pthread_t      th[HZ_THREADS];
	struct hz_load w[HZ_THREADS];
	usleep(2100 * 1000);
	before = healthz_hsm_checks(f);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < HZ_THREADS; i++) {
		w[i] = (struct hz_load){.f = *f};
		w[i].f.conn = NULL;
		assert_int_equal(pthread_create(&th[i], NULL, hz_main, &w[i]),
		    0);
	}
	unsigned bad = 0;
	for (int i = 0; i < HZ_THREADS; i++) {
		pthread_join(th[i], NULL);
		bad += w[i].not_ok;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	calls = healthz_hsm_checks(f) - before;
	secs  = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("healthz: %d x %d concurrent requests in %.1f s made %llu HSM "
	    "checks, %u not 200\n", HZ_THREADS, HZ_REQUESTS, secs,
	    (unsigned long long)calls, bad);
	assert_int_equal(bad, 0);
	assert_true(calls >= 1 && calls <= (uint64_t)(secs / 2.0) + 1);
}

/* An authority without [hsm]: the console runs, /healthz says 503. */
static void
test_healthz_without_hsm(void **state)
{
	struct fx       *f = *state;
	struct fx        g;
	struct hres      h;
	char             text[2048], u[64];
	char            *argv[] = {g.authority, (char *)"-c", g.conf, NULL};
	nng_url         *url    = NULL;

	memcpy(&g, f, sizeof(g));
	snprintf(g.conf, sizeof(g.conf), "%s/nohsm.conf", f->dir);
	snprintf(g.log, sizeof(g.log), "%s/nohsm.log", f->dir);
	snprintf(text, sizeof(text),
	    "[authority]\nid = nohsm\ndata_dir = %s/nohsm-data\n"
	    "station_listen = tls+tcp://127.0.0.1:0\n"
	    "admin_listen = ipc://%s/nohsm.sock\n"
	    "[tls]\ncert = %s/server.pem\nkey = %s/server.key\n"
	    "station_ca = %s/station-ca.pem\n"
	    "[console]\nlisten = https://127.0.0.1:0\n"
	    "cert = %s/server.pem\nkey = %s/server.key\n",
	    f->dir, f->dir, f->dir, f->dir, f->dir, f->dir, f->dir);
	tu_write_file(g.conf, text);
	g.pid      = tu_spawn(argv, g.log);
	g.web_port = tu_wait_port(g.log, "https");
	snprintf(u, sizeof(u), "https://127.0.0.1:%d", g.web_port);
	assert_int_equal(nng_url_parse(&url, u), 0);
	assert_int_equal(nng_http_client_alloc(&g.client, url), 0);
	assert_int_equal(nng_http_client_set_tls(g.client, f->tls), 0);
	nng_url_free(url);
	g.conn = NULL;
	GET(&g, &h, "/healthz", NULL);
	want(&h, 503, "no HSM");
	assert_non_null(strstr(hdr(&h, "Content-Type"), "text/plain"));
	hres_free(&h);
	nng_http_conn_close(g.conn);
	nng_http_client_free(g.client);
	assert_int_equal(tu_stop(g.pid, SIGTERM, 20000), 0);
}

/* A disabled token: bearer use refused at once, its sessions at their
 * next request; the audit log says who disabled it. */
static void
test_token_disable(void **state)
{
	struct fx  *f = *state;
	struct hres h;
	char        tok[65], bearer[80], cookie[128], csrf[65];

	make_token(f, "temp-officer", "officer", tok);
	snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
	login(f, tok, cookie, sizeof(cookie), csrf);
	GET(f, &h, "/api/me", "Cookie", cookie, NULL);
	want(&h, 200, "temp-officer");
	hres_free(&h);
	GET(f, &h, "/api/orders", "Authorization", bearer, NULL);
	want(&h, 200, NULL);
	hres_free(&h);

	expect(f, ADMIN(f, "token", "disable", "--name", "temp-officer"), 0,
	    "disabled (1 token)");
	GET(f, &h, "/api/orders", "Authorization", bearer, NULL);
	want(&h, 401, "not valid");
	hres_free(&h);
	GET(f, &h, "/api/me", "Cookie", cookie, NULL);
	want(&h, 401, "disabled");
	hres_free(&h);
	/* ... and the session is gone for good. */
	GET(f, &h, "/api/me", "Cookie", cookie, NULL);
	want(&h, 401, "unknown session");
	hres_free(&h);
	expect(f, ADMIN(f, "token", "disable", "--name", "no-such"), 1,
	    "no token called no-such");
	expect(f, ADMIN(f, "token", "list"), 0, "disabled");
	expect(f, ADMIN(f, "audit", "list"), 0, "token.disabled");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_static_and_unknown),
	    cmocka_unit_test(test_unauthenticated),
	    cmocka_unit_test(test_session_csrf_logout),
	    cmocka_unit_test(test_session_expiry),
	    cmocka_unit_test(test_viewer_refused),
	    cmocka_unit_test(test_bad_inputs),
	    cmocka_unit_test(test_changes_by_bearer),
	    cmocka_unit_test(test_signing_views),
	    cmocka_unit_test(test_audit_and_export),
	    cmocka_unit_test(test_healthz),
	    cmocka_unit_test(test_healthz_without_hsm),
	    cmocka_unit_test(test_token_disable),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
