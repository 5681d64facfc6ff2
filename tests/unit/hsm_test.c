/*
 * hsm_test.c - the HSM shim against a real SoftHSM2 token: every test
 * makes its own token in a temporary directory (tests/hsm/make-token.sh).
 *
 * Besides the shim's API this test uses PKCS#11 directly, for two things
 * the shim must not offer: reading key attributes back independently, and
 * injecting faults.  It loads the same module file as the shim; the
 * dynamic linker maps it once, so both see the same module state (the
 * shim's C_Initialize and login) and the same function table.
 *
 * Faults that SoftHSM cannot produce are injected by swapping entries of
 * that function table (SoftHSM 2.6.1 keeps it in writable memory): a
 * locked PIN (SoftHSM never locks one), a device removed in mid-call, a
 * slow HSM.  Faults SoftHSM can produce are produced for real: sessions
 * closed behind the shim's back (C_CloseAllSessions from here), and the
 * token vanishing (its directory moved away) and coming back.
 */
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "cs_log.h"
#include "test_util.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* Last: it defines lowercase macros (value, count, parameter, ...). */
#include <p11-kit/pkcs11.h>

#define TOKEN "test-token"
#define PIN   "4711-pin"

struct fx {
	char   *dir;
	char    pin_file[512];
	cs_hsm *h;
};

/* The module as this test sees it, and its original function table. */
static void             *t_dl;
static CK_FUNCTION_LIST *t_p11;
static CK_FUNCTION_LIST  t_orig;

/* ------------------------------------------------------------------ */
/* Fixture                                                             */

static int
group_setup(void **state)
{
	CK_C_GetFunctionList get;

	(void)state;
	t_dl = dlopen(CS_SOFTHSM_MODULE, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(t_dl);
	*(void **)&get = dlsym(t_dl, "C_GetFunctionList");
	assert_non_null(get);
	assert_int_equal(get(&t_p11), CKR_OK);
	t_orig = *t_p11;
	cs_log_open("hsm_test", CS_LOG_WARN, false);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	dlclose(t_dl);
	return 0;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_make_token(f->dir, TOKEN, PIN);
	tu_path(f->pin_file, sizeof(f->pin_file), f->dir, "pin");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	*t_p11 = t_orig; /* whatever a test injected */
	cs_hsm_close(f->h);
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

static int
open_hsm(struct fx *f, unsigned sessions, unsigned wait_ms, char *err,
    size_t errlen)
{
	struct cs_hsm_opts o = {
	    .module   = CS_SOFTHSM_MODULE,
	    .token    = TOKEN,
	    .pin_file = f->pin_file,
	    .sessions = sessions,
	    .wait_ms  = wait_ms,
	};
	return cs_hsm_open(&f->h, &o, err, errlen);
}

static void
open_ok(struct fx *f, unsigned sessions, unsigned wait_ms)
{
	char err[1024];
	int  rv = open_hsm(f, sessions, wait_ms, err, sizeof(err));

	if (rv != CS_OK) {
		fprintf(stderr, "cs_hsm_open: %s\n", err);
	}
	assert_int_equal(rv, CS_OK);
}

/* Sign msg with label the way the authority will, and verify it. */
static void
sign_verify(cs_hsm *h, const struct cs_hsm_key *k, const char *msg)
{
	uint8_t digest[CS_SHA256_LEN], sig[CS_SIG_LEN];
	int     rv;

	if (k->alg == CS_ALG_P256) {
		assert_int_equal(cs_sha256(msg, strlen(msg), digest), CS_OK);
		rv = cs_hsm_sign(h, k->label, CS_ALG_P256, digest,
		    sizeof(digest), sig);
	} else {
		rv = cs_hsm_sign(h, k->label, CS_ALG_ED25519,
		    (const uint8_t *)msg, strlen(msg), sig);
	}
	assert_int_equal(rv, CS_OK);
	assert_int_equal(cs_verify(k->alg, k->pub, k->pub_len, msg,
	    strlen(msg), sig), CS_OK);
}

/* The slot of our token, found as an outsider would. */
static CK_SLOT_ID
t_slot(void)
{
	CK_SLOT_ID    slots[16];
	CK_ULONG      n = 16;
	unsigned char want[32];

	memset(want, ' ', sizeof(want));
	memcpy(want, TOKEN, strlen(TOKEN));
	assert_int_equal(t_p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (t_p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, want, sizeof(want)) == 0) {
			return slots[i];
		}
	}
	fail_msg("token %s not found", TOKEN);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */

static void
test_open_close(void **state)
{
	struct fx *f = *state;

	open_ok(f, 0, 0);
	assert_int_equal(cs_hsm_sessions(f->h), 2);
	assert_string_equal(cs_hsm_token(f->h), TOKEN);
	cs_hsm_close(f->h);

	/* The PIN from an environment variable instead of a file. */
	struct cs_hsm_opts o = {
	    .module   = CS_SOFTHSM_MODULE,
	    .token    = TOKEN,
	    .pin_env  = "HSM_TEST_PIN",
	    .sessions = 3,
	};
	char err[1024];
	assert_int_equal(setenv("HSM_TEST_PIN", PIN, 1), 0);
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_OK);
	assert_int_equal(cs_hsm_sessions(f->h), 3);
	unsetenv("HSM_TEST_PIN");
	cs_hsm_close(NULL);
}

static void
test_open_bad_module(void **state)
{
	struct fx *f = *state;
	char       err[1024], path[512];
	Dl_info    info;

	struct cs_hsm_opts o = {
	    .module   = "/nonexistent/libnothere.so",
	    .token    = TOKEN,
	    .pin_file = f->pin_file,
	};
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_ENOENT);
	assert_null(f->h);
	assert_non_null(strstr(err, "/nonexistent/libnothere.so not found"));

	/* A file that is not a library at all. */
	tu_write_file(tu_path(path, sizeof(path), f->dir, "fake.so"),
	    "not a shared object\n");
	o.module = path;
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EINVAL);
	assert_non_null(strstr(err, "is not a PKCS#11 module"));

	/* A real library, but not a PKCS#11 module: cmocka itself. */
	assert_true(dladdr((void *)_cmocka_run_group_tests, &info) != 0);
	o.module = info.dli_fname;
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EINVAL);
	assert_non_null(strstr(err, "no C_GetFunctionList"));

	/* A directory. */
	o.module = f->dir;
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EINVAL);
	assert_null(f->h);
}

