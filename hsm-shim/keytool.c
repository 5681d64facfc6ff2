/*
 * keytool.c - countersign-keytool, the security officer's tool for the
 * signing keys in the HSM: generate a key pair that never leaves it, list
 * the keys, export public keys (PEM, DER, or a C header that firmware
 * compiles in), sign a file, check a key end to end, measure signing
 * speed.  Everything goes through the HSM shim (cs_hsm.h); this file is
 * the command line and the output formats.
 *
 * The PIN is never taken from the command line (it would show in ps and
 * in shell history): it comes from a file or from the environment.
 * Exit status: 0 success, 1 failure, 2 usage error.
 */
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "cs_log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG "countersign-keytool"

#define KT_FILE_MAX    ((size_t)64 << 20) /* files signed, bytes */
#define KT_THREADS_MAX 64
#define KT_SECONDS_MAX 3600
#define KT_OUT_MAX     4096 /* any export fits */

/* Global options, after the environment fallbacks were applied. */
struct kt {
	const char *module;
	const char *token;
	const char *pin_file;
	const char *pin_env; /* name of the variable, when no PIN file */
	cs_hsm     *h;
};

static int
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "countersign-keytool: error: ..." and return the failure status. */
static int
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int
usage_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Same for usage errors: status 2 and a pointer to --help. */
static int
usage_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see " PROG " %s%s--help)\n",
	    cmd != NULL ? cmd : "", cmd != NULL ? " " : "");
	return 2;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: " PROG " [GLOBAL OPTIONS] COMMAND [ARGS]\n"
	    "\n"
	    "The security officer's tool for Countersign's signing keys.  "
	    "Private keys\nare made inside the PKCS#11 HSM and never leave "
	    "it.\n"
	    "\n"
	    "Commands:\n"
	    "  keygen     generate a key pair in the HSM\n"
	    "  list       list the signing keys on the token\n"
	    "  export     write a public key as PEM, DER or a C header\n"
	    "  sign       sign a file\n"
	    "  sign-test  sign with a key and verify the result in software\n"
	    "  bench      measure signatures per second\n"
	    "\n"
	    "Global options (before the command):\n"
	    "  --module PATH    PKCS#11 module        "
	    "[$COUNTERSIGN_HSM_MODULE]\n"
	    "  --token LABEL    token label           "
	    "[$COUNTERSIGN_HSM_TOKEN]\n"
	    "  --pin-file FILE  file with the user PIN "
	    "[$COUNTERSIGN_HSM_PIN_FILE]\n"
	    "                   (without one: the PIN itself in "
	    "$COUNTERSIGN_HSM_PIN)\n"
	    "  -v, --verbose    log what the HSM shim does\n"
	    "  -h, --help       this help; COMMAND --help for a command's\n"
	    "  -V, --version    print the version\n"
	    "\n"
	    "The PIN is never accepted on the command line.  Exit status: 0 "
	    "success,\n1 failure, 2 usage error.  docs/key-ceremony.md "
	    "walks through a key ceremony.\n");
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static void
hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		sprintf(out + 2 * i, "%02x", p[i]);
	}
	out[2 * n] = '\0';
}

/* Open the HSM with the global options; prints why on failure. */
static int
kt_open(struct kt *kt, const char *cmd, unsigned sessions)
{
	char err[1024];
	int  rv;

	if (kt->module == NULL) {
		return usage_fail(cmd, "no PKCS#11 module: give --module PATH "
		    "or set COUNTERSIGN_HSM_MODULE");
	}
	if (kt->token == NULL) {
		return usage_fail(cmd, "no token: give --token LABEL or set "
		    "COUNTERSIGN_HSM_TOKEN");
	}
	if (kt->pin_file == NULL && kt->pin_env == NULL) {
		return usage_fail(cmd, "no PIN: give --pin-file FILE or set "
		    "COUNTERSIGN_HSM_PIN_FILE (or COUNTERSIGN_HSM_PIN)");
	}
	struct cs_hsm_opts o = {
	    .module   = kt->module,
	    .token    = kt->token,
	    .pin_file = kt->pin_file,
	    .pin_env  = kt->pin_file == NULL ? kt->pin_env : NULL,
	    .sessions = sessions,
	};
	if ((rv = cs_hsm_open(&kt->h, &o, err, sizeof(err))) != CS_OK) {
		return fail("%s", err);
	}
	return 0;
}

