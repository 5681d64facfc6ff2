/*
 * keytool_test.c - countersign-keytool end to end, as a security officer
 * runs it, against a real SoftHSM2 token per test: generate, list, export
 * in every format (the C header is compiled and run), sign files and check
 * the signatures with the openssl command line tool, the help texts, and
 * the bad inputs an officer will make, each of which must end with a clear
 * message and exit status 1 (2 for usage errors), never a crash.
 */
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define TOKEN "officer-token"
#define PIN   "2468-pin"
#define ERR   "error: "

struct fx {
	char *dir;
	char  keytool[512], conf[512], pin[512];
	char  out[16384];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_make_token(f->dir, TOKEN, PIN);
	tu_program(f->keytool, sizeof(f->keytool), "hsm-shim",
	    "countersign-keytool");
	tu_path(f->conf, sizeof(f->conf), f->dir, "softhsm2.conf");
	tu_path(f->pin, sizeof(f->pin), f->dir, "pin");
	/* What an officer's shell would export (make-token.sh prints it). */
	assert_int_equal(setenv("SOFTHSM2_CONF", f->conf, 1), 0);
	assert_int_equal(setenv("COUNTERSIGN_HSM_MODULE", CS_SOFTHSM_MODULE,
	    1), 0);
	assert_int_equal(setenv("COUNTERSIGN_HSM_TOKEN", TOKEN, 1), 0);
	assert_int_equal(setenv("COUNTERSIGN_HSM_PIN_FILE", f->pin, 1), 0);
	unsetenv("COUNTERSIGN_HSM_PIN");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* Run countersign-keytool with the given arguments (NULL-terminated);
 * output in f->out; returns the exit status (-1: killed by a signal). */
static int
kt(struct fx *f, ...)
{
	char   *argv[32];
	int     n = 0;
	va_list ap;

	argv[n++] = f->keytool;
	va_start(ap, f);
	for (char *a; (a = va_arg(ap, char *)) != NULL && n < 31;) {
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	return tu_run(argv, f->out, sizeof(f->out));
}

#define KT(f, ...) kt(f, __VA_ARGS__, (char *)NULL)

/* The keytool run failed as expected: status, prefix, and the words
 * that tell the officer what to fix. */
static void
fails_with(struct fx *f, int status, int want, const char *words)
{
	if (status != want || strstr(f->out, words) == NULL ||
	    strstr(f->out, ERR) == NULL) {
		fprintf(stderr, "exit %d (wanted %d), output:\n%s\n", status,
		    want, f->out);
	}
	assert_int_equal(status, want);
	assert_non_null(strstr(f->out, ERR));
	assert_non_null(strstr(f->out, words));
}

static void
ok(struct fx *f, int status)
{
	if (status != 0) {
		fprintf(stderr, "exit %d, output:\n%s\n", status, f->out);
	}
	assert_int_equal(status, 0);
}

/* Run a command that must succeed; its output in out. */
static void
run_ok(char *const argv[], char *out, size_t len)
{
	int rv = tu_run(argv, out, len);

	if (rv != 0) {
		fprintf(stderr, "%s: exit %d: %s\n", argv[0], rv, out);
	}
	assert_int_equal(rv, 0);
}

static size_t
read_file(const char *path, uint8_t *buf, size_t len)
{
	FILE  *fp = fopen(path, "rb");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, len, fp);
	assert_true(n < len);
	fclose(fp);
	return n;
}

/* keygen, returning the key id it printed (16 hex digits). */
static void
keygen(struct fx *f, const char *label, const char *alg, char id[17])
{
	ok(f, KT(f, "keygen", "--label", label, "--alg", alg));
	const char *p = strstr(f->out, "key id: ");
	assert_non_null(p);
	memcpy(id, p + 8, 16);
	id[16] = '\0';
}

/* ------------------------------------------------------------------ */

static void
test_help(void **state)
{
	struct fx  *f = *state;
	const char *cmds[] = {"keygen", "list", "export", "sign",
	    "sign-test", "bench"};

	/* Help needs no HSM at all. */
	unsetenv("COUNTERSIGN_HSM_MODULE");
	unsetenv("COUNTERSIGN_HSM_TOKEN");
	unsetenv("COUNTERSIGN_HSM_PIN_FILE");
	ok(f, KT(f, "--help"));
	assert_non_null(strstr(f->out, "usage: countersign-keytool"));
	assert_non_null(strstr(f->out, "--pin-file FILE"));
	assert_non_null(strstr(f->out, "COUNTERSIGN_HSM_MODULE"));
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		assert_non_null(strstr(f->out, cmds[i]));
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		ok(f, KT(f, (char *)cmds[i], "--help"));
		assert_non_null(strstr(f->out, "usage: countersign-keytool"));
		assert_non_null(strstr(f->out, cmds[i]));
	}
	ok(f, KT(f, "--version"));
	assert_non_null(strstr(f->out, "countersign-keytool "));