static void
test_open_bad_token(void **state)
{
	struct fx *f = *state;
	char       err[1024];

	struct cs_hsm_opts o = {
	    .module   = CS_SOFTHSM_MODULE,
	    .token    = "no-such-token",
	    .pin_file = f->pin_file,
	};
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_ENOENT);
	assert_non_null(strstr(err, "no token labelled \"no-such-token\""));
	assert_non_null(strstr(err, "\"" TOKEN "\"")); /* what is there */

	/* A prefix of the label is not the label: blank padding counts. */
	o.token = "test-tok";
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_ENOENT);

	o.token = "a-token-label-longer-than-32-bytes";
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EINVAL);
	assert_null(f->h);
}

static void
test_open_bad_pin(void **state)
{
	struct fx *f = *state;
	char       err[1024], path[512];

	struct cs_hsm_opts o = {
	    .module   = CS_SOFTHSM_MODULE,
	    .token    = TOKEN,
	    .pin_file = tu_path(path, sizeof(path), f->dir, "wrong-pin"),
	};
	tu_write_file(path, "0000-wrong\n");
	chmod(path, 0600); /* a PIN file open to others is refused */
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EPERM);
	assert_non_null(strstr(err, "wrong PIN for token \"" TOKEN "\""));
	/* Refused before any login when group or others may read it. */
	chmod(path, 0644);
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	chmod(path, 0600);

	/* Missing, empty, too long. */
	o.pin_file = tu_path(path, sizeof(path), f->dir, "no-such-pin");
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_ENOENT);
	assert_non_null(strstr(err, "no-such-pin"));
	o.pin_file = tu_path(path, sizeof(path), f->dir, "empty-pin");
	tu_write_file(path, "\n");
	chmod(path, 0600); /* a PIN file open to others is refused */
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EINVAL);
	assert_non_null(strstr(err, "is empty"));
	char long_pin[400];
	memset(long_pin, '7', sizeof(long_pin) - 1);
	long_pin[sizeof(long_pin) - 1] = '\0';
	o.pin_file = tu_path(path, sizeof(path), f->dir, "long-pin");
	tu_write_file(path, long_pin);
	chmod(path, 0600); /* a PIN file open to others is refused */
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EINVAL);

	/* The variable is not set; both sources at once. */
	o.pin_file = NULL;
	o.pin_env  = "HSM_TEST_NO_SUCH_VARIABLE";
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_ENOENT);
	assert_non_null(strstr(err, "HSM_TEST_NO_SUCH_VARIABLE"));
	o.pin_file = f->pin_file;
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EINVAL);
	assert_null(f->h);

	/* A line end of either kind after the PIN is not part of it. */
	o.pin_env  = NULL;
	o.pin_file = tu_path(path, sizeof(path), f->dir, "crlf-pin");
	tu_write_file(path, PIN "\r\nsecond line\n");
	chmod(path, 0600); /* a PIN file open to others is refused */
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_OK);
}

/* Counts C_Login calls; answers CKR_PIN_LOCKED. */
static atomic_int t_logins;

static CK_RV
locked_login(CK_SESSION_HANDLE s, CK_USER_TYPE who, CK_UTF8CHAR_PTR pin,
    CK_ULONG len)
{
	(void)s;
	(void)who;
	(void)pin;
	(void)len;
	atomic_fetch_add(&t_logins, 1);
	return CKR_PIN_LOCKED;
}

/* The real token info, with the "user PIN locked" flag set. */
static CK_RV
locked_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR ti)
{
	CK_RV rv = t_orig.C_GetTokenInfo(slot, ti);

	if (rv == CKR_OK) {
		ti->flags |= CKF_USER_PIN_LOCKED;
	}
	return rv;
}

static void
test_open_locked_pin(void **state)
{
	struct fx *f = *state;
	char       err[1024], path[512];

	/*
	 * What SoftHSM 2.6.1 really does: it never locks a PIN.  After ten
	 * wrong attempts the right PIN still works (it only sets
	 * CKF_USER_PIN_COUNT_LOW).
	 */
	struct cs_hsm_opts o = {
	    .module   = CS_SOFTHSM_MODULE,
	    .token    = TOKEN,
	    .pin_file = tu_path(path, sizeof(path), f->dir, "wrong-pin"),
	};
	tu_write_file(path, "0000-wrong\n");
	chmod(path, 0600); /* a PIN file open to others is refused */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)),
		    CS_EPERM);
		assert_null(strstr(err, "PIN locked"));
	}
	open_ok(f, 1, 0);
	cs_hsm_close(f->h);
	f->h = NULL;

	/* A token that answers the login with CKR_PIN_LOCKED. */
	t_p11->C_Login = locked_login;
	o.pin_file     = f->pin_file;
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EPERM);
	assert_non_null(strstr(err, "PIN locked: the security officer must "
	                            "reset it (softhsm2-util / the HSM's "
	                            "admin tool)"));
	assert_int_equal(atomic_load(&t_logins), 1);

	/* A token that reports the PIN locked up front: no login is tried,
	 * so no attempt is wasted. */
	atomic_store(&t_logins, 0);
	t_p11->C_GetTokenInfo = locked_token_info;
	assert_int_equal(cs_hsm_open(&f->h, &o, err, sizeof(err)), CS_EPERM);
	assert_non_null(strstr(err, "PIN locked"));
	assert_int_equal(atomic_load(&t_logins), 0);
	assert_null(f->h);
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */

static void
check_key(const struct cs_hsm_key *k, const char *label, cs_alg alg)
{
	uint8_t id[CS_KEY_ID_LEN], pub[CS_P256_POINT_LEN];
	size_t  pub_len;
	cs_alg  got;

	assert_string_equal(k->label, label);
	assert_int_equal(k->alg, alg);
	assert_int_equal(k->pub_len, alg == CS_ALG_P256 ? 65 : 32);
	assert_int_equal(k->spki_len, alg == CS_ALG_P256 ? 91 : 44);
	assert_true(k->sensitive);
	assert_false(k->extractable);
	/* The key id is the project's one function over the SPKI. */
	assert_int_equal(cs_key_id(k->spki, k->spki_len, id), CS_OK);
	assert_memory_equal(id, k->key_id, sizeof(id));
	assert_int_equal(cs_spki_decode(k->spki, k->spki_len, &got, pub,
	    &pub_len), CS_OK);
	assert_int_equal(got, alg);
	assert_memory_equal(pub, k->pub, pub_len);
}