/* Explain a failed operation on key label; returns 1. */
static int
key_fail(struct kt *kt, int rv, const char *label, const char *what)
{
	const char *token = cs_hsm_token(kt->h);

	switch (rv) {
	case CS_ENOENT:
		return fail("no key labelled \"%s\" on token \"%s\" (" PROG
		    " list shows the keys)", label, token);
	case CS_EINVAL:
		return fail("key \"%s\" on token \"%s\" cannot %s: it is not "
		    "a p256 or ed25519 signing key", label, token, what);
	case CS_EPRECOND:
		return fail("the label \"%s\" is ambiguous on token \"%s\": "
		    "several keys carry it; remove or relabel all but one "
		    "with the HSM's own tools", label, token);
	case CS_ETIMEDOUT:
		return fail("no HSM session became free in time to %s", what);
	case CS_EPERM:
		return fail("token \"%s\" no longer accepts the PIN; check "
		    "the PIN file", token);
	case CS_EHSM:
		return fail("the HSM failed while trying to %s with key "
		    "\"%s\" (the PKCS#11 error is logged above); check that "
		    "token \"%s\" is present and retry", what, label, token);
	default:
		return fail("cannot %s with key \"%s\": %s", what, label,
		    cs_strerror(rv));
	}
}

/* Find a key and check its algorithm against --alg, if given. */
static int
kt_key(struct kt *kt, const char *label, cs_alg expect, const char *what,
    struct cs_hsm_key *key)
{
	int rv = cs_hsm_key(kt->h, label, key);

	if (rv != CS_OK) {
		return key_fail(kt, rv, label, what);
	}
	if (expect != CS_ALG_NONE && key->alg != expect) {
		return fail("key \"%s\" is a %s key, not %s (check --alg)",
		    label, cs_alg_name(key->alg), cs_alg_name(expect));
	}
	return 0;
}

/* Read a whole file of at most KT_FILE_MAX bytes; *data is malloc'ed. */
static int
read_file(const char *path, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t    *buf = NULL;
	size_t      n   = 0;
	int         fd  = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		return fail("cannot open %s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail("%s is not a regular file", path);
	}
	if ((size_t)st.st_size > KT_FILE_MAX) {
		close(fd);
		return fail("%s is larger than %zu MiB, the most this tool "
		    "signs", path, KT_FILE_MAX >> 20);
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return fail("out of memory reading %s", path);
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			free(buf);
			close(fd);
			return fail("cannot read %s: %s", path,
			    r < 0 ? strerror(errno) : "file shrank");
		}
		n += (size_t)r;
	}
	close(fd);
	*data = buf;
	*len  = n;
	return 0;
}

/* Write data to path (or stdout for NULL). */
static int
write_out(const char *path, const void *data, size_t len)
{
	FILE *fp = path != NULL ? fopen(path, "wb") : stdout;

	if (fp == NULL) {
		return fail("cannot create %s: %s", path, strerror(errno));
	}
	size_t w = fwrite(data, 1, len, fp);
	int    c = path != NULL ? fclose(fp) : fflush(fp);
	if (w != len || c != 0) {
		return fail("cannot write %s: %s",
		    path != NULL ? path : "standard output", strerror(errno));
	}
	return 0;
}

/* Parse a number in [min, max]; false if it is not one. */
static bool
parse_uint(const char *s, long min, long max, long *out)
{
	char *end;
	long  v;

	errno = 0;
	v     = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		return false;
	}
	*out = v;
	return true;
}

/* Options every key command shares. */
struct key_args {
	const char *label;
	cs_alg      alg; /* --alg, or CS_ALG_NONE */
};

