/*
 * station_ca.c - the station CA (see station_ca.h).
 *
 * The CA key never leaves the HSM, so wolfCrypt cannot sign certificates
 * itself.  Instead wc_MakeCert_ex lays out the TBSCertificate (names,
 * validity, key, key ids, key usages) and we do the rest: hash it, have the
 * HSM sign the digest, and wrap TBS, algorithm and signature into the
 * Certificate SEQUENCE.  wolfSSL 5.5.4's builder cannot express two things
 * the header promises: a pathLenConstraint (it writes CA:TRUE only, never
 * pathlen) and a critical basicConstraints, or CA:FALSE at all.  So we ask
 * it for no basicConstraints and insert our own extension into its TBS.
 * Names are given to it as raw DER (sbjRaw/issRaw) rather than through
 * CertName, so that the issuer of a station certificate is byte for byte
 * the CA's subject and a 64-byte name fits (CertName holds 63).
 *
 * CSRs come from stations, i.e. from whoever reached enrollment, so they
 * are parsed with a small strict DER reader: single-byte tags, definite
 * minimal lengths of at most two bytes, every length checked against what
 * is left of its parent, nothing trailing anywhere.  Only the fields we
 * need are interpreted; the CSR's subject and attributes are skipped (the
 * certificate's subject comes from the enrollment order, not the station).
 *
 * The DER reader and writer and the PEM decoder are in station_ca_der.c,
 * the CRL in station_ca_crl.c; station_ca_impl.h is what they share.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include "station_ca_impl.h"

#include "cs_err.h"
#include "cs_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no
 * parameters (RFC 5758). */
const uint8_t station_ca_alg_ecdsa_sha256[] = {
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
};

/* OID 2.5.29.19, basicConstraints. */
static const uint8_t oid_basic_constraints[] = {0x55, 0x1d, 0x13};

/* Critical basicConstraints { cA TRUE, pathLenConstraint 0 }. */
static const uint8_t ext_bc_ca[] = {
	0x30, 0x12, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff,
	0x04, 0x08, 0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00,
};

/* Critical basicConstraints {} : cA is DEFAULT FALSE, so DER omits it. */
static const uint8_t ext_bc_leaf[] = {
	0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff,
	0x04, 0x02, 0x30, 0x00,
};

/* OIDs of the two name attributes: commonName, organizationName. */
const uint8_t station_ca_oid_cn[] = {0x55, 0x04, 0x03};
const uint8_t station_ca_oid_o[]  = {0x55, 0x04, 0x0a};

/* What differs between the CA certificate and a station certificate. */
struct cert_spec {
	const uint8_t *issuer; /* Name DER */
	size_t         issuer_len;
	const uint8_t *subject; /* Name DER */
	size_t         subject_len;
	const uint8_t *subject_pub; /* raw P-256 point */
	const uint8_t *ca_pub;      /* raw P-256 point of the signer */
	bool           ca;
	unsigned       days;
};

int
station_ca_fail(char *err, size_t errlen, int rv, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rv;
}

/* ------------------------------------------------------------------ */
/* Names, dates, serials                                               */

/* 1..64 printable ASCII bytes; with strict, also no '/' or ','. */
static bool
name_ok(const char *s, bool strict)
{
	size_t n;

	if (s == NULL) {
		return false;
	}
	n = strnlen(s, NAME_LEN_MAX + 1);
	if (n == 0 || n > NAME_LEN_MAX) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e ||
		    (strict && (s[i] == '/' || s[i] == ','))) {
			return false;
		}
	}
	return true;
}

/*
 * RFC 5280 Time: UTCTime through 2049, GeneralizedTime after, as the TLV
 * wolfSSL copies into the validity.
 */
