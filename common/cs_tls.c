/*
 * cs_tls.c - wolfSSL as nng's TLS engine, and TLS configurations made from
 * PEM files.
 *
 * Debian's nng 1.5.2 is built with mbedTLS, but Countersign's one crypto
 * library is wolfSSL (the HSM shim, the signing pipeline and the device
 * verifier all use wolfCrypt), so this file plugs wolfSSL into nng through
 * nng's public engine API (<nng/supplemental/tls/engine.h>): a table of
 * config operations over one WOLFSSL_CTX per nng_tls_config, and a table of
 * connection operations over one WOLFSSL per connection, whose I/O goes
 * through nng_tls_engine_send()/nng_tls_engine_recv().
 *
 * What wolfSSL does not do for us, and is done here:
 *  - An expected server name that is an IP literal must match an IP address
 *    in the certificate's subjectAltName.  wolfSSL's own check
 *    (wolfSSL_check_domain_name, X509_check_ip_asc) compares strings: it
 *    also accepts a dNSName or, with no SANs at all, a CN spelled like the
 *    address, and it prints IPv6 addresses in a form nobody writes.  So IP
 *    literals are checked in a verify callback by comparing the binary
 *    address with each iPAddress SAN; DNS names use wolfSSL's check.
 *  - TLS 1.0/1.1 are refused whatever nng asks for (Debian's wolfSSL has
 *    TLS 1.1 compiled in), and only the AEAD suites of CS_TLS_CIPHERS are
 *    enabled (Debian's build also has NULL, anonymous, RC4, 3DES and CBC
 *    suites compiled in, and wolfSSL's default list selects some of them).
 *  - Failures are translated into nng's errors (certificate problems into
 *    NNG_EPEERAUTH) and logged once per connection with wolfSSL's reason.
 *
 * The same contexts also serve plain sockets without nng (cs_tls_server,
 * cs_tls_sess at the end of this file), for servers that enforce their
 * own connection budgets; they share the policy, the checks and the error
 * translation.
 *
 * nng holds its connection lock around every connection operation and its
 * config lock around every config operation, and a config can no longer be
 * changed once a connection uses it, so the engine needs no locks of its
 * own.  The only shared state is the once-control of cs_tls_init() and the
 * record of the last completed handshake, behind its own mutex.
 */
#include "cs_tls.h"
#include "cs_err.h"
#include "cs_log.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/openssl/evp.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/engine.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * The features this file relies on.  Debian 12's libwolfssl has them all;
 * a build without them would silently lose checks, so refuse to compile.
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

/* Largest PEM file we read (certificate chains, CA bundles, CRLs). */
#define TLS_PEM_MAX (1024 * 1024)

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

static void gate_touch(nng_tls_engine_conn *ec);

/* The record behind cs_tls_last_handshake(). */
static pthread_mutex_t tls_last_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	bool valid;
	char version[16];
	char cipher[64];
} tls_last;

/* cs_tls_init()'s once-control and the result it computed once. */
static pthread_once_t tls_once    = PTHREAD_ONCE_INIT;
static int            tls_once_rv = CS_EINTERNAL;

static const char *
tls_reason(int err)
{
	const char *s = wolfSSL_ERR_reason_error_string((unsigned long)err);
	return s != NULL ? s : "unknown";
}

/* ------------------------------------------------------------------ */
/* I/O: wolfSSL reads and writes records through nng's TCP stream.    */

static int
tls_io_error(int rv, int again)
{
	switch (rv) {
	case NNG_EAGAIN:
		return again;
	case NNG_ECLOSED:
	case NNG_ECONNSHUT:
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	case NNG_ECONNRESET:
		return WOLFSSL_CBIO_ERR_CONN_RST;
	default:
		return WOLFSSL_CBIO_ERR_GENERAL;
	}
}

static int
tls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	size_t n = (size_t)sz;
	int    rv;

	(void)ssl;
	if (sz <= 0) {
		return 0;
	}
	if ((rv = nng_tls_engine_recv(arg, (uint8_t *)buf, &n)) != 0) {
		return tls_io_error(rv, WOLFSSL_CBIO_ERR_WANT_READ);
	}
	gate_touch(wolfSSL_get_app_data(ssl));
	return (int)n;
}

static int
tls_io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	nng_tls_engine_conn *ec = wolfSSL_get_app_data(ssl);
	size_t               n  = (size_t)sz;
	int                  rv;

	if (sz <= 0) {
		return 0;
	}
	if ((rv = nng_tls_engine_send(arg, (const uint8_t *)buf, &n)) != 0) {
		return tls_io_error(rv, WOLFSSL_CBIO_ERR_WANT_WRITE);
	}
	if (ec != NULL) {
		ec->sent = true;
		gate_touch(ec);
	}
	return (int)n;
}

/* ------------------------------------------------------------------ */
/* Peer name checks.                                                  */

/* True when one of x's subjectAltName iPAddress entries equals ip. */
static bool
tls_cert_has_ip(WOLFSSL_X509 *x, const uint8_t *ip, size_t ip_len)
{
	WOLFSSL_STACK *sans;
	bool           found = false;

	sans = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (sans == NULL) {
		return false;
	}
	for (int i = 0; i < wolfSSL_sk_GENERAL_NAME_num(sans) && !found; i++) {
		WOLFSSL_GENERAL_NAME *gn =
		    wolfSSL_sk_GENERAL_NAME_value(sans, i);
		if (gn == NULL || gn->type != ASN_IP_TYPE ||
		    gn->d.iPAddress == NULL) {
			continue;
		}
		const unsigned char *a =
		    wolfSSL_ASN1_STRING_get0_data(gn->d.iPAddress);
		int alen = wolfSSL_ASN1_STRING_length(gn->d.iPAddress);
		found    = a != NULL && alen == (int)ip_len &&
		        memcmp(a, ip, ip_len) == 0;
	}
	wolfSSL_GENERAL_NAMES_free(sans);
	return found;
}

/*
 * Verify callback, installed whenever peers are verified.  wolfSSL calls it
 * for every certificate of the chain, after its own checks (preverify).  It
 * never overrides a failure; for the leaf it adds the IP address check.
 */