static int
parse_alg(const char *cmd, const char *s, cs_alg *alg)
{
	if (cs_alg_parse(s, alg) != CS_OK) {
		return usage_fail(cmd, "unknown algorithm \"%s\": use p256 or "
		    "ed25519", s);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* keygen                                                              */

static int
cmd_keygen(struct kt *kt, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"alg", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cs_hsm_key key;
	const char       *label = NULL;
	cs_alg            alg   = CS_ALG_P256;
	char              id[2 * CS_KEY_ID_LEN + 1];
	int               opt, rv;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "l:a:h", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'l':
			label = optarg;
			break;
		case 'a':
			if ((rv = parse_alg("keygen", optarg, &alg)) != 0) {
				return rv;
			}
			break;
		case 'h':
			printf("usage: " PROG " [GLOBAL OPTIONS] keygen "
			    "--label LABEL\n       [--alg p256|ed25519]\n\n"
			    "Generates a key pair on the token.  The private "
			    "key is a token object,\nprivate, sensitive, "
			    "never extractable, and may only sign.  The "
			    "label\n(1-64 printable ASCII characters) names "
			    "the key for life: an existing\nlabel is refused, "
			    "a key is never replaced.  --alg defaults to "
			    "p256\n(ECDSA P-256 with SHA-256).  Prints the "
			    "key id.\n");
			return 0;
		default:
			return usage_fail("keygen", "bad option");
		}
	}
	if (optind != argc) {
		return usage_fail("keygen", "unexpected argument \"%s\"",
		    argv[optind]);
	}
	if (label == NULL) {
		return usage_fail("keygen", "--label is required");
	}
	if ((rv = kt_open(kt, "keygen", 1)) != 0) {
		return rv;
	}
	rv = cs_hsm_keygen(kt->h, label, alg, &key);
	switch (rv) {
	case CS_OK:
		break;
	case CS_EEXIST:
		return fail("a key labelled \"%s\" already exists on token "
		    "\"%s\"; keys are never replaced: choose another label",
		    label, kt->token);
	case CS_EINVAL:
		return fail("cannot generate \"%s\": a label is 1-64 "
		    "printable ASCII characters, and the token must support "
		    "%s keys", label, cs_alg_name(alg));
	default:
		return key_fail(kt, rv, label, "generate a key");
	}
	hex(key.key_id, sizeof(key.key_id), id);
	printf("generated %s key \"%s\" on token \"%s\"\nkey id: %s\n",
	    cs_alg_name(key.alg), key.label, kt->token, id);
	return 0;
}

/* ------------------------------------------------------------------ */
/* list                                                                */

static int
cmd_list(struct kt *kt, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cs_hsm_key *keys = NULL;
	size_t             n    = 0;
	int                opt, rv, width = 5;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			printf("usage: " PROG " [GLOBAL OPTIONS] list\n\n"
			    "Lists the private keys on the token that may "
			    "sign: label, algorithm,\nkey id (the first 8 "
			    "bytes of SHA-256 over the public key's\n"
			    "SubjectPublicKeyInfo DER), and whether the "
			    "private key is sensitive\nand extractable.  Keys "
			    "of other algorithms show as \"other\".\n");
			return 0;
		default:
			return usage_fail("list", "bad option");
		}
	}
	if (optind != argc) {
		return usage_fail("list", "unexpected argument \"%s\"",
		    argv[optind]);
	}
	if ((rv = kt_open(kt, "list", 1)) != 0) {
		return rv;
	}
	if ((rv = cs_hsm_list(kt->h, &keys, &n)) != CS_OK) {
		return fail("cannot list the keys on token \"%s\": %s (the "
		    "PKCS#11 error is logged above)", kt->token,
		    cs_strerror(rv));
	}
	for (size_t i = 0; i < n; i++) {
		int w = (int)strlen(keys[i].label);
		width = w > width ? w : width;
	}
	printf("%-*s  %-7s  %-16s  %-9s  %s\n", width, "LABEL", "ALG",
	    "KEY ID", "SENSITIVE", "EXTRACTABLE");
	for (size_t i = 0; i < n; i++) {
		char id[2 * CS_KEY_ID_LEN + 1] = "-";
		if (keys[i].alg != CS_ALG_NONE) {
			hex(keys[i].key_id, sizeof(keys[i].key_id), id);
		}
		printf("%-*s  %-7s  %-16s  %-9s  %s\n", width, keys[i].label,
		    keys[i].alg != CS_ALG_NONE ? cs_alg_name(keys[i].alg)
		                               : "other",
		    id, keys[i].sensitive ? "yes" : "no",
		    keys[i].extractable ? "yes" : "no");
	}
	if (n == 0) {
		fprintf(stderr, "no signing keys on token \"%s\"\n",
		    kt->token);
	}
	free(keys);
	return 0;
}