	/* Usage errors: status 2. */
	fails_with(f, KT(f, "list"), 2, "no PKCS#11 module: give --module "
	    "PATH or set COUNTERSIGN_HSM_MODULE");
	assert_int_equal(tu_run((char *[]){f->keytool, NULL}, f->out,
	    sizeof(f->out)), 2);
	fails_with(f, KT(f, "frobnicate"), 2,
	    "unknown command \"frobnicate\"");
	fails_with(f, KT(f, "keygen"), 2, "--label is required");
	fails_with(f, KT(f, "keygen", "--label", "k", "--alg", "rsa"), 2,
	    "unknown algorithm \"rsa\"");
	fails_with(f, KT(f, "export", "--label", "k", "--format", "jwk"), 2,
	    "unknown format \"jwk\"");
	fails_with(f, KT(f, "sign", "--label", "k"), 2, "--in and --out");
	fails_with(f, KT(f, "bench", "--label", "k", "--threads", "0"), 2,
	    "--threads");
	/* There is no way to give the PIN on the command line, and a PIN
	 * given anyway is not echoed (nor taken for --pin-file). */
	fails_with(f, KT(f, "--pin", PIN, "list"), 2,
	    "never taken from the command line");
	assert_null(strstr(f->out, PIN));
	fails_with(f, KT(f, "--pin=" PIN, "list"), 2,
	    "never taken from the command line");
	assert_null(strstr(f->out, PIN));
}

static void
check_export(struct fx *f, const char *label, const char *alg,
    const char *id)
{
	char    pem[512], der[512], der2[512], hdr[512], prog[512], exe[512];
	char    out[4096], want[512];
	uint8_t d1[256], d2[256];
	size_t  n1, n2, pub_len = strcmp(alg, "p256") == 0 ? 65 : 32;

	tu_path(pem, sizeof(pem), f->dir, "pub.pem");
	tu_path(der, sizeof(der), f->dir, "pub.der");
	tu_path(der2, sizeof(der2), f->dir, "pub2.der");
	tu_path(hdr, sizeof(hdr), f->dir, "trust_key.h");
	ok(f, KT(f, "export", "--label", (char *)label, "-o", pem));
	ok(f, KT(f, "export", "--label", (char *)label, "--format", "der",
	    "-o", der));
	ok(f, KT(f, "export", "--label", (char *)label, "--format",
	    "c-header", "--output", hdr));

	/* openssl reads the PEM; its DER is ours, byte for byte. */
	char *conv[] = {"openssl", "pkey", "-pubin", "-in", pem, "-outform",
	    "DER", "-out", der2, NULL};
	run_ok(conv, out, sizeof(out));
	n1 = read_file(der, d1, sizeof(d1));
	n2 = read_file(der2, d2, sizeof(d2));
	assert_int_equal(n1, n2);
	assert_memory_equal(d1, d2, n1);
	assert_int_equal(n1, pub_len == 65 ? 91 : 44);

	/* The key id is the start of openssl's SHA-256 of that DER. */
	char *dgst[] = {"openssl", "dgst", "-sha256", "-r", der, NULL};
	run_ok(dgst, out, sizeof(out));
	assert_memory_equal(out, id, 16);

	/* The C header compiles, and holds that key id and that key. */
	tu_path(prog, sizeof(prog), f->dir, "trust.c");
	tu_write_file(prog,
	    "#include \"trust_key.h\"\n"
	    "#include <stdio.h>\n"
	    "int main(void) {\n"
	    "\tprintf(\"alg=%d len=%d id=\", CS_TRUST_KEY_ALG,\n"
	    "\t    CS_TRUST_KEY_LEN);\n"
	    "\tfor (unsigned i = 0; i < sizeof(cs_trust_key_id); i++)\n"
	    "\t\tprintf(\"%02x\", cs_trust_key_id[i]);\n"
	    "\tprintf(\" key=\");\n"
	    "\tfor (unsigned i = 0; i < sizeof(cs_trust_public_key); i++)\n"
	    "\t\tprintf(\"%02x\", cs_trust_public_key[i]);\n"
	    "\tprintf(\"\\n\");\n"
	    "\treturn sizeof(cs_trust_public_key) != CS_TRUST_KEY_LEN;\n"
	    "}\n");
	tu_path(exe, sizeof(exe), f->dir, "trust");
	char *cc[] = {"cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I",
	    f->dir, "-o", exe, prog, NULL};
	run_ok(cc, out, sizeof(out));
	char *run[] = {exe, NULL};
	run_ok(run, out, sizeof(out));
	int m = snprintf(want, sizeof(want), "alg=%d len=%zu id=%s key=",
	    pub_len == 65 ? 1 : 2, pub_len, id);
	for (size_t i = 0; i < pub_len; i++) {
		m += snprintf(want + m, sizeof(want) - (size_t)m, "%02x",
		    d1[n1 - pub_len + i]);
	}
	snprintf(want + m, sizeof(want) - (size_t)m, "\n");
	assert_string_equal(out, want);
}

