/*
 * cs_tls.h - wolfSSL as nng's TLS engine, and TLS configurations made from
 * PEM files.
 *
 * nng 1.5.2 is built with mbedTLS; Countersign replaces that engine with
 * wolfSSL through nng's public engine API (nng_tls_engine_register).  Two
 * traps shape this module: nng initialises lazily on its first API call and
 * then installs its built-in engine over whatever was registered, and every
 * nng_tls_config keeps the engine that was current when it was allocated.
 * cs_tls_init() therefore initialises nng first, then registers, and must
 * run before any dialer, listener or TLS config is created.
 */
#ifndef CS_TLS_H
#define CS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

/*
 * The one TLS policy of every context this module makes (nng engine
 * configs and cs_tls_server alike): TLS 1.3, or TLS 1.2 with ECDHE and an
 * AEAD cipher; nothing else is ever offered or selected.  No NULL, RC4,
 * 3DES, CBC, PSK, anonymous or export suites.  Renegotiation and
 * compression are not compiled into Debian's wolfSSL and are never
 * enabled here.  docs/authority.md lists the same suites.
 */
#define CS_TLS_CIPHERS                                                        \
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"                    \
	"TLS13-CHACHA20-POLY1305-SHA256:"                                     \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"        \
	"ECDHE-ECDSA-CHACHA20-POLY1305:"                                      \
	"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"            \
	"ECDHE-RSA-CHACHA20-POLY1305"

/* The name the engine registers under, as nng_tls_engine_name() reports. */
#define CS_TLS_ENGINE_NAME "wolfSSL"

/*
 * Initialise wolfSSL and register it as nng's TLS engine.  Idempotent and
 * thread-safe (the work happens once).  Returns CS_OK, or CS_ETLS when the
 * engine could not be registered (logged with nng's error).
 */
int cs_tls_init(void);

/* Files and names for one TLS configuration.  NULL members are unused. */
struct cs_tls_files {
	const char *cert;        /* our certificate chain, PEM */
	const char *key;         /* our private key, PEM (unencrypted) */
	const char *ca;          /* CA certificate(s) that peers must chain to */
	const char *crl;         /* optional CRL, PEM */
	const char *server_name; /* client: name the server's cert must carry
	                            (DNS name or IP address); also sent as SNI */
};

/*
 * Make an nng TLS configuration.  mode is NNG_TLS_MODE_SERVER or _CLIENT;
 * auth is NNG_TLS_AUTH_MODE_NONE, _OPTIONAL or _REQUIRED (REQUIRED on a
 * server means client certificates must be presented and chain to f->ca).
 * Versions are TLS 1.2 minimum, 1.3 maximum (1.3 is preferred when both
 * sides have it).  On success *out holds a config that the caller releases
 * with nng_tls_config_free().  Errors: CS_ENOENT (a file is missing or
 * unreadable), CS_ETLS (wolfSSL refused a certificate or key: the log names
 * the file and wolfSSL's reason), CS_ENOMEM.  Calls cs_tls_init() itself.
 */
int cs_tls_config_make(nng_tls_config **out, nng_tls_mode mode,
    nng_tls_auth_mode auth, const struct cs_tls_files *f);

/*
 * Version and cipher suite of the most recent TLS handshake completed in
 * this process, e.g. "TLSv1.3" and "TLS_AES_128_GCM_SHA256".  nng 1.5 gives
 * no way from a pipe to its TLS session, so this is process-wide: exact for
 * a client with one connection (countersign-station ping), indicative
 * otherwise.  Writes at most len bytes (NUL-terminated) to each non-NULL
 * buffer; returns false when no handshake has completed yet.
 */
bool cs_tls_last_handshake(char *version, size_t vlen, char *cipher,
    size_t clen);

/*
 * Budgets for the server connections nng itself accepts through this
 * engine (the web console's HTTPS server; the station and admin ports use
 * cs_srv.h instead): process-wide, for every server-mode configuration.
 * Over a cap, a new connection is refused (nng closes it and goes on
 * accepting); one that has not finished its handshake within handshake_ms
 * or moved no byte for idle_ms is closed.  0 fields take the defaults in
 * brackets.  Errors: CS_ENOMEM (no timer thread).
 */
struct cs_tls_limits {
	unsigned handshake_ms;   /* [10000] */
	unsigned idle_ms;        /* [60000] */
	unsigned max_conns;      /* [256] */
	unsigned max_per_source; /* [32] */
};
int cs_tls_server_limits(const struct cs_tls_limits *lim);