static int
tls_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	WOLFSSL             *ssl;
	nng_tls_engine_conn *ec;
	WOLFSSL_X509        *x;

	if (!preverify) {
		return 0;
	}
	if (wolfSSL_X509_STORE_CTX_get_error_depth(store) != 0) {
		return 1;
	}
	ssl = wolfSSL_X509_STORE_CTX_get_ex_data(
	    store, wolfSSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || (ec = wolfSSL_get_app_data(ssl)) == NULL) {
		return 0; /* cannot tell what to check: fail closed */
	}
	if (!ec->cfg->name_is_ip) {
		return 1; /* DNS names: wolfSSL_check_domain_name() */
	}
	x = wolfSSL_X509_STORE_CTX_get_current_cert(store);
	if (x == NULL || !tls_cert_has_ip(x, ec->cfg->ip, ec->cfg->ip_len)) {
		cs_log_warn("tls",
		            "peer certificate has no matching IP address "
		            "expected=%s",
		            ec->cfg->name);
		wolfSSL_X509_STORE_CTX_set_error(store,
		                                 X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ */
/* The gate: budgets for connections that nng's own servers accept.   */

/*
 * nng 1.5.2's HTTP server (the console) has no handshake deadline, no idle
 * timeout and no connection cap, and its TLS stream loses a TCP error
 * that arrives while no read is queued (such a connection is never freed).
 * Its connections all pass through this engine, so the budget is kept
 * here: a connection over the total or per-address cap is refused when
 * nng creates it (conn init fails; nng frees it and accepts the next), and
 * a timer closes those that have not finished their handshake within
 * handshake_ms or that have moved no byte for idle_ms.
 *
 * Closing needs the stream: the `tls` handle nng passes to conn init is
 * its TLS stream, whose first member is the nng_stream that
 * nng_stream_close() takes (nng 1.5.2, src/supplemental/tls/tls_common.c).
 * That is nng's layout, not its documented API; Debian 12 ships exactly
 * this nng, and tests/integration/station_port_test.c checks the
 * behaviour.  Lock order: gate.mtx, then nng's connection lock (inside
 * nng_stream_close); engine operations never take gate.mtx, conn init and
 * fini run without nng's connection lock.
 */
struct gate_ent {
	struct gate_ent *prev, *next;
	void            *tls;     /* nng's TLS stream */
	uint8_t          src[16]; /* peer address, v4-mapped */
	uint64_t         t_open;
	uint64_t         t_last;  /* atomic: last byte moved */
	bool             hs_done; /* atomic */
	bool             closing;
};

static struct {
	pthread_mutex_t      mtx;
	bool                 on;
	struct cs_tls_limits lim;
	struct gate_ent     *head;
	unsigned             n;
	bool                 timer_started;
	pthread_t            timer;
	uint64_t             refused, timeouts, idle;
	uint64_t             log_at;
} gate = {.mtx = PTHREAD_MUTEX_INITIALIZER};

static uint64_t
gate_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
gate_touch(nng_tls_engine_conn *ec)
{
	if (ec != NULL && ec->gate != NULL) {
		__atomic_store_n(&ec->gate->t_last, gate_now(),
		                 __ATOMIC_RELAXED);
	}
}

static void *
gate_timer(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec d = {.tv_nsec = 200 * 1000 * 1000};
		nanosleep(&d, NULL);
		uint64_t now = gate_now();
		pthread_mutex_lock(&gate.mtx);
		for (struct gate_ent *e = gate.head; e != NULL; e = e->next) {
			uint64_t last =
			    __atomic_load_n(&e->t_last, __ATOMIC_RELAXED);
			bool hs = __atomic_load_n(&e->hs_done, __ATOMIC_RELAXED);
			bool late = !hs && now > e->t_open &&
			            now - e->t_open >= gate.lim.handshake_ms;
			bool idle = now > last && now - last >= gate.lim.idle_ms;
			if (e->closing || (!late && !idle)) {
				continue;
			}
			e->closing = true;
			if (late) {
				gate.timeouts++;
			} else {
				gate.idle++;
			}
			nng_stream_close((nng_stream *)e->tls);
		}
		pthread_mutex_unlock(&gate.mtx);
	}
	return NULL;
}

/* At conn init (server side): admit the connection, or refuse it. */
static int
gate_admit(nng_tls_engine_conn *ec, void *tls)
{
	nng_sockaddr     sa;
	uint8_t          key[16] = {0};
	unsigned         same    = 0;
	struct gate_ent *e;
	int              rv = 0;

	pthread_mutex_lock(&gate.mtx);
	if (!gate.on) {
		pthread_mutex_unlock(&gate.mtx);
		return 0;
	}
	if (nng_stream_get_addr((nng_stream *)tls, NNG_OPT_REMADDR, &sa) ==
	    0) {
		if (sa.s_family == NNG_AF_INET) {
			key[10] = key[11] = 0xff;
			memcpy(key + 12, &sa.s_in.sa_addr, 4);
		} else if (sa.s_family == NNG_AF_INET6) {
			memcpy(key, sa.s_in6.sa_addr, 16);
		}
	}
	for (e = gate.head; e != NULL; e = e->next) {
		same += memcmp(e->src, key, 16) == 0 ? 1u : 0u;
	}
	if (gate.n >= gate.lim.max_conns || same >= gate.lim.max_per_source) {
		uint64_t now = gate_now();
		gate.refused++;
		if (now >= gate.log_at) {
			cs_log_warn("tls", "connection refused: %s open=%u "
			                   "refused_total=%llu",
			            gate.n >= gate.lim.max_conns
			                ? "max_connections reached"
			                : "max_connections_per_source reached",
			            gate.n, (unsigned long long)gate.refused);
			gate.log_at = now + 10000;
		}
		rv = NNG_ECONNREFUSED;
	} else if ((e = calloc(1, sizeof(*e))) == NULL) {
		rv = NNG_ENOMEM;
	} else {
		e->tls    = tls;
		e->t_open = e->t_last = gate_now();
		memcpy(e->src, key, 16);
		e->next = gate.head;
		if (gate.head != NULL) {
			gate.head->prev = e;
		}
		gate.head = e;
		gate.n++;
		ec->gate = e;
	}
	pthread_mutex_unlock(&gate.mtx);
	return rv;
}

static void
gate_leave(nng_tls_engine_conn *ec)
{
	struct gate_ent *e = ec->gate;

	if (e == NULL) {
		return;
	}
	pthread_mutex_lock(&gate.mtx);
	if (e->prev != NULL) {
		e->prev->next = e->next;
	} else {
		gate.head = e->next;
	}
	if (e->next != NULL) {
		e->next->prev = e->prev;
	}
	gate.n--;
	pthread_mutex_unlock(&gate.mtx);
	free(e);
	ec->gate = NULL;
}

int
cs_tls_server_limits(const struct cs_tls_limits *lim)
{
	int rv = CS_OK;

	pthread_mutex_lock(&gate.mtx);
	gate.lim = *lim;
	if (gate.lim.handshake_ms == 0) {
		gate.lim.handshake_ms = 10000;
	}
	if (gate.lim.idle_ms == 0) {
		gate.lim.idle_ms = 60000;
	}
	if (gate.lim.max_conns == 0) {
		gate.lim.max_conns = 256;
	}
	if (gate.lim.max_per_source == 0) {
		gate.lim.max_per_source = 32;
	}
	if (!gate.timer_started) {
		if (pthread_create(&gate.timer, NULL, gate_timer, NULL) != 0) {
			rv = CS_ENOMEM;
		} else {
			pthread_detach(gate.timer);
			gate.timer_started = true;
		}
	}
	gate.on = rv == CS_OK;
	pthread_mutex_unlock(&gate.mtx);
	return rv;
}

void
cs_tls_server_limits_stats(struct cs_tls_gate_stats *st)
{
	pthread_mutex_lock(&gate.mtx);
	st->open      = gate.n;
	st->refused   = gate.refused;
	st->timeouts  = gate.timeouts;
	st->idle      = gate.idle;
	pthread_mutex_unlock(&gate.mtx);
}

/* ------------------------------------------------------------------ */
/* Connection operations.                                             */

/* True for wolfSSL errors that mean the peer's certificate (or the lack
 * of one) was not accepted. */
static bool
tls_is_cert_error(int err)
{
	switch (err) {
	case DOMAIN_NAME_MISMATCH:
	case IPADDR_MISMATCH:
	case VERIFY_CERT_ERROR:
	case NO_PEER_CERT:
	case NO_PEER_VERIFY:
	case NOT_CA_ERROR:
	case CRL_CERT_REVOKED:
	case CRL_MISSING:
	case OCSP_CERT_REVOKED:
	case KEYUSE_SIGNATURE_E:
	case KEYUSE_ENCIPHER_E:
	case EXTKEYUSE_AUTH_E:
	case ASN_NO_SIGNER_E:
	case ASN_BEFORE_DATE_E:
	case ASN_AFTER_DATE_E:
	case ASN_SIG_CONFIRM_E:
	case ASN_SELF_SIGNED_E:
	case ASN_CRIT_EXT_E:
	case ASN_NAME_INVALID_E:
	case CRL_CERT_DATE_ERR:
	case ASN_CRL_CONFIRM_E:
	case ASN_CRL_NO_SIGNER_E:
		return true;
	default:
		return false;
	}
}

/* True for alerts by which a peer says it did not accept our certificate. */
static bool
tls_is_cert_alert(int code)
{
	switch (code) {
	case bad_certificate:
	case unsupported_certificate:
	case certificate_revoked:
	case certificate_expired:
	case certificate_unknown:
	case unknown_ca:
	case access_denied:
	case certificate_required:
		return true;
	default:
		return false;
	}
}

/*
 * Translate the result rc of a wolfSSL call made for op ("handshake",
 * "receive", "send") into an nng error.  Failures are final: they are
 * logged once, and later calls return the same error.
 */
static int
tls_conn_error(nng_tls_engine_conn *ec, int rc, const char *op)
{
	WOLFSSL_ALERT_HISTORY h;
	int                   err = wolfSSL_get_error(ec->ssl, rc);
	int                   rv;
	bool                  cert_alert, peer_closed;

	if (err == WOLFSSL_ERROR_WANT_READ ||
	    err == WOLFSSL_ERROR_WANT_WRITE) {
		return NNG_EAGAIN;
	}
	memset(&h, 0, sizeof(h));
	wolfSSL_get_alert_history(ec->ssl, &h);
	cert_alert = err == FATAL_ERROR && tls_is_cert_alert(h.last_rx.code);

	/*
	 * A peer's close is NNG_ECONNSHUT, never NNG_ECLOSED: nng 1.5.2's
	 * TLS transport hands a failed connection's error to its listener's
	 * accept, and the listener stops accepting for good on NNG_ECLOSED
	 * (it means "listener closed" there).
	 */
	peer_closed =
	    err == WOLFSSL_ERROR_ZERO_RETURN || err == SOCKET_PEER_CLOSED_E;
	if (peer_closed) {
		rv = NNG_ECONNSHUT;
	} else if (tls_is_cert_error(err) || cert_alert) {
		rv = NNG_EPEERAUTH;
	} else {
		rv = NNG_ECRYPTO;
	}
	/*
	 * On a server, nng hands a failed connection's error to its
	 * listener's accept and pauses accepting for 100 ms on anything but
	 * NNG_ECONNRESET, NNG_ECONNABORTED, NNG_ETIMEDOUT and NNG_EPEERAUTH.
	 * A client that hangs up or sends garbage must not be able to stall
	 * the listener that way, so a server reports those two as remote
	 * conditions.
	 */
	if (ec->cfg->mode == NNG_TLS_MODE_SERVER) {
		if (rv == NNG_ECONNSHUT) {
			rv = NNG_ECONNRESET;
		} else if (rv == NNG_ECRYPTO) {
			rv = NNG_ECONNABORTED;
		}
	}
	ec->failed = rv;

	/*
	 * A peer that hangs up after the handshake is ordinary; anything
	 * else is worth a line.  With TLS 1.3 a server judges the client's
	 * certificate after the client has finished its handshake, so the
	 * refusal reaches the client as an alert on its first read: that is
	 * a failed handshake too, and is reported as one.
	 */
	snprintf(ec->why, sizeof(ec->why), "%s (wolfssl_err=%d alert_rx=%d)",
	         peer_closed || err == SOCKET_ERROR_E
	             ? "peer hung up"
	             : tls_reason(err),
	         err, h.last_rx.code);
	if (ec->quiet) {
		/* A server of plain sockets logs it, within its budget. */
	} else if (peer_closed && ec->hs_done) {
		cs_log_debug("tls", "connection closed by peer op=%s", op);
	} else if (!ec->hs_done || cert_alert) {
		cs_log_warn(
		    "tls",
		    "handshake failed reason=\"%s\" wolfssl_err=%d side=%s "
		    "op=%s alert_rx=%d alert_tx=%d",
		    tls_reason(err), err,
		    ec->cfg->mode == NNG_TLS_MODE_SERVER ? "server" : "client",
		    op, h.last_rx.code, h.last_tx.code);
	} else {
		cs_log_warn(
		    "tls",
		    "connection failed reason=\"%s\" wolfssl_err=%d op=%s "
		    "alert_rx=%d",
		    tls_reason(err), err, op, h.last_rx.code);
	}
	/* Our thread's wolfSSL error queue has no later reader. */
	wolfSSL_ERR_clear_error();
	return rv;
}

static void
tls_record_handshake(WOLFSSL *ssl)
{
	int         suite   = wolfSSL_get_current_cipher_suite(ssl);
	const char *version = wolfSSL_get_version(ssl);
	const char *cipher  = wolfSSL_get_cipher_name_iana_from_suite(
	     (unsigned char)((suite >> 8) & 0xff),
	     (unsigned char)(suite & 0xff));

	pthread_mutex_lock(&tls_last_lock);
	snprintf(tls_last.version, sizeof(tls_last.version), "%s",
	         version != NULL ? version : "unknown");
	snprintf(tls_last.cipher, sizeof(tls_last.cipher), "%s",
	         cipher != NULL ? cipher : "unknown");
	tls_last.valid = true;
	pthread_mutex_unlock(&tls_last_lock);
}

static int
tls_conn_init(nng_tls_engine_conn *ec, void *tls, nng_tls_engine_config *cfg)
{
	int rv;

	ec->cfg = cfg;
	if (cfg->mode == NNG_TLS_MODE_SERVER &&
	    (rv = gate_admit(ec, tls)) != 0) {
		return rv;
	}
	if ((ec->ssl = wolfSSL_new(cfg->ctx)) == NULL) {
		return NNG_ENOMEM;
	}
	wolfSSL_SetIOReadCtx(ec->ssl, tls);
	wolfSSL_SetIOWriteCtx(ec->ssl, tls);
	if (wolfSSL_set_app_data(ec->ssl, ec) != WOLFSSL_SUCCESS) {
		return NNG_ENOMEM;
	}
	/*
	 * The expected name goes in SNI and is checked by wolfSSL when it is
	 * a DNS name; an IP literal is not allowed in SNI (RFC 6066) and is
	 * checked by tls_verify_cb().
	 */
	if (cfg->mode == NNG_TLS_MODE_CLIENT && cfg->name[0] != '\0' &&
	    !cfg->name_is_ip) {
		if (wolfSSL_UseSNI(ec->ssl, WOLFSSL_SNI_HOST_NAME, cfg->name,
		                   (unsigned short)strlen(cfg->name)) !=
		        WOLFSSL_SUCCESS ||
		    wolfSSL_check_domain_name(ec->ssl, cfg->name) !=
		        WOLFSSL_SUCCESS) {
			return NNG_ENOMEM;
		}
	}
	return 0;
}

static void
tls_conn_fini(nng_tls_engine_conn *ec)
{
	/* nng may call this for a connection whose init never ran. */
	gate_leave(ec);
	if (ec->ssl != NULL) {
		wolfSSL_free(ec->ssl);
		ec->ssl = NULL;
	}
}

static void
tls_conn_close(nng_tls_engine_conn *ec)
{
	/* Best effort close_notify; nng closes the TCP stream right after. */
	if (ec->ssl != NULL && ec->hs_done && ec->failed == 0) {
		(void)wolfSSL_shutdown(ec->ssl);
	}
}

static int
tls_conn_handshake(nng_tls_engine_conn *ec)
{
	int rc;
	int rv;

	if (ec->failed != 0) {
		return ec->failed;
	}
	if (ec->hs_done) {
		return 0;
	}
	ec->sent = false;
	if ((rc = wolfSSL_negotiate(ec->ssl)) != WOLFSSL_SUCCESS) {
		rv = tls_conn_error(ec, rc, "handshake");
		/*
		 * Let the alert out before nng hangs up.  nng 1.5.2 closes
		 * the TCP connection as soon as a handshake fails, and an
		 * alert still queued behind an earlier write is lost: the
		 * peer sees a bare hang-up.  That costs more than the
		 * reason.  A hang-up that reaches an nng 1.5.2 TLS stream
		 * while it has no read queued leaves its next read pending
		 * forever (its TCP read is never restarted), and a TLS 1.3
		 * client that has just sent its SP header is right there.
		 * So when an alert went out, report "again" once: nng calls
		 * back after its next TCP write completes, when the alert is
		 * with the kernel, and the failure is reported then.
		 */
		if (rv != NNG_EAGAIN && ec->sent) {
			return NNG_EAGAIN;
		}
		return rv;
	}
	if (ec->cfg->mode == NNG_TLS_MODE_SERVER &&
	    wolfSSL_session_reused(ec->ssl)) {
		/* Off in every server context; refused should it happen. */
		cs_log_warn("tls", "resumed session refused side=server");
		snprintf(ec->why, sizeof(ec->why), "session resumption is not "
		                                   "accepted");
		ec->failed = NNG_EPEERAUTH;
		return ec->failed;
	}
	ec->hs_done = true;
	if (ec->gate != NULL) {
		__atomic_store_n(&ec->gate->hs_done, true, __ATOMIC_RELAXED);
	}
	tls_record_handshake(ec->ssl);
	return 0;
}

static int
tls_conn_recv(nng_tls_engine_conn *ec, uint8_t *buf, size_t *szp)
{
	int rv;
	int n;

	/* Finish the handshake here, if nng has not, so that it is logged
	 * and recorded in one place. */
	if ((rv = tls_conn_handshake(ec)) != 0) {
		return rv;
	}
	n = (int)(*szp > INT_MAX ? INT_MAX : *szp);
	if ((n = wolfSSL_read(ec->ssl, buf, n)) <= 0) {
		return tls_conn_error(ec, n, "receive");
	}
	*szp = (size_t)n;
	return 0;
}

static int
tls_conn_send(nng_tls_engine_conn *ec, const uint8_t *buf, size_t *szp)
{
	int rv;
	int n;

	if ((rv = tls_conn_handshake(ec)) != 0) {
		return rv;
	}
	/*
	 * wolfSSL_write() sends all of it or returns WANT_WRITE, to be called
	 * again with the same buffer: nng retries the same request.
	 */
	n = (int)(*szp > INT_MAX ? INT_MAX : *szp);
	if ((n = wolfSSL_write(ec->ssl, buf, n)) <= 0) {
		return tls_conn_error(ec, n, "send");
	}
	*szp = (size_t)n;
	return 0;
}

static bool
tls_conn_verified(nng_tls_engine_conn *ec)
{
	WOLFSSL_X509 *peer;

	if (ec->ssl == NULL || !ec->hs_done || ec->failed != 0 ||
	    ec->cfg->auth == NNG_TLS_AUTH_MODE_NONE) {
		return false;
	}
	if ((peer = wolfSSL_get_peer_certificate(ec->ssl)) == NULL) {
		return false;
	}
	wolfSSL_X509_free(peer);
	return wolfSSL_get_verify_result(ec->ssl) == X509_V_OK;
}

/* ------------------------------------------------------------------ */
/* Config operations.                                                 */

static int
tls_config_version(nng_tls_engine_config *cfg, nng_tls_version min_ver,
                   nng_tls_version max_ver)
{
	/* nng's version numbers are the protocol's, as are wolfSSL's. */
	if (min_ver < NNG_TLS_1_2) {
		min_ver = NNG_TLS_1_2; /* TLS 1.0 and 1.1 are never offered */
	}
	if (max_ver > NNG_TLS_1_3) {
		max_ver = NNG_TLS_1_3;
	}
	if (max_ver < min_ver) {
		return NNG_ENOTSUP;
	}
	if (wolfSSL_CTX_set_min_proto_version(cfg->ctx, (int)min_ver) !=
	        WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_max_proto_version(cfg->ctx, (int)max_ver) !=
	        WOLFSSL_SUCCESS) {
		return NNG_ENOTSUP;
	}
	return 0;
}

static int
tls_config_auth(nng_tls_engine_config *cfg, nng_tls_auth_mode mode)
{
	int flags;

	switch (mode) {
	case NNG_TLS_AUTH_MODE_NONE:
		wolfSSL_CTX_set_verify(cfg->ctx, WOLFSSL_VERIFY_NONE, NULL);
		cfg->auth = mode;
		return 0;
	case NNG_TLS_AUTH_MODE_OPTIONAL:
		flags = WOLFSSL_VERIFY_PEER;
		break;
	case NNG_TLS_AUTH_MODE_REQUIRED:
		flags = WOLFSSL_VERIFY_PEER;
		if (cfg->mode == NNG_TLS_MODE_SERVER) {
			flags |= WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		}
		break;
	default:
		return NNG_EINVAL;
	}
	wolfSSL_CTX_set_verify(cfg->ctx, flags, tls_verify_cb);
	cfg->auth = mode;
	return 0;
}

static int
tls_config_server(nng_tls_engine_config *cfg, const char *name)
{
	size_t len = name != NULL ? strlen(name) : 0;

	if (len > TLS_NAME_MAX) {
		return NNG_EINVAL;
	}
	memcpy(cfg->name, name != NULL ? name : "", len);
	cfg->name[len]  = '\0';
	cfg->name_is_ip = false;
	cfg->ip_len     = 0;
	if (inet_pton(AF_INET, cfg->name, cfg->ip) == 1) {
		cfg->name_is_ip = true;
		cfg->ip_len     = 4;
	} else if (inet_pton(AF_INET6, cfg->name, cfg->ip) == 1) {
		cfg->name_is_ip = true;
		cfg->ip_len     = 16;
	}
	/* Used by clients only (a server's SNI is not checked). */
	return 0;
}

/* Load every "X509 CRL" PEM block of pem; NNG_EINVAL if there is none. */
static int
tls_load_crls(WOLFSSL_CTX *ctx, const char *pem)
{
	static const char begin[] = "-----BEGIN X509 CRL-----";
	static const char end[]   = "-----END X509 CRL-----";
	const char       *p       = pem;
	const char       *q;
	int               n = 0;
	int               rc;

	while ((p = strstr(p, begin)) != NULL) {
		if ((q = strstr(p, end)) == NULL) {
			cs_log_warn("tls",
			            "CRL not accepted reason=\"unterminated "
			            "PEM CRL\"");
			return NNG_EINVAL;
		}
		q += sizeof(end) - 1;
		rc = wolfSSL_CTX_LoadCRLBuffer(ctx, (const unsigned char *)p,
		                               (long)(q - p),
		                               WOLFSSL_FILETYPE_PEM);
		if (rc != WOLFSSL_SUCCESS) {
			cs_log_warn(
			    "tls",
			    "CRL not accepted reason=\"%s\" wolfssl_err=%d",
			    tls_reason(rc), rc);
			return NNG_EINVAL;
		}
		n++;
		p = q;
	}
	if (n == 0) {
		cs_log_warn("tls", "CRL not accepted reason=\"no PEM CRL\"");
		return NNG_EINVAL;
	}
	return 0;
}

static int
tls_config_ca_chain(nng_tls_engine_config *cfg, const char *certs,
                    const char *crl)
{
	int rc;

	if (certs == NULL) {
		return NNG_EINVAL;
	}
	rc = wolfSSL_CTX_load_verify_buffer(
	    cfg->ctx, (const unsigned char *)certs, (long)strlen(certs),
	    WOLFSSL_FILETYPE_PEM);
	if (rc != WOLFSSL_SUCCESS) {
		cs_log_warn("tls",
		            "CA certificates not accepted reason=\"%s\" "
		            "wolfssl_err=%d",
		            tls_reason(rc), rc);
		return NNG_EINVAL;
	}
	if (crl == NULL) {
		return 0;
	}
	/*
	 * CHECKALL: every certificate the peer sends is looked up in the
	 * CRL of its issuer, and a missing CRL fails the handshake, so a CRL
	 * must be given for every CA that issues peer certificates.
	 */
	rc = wolfSSL_CTX_EnableCRL(cfg->ctx, WOLFSSL_CRL_CHECKALL);
	if (rc != WOLFSSL_SUCCESS) {
		cs_log_warn(
		    "tls",
		    "cannot enable CRL checks reason=\"%s\" wolfssl_err=%d",
		    tls_reason(rc), rc);
		return NNG_ENOMEM;
	}
	return tls_load_crls(cfg->ctx, crl);
}

/* Hands wolfSSL the key's password (the userdata of the load below). */
static int
tls_password_cb(char *buf, int size, int rwflag, void *userdata)
{
	const char *pass = userdata;
	size_t      len  = strlen(pass);

	(void)rwflag;
	if (size <= 0 || len >= (size_t)size) {
		return -1;
	}
	memcpy(buf, pass, len + 1);
	return (int)len;
}

/*
 * Prove that the loaded key is the loaded certificate's by signing with the
 * one and verifying with the other.  wolfSSL_CTX_check_private_key() is not
 * enough for EC keys in Debian's build: without WOLFSSL_VALIDATE_ECC_IMPORT
 * it only checks that the certificate's point is on the curve, so any EC
 * key passes.  For RSA it does compare the modulus, and is left to that.
 */
static bool
tls_key_matches_cert(WOLFSSL_CTX *ctx)
{
	static const char   probe[] = "cs_tls key pair check";
	WOLFSSL_EVP_PKEY   *priv    = wolfSSL_CTX_get0_privatekey(ctx);
	WOLFSSL_X509       *cert    = wolfSSL_CTX_get0_certificate(ctx);
	WOLFSSL_EVP_PKEY   *pub     = NULL;
	WOLFSSL_EVP_MD_CTX *sign    = NULL;
	WOLFSSL_EVP_MD_CTX *verify  = NULL;
	unsigned char       sig[160]; /* DER ECDSA, up to P-521 */
	size_t              siglen = sizeof(sig);
	bool                ok     = false;

	if (priv == NULL || cert == NULL) {
		return false;
	}
	if (wolfSSL_EVP_PKEY_base_id(priv) != EVP_PKEY_EC) {
		return true;
	}
	if ((pub = wolfSSL_X509_get_pubkey(cert)) == NULL ||
	    (sign = wolfSSL_EVP_MD_CTX_new()) == NULL ||
	    (verify = wolfSSL_EVP_MD_CTX_new()) == NULL) {
		goto out;
	}
	ok = wolfSSL_EVP_DigestSignInit(sign, NULL, wolfSSL_EVP_sha256(), NULL,
	                                priv) == 1 &&
	     wolfSSL_EVP_DigestSignUpdate(sign, probe, sizeof(probe)) == 1 &&
	     wolfSSL_EVP_DigestSignFinal(sign, sig, &siglen) == 1 &&
	     wolfSSL_EVP_DigestVerifyInit(verify, NULL, wolfSSL_EVP_sha256(),
	                                  NULL, pub) == 1 &&
	     wolfSSL_EVP_DigestVerifyUpdate(verify, probe, sizeof(probe)) ==
	         1 &&
	     wolfSSL_EVP_DigestVerifyFinal(verify, sig, siglen) == 1;
out:
	wolfSSL_EVP_MD_CTX_free(verify);
	wolfSSL_EVP_MD_CTX_free(sign);
	wolfSSL_EVP_PKEY_free(pub);
	return ok;
}

static int
tls_config_own_cert(nng_tls_engine_config *cfg, const char *cert,
                    const char *key, const char *pass)
{
	int rc;

	if (cert == NULL || key == NULL) {
		return NNG_EINVAL;
	}
	rc = wolfSSL_CTX_use_certificate_chain_buffer_format(
	    cfg->ctx, (const unsigned char *)cert, (long)strlen(cert),
	    WOLFSSL_FILETYPE_PEM);
	if (rc != WOLFSSL_SUCCESS) {
		cs_log_warn(
		    "tls",
		    "certificate not accepted reason=\"%s\" wolfssl_err=%d",
		    tls_reason(rc), rc);
		return NNG_EINVAL;
	}
	if (pass != NULL) {
		wolfSSL_CTX_set_default_passwd_cb(cfg->ctx, tls_password_cb);
		wolfSSL_CTX_set_default_passwd_cb_userdata(cfg->ctx,
		                                           (void *)pass);
	}
	rc = wolfSSL_CTX_use_PrivateKey_buffer(
	    cfg->ctx, (const unsigned char *)key, (long)strlen(key),
	    WOLFSSL_FILETYPE_PEM);
	if (pass != NULL) {
		/* The password is the caller's: do not keep a pointer. */
		wolfSSL_CTX_set_default_passwd_cb(cfg->ctx, NULL);
		wolfSSL_CTX_set_default_passwd_cb_userdata(cfg->ctx, NULL);
	}
	if (rc != WOLFSSL_SUCCESS) {
		cs_log_warn(
		    "tls",
		    "private key not accepted reason=\"%s\" wolfssl_err=%d",
		    tls_reason(rc), rc);
		return NNG_EINVAL;
	}
	if (wolfSSL_CTX_check_private_key(cfg->ctx) != WOLFSSL_SUCCESS ||
	    !tls_key_matches_cert(cfg->ctx)) {
		cs_log_warn("tls",
		            "private key does not match the certificate");
		wolfSSL_ERR_clear_error();
		return NNG_EINVAL;
	}
	return 0;
}

static void
tls_config_fini(nng_tls_engine_config *cfg)
{
	if (cfg->ctx != NULL) {
		wolfSSL_CTX_free(cfg->ctx);
		cfg->ctx = NULL;
	}
}

static int
tls_config_init(nng_tls_engine_config *cfg, nng_tls_mode mode)
{
	WOLFSSL_METHOD *method;
	int             rv;

	cfg->mode = mode;
	switch (mode) {
	case NNG_TLS_MODE_SERVER:
		method = wolfSSLv23_server_method();
		break;
	case NNG_TLS_MODE_CLIENT:
		method = wolfSSLv23_client_method();
		break;
	default:
		return NNG_EINVAL;
	}
	/* wolfSSL_CTX_new() takes ownership of method, even on failure. */
	if (method == NULL || (cfg->ctx = wolfSSL_CTX_new(method)) == NULL) {
		return NNG_ENOMEM;
	}
	wolfSSL_CTX_SetIORecv(cfg->ctx, tls_io_recv);
	wolfSSL_CTX_SetIOSend(cfg->ctx, tls_io_send);
	/* Non-blocking I/O: return "want read" at once instead of polling
	 * the (empty) nng buffer again (OPENSSL_COMPATIBLE_DEFAULTS sets
	 * auto-retry). */
	(void)wolfSSL_CTX_clear_mode(cfg->ctx, SSL_MODE_AUTO_RETRY);

	/*
	 * Servers never resume a session: a resumed handshake carries no
	 * client certificate, so it would skip the certificate and CRL
	 * checks of the context it lands on (wolfSSL's session cache is
	 * process-wide, shared with the console's context that asks for
	 * no certificate).  Every station handshake is a full one.
	 */
	if (mode == NNG_TLS_MODE_SERVER &&
	    (wolfSSL_CTX_set_session_cache_mode(cfg->ctx,
	         WOLFSSL_SESS_CACHE_OFF) != WOLFSSL_SUCCESS ||
	     wolfSSL_CTX_NoTicketTLSv12(cfg->ctx) != WOLFSSL_SUCCESS ||
	     wolfSSL_CTX_no_ticket_TLSv13(cfg->ctx) != 0 /* 0: done */)) {
		cs_log_error("tls", "cannot turn session resumption off");
		tls_config_fini(cfg);
		return NNG_ENOTSUP;
	}

	/* The one policy (cs_tls.h): AEAD suites only, ECDHE under 1.2. */
	if (wolfSSL_CTX_set_cipher_list(cfg->ctx, CS_TLS_CIPHERS) !=
	    WOLFSSL_SUCCESS) {
		cs_log_error("tls", "wolfSSL refused the cipher policy "
		                    "ciphers=%s",
		             CS_TLS_CIPHERS);
		tls_config_fini(cfg);
		return NNG_ENOTSUP;
	}

	/* Defaults: TLS 1.2 to 1.3; as nng's other engines, servers do not
	 * ask for client certificates, clients verify servers. */
	if ((rv = tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_3)) != 0 ||
	    (rv = tls_config_auth(cfg, mode == NNG_TLS_MODE_SERVER
	                                   ? NNG_TLS_AUTH_MODE_NONE
	                                   : NNG_TLS_AUTH_MODE_REQUIRED)) !=
	        0) {
		tls_config_fini(cfg);
		return rv;
	}
	return 0;
}