static void
test_keygen_list(void **state)
{
	struct fx         *f = *state;
	struct cs_hsm_key  p, e, again;
	struct cs_hsm_key *keys = NULL;
	size_t             n    = 0;
	char               label[80];

	open_ok(f, 0, 0);
	assert_int_equal(cs_hsm_list(f->h, &keys, &n), CS_OK);
	assert_int_equal(n, 0);
	free(keys);

	assert_int_equal(cs_hsm_keygen(f->h, "product-p256", CS_ALG_P256,
	    &p), CS_OK);
	check_key(&p, "product-p256", CS_ALG_P256);
	assert_int_equal(cs_hsm_keygen(f->h, "product-ed25519",
	    CS_ALG_ED25519, &e), CS_OK);
	check_key(&e, "product-ed25519", CS_ALG_ED25519);

	assert_int_equal(cs_hsm_key(f->h, "product-p256", &again), CS_OK);
	assert_memory_equal(&again, &p, sizeof(p));
	assert_int_equal(cs_hsm_key(f->h, "product-ed25519", &again), CS_OK);
	assert_memory_equal(&again, &e, sizeof(e));

	assert_int_equal(cs_hsm_list(f->h, &keys, &n), CS_OK);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		const struct cs_hsm_key *want =
		    strcmp(keys[i].label, "product-p256") == 0 ? &p : &e;
		assert_memory_equal(&keys[i], want, sizeof(*want));
	}
	free(keys);

	/* A label names one key for life. */
	assert_int_equal(cs_hsm_keygen(f->h, "product-p256", CS_ALG_P256,
	    NULL), CS_EEXIST);
	assert_int_equal(cs_hsm_keygen(f->h, "product-p256", CS_ALG_ED25519,
	    NULL), CS_EEXIST);

	/* Labels: 1..64 printable ASCII; two algorithms only. */
	assert_int_equal(cs_hsm_keygen(f->h, "", CS_ALG_P256, NULL),
	    CS_EINVAL);
	memset(label, 'x', 65);
	label[65] = '\0';
	assert_int_equal(cs_hsm_keygen(f->h, label, CS_ALG_P256, NULL),
	    CS_EINVAL);
	label[64] = '\0';
	assert_int_equal(cs_hsm_keygen(f->h, label, CS_ALG_P256, &again),
	    CS_OK);
	check_key(&again, label, CS_ALG_P256);
	assert_int_equal(cs_hsm_keygen(f->h, "tab\there", CS_ALG_P256, NULL),
	    CS_EINVAL);
	assert_int_equal(cs_hsm_keygen(f->h, "other", CS_ALG_NONE, NULL),
	    CS_EINVAL);
	assert_int_equal(cs_hsm_key(f->h, "no-such-key", &again), CS_ENOENT);
}

/* Read a CK_BBOOL attribute through our own session. */
static bool
attr_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE t)
{
	CK_BBOOL     b = CK_FALSE;
	CK_ATTRIBUTE a = {t, &b, sizeof(b)};

	assert_int_equal(t_p11->C_GetAttributeValue(s, obj, &a, 1), CKR_OK);
	return b == CK_TRUE;
}

static CK_OBJECT_HANDLE
find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
	CK_OBJECT_HANDLE obj[2];
	CK_ULONG         n      = 0;
	CK_ATTRIBUTE     tmpl[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_LABEL, (void *)label, strlen(label)},
        };

	assert_int_equal(t_p11->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
	assert_int_equal(t_p11->C_FindObjects(s, obj, 2, &n), CKR_OK);
	assert_int_equal(t_p11->C_FindObjectsFinal(s), CKR_OK);
	assert_int_equal(n, 1);
	return obj[0];
}

static void
test_key_attributes(void **state)
{
	struct fx        *f = *state;
	const char       *labels[] = {"attr-p256", "attr-ed25519"};
	cs_alg            algs[]   = {CS_ALG_P256, CS_ALG_ED25519};
	CK_SESSION_HANDLE s;

	open_ok(f, 0, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(cs_hsm_keygen(f->h, labels[i], algs[i], NULL),
		    CS_OK);
	}
	/* A session of our own; the application's login covers it. */
	assert_int_equal(t_p11->C_OpenSession(t_slot(), CKF_SERIAL_SESSION,
	    NULL, NULL, &s), CKR_OK);
	for (int i = 0; i < 2; i++) {
		CK_OBJECT_HANDLE priv, pub;

		priv = find_one(s, CKO_PRIVATE_KEY, labels[i]);
		pub  = find_one(s, CKO_PUBLIC_KEY, labels[i]);

		assert_true(attr_bool(s, priv, CKA_TOKEN));
		assert_true(attr_bool(s, priv, CKA_PRIVATE));
		assert_true(attr_bool(s, priv, CKA_SENSITIVE));
		assert_true(attr_bool(s, priv, CKA_ALWAYS_SENSITIVE));
		assert_false(attr_bool(s, priv, CKA_EXTRACTABLE));
		assert_true(attr_bool(s, priv, CKA_NEVER_EXTRACTABLE));
		assert_true(attr_bool(s, priv, CKA_SIGN));
		assert_false(attr_bool(s, priv, CKA_DECRYPT));
		assert_false(attr_bool(s, priv, CKA_UNWRAP));
		assert_false(attr_bool(s, priv, CKA_DERIVE));
		assert_true(attr_bool(s, pub, CKA_VERIFY));
		assert_false(attr_bool(s, pub, CKA_ENCRYPT));

		/* The private value cannot be read... */
		uint8_t      value[128];
		CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof(value)};
		assert_int_equal(t_p11->C_GetAttributeValue(s, priv, &a, 1),
		    CKR_ATTRIBUTE_SENSITIVE);
		/* ... nor made extractable again. */
		CK_BBOOL     yes = CK_TRUE;
		CK_ATTRIBUTE x   = {CKA_EXTRACTABLE, &yes, sizeof(yes)};
		assert_int_not_equal(t_p11->C_SetAttributeValue(s, priv, &x,
		    1), CKR_OK);
		assert_false(attr_bool(s, priv, CKA_EXTRACTABLE));

		/* Both halves carry the key id as CKA_ID. */
		struct cs_hsm_key k;
		uint8_t           id[32];
		CK_ATTRIBUTE      ida = {CKA_ID, id, sizeof(id)};
		assert_int_equal(cs_hsm_key(f->h, labels[i], &k), CS_OK);
		assert_int_equal(t_p11->C_GetAttributeValue(s, priv, &ida, 1),
		    CKR_OK);
		assert_int_equal(ida.ulValueLen, CS_KEY_ID_LEN);
		assert_memory_equal(id, k.key_id, CS_KEY_ID_LEN);
	}
	assert_int_equal(t_p11->C_CloseSession(s), CKR_OK);
}