struct cs_tls_gate_stats {
	unsigned open;     /* connections now */
	uint64_t refused;  /* over a cap */
	uint64_t timeouts; /* handshake deadline */
	uint64_t idle;     /* idle timeout */
};
void cs_tls_server_limits_stats(struct cs_tls_gate_stats *st);

/* ------------------------------------------------------------------ */
/* Server sessions on plain file descriptors                           */
/* ------------------------------------------------------------------ */

/*
 * For servers that run their own connection handling (cs_srv.h: budgets,
 * deadlines and caps that nng 1.5.2's listeners do not have), the same
 * wolfSSL setup without nng: a server context made from PEM files, and one
 * non-blocking session per accepted socket.  Same policy, same certificate
 * checks, same log lines as the nng engine.
 */
typedef struct cs_tls_server cs_tls_server;
typedef struct cs_tls_sess   cs_tls_sess;

/*
 * Make a server context.  f->cert and f->key are required; with
 * require_peer a client certificate chaining to f->ca is required (and
 * checked against f->crl when given: then every client certificate's
 * issuer needs a CRL there).  Errors as cs_tls_config_make().  The
 * context is reference-counted: sessions hold it, and
 * cs_tls_server_release() drops the caller's reference.
 */
int cs_tls_server_make(cs_tls_server **out, const struct cs_tls_files *f,
    bool require_peer);

/* Take another reference (for a new owner); NULL-safe, returns s. */
cs_tls_server *cs_tls_server_hold(cs_tls_server *s);

/* Drop one reference; the last one frees the context.  NULL-safe. */
void cs_tls_server_release(cs_tls_server *s);

/*
 * A server session over fd, which must be a connected, non-blocking
 * stream socket that stays open until cs_tls_sess_free().  The session
 * holds a reference to s.  Errors: CS_ENOMEM.
 */
int cs_tls_sess_new(cs_tls_sess **out, cs_tls_server *s, int fd);

/*
 * Advance the handshake.  CS_OK once it is complete; CS_EAGAIN when it
 * waits for the socket (cs_tls_sess_wants_write() says in which
 * direction); otherwise final: CS_EPEERAUTH (the client's certificate was
 * missing, not from the CA, expired or revoked), CS_ECLOSED (the peer hung
 * up), CS_ETLS (protocol failure, e.g. no suite in common).  Nothing is
 * logged here: cs_tls_sess_error() says why, for the server's own
 * (rate-limited) log.
 */
int cs_tls_sess_handshake(cs_tls_sess *t);

/*
 * Read up to len decrypted bytes: CS_OK with *n > 0, CS_EAGAIN, or final
 * CS_ECLOSED / CS_ETLS.
 */
int cs_tls_sess_read(cs_tls_sess *t, void *buf, size_t len, size_t *n);

/*
 * Write all of buf (len > 0): CS_OK when wolfSSL took it, CS_EAGAIN when
 * the socket is full -- then call again later with the same buf and len
 * (wolfSSL keeps the record it started) -- or final CS_ECLOSED / CS_ETLS.
 */
int cs_tls_sess_write(cs_tls_sess *t, const void *buf, size_t len);

/* Why the session failed, in words with wolfSSL's code ("none"). */
const char *cs_tls_sess_error(const cs_tls_sess *t);

/* True when the last CS_EAGAIN waits for the socket to become writable. */
bool cs_tls_sess_wants_write(const cs_tls_sess *t);

/* True when decrypted bytes are buffered (read them before polling). */
bool cs_tls_sess_pending(const cs_tls_sess *t);

/* Bytes the session handed to its socket so far (records, alerts). */
uint64_t cs_tls_sess_bytes_out(const cs_tls_sess *t);

/*
 * After the handshake: the common name of the verified client certificate
 * ("" when none), and its version and suite ("TLSv1.3",
 * "TLS_AES_128_GCM_SHA256").  Pointers live as long as the session.
 */
const char *cs_tls_sess_peer_name(const cs_tls_sess *t);
const char *cs_tls_sess_version(const cs_tls_sess *t);
const char *cs_tls_sess_cipher(const cs_tls_sess *t);

/* Free the session (no close_notify: the caller closes the socket). */
void cs_tls_sess_free(cs_tls_sess *t);

#endif /* CS_TLS_H */
