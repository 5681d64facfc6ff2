/*
 * cs_tls_impl.h - what the pieces of the TLS module share: the wolfSSL
 * features they rely on, nng's engine config and connection structs as
 * this engine fills them, and the functions one piece calls in another.
 * Only cs_tls.c, cs_tls_policy.c, cs_tls_gate.c and cs_tls_sess.c include
 * it; cs_tls.h is the module's interface.
 */
#ifndef CS_TLS_IMPL_H
#define CS_TLS_IMPL_H

#include "cs_tls.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/openssl/evp.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/engine.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The features this module relies on.  Debian 12's libwolfssl has them
 * all; a build without them would silently lose checks, so refuse to
 * compile.
 */
#if !defined(OPENSSL_EXTRA) || !defined(KEEP_PEER_CERT)
#error "cs_tls.c needs wolfSSL with OPENSSL_EXTRA and KEEP_PEER_CERT"
#endif
#if !defined(WOLFSSL_ALWAYS_VERIFY_CB)
#error "cs_tls.c needs WOLFSSL_ALWAYS_VERIFY_CB (the IP address check)"
#endif
#if !defined(WOLFSSL_TLS13) || !defined(HAVE_CRL) || !defined(HAVE_SNI)
#error "cs_tls.c needs wolfSSL with TLS 1.3, CRL and SNI support"
#endif

/* Longest expected server name: a DNS name is at most 253 characters. */
#define TLS_NAME_MAX 253

struct nng_tls_engine_config {
	WOLFSSL_CTX      *ctx;
	nng_tls_mode      mode;
	nng_tls_auth_mode auth;
	char              name[TLS_NAME_MAX + 1]; /* "" when none */
	bool              name_is_ip;
	uint8_t           ip[16]; /* name as an address, when name_is_ip */
	size_t            ip_len; /* 4 or 16 */
};

struct nng_tls_engine_conn {
	WOLFSSL               *ssl;
	nng_tls_engine_config *cfg; /* nng holds it for the conn's lifetime */
	bool                   hs_done;
	bool                   sent; /* bytes went out in this wolfSSL call */
	int                    failed; /* nng error once failed, else 0 */
	bool                   quiet;  /* cs_tls_sess: the server logs */
	char                   why[160]; /* the failure, for the server */
	struct gate_ent       *gate;   /* nng server connections: budget */
};


/* The PEM texts named by a struct cs_tls_files (NULL where unnamed). */
struct tls_pems {
	char  *cert, *key, *ca, *crl;
	size_t cert_len, key_len, ca_len, crl_len;
};

/* cs_tls.c: the engine's connections. */

/* wolfSSL's text for error err, never NULL. */
const char *tls_reason(int err);

/* wolfSSL's record I/O over nng's TCP stream (the ctx callbacks). */
int tls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg);
int tls_io_send(WOLFSSL *ssl, char *buf, int sz, void *arg);

/*
 * Turns wolfSSL result rc of operation op ("handshake", "receive",
 * "send") on ec into an nng error, records and logs a failure once.
 */
int tls_conn_error(nng_tls_engine_conn *ec, int rc, const char *op);

/* Runs ec's handshake on; 0 once done, NNG_EAGAIN while it waits. */
int tls_conn_handshake(nng_tls_engine_conn *ec);

/* cs_tls_policy.c: the config operations, where the policy is set. */

int  tls_config_init(nng_tls_engine_config *cfg, nng_tls_mode mode);
void tls_config_fini(nng_tls_engine_config *cfg);
int  tls_config_version(nng_tls_engine_config *cfg, nng_tls_version min_ver,
     nng_tls_version max_ver);
int  tls_config_auth(nng_tls_engine_config *cfg, nng_tls_auth_mode mode);
int  tls_config_server(nng_tls_engine_config *cfg, const char *name);
int  tls_config_ca_chain(nng_tls_engine_config *cfg, const char *certs,
     const char *crl);
int  tls_config_own_cert(nng_tls_engine_config *cfg, const char *cert,
     const char *key, const char *pass);

/* Read every file f names; on failure nothing stays allocated. */
int  tls_pems_read(const struct cs_tls_files *f, struct tls_pems *p);
/* Wipes and frees what tls_pems_read() read. */
void tls_pems_free(struct tls_pems *p);

/* cs_tls_gate.c: the budget of nng's own servers' connections. */

/* Admits ec (nng's TLS stream tls) or refuses it with an nng error. */
int  tls_gate_admit(nng_tls_engine_conn *ec, void *tls);
void tls_gate_leave(nng_tls_engine_conn *ec);
/* Notes that ec moved bytes (it is not idle). */
void tls_gate_touch(nng_tls_engine_conn *ec);

/* The count of the failed server handshakes not logged one by one, when
 * their window has ended (the gate's timer calls it, so that the count of
 * a flood's last window is not lost). */
void tls_server_log_flush(void);
/* Notes that ec's handshake is done (the deadline no longer applies). */
void tls_gate_handshake_done(nng_tls_engine_conn *ec);

#endif /* CS_TLS_IMPL_H */