int
station_ca_encode_time(time_t t, uint8_t out[CTC_DATE_SIZE], int *len)
{
	struct tm tm;
	char      s[32];
	int       n;

	if (gmtime_r(&t, &tm) == NULL) {
		return CS_EINVAL;
	}
	if (tm.tm_year + 1900 < 2050) {
		n = snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ",
		    tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		out[0] = 0x17;
	} else {
		n = snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		out[0] = 0x18;
	}
	if (n < 0 || n + 2 > CTC_DATE_SIZE) {
		return CS_EINVAL;
	}
	out[1] = (uint8_t)n;
	memcpy(out + 2, s, (size_t)n);
	*len = n + 2;
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* Building and signing                                                */

/*
 * Put our basicConstraints first into the extensions of a TBS that
 * wolfSSL made without one (we checked), re-encoding the lengths of the
 * [3], its SEQUENCE and the TBS around it.
 */
static int
tbs_add_basic_constraints(const uint8_t *tbs, size_t tbs_len, bool ca,
    uint8_t *out, size_t size, size_t *len)
{
	const uint8_t   *bc     = ca ? ext_bc_ca : ext_bc_leaf;
	size_t           bc_len = ca ? sizeof(ext_bc_ca) : sizeof(ext_bc_leaf);
	struct tbs_parts t;
	struct der       d, body, list, ext, oid, skip;
	size_t           head, seq, ctx, all;
	struct dbuf      b = {out, size, 0, false};

	if (station_ca_tbs_split(tbs, tbs_len, &t) != CS_OK
	    || t.exts.len == 0) {
		return CS_ECRYPTO;
	}
	d = t.exts;
	if (station_ca_der_get(&d, T_CTX3, &body, NULL) != CS_OK ||
	    station_ca_der_get(&body, T_SEQ, &list, NULL) != CS_OK
	    || body.len != 0) {
		return CS_ECRYPTO;
	}
	for (d = list; d.len > 0;) {
		if (station_ca_der_get(&d, T_SEQ, &ext, NULL) != CS_OK ||
		    station_ca_der_get(&ext, T_OID, &oid, NULL) != CS_OK) {
			return CS_ECRYPTO;
		}
		if (oid.len == sizeof(oid_basic_constraints) &&
		    memcmp(oid.p, oid_basic_constraints, oid.len) == 0) {
			return CS_ECRYPTO;
		}
	}
	/* The TBS body up to the extensions is kept as it is. */
	d = (struct der){tbs, tbs_len};
	if (station_ca_der_get(&d, T_SEQ, &skip, NULL) != CS_OK) {
		return CS_ECRYPTO;
	}
	head = (size_t)(t.exts.p - skip.p);
	seq  = bc_len + list.len;
	ctx  = station_ca_der_hdr_len(seq) + seq;
	all  = head + station_ca_der_hdr_len(ctx) + ctx;
	station_ca_dbuf_hdr(&b, T_SEQ, all);
	station_ca_dbuf_put(&b, skip.p, head);
	station_ca_dbuf_hdr(&b, T_CTX3, ctx);
	station_ca_dbuf_hdr(&b, T_SEQ, seq);
	station_ca_dbuf_put(&b, bc, bc_len);
	station_ca_dbuf_put(&b, list.p, list.len);
	if (b.over) {
		return CS_ETOOBIG;
	}
	*len = b.len;
	return CS_OK;
}

/*
 * wolfSSL's raw names are the contents of the Name SEQUENCE (it adds the
 * SEQUENCE itself) as a C string, in a buffer of sizeof(CertName).  Check
 * that name fits that, and copy it to dst when non-NULL.
 */
static int
raw_name(const uint8_t *name, size_t len, byte *dst)
{
	struct der d = {name, len}, body;

	if (station_ca_der_get(&d, T_SEQ, &body, NULL) != CS_OK
	    || d.len != 0 ||
	    body.len == 0 || body.len >= sizeof(CertName) ||
	    memchr(body.p, 0, body.len) != NULL) {
		return CS_EINVAL;
	}
	if (dst != NULL) {
		memcpy(dst, body.p, body.len);
		dst[body.len] = 0;
	}
	return CS_OK;
}

/* Fill the wolfSSL Cert from spec: everything but basicConstraints. */
static int
cert_fill(Cert *c, const struct cert_spec *s, ecc_key *subject,
    ecc_key *issuer, WC_RNG *rng)
{
	time_t now = time(NULL);
	int    rv;

	if ((rv = wc_InitCert(c)) != 0) {
		return rv;
	}
	c->sigType = CTC_SHA256wECDSA;
	c->isCA    = 0; /* basicConstraints is ours, see the top */
	if (raw_name(s->subject, s->subject_len, c->sbjRaw) != CS_OK ||
	    raw_name(s->issuer, s->issuer_len, c->issRaw) != CS_OK) {
		return BAD_FUNC_ARG;
	}
	if (station_ca_encode_time(now - NOT_BEFORE_SKEW, c->beforeDate,
	        &c->beforeDateSz) != CS_OK ||
	    station_ca_encode_time(now - NOT_BEFORE_SKEW +
	            (time_t)s->days * 86400,
	        c->afterDate, &c->afterDateSz) != CS_OK) {
		return BAD_FUNC_ARG;
	}
	/*
	 * 16 random bytes, top bit clear (a positive INTEGER) and the next
	 * one set (so DER keeps all 16 bytes): 126 random bits.
	 */
	if ((rv = wc_RNG_GenerateBlock(rng, c->serial, SERIAL_LEN)) != 0) {
		return rv;
	}
	c->serial[0] = (uint8_t)((c->serial[0] & 0x7f) | 0x40);
	c->serialSz  = SERIAL_LEN;
	if ((rv = wc_SetKeyUsage(c, s->ca ? "keyCertSign,cRLSign" :
	                                    "digitalSignature")) != 0 ||
	    (!s->ca && (rv = wc_SetExtKeyUsage(c, "clientAuth")) != 0) ||
	    (rv = wc_SetSubjectKeyIdFromPublicKey_ex(c, ECC_TYPE,
	         subject)) != 0 ||
	    (rv = wc_SetAuthKeyIdFromPublicKey_ex(c, ECC_TYPE, issuer)) != 0) {
		return rv;
	}
	return 0;
}

static int
import_point(const uint8_t *pub, ecc_key *k)
{
	int rv;

	if ((rv = wc_ecc_init(k)) != 0) {
		return rv;
	}
	if ((rv = wc_ecc_import_x963(pub, CS_P256_POINT_LEN, k)) != 0) {
		wc_ecc_free(k);
	}
	return rv;
}

/*
 * The TBSCertificate of spec, complete with our basicConstraints, and
 * checked to carry exactly the names we asked for.
 */
static int
make_tbs(const struct cert_spec *s, uint8_t *out, size_t size, size_t *len)
{
	uint8_t          raw[TBS_MAX];
	size_t           raw_len = 0;
	Cert            *c = NULL;
	ecc_key          sk, ik;
	WC_RNG           rng;
	bool             have_sk = false, have_ik = false, have_rng = false;
	struct tbs_parts t;
	int              wrv, rv = CS_ECRYPTO;

	/* A Cert is several KiB: the heap, not a worker thread's stack. */
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return CS_ENOMEM;
	}
	if ((wrv = wc_InitRng(&rng)) != 0) {
		goto out;
	}
	have_rng = true;
	if ((wrv = import_point(s->subject_pub, &sk)) != 0) {
		goto out;
	}
	have_sk = true;
	if ((wrv = import_point(s->ca_pub, &ik)) != 0) {
		goto out;
	}
	have_ik = true;
	if ((wrv = cert_fill(c, s, &sk, &ik, &rng)) != 0) {
		goto out;
	}
	wrv = wc_MakeCert_ex(c, raw, sizeof(raw), ECC_TYPE, &sk, &rng);
	if (wrv <= 0) {
		goto out;
	}
	raw_len = (size_t)wrv;
	wrv     = 0;
	if ((rv = tbs_add_basic_constraints(raw, raw_len, s->ca,
	         out, size, len)) != CS_OK) {
		goto out;
	}
	/* wolfSSL truncates long raw names silently; make sure it did not. */
	if (station_ca_tbs_split(out, *len, &t) != CS_OK ||
	    t.issuer.len != s->issuer_len ||
	    memcmp(t.issuer.p, s->issuer, s->issuer_len) != 0 ||
	    t.subject.len != s->subject_len ||
	    memcmp(t.subject.p, s->subject, s->subject_len) != 0) {
		cs_log_error(LOG_MOD, "wolfSSL changed a name in the TBS");
		rv = CS_ECRYPTO;
	}
out:
	if (wrv != 0) {
		cs_log_error(LOG_MOD, "building the certificate failed "
		    "wolf_err=%d (%s)", wrv, wc_GetErrorString(wrv));
		rv = CS_ECRYPTO;
	}
	if (have_ik) {
		wc_ecc_free(&ik);
	}
	if (have_sk) {
		wc_ecc_free(&sk);
	}
	if (have_rng) {
		wc_FreeRng(&rng);
	}
	free(c);
	return rv;
}

