/*
 * cs_tls_sess.c - TLS server sessions on plain file descriptors
 * (cs_tls_server, cs_tls_sess), for servers that enforce their own
 * connection budgets (cs_srv).  They reuse the engine's contexts, policy,
 * checks and error translation; split from cs_tls.c to keep the engine
 * and this second front end apart.
 */
#include "cs_tls_impl.h"
#include "cs_err.h"
#include "cs_log.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