/* ------------------------------------------------------------------ */
/* export                                                              */

/* Copy s for use inside a C comment: no "*" directly before a "/". */
static void
comment_safe(const char *s, char *out, size_t len)
{
	size_t n = 0;

	for (; *s != '\0' && n + 3 < len; s++) {
		out[n++] = *s;
		if (s[0] == '*' && s[1] == '/') {
			out[n++] = ' ';
		}
	}
	out[n] = '\0';
}

static size_t
c_array(char *out, size_t len, const char *name, const uint8_t *p,
    size_t n)
{
	size_t w = (size_t)snprintf(out, len,
	    "static const unsigned char %s[%zu] = {", name, n);

	for (size_t i = 0; i < n && w < len; i++) {
		w += (size_t)snprintf(out + w, len - w, "%s0x%02x,",
		    i % 8 == 0 ? "\n\t" : " ", p[i]);
	}
	if (w < len) {
		w += (size_t)snprintf(out + w, len - w, "\n};\n");
	}
	return w;
}

/*
 * The C header firmware compiles in.  Names and meaning are stable and
 * documented in docs/key-ceremony.md; the target verifier uses them.
 */
static int
c_header(const struct cs_hsm_key *key, const char *token, char *out,
    size_t len, size_t *n)
{
	char   label[2 * 64 + 1], tok[2 * 32 + 1], id[2 * CS_KEY_ID_LEN + 1];
	size_t w;

	comment_safe(key->label, label, sizeof(label));
	comment_safe(token, tok, sizeof(tok));
	hex(key->key_id, sizeof(key->key_id), id);
	w = (size_t)snprintf(out, len,
	    "/* Generated by countersign-keytool export: public key \"%s\" "
	    "*/\n"
	    "/* token \"%s\", algorithm %s, key id %s */\n"
	    "#ifndef CS_TRUST_KEY_H\n"
	    "#define CS_TRUST_KEY_H\n"
	    "\n"
	    "/* 1 = ECDSA P-256 with SHA-256, signature r||s; 2 = Ed25519 */\n"
	    "#define CS_TRUST_KEY_ALG %d /* %s */\n"
	    "#define CS_TRUST_KEY_LEN %zu\n"
	    "\n"
	    "/* First 8 bytes of SHA-256 over the SubjectPublicKeyInfo "
	    "DER */\n",
	    label, tok, cs_alg_name(key->alg), id, (int)key->alg,
	    key->alg == CS_ALG_P256 ? "CS_ALG_P256" : "CS_ALG_ED25519",
	    key->pub_len);
	if (w >= len) {
		return CS_ETOOBIG;
	}
	w += c_array(out + w, len - w, "cs_trust_key_id", key->key_id,
	    sizeof(key->key_id));
	if (w >= len) {
		return CS_ETOOBIG;
	}
	w += (size_t)snprintf(out + w, len - w, "\n/* %s */\n",
	    key->alg == CS_ALG_P256
		? "P-256: uncompressed point 04 || X || Y"
		: "Ed25519: the 32-byte public key (RFC 8032)");
	if (w >= len) {
		return CS_ETOOBIG;
	}
	w += c_array(out + w, len - w, "cs_trust_public_key", key->pub,
	    key->pub_len);
	if (w >= len) {
		return CS_ETOOBIG;
	}
	w += (size_t)snprintf(out + w, len - w, "\n#endif /* CS_TRUST_KEY_H "
	    "*/\n");
	if (w >= len) {
		return CS_ETOOBIG;
	}
	*n = w;
	return CS_OK;
}