/*
 * Certificate ::= SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING sig }:
 * the HSM signs SHA-256(tbs), and the result is checked against the CA
 * public key before anyone sees it (a token that signs wrongly must not
 * hand out certificates that fail at the TLS handshake).
 */
int
station_ca_sign_tbs(cs_hsm *h, const char *label, const uint8_t *ca_pub,
    const uint8_t *tbs, size_t tbs_len, uint8_t *out, size_t size,
    size_t *len)
{
	uint8_t     digest[CS_SHA256_LEN], sig[CS_SIG_LEN];
	uint8_t     sig_der[ECDSA_DER_MAX];
	size_t      sig_len = 0, body;
	struct dbuf b = {out, size, 0, false};
	int         rv;

	if ((rv = cs_sha256(tbs, tbs_len, digest)) != CS_OK ||
	    (rv = cs_hsm_sign(h, label, CS_ALG_P256, digest, sizeof(digest),
	         sig)) != CS_OK) {
		return rv;
	}
	if (cs_verify(CS_ALG_P256, ca_pub, CS_P256_POINT_LEN, tbs, tbs_len,
	        sig) != CS_OK) {
		cs_log_error(LOG_MOD, "HSM signature does not verify key=%s",
		    label);
		return CS_ECRYPTO;
	}
	if ((rv = cs_ecdsa_raw_to_der(sig, sig_der, sizeof(sig_der),
	         &sig_len)) != CS_OK) {
		return rv;
	}
	body = tbs_len + sizeof(station_ca_alg_ecdsa_sha256) +
	    station_ca_der_hdr_len(sig_len + 1) + sig_len + 1;
	station_ca_dbuf_hdr(&b, T_SEQ, body);
	station_ca_dbuf_put(&b, tbs, tbs_len);
	station_ca_dbuf_put(&b, station_ca_alg_ecdsa_sha256,
	    sizeof(station_ca_alg_ecdsa_sha256));
	station_ca_dbuf_hdr(&b, T_BITSTR, sig_len + 1);
	station_ca_dbuf_put(&b, "", 1); /* no unused bits */
	station_ca_dbuf_put(&b, sig_der, sig_len);
	if (b.over) {
		return CS_ETOOBIG;
	}
	*len = b.len;
	return CS_OK;
}