static void
test_keygen_list_export(void **state)
{
	struct fx *f = *state;
	char       p[17], e[17], line[256];

	keygen(f, "product-2026", "p256", p);
	keygen(f, "product-2026-ed", "ed25519", e);

	ok(f, KT(f, "list"));
	assert_non_null(strstr(f->out, "LABEL"));
	snprintf(line, sizeof(line), "product-2026     p256     %s  yes    "
	    "    no", p);
	assert_non_null(strstr(f->out, line));
	snprintf(line, sizeof(line), "product-2026-ed  ed25519  %s  yes    "
	    "    no", e);
	assert_non_null(strstr(f->out, line));

	check_export(f, "product-2026", "p256", p);
	check_export(f, "product-2026-ed", "ed25519", e);

	/* The same with options instead of the environment. */
	unsetenv("COUNTERSIGN_HSM_MODULE");
	unsetenv("COUNTERSIGN_HSM_TOKEN");
	unsetenv("COUNTERSIGN_HSM_PIN_FILE");
	ok(f, KT(f, "--module", CS_SOFTHSM_MODULE, "--token", TOKEN,
	    "--pin-file", f->pin, "list"));
	assert_non_null(strstr(f->out, p));
	/* And with the PIN itself in COUNTERSIGN_HSM_PIN. */
	assert_int_equal(setenv("COUNTERSIGN_HSM_PIN", PIN, 1), 0);
	ok(f, KT(f, "--module", CS_SOFTHSM_MODULE, "--token", TOKEN, "list"));
	assert_non_null(strstr(f->out, e));
}

static void
test_sign_files(void **state)
{
	struct fx *f = *state;
	char       id[17], pem[512], in[512], sig[512], out[4096];

	tu_path(pem, sizeof(pem), f->dir, "pub.pem");
	tu_path(in, sizeof(in), f->dir, "firmware.bin");
	tu_path(sig, sizeof(sig), f->dir, "firmware.sig");
	tu_write_file(in, "firmware image 1.2.3\n");

	/* P-256: DER signature over SHA-256 of the file. */
	keygen(f, "fw-p256", "p256", id);
	ok(f, KT(f, "export", "--label", "fw-p256", "-o", pem));
	ok(f, KT(f, "sign", "--label", "fw-p256", "--in", in, "--out", sig));
	assert_non_null(strstr(f->out, id));
	char *verify[] = {"openssl", "dgst", "-sha256", "-verify", pem,
	    "-signature", sig, in, NULL};
	run_ok(verify, out, sizeof(out));
	assert_non_null(strstr(out, "Verified OK"));
	tu_write_file(in, "firmware image 1.2.4\n");
	assert_int_equal(tu_run(verify, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "Verification failure"));

	/* Ed25519: the raw 64 bytes over the file itself. */
	keygen(f, "fw-ed", "ed25519", id);
	ok(f, KT(f, "export", "--label", "fw-ed", "-o", pem));
	ok(f, KT(f, "sign", "--label", "fw-ed", "--in", in, "--out", sig,
	    "--alg", "ed25519"));
	char *pkeyutl[] = {"openssl", "pkeyutl", "-verify", "-pubin",
	    "-inkey", pem, "-rawin", "-in", in, "-sigfile", sig, NULL};
	run_ok(pkeyutl, out, sizeof(out));
	assert_non_null(strstr(out, "Signature Verified Successfully"));

	/* An empty file is a file (the keytool verifies every signature
	 * before writing it; openssl 3.0 cannot read an empty -rawin). */
	uint8_t buf[128];
	tu_write_file(in, "");
	ok(f, KT(f, "sign", "--label", "fw-ed", "--in", in, "--out", sig));
	assert_int_equal(read_file(sig, buf, sizeof(buf)), 64);
}

static void
test_sign_test_bench(void **state)
{
	struct fx *f = *state;
	char       p[17], e[17], want[64];

	keygen(f, "st-p256", "p256", p);
	keygen(f, "st-ed", "ed25519", e);
	ok(f, KT(f, "sign-test", "--label", "st-p256"));
	snprintf(want, sizeof(want), "key_id=%s", p);
	assert_non_null(strstr(f->out, "sign-test OK"));
	assert_non_null(strstr(f->out, want));
	ok(f, KT(f, "sign-test", "--label", "st-ed", "--alg", "ed25519"));
	snprintf(want, sizeof(want), "key_id=%s", e);
	assert_non_null(strstr(f->out, want));

	ok(f, KT(f, "bench", "--label", "st-p256", "--threads", "2",
	    "--seconds", "1"));
	assert_non_null(strstr(f->out, "threads=2"));
	assert_non_null(strstr(f->out, "rate="));
}