/* ------------------------------------------------------------------ */
/* Signing                                                             */

static void
run_ok(char *const argv[], const char *expect)
{
	char out[4096];
	int  rv = tu_run(argv, out, sizeof(out));

	if (rv != 0 || strstr(out, expect) == NULL) {
		fprintf(stderr, "%s: exit %d: %s\n", argv[0], rv, out);
	}
	assert_int_equal(rv, 0);
	assert_non_null(strstr(out, expect));
}

static void
write_bytes(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static void
test_sign_verify(void **state)
{
	struct fx        *f   = *state;
	const char        msg[] = "record: uid=0011223344556677 order=42";
	struct cs_hsm_key k;
	uint8_t           digest[CS_SHA256_LEN], sig[CS_SIG_LEN], der[80];
	char              pem[512], pemp[512], msgp[512], sigp[512];
	size_t            der_len;

	open_ok(f, 0, 0);
	tu_path(msgp, sizeof(msgp), f->dir, "msg");
	write_bytes(msgp, msg, strlen(msg));
	tu_path(pemp, sizeof(pemp), f->dir, "pub.pem");
	tu_path(sigp, sizeof(sigp), f->dir, "sig");

	/* P-256: wolfCrypt, then openssl with the exported PEM. */
	assert_int_equal(cs_hsm_keygen(f->h, "sign-p256", CS_ALG_P256, &k),
	    CS_OK);
	assert_int_equal(cs_sha256(msg, strlen(msg), digest), CS_OK);
	assert_int_equal(cs_hsm_sign(f->h, "sign-p256", CS_ALG_P256, digest,
	    sizeof(digest), sig), CS_OK);
	assert_int_equal(cs_verify(CS_ALG_P256, k.pub, k.pub_len, msg,
	    strlen(msg), sig), CS_OK);
	assert_int_equal(cs_pem_encode("PUBLIC KEY", k.spki, k.spki_len, pem,
	    sizeof(pem)), CS_OK);
	tu_write_file(pemp, pem);
	assert_int_equal(cs_ecdsa_raw_to_der(sig, der, sizeof(der),
	    &der_len), CS_OK);
	write_bytes(sigp, der, der_len);
	char *dgst[] = {"openssl", "dgst", "-sha256", "-verify", pemp,
	    "-signature", sigp, msgp, NULL};
	run_ok(dgst, "Verified OK");
	/* Any signature once: also with CS_ALG_NONE for "whatever it is". */
	assert_int_equal(cs_hsm_sign(f->h, "sign-p256", CS_ALG_NONE, digest,
	    sizeof(digest), sig), CS_OK);
	sig[5] ^= 0x10;
	assert_int_equal(cs_verify(CS_ALG_P256, k.pub, k.pub_len, msg,
	    strlen(msg), sig), CS_ECRYPTO);

	/* Ed25519: the message itself. */
	assert_int_equal(cs_hsm_keygen(f->h, "sign-ed", CS_ALG_ED25519, &k),
	    CS_OK);
	assert_int_equal(cs_hsm_sign(f->h, "sign-ed", CS_ALG_ED25519,
	    (const uint8_t *)msg, strlen(msg), sig), CS_OK);
	assert_int_equal(cs_verify(CS_ALG_ED25519, k.pub, k.pub_len, msg,
	    strlen(msg), sig), CS_OK);
	assert_int_equal(cs_pem_encode("PUBLIC KEY", k.spki, k.spki_len, pem,
	    sizeof(pem)), CS_OK);
	tu_write_file(pemp, pem);
	write_bytes(sigp, sig, sizeof(sig));
	char *pkeyutl[] = {"openssl", "pkeyutl", "-verify", "-pubin",
	    "-inkey", pemp, "-rawin", "-in", msgp, "-sigfile", sigp, NULL};
	run_ok(pkeyutl, "Signature Verified Successfully");
}

static void
test_sign_bad_input(void **state)
{
	struct fx        *f = *state;
	struct cs_hsm_key p, e;
	uint8_t           digest[CS_SHA256_LEN] = {1}, sig[CS_SIG_LEN];

	open_ok(f, 0, 0);
	assert_int_equal(cs_hsm_keygen(f->h, "p", CS_ALG_P256, &p), CS_OK);
	assert_int_equal(cs_hsm_keygen(f->h, "e", CS_ALG_ED25519, &e), CS_OK);

	/* Unknown key, wrong algorithm either way, wrong digest length. */
	assert_int_equal(cs_hsm_sign(f->h, "nope", CS_ALG_NONE, digest,
	    sizeof(digest), sig), CS_ENOENT);
	assert_int_equal(cs_hsm_sign(f->h, "p", CS_ALG_ED25519, digest,
	    sizeof(digest), sig), CS_EINVAL);
	assert_int_equal(cs_hsm_sign(f->h, "e", CS_ALG_P256, digest,
	    sizeof(digest), sig), CS_EINVAL);
	assert_int_equal(cs_hsm_sign(f->h, "p", CS_ALG_P256, digest,
	    sizeof(digest) - 1, sig), CS_EINVAL);
	assert_int_equal(cs_hsm_sign(f->h, "p", CS_ALG_P256, digest, 48,
	    sig), CS_EINVAL);
	assert_int_equal(cs_hsm_sign(f->h, "", CS_ALG_P256, digest,
	    sizeof(digest), sig), CS_EINVAL);
	assert_int_equal(cs_hsm_sign(f->h, NULL, CS_ALG_P256, digest,
	    sizeof(digest), sig), CS_EINVAL);
	assert_int_equal(cs_hsm_sign(f->h, "p", CS_ALG_P256, NULL,
	    sizeof(digest), sig), CS_EINVAL);
	assert_int_equal(cs_hsm_sign(NULL, "p", CS_ALG_P256, digest,
	    sizeof(digest), sig), CS_EINVAL);

	/* None of it hurt: both keys still sign. */
	sign_verify(f->h, &p, "after bad input");
	sign_verify(f->h, &e, "after bad input");
}

struct signer {
	pthread_t                tid;
	cs_hsm                  *h;
	const struct cs_hsm_key *key;
	unsigned                 n; /* signatures to make; 0: until stop */
	atomic_bool             *stop;
	unsigned                 ok, ehsm, other, verified;
	int                      last;
};

static void *
signer_run(void *arg)
{
	struct signer *s = arg;
	char           msg[64];

	for (unsigned i = 0; s->n == 0 || i < s->n; i++) {
		uint8_t digest[CS_SHA256_LEN], sig[CS_SIG_LEN];
		int     rv;

		if (s->stop != NULL && atomic_load(s->stop)) {
			break;
		}
		snprintf(msg, sizeof(msg), "uid %p #%u", (void *)s, i);
		if (s->key->alg == CS_ALG_P256) {
			cs_sha256(msg, strlen(msg), digest);
			rv = cs_hsm_sign(s->h, s->key->label, s->key->alg,
			    digest, sizeof(digest), sig);
		} else {
			rv = cs_hsm_sign(s->h, s->key->label, s->key->alg,
			    (const uint8_t *)msg, strlen(msg), sig);
		}
		s->last = rv;
		if (rv == CS_OK) {
			s->ok++;
			/* Verifying every one would measure wolfCrypt. */
			if (i % 16 == 0 &&
			    cs_verify(s->key->alg, s->key->pub,
				s->key->pub_len, msg, strlen(msg), sig) ==
				CS_OK) {
				s->verified++;
			}
		} else if (rv == CS_EHSM) {
			s->ehsm++;
		} else {
			s->other++;
			fprintf(stderr, "signer: unexpected %s\n",
			    cs_errname(rv));
		}
	}
	return NULL;
}

static void
test_concurrent(void **state)
{
	struct fx        *f = *state;
	struct cs_hsm_key keys[2];
	struct signer     s[6];

	/* More threads than sessions: borrowers wait for each other. */
	open_ok(f, 2, 0);
	assert_int_equal(cs_hsm_keygen(f->h, "c-p256", CS_ALG_P256, &keys[0]),
	    CS_OK);
	assert_int_equal(cs_hsm_keygen(f->h, "c-ed", CS_ALG_ED25519,
	    &keys[1]), CS_OK);
	for (int i = 0; i < 6; i++) {
		s[i] = (struct signer){.h = f->h, .key = &keys[i % 2],
		    .n = 200};
		assert_int_equal(pthread_create(&s[i].tid, NULL, signer_run,
		    &s[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		assert_int_equal(pthread_join(s[i].tid, NULL), 0);
		assert_int_equal(s[i].ok, 200);
		assert_int_equal(s[i].verified, 200 / 16 + 1);
	}
}

/* C_Sign that takes t_slow_ms; t_in_sign says a call has started. */
static atomic_uint t_slow_ms;
static atomic_bool t_in_sign;

static CK_RV
slow_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len,
    CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	unsigned        ms = atomic_load(&t_slow_ms);
	struct timespec ts = {0, (long)ms * 1000000L};

	atomic_store(&t_in_sign, true);
	nanosleep(&ts, NULL);
	return t_orig.C_Sign(s, data, len, sig, sig_len);
}

static void
test_pool_timeout(void **state)
{
	struct fx        *f = *state;
	struct cs_hsm_key k;
	struct signer     slow;
	uint8_t           digest[CS_SHA256_LEN] = {2}, sig[CS_SIG_LEN];

	/* One session, 50 ms patience, and an HSM that takes 500 ms. */
	open_ok(f, 1, 50);
	assert_int_equal(cs_hsm_keygen(f->h, "t", CS_ALG_P256, &k), CS_OK);
	atomic_store(&t_slow_ms, 500);
	atomic_store(&t_in_sign, false);
	t_p11->C_Sign = slow_sign;
	slow = (struct signer){.h = f->h, .key = &k, .n = 1};
	assert_int_equal(pthread_create(&slow.tid, NULL, signer_run, &slow),
	    0);
	while (!atomic_load(&t_in_sign)) {
		usleep(1000);
	}
	assert_int_equal(cs_hsm_sign(f->h, "t", CS_ALG_P256, digest,
	    sizeof(digest), sig), CS_ETIMEDOUT);
	assert_int_equal(pthread_join(slow.tid, NULL), 0);
	assert_int_equal(slow.ok, 1);
	*t_p11 = t_orig;
	sign_verify(f->h, &k, "the session came back");
}

/* ------------------------------------------------------------------ */
/* Recovery                                                            */

static void
test_recover_sessions_closed(void **state)
{
	struct fx        *f = *state;
	struct cs_hsm_key p, e, k;

	open_ok(f, 2, 0);
	assert_int_equal(cs_hsm_keygen(f->h, "r-p256", CS_ALG_P256, &p),
	    CS_OK);
	assert_int_equal(cs_hsm_keygen(f->h, "r-ed", CS_ALG_ED25519, &e),
	    CS_OK);
	sign_verify(f->h, &p, "before");
	sign_verify(f->h, &e, "before");

	for (int round = 0; round < 3; round++) {
		/* Every session of the application goes, and with the last
		 * one the login and (in SoftHSM) the object handles. */
		assert_int_equal(t_p11->C_CloseAllSessions(t_slot()), CKR_OK);
		/* The stale handle is retried once after recovery. */
		sign_verify(f->h, &p, "after the sessions were closed");
		sign_verify(f->h, &e, "after the sessions were closed");
	}
	assert_int_equal(t_p11->C_CloseAllSessions(t_slot()), CKR_OK);
	assert_int_equal(cs_hsm_key(f->h, "r-p256", &k), CS_OK);
	assert_memory_equal(&k, &p, sizeof(k));
}

/*
 * A token that refuses the PIN when a recovery logs in again (its PIN was
 * changed or locked while the authority ran): exactly one login, the
 * refusal sticks (cs_hsm_pin_refused, which the daemon turns into exit
 * 78), and no later call tries the PIN again.
 */
static void
test_recover_pin_refused(void **state)
{
	struct fx        *f = *state;
	struct cs_hsm_key p;
	uint8_t           digest[CS_SHA256_LEN] = {1}, sig[CS_SIG_LEN];

	open_ok(f, 2, 0);
	assert_int_equal(cs_hsm_keygen(f->h, "pin-p256", CS_ALG_P256, &p),
	    CS_OK);
	sign_verify(f->h, &p, "before");
	assert_false(cs_hsm_pin_refused(f->h));
	atomic_store(&t_logins, 0);
	t_p11->C_Login = locked_login;
	assert_int_equal(t_p11->C_CloseAllSessions(t_slot()), CKR_OK);
	for (int i = 0; i < 20; i++) {
		assert_int_not_equal(cs_hsm_sign(f->h, "pin-p256", CS_ALG_P256,
		    digest, sizeof(digest), sig), CS_OK);
	}
	assert_true(cs_hsm_pin_refused(f->h));
	assert_int_equal(atomic_load(&t_logins), 1);
	*t_p11 = t_orig;
}

/*
 * SoftHSM 2.6.1 is not safe against a session being closed while another
 * thread is inside a call on it: C_Sign then uses freed memory (seen as a
 * crash in C_Sign under this very test).  A real HSM closes a session
 * atomically with respect to calls on it; these wrappers give SoftHSM that
 * property, so that sessions can be invalidated between any two calls of
 * the shim's threads.  Calls take the read side, the outside
 * C_CloseAllSessions the write side.  (The shim itself never closes a
 * session that is in use: its recovery waits for calls in flight.)
 */
static pthread_rwlock_t t_calls;

static CK_RV
g_sign_init(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	pthread_rwlock_rdlock(&t_calls);
	CK_RV rv = t_orig.C_SignInit(s, m, k);
	pthread_rwlock_unlock(&t_calls);
	return rv;
}

static CK_RV
g_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR sig,
    CK_ULONG_PTR sig_len)
{
	pthread_rwlock_rdlock(&t_calls);
	CK_RV rv = t_orig.C_Sign(s, d, n, sig, sig_len);
	pthread_rwlock_unlock(&t_calls);
	return rv;
}

static CK_RV
g_find_init(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	pthread_rwlock_rdlock(&t_calls);
	CK_RV rv = t_orig.C_FindObjectsInit(s, t, n);
	pthread_rwlock_unlock(&t_calls);
	return rv;
}

static CK_RV
g_find(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR o, CK_ULONG max,
    CK_ULONG_PTR n)
{
	pthread_rwlock_rdlock(&t_calls);
	CK_RV rv = t_orig.C_FindObjects(s, o, max, n);
	pthread_rwlock_unlock(&t_calls);
	return rv;
}

static CK_RV
g_find_final(CK_SESSION_HANDLE s)
{
	pthread_rwlock_rdlock(&t_calls);
	CK_RV rv = t_orig.C_FindObjectsFinal(s);
	pthread_rwlock_unlock(&t_calls);
	return rv;
}

static CK_RV
g_get_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
    CK_ULONG n)
{
	pthread_rwlock_rdlock(&t_calls);
	CK_RV rv = t_orig.C_GetAttributeValue(s, o, t, n);
	pthread_rwlock_unlock(&t_calls);
	return rv;
}

static CK_RV
g_login(CK_SESSION_HANDLE s, CK_USER_TYPE who, CK_UTF8CHAR_PTR pin,
    CK_ULONG n)
{
	pthread_rwlock_rdlock(&t_calls);
	CK_RV rv = t_orig.C_Login(s, who, pin, n);
	pthread_rwlock_unlock(&t_calls);
	return rv;
}

static CK_RV
g_close_all(CK_SLOT_ID slot)
{
	pthread_rwlock_wrlock(&t_calls);
	CK_RV rv = t_orig.C_CloseAllSessions(slot);
	pthread_rwlock_unlock(&t_calls);
	return rv;
}

static void
guard_calls(void)
{
	pthread_rwlockattr_t a;

	/* Writer preference, or four busy signers starve the closer. */
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	assert_int_equal(pthread_rwlock_init(&t_calls, &a), 0);
	pthread_rwlockattr_destroy(&a);
	t_p11->C_SignInit          = g_sign_init;
	t_p11->C_Sign              = g_sign;
	t_p11->C_FindObjectsInit   = g_find_init;
	t_p11->C_FindObjects       = g_find;
	t_p11->C_FindObjectsFinal  = g_find_final;
	t_p11->C_GetAttributeValue = g_get_attr;
	t_p11->C_Login             = g_login;
	t_p11->C_CloseAllSessions  = g_close_all;
}

static void
test_recover_under_load(void **state)
{
	struct fx        *f = *state;
	struct cs_hsm_key keys[2];
	struct signer     s[4];
	atomic_bool       stop = false;

	open_ok(f, 2, 0);
	guard_calls();
	assert_int_equal(cs_hsm_keygen(f->h, "l-p256", CS_ALG_P256, &keys[0]),
	    CS_OK);
	assert_int_equal(cs_hsm_keygen(f->h, "l-ed", CS_ALG_ED25519,
	    &keys[1]), CS_OK);
	for (int i = 0; i < 4; i++) {
		s[i] = (struct signer){.h = f->h, .key = &keys[i % 2],
		    .stop = &stop};
		assert_int_equal(pthread_create(&s[i].tid, NULL, signer_run,
		    &s[i]), 0);
	}
	for (int i = 0; i < 10; i++) {
		usleep(50 * 1000);
		assert_int_equal(t_p11->C_CloseAllSessions(t_slot()), CKR_OK);
	}
	usleep(100 * 1000);
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(s[i].tid, NULL), 0);
		/* Failures are CS_EHSM, never anything else; the last call
		 * of every thread succeeded again. */
		assert_int_equal(s[i].other, 0);
		assert_true(s[i].ok > 0);
		assert_int_equal(s[i].last, CS_OK);
	}
	sign_verify(f->h, &keys[0], "after the storm");
	sign_verify(f->h, &keys[1], "after the storm");
	cs_hsm_close(f->h);
	f->h = NULL;
	*t_p11 = t_orig;
	pthread_rwlock_destroy(&t_calls);
}

