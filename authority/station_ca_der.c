/*
 * station_ca_der.c - the station CA's DER and PEM code
 * (station_ca_impl.h): a small strict DER reader for what stations send
 * (single-byte tags, definite minimal lengths of at most two bytes, every
 * length checked against its parent, nothing trailing), a DER writer that
 * remembers overflow instead of writing past its buffer, and a PEM
 * decoder.  Apart from station_ca.c so that the parsing of untrusted
 * bytes sits in one file of its own.
 */
#include "station_ca_impl.h"

#include "cs_err.h"

#include <wolfssl/wolfcrypt/coding.h>

#include <string.h>

/* ------------------------------------------------------------------ */
/* DER reading                                                         */

/*
 * Read one TLV with tag tag from d.  body gets its contents, whole (if
 * non-NULL) the TLV itself.  Lengths must be definite, minimal and at most
 * two bytes long (nothing we read is 64 KiB), and fit in d.
 */
int
station_ca_der_get(struct der *d, uint8_t tag, struct der *body,
    struct der *whole)
{
	size_t hl = 2, n;

	if (d->len < 2 || d->p[0] != tag) {
		return CS_EINVAL;
	}
	n = d->p[1];
	if (n == 0x81) {
		if (d->len < 3 || d->p[2] < 0x80) {
			return CS_EINVAL;
		}
		n  = d->p[2];
		hl = 3;
	} else if (n == 0x82) {
		if (d->len < 4 || d->p[2] == 0) {
			return CS_EINVAL;
		}
		n  = ((size_t)d->p[2] << 8) | d->p[3];
		hl = 4;
		if (n < 0x100) {
			return CS_EINVAL;
		}
	} else if (n >= 0x80) {
		return CS_EINVAL; /* indefinite, or longer than we accept */
	}
	if (n > d->len - hl) {
		return CS_EINVAL;
	}
	if (whole != NULL) {
		whole->p   = d->p;
		whole->len = hl + n;
	}
	body->p   = d->p + hl;
	body->len = n;
	d->p += hl + n;
	d->len -= hl + n;
	return CS_OK;
}

/* Peek at the next tag; 0 at the end. */
static uint8_t
der_peek(const struct der *d)
{
	return d->len > 0 ? d->p[0] : 0;
}

/*
 * A DER INTEGER that must be a positive number of at most 32 bytes, into
 * out as a 32-byte big-endian value.  Rejects empty, negative and
 * non-minimal encodings.
 */
static int
der_get_uint256(struct der *d, uint8_t out[32])
{
	struct der v;

	if (station_ca_der_get(d, T_INTEGER, &v, NULL) != CS_OK
	    || v.len == 0 ||
	    (v.p[0] & 0x80) != 0) {
		return CS_EINVAL;
	}
	if (v.p[0] == 0 && v.len > 1) {
		if ((v.p[1] & 0x80) == 0) {
			return CS_EINVAL; /* non-minimal */
		}
		v.p++;
		v.len--;
	}
	if (v.len > 32) {
		return CS_EINVAL;
	}
	memset(out, 0, 32);
	memcpy(out + 32 - v.len, v.p, v.len);
	return CS_OK;
}

/* DER ECDSA-Sig-Value { r, s } to raw r||s. */
int
station_ca_ecdsa_der_to_raw(const uint8_t *der, size_t len,
    uint8_t sig[CS_SIG_LEN])
{
	struct der d = {der, len}, seq;

	if (station_ca_der_get(&d, T_SEQ, &seq, NULL) != CS_OK || d.len != 0 ||
	    der_get_uint256(&seq, sig) != CS_OK ||
	    der_get_uint256(&seq, sig + 32) != CS_OK || seq.len != 0) {
		return CS_EINVAL;
	}
	return CS_OK;
}