static int
cmd_export(struct kt *kt, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"format", required_argument, NULL, 'f'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cs_hsm_key key;
	const char       *label = NULL, *format = "pem", *path = NULL;
	char              out[KT_OUT_MAX];
	size_t            n  = 0;
	int               rv = CS_OK, opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "l:f:o:h", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'l':
			label = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case 'o':
			path = optarg;
			break;
		case 'h':
			printf("usage: " PROG " [GLOBAL OPTIONS] export "
			    "--label LABEL\n       [--format "
			    "pem|der|c-header] [-o FILE]\n\n"
			    "Writes the public key of LABEL to FILE (default: "
			    "standard output):\n"
			    "  pem       SubjectPublicKeyInfo, PEM (default; "
			    "what openssl and the\n            authority "
			    "read)\n"
			    "  der       SubjectPublicKeyInfo, DER\n"
			    "  c-header  a C header for firmware: "
			    "CS_TRUST_KEY_ALG, cs_trust_key_id[8],\n"
			    "            cs_trust_public_key[] (see "
			    "docs/key-ceremony.md)\n");
			return 0;
		default:
			return usage_fail("export", "bad option");
		}
	}
	if (optind != argc) {
		return usage_fail("export", "unexpected argument \"%s\"",
		    argv[optind]);
	}
	if (label == NULL) {
		return usage_fail("export", "--label is required");
	}
	if (strcmp(format, "pem") != 0 && strcmp(format, "der") != 0 &&
	    strcmp(format, "c-header") != 0) {
		return usage_fail("export", "unknown format \"%s\": use pem, "
		    "der or c-header", format);
	}
	if (strcmp(format, "der") == 0 && path == NULL &&
	    isatty(STDOUT_FILENO)) {
		return usage_fail("export", "DER is binary: give -o FILE");
	}
	if ((rv = kt_open(kt, "export", 1)) != 0 ||
	    (rv = kt_key(kt, label, CS_ALG_NONE, "export", &key)) != 0) {
		return rv;
	}
	if (strcmp(format, "pem") == 0) {
		rv = cs_pem_encode("PUBLIC KEY", key.spki, key.spki_len, out,
		    sizeof(out));
		n = strlen(out);
	} else if (strcmp(format, "der") == 0) {
		memcpy(out, key.spki, key.spki_len);
		n = key.spki_len;
	} else {
		rv = c_header(&key, kt->token, out, sizeof(out), &n);
	}
	if (rv != CS_OK) {
		return fail("cannot encode the public key: %s",
		    cs_strerror(rv));
	}
	return write_out(path, out, n);
}

/* ------------------------------------------------------------------ */
/* sign, sign-test                                                     */

/*
 * Sign msg with key: P-256 signs SHA-256(msg), Ed25519 msg itself.  The
 * signature is checked against the public key before anyone sees it.
 */
static int
sign_checked(struct kt *kt, const struct cs_hsm_key *key, const void *msg,
    size_t len, uint8_t sig[CS_SIG_LEN])
{
	uint8_t        digest[CS_SHA256_LEN];
	const uint8_t *what = msg;
	size_t         what_len = len;
	int            rv;

	if (key->alg == CS_ALG_P256) {
		if ((rv = cs_sha256(msg, len, digest)) != CS_OK) {
			return fail("cannot hash the input: %s",
			    cs_strerror(rv));
		}
		what     = digest;
		what_len = sizeof(digest);
	}
	rv = cs_hsm_sign(kt->h, key->label, key->alg, what, what_len, sig);
	if (rv != CS_OK) {
		return key_fail(kt, rv, key->label, "sign");
	}
	rv = cs_verify(key->alg, key->pub, key->pub_len, msg, len, sig);
	if (rv != CS_OK) {
		return fail("the HSM's signature with key \"%s\" does not "
		    "verify against its public key (%s); do not use this key",
		    key->label, cs_strerror(rv));
	}
	return 0;
}

