/*
 * station_ca_crl.c - the station CA's certificate revocation list
 * (station_ca_crl in station_ca.h): a CertificateList of the revoked
 * stations' serials, with CRL number and authority key id, signed by the
 * CA key in the HSM like the certificates.  Apart from station_ca.c,
 * which issues certificates.
 */
#include "station_ca_impl.h"

#include "cs_err.h"
#include "cs_log.h"

#include <stdlib.h>
#include <string.h>

/* OIDs 2.5.29.35 authorityKeyIdentifier and 2.5.29.20 cRLNumber. */
static const uint8_t oid_akid[]       = {0x55, 0x1d, 0x23};
static const uint8_t oid_crl_number[] = {0x55, 0x1d, 0x14};

/* An INTEGER from non-negative big-endian bytes (minimal, positive). */
static void
dbuf_uint(struct dbuf *b, const uint8_t *v, size_t len)
{
	while (len > 1 && v[0] == 0) {
		v++;
		len--;
	}
	bool pad = len > 0 && (v[0] & 0x80) != 0;
	station_ca_dbuf_hdr(b, T_INTEGER, len + (pad ? 1 : 0));
	if (pad) {
		station_ca_dbuf_put(b, "", 1);
	}
	station_ca_dbuf_put(b, v, len);
}

static void
dbuf_time(struct dbuf *b, time_t t, int *rv)
{
	uint8_t tv[CTC_DATE_SIZE];
	int     tl = 0;

	if (station_ca_encode_time(t, tv, &tl) != CS_OK) {
		*rv = CS_EINVAL;
		return;
	}
	station_ca_dbuf_put(b, tv, (size_t)tl);
}

/*
 * TBSCertList ::= SEQUENCE { version v2, signature, issuer, thisUpdate,
 * nextUpdate, revokedCertificates (omitted when empty), [0] crlExtensions }
 * written in two passes: the contents first, then the header around them.
 */