/* Make and sign a certificate: DER into out (CERT_DER_MAX bytes). */
static int
cert_make(cs_hsm *h, const char *label, const struct cert_spec *s,
    uint8_t *out, size_t size, size_t *len)
{
	uint8_t tbs[TBS_MAX];
	size_t  tbs_len = 0;
	int     rv;

	if (raw_name(s->issuer, s->issuer_len, NULL) != CS_OK ||
	    raw_name(s->subject, s->subject_len, NULL) != CS_OK) {
		return CS_EINVAL;
	}
	if ((rv = make_tbs(s, tbs, sizeof(tbs), &tbs_len)) != CS_OK) {
		return rv;
	}
	return station_ca_sign_tbs(h, label, s->ca_pub, tbs, tbs_len, out,
	    size, len);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

/* Write all of data to a new file (O_EXCL, 0644), fsync'ed. */
static int
write_new_file(const char *path, const char *data, size_t len, char *err,
    size_t errlen)
{
	int fd, e = 0;

	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0) {
		e = errno;
		return station_ca_fail(err, errlen,
		    e == EEXIST ? CS_EEXIST : CS_EIO,
		    "cannot create %s: %s", path, strerror(e));
	}
	while (len > 0 && e == 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno != EINTR) {
			e = errno;
		} else if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
	}
	if (e == 0 && fsync(fd) != 0) {
		e = errno;
	}
	if (close(fd) != 0 && e == 0) {
		e = errno;
	}
	if (e != 0) {
		/* Ours, and useless half-written: let a retry succeed. */
		unlink(path);
		return station_ca_fail(err, errlen, CS_EIO,
		    "cannot write %s: %s", path,
		    strerror(e));
	}
	return CS_OK;
}

