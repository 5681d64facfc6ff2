/*
 * station_ca_test.c - the station CA against a real SoftHSM2 token, with
 * OpenSSL's command line as the independent judge: it makes the CSRs
 * (good and bad ones) and verifies, prints and takes apart what we issue.
 */
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "cs_log.h"
#include "cs_hex.h"
#include "station_ca.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define TOKEN    "ca-token"
#define PIN      "1234"
#define CA_LABEL "station-ca"
#define CA_DN    "O = Countersign, CN = Station CA" /* as openssl prints */

struct fx {
	char       *dir;
	cs_hsm     *h;
	station_ca *ca;
	char        ca_pem[512];
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* Run a shell command in the fixture directory; returns its status. */
static int
sh(const struct fx *f, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
sh(const struct fx *f, char *out, size_t len, const char *fmt, ...)
{
	char    cmd[2048], sink[4096];
	int     n;
	va_list ap;

	n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", f->dir);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	char *argv[] = {(char *)"sh", (char *)"-c", cmd, NULL};
	if (out == NULL) {
		out = sink;
		len = sizeof(sink);
	}
	return tu_run(argv, out, len);
}

/* The same, failing the test unless the command succeeds. */
#define SH_OK(f, out, len, ...)                                               \
	do {                                                                  \
		char sh_buf_[4096];                                           \
		char *o_ = (out) != NULL ? (out) : sh_buf_;                   \
		size_t l_ = (out) != NULL ? (len) : sizeof(sh_buf_);          \
		int rv_ = sh((f), o_, l_, __VA_ARGS__);                       \
		if (rv_ != 0) {                                               \
			fprintf(stderr, "command failed: %s\n", o_);          \
		}                                                             \
		assert_int_equal(rv_, 0);                                     \
	} while (0)

/* Read a file of the fixture directory; malloc'ed, NUL-terminated. */
static char *
slurp(const struct fx *f, const char *name, size_t *len)
{
	char  path[512];
	FILE *fp;
	long  n;
	char *buf;

	fp = fopen(tu_path(path, sizeof(path), f->dir, name), "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	if (len != NULL) {
		*len = (size_t)n;
	}
	return buf;
}

static void
write_bytes(const struct fx *f, const char *name, const void *p, size_t n)
{
	char  path[512];
	FILE *fp = fopen(tu_path(path, sizeof(path), f->dir, name), "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static bool
file_exists(const struct fx *f, const char *name)
{
	char path[512];

	return access(tu_path(path, sizeof(path), f->dir, name), F_OK) == 0;
}

/* A P-256 station key and its CSR, made by OpenSSL. */
static char *
make_csr(const struct fx *f, const char *key, const char *csr)
{
	SH_OK(f, NULL, 0, "openssl ecparam -genkey -name prime256v1 -noout "
	    "-out %s && openssl req -new -key %s -subj /CN=x -out %s", key,
	    key, csr);
	return slurp(f, csr, NULL);
}

/* The DER of a PEM CSR file, by OpenSSL. */
static uint8_t *
csr_der(const struct fx *f, const char *csr, size_t *len)
{
	SH_OK(f, NULL, 0, "openssl req -in %s -outform DER -out %s.der", csr,
	    csr);
	char name[256];
	snprintf(name, sizeof(name), "%s.der", csr);
	return (uint8_t *)slurp(f, name, len);
}

/* Issue with err checked to be set on failure. */
static int
issue(struct fx *f, const char *pem, size_t len, const char *name,
    const char *cm, unsigned days, struct station_cert *out, char *err,
    size_t errlen)
{
	int rv;

	err[0] = '\0';
	rv = station_ca_issue(f->ca, pem, len, name, cm, days, out, err,
	    errlen);
	if (rv != CS_OK) {
		assert_true(err[0] != '\0');
		assert_null(out->cert_pem);
	}
	return rv;
}

/* Issue from an arbitrary DER blob (PEM-armoured here); expect CS_EINVAL. */
static void
issue_der_fails(struct fx *f, const uint8_t *der, size_t len,
    const char *want)
{
	char                pem[16384], err[512];
	struct station_cert sc;

	assert_int_equal(cs_pem_encode("CERTIFICATE REQUEST", der, len, pem,
	    sizeof(pem)), CS_OK);
	assert_int_equal(issue(f, pem, strlen(pem), "st", "cm",
	    STATION_CERT_DAYS_DEFAULT, &sc, err, sizeof(err)), CS_EINVAL);
	if (want != NULL && strstr(err, want) == NULL) {
		fail_msg("error \"%s\" does not mention \"%s\"", err, want);
	}
}

/* ------------------------------------------------------------------ */
/* Fixture                                                             */

static int
group_setup(void **state)
{
	(void)state;
	cs_log_open("station_ca_test", CS_LOG_ERROR, false);
	umask(022);
	return 0;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char       pin_file[512], err[1024];

	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_make_token(f->dir, TOKEN, PIN);
	tu_path(pin_file, sizeof(pin_file), f->dir, "pin");
	struct cs_hsm_opts o = {
	    .module   = CS_SOFTHSM_MODULE,
	    .token    = TOKEN,
	    .pin_file = pin_file,
	};
	if (cs_hsm_open(&f->h, &o, err, sizeof(err)) != CS_OK) {
		fail_msg("cs_hsm_open: %s", err);
	}
	tu_path(f->ca_pem, sizeof(f->ca_pem), f->dir, "ca.pem");
	*state = f;
	return 0;
}

/* setup, plus a CA made and opened. */
static int
setup_ca(void **state)
{
	struct fx *f;
	char       err[1024];

	setup(state);
	f = *state;
	if (station_ca_init(f->h, CA_LABEL, "Station CA",
	        STATION_CA_DAYS_DEFAULT, f->ca_pem, err, sizeof(err)) !=
	    CS_OK) {
		fail_msg("station_ca_init: %s", err);
	}
	if (station_ca_open(&f->ca, f->h, CA_LABEL, f->ca_pem, err,
	        sizeof(err)) != CS_OK) {
		fail_msg("station_ca_open: %s", err);
	}
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	station_ca_close(f->ca);
	cs_hsm_close(f->h);
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The CA certificate                                                  */

static void
test_init_writes_ca(void **state)
{
	struct fx  *f = *state;
	char        out[8192];
	struct stat st;
	long        now = (long)time(NULL);

	assert_int_equal(stat(f->ca_pem, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);

	SH_OK(f, out, sizeof(out), "openssl x509 -in ca.pem -noout -text");
	assert_non_null(strstr(out, "CA:TRUE, pathlen:0"));
	assert_non_null(strstr(out, "X509v3 Basic Constraints: critical"));
	assert_non_null(strstr(out, "X509v3 Key Usage: critical"));
	assert_non_null(strstr(out, "Certificate Sign, CRL Sign"));
	assert_non_null(strstr(out, "X509v3 Subject Key Identifier"));
	assert_non_null(strstr(out, "Subject: " CA_DN));
	assert_non_null(strstr(out, "Issuer: " CA_DN));
	assert_non_null(strstr(out, "ecdsa-with-SHA256"));
	assert_non_null(strstr(out, "prime256v1"));

	SH_OK(f, out, sizeof(out), "openssl verify -CAfile ca.pem ca.pem");
	assert_non_null(strstr(out, "ca.pem: OK"));

	/* Valid from an hour ago (give a minute for the test's own pace). */
	SH_OK(f, NULL, 0, "openssl verify -attime %ld -CAfile ca.pem ca.pem",
	    now - 3600 + 60);
	assert_int_not_equal(sh(f, NULL, 0, "openssl verify -attime %ld "
	    "-CAfile ca.pem ca.pem", now - 3600 - 60), 0);
	/* ... for STATION_CA_DAYS_DEFAULT days. */
	SH_OK(f, NULL, 0, "openssl x509 -in ca.pem -noout -checkend %ld",
	    (long)STATION_CA_DAYS_DEFAULT * 86400 - 3600 - 60);
	assert_int_not_equal(sh(f, NULL, 0, "openssl x509 -in ca.pem -noout "
	    "-checkend %ld",
	    (long)STATION_CA_DAYS_DEFAULT * 86400 - 3600 + 60), 0);

	/* The key is on the token, and is the certificate's. */
	struct cs_hsm_key k;
	size_t            der_len;
	assert_int_equal(cs_hsm_key(f->h, CA_LABEL, &k), CS_OK);
	assert_false(k.extractable);
	SH_OK(f, NULL, 0, "openssl x509 -in ca.pem -noout -pubkey | "
	    "openssl pkey -pubin -outform DER -out ca-pub.der");
	char *der = slurp(f, "ca-pub.der", &der_len);
	assert_int_equal(der_len, k.spki_len);
	assert_memory_equal(der, k.spki, der_len);
	free(der);
}

static void
test_init_refuses_existing(void **state)
{
	struct fx *f = *state;
	char       err[1024], path[512];

	/* The same file again. */
	assert_int_equal(station_ca_init(f->h, "another", "CA", 10, f->ca_pem,
	    err, sizeof(err)), CS_EEXIST);
	assert_non_null(strstr(err, "already exists"));
	/* No key was made on the way. */
	struct cs_hsm_key k;
	assert_int_equal(cs_hsm_key(f->h, "another", &k), CS_ENOENT);

	/* A fresh file but the same label: no file is left behind. */
	tu_path(path, sizeof(path), f->dir, "ca2.pem");
	assert_int_equal(station_ca_init(f->h, CA_LABEL, "CA", 10, path, err,
	    sizeof(err)), CS_EEXIST);
	assert_non_null(strstr(err, CA_LABEL));
	assert_false(file_exists(f, "ca2.pem"));
}

static void
test_init_bad_args(void **state)
{
	struct fx *f = *state;
	char       err[1024], path[512];

	tu_path(path, sizeof(path), f->dir, "x.pem");
	assert_int_equal(station_ca_init(f->h, "k1", "CA", 0, path, err,
	    sizeof(err)), CS_EINVAL);
	assert_int_equal(station_ca_init(f->h, "k1", "CA", 36501, path, err,
	    sizeof(err)), CS_EINVAL);
	assert_int_equal(station_ca_init(f->h, "k1", "", 10, path, err,
	    sizeof(err)), CS_EINVAL);
	assert_int_equal(station_ca_init(f->h, "k1", "a/b", 10, path, err,
	    sizeof(err)), CS_EINVAL);
	assert_false(file_exists(f, "x.pem"));
	struct cs_hsm_key k;
	assert_int_equal(cs_hsm_key(f->h, "k1", &k), CS_ENOENT);

	/* A directory that does not exist: the key stays, err says so. */
	assert_int_equal(station_ca_init(f->h, "k2", "CA", 10,
	    "/nonexistent/dir/ca.pem", err, sizeof(err)), CS_EIO);
	assert_non_null(strstr(err, "/nonexistent/dir/ca.pem"));
	assert_non_null(strstr(err, "stays on the token"));
	assert_int_equal(cs_hsm_key(f->h, "k2", &k), CS_OK);
}

static void
test_open(void **state)
{
	struct fx  *f = *state;
	station_ca *ca = NULL;
	char        err[1024], path[512];

	/* Another CA under another label: its certificate is not ours. */
	tu_path(path, sizeof(path), f->dir, "other.pem");
	assert_int_equal(station_ca_init(f->h, "other", "Other CA", 30, path,
	    err, sizeof(err)), CS_OK);
	assert_int_equal(station_ca_open(&ca, f->h, CA_LABEL, path, err,
	    sizeof(err)), CS_EPRECOND);
	assert_null(ca);
	assert_non_null(strstr(err, CA_LABEL));
	assert_int_equal(station_ca_open(&ca, f->h, "other", path, err,
	    sizeof(err)), CS_OK);
	station_ca_close(ca);
	ca = NULL;

	/* No file; no key. */
	tu_path(path, sizeof(path), f->dir, "missing.pem");
	assert_int_equal(station_ca_open(&ca, f->h, CA_LABEL, path, err,
	    sizeof(err)), CS_ENOENT);
	assert_non_null(strstr(err, "ca init"));
	assert_int_equal(station_ca_open(&ca, f->h, "nokey", f->ca_pem, err,
	    sizeof(err)), CS_ENOENT);
	assert_non_null(strstr(err, "ca init"));

	/* Not a certificate: text, a CSR, a cert with junk after it. */
	tu_path(path, sizeof(path), f->dir, "junk.pem");
	tu_write_file(path, "hello\n");
	assert_int_equal(station_ca_open(&ca, f->h, CA_LABEL, path, err,
	    sizeof(err)), CS_EINVAL);
	char *csr = make_csr(f, "k.pem", "k.csr");
	tu_write_file(path, csr);
	free(csr);
	assert_int_equal(station_ca_open(&ca, f->h, CA_LABEL, path, err,
	    sizeof(err)), CS_EINVAL);
	char *pem = slurp(f, "ca.pem", NULL);
	char  buf[8192];
	snprintf(buf, sizeof(buf), "%sjunk\n", pem);
	free(pem);
	tu_write_file(path, buf);
	assert_int_equal(station_ca_open(&ca, f->h, CA_LABEL, path, err,
	    sizeof(err)), CS_EINVAL);
	station_ca_close(NULL);
}

/* ------------------------------------------------------------------ */
/* Issuing                                                             */

static void
test_issue(void **state)
{
	struct fx          *f = *state;
	struct station_cert sc;
	char                err[1024], out[8192], serial1[128];
	size_t              len;
	long                now = (long)time(NULL);
	char               *csr = make_csr(f, "st.key", "st.csr");

	assert_int_equal(issue(f, csr, strlen(csr), "st-01", "acme-cm", 30,
	    &sc, err, sizeof(err)), CS_OK);
	assert_non_null(sc.cert_pem);
	write_bytes(f, "st.pem", sc.cert_pem, strlen(sc.cert_pem));

	SH_OK(f, out, sizeof(out), "openssl verify -CAfile ca.pem st.pem");
	assert_non_null(strstr(out, "st.pem: OK"));
	SH_OK(f, out, sizeof(out),
	    "openssl verify -purpose sslclient -CAfile ca.pem st.pem");
	/* Not usable as a CA, nor as a TLS server. */
	assert_int_not_equal(sh(f, NULL, 0, "openssl verify -purpose "
	    "sslserver -CAfile ca.pem st.pem"), 0);
	assert_int_not_equal(sh(f, NULL, 0, "openssl verify -CAfile st.pem "
	    "st.pem"), 0);

	SH_OK(f, out, sizeof(out), "openssl x509 -in st.pem -noout -text");
	assert_non_null(strstr(out, "Subject: O = acme-cm, CN = st-01"));
	assert_non_null(strstr(out, "Issuer: " CA_DN));
	assert_non_null(strstr(out, "TLS Web Client Authentication"));
	assert_non_null(strstr(out, "CA:FALSE"));
	assert_non_null(strstr(out, "Digital Signature"));
	assert_null(strstr(out, "Certificate Sign"));
	assert_non_null(strstr(out, "X509v3 Subject Key Identifier"));
	assert_non_null(strstr(out, "X509v3 Authority Key Identifier"));

	/* Validity: an hour ago, for 30 days. */
	SH_OK(f, NULL, 0, "openssl verify -attime %ld -CAfile ca.pem st.pem",
	    now - 3600 + 60);
	assert_int_not_equal(sh(f, NULL, 0, "openssl verify -attime %ld "
	    "-CAfile ca.pem st.pem", now - 3600 - 60), 0);
	SH_OK(f, NULL, 0, "openssl x509 -in st.pem -noout -checkend %ld",
	    30L * 86400 - 3600 - 60);
	assert_int_not_equal(sh(f, NULL, 0, "openssl x509 -in st.pem -noout "
	    "-checkend %ld", 30L * 86400 - 3600 + 60), 0);

	/* The returned key is the CSR's. */
	SH_OK(f, NULL, 0, "openssl req -in st.csr -pubkey -noout | "
	    "openssl pkey -pubin -outform DER -out st-pub.der");
	char *pub = slurp(f, "st-pub.der", &len);
	assert_int_equal(sc.spki_len, len);
	assert_memory_equal(sc.spki, pub, len);
	free(pub);

	/* The hash is over the certificate's DER. */
	uint8_t digest[CS_SHA256_LEN];
	SH_OK(f, NULL, 0, "openssl x509 -in st.pem -outform DER -out st.der");
	char *der = slurp(f, "st.der", &len);
	assert_int_equal(cs_sha256(der, len, digest), CS_OK);
	assert_memory_equal(digest, sc.cert_sha256, sizeof(digest));
	free(der);

	/* A 128-bit-class serial, different each time. */
	SH_OK(f, serial1, sizeof(serial1),
	    "openssl x509 -in st.pem -noout -serial");
	assert_int_equal(strlen(serial1), strlen("serial=\n") + 32);
	free(sc.cert_pem);
	assert_int_equal(issue(f, csr, strlen(csr), "st-01", "acme-cm", 30,
	    &sc, err, sizeof(err)), CS_OK);
	write_bytes(f, "st2.pem", sc.cert_pem, strlen(sc.cert_pem));
	free(sc.cert_pem);
	SH_OK(f, out, sizeof(out), "openssl x509 -in st2.pem -noout -serial");
	assert_string_not_equal(out, serial1);
	free(csr);
}

/* A CRL revoking one of two issued certificates, checked by OpenSSL. */
static void
test_crl(void **state)
{
	struct fx          *f = *state;
	struct station_cert a, b;
	char                err[1024], out[8192], hex[64];
	char               *csr = make_csr(f, "st.key", "st.csr");
	char               *pem = NULL;

	assert_int_equal(issue(f, csr, strlen(csr), "keep", "cm", 30, &a, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(issue(f, csr, strlen(csr), "gone", "cm", 30, &b, err,
	    sizeof(err)), CS_OK);
	write_bytes(f, "keep.pem", a.cert_pem, strlen(a.cert_pem));
	write_bytes(f, "gone.pem", b.cert_pem, strlen(b.cert_pem));
	assert_true(b.serial_len >= 16 && b.serial_len <= STATION_SERIAL_MAX);

	/* The serial reported is the certificate's. */
	SH_OK(f, out, sizeof(out), "openssl x509 -in gone.pem -noout -serial");
	cs_hex_encode(b.serial, b.serial_len, hex, sizeof(hex));
	for (char *p = hex; *p; p++) {
		*p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
	}
	assert_non_null(strstr(out, hex));

	/* An empty CRL: both verify with CRL checks. */
	time_t now = time(NULL);
	assert_int_equal(station_ca_crl(f->ca, NULL, 0, 1, now, &pem, err,
	    sizeof(err)), CS_OK);
	write_bytes(f, "empty.pem", pem, strlen(pem));
	free(pem);
	SH_OK(f, out, sizeof(out), "openssl crl -in empty.pem -CAfile ca.pem "
	    "-noout -text");
	assert_non_null(strstr(out, "verify OK"));
	assert_non_null(strstr(out, "No Revoked Certificates"));
	assert_non_null(strstr(out, "X509v3 CRL Number"));
	assert_non_null(strstr(out, "X509v3 Authority Key Identifier"));
	SH_OK(f, NULL, 0, "openssl verify -crl_check -CAfile ca.pem "
	    "-CRLfile empty.pem keep.pem gone.pem");

	/* Revoking b: only a verifies, b is "certificate revoked". */
	struct station_revoked r = {.serial = b.serial,
	    .serial_len = b.serial_len, .when_unix_s = (uint64_t)now};
	assert_int_equal(station_ca_crl(f->ca, &r, 1, 2, now, &pem, err,
	    sizeof(err)), CS_OK);
	write_bytes(f, "crl.pem", pem, strlen(pem));
	free(pem);
	SH_OK(f, out, sizeof(out), "openssl crl -in crl.pem -CAfile ca.pem "
	    "-noout -text");
	assert_non_null(strstr(out, "verify OK"));
	assert_non_null(strstr(out, "Next Update"));
	SH_OK(f, NULL, 0, "openssl verify -crl_check -CAfile ca.pem "
	    "-CRLfile crl.pem keep.pem");
	assert_int_not_equal(sh(f, out, sizeof(out), "openssl verify "
	    "-crl_check -CAfile ca.pem -CRLfile crl.pem gone.pem"), 0);
	assert_non_null(strstr(out, "certificate revoked"));

	/* A bad serial, and too many entries, are refused. */
	struct station_revoked bad = {.serial = b.serial, .serial_len = 0};
	assert_int_equal(station_ca_crl(f->ca, &bad, 1, 3, now, &pem, err,
	    sizeof(err)), CS_EINVAL);
	assert_null(pem);
	assert_int_equal(station_ca_crl(f->ca, &r,
	    STATION_CRL_MAX_REVOKED + 1, 3, now, &pem, err, sizeof(err)),
	    CS_ETOOBIG);

	/* A large CRL (lengths past 64 KiB) still verifies. */
	struct station_revoked *many = calloc(2000, sizeof(*many));
	assert_non_null(many);
	for (size_t i = 0; i < 2000; i++) {
		many[i] = r;
	}
	assert_int_equal(station_ca_crl(f->ca, many, 2000, 4, now, &pem, err,
	    sizeof(err)), CS_OK);
	free(many);
	write_bytes(f, "big.pem", pem, strlen(pem));
	free(pem);
	SH_OK(f, out, sizeof(out), "openssl crl -in big.pem -CAfile ca.pem "
	    "-noout");
	assert_non_null(strstr(out, "verify OK"));
	free(a.cert_pem);
	free(b.cert_pem);
	free(csr);
}

/* The edges of what is accepted: label variant, longest names, days. */
static void
test_issue_limits(void **state)
{
	struct fx          *f = *state;
	struct station_cert sc;
	char                err[1024], out[8192], pem[8192];
	char                n64[65], n65[66];
	char               *csr = make_csr(f, "st.key", "st.csr");

	/* "NEW CERTIFICATE REQUEST", as old tools write it. */
	SH_OK(f, pem, sizeof(pem), "sed 's/CERTIFICATE REQUEST/NEW "
	    "CERTIFICATE REQUEST/' st.csr");
	assert_int_equal(issue(f, pem, strlen(pem), "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_OK);
	free(sc.cert_pem);

	memset(n64, 'n', 64);
	n64[64] = '\0';
	memset(n65, 'n', 65);
	n65[65] = '\0';
	assert_int_equal(issue(f, csr, strlen(csr), n64, n64,
	    STATION_CERT_DAYS_MAX, &sc, err, sizeof(err)), CS_OK);
	write_bytes(f, "long.pem", sc.cert_pem, strlen(sc.cert_pem));
	free(sc.cert_pem);
	SH_OK(f, out, sizeof(out), "openssl verify -CAfile ca.pem long.pem");
	SH_OK(f, out, sizeof(out), "openssl x509 -in long.pem -noout "
	    "-subject -nameopt RFC2253");
	assert_non_null(strstr(out, n64));

	const char *bad_names[] = {"", "a/b", "a,b", "tab\there", n65};
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		assert_int_equal(issue(f, csr, strlen(csr), bad_names[i], "cm",
		    1, &sc, err, sizeof(err)), CS_EINVAL);
		assert_non_null(strstr(err, "name"));
	}
	assert_int_equal(issue(f, csr, strlen(csr), "st", "", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);
	assert_int_equal(issue(f, csr, strlen(csr), "st", n65, 1, &sc, err,
	    sizeof(err)), CS_EINVAL);
	assert_int_equal(issue(f, csr, strlen(csr), NULL, "cm", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);

	assert_int_equal(issue(f, csr, strlen(csr), "st", "cm", 0, &sc, err,
	    sizeof(err)), CS_EINVAL);
	assert_non_null(strstr(err, "days"));
	assert_int_equal(issue(f, csr, strlen(csr), "st", "cm",
	    STATION_CERT_DAYS_MAX + 1, &sc, err, sizeof(err)), CS_EINVAL);
	free(csr);
}

static void
test_issue_bad_csr(void **state)
{
	struct fx          *f = *state;
	struct station_cert sc;
	char                err[1024], pem[16384];
	size_t              len;
	char               *csr = make_csr(f, "st.key", "st.csr");
	uint8_t            *der = csr_der(f, "st.csr", &len);

	/* Garbage, and nothing. */
	assert_int_equal(issue(f, "garbage", 7, "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);
	assert_int_equal(issue(f, "", 0, "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);

	/* Junk after the PEM block, or a second block. */
	snprintf(pem, sizeof(pem), "%sjunk\n", csr);
	assert_int_equal(issue(f, pem, strlen(pem), "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);
	snprintf(pem, sizeof(pem), "%s%s", csr, csr);
	assert_int_equal(issue(f, pem, strlen(pem), "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);
	/* Trailing whitespace is harmless. */
	snprintf(pem, sizeof(pem), "%s\n\n", csr);
	assert_int_equal(issue(f, pem, strlen(pem), "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_OK);
	free(sc.cert_pem);

	/* Too big for the limit (the length alone decides). */
	memset(pem, ' ', STATION_CSR_MAX + 1);
	assert_int_equal(issue(f, pem, STATION_CSR_MAX + 1, "st", "cm", 1,
	    &sc, err, sizeof(err)), CS_ETOOBIG);

	/* A flipped bit in the signature, and one in the signed part. */
	der[len - 1] ^= 0x01;
	issue_der_fails(f, der, len, "signature");
	der[len - 1] ^= 0x01;
	der[20] ^= 0x01;
	issue_der_fails(f, der, len, NULL);
	der[20] ^= 0x01;

	/* Every truncation, and every single-byte corruption, fails. */
	for (size_t n = 0; n < len; n++) {
		issue_der_fails(f, der, n, NULL);
	}
	for (size_t i = 0; i < len; i++) {
		der[i] ^= 0x80;
		issue_der_fails(f, der, len, NULL);
		der[i] ^= 0x80;
	}
	/* ... and so does trailing DER. */
	uint8_t *longer = malloc(len + 2);
	assert_non_null(longer);
	memcpy(longer, der, len);
	longer[len]     = 0x05;
	longer[len + 1] = 0x00;
	issue_der_fails(f, longer, len + 2, NULL);
	free(longer);
	free(der);

	/* Keys of other kinds. */
	SH_OK(f, NULL, 0, "openssl req -new -newkey rsa:2048 -nodes -keyout "
	    "rsa.key -subj /CN=x -out rsa.csr");
	free(csr);
	csr = slurp(f, "rsa.csr", NULL);
	assert_int_equal(issue(f, csr, strlen(csr), "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);
	assert_non_null(strstr(err, "P-256"));
	SH_OK(f, NULL, 0, "openssl ecparam -genkey -name secp384r1 -noout "
	    "-out p384.key && openssl req -new -key p384.key -subj /CN=x "
	    "-out p384.csr");
	free(csr);
	csr = slurp(f, "p384.csr", NULL);
	assert_int_equal(issue(f, csr, strlen(csr), "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);
	assert_non_null(strstr(err, "P-256"));
	SH_OK(f, NULL, 0, "openssl genpkey -algorithm ed25519 -out ed.key && "
	    "openssl req -new -key ed.key -subj /CN=x -out ed.csr");
	free(csr);
	csr = slurp(f, "ed.csr", NULL);
	assert_int_equal(issue(f, csr, strlen(csr), "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);
	assert_non_null(strstr(err, "P-256"));

	/* P-256 but signed with SHA-384. */
	SH_OK(f, NULL, 0, "openssl req -new -sha384 -key st.key -subj /CN=x "
	    "-out sha384.csr");
	free(csr);
	csr = slurp(f, "sha384.csr", NULL);
	assert_int_equal(issue(f, csr, strlen(csr), "st", "cm", 1, &sc, err,
	    sizeof(err)), CS_EINVAL);
	assert_non_null(strstr(err, "ecdsa-with-SHA256"));
	free(csr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_init_writes_ca, setup_ca,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_init_refuses_existing,
	        setup_ca, teardown),
	    cmocka_unit_test_setup_teardown(test_init_bad_args, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_open, setup_ca, teardown),
	    cmocka_unit_test_setup_teardown(test_issue, setup_ca, teardown),
	    cmocka_unit_test_setup_teardown(test_crl, setup_ca, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_limits, setup_ca,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_issue_bad_csr, setup_ca,
	        teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
