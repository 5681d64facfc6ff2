/*
 * console.h - the authority's web console: an HTTPS server (nng's HTTP
 * server over the project's wolfSSL engine) with the JSON API of
 * docs/console.md, /healthz, /metrics and the compiled-in front end
 * (authority/console/www).
 *
 * Who may do what: an admin token (countersign-admin token create) signs
 * in to a session (cookie __Host-cs_session, CSRF token per session) or is sent
 * as "Authorization: Bearer" by scripts.  Role viewer reads, role officer
 * also changes orders and stations, through the same code as the Admin
 * service (admin_core.h).  Every sign-in, failed sign-in, change and
 * refused change is audited.
 *
 * nng 1.5.2's HTTP server has pitfalls (FIELD-NOTES.md): handlers here
 * never block nng's threads (requests are queued to a small worker pool
 * that completes them), every response has a body and Content-Length,
 * headers never carry request data, bodies are limited to
 * CONSOLE_BODY_MAX, and there is a single Set-Cookie at most.  nng has no
 * connection timeouts: keep the console on loopback and put a reverse
 * proxy in front for wider access.
 */
#ifndef CONSOLE_H
#define CONSOLE_H

#include "cs_hsm.h"
#include "cs_srv.h"
#include "pipeline.h"
#include "revocation.h"
#include "sessions.h"
#include "store.h"

typedef struct console console;

/* Largest request body accepted (larger: 413). */
#define CONSOLE_BODY_MAX (64u * 1024u)

struct console_opts {
	const char *listen;         /* https://host:port (port 0: any) */
	const char *cert;           /* certificate chain, PEM */
	const char *key;            /* private key, PEM */
	unsigned    session_idle_s; /* a session unused this long ends */
	unsigned    session_max_s;  /* a session ends this long after sign-in */
	const char *data_dir;       /* the store's directory (for /metrics) */
	const char *hsm_check_key;  /* key label /healthz reads when no
	                               signing key is registered */
	revocation *rev;            /* station changes re-issue the CRL
	                               (may be NULL) */
	cs_srv     *stations;       /* the station port, for /metrics (may be
	                               NULL) */
	struct cs_tls_limits limits; /* connection budgets (cs_tls.h) */
	bool        metrics_public; /* /metrics without a token */
};

/*
 * Start serving.  st, pl and ss must outlive the console; hsm may be NULL
 * (then /healthz reports 503).  Logs "listening url=... port=N".
 * Errors: CS_EINVAL, CS_ENOMEM, CS_ENOENT/CS_ETLS (certificate or key),
 * CS_EADDR (listen URL), CS_EIO (cannot bind).
 */
int console_open(console **out, const struct console_opts *o, store *st,
    cs_hsm *hsm, pipeline *pl, sessions *ss);

/* The TCP port the console listens on (useful with port 0). */
int console_port(const console *c);

/* Stop serving: no new requests; requests in progress complete.  NULL-safe. */
void console_close(console *c);

#endif /* CONSOLE_H */
