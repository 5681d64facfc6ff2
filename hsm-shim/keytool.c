/*
 * keytool.c - countersign-keytool, the security officer's tool for the
 * signing keys in the HSM: generate a key pair that never leaves it, list
 * the keys, export public keys (PEM, DER, or a C header that firmware
 * compiles in), sign a file, check a key end to end, measure signing
 * speed.  Everything goes through the HSM shim (cs_hsm.h); this file is
 * the command line (one cs_cli command table) and the output formats.
 *
 * The PIN is never taken from the command line (it would show in ps and
 * in shell history): it comes from a file or from the environment.
 * Exit status: 0 success, 1 failure, 2 usage error.
 */
#include "cs_cli.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "cs_log.h"
#include "hsm_bench_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG "countersign-keytool"

#define KT_FILE_MAX    ((size_t)64 << 20) /* files signed, bytes */
#define KT_SECONDS_MAX 3600
#define KT_OUT_MAX     4096 /* any export fits */

enum kt_exit { KT_OK = 0, KT_FAIL = 1, KT_USAGE = 2 };

/* Global options, after the environment fallbacks were applied. */
struct kt {
	struct cs_cli cli;
	const char   *module;
	const char   *token;
	const char   *pin_file;
	const char   *pin_env; /* name of the variable, when no PIN file */
	cs_hsm       *h;
};

/*
 * What a command's options said (NULL or the default when absent).  Each
 * command lists the options it takes in its own getopt tables; kt_begin()
 * knows an option by its letter: l a f o i t s h.
 */
struct kt_args {
	const char *label;
	cs_alg      alg; /* --alg, or CS_ALG_NONE */
	bool        aes; /* --alg aes256: a secret key (keygen only) */
	const char *format;
	const char *out; /* export --output, sign --out */
	const char *in;
	const char *threads, *seconds;
};

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

/*
 * The start every command shares: parse argv into a, answer --help, refuse
 * stray arguments and an unknown --alg.  Returns 0 to go on, or the exit
 * status with *done set (the help was printed, or the error).
 */
static int
kt_begin(struct kt *kt, const struct cs_cli_cmd *cmd, int argc,
    char **argv, const char *shortopts, const struct option *longopts,
    struct kt_args *a, bool *done)
{
	const char *alg = NULL;
	bool        bad = false, help = false;
	int         opt, rv;

	memset(a, 0, sizeof(*a));
	a->alg = CS_ALG_NONE;
	*done  = true;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'l':
			a->label = optarg;
			break;
		case 'a':
			alg = optarg;
			break;
		case 'f':
			a->format = optarg;
			break;
		case 'o':
			a->out = optarg;
			break;
		case 'i':
			a->in = optarg;
			break;
		case 't':
			a->threads = optarg;
			break;
		case 's':
			a->seconds = optarg;
			break;
		case 'h':
			help = true;
			break;
		default:
			bad = true; /* getopt said what */
			break;
		}
	}
	if (bad || help) {
		return cs_cli_other_opt(&kt->cli, cmd, bad ? '?' : 'h');
	}
	if ((rv = cs_cli_positional(&kt->cli, cmd, argc, argv, 0)) != 0) {
		return rv;
	}
	if (alg != NULL && strcmp(alg, "aes256") == 0 &&
	    strcmp(cmd->name, "keygen") == 0) {
		a->aes = true;
	} else if (alg != NULL && cs_alg_parse(alg, &a->alg) != CS_OK) {
		return cs_cli_usage(&kt->cli, cmd, "unknown algorithm \"%s\": "
		    "use p256 or ed25519", alg);
	}
	*done = false;
	return KT_OK;
}

/* --label, which every command but list needs. */
static int
kt_need_label(struct kt *kt, const struct cs_cli_cmd *cmd,
    const struct kt_args *a)
{
	if (a->label == NULL) {
		return cs_cli_usage(&kt->cli, cmd, "--label is required");
	}
	return KT_OK;
}