static int
cmd_sign(struct kt *kt, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"in", required_argument, NULL, 'i'},
	    {"out", required_argument, NULL, 'o'},
	    {"alg", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cs_hsm_key key;
	const char       *label = NULL, *in = NULL, *outp = NULL;
	cs_alg            expect = CS_ALG_NONE;
	uint8_t          *data   = NULL;
	uint8_t           sig[CS_SIG_LEN], der[80];
	size_t            len = 0, der_len = 0;
	char              id[2 * CS_KEY_ID_LEN + 1];
	int               opt, rv;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "l:i:o:a:h", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'l':
			label = optarg;
			break;
		case 'i':
			in = optarg;
			break;
		case 'o':
			outp = optarg;
			break;
		case 'a':
			if ((rv = parse_alg("sign", optarg, &expect)) != 0) {
				return rv;
			}
			break;
		case 'h':
			printf("usage: " PROG " [GLOBAL OPTIONS] sign --label "
			    "LABEL\n       --in FILE --out SIG [--alg "
			    "p256|ed25519]\n\n"
			    "Signs FILE (at most 64 MiB) in the HSM.  p256: "
			    "ECDSA over SHA-256 of the\nfile, SIG is DER, so "
			    "that\n"
			    "  openssl dgst -sha256 -verify pub.pem "
			    "-signature SIG FILE\nchecks it.  ed25519: "
			    "PureEdDSA over the file, SIG is the raw 64 "
			    "bytes\n  openssl pkeyutl -verify -pubin -inkey "
			    "pub.pem -rawin -in FILE -sigfile SIG\nchecks it.  "
			    "--alg refuses a key of any other algorithm.\n"
			    "The signature is verified against the public key "
			    "before it is written.\n");
			return 0;
		default:
			return usage_fail("sign", "bad option");
		}
	}
	if (optind != argc) {
		return usage_fail("sign", "unexpected argument \"%s\"",
		    argv[optind]);
	}
	if (label == NULL || in == NULL || outp == NULL) {
		return usage_fail("sign", "--label, --in and --out are "
		    "required");
	}
	if ((rv = read_file(in, &data, &len)) != 0) {
		return rv;
	}
	if ((rv = kt_open(kt, "sign", 1)) != 0 ||
	    (rv = kt_key(kt, label, expect, "sign", &key)) != 0 ||
	    (rv = sign_checked(kt, &key, data, len, sig)) != 0) {
		goto out;
	}
	if (key.alg == CS_ALG_P256) {
		if (cs_ecdsa_raw_to_der(sig, der, sizeof(der), &der_len) !=
		    CS_OK) {
			rv = fail("cannot encode the signature");
			goto out;
		}
		rv = write_out(outp, der, der_len);
	} else {
		rv = write_out(outp, sig, sizeof(sig));
	}
	if (rv == 0) {
		hex(key.key_id, sizeof(key.key_id), id);
		printf("signed %s with %s key \"%s\" (key id %s): %s\n", in,
		    cs_alg_name(key.alg), label, id, outp);
	}
out:
	free(data);
	return rv;
}

