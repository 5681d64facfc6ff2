/*
 * station_ca_impl.h - private to the station CA: the CA struct, its
 * limits and ASN.1 tags, the small strict DER reader and writer and the
 * PEM decoder (station_ca_der.c), and the helpers station_ca.c offers the
 * CRL (station_ca_crl.c).  Callers use station_ca.h only.
 */
#ifndef STATION_CA_IMPL_H
#define STATION_CA_IMPL_H

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "station_ca.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LOG_MOD "station_ca"

/*
 * The CA certificate's lifetime is not bounded by the header; 100 years
 * keeps the date arithmetic far from any overflow and is longer than any
 * sane CA lifetime.
 */
#define CA_DAYS_MAX     36500u
#define NAME_LEN_MAX    64u    /* CN and O, bytes */
#define NAME_DER_MAX    256u   /* wolfSSL copies at most ASN_NAME_MAX */
#define CERT_PEM_MAX    16384u /* the CA certificate file */
#define TBS_MAX         2048u  /* our TBSCertificates are ~400 bytes */
#define CERT_DER_MAX    (TBS_MAX + 128u)
#define ECDSA_DER_MAX   72u
#define SERIAL_LEN      16u
#define NOT_BEFORE_SKEW 3600   /* seconds: tolerate clocks behind ours */

/* ASN.1 tags we meet. */
#define T_BOOLEAN  0x01u
#define T_INTEGER  0x02u
#define T_BITSTR   0x03u
#define T_OCTETSTR 0x04u
#define T_OID      0x06u
#define T_UTF8     0x0cu
#define T_SEQ      0x30u
#define T_SET      0x31u
#define T_CTX0     0xa0u /* [0] constructed */
#define T_CTX3     0xa3u /* [3] constructed */

struct station_ca {
	cs_hsm  *h;
	char     label[65];
	uint8_t  pub[CS_P256_POINT_LEN]; /* the CA key, for AKID and checks */
	uint8_t  name[NAME_DER_MAX];     /* the CA's subject Name DER */
	size_t   name_len;
	uint8_t  skid[64];               /* its subject key id, if any */
	size_t   skid_len;
};

/* AlgorithmIdentifier ecdsa-with-SHA256; OIDs of commonName and
 * organizationName; OID of subjectKeyIdentifier. */
extern const uint8_t station_ca_alg_ecdsa_sha256[12];
extern const uint8_t station_ca_oid_cn[3];
extern const uint8_t station_ca_oid_o[3];
extern const uint8_t station_ca_oid_skid[3];

/* A window on DER bytes: what is left to read. */
struct der {
	const uint8_t *p;
	size_t         len;
};

/* The parts of a TBSCertificate we look at (whole TLVs). */
struct tbs_parts {
	struct der serial;  /* INTEGER contents */
	struct der issuer;
	struct der subject;
	struct der spki;
	struct der exts; /* [3], or empty */
};

/* An output buffer that remembers overflow instead of writing past it. */
struct dbuf {
	uint8_t *p;
	size_t   size;
	size_t   len;
	bool     over;
};

/* Write the message to err (may be NULL) and return rv. */
int station_ca_fail(char *err, size_t errlen, int rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Read one TLV with tag tag from d.  body gets its contents, whole (if
 * non-NULL) the TLV itself.  Lengths must be definite, minimal and at most
 * two bytes long, and fit in d.  CS_OK or CS_EINVAL.
 */
int station_ca_der_get(struct der *d, uint8_t tag, struct der *body,
    struct der *whole);

/* An ECDSA-Sig-Value (DER) as raw r||s. */
int station_ca_ecdsa_der_to_raw(const uint8_t *der, size_t len,
    uint8_t sig[CS_SIG_LEN]);

/* Split a TBSCertificate, or a Certificate's TBS, into the parts we use. */
int station_ca_tbs_split(const uint8_t *tbs, size_t len,
    struct tbs_parts *t);
int station_ca_cert_split(const uint8_t *der, size_t len,
    struct tbs_parts *t);

/* The extnValue contents of the extension oid in exts ([3]); CS_ENOENT
 * if it has none. */
int station_ca_ext_find(const struct der *exts, const uint8_t *oid,
    size_t oid_len, struct der *value);

/* Append bytes, or a tag and a length header, to b (overflow remembered
 * in b->over); the size of the header of an n-byte value. */
void station_ca_dbuf_put(struct dbuf *b, const void *data, size_t n);
void station_ca_dbuf_hdr(struct dbuf *b, uint8_t tag, size_t n);
size_t station_ca_der_hdr_len(size_t n);

/* The Name DER of CN=cn, O=o (both 1..64 printable bytes) into out. */
int station_ca_name_der(const char *cn, const char *o, uint8_t *out,
    size_t size, size_t *len);

/* The DER of the one PEM block in pem, labelled one of labels
 * (NULL-ended); anything but whitespace around it is refused. */
int station_ca_pem_decode(const char *pem, size_t len,
    const char *const *labels, uint8_t *der, size_t size, size_t *der_len);

/* RFC 5280 Time as the TLV wolfSSL copies into a validity. */
int station_ca_encode_time(time_t t, uint8_t out[CTC_DATE_SIZE], int *len);

/*
 * Certificate (or CertificateList) ::= SEQUENCE { tbs, ecdsa-with-SHA256,
 * BIT STRING sig }: the HSM signs SHA-256(tbs) with key label, checked
 * against ca_pub before it is used.
 */
int station_ca_sign_tbs(cs_hsm *h, const char *label, const uint8_t *ca_pub,
    const uint8_t *tbs, size_t tbs_len, uint8_t *out, size_t size,
    size_t *len);

#endif /* STATION_CA_IMPL_H */