/* Read a whole (small) file; *buf is malloc'ed and NUL-terminated. */
static int
read_small_file(const char *path, size_t max, char **buf, size_t *len,
    char *err, size_t errlen)
{
	struct stat st;
	char       *p;
	size_t      n = 0;
	int         fd, e = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		e = errno;
		return station_ca_fail(err, errlen,
		    e == ENOENT ? CS_ENOENT : CS_EIO,
		    "cannot open %s: %s%s", path, strerror(e),
		    e == ENOENT ? " (run `countersign-admin ca init`)" : "");
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uintmax_t)st.st_size > max) {
		close(fd);
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "%s: not a regular file of at most %zu bytes", path, max);
	}
	if ((p = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return station_ca_fail(err, errlen, CS_ENOMEM,
		    "out of memory");
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, p + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			e = r < 0 ? errno : EIO;
			break;
		}
		n += (size_t)r;
	}
	close(fd);
	if (e != 0) {
		free(p);
		return station_ca_fail(err, errlen, CS_EIO,
		    "cannot read %s: %s", path,
		    strerror(e));
	}
	p[n] = '\0';
	*buf = p;
	*len = n;
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

/* The key must not exist yet: any key under label counts. */
static int
check_no_key(cs_hsm *h, const char *label, char *err, size_t errlen)
{
	struct cs_hsm_key k;
	int               rv = cs_hsm_key(h, label, &k);

	if (rv == CS_ENOENT) {
		return CS_OK;
	}
	if (rv == CS_OK || rv == CS_EINVAL || rv == CS_EPRECOND) {
		return station_ca_fail(err, errlen, CS_EEXIST,
		    "a key labelled \"%s\" "
		    "already exists on the token: choose another "
		    "[hsm] station_ca_key, or keep using the existing CA",
		    label);
	}
	return station_ca_fail(err, errlen, rv,
	    "cannot look up key \"%s\": %s", label,
	    cs_strerror(rv));
}

/* Self-sign the CA certificate for key k and write it to cert_path. */
static int
ca_write_cert(cs_hsm *h, const char *label, const struct cs_hsm_key *k,
    const char *cn, unsigned days, const char *cert_path, char *err,
    size_t errlen)
{
	uint8_t name[NAME_DER_MAX], der[CERT_DER_MAX];
	char    pem[2 * CERT_DER_MAX];
	size_t  name_len = 0, der_len = 0;
	int     rv;

	if ((rv = station_ca_name_der(cn, "Countersign", name, sizeof(name),
	         &name_len)) != CS_OK) {
		return station_ca_fail(err, errlen, rv, "CA name too long");
	}
	struct cert_spec s = {
	    .issuer      = name,
	    .issuer_len  = name_len,
	    .subject     = name,
	    .subject_len = name_len,
	    .subject_pub = k->pub,
	    .ca_pub      = k->pub,
	    .ca          = true,
	    .days        = days,
	};
	if ((rv = cert_make(h, label, &s, der, sizeof(der), &der_len)) !=
	        CS_OK ||
	    (rv = cs_pem_encode("CERTIFICATE", der, der_len, pem,
	         sizeof(pem))) != CS_OK) {
		return station_ca_fail(err, errlen, rv,
		    "cannot make the CA certificate: "
		    "%s", cs_strerror(rv));
	}
	return write_new_file(cert_path, pem, strlen(pem), err, errlen);
}