static int
cmd_sign_test(struct kt *kt, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"alg", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cs_hsm_key key;
	const char       *label  = NULL;
	cs_alg            expect = CS_ALG_NONE;
	uint8_t           sig[CS_SIG_LEN];
	char              msg[128], id[2 * CS_KEY_ID_LEN + 1];
	struct timespec   now;
	int               opt, rv;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "l:a:h", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'l':
			label = optarg;
			break;
		case 'a':
			if ((rv = parse_alg("sign-test", optarg, &expect)) !=
			    0) {
				return rv;
			}
			break;
		case 'h':
			printf("usage: " PROG " [GLOBAL OPTIONS] sign-test "
			    "--label LABEL\n       [--alg p256|ed25519]\n\n"
			    "Signs a fresh test message with the key in the "
			    "HSM and verifies the\nsignature in software "
			    "(wolfCrypt) with the exported public key; a\n"
			    "tampered copy must then fail to verify.  Prints "
			    "the key id.\n");
			return 0;
		default:
			return usage_fail("sign-test", "bad option");
		}
	}
	if (optind != argc) {
		return usage_fail("sign-test", "unexpected argument \"%s\"",
		    argv[optind]);
	}
	if (label == NULL) {
		return usage_fail("sign-test", "--label is required");
	}
	if ((rv = kt_open(kt, "sign-test", 1)) != 0 ||
	    (rv = kt_key(kt, label, expect, "sign", &key)) != 0) {
		return rv;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(msg, sizeof(msg), "countersign sign-test %lld.%09ld pid %d",
	    (long long)now.tv_sec, now.tv_nsec, (int)getpid());
	if ((rv = sign_checked(kt, &key, msg, strlen(msg), sig)) != 0) {
		return rv;
	}
	sig[CS_SIG_LEN / 2] ^= 0x01;
	if (cs_verify(key.alg, key.pub, key.pub_len, msg, strlen(msg),
		sig) != CS_ECRYPTO) {
		return fail("a tampered signature was not rejected: the "
		    "software verifier is broken");
	}
	hex(key.key_id, sizeof(key.key_id), id);
	printf("sign-test OK: key \"%s\" alg=%s key_id=%s (signed in the "
	    "HSM, verified with wolfCrypt)\n", label, cs_alg_name(key.alg),
	    id);
	return 0;
}

/* ------------------------------------------------------------------ */
/* bench                                                               */

struct bench_worker {
	pthread_t          tid;
	struct kt         *kt;
	struct cs_hsm_key *key;
	atomic_bool       *stop;
	uint8_t            msg[CS_SHA256_LEN];
	unsigned long      count;
	int                err;
};

