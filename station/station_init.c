/*
 * station_init.c - the station's own key pair and its enrollment request.
 *
 * The key is made here, on the station, and never leaves it: the authority
 * only ever sees the CSR and issues a certificate from its station CA.
 * The key file is created exclusively (O_EXCL, 0600) before the key
 * exists, so an existing enrollment is never overwritten by accident and
 * the key is never readable by others, not even for an instant.
 */
#include "station_init.h"
#include "cs_crypto.h"
#include "cs_err.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DER_MAX 1024
#define PEM_MAX 2048

/* key path with ".key" replaced by ".csr" (or ".csr" appended). */
static int
csr_path_for(const char *key, char *out, size_t len)
{
	size_t n = strlen(key);
	int    m;

	if (n > 4 && strcmp(key + n - 4, ".key") == 0) {
		m = snprintf(out, len, "%.*s.csr", (int)(n - 4), key);
	} else {
		m = snprintf(out, len, "%s.csr", key);
	}
	return m < 0 || (size_t)m >= len ? CS_EINVAL : CS_OK;
}

int
station_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return CS_EIO;
		}
		p += w;
		len -= (size_t)w;
	}
	return CS_OK;
}

int
station_init(const struct station_config *cfg, char *csr_path,
    size_t csr_len, char *err, size_t errlen)
{
	WC_RNG   rng;
	ecc_key  key;
	Cert     req;
	uint8_t  der[DER_MAX];
	uint8_t  pem[PEM_MAX];
	bool     rng_ok = false, key_ok = false;
	int      fd = -1, csr_fd = -1, rv = CS_ECRYPTO, n;

	if (csr_path_for(cfg->key, csr_path, csr_len) != CS_OK) {
		snprintf(err, errlen, "key path too long: %s", cfg->key);
		return CS_EINVAL;
	}
	fd = open(cfg->key, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST) {
			snprintf(err, errlen, "%s already exists: a station "
			    "key is never replaced (move it away yourself "
			    "if this station must enroll again)", cfg->key);
			return CS_EEXIST;
		}
		snprintf(err, errlen, "cannot create %s: %s", cfg->key,
		    strerror(errno));
		return CS_EIO;
	}
	if (wc_InitRng(&rng) != 0) {
		snprintf(err, errlen, "cannot seed the random generator");
		goto out;
	}
	rng_ok = true;
	if (wc_ecc_init(&key) != 0) {
		goto crypto;
	}
	key_ok = true;
	if (wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0 ||
	    (n = wc_EccKeyToDer(&key, der, sizeof(der))) <= 0 ||
	    (n = wc_DerToPem(der, (word32)n, pem, sizeof(pem),
		ECC_PRIVATEKEY_TYPE)) <= 0) {
		goto crypto;
	}
	if ((rv = station_write_all(fd, pem, (size_t)n)) != CS_OK ||
	    fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", cfg->key,
		    strerror(errno));
		rv = CS_EIO;
		goto out;
	}
	cs_wipe(der, sizeof(der));
	cs_wipe(pem, sizeof(pem));

	if (wc_InitCert(&req) != 0) {
		goto crypto;
	}
	/* wc_InitCert prepares an X.509 v3 certificate (version 2); a
	 * PKCS#10 request has version 0. */
	req.version = 0;
	snprintf(req.subject.commonName, sizeof(req.subject.commonName), "%s",
	    cfg->name);
	req.sigType = CTC_SHA256wECDSA;
	if ((n = wc_MakeCertReq_ex(&req, der, sizeof(der), ECC_TYPE,
		 &key)) <= 0 ||
	    (n = wc_SignCert_ex(req.bodySz, req.sigType, der, sizeof(der),
		 ECC_TYPE, &key, &rng)) <= 0 ||
	    (n = wc_DerToPem(der, (word32)n, pem, sizeof(pem),
		 CERTREQ_TYPE)) <= 0) {
		goto crypto;
	}
	csr_fd = open(csr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (csr_fd < 0 || station_write_all(csr_fd, pem, (size_t)n) != CS_OK) {
		snprintf(err, errlen, "cannot write %s: %s", csr_path,
		    strerror(errno));
		rv = CS_EIO;
		goto out;
	}
	rv = CS_OK;
	goto out;
crypto:
	snprintf(err, errlen, "key or CSR generation failed in wolfCrypt");
	rv = CS_ECRYPTO;
out:
	if (fd >= 0) {
		close(fd);
		if (rv != CS_OK) {
			unlink(cfg->key); /* no half-made key is left behind */
		}
	}
	if (csr_fd >= 0) {
		close(csr_fd);
	}
	if (key_ok) {
		wc_ecc_free(&key);
	}
	if (rng_ok) {
		wc_FreeRng(&rng);
	}
	cs_wipe(der, sizeof(der));
	cs_wipe(pem, sizeof(pem));
	return rv;
}