/* Open the HSM with the global options; prints why on failure. */
static int
kt_open(struct kt *kt, const struct cs_cli_cmd *cmd, unsigned sessions)
{
	char err[1024];

	if (kt->module == NULL) {
		return cs_cli_usage(&kt->cli, cmd, "no PKCS#11 module: give "
		    "--module PATH or set COUNTERSIGN_HSM_MODULE");
	}
	if (kt->token == NULL) {
		return cs_cli_usage(&kt->cli, cmd, "no token: give --token "
		    "LABEL or set COUNTERSIGN_HSM_TOKEN");
	}
	if (kt->pin_file == NULL && kt->pin_env == NULL) {
		return cs_cli_usage(&kt->cli, cmd, "no PIN: give --pin-file "
		    "FILE or set COUNTERSIGN_HSM_PIN_FILE (or "
		    "COUNTERSIGN_HSM_PIN)");
	}
	struct cs_hsm_opts o = {
	    .module   = kt->module,
	    .token    = kt->token,
	    .pin_file = kt->pin_file,
	    .pin_env  = kt->pin_file == NULL ? kt->pin_env : NULL,
	    .sessions = sessions,
	};
	if (cs_hsm_open(&kt->h, &o, err, sizeof(err)) != CS_OK) {
		return cs_cli_error(&kt->cli, KT_FAIL, "%s", err);
	}
	return KT_OK;
}

/* Explain a failed operation on key label; returns KT_FAIL. */
static int
key_fail(struct kt *kt, int rv, const char *label, const char *what)
{
	const char *token = cs_hsm_token(kt->h);

	switch (rv) {
	case CS_ENOENT:
		return cs_cli_error(&kt->cli, KT_FAIL, "no key labelled "
		    "\"%s\" on token \"%s\" (" PROG " list shows the keys)",
		    label, token);
	case CS_EINVAL:
		return cs_cli_error(&kt->cli, KT_FAIL, "key \"%s\" on token "
		    "\"%s\" cannot %s: it is not a p256 or ed25519 signing "
		    "key", label, token, what);
	case CS_EPRECOND:
		return cs_cli_error(&kt->cli, KT_FAIL, "the label \"%s\" is "
		    "ambiguous on token \"%s\": several keys carry it; remove "
		    "or relabel all but one with the HSM's own tools", label,
		    token);
	case CS_ETIMEDOUT:
		return cs_cli_error(&kt->cli, KT_FAIL, "no HSM session became "
		    "free in time to %s", what);
	case CS_EPERM:
		return cs_cli_error(&kt->cli, KT_FAIL, "token \"%s\" no "
		    "longer accepts the PIN; check the PIN file", token);
	case CS_EHSM:
		return cs_cli_error(&kt->cli, KT_FAIL, "the HSM failed while "
		    "trying to %s with key \"%s\" (the PKCS#11 error is "
		    "logged above); check that token \"%s\" is present and "
		    "retry", what, label, token);
	default:
		return cs_cli_error(&kt->cli, KT_FAIL, "cannot %s with key "
		    "\"%s\": %s", what, label, cs_strerror(rv));
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
		return cs_cli_error(&kt->cli, KT_FAIL, "key \"%s\" is a %s "
		    "key, not %s (check --alg)", label, cs_alg_name(key->alg),
		    cs_alg_name(expect));
	}
	return KT_OK;
}