/*
 * C_Sign that fails once with t_fault.  Like a real failing C_Sign it
 * ends the signing operation (the real call runs, its result is dropped).
 */
static atomic_ulong t_fault;

static CK_RV
faulty_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len,
    CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	CK_RV    fault = atomic_exchange(&t_fault, CKR_OK);
	CK_BYTE  scratch[128];
	CK_ULONG n = sizeof(scratch);

	if (fault != CKR_OK) {
		t_orig.C_Sign(s, data, len, scratch, &n);
		return fault;
	}
	return t_orig.C_Sign(s, data, len, sig, sig_len);
}

static void
test_device_removed(void **state)
{
	struct fx        *f = *state;
	struct cs_hsm_key k;
	uint8_t           digest[CS_SHA256_LEN] = {3}, sig[CS_SIG_LEN];
	static const CK_RV faults[] = {CKR_DEVICE_REMOVED,
	    CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_ERROR};

	open_ok(f, 2, 0);
	assert_int_equal(cs_hsm_keygen(f->h, "d", CS_ALG_P256, &k), CS_OK);
	t_p11->C_Sign = faulty_sign;
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		/* The failing call reports it; the next one finds the pool
		 * re-opened. */
		atomic_store(&t_fault, faults[i]);
		assert_int_equal(cs_hsm_sign(f->h, "d", CS_ALG_P256, digest,
		    sizeof(digest), sig), CS_EHSM);
		sign_verify(f->h, &k, "after the fault");
	}
	/* An error that is about the request, not the token: reported,
	 * and no recovery needed. */
	atomic_store(&t_fault, CKR_FUNCTION_FAILED);
	assert_int_equal(cs_hsm_sign(f->h, "d", CS_ALG_P256, digest,
	    sizeof(digest), sig), CS_EHSM);
	sign_verify(f->h, &k, "after the fault");
}