static void
test_bad_input(void **state)
{
	struct fx *f = *state;
	char       id[17], path[512], in[512], sig[512];

	keygen(f, "bad-p256", "p256", id);

	/* The module: missing, not a library, a library but no PKCS#11. */
	fails_with(f, KT(f, "--module", "/nonexistent/libpkcs11.so", "list"),
	    1, "PKCS#11 module /nonexistent/libpkcs11.so not found");
	tu_write_file(tu_path(path, sizeof(path), f->dir, "fake.so"),
	    "#!/bin/sh\n");
	fails_with(f, KT(f, "--module", path, "list"), 1,
	    "is not a PKCS#11 module");

	/* The token and the PIN. */
	fails_with(f, KT(f, "--token", "other-token", "list"), 1,
	    "no token labelled \"other-token\"");
	assert_non_null(strstr(f->out, "\"" TOKEN "\""));
	tu_write_file(tu_path(path, sizeof(path), f->dir, "bad-pin"),
	    "1111\n");
	fails_with(f, KT(f, "--pin-file", path, "list"), 1, "chmod 600");
	chmod(path, 0600);
	fails_with(f, KT(f, "--pin-file", path, "list"), 1,
	    "wrong PIN for token \"" TOKEN "\"");
	fails_with(f, KT(f, "--pin-file", "/nonexistent/pin", "list"), 1,
	    "cannot open PIN file /nonexistent/pin");

	/* Keys: unknown label, wrong algorithm, a label taken. */
	fails_with(f, KT(f, "sign-test", "--label", "no-such-key"), 1,
	    "no key labelled \"no-such-key\" on token \"" TOKEN "\"");
	fails_with(f, KT(f, "export", "--label", "no-such-key"), 1,
	    "no key labelled \"no-such-key\"");
	fails_with(f, KT(f, "sign-test", "--label", "bad-p256", "--alg",
	    "ed25519"), 1, "key \"bad-p256\" is a p256 key, not ed25519");
	fails_with(f, KT(f, "bench", "--label", "bad-p256", "--alg",
	    "ed25519", "--seconds", "1"), 1, "is a p256 key, not ed25519");
	fails_with(f, KT(f, "keygen", "--label", "bad-p256", "--alg",
	    "ed25519"), 1, "a key labelled \"bad-p256\" already exists");
	fails_with(f, KT(f, "keygen", "--label", "tab\tlabel"), 1,
	    "1-64 printable ASCII");

	/* Files. */
	tu_path(in, sizeof(in), f->dir, "no-such-file");
	tu_path(sig, sizeof(sig), f->dir, "sig");
	fails_with(f, KT(f, "sign", "--label", "bad-p256", "--in", in,
	    "--out", sig), 1, "cannot open");
	tu_path(in, sizeof(in), f->dir, "msg");
	tu_write_file(in, "x");
	fails_with(f, KT(f, "sign", "--label", "bad-p256", "--in", in,
	    "--out", "/nonexistent/dir/sig"), 1, "cannot create");
	fails_with(f, KT(f, "sign", "--label", "bad-p256", "--in", f->dir,
	    "--out", sig), 1, "is not a regular file");

	/* Nothing of that disturbed the token. */
	ok(f, KT(f, "sign-test", "--label", "bad-p256"));
}

/* keygen --alg aes256: the authority's firmware key. */
static void
test_keygen_aes(void **state)
{
	struct fx *f = *state;

	ok(f, KT(f, "keygen", "--label", "fw-key", "--alg", "aes256"));
	assert_non_null(strstr(f->out, "generated aes256 key \"fw-key\""));
	assert_non_null(strstr(f->out, "never extractable"));
	fails_with(f, KT(f, "keygen", "--label", "fw-key", "--alg",
	    "aes256"), 1, "a key labelled \"fw-key\" already exists");
	fails_with(f, KT(f, "keygen", "--label", "fw-key", "--alg", "p256"),
	    1, "a key labelled \"fw-key\" already exists");
	/* aes256 is for keygen only: no other command signs with it. */
	fails_with(f, KT(f, "sign-test", "--label", "fw-key", "--alg",
	    "aes256"), 2, "unknown algorithm \"aes256\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_help, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keygen_list_export, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_sign_files, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_sign_test_bench, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keygen_aes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