int
station_ca_init(cs_hsm *h, const char *label, const char *cn,
    unsigned days, const char *cert_path, char *err, size_t errlen)
{
	struct cs_hsm_key k;
	struct stat       st;
	char              why[512];
	int               rv;

	if (h == NULL || label == NULL || cert_path == NULL) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "missing argument");
	}
	if (!name_ok(cn, true)) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "bad CA common name: 1 to "
		    "64 printable characters, no '/' or ','");
	}
	if (days == 0 || days > CA_DAYS_MAX) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "CA validity %u days: "
		    "must be 1..%u", days, CA_DAYS_MAX);
	}
	if (lstat(cert_path, &st) == 0) {
		return station_ca_fail(err, errlen, CS_EEXIST,
		    "%s already exists: the "
		    "CA is set up already, or move the file away first",
		    cert_path);
	}
	if (errno != ENOENT) {
		return station_ca_fail(err, errlen, CS_EIO,
		    "cannot check %s: %s",
		    cert_path, strerror(errno));
	}
	if ((rv = check_no_key(h, label, err, errlen)) != CS_OK) {
		return rv;
	}
	if ((rv = cs_hsm_keygen(h, label, CS_ALG_P256, &k)) != CS_OK) {
		return station_ca_fail(err, errlen, rv,
		    "cannot generate key \"%s\": %s",
		    label, cs_strerror(rv));
	}
	rv = ca_write_cert(h, label, &k, cn, days, cert_path, why,
	    sizeof(why));
	if (rv != CS_OK) {
		/* The key cannot be deleted through the shim, by design. */
		return station_ca_fail(err, errlen, rv,
		    "%s; the key \"%s\" was "
		    "generated and stays on the token: delete it with the "
		    "token's own tools or choose another [hsm] "
		    "station_ca_key, then run `countersign-admin ca init` "
		    "again", why, label);
	}
	cs_log_info(LOG_MOD, "station CA created key=%s cert=%s days=%u",
	    label, cert_path, days);
	return CS_OK;
}

int
station_ca_open(station_ca **out, cs_hsm *h, const char *label,
    const char *cert_path, char *err, size_t errlen)
{
	static const char *const labels[] = {"CERTIFICATE", NULL};
	struct cs_hsm_key        k;
	struct tbs_parts         t;
	station_ca              *ca;
	uint8_t                  der[CERT_PEM_MAX];
	char                    *pem = NULL;
	size_t                   pem_len = 0, der_len = 0;
	int                      rv;

	if (out == NULL || h == NULL || label == NULL || cert_path == NULL ||
	    strlen(label) >= sizeof(ca->label)) {
		return station_ca_fail(err, errlen, CS_EINVAL, "bad argument");
	}
	*out = NULL;
	if ((rv = read_small_file(cert_path, CERT_PEM_MAX, &pem, &pem_len,
	         err, errlen)) != CS_OK) {
		return rv;
	}
	rv = station_ca_pem_decode(pem, pem_len, labels, der, sizeof(der),
	    &der_len);
	free(pem);
	if (rv != CS_OK || station_ca_cert_split(der, der_len, &t) != CS_OK) {
		return station_ca_fail(err, errlen, CS_EINVAL, "%s: not a PEM "
		    "certificate", cert_path);
	}
	/* Checked now rather than at every issue: it becomes their issuer. */
	if (t.subject.len > NAME_DER_MAX ||
	    raw_name(t.subject.p, t.subject.len, NULL) != CS_OK) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "%s: subject name too "
		    "long or unusable as an issuer", cert_path);
	}
	rv = cs_hsm_key(h, label, &k);
	if (rv == CS_ENOENT) {
		return station_ca_fail(err, errlen, CS_ENOENT,
		    "no key \"%s\" on the "
		    "token: run `countersign-admin ca init`", label);
	}
	if (rv != CS_OK) {
		return station_ca_fail(err, errlen,
		    rv == CS_EINVAL ? CS_EPRECOND : rv,
		    "key \"%s\": %s", label, cs_strerror(rv));
	}
	if (k.alg != CS_ALG_P256 || t.spki.len != k.spki_len ||
	    memcmp(t.spki.p, k.spki, k.spki_len) != 0) {
		return station_ca_fail(err, errlen, CS_EPRECOND,
		    "%s is not the "
		    "certificate of HSM key \"%s\": restore the matching "
		    "file or configuration", cert_path, label);
	}
	if ((ca = calloc(1, sizeof(*ca))) == NULL) {
		return station_ca_fail(err, errlen, CS_ENOMEM,
		    "out of memory");
	}
	ca->h = h;
	snprintf(ca->label, sizeof(ca->label), "%s", label);
	memcpy(ca->pub, k.pub, sizeof(ca->pub));
	memcpy(ca->name, t.subject.p, t.subject.len);
	ca->name_len = t.subject.len;
	struct der skid;
	if (station_ca_ext_find(&t.exts, station_ca_oid_skid,
	    sizeof(station_ca_oid_skid), &skid) == CS_OK) {
		struct der kv, v = skid;
		if (station_ca_der_get(&v, T_OCTETSTR, &kv, NULL) == CS_OK
		    && v.len == 0 &&
		    kv.len > 0 && kv.len <= sizeof(ca->skid)) {
			memcpy(ca->skid, kv.p, kv.len);
			ca->skid_len = kv.len;
		}
	}
	*out = ca;
	return CS_OK;
}