/*
 * nng declares the operation tables non-const but only ever copies them;
 * they are const here so that nothing can change them at run time.
 */
static const nng_tls_engine_conn_ops tls_conn_ops = {
    .size      = sizeof(nng_tls_engine_conn),
    .init      = tls_conn_init,
    .fini      = tls_conn_fini,
    .close     = tls_conn_close,
    .handshake = tls_conn_handshake,
    .recv      = tls_conn_recv,
    .send      = tls_conn_send,
    .verified  = tls_conn_verified,
};

static const nng_tls_engine_config_ops tls_config_ops = {
    .size     = sizeof(nng_tls_engine_config),
    .init     = tls_config_init,
    .fini     = tls_config_fini,
    .server   = tls_config_server,
    .auth     = tls_config_auth,
    .ca_chain = tls_config_ca_chain,
    .own_cert = tls_config_own_cert,
    .version  = tls_config_version,
};

static const nng_tls_engine tls_engine = {
    .version     = NNG_TLS_ENGINE_VERSION,
    .config_ops  = (nng_tls_engine_config_ops *)&tls_config_ops,
    .conn_ops    = (nng_tls_engine_conn_ops *)&tls_conn_ops,
    .name        = CS_TLS_ENGINE_NAME,
    .description = "wolfSSL " LIBWOLFSSL_VERSION_STRING,
    .fips_mode   = false,
};