static void *
bench_run(void *arg)
{
	struct bench_worker *w = arg;
	uint8_t              sig[CS_SIG_LEN];

	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		int rv = cs_hsm_sign(w->kt->h, w->key->label, w->key->alg,
		    w->msg, sizeof(w->msg), sig);
		if (rv != CS_OK) {
			w->err = rv;
			break;
		}
		w->count++;
	}
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmd_bench(struct kt *kt, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"threads", required_argument, NULL, 't'},
	    {"seconds", required_argument, NULL, 's'},
	    {"alg", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench_worker w[KT_THREADS_MAX];
	struct cs_hsm_key   key;
	atomic_bool         stop    = false;
	const char         *label   = NULL;
	cs_alg              expect  = CS_ALG_NONE;
	long                threads = 1, seconds = 3;
	unsigned long       total   = 0;
	int                 opt, rv, err = CS_OK;
	int                 started = 0;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "l:t:s:a:h", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'l':
			label = optarg;
			break;
		case 't':
			if (!parse_uint(optarg, 1, KT_THREADS_MAX, &threads)) {
				return usage_fail("bench", "--threads takes 1 "
				    "to %d", KT_THREADS_MAX);
			}
			break;
		case 's':
			if (!parse_uint(optarg, 1, KT_SECONDS_MAX, &seconds)) {
				return usage_fail("bench", "--seconds takes 1 "
				    "to %d", KT_SECONDS_MAX);
			}
			break;
		case 'a':
			if ((rv = parse_alg("bench", optarg, &expect)) != 0) {
				return rv;
			}
			break;
		case 'h':
			printf("usage: " PROG " [GLOBAL OPTIONS] bench "
			    "--label LABEL [--threads N]\n       [--seconds "
			    "S] [--alg p256|ed25519]\n\n"
			    "Signs as fast as it can from N threads (default "
			    "1), each with its own\nHSM session, for S "
			    "seconds (default 3), and prints signatures "
			    "per\nsecond.  countersign-hsm-bench compares the "
			    "shim with bare PKCS#11 calls.\n");
			return 0;
		default:
			return usage_fail("bench", "bad option");
		}
	}
	if (optind != argc) {
		return usage_fail("bench", "unexpected argument \"%s\"",
		    argv[optind]);
	}
	if (label == NULL) {
		return usage_fail("bench", "--label is required");
	}
	if ((rv = kt_open(kt, "bench", (unsigned)threads)) != 0 ||
	    (rv = kt_key(kt, label, expect, "sign", &key)) != 0) {
		return rv;
	}
	memset(w, 0, sizeof(w));
	double t0 = now_s();
	for (long i = 0; i < threads; i++) {
		w[i].kt   = kt;
		w[i].key  = &key;
		w[i].stop = &stop;
		memset(w[i].msg, (int)i, sizeof(w[i].msg));
		if (pthread_create(&w[i].tid, NULL, bench_run, &w[i]) != 0) {
			err = CS_ENOMEM;
			break;
		}
		started++;
	}
	struct timespec ts = {(time_t)seconds, 0};
	if (err == CS_OK) {
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
		}
	}
	atomic_store(&stop, true);
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		total += w[i].count;
		err = err != CS_OK ? err : w[i].err;
	}
	double dt = now_s() - t0;
	if (err != CS_OK) {
		return key_fail(kt, err, label, "sign");
	}
	printf("bench: key \"%s\" alg=%s threads=%ld seconds=%.2f "
	    "signatures=%lu rate=%.0f/s\n", label, cs_alg_name(key.alg),
	    threads, dt, total, (double)total / dt);
	return 0;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static const struct {
	const char *name;
	int (*fn)(struct kt *, int, char **);
} commands[] = {
    {"keygen", cmd_keygen},
    {"list", cmd_list},
    {"export", cmd_export},
    {"sign", cmd_sign},
    {"sign-test", cmd_sign_test},
    {"bench", cmd_bench},
};

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"module", required_argument, NULL, 'm'},
	    {"token", required_argument, NULL, 't'},
	    {"pin-file", required_argument, NULL, 'p'},
	    /* Only to refuse it: an exact "--pin" must not be taken as an
	     * abbreviation of --pin-file, nor its value echoed. */
	    {"pin", required_argument, NULL, 'P'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct kt kt = {
	    .module   = getenv("COUNTERSIGN_HSM_MODULE"),
	    .token    = getenv("COUNTERSIGN_HSM_TOKEN"),
	    .pin_file = getenv("COUNTERSIGN_HSM_PIN_FILE"),
	};
	cs_log_level level = CS_LOG_WARN;
	int          opt, rv;

	/* An empty variable counts as unset. */
	kt.module   = kt.module != NULL && *kt.module ? kt.module : NULL;
	kt.token    = kt.token != NULL && *kt.token ? kt.token : NULL;
	kt.pin_file = kt.pin_file != NULL && *kt.pin_file ? kt.pin_file
	                                                  : NULL;
	if (getenv("COUNTERSIGN_HSM_PIN") != NULL) {
		kt.pin_env = "COUNTERSIGN_HSM_PIN";
	}
	/* Global options only: "+" stops at the command. */
	while ((opt = getopt_long(argc, argv, "+vhV", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'm':
			kt.module = optarg;
			break;
		case 't':
			kt.token = optarg;
			break;
		case 'p':
			kt.pin_file = optarg;
			break;
		case 'v':
			level = CS_LOG_INFO;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", CS_VERSION);
			return 0;
		case 'P':
			return usage_fail(NULL, "the PIN is never taken from "
			    "the command line (it would show in ps and in "
			    "shell history): use --pin-file FILE or "
			    "COUNTERSIGN_HSM_PIN_FILE");
		default:
			return usage_fail(NULL, "bad global option");
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cs_log_open(PROG, level, false);
	const char *cmd = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name) == 0) {
			rv = commands[i].fn(&kt, argc - optind, argv + optind);
			cs_hsm_close(kt.h);
			return rv;
		}
	}
	return usage_fail(NULL, "unknown command \"%s\"", cmd);
}
