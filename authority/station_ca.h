/*
 * station_ca.h - the authority's station CA: the certificate authority
 * whose certificates the station listener requires, and which issues a
 * station's certificate from its CSR at enrollment.
 *
 * The CA's private key is an ECDSA P-256 key in the HSM (label
 * [hsm] station_ca_key), used through the shim like the OEM signing keys:
 * it never exists outside the token.  Certificates are laid out with
 * wolfCrypt's certificate builder (the to-be-signed part) and signed by
 * the HSM; the CA certificate itself is an ordinary PEM file at
 * [tls] station_ca, which the TLS listener loads.
 */
#ifndef STATION_CA_H
#define STATION_CA_H

#include "cs_crypto.h"
#include "cs_hsm.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STATION_CA_DAYS_DEFAULT  3650u /* the CA certificate */
#define STATION_CERT_DAYS_DEFAULT 365u /* a station certificate */
#define STATION_CERT_DAYS_MAX    3650u
#define STATION_CSR_MAX          8192u /* bytes of PEM */
#define STATION_SERIAL_MAX       20u   /* RFC 5280: at most 20 octets */
#define STATION_CRL_DAYS         30u   /* nextUpdate of an issued CRL */
#define STATION_CRL_MAX_REVOKED  4000u /* entries in one CRL */

typedef struct station_ca station_ca;

/*
 * `countersign-admin ca init`: generate the CA key pair labelled label on
 * the token (cs_hsm_keygen, P-256) and write a self-signed CA certificate
 * (subject CN=cn, O=Countersign, basicConstraints CA:TRUE pathlen 0,
 * keyUsage keyCertSign+cRLSign, subject key id, valid from one hour ago
 * for days days) as PEM to cert_path, created with O_EXCL and mode 0644.
 * Refuses when a key with that label exists or cert_path exists
 * (CS_EEXIST, err says which and what to do).  Other errors: CS_EINVAL,
 * CS_EIO (cannot write cert_path: err says why), CS_ECRYPTO, CS_EHSM.
 */
int station_ca_init(cs_hsm *h, const char *label, const char *cn,
    unsigned days, const char *cert_path, char *err, size_t errlen);

/*
 * Load the CA: read the certificate at cert_path and check that its public
 * key is the HSM key labelled label.  Errors: CS_ENOENT (no file, or no
 * such key: err says to run `countersign-admin ca init`), CS_EPRECOND (the
 * certificate and the HSM key differ), CS_EINVAL (not a PEM certificate),
 * CS_EHSM.
 */
int station_ca_open(station_ca **out, cs_hsm *h, const char *label,
    const char *cert_path, char *err, size_t errlen);

/* NULL-safe. */
void station_ca_close(station_ca *ca);

/* What an issued certificate binds. */
struct station_cert {
	char   *cert_pem;                 /* malloc'ed, NUL-terminated */
	uint8_t cert_sha256[CS_SHA256_LEN]; /* over the certificate DER */
	uint8_t spki[CS_SPKI_MAX];        /* the station's public key */
	size_t  spki_len;
	uint8_t serial[STATION_SERIAL_MAX]; /* its serial number (INTEGER
	                                       contents, positive) */
	size_t  serial_len;
};

/*
 * Issue a station certificate from a PKCS#10 CSR (PEM, at most
 * STATION_CSR_MAX bytes).  The CSR must carry an ECDSA P-256 key and a
 * valid self-signature (proof of possession).  The certificate's subject
 * is CN=name, O=cm (from the arguments, not the CSR), with a random
 * 128-bit serial, basicConstraints CA:FALSE, keyUsage digitalSignature,
 * extendedKeyUsage clientAuth, subject and authority key ids, valid from
 * one hour ago for days days (1..STATION_CERT_DAYS_MAX).  Signed by the
 * HSM; the signature is checked against the CA key before returning.
 * Thread-safe (the HSM calls are).  Errors: CS_EINVAL (not a CSR, wrong
 * key type, bad signature, bad name: err says what), CS_ETOOBIG,
 * CS_ENOMEM, CS_ECRYPTO, CS_EHSM, CS_ETIMEDOUT.  out->cert_pem is freed
 * with free().
 */
int station_ca_issue(station_ca *ca, const char *csr_pem, size_t csr_len,
    const char *name, const char *cm, unsigned days,
    struct station_cert *out, char *err, size_t errlen);

/* A certificate the CRL names as revoked. */
struct station_revoked {
	const uint8_t *serial; /* INTEGER contents, 1..STATION_SERIAL_MAX */
	size_t         serial_len;
	uint64_t       when_unix_s; /* revocationDate */
};

/*
 * Issue a CRL (RFC 5280 v2) signed by the CA's HSM key: issuer = the CA's
 * subject, thisUpdate = now, nextUpdate = now + STATION_CRL_DAYS days,
 * one entry per element of revoked (at most STATION_CRL_MAX_REVOKED), the
 * extensions cRLNumber = number and authorityKeyIdentifier = the CA
 * certificate's subject key id.  The signature is checked against the CA
 * key before returning.  *pem_out (malloc'd PEM "X509 CRL") is freed with
 * free().  Errors: CS_EINVAL (a bad serial), CS_ETOOBIG, CS_ENOMEM,
 * CS_ECRYPTO, CS_EHSM.  Thread-safe.
 */
int station_ca_crl(station_ca *ca, const struct station_revoked *revoked,
    size_t n, uint64_t number, time_t now, char **pem_out, char *err,
    size_t errlen);

#endif /* STATION_CA_H */