/* ------------------------------------------------------------------ */
/* Public API.                                                        */

static void
tls_init_once(void)
{
	const char *name;
	int         rc;
	int         rv;

	if ((rc = wolfSSL_Init()) != WOLFSSL_SUCCESS) {
		cs_log_error("tls", "wolfSSL_Init failed wolfssl_err=%d", rc);
		tls_once_rv = CS_ETLS;
		return;
	}
	/*
	 * nng initialises on its first call and then installs its built-in
	 * engine over whatever was registered before: make that happen now,
	 * then register.
	 */
	(void)nng_tls_engine_name();
	if ((rv = nng_tls_engine_register(&tls_engine)) != 0) {
		cs_log_error(
		    "tls",
		    "cannot register wolfSSL as nng's TLS engine err=\"%s\"",
		    nng_strerror(rv));
		tls_once_rv = CS_ETLS;
		return;
	}
	if (strcmp((name = nng_tls_engine_name()), CS_TLS_ENGINE_NAME) != 0) {
		cs_log_error("tls", "nng kept another TLS engine engine=%s",
		             name);
		tls_once_rv = CS_ETLS;
		return;
	}
	tls_once_rv = CS_OK;
}

int
cs_tls_init(void)
{
	if (pthread_once(&tls_once, tls_init_once) != 0) {
		return CS_EINTERNAL;
	}
	return tls_once_rv;
}