/* The one token directory under dir/tokens. */
static void
token_dir(const struct fx *f, char *out, size_t len)
{
	char           tokens[512];
	DIR           *d;
	struct dirent *de;

	tu_path(tokens, sizeof(tokens), f->dir, "tokens");
	assert_non_null(d = opendir(tokens));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.') {
			tu_path(out, len, tokens, de->d_name);
			closedir(d);
			return;
		}
	}
	closedir(d);
	fail_msg("no token directory in %s", tokens);
}

static void
test_token_goes_away(void **state)
{
	struct fx        *f = *state;
	struct cs_hsm_key k, e;
	struct signer     s[2];
	atomic_bool       stop = false;
	char              tok[512], away[512];
	uint8_t           digest[CS_SHA256_LEN] = {4}, sig[CS_SIG_LEN];

	open_ok(f, 2, 500);
	assert_int_equal(cs_hsm_keygen(f->h, "g", CS_ALG_P256, &k), CS_OK);
	assert_int_equal(cs_hsm_keygen(f->h, "g-ed", CS_ALG_ED25519, &e),
	    CS_OK);
	for (int i = 0; i < 2; i++) {
		s[i] = (struct signer){.h = f->h, .key = i == 0 ? &k : &e,
		    .stop = &stop};
		assert_int_equal(pthread_create(&s[i].tid, NULL, signer_run,
		    &s[i]), 0);
	}
	usleep(100 * 1000);

	/*
	 * The token leaves while two threads sign: SoftHSM notices that its
	 * directory is gone (stale object handles), and after C_Finalize +
	 * C_Initialize it no longer lists the token.  (Moving the whole
	 * token store away instead makes SoftHSM 2.6.1's C_Initialize fail,
	 * after which that process never sees a token again.)
	 */
	token_dir(f, tok, sizeof(tok));
	tu_path(away, sizeof(away), f->dir, "away");
	assert_int_equal(rename(tok, away), 0);
	usleep(300 * 1000);
	assert_int_equal(cs_hsm_sign(f->h, "g", CS_ALG_P256, digest,
	    sizeof(digest), sig), CS_EHSM);
	assert_int_equal(cs_hsm_key(f->h, "g", &k), CS_EHSM);
	for (int i = 0; i < 2; i++) {
		assert_true(s[i].ehsm > 0);
	}

	/* Back it comes, and signing resumes without a restart, within the
	 * shim's longest pause between attempts (1 s). */
	assert_int_equal(rename(away, tok), 0);
	struct timespec t0, t1;
	int             rv;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		usleep(10 * 1000);
		rv = cs_hsm_sign(f->h, "g", CS_ALG_P256, digest,
		    sizeof(digest), sig);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (rv != CS_OK && t1.tv_sec - t0.tv_sec < 5);
	assert_int_equal(rv, CS_OK);
	usleep(100 * 1000);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(s[i].tid, NULL), 0);
		assert_int_equal(s[i].other, 0);
		assert_int_equal(s[i].last, CS_OK);
	}
	assert_int_equal(cs_hsm_key(f->h, "g", &k), CS_OK);
	sign_verify(f->h, &k, "the token is back");
	sign_verify(f->h, &e, "the token is back");
}