/* Read a whole file of at most KT_FILE_MAX bytes; *data is malloc'ed. */
static int
read_file(struct kt *kt, const char *path, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t    *buf = NULL;
	size_t      n   = 0;
	int         fd  = open(path, O_RDONLY | O_CLOEXEC);
	int         rv  = KT_FAIL;

	if (fd < 0) {
		return cs_cli_error(&kt->cli, KT_FAIL, "cannot open %s: %s",
		    path, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		cs_cli_error(&kt->cli, KT_FAIL, "%s is not a regular file",
		    path);
		goto out;
	}
	if ((size_t)st.st_size > KT_FILE_MAX) {
		cs_cli_error(&kt->cli, KT_FAIL, "%s is larger than %zu MiB, "
		    "the most this tool signs", path, KT_FILE_MAX >> 20);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		cs_cli_error(&kt->cli, KT_FAIL, "out of memory reading %s",
		    path);
		goto out;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			cs_cli_error(&kt->cli, KT_FAIL, "cannot read %s: %s",
			    path, r < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		n += (size_t)r;
	}
	*data = buf;
	*len  = n;
	buf   = NULL;
	rv    = KT_OK;
out:
	free(buf);
	close(fd);
	return rv;
}

/* Write data to path (or stdout for NULL). */
static int
write_out(struct kt *kt, const char *path, const void *data, size_t len)
{
	FILE *fp = path != NULL ? fopen(path, "wb") : stdout;

	if (fp == NULL) {
		return cs_cli_error(&kt->cli, KT_FAIL, "cannot create %s: %s",
		    path, strerror(errno));
	}
	size_t w = fwrite(data, 1, len, fp);
	int    c = path != NULL ? fclose(fp) : fflush(fp);
	if (w != len || c != 0) {
		return cs_cli_error(&kt->cli, KT_FAIL, "cannot write %s: %s",
		    path != NULL ? path : "standard output", strerror(errno));
	}
	return KT_OK;
}

/* Parse a number in [min, max] for opt, or a usage error. */
static int
parse_uint(struct kt *kt, const struct cs_cli_cmd *cmd, const char *opt,
    const char *s, long min, long max, long *out)
{
	char *end;
	long  v;

	errno = 0;
	v     = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		return cs_cli_usage(&kt->cli, cmd, "%s takes %ld to %ld", opt,
		    min, max);
	}
	*out = v;
	return KT_OK;
}

/* ------------------------------------------------------------------ */
/* keygen                                                              */

/*
 * keygen --alg aes256: the authority's firmware key, which seals the data
 * keys of held firmware images.  Checked after making: the token must
 * refuse to hand out its value.
 */
static int
keygen_secret(struct kt *kt, const char *label)
{
	struct cs_hsm_secret info;
	int                  rv;

	rv = cs_hsm_secret_keygen(kt->h, label);
	switch (rv) {
	case CS_OK:
		break;
	case CS_EEXIST:
		return cs_cli_error(&kt->cli, KT_FAIL, "a key labelled \"%s\" "
		    "already exists on token \"%s\"; keys are never replaced: "
		    "choose another label", label, kt->token);
	case CS_EINVAL:
		return cs_cli_error(&kt->cli, KT_FAIL, "cannot generate "
		    "\"%s\": a label is 1-64 printable ASCII characters, and "
		    "the token must support AES-256 keys", label);
	default:
		return key_fail(kt, rv, label, "generate a key");
	}
	if ((rv = cs_hsm_secret_info(kt->h, label, &info)) != CS_OK) {
		return key_fail(kt, rv, label, "read back the new key");
	}
	if (!info.sensitive || info.extractable || info.value_readable ||
	    info.key_len != CS_HSM_AES_KEY_LEN) {
		return cs_cli_error(&kt->cli, KT_FAIL, "token \"%s\" made key "
		    "\"%s\" but does not protect it (sensitive=%d "
		    "extractable=%d value readable=%d): do not use it",
		    kt->token, label, info.sensitive, info.extractable,
		    info.value_readable);
	}
	printf("generated aes256 key \"%s\" on token \"%s\" (sensitive, "
	    "never extractable, encrypt/decrypt only)\n", label, kt->token);
	return KT_OK;
}

static int
cmd_keygen(void *ctx, const struct cs_cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"alg", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct kt        *kt = ctx;
	struct kt_args    a;
	struct cs_hsm_key key;
	char              id[2 * CS_KEY_ID_LEN + 1];
	bool              done;
	int               rv;

	if ((rv = kt_begin(kt, cmd, argc, argv, "l:a:h", longopts, &a,
	    &done)) != KT_OK || done) {
		return rv;
	}
	if (a.alg == CS_ALG_NONE) {
		a.alg = CS_ALG_P256;
	}
	if ((rv = kt_need_label(kt, cmd, &a)) != KT_OK ||
	    (rv = kt_open(kt, cmd, 1)) != KT_OK) {
		return rv;
	}
	if (a.aes) {
		return keygen_secret(kt, a.label);
	}
	rv = cs_hsm_keygen(kt->h, a.label, a.alg, &key);
	switch (rv) {
	case CS_OK:
		break;
	case CS_EEXIST:
		return cs_cli_error(&kt->cli, KT_FAIL, "a key labelled \"%s\" "
		    "already exists on token \"%s\"; keys are never replaced: "
		    "choose another label", a.label, kt->token);
	case CS_EINVAL:
		return cs_cli_error(&kt->cli, KT_FAIL, "cannot generate "
		    "\"%s\": a label is 1-64 printable ASCII characters, and "
		    "the token must support %s keys", a.label,
		    cs_alg_name(a.alg));
	default:
		return key_fail(kt, rv, a.label, "generate a key");
	}
	hex(key.key_id, sizeof(key.key_id), id);
	printf("generated %s key \"%s\" on token \"%s\"\nkey id: %s\n",
	    cs_alg_name(key.alg), key.label, kt->token, id);
	return KT_OK;
}

/* ------------------------------------------------------------------ */
/* list                                                                */

static int
cmd_list(void *ctx, const struct cs_cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct kt         *kt   = ctx;
	struct kt_args     a;
	struct cs_hsm_key *keys = NULL;
	size_t             n    = 0;
	bool               done;
	int                rv, width = 5;

	if ((rv = kt_begin(kt, cmd, argc, argv, "h", longopts, &a, &done)) !=
	    KT_OK || done || (rv = kt_open(kt, cmd, 1)) != KT_OK) {
		return rv;
	}
	if ((rv = cs_hsm_list(kt->h, &keys, &n)) != CS_OK) {
		return cs_cli_error(&kt->cli, KT_FAIL, "cannot list the keys "
		    "on token \"%s\": %s (the PKCS#11 error is logged above)",
		    kt->token, cs_strerror(rv));
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
	return KT_OK;
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
cmd_export(void *ctx, const struct cs_cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"format", required_argument, NULL, 'f'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct kt        *kt = ctx;
	struct kt_args    a;
	struct cs_hsm_key key;
	char              out[KT_OUT_MAX];
	size_t            n = 0;
	bool              done;
	int               rv;

	if ((rv = kt_begin(kt, cmd, argc, argv, "l:f:o:h", longopts, &a,
	    &done)) != KT_OK || done ||
	    (rv = kt_need_label(kt, cmd, &a)) != KT_OK) {
		return rv;
	}
	if (a.format == NULL) {
		a.format = "pem";
	}
	if (strcmp(a.format, "pem") != 0 && strcmp(a.format, "der") != 0 &&
	    strcmp(a.format, "c-header") != 0) {
		return cs_cli_usage(&kt->cli, cmd, "unknown format \"%s\": "
		    "use pem, der or c-header", a.format);
	}
	if (strcmp(a.format, "der") == 0 && a.out == NULL &&
	    isatty(STDOUT_FILENO)) {
		return cs_cli_usage(&kt->cli, cmd, "DER is binary: give -o "
		    "FILE");
	}
	if ((rv = kt_open(kt, cmd, 1)) != KT_OK ||
	    (rv = kt_key(kt, a.label, CS_ALG_NONE, "export", &key)) !=
	    KT_OK) {
		return rv;
	}
	if (strcmp(a.format, "pem") == 0) {
		rv = cs_pem_encode("PUBLIC KEY", key.spki, key.spki_len, out,
		    sizeof(out));
		n = strlen(out);
	} else if (strcmp(a.format, "der") == 0) {
		memcpy(out, key.spki, key.spki_len);
		n = key.spki_len;
	} else {
		rv = c_header(&key, kt->token, out, sizeof(out), &n);
	}
	if (rv != CS_OK) {
		return cs_cli_error(&kt->cli, KT_FAIL, "cannot encode the "
		    "public key: %s", cs_strerror(rv));
	}
	return write_out(kt, a.out, out, n);
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
			return cs_cli_error(&kt->cli, KT_FAIL, "cannot hash "
			    "the input: %s", cs_strerror(rv));
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
		return cs_cli_error(&kt->cli, KT_FAIL, "the HSM's signature "
		    "with key \"%s\" does not verify against its public key "
		    "(%s); do not use this key", key->label, cs_strerror(rv));
	}
	return KT_OK;
}

static int
cmd_sign(void *ctx, const struct cs_cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"in", required_argument, NULL, 'i'},
	    {"out", required_argument, NULL, 'o'},
	    {"alg", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct kt        *kt = ctx;
	struct kt_args    a;
	struct cs_hsm_key key;
	uint8_t          *data = NULL;
	uint8_t           sig[CS_SIG_LEN], der[80];
	size_t            len = 0, der_len = 0;
	char              id[2 * CS_KEY_ID_LEN + 1];
	bool              done;
	int               rv;

	if ((rv = kt_begin(kt, cmd, argc, argv, "l:i:o:a:h", longopts, &a,
	    &done)) != KT_OK || done) {
		return rv;
	}
	if (a.label == NULL || a.in == NULL || a.out == NULL) {
		return cs_cli_usage(&kt->cli, cmd, "--label, --in and --out "
		    "are required");
	}
	if ((rv = read_file(kt, a.in, &data, &len)) != KT_OK) {
		return rv;
	}
	if ((rv = kt_open(kt, cmd, 1)) != KT_OK ||
	    (rv = kt_key(kt, a.label, a.alg, "sign", &key)) != KT_OK ||
	    (rv = sign_checked(kt, &key, data, len, sig)) != KT_OK) {
		goto out;
	}
	if (key.alg == CS_ALG_P256) {
		if (cs_ecdsa_raw_to_der(sig, der, sizeof(der), &der_len) !=
		    CS_OK) {
			rv = cs_cli_error(&kt->cli, KT_FAIL, "cannot encode "
			    "the signature");
			goto out;
		}
		rv = write_out(kt, a.out, der, der_len);
	} else {
		rv = write_out(kt, a.out, sig, sizeof(sig));
	}
	if (rv == KT_OK) {
		hex(key.key_id, sizeof(key.key_id), id);
		printf("signed %s with %s key \"%s\" (key id %s): %s\n", a.in,
		    cs_alg_name(key.alg), a.label, id, a.out);
	}
out:
	free(data);
	return rv;
}

static int
cmd_sign_test(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"alg", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct kt        *kt = ctx;
	struct kt_args    a;
	struct cs_hsm_key key;
	uint8_t           sig[CS_SIG_LEN];
	char              msg[128], id[2 * CS_KEY_ID_LEN + 1];
	struct timespec   now;
	bool              done;
	int               rv;

	if ((rv = kt_begin(kt, cmd, argc, argv, "l:a:h", longopts, &a,
	    &done)) != KT_OK || done ||
	    (rv = kt_need_label(kt, cmd, &a)) != KT_OK ||
	    (rv = kt_open(kt, cmd, 1)) != KT_OK ||
	    (rv = kt_key(kt, a.label, a.alg, "sign", &key)) != KT_OK) {
		return rv;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(msg, sizeof(msg), "countersign sign-test %lld.%09ld pid %d",
	    (long long)now.tv_sec, now.tv_nsec, (int)getpid());
	if ((rv = sign_checked(kt, &key, msg, strlen(msg), sig)) != KT_OK) {
		return rv;
	}
	sig[CS_SIG_LEN / 2] ^= 0x01;
	if (cs_verify(key.alg, key.pub, key.pub_len, msg, strlen(msg),
		sig) != CS_ECRYPTO) {
		return cs_cli_error(&kt->cli, KT_FAIL, "a tampered signature "
		    "was not rejected: the software verifier is broken");
	}
	hex(key.key_id, sizeof(key.key_id), id);
	printf("sign-test OK: key \"%s\" alg=%s key_id=%s (signed in the "
	    "HSM, verified with wolfCrypt)\n", a.label, cs_alg_name(key.alg),
	    id);
	return KT_OK;
}

/* ------------------------------------------------------------------ */
/* bench                                                               */

static int
cmd_bench(void *ctx, const struct cs_cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"threads", required_argument, NULL, 't'},
	    {"seconds", required_argument, NULL, 's'},
	    {"alg", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct kt            *kt = ctx;
	struct kt_args        a;
	struct cs_hsm_key     key;
	struct hsm_bench_shim shim;
	long                  threads = 1, seconds = 3;
	unsigned long         total   = 0;
	double                dt      = 0;
	bool                  done;
	int                   rv;

	if ((rv = kt_begin(kt, cmd, argc, argv, "l:t:s:a:h", longopts, &a,
	    &done)) != KT_OK || done ||
	    (a.threads != NULL && (rv = parse_uint(kt, cmd, "--threads",
	    a.threads, 1, HSM_BENCH_THREADS_MAX, &threads)) != KT_OK) ||
	    (a.seconds != NULL && (rv = parse_uint(kt, cmd, "--seconds",
	    a.seconds, 1, KT_SECONDS_MAX, &seconds)) != KT_OK) ||
	    (rv = kt_need_label(kt, cmd, &a)) != KT_OK ||
	    (rv = kt_open(kt, cmd, (unsigned)threads)) != KT_OK ||
	    (rv = kt_key(kt, a.label, a.alg, "sign", &key)) != KT_OK) {
		return rv;
	}
	shim = (struct hsm_bench_shim){.h = kt->h, .label = key.label,
	    .alg = key.alg};
	if ((rv = hsm_bench_measure((unsigned)threads,
	    (unsigned)seconds * 1000u, hsm_bench_shim_sign, &shim, &total,
	    &dt)) != CS_OK) {
		return key_fail(kt, rv, a.label, "sign");
	}
	printf("bench: key \"%s\" alg=%s threads=%ld seconds=%.2f "
	    "signatures=%lu rate=%.0f/s\n", a.label, cs_alg_name(key.alg),
	    threads, dt, total, (double)total / dt);
	return KT_OK;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static const struct cs_cli_cmd commands[] = {
    {"keygen", "--label LABEL\n      [--alg p256|ed25519|aes256]",
	"generate a key pair (or the firmware key) in the HSM",
	"The private key is a token object, private, sensitive, never\n"
	"extractable, and may only sign.  The label (1-64 printable ASCII\n"
	"characters) names the key for life: an existing label is refused, "
	"a\nkey is never replaced.  --alg defaults to p256 (ECDSA P-256 "
	"with\nSHA-256).  Prints the key id.\n"
	"--alg aes256 makes the authority's firmware key instead: an "
	"AES-256\nsecret key, sensitive, never extractable, that may only "
	"encrypt and\ndecrypt (it seals the data keys of held firmware "
	"images; name it in\n[hsm] firmware_key).\n",
	cmd_keygen},
    {"list", "", "list the signing keys on the token",
	"Lists the private keys on the token that may sign: label, "
	"algorithm,\nkey id (the first 8 bytes of SHA-256 over the public "
	"key's\nSubjectPublicKeyInfo DER), and whether the private key is "
	"sensitive\nand extractable.  Keys of other algorithms show as "
	"\"other\".\n",
	cmd_list},
    {"export", "--label LABEL\n      [--format pem|der|c-header] [-o FILE]",
	"write a public key as PEM, DER or a C header",
	"Writes the public key of LABEL to FILE (default: standard "
	"output):\n"
	"  pem       SubjectPublicKeyInfo, PEM (default; what openssl and "
	"the\n            authority read)\n"
	"  der       SubjectPublicKeyInfo, DER\n"
	"  c-header  a C header for firmware: CS_TRUST_KEY_ALG, "
	"cs_trust_key_id[8],\n"
	"            cs_trust_public_key[] (see docs/key-ceremony.md)\n",
	cmd_export},
    {"sign", "--label LABEL\n      --in FILE --out SIG [--alg p256|ed25519]",
	"sign a file",
	"Signs FILE (at most 64 MiB) in the HSM.  p256: ECDSA over SHA-256 "
	"of the\nfile, SIG is DER, so that\n"
	"  openssl dgst -sha256 -verify pub.pem -signature SIG FILE\n"
	"checks it.  ed25519: PureEdDSA over the file, SIG is the raw 64 "
	"bytes\n"
	"  openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in FILE "
	"-sigfile SIG\n"
	"checks it.  --alg refuses a key of any other algorithm.\n"
	"The signature is verified against the public key before it is "
	"written.\n",
	cmd_sign},
    {"sign-test", "--label LABEL\n      [--alg p256|ed25519]",
	"sign with a key and verify the result in software",
	"Signs a fresh test message with the key in the HSM and verifies "
	"the\nsignature in software (wolfCrypt) with the exported public "
	"key; a\ntampered copy must then fail to verify.  Prints the key "
	"id.\n",
	cmd_sign_test},
    {"bench", "--label LABEL [--threads N]\n      [--seconds S] "
	"[--alg p256|ed25519]",
	"measure signatures per second",
	"Signs as fast as it can from N threads (default 1, at most 64), "
	"each\nwith its own HSM session, for S seconds (default 3), and "
	"prints\nsignatures per second.  countersign-hsm-bench compares the "
	"shim with\nbare PKCS#11 calls.\n",
	cmd_bench},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

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
	    "Commands:\n");
	cs_cli_list(fp, commands, NCOMMANDS);
	fprintf(fp,
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
	    .cli      = {.prog = PROG, .usage_code = KT_USAGE},
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
			return KT_OK;
		case 'V':
			printf(PROG " %s\n", CS_VERSION);
			return KT_OK;
		case 'P':
			return cs_cli_usage(&kt.cli, NULL, "the PIN is never "
			    "taken from the command line (it would show in ps "
			    "and in shell history): use --pin-file FILE or "
			    "COUNTERSIGN_HSM_PIN_FILE");
		default:
			return cs_cli_usage(&kt.cli, NULL, "bad global "
			    "option");
		}
	}
	cs_log_open(PROG, level, false);
	rv = cs_cli_dispatch(&kt.cli, commands, NCOMMANDS, &kt, argc - optind,
	    argv + optind);
	cs_hsm_close(kt.h);
	return rv;
}