/*
 * Read a whole PEM file into a NUL-terminated buffer.  CS_ENOENT when it
 * cannot be opened or read, CS_ETLS when it cannot be PEM text (too large,
 * or holds a NUL byte), CS_ENOMEM.  *lenp gets the allocation size, so
 * that a caller can wipe it.
 */
static int
tls_read_pem(const char *path, char **out, size_t *lenp)
{
	struct stat st;
	char       *buf = NULL;
	size_t      len = 0;
	size_t      off = 0;
	int         fd;
	int         rv;

	*out  = NULL;
	*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		cs_log_warn("tls", "cannot open file=%s err=\"%s\"", path,
		            strerror(errno));
		return CS_ENOENT;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		cs_log_warn("tls", "not a regular file file=%s", path);
		rv = CS_ENOENT;
		goto out;
	}
	if (st.st_size > TLS_PEM_MAX) {
		cs_log_warn("tls", "file too large file=%s size=%lld max=%d",
		            path, (long long)st.st_size, TLS_PEM_MAX);
		rv = CS_ETLS;
		goto out;
	}
	len = (size_t)st.st_size + 1;
	if ((buf = malloc(len)) == NULL) {
		rv = CS_ENOMEM;
		goto out;
	}
	while (off < len - 1) {
		ssize_t n = read(fd, buf + off, len - 1 - off);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			cs_log_warn("tls", "cannot read file=%s err=\"%s\"",
			            path,
			            n < 0 ? strerror(errno) : "short read");
			rv = CS_ENOENT;
			goto out;
		}
		off += (size_t)n;
	}
	buf[off] = '\0';
	if (strlen(buf) != off) {
		cs_log_warn("tls", "file is not PEM text file=%s", path);
		rv = CS_ETLS;
		goto out;
	}
	*out  = buf;
	*lenp = len;
	buf   = NULL;
	rv    = CS_OK;
out:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	close(fd);
	return rv;
}

static void
tls_free_pem(char *buf, size_t len)
{
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
}

/* The PEM texts named by a struct cs_tls_files (NULL where unnamed). */
struct tls_pems {
	char  *cert, *key, *ca, *crl;
	size_t cert_len, key_len, ca_len, crl_len;
};

static void
tls_pems_free(struct tls_pems *p)
{
	tls_free_pem(p->key, p->key_len);
	tls_free_pem(p->cert, p->cert_len);
	tls_free_pem(p->crl, p->crl_len);
	tls_free_pem(p->ca, p->ca_len);
	memset(p, 0, sizeof(*p));
}

/* Read every file f names; on failure nothing stays allocated. */
static int
tls_pems_read(const struct cs_tls_files *f, struct tls_pems *p)
{
	int rv = CS_OK;

	memset(p, 0, sizeof(*p));
	if ((f->ca != NULL &&
	        (rv = tls_read_pem(f->ca, &p->ca, &p->ca_len)) != CS_OK) ||
	    (f->crl != NULL &&
	        (rv = tls_read_pem(f->crl, &p->crl, &p->crl_len)) != CS_OK) ||
	    (f->cert != NULL &&
	        (rv = tls_read_pem(f->cert, &p->cert, &p->cert_len)) !=
	            CS_OK) ||
	    (f->key != NULL &&
	        (rv = tls_read_pem(f->key, &p->key, &p->key_len)) != CS_OK)) {
		tls_pems_free(p);
	}
	return rv;
}

