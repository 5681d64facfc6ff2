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
 * cs_tls_sess in cs_tls_sess.c), for servers that enforce their own
 * connection budgets; they share the policy, the checks and the error
 * translation.
 *
 * The module's files: this one holds the engine's connection operations,
 * its registration and the public config API; cs_tls_policy.c the config
 * operations (the policy and the peer checks), cs_tls_gate.c the budget of
 * nng's own servers, cs_tls_sess.c the sessions on plain sockets, and
 * cs_tls_impl.h what they share.
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
#include "cs_tls_impl.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

const char *
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

int
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
	/* Bytes received are not activity for the gate's idle timeout: a
	 * client trickling a byte now and then must not hold a connection
	 * the server never answers on (tls_io_send touches). */
	return (int)n;
}

int
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
		tls_gate_touch(ec);
	}
	return (int)n;
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

/*
 * Failed handshakes on nng's own servers (the console): anyone who reaches
 * the port can cause them, so at most SERVER_LOG_LINES a window are
 * logged one by one and the rest as one count when the next window opens.
 * (The station port's server logs its own, within the same budget.)
 */
#define SERVER_LOG_LINES     10u
#define SERVER_LOG_WINDOW_MS 10000u

static _Atomic uint64_t server_log_window;
static _Atomic unsigned server_log_lines;
static _Atomic uint64_t server_log_dropped;

/* Open a new window when the last one has ended, saying how many
 * failures it did not log one by one. */
void
tls_server_log_flush(void)
{
	struct timespec ts;
	uint64_t        now, w;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	w   = atomic_load(&server_log_window);
	if (now - w >= SERVER_LOG_WINDOW_MS &&
	    atomic_compare_exchange_strong(&server_log_window, &w, now)) {
		uint64_t d = atomic_exchange(&server_log_dropped, 0);
		atomic_store(&server_log_lines, 0);
		if (d > 0) {
			cs_log_warn("tls", "TLS handshakes failed on the "
			    "console and not logged one by one in the last "
			    "%us: %llu",
			    SERVER_LOG_WINDOW_MS / 1000u, (unsigned long long)d);
		}
	}
}

static bool
server_log_admit(void)
{
	tls_server_log_flush();
	if (atomic_fetch_add(&server_log_lines, 1) < SERVER_LOG_LINES) {
		return true;
	}
	atomic_fetch_add(&server_log_dropped, 1);
	return false;
}

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
int
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
	} else if (ec->cfg->mode == NNG_TLS_MODE_SERVER &&
	    !server_log_admit()) {
		/* Counted; said as a number when the window ends. */
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
	    (rv = tls_gate_admit(ec, tls)) != 0) {
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
	tls_gate_leave(ec);
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

int
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
	tls_gate_handshake_done(ec);
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