int
station_ca_tbs_split(const uint8_t *tbs, size_t len, struct tbs_parts *t)
{
	struct der d = {tbs, len}, body, skip;

	memset(t, 0, sizeof(*t));
	if (station_ca_der_get(&d, T_SEQ, &body, NULL) != CS_OK
	    || d.len != 0) {
		return CS_EINVAL;
	}
	if (der_peek(&body) == T_CTX0 &&
	    station_ca_der_get(&body, T_CTX0, &skip, NULL) != CS_OK) {
		return CS_EINVAL;
	}
	if (station_ca_der_get(&body, T_INTEGER, &t->serial, NULL) != CS_OK ||
	    station_ca_der_get(&body, T_SEQ, &skip, NULL) != CS_OK ||
	    station_ca_der_get(&body, T_SEQ, &skip, &t->issuer) != CS_OK ||
	    station_ca_der_get(&body, T_SEQ, &skip, NULL) != CS_OK ||
	    station_ca_der_get(&body, T_SEQ, &skip, &t->subject) != CS_OK ||
	    station_ca_der_get(&body, T_SEQ, &skip, &t->spki) != CS_OK) {
		return CS_EINVAL;
	}
	/* issuerUniqueID / subjectUniqueID: we never write or accept them. */
	if (der_peek(&body) == T_CTX3 &&
	    station_ca_der_get(&body, T_CTX3, &skip, &t->exts) != CS_OK) {
		return CS_EINVAL;
	}
	return body.len == 0 ? CS_OK : CS_EINVAL;
}

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, sig } */
int
station_ca_cert_split(const uint8_t *der, size_t len, struct tbs_parts *t)
{
	struct der d = {der, len}, body, skip, tbs;

	if (station_ca_der_get(&d, T_SEQ, &body, NULL) != CS_OK
	    || d.len != 0 ||
	    station_ca_der_get(&body, T_SEQ, &skip, &tbs) != CS_OK ||
	    station_ca_der_get(&body, T_SEQ, &skip, NULL) != CS_OK ||
	    station_ca_der_get(&body, T_BITSTR, &skip, NULL) != CS_OK
	    || body.len != 0) {
		return CS_EINVAL;
	}
	return station_ca_tbs_split(tbs.p, tbs.len, t);
}

/* OID 2.5.29.14 subjectKeyIdentifier. */
const uint8_t station_ca_oid_skid[] = {0x55, 0x1d, 0x0e};

/*
 * In extensions exts (the whole [3] TLV of a TBS, or empty), find the one
 * with OID oid: value gets the contents of its extnValue OCTET STRING.
 */
int
station_ca_ext_find(const struct der *exts, const uint8_t *oid, size_t oid_len,
    struct der *value)
{
	struct der d = *exts, ctx, seq, ext, id, skip;

	if (d.len == 0 || station_ca_der_get(&d, T_CTX3, &ctx,
	    NULL) != CS_OK ||
	    station_ca_der_get(&ctx, T_SEQ, &seq, NULL) != CS_OK) {
		return CS_ENOENT;
	}
	while (seq.len > 0) {
		if (station_ca_der_get(&seq, T_SEQ, &ext, NULL) != CS_OK ||
		    station_ca_der_get(&ext, T_OID, &id, NULL) != CS_OK) {
			return CS_EINVAL;
		}
		if (der_peek(&ext) == T_BOOLEAN &&
		    station_ca_der_get(&ext, T_BOOLEAN, &skip,
		    NULL) != CS_OK) {
			return CS_EINVAL;
		}
		if (id.len == oid_len && memcmp(id.p, oid, oid_len) == 0) {
			return station_ca_der_get(&ext, T_OCTETSTR, value,
			    NULL);
		}
	}
	return CS_ENOENT;
}

/* ------------------------------------------------------------------ */
/* DER writing                                                         */