static int
tls_from_nng(int rv)
{
	switch (rv) {
	case 0:
		return CS_OK;
	case NNG_ENOMEM:
		return CS_ENOMEM;
	default:
		return CS_ETLS;
	}
}

int
cs_tls_config_make(nng_tls_config **out, nng_tls_mode mode,
                   nng_tls_auth_mode auth, const struct cs_tls_files *f)
{
	static const struct cs_tls_files none = {0};
	nng_tls_config                  *cfg  = NULL;
	struct tls_pems                  pem  = {0};
	int                              nrv;
	int                              rv;

	*out = NULL;
	if (f == NULL) {
		f = &none;
	}
	if ((rv = cs_tls_init()) != CS_OK) {
		return rv;
	}
	if ((f->cert == NULL) != (f->key == NULL) ||
	    (f->crl != NULL && f->ca == NULL)) {
		cs_log_warn(
		    "tls", "incomplete TLS files cert=%s key=%s ca=%s crl=%s",
		    f->cert != NULL ? f->cert : "-",
		    f->key != NULL ? f->key : "-", f->ca != NULL ? f->ca : "-",
		    f->crl != NULL ? f->crl : "-");
		return CS_EINVAL;
	}
	if ((nrv = nng_tls_config_alloc(&cfg, mode)) != 0 ||
	    (nrv = nng_tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_3)) !=
	        0 ||
	    (nrv = nng_tls_config_auth_mode(cfg, auth)) != 0) {
		cs_log_warn("tls",
		            "cannot make a TLS configuration err=\"%s\"",
		            nng_strerror(nrv));
		rv = tls_from_nng(nrv);
		goto out;
	}
	if ((rv = tls_pems_read(f, &pem)) != CS_OK) {
		goto out;
	}
	if (pem.ca != NULL &&
	    (nrv = nng_tls_config_ca_chain(cfg, pem.ca, pem.crl)) != 0) {
		cs_log_warn("tls",
		            "CA certificates or CRL not accepted ca=%s "
		            "crl=%s err=\"%s\"",
		            f->ca, f->crl != NULL ? f->crl : "-",
		            nng_strerror(nrv));
		rv = tls_from_nng(nrv);
		goto out;
	}
	if (pem.cert != NULL &&
	    (nrv = nng_tls_config_own_cert(cfg, pem.cert, pem.key, NULL)) !=
	        0) {
		cs_log_warn("tls",
		            "certificate or key not accepted cert=%s key=%s "
		            "err=\"%s\"",
		            f->cert, f->key, nng_strerror(nrv));
		rv = tls_from_nng(nrv);
		goto out;
	}
	if (f->server_name != NULL &&
	    (nrv = nng_tls_config_server_name(cfg, f->server_name)) != 0) {
		cs_log_warn("tls",
		            "server name not accepted name=%s err=\"%s\"",
		            f->server_name, nng_strerror(nrv));
		rv = tls_from_nng(nrv);
		goto out;
	}
	*out = cfg;
	cfg  = NULL;
	rv   = CS_OK;
out:
	tls_pems_free(&pem);
	if (cfg != NULL) {
		nng_tls_config_free(cfg);
	}
	return rv;
}

bool
cs_tls_last_handshake(char *version, size_t vlen, char *cipher, size_t clen)
{
	bool valid;

	pthread_mutex_lock(&tls_last_lock);
	valid = tls_last.valid;
	if (valid && version != NULL && vlen > 0) {
		snprintf(version, vlen, "%s", tls_last.version);
	}
	if (valid && cipher != NULL && clen > 0) {
		snprintf(cipher, clen, "%s", tls_last.cipher);
	}
	pthread_mutex_unlock(&tls_last_lock);
	return valid;
}

/* ------------------------------------------------------------------ */
/* Server sessions on plain file descriptors.                         */

struct cs_tls_server {
	nng_tls_engine_config cfg;
	int                   refs; /* atomic */
};

struct cs_tls_sess {
	nng_tls_engine_conn ec;
	cs_tls_server      *srv;
	int                 fd;
	bool                want_write;
	uint64_t            bytes_out; /* handed to the socket, in all */
	char                peer_name[65];
	char                version[16];
	char                cipher[64];
};

static int
tls_fd_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	cs_tls_sess *t = arg;
	ssize_t      n;

	(void)ssl;
	if (sz <= 0) {
		return 0;
	}
	do {
		n = recv(t->fd, buf, (size_t)sz, 0);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		return (int)n;
	}
	if (n == 0) {
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		t->want_write = false;
		return WOLFSSL_CBIO_ERR_WANT_READ;
	}
	return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST
	                           : WOLFSSL_CBIO_ERR_GENERAL;
}

static int
tls_fd_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	cs_tls_sess *t = arg;
	ssize_t      n;

	(void)ssl;
	if (sz <= 0) {
		return 0;
	}
	do {
		n = send(t->fd, buf, (size_t)sz, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n >= 0) {
		t->ec.sent = true;
		t->bytes_out += (uint64_t)n;
		return (int)n;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		t->want_write = true;
		return WOLFSSL_CBIO_ERR_WANT_WRITE;
	}
	return errno == ECONNRESET || errno == EPIPE ? WOLFSSL_CBIO_ERR_CONN_RST
	                                            : WOLFSSL_CBIO_ERR_GENERAL;
}

/* nng's error, as tls_conn_error() gives it, in the project's terms. */
static int
tls_sess_err(int nrv)
{
	switch (nrv) {
	case 0:
		return CS_OK;
	case NNG_EAGAIN:
		return CS_EAGAIN;
	case NNG_EPEERAUTH:
		return CS_EPEERAUTH;
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
		return CS_ECLOSED;
	default:
		return CS_ETLS;
	}
}

