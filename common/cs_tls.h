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
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

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

#endif /* CS_TLS_H */
