/*
 * cs_tls_policy.c - the engine's config operations, where Countersign's
 * TLS policy is set on each WOLFSSL_CTX: versions, cipher suites, peer
 * authentication (with the IP-literal name check wolfSSL lacks), CA
 * chains and CRLs, our own certificate and key, and the PEM files they
 * come from.  Split from cs_tls.c (the engine's connections) so that the
 * policy can be read in one place.
 */
#include "cs_tls_impl.h"
#include "cs_err.h"
#include "cs_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest PEM file we read (certificate chains, CA bundles, CRLs). */
#define TLS_PEM_MAX (1024 * 1024)

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
/* Config operations.                                                 */

int
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

int
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

int
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

int
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

int
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

void
tls_config_fini(nng_tls_engine_config *cfg)
{
	if (cfg->ctx != NULL) {
		wolfSSL_CTX_free(cfg->ctx);
		cfg->ctx = NULL;
	}
}

int
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

void
tls_pems_free(struct tls_pems *p)
{
	tls_free_pem(p->key, p->key_len);
	tls_free_pem(p->cert, p->cert_len);
	tls_free_pem(p->crl, p->crl_len);
	tls_free_pem(p->ca, p->ca_len);
	memset(p, 0, sizeof(*p));
}

int
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