void
station_ca_close(station_ca *ca)
{
	free(ca);
}

/*
 * Parse and check a CSR: the key (P-256 only), the signature algorithm
 * and the self-signature over the exact certificationRequestInfo bytes.
 * On success pub gets the station's point and spki its SPKI DER.
 */
static int
csr_check(const uint8_t *der, size_t len, uint8_t pub[CS_P256_POINT_LEN],
    struct station_cert *out, char *err, size_t errlen)
{
	static const uint8_t v0[] = {0x02, 0x01, 0x00};
	struct der           d = {der, len}, req, info, cri, body, spki, alg;
	struct der           skip, sig;
	uint8_t              raw[CS_SIG_LEN];
	size_t               pub_len;
	cs_alg               a;

	if (station_ca_der_get(&d, T_SEQ, &req, NULL) != CS_OK || d.len != 0 ||
	    station_ca_der_get(&req, T_SEQ, &info, &cri) != CS_OK ||
	    station_ca_der_get(&req, T_SEQ, &skip, &alg) != CS_OK ||
	    station_ca_der_get(&req, T_BITSTR, &sig, NULL) != CS_OK
	    || req.len != 0) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "not a PKCS#10 CSR");
	}
	body = info;
	if (body.len < sizeof(v0) || memcmp(body.p, v0, sizeof(v0)) != 0) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "CSR version is not 1");
	}
	body.p += sizeof(v0);
	body.len -= sizeof(v0);
	if (station_ca_der_get(&body, T_SEQ, &skip, NULL) != CS_OK ||
	    station_ca_der_get(&body, T_SEQ, &skip, &spki) != CS_OK ||
	    station_ca_der_get(&body, T_CTX0, &skip, NULL) != CS_OK
	    || body.len != 0) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "malformed CSR contents");
	}
	if (spki.len > sizeof(out->spki) ||
	    cs_spki_decode(spki.p, spki.len, &a, pub, &pub_len) != CS_OK ||
	    a != CS_ALG_P256) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "CSR key is not an ECDSA "
		    "P-256 key");
	}
	if (alg.len != sizeof(station_ca_alg_ecdsa_sha256) ||
	    memcmp(alg.p, station_ca_alg_ecdsa_sha256, alg.len) != 0) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "CSR signature algorithm "
		    "is not ecdsa-with-SHA256");
	}
	if (sig.len < 1 || sig.p[0] != 0 ||
	    station_ca_ecdsa_der_to_raw(sig.p + 1, sig.len - 1,
	    raw) != CS_OK) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "malformed CSR signature");
	}
	if (cs_verify(CS_ALG_P256, pub, pub_len, cri.p, cri.len, raw) !=
	    CS_OK) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "CSR signature does not "
		    "verify: the station does not hold its key");
	}
	memcpy(out->spki, spki.p, spki.len);
	out->spki_len = spki.len;
	return CS_OK;
}