static int
crl_tbs(const station_ca *ca, const struct station_revoked *r, size_t n,
    uint64_t number, time_t now, struct dbuf *out)
{
	static const uint8_t v2[] = {0x02, 0x01, 0x01};
	size_t      cap = 512 + n * 64;
	uint8_t    *body = malloc(cap), *revs = malloc(cap), *exts = malloc(256);
	struct dbuf b = {body, cap, 0, false};
	struct dbuf rb = {revs, cap, 0, false};
	struct dbuf eb = {exts, 256, 0, false};
	uint8_t     num[8], inner[96];
	struct dbuf ib;
	int         rv = CS_OK;

	if (body == NULL || revs == NULL || exts == NULL) {
		rv = CS_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t     one[96];
		struct dbuf ob = {one, sizeof(one), 0, false};
		if (r[i].serial_len == 0 ||
		    r[i].serial_len > STATION_SERIAL_MAX) {
			rv = CS_EINVAL;
			goto out;
		}
		dbuf_uint(&ob, r[i].serial, r[i].serial_len);
		dbuf_time(&ob, (time_t)r[i].when_unix_s, &rv);
		station_ca_dbuf_hdr(&rb, T_SEQ, ob.len);
		station_ca_dbuf_put(&rb, one, ob.len);
		if (ob.over) {
			rv = CS_ETOOBIG;
		}
	}
	/* Extensions: cRLNumber, then authorityKeyIdentifier { [0] keyid }. */
	for (int i = 0; i < 8; i++) {
		num[i] = (uint8_t)(number >> (56 - 8 * i));
	}
	ib = (struct dbuf){inner, sizeof(inner), 0, false};
	dbuf_uint(&ib, num, sizeof(num));
	size_t e1 = 2 + sizeof(oid_crl_number) +
	    station_ca_der_hdr_len(ib.len) + ib.len;
	uint8_t     ext1[64];
	struct dbuf x1 = {ext1, sizeof(ext1), 0, false};
	station_ca_dbuf_hdr(&x1, T_SEQ, e1);
	station_ca_dbuf_hdr(&x1, T_OID, sizeof(oid_crl_number));
	station_ca_dbuf_put(&x1, oid_crl_number, sizeof(oid_crl_number));
	station_ca_dbuf_hdr(&x1, T_OCTETSTR, ib.len);
	station_ca_dbuf_put(&x1, inner, ib.len);
	station_ca_dbuf_put(&eb, ext1, x1.len);
	if (ca->skid_len > 0) {
		size_t kid
		    = station_ca_der_hdr_len(ca->skid_len) + ca->skid_len;
		size_t seq = station_ca_der_hdr_len(kid) + kid;
		size_t e2
		    = 2 + sizeof(oid_akid) + station_ca_der_hdr_len(seq) + seq;
		station_ca_dbuf_hdr(&eb, T_SEQ, e2);
		station_ca_dbuf_hdr(&eb, T_OID, sizeof(oid_akid));
		station_ca_dbuf_put(&eb, oid_akid, sizeof(oid_akid));
		station_ca_dbuf_hdr(&eb, T_OCTETSTR, seq);
		station_ca_dbuf_hdr(&eb, T_SEQ, kid);
		station_ca_dbuf_hdr(&eb, 0x80,
		    ca->skid_len); /* [0] IMPLICIT keyid */
		station_ca_dbuf_put(&eb, ca->skid, ca->skid_len);
	}

	station_ca_dbuf_put(&b, v2, sizeof(v2));
	station_ca_dbuf_put(&b, station_ca_alg_ecdsa_sha256,
	    sizeof(station_ca_alg_ecdsa_sha256));
	station_ca_dbuf_put(&b, ca->name, ca->name_len);
	dbuf_time(&b, now, &rv);
	dbuf_time(&b, now + (time_t)STATION_CRL_DAYS * 86400, &rv);
	if (n > 0) {
		station_ca_dbuf_hdr(&b, T_SEQ, rb.len);
		station_ca_dbuf_put(&b, revs, rb.len);
	}
	station_ca_dbuf_hdr(&b, T_CTX0,
	    station_ca_der_hdr_len(eb.len) + eb.len);
	station_ca_dbuf_hdr(&b, T_SEQ, eb.len);
	station_ca_dbuf_put(&b, exts, eb.len);

	station_ca_dbuf_hdr(out, T_SEQ, b.len);
	station_ca_dbuf_put(out, body, b.len);
	if (rv == CS_OK && (b.over || rb.over || eb.over || x1.over ||
	    ib.over || out->over)) {
		rv = CS_ETOOBIG;
	}
out:
	free(body);
	free(revs);
	free(exts);
	return rv;
}

int
station_ca_crl(station_ca *ca, const struct station_revoked *revoked,
    size_t n, uint64_t number, time_t now, char **pem_out, char *err,
    size_t errlen)
{
	size_t      cap = 768 + n * 64, der_len = 0, pem_size;
	uint8_t    *tbs = NULL, *der = NULL;
	struct dbuf tb;
	int         rv;

	*pem_out = NULL;
	if (ca == NULL || (n > 0 && revoked == NULL)) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "missing argument");
	}
	if (n > STATION_CRL_MAX_REVOKED) {
		return station_ca_fail(err, errlen, CS_ETOOBIG,
		    "%zu revoked certificates: "
		    "at most %u fit in one CRL", n, STATION_CRL_MAX_REVOKED);
	}
	if ((tbs = malloc(cap)) == NULL || (der = malloc(cap + 128)) == NULL) {
		rv = CS_ENOMEM;
		goto out;
	}
	tb = (struct dbuf){tbs, cap, 0, false};
	if ((rv = crl_tbs(ca, revoked, n, number, now, &tb)) != CS_OK ||
	    (rv = station_ca_sign_tbs(ca->h, ca->label, ca->pub, tbs, tb.len,
	    der,
	         cap + 128, &der_len)) != CS_OK) {
		goto out;
	}
	pem_size = 2 * der_len + 128;
	if ((*pem_out = malloc(pem_size)) == NULL) {
		rv = CS_ENOMEM;
		goto out;
	}
	rv = cs_pem_encode("X509 CRL", der, der_len, *pem_out, pem_size);
out:
	free(tbs);
	free(der);
	if (rv != CS_OK) {
		free(*pem_out);
		*pem_out = NULL;
		return station_ca_fail(err, errlen, rv,
		    "cannot issue the CRL: %s",
		    cs_strerror(rv));
	}
	return CS_OK;
}