/* ------------------------------------------------------------------ */
/* Secret keys: the firmware key                                       */

static void
test_secret_seal(void **state)
{
	struct fx           *f = *state;
	struct cs_hsm_secret info;
	CK_SESSION_HANDLE    s;
	CK_OBJECT_HANDLE     obj;
	uint8_t              pt[32], sealed[CS_HSM_SEALED_MAX],
	    again[CS_HSM_SEALED_MAX], out[CS_HSM_SEAL_MAX];
	const uint8_t        aad[] = "order-1 v1";
	size_t               n, n2, m;

	open_ok(f, 0, 0);
	assert_int_equal(cs_hsm_secret_keygen(f->h, "fw-key"), CS_OK);
	/* A label names one key for life, of any kind. */
	assert_int_equal(cs_hsm_secret_keygen(f->h, "fw-key"), CS_EEXIST);
	assert_int_equal(cs_hsm_keygen(f->h, "sig", CS_ALG_P256, NULL), CS_OK);
	assert_int_equal(cs_hsm_secret_keygen(f->h, "sig"), CS_EEXIST);
	assert_int_equal(cs_hsm_secret_keygen(f->h, ""), CS_EINVAL);

	assert_int_equal(cs_hsm_secret_info(f->h, "fw-key", &info), CS_OK);
	assert_true(info.sensitive);
	assert_false(info.extractable);
	assert_false(info.value_readable);
	assert_int_equal(info.key_len, 32);
	assert_int_equal(cs_hsm_secret_info(f->h, "nope", &info), CS_ENOENT);
	/* A signing key is not a secret key. */
	assert_int_equal(cs_hsm_secret_info(f->h, "sig", &info), CS_ENOENT);

	/* Attributes as seen through a session of our own. */
	assert_int_equal(t_p11->C_OpenSession(t_slot(), CKF_SERIAL_SESSION,
	    NULL, NULL, &s), CKR_OK);
	obj = find_one(s, CKO_SECRET_KEY, "fw-key");
	assert_true(attr_bool(s, obj, CKA_TOKEN));
	assert_true(attr_bool(s, obj, CKA_PRIVATE));
	assert_true(attr_bool(s, obj, CKA_SENSITIVE));
	assert_false(attr_bool(s, obj, CKA_EXTRACTABLE));
	assert_true(attr_bool(s, obj, CKA_NEVER_EXTRACTABLE));
	assert_true(attr_bool(s, obj, CKA_ENCRYPT));
	assert_true(attr_bool(s, obj, CKA_DECRYPT));
	assert_false(attr_bool(s, obj, CKA_WRAP));
	assert_false(attr_bool(s, obj, CKA_UNWRAP));
	uint8_t      value[64];
	CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof(value)};
	assert_int_equal(t_p11->C_GetAttributeValue(s, obj, &a, 1),
	    CKR_ATTRIBUTE_SENSITIVE);
	CK_BBOOL     yes = CK_TRUE;
	CK_ATTRIBUTE x   = {CKA_EXTRACTABLE, &yes, sizeof(yes)};
	assert_int_not_equal(t_p11->C_SetAttributeValue(s, obj, &x, 1),
	    CKR_OK);
	assert_int_equal(t_p11->C_CloseSession(s), CKR_OK);

	/* Roundtrip; two seals of the same bytes differ (random IV). */
	for (size_t i = 0; i < sizeof(pt); i++) {
		pt[i] = (uint8_t)(i * 7 + 1);
	}
	assert_int_equal(cs_hsm_seal(f->h, "fw-key", aad, sizeof(aad), pt,
	    sizeof(pt), sealed, &n), CS_OK);
	assert_int_equal(n, sizeof(pt) + CS_HSM_SEAL_OVERHEAD);
	assert_null(memmem(sealed, n, pt, 8));
	assert_int_equal(cs_hsm_seal(f->h, "fw-key", aad, sizeof(aad), pt,
	    sizeof(pt), again, &n2), CS_OK);
	assert_int_equal(n2, n);
	assert_memory_not_equal(sealed, again, n);
	assert_int_equal(cs_hsm_unseal(f->h, "fw-key", aad, sizeof(aad),
	    sealed, n, out, &m), CS_OK);
	assert_int_equal(m, sizeof(pt));
	assert_memory_equal(out, pt, sizeof(pt));

	/* Tampering anywhere, another AAD, truncation: refused. */
	for (size_t i = 0; i < n; i += 5) {
		memcpy(again, sealed, n);
		again[i] ^= 0x01;
		assert_int_equal(cs_hsm_unseal(f->h, "fw-key", aad,
		    sizeof(aad), again, n, out, &m), CS_ECRYPTO);
	}
	assert_int_equal(cs_hsm_unseal(f->h, "fw-key", aad, sizeof(aad) - 1,
	    sealed, n, out, &m), CS_ECRYPTO);
	assert_int_equal(cs_hsm_unseal(f->h, "fw-key", aad, sizeof(aad),
	    sealed, n - 1, out, &m), CS_ECRYPTO);
	assert_int_equal(cs_hsm_unseal(f->h, "fw-key", aad, sizeof(aad),
	    sealed, CS_HSM_SEAL_OVERHEAD, out, &m), CS_ECRYPTO);
	/* A second key cannot open the first one's seal. */
	assert_int_equal(cs_hsm_secret_keygen(f->h, "fw-key-2"), CS_OK);
	assert_int_equal(cs_hsm_unseal(f->h, "fw-key-2", aad, sizeof(aad),
	    sealed, n, out, &m), CS_ECRYPTO);
	/* The session pool is still fine after refusals. */
	assert_int_equal(cs_hsm_unseal(f->h, "fw-key", aad, sizeof(aad),
	    sealed, n, out, &m), CS_OK);
	assert_int_equal(cs_hsm_seal(f->h, "nope", NULL, 0, pt, sizeof(pt),
	    sealed, &n), CS_ENOENT);
	assert_int_equal(cs_hsm_seal(f->h, "sig", NULL, 0, pt, sizeof(pt),
	    sealed, &n), CS_ENOENT);
	assert_int_equal(cs_hsm_seal(f->h, "fw-key", NULL, 0, pt,
	    CS_HSM_SEAL_MAX + 1, sealed, &n), CS_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_open_close),
	    T(test_open_bad_module),
	    T(test_open_bad_token),
	    T(test_open_bad_pin),
	    T(test_open_locked_pin),
	    T(test_keygen_list),
	    T(test_key_attributes),
	    T(test_sign_verify),
	    T(test_sign_bad_input),
	    T(test_concurrent),
	    T(test_pool_timeout),
	    T(test_recover_sessions_closed),
	    T(test_recover_pin_refused),
	    T(test_recover_under_load),
	    T(test_device_removed),
	    T(test_token_goes_away),
	    T(test_secret_seal),
#undef T
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