int
station_ca_issue(station_ca *ca, const char *csr_pem, size_t csr_len,
    const char *name, const char *cm, unsigned days,
    struct station_cert *out, char *err, size_t errlen)
{
	static const char *const labels[] = {"CERTIFICATE REQUEST",
	    "NEW CERTIFICATE REQUEST", NULL};
	uint8_t csr[STATION_CSR_MAX], der[CERT_DER_MAX];
	uint8_t subject[NAME_DER_MAX], pub[CS_P256_POINT_LEN];
	size_t  csr_der_len = 0, der_len = 0, subject_len = 0, pem_size;
	int     rv;

	if (ca == NULL || csr_pem == NULL || out == NULL) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "missing argument");
	}
	memset(out, 0, sizeof(*out));
	if (csr_len > STATION_CSR_MAX) {
		return station_ca_fail(err, errlen, CS_ETOOBIG,
		    "CSR is %zu bytes, at "
		    "most %u allowed", csr_len, STATION_CSR_MAX);
	}
	if (!name_ok(name, true)) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "bad station name: 1 to "
		    "64 printable characters, no '/' or ','");
	}
	if (!name_ok(cm, false)) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "bad organisation (cm): 1 "
		    "to 64 printable characters");
	}
	if (days == 0 || days > STATION_CERT_DAYS_MAX) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "certificate validity %u "
		    "days: must be 1..%u", days, STATION_CERT_DAYS_MAX);
	}
	rv = station_ca_pem_decode(csr_pem, csr_len, labels, csr, sizeof(csr),
	    &csr_der_len);
	if (rv != CS_OK) {
		return station_ca_fail(err, errlen, CS_EINVAL,
		    "CSR is not a single PEM "
		    "CERTIFICATE REQUEST");
	}
	if ((rv = csr_check(csr, csr_der_len, pub, out, err, errlen)) !=
	    CS_OK) {
		return rv;
	}
	if ((rv = station_ca_name_der(name, cm, subject, sizeof(subject),
	         &subject_len)) != CS_OK) {
		return station_ca_fail(err, errlen, rv,
		    "subject name too long");
	}
	struct cert_spec s = {
	    .issuer      = ca->name,
	    .issuer_len  = ca->name_len,
	    .subject     = subject,
	    .subject_len = subject_len,
	    .subject_pub = pub,
	    .ca_pub      = ca->pub,
	    .ca          = false,
	    .days        = days,
	};
	struct tbs_parts issued;
	if ((rv = cert_make(ca->h, ca->label, &s, der, sizeof(der),
	         &der_len)) != CS_OK ||
	    (rv = cs_sha256(der, der_len, out->cert_sha256)) != CS_OK) {
		goto bad;
	}
	if (station_ca_cert_split(der, der_len, &issued) != CS_OK ||
	    issued.serial.len == 0 ||
	    issued.serial.len > sizeof(out->serial)) {
		rv = CS_EINTERNAL;
		goto bad;
	}
	memcpy(out->serial, issued.serial.p, issued.serial.len);
	out->serial_len = issued.serial.len;
	pem_size = 2 * der_len + 128;
	if ((out->cert_pem = malloc(pem_size)) == NULL) {
		rv = CS_ENOMEM;
		goto bad;
	}
	if ((rv = cs_pem_encode("CERTIFICATE", der, der_len, out->cert_pem,
	         pem_size)) != CS_OK) {
		goto bad;
	}
	return CS_OK;
bad:
	free(out->cert_pem);
	memset(out, 0, sizeof(*out));
	return station_ca_fail(err, errlen, rv,
	    "cannot issue the certificate: %s",
	    cs_strerror(rv));
}