void
station_ca_dbuf_put(struct dbuf *b, const void *data, size_t n)
{
	if (b->over || n > b->size - b->len) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

/* Tag and definite length (short form, or long form up to 0xffffff). */
void
station_ca_dbuf_hdr(struct dbuf *b, uint8_t tag, size_t n)
{
	uint8_t h[5];
	size_t  hl;

	h[0] = tag;
	if (n < 0x80) {
		h[1] = (uint8_t)n;
		hl   = 2;
	} else if (n <= 0xff) {
		h[1] = 0x81;
		h[2] = (uint8_t)n;
		hl   = 3;
	} else if (n <= 0xffff) {
		h[1] = 0x82;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl   = 4;
	} else if (n <= 0xffffff) {
		h[1] = 0x83;
		h[2] = (uint8_t)(n >> 16);
		h[3] = (uint8_t)(n >> 8);
		h[4] = (uint8_t)n;
		hl   = 5;
	} else {
		b->over = true;
		return;
	}
	station_ca_dbuf_put(b, h, hl);
}

/* Bytes a header for n content bytes takes (as dbuf_hdr writes it). */
size_t
station_ca_der_hdr_len(size_t n)
{
	return n < 0x80 ? 2 : n <= 0xff ? 3 : n <= 0xffff ? 4 : 5;
}

/* One RDN: SET { SEQUENCE { oid, UTF8String value } } */
static void
dbuf_rdn(struct dbuf *b, const uint8_t *oid, size_t oid_len, const char *v)
{
	size_t vl   = strlen(v);
	size_t atv  = 2 + oid_len + station_ca_der_hdr_len(vl) + vl;
	size_t seq  = station_ca_der_hdr_len(atv) + atv;

	station_ca_dbuf_hdr(b, T_SET, seq);
	station_ca_dbuf_hdr(b, T_SEQ, atv);
	station_ca_dbuf_hdr(b, T_OID, oid_len);
	station_ca_dbuf_put(b, oid, oid_len);
	station_ca_dbuf_hdr(b, T_UTF8, vl);
	station_ca_dbuf_put(b, v, vl);
}

/*
 * Name DER for "CN=cn, O=o" in RFC 4514 order, i.e. O first in the
 * SEQUENCE.  Callers have checked both are 1..64 printable bytes, so the
 * result has no zero byte (wolfSSL takes raw names NUL-terminated).
 */
int
station_ca_name_der(const char *cn, const char *o, uint8_t *out, size_t size,
    size_t *len)
{
	uint8_t     rdns[NAME_DER_MAX];
	struct dbuf r = {rdns, sizeof(rdns), 0, false};
	struct dbuf b = {out, size, 0, false};

	dbuf_rdn(&r, station_ca_oid_o, sizeof(station_ca_oid_o), o);
	dbuf_rdn(&r, station_ca_oid_cn, sizeof(station_ca_oid_cn), cn);
	station_ca_dbuf_hdr(&b, T_SEQ, r.len);
	station_ca_dbuf_put(&b, rdns, r.len);
	if (r.over || b.over) {
		return CS_ETOOBIG;
	}
	*len = b.len;
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* PEM                                                                 */

static bool
is_b64(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

static bool
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* If s (n bytes) starts with "-----<kind> <label>-----", its length. */
static size_t
pem_line(const char *s, size_t n, const char *kind, const char *label)
{
	char   want[96];
	size_t wl;

	wl = (size_t)snprintf(want, sizeof(want), "-----%s %s-----", kind,
	    label);
	if (wl >= sizeof(want) || n < wl || memcmp(s, want, wl) != 0) {
		return 0;
	}
	return wl;
}

/*
 * Decode one PEM block with one of labels (NULL-terminated list) into
 * der.  Only whitespace may surround the block: anything else (a second
 * block, text, a NUL) is rejected, so what we accept is exactly one DER
 * object.
 */
int
station_ca_pem_decode(const char *pem, size_t len, const char *const *labels,
    uint8_t *der, size_t size, size_t *der_len)
{
	char        b64[STATION_CSR_MAX > CERT_PEM_MAX ? STATION_CSR_MAX :
	                                                 CERT_PEM_MAX];
	const char *label = NULL;
	size_t      i = 0, n = 0, hl = 0;
	word32      out_len;

	if (len > sizeof(b64)) {
		return CS_ETOOBIG;
	}
	while (i < len && is_space(pem[i])) {
		i++;
	}
	for (const char *const *l = labels; *l != NULL && hl == 0; l++) {
		hl    = pem_line(pem + i, len - i, "BEGIN", *l);
		label = *l;
	}
	if (hl == 0) {
		return CS_EINVAL;
	}
	i += hl;
	/* Base64 with line breaks, up to the END line. */
	while (i < len && pem[i] != '-') {
		if (is_b64(pem[i])) {
			b64[n++] = pem[i];
		} else if (pem[i] != '\r' && pem[i] != '\n') {
			return CS_EINVAL;
		}
		i++;
	}
	hl = pem_line(pem + i, len - i, "END", label);
	if (hl == 0 || n == 0 || n % 4 != 0) {
		return CS_EINVAL;
	}
	for (i += hl; i < len; i++) {
		if (!is_space(pem[i])) {
			return CS_EINVAL;
		}
	}
	/* '=' only as padding, at most two, at the very end. */
	for (size_t k = 0; k < n; k++) {
		if (b64[k] == '=' && k < n - 2) {
			return CS_EINVAL;
		}
	}
	if (b64[n - 2] == '=' && b64[n - 1] != '=') {
		return CS_EINVAL;
	}
	if (size > 0xffffffffu || n / 4 * 3 > size) {
		return CS_ETOOBIG;
	}
	out_len = (word32)size;
	if (Base64_Decode((const byte *)b64, (word32)n, der, &out_len) != 0) {
		return CS_EINVAL;
	}
	*der_len = out_len;
	return CS_OK;
}