int
cs_tls_server_make(cs_tls_server **out, const struct cs_tls_files *f,
                   bool require_peer)
{
	cs_tls_server  *s;
	struct tls_pems pem;
	int             rv;

	*out = NULL;
	if (f == NULL || f->cert == NULL || f->key == NULL ||
	    (require_peer && f->ca == NULL) ||
	    (f->crl != NULL && f->ca == NULL)) {
		return CS_EINVAL;
	}
	if ((rv = cs_tls_init()) != CS_OK) {
		return rv;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return CS_ENOMEM;
	}
	s->refs = 1;
	if (tls_config_init(&s->cfg, NNG_TLS_MODE_SERVER) != 0) {
		free(s);
		return CS_ETLS;
	}
	if ((rv = tls_pems_read(f, &pem)) != CS_OK) {
		goto out;
	}
	if (tls_config_own_cert(&s->cfg, pem.cert, pem.key, NULL) != 0) {
		cs_log_warn("tls", "certificate or key not accepted cert=%s "
		                   "key=%s",
		            f->cert, f->key);
		rv = CS_ETLS;
	} else if (pem.ca != NULL &&
	           tls_config_ca_chain(&s->cfg, pem.ca, pem.crl) != 0) {
		cs_log_warn("tls", "CA certificates or CRL not accepted "
		                   "ca=%s crl=%s",
		            f->ca, f->crl != NULL ? f->crl : "-");
		rv = CS_ETLS;
	} else {
		(void)tls_config_auth(&s->cfg,
		                      require_peer ? NNG_TLS_AUTH_MODE_REQUIRED
		                                   : NNG_TLS_AUTH_MODE_NONE);
	}
	tls_pems_free(&pem);
out:
	if (rv != CS_OK) {
		tls_config_fini(&s->cfg);
		free(s);
		return rv;
	}
	*out = s;
	return CS_OK;
}

cs_tls_server *
cs_tls_server_hold(cs_tls_server *s)
{
	if (s != NULL) {
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	}
	return s;
}

void
cs_tls_server_release(cs_tls_server *s)
{
	if (s != NULL && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		tls_config_fini(&s->cfg);
		free(s);
	}
}

int
cs_tls_sess_new(cs_tls_sess **out, cs_tls_server *s, int fd)
{
	cs_tls_sess *t;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return CS_ENOMEM;
	}
	t->fd       = fd;
	t->ec.cfg   = &s->cfg;
	t->ec.quiet = true;
	if ((t->ec.ssl = wolfSSL_new(s->cfg.ctx)) == NULL ||
	    wolfSSL_set_app_data(t->ec.ssl, &t->ec) != WOLFSSL_SUCCESS) {
		if (t->ec.ssl != NULL) {
			wolfSSL_free(t->ec.ssl);
		}
		free(t);
		return CS_ENOMEM;
	}
	wolfSSL_SSLSetIORecv(t->ec.ssl, tls_fd_recv);
	wolfSSL_SSLSetIOSend(t->ec.ssl, tls_fd_send);
	wolfSSL_SetIOReadCtx(t->ec.ssl, t);
	wolfSSL_SetIOWriteCtx(t->ec.ssl, t);
	t->srv = cs_tls_server_hold(s);
	*out   = t;
	return CS_OK;
}

/* Fill in what the application may ask about the finished handshake. */
static void
tls_sess_learn(cs_tls_sess *t)
{
	WOLFSSL_X509 *peer;
	int           suite = wolfSSL_get_current_cipher_suite(t->ec.ssl);
	const char   *v     = wolfSSL_get_version(t->ec.ssl);
	const char   *c     = wolfSSL_get_cipher_name_iana_from_suite(
	          (unsigned char)((suite >> 8) & 0xff),
	          (unsigned char)(suite & 0xff));

	snprintf(t->version, sizeof(t->version), "%s", v ? v : "unknown");
	snprintf(t->cipher, sizeof(t->cipher), "%s", c ? c : "unknown");
	t->peer_name[0] = '\0';
	if (t->ec.cfg->auth == NNG_TLS_AUTH_MODE_NONE ||
	    wolfSSL_get_verify_result(t->ec.ssl) != X509_V_OK ||
	    (peer = wolfSSL_get_peer_certificate(t->ec.ssl)) == NULL) {
		return;
	}
	WOLFSSL_X509_NAME *name = wolfSSL_X509_get_subject_name(peer);
	int len = name == NULL ? -1
	                       : wolfSSL_X509_NAME_get_text_by_NID(
	                             name, NID_commonName, t->peer_name,
	                             sizeof(t->peer_name));
	/* No CN, one too long, or one with a NUL inside (it would read as
	 * a shorter name): no name at all. */
	if (len <= 0 || (size_t)len >= sizeof(t->peer_name) ||
	    strlen(t->peer_name) != (size_t)len) {
		t->peer_name[0] = '\0';
	}
	wolfSSL_X509_free(peer);
}

int
cs_tls_sess_handshake(cs_tls_sess *t)
{
	int nrv;
	int rv;

	t->want_write = false;
	/*
	 * tls_conn_handshake() reports "again" once after a failure whose
	 * alert went out, for nng's sake; here the alert is with the kernel
	 * as soon as send() returned, so the failure is final at once.
	 */
	if ((nrv = tls_conn_handshake(&t->ec)) == NNG_EAGAIN &&
	    t->ec.failed != 0) {
		nrv = t->ec.failed;
	}
	rv = tls_sess_err(nrv);
	if (rv == CS_OK && t->version[0] == '\0') {
		tls_sess_learn(t);
	}
	return rv;
}

int
cs_tls_sess_read(cs_tls_sess *t, void *buf, size_t len, size_t *n)
{
	int got;

	*n            = 0;
	t->want_write = false;
	if (t->ec.failed != 0) {
		return tls_sess_err(t->ec.failed);
	}
	got = wolfSSL_read(t->ec.ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (got <= 0) {
		return tls_sess_err(tls_conn_error(&t->ec, got, "receive"));
	}
	*n = (size_t)got;
	return CS_OK;
}

int
cs_tls_sess_write(cs_tls_sess *t, const void *buf, size_t len)
{
	int rc;

	t->want_write = false;
	if (t->ec.failed != 0) {
		return tls_sess_err(t->ec.failed);
	}
	if (len == 0 || len > INT_MAX) {
		return CS_EINVAL;
	}
	rc = wolfSSL_write(t->ec.ssl, buf, (int)len);
	if (rc <= 0) {
		return tls_sess_err(tls_conn_error(&t->ec, rc, "send"));
	}
	return CS_OK;
}

const char *
cs_tls_sess_error(const cs_tls_sess *t)
{
	return t->ec.why[0] != '\0' ? t->ec.why : "none";
}

bool
cs_tls_sess_wants_write(const cs_tls_sess *t)
{
	return t->want_write;
}

uint64_t
cs_tls_sess_bytes_out(const cs_tls_sess *t)
{
	return t->bytes_out;
}

bool
cs_tls_sess_pending(const cs_tls_sess *t)
{
	return wolfSSL_pending(t->ec.ssl) > 0;
}

const char *
cs_tls_sess_peer_name(const cs_tls_sess *t)
{
	return t->peer_name;
}

const char *
cs_tls_sess_version(const cs_tls_sess *t)
{
	return t->version;
}

const char *
cs_tls_sess_cipher(const cs_tls_sess *t)
{
	return t->cipher;
}

void
cs_tls_sess_free(cs_tls_sess *t)
{
	if (t == NULL) {
		return;
	}
	if (t->ec.ssl != NULL) {
		wolfSSL_free(t->ec.ssl);
	}
	cs_tls_server_release(t->srv);
	free(t);
}
