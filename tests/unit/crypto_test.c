/*
 * crypto_test.c - cs_crypto against an independent implementation: keys,
 * public keys, digests and signatures made by the openssl command line
 * tool are decoded, re-encoded byte for byte, verified with wolfCrypt,
 * and our DER signatures and PEM files are checked by openssl again.
 */
#include "cs_crypto.h"
#include "cs_err.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct fx {
	char *dir;
	char  path[4][512];
};

/* Run a command; fail the test with its output unless it exits 0. */
static void
run_ok(char *const argv[])
{
	char out[8192];
	int  rv = tu_run(argv, out, sizeof(out));

	if (rv != 0) {
		fprintf(stderr, "%s failed (%d): %s\n", argv[0], rv, out);
	}
	assert_int_equal(rv, 0);
}

/* Read a whole (small) file into buf; returns its length. */
static size_t
read_file(const char *path, uint8_t *buf, size_t len)
{
	FILE  *fp = fopen(path, "rb");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, len, fp);
	assert_true(n < len); /* the buffer was big enough */
	fclose(fp);
	return n;
}

static void
write_bytes(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = tu_tmpdir();
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

/* An openssl key of alg in dir/<name>.pem, its SPKI DER in <name>.der,
 * its public PEM in <name>.pub.pem. */
static void
openssl_key(struct fx *f, cs_alg alg, const char *name)
{
	char key[512], der[512], pub[512], file[64];

	snprintf(file, sizeof(file), "%s.pem", name);
	tu_path(key, sizeof(key), f->dir, file);
	snprintf(file, sizeof(file), "%s.der", name);
	tu_path(der, sizeof(der), f->dir, file);
	snprintf(file, sizeof(file), "%s.pub.pem", name);
	tu_path(pub, sizeof(pub), f->dir, file);
	if (alg == CS_ALG_P256) {
		char *gen[] = {"openssl", "genpkey", "-algorithm", "EC",
		    "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key, NULL};
		run_ok(gen);
	} else {
		char *gen[] = {"openssl", "genpkey", "-algorithm", "ed25519",
		    "-out", key, NULL};
		run_ok(gen);
	}
	char *todef[] = {"openssl", "pkey", "-in", key, "-pubout", "-outform",
	    "DER", "-out", der, NULL};
	run_ok(todef);
	char *topem[] = {"openssl", "pkey", "-in", key, "-pubout", "-out",
	    pub, NULL};
	run_ok(topem);
}

static void
spki_round_trip(void **state, cs_alg alg)
{
	struct fx *f = *state;
	uint8_t    der[256], again[CS_SPKI_MAX], pub[CS_P256_POINT_LEN];
	char       pem[512], pem2[512], path[512];
	size_t     n, pub_len, len;
	cs_alg     got;

	openssl_key(f, alg, "k");
	n = read_file(tu_path(path, sizeof(path), f->dir, "k.der"), der,
	    sizeof(der));
	assert_int_equal(n, alg == CS_ALG_P256 ? 91 : 44);
	assert_int_equal(cs_spki_decode(der, n, &got, pub, &pub_len), CS_OK);
	assert_int_equal(got, alg);
	assert_int_equal(pub_len, alg == CS_ALG_P256 ? CS_P256_POINT_LEN
	                                              : CS_ED25519_PUB_LEN);
	assert_int_equal(cs_spki_encode(alg, pub, pub_len, again,
	    sizeof(again), &len), CS_OK);
	assert_int_equal(len, n);
	assert_memory_equal(again, der, n);

	/* PEM armour is byte-identical to openssl's. */
	assert_int_equal(cs_pem_encode("PUBLIC KEY", again, len, pem,
	    sizeof(pem)), CS_OK);
	n = read_file(tu_path(path, sizeof(path), f->dir, "k.pub.pem"),
	    (uint8_t *)pem2, sizeof(pem2) - 1);
	pem2[n] = '\0';
	assert_string_equal(pem, pem2);
	assert_int_equal(cs_pem_encode("PUBLIC KEY", again, len, pem, 100),
	    CS_ETOOBIG);

	/* Too small an output buffer. */
	assert_int_equal(cs_spki_encode(alg, pub, pub_len, again, len - 1,
	    &len), CS_ETOOBIG);
}

static void
test_spki_p256(void **state)
{
	spki_round_trip(state, CS_ALG_P256);
}

static void
test_spki_ed25519(void **state)
{
	spki_round_trip(state, CS_ALG_ED25519);
}

static void
test_spki_rejects(void **state)
{
	struct fx *f = *state;
	uint8_t    der[256], bad[256], pub[CS_P256_POINT_LEN], out[128];
	char       path[512];
	size_t     n, pub_len, len;
	cs_alg     alg;

	openssl_key(f, CS_ALG_P256, "k");
	n = read_file(tu_path(path, sizeof(path), f->dir, "k.der"), der,
	    sizeof(der));
	/* Truncated, one byte too many, a changed OID, a compressed point. */
	assert_int_equal(cs_spki_decode(der, n - 1, &alg, pub, &pub_len),
	    CS_EINVAL);
	memcpy(bad, der, n);
	bad[n] = 0;
	assert_int_equal(cs_spki_decode(bad, n + 1, &alg, pub, &pub_len),
	    CS_EINVAL);
	bad[20] ^= 1; /* inside the curve OID */
	assert_int_equal(cs_spki_decode(bad, n, &alg, pub, &pub_len),
	    CS_EINVAL);
	memcpy(bad, der, n);
	bad[26] = 0x02;
	assert_int_equal(cs_spki_decode(bad, n, &alg, pub, &pub_len),
	    CS_EINVAL);
	assert_int_equal(cs_spki_decode(der, 0, &alg, pub, &pub_len),
	    CS_EINVAL);

	/* Raw keys of the wrong length or form. */
	memcpy(pub, der + 26, CS_P256_POINT_LEN);
	assert_int_equal(cs_spki_encode(CS_ALG_P256, pub, 64, out,
	    sizeof(out), &len), CS_EINVAL);
	assert_int_equal(cs_spki_encode(CS_ALG_ED25519, pub, 33, out,
	    sizeof(out), &len), CS_EINVAL);
	assert_int_equal(cs_spki_encode(CS_ALG_NONE, pub, 32, out,
	    sizeof(out), &len), CS_EINVAL);
	pub[0] = 0x03;
	assert_int_equal(cs_spki_encode(CS_ALG_P256, pub, CS_P256_POINT_LEN,
	    out, sizeof(out), &len), CS_EINVAL);
}

/* Parse the hex digest openssl dgst -r prints first. */
static void
parse_hex(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void
test_key_id(void **state)
{
	struct fx *f = *state;
	const char *names[] = {"p", "e"};
	cs_alg      algs[]  = {CS_ALG_P256, CS_ALG_ED25519};

	for (int i = 0; i < 2; i++) {
		uint8_t der[256], id[CS_KEY_ID_LEN], want[CS_KEY_ID_LEN];
		char    path[512], file[16], out[1024];
		size_t  n;

		openssl_key(f, algs[i], names[i]);
		snprintf(file, sizeof(file), "%s.der", names[i]);
		tu_path(path, sizeof(path), f->dir, file);
		n = read_file(path, der, sizeof(der));
		char *dgst[] = {"openssl", "dgst", "-sha256", "-r", path,
		    NULL};
		assert_int_equal(tu_run(dgst, out, sizeof(out)), 0);
		parse_hex(out, want, sizeof(want));
		assert_int_equal(cs_key_id(der, n, id), CS_OK);
		assert_memory_equal(id, want, sizeof(want));
	}
	uint8_t id[CS_KEY_ID_LEN];
	assert_int_equal(cs_key_id(NULL, 10, id), CS_EINVAL);
	assert_int_equal(cs_key_id(id, 0, id), CS_EINVAL);
}

static void
test_sha256_vectors(void **state)
{
	/* FIPS 180-2 examples. */
	static const uint8_t abc[CS_SHA256_LEN] = {0xba, 0x78, 0x16, 0xbf,
	    0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
	    0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10,
	    0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	static const uint8_t empty[CS_SHA256_LEN] = {0xe3, 0xb0, 0xc4, 0x42,
	    0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9,
	    0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95,
	    0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
	uint8_t d[CS_SHA256_LEN];

	(void)state;
	assert_int_equal(cs_sha256("abc", 3, d), CS_OK);
	assert_memory_equal(d, abc, sizeof(d));
	assert_int_equal(cs_sha256(NULL, 0, d), CS_OK);
	assert_memory_equal(d, empty, sizeof(d));
	assert_int_equal(cs_sha256(NULL, 1, d), CS_EINVAL);
}

/* DER ECDSA-Sig-Value (as openssl writes it) to raw r||s. */
static void
der_to_raw(const uint8_t *der, size_t n, uint8_t raw[CS_SIG_LEN])
{
	size_t p = 2;

	assert_true(n >= 8 && der[0] == 0x30 && der[1] == n - 2);
	memset(raw, 0, CS_SIG_LEN);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(der[p], 0x02);
		size_t len = der[p + 1];
		const uint8_t *v = der + p + 2;
		p += 2 + len;
		assert_true(p <= n);
		while (len > 32 && *v == 0) {
			v++;
			len--;
		}
		assert_true(len <= 32);
		memcpy(raw + 32 * i + (32 - len), v, len);
	}
	assert_int_equal(p, n);
}

static void
test_verify_p256(void **state)
{
	struct fx  *f = *state;
	const char  msg[] = "device record 0001";
	uint8_t     der[256], sig_der[128], ours[128], raw[CS_SIG_LEN];
	uint8_t     pub[CS_P256_POINT_LEN];
	char        path[512], msgp[512], sigp[512], oursp[512], out[1024];
	size_t      n, sn, on, pub_len;
	cs_alg      alg;

	openssl_key(f, CS_ALG_P256, "k");
	n = read_file(tu_path(path, sizeof(path), f->dir, "k.der"), der,
	    sizeof(der));
	assert_int_equal(cs_spki_decode(der, n, &alg, pub, &pub_len), CS_OK);
	tu_path(msgp, sizeof(msgp), f->dir, "msg");
	write_bytes(msgp, msg, strlen(msg));
	tu_path(path, sizeof(path), f->dir, "k.pem");
	tu_path(sigp, sizeof(sigp), f->dir, "sig.der");
	tu_path(oursp, sizeof(oursp), f->dir, "ours.der");

	/* Several signatures, so that r and s with the top bit set and
	 * (now and then) a leading zero byte come up. */
	for (int i = 0; i < 8; i++) {
		char *sign[] = {"openssl", "dgst", "-sha256", "-sign", path,
		    "-out", sigp, msgp, NULL};
		run_ok(sign);
		sn = read_file(sigp, sig_der, sizeof(sig_der));
		der_to_raw(sig_der, sn, raw);

		assert_int_equal(cs_verify(CS_ALG_P256, pub, pub_len, msg,
		    strlen(msg), raw), CS_OK);
		/* Our DER is openssl's, byte for byte (both minimal). */
		assert_int_equal(cs_ecdsa_raw_to_der(raw, ours, sizeof(ours),
		    &on), CS_OK);
		assert_int_equal(on, sn);
		assert_memory_equal(ours, sig_der, sn);
		write_bytes(oursp, ours, on);
		tu_path(path, sizeof(path), f->dir, "k.pub.pem");
		char *verify[] = {"openssl", "dgst", "-sha256", "-verify",
		    path, "-signature", oursp, msgp, NULL};
		assert_int_equal(tu_run(verify, out, sizeof(out)), 0);
		assert_non_null(strstr(out, "Verified OK"));
		tu_path(path, sizeof(path), f->dir, "k.pem");
	}

	/* A changed message, a changed signature, r = 0. */
	assert_int_equal(cs_verify(CS_ALG_P256, pub, pub_len, msg,
	    strlen(msg) - 1, raw), CS_ECRYPTO);
	raw[40] ^= 0x01;
	assert_int_equal(cs_verify(CS_ALG_P256, pub, pub_len, msg,
	    strlen(msg), raw), CS_ECRYPTO);
	memset(raw, 0, 32);
	assert_int_equal(cs_verify(CS_ALG_P256, pub, pub_len, msg,
	    strlen(msg), raw), CS_ECRYPTO);
	/* Malformed keys: wrong length, a point off the curve. */
	assert_int_equal(cs_verify(CS_ALG_P256, pub, 64, msg, strlen(msg),
	    raw), CS_EINVAL);
	pub[64] ^= 0x01;
	assert_int_equal(cs_verify(CS_ALG_P256, pub, pub_len, msg,
	    strlen(msg), raw), CS_EINVAL);
}

static void
test_raw_to_der_edges(void **state)
{
	uint8_t raw[CS_SIG_LEN], der[80];
	size_t  n;

	(void)state;
	/* r with two leading zero bytes, then the top bit set: the zeros go,
	 * one comes back to keep the INTEGER positive.  s = 1. */
	memset(raw, 0, sizeof(raw));
	memset(raw + 2, 0x80, 30);
	raw[63] = 0x01;
	assert_int_equal(cs_ecdsa_raw_to_der(raw, der, sizeof(der), &n),
	    CS_OK);
	static const uint8_t head[] = {0x30, 0x24, 0x02, 0x1f, 0x00, 0x80};
	assert_int_equal(n, 38);
	assert_memory_equal(der, head, sizeof(head));
	static const uint8_t tail[] = {0x02, 0x01, 0x01};
	assert_memory_equal(der + n - 3, tail, 3);

	/* Both halves with the top bit set: the longest form, 72 bytes. */
	memset(raw, 0xff, sizeof(raw));
	assert_int_equal(cs_ecdsa_raw_to_der(raw, der, sizeof(der), &n),
	    CS_OK);
	assert_int_equal(n, 72);
	assert_int_equal(cs_ecdsa_raw_to_der(raw, der, 71, &n), CS_ETOOBIG);
}

static void
test_verify_ed25519(void **state)
{
	struct fx  *f = *state;
	const char  msg[] = "device record 0002";
	uint8_t     der[256], sig[128], pub[CS_P256_POINT_LEN];
	char        path[512], msgp[512], sigp[512];
	size_t      n, pub_len;
	cs_alg      alg;

	openssl_key(f, CS_ALG_ED25519, "k");
	n = read_file(tu_path(path, sizeof(path), f->dir, "k.der"), der,
	    sizeof(der));
	assert_int_equal(cs_spki_decode(der, n, &alg, pub, &pub_len), CS_OK);
	assert_int_equal(alg, CS_ALG_ED25519);
	tu_path(msgp, sizeof(msgp), f->dir, "msg");
	write_bytes(msgp, msg, strlen(msg));
	tu_path(sigp, sizeof(sigp), f->dir, "sig");
	tu_path(path, sizeof(path), f->dir, "k.pem");
	char *sign[] = {"openssl", "pkeyutl", "-sign", "-inkey", path,
	    "-rawin", "-in", msgp, "-out", sigp, NULL};
	run_ok(sign);
	assert_int_equal(read_file(sigp, sig, sizeof(sig)), CS_SIG_LEN);

	assert_int_equal(cs_verify(CS_ALG_ED25519, pub, pub_len, msg,
	    strlen(msg), sig), CS_OK);
	assert_int_equal(cs_verify(CS_ALG_ED25519, pub, pub_len, msg,
	    strlen(msg) - 1, sig), CS_ECRYPTO);
	sig[3] ^= 0x20;
	assert_int_equal(cs_verify(CS_ALG_ED25519, pub, pub_len, msg,
	    strlen(msg), sig), CS_ECRYPTO);
	sig[3] ^= 0x20;
	/* The wrong algorithm for the key, the wrong key length. */
	assert_int_equal(cs_verify(CS_ALG_P256, pub, pub_len, msg,
	    strlen(msg), sig), CS_EINVAL);
	assert_int_equal(cs_verify(CS_ALG_ED25519, pub, 31, msg, strlen(msg),
	    sig), CS_EINVAL);
}

static void
test_small_helpers(void **state)
{
	uint8_t a[32], b[32];
	cs_alg  alg;

	(void)state;
	memset(a, 0x5a, sizeof(a));
	memcpy(b, a, sizeof(b));
	assert_true(cs_ct_equal(a, b, sizeof(a)));
	assert_true(cs_ct_equal(a, b, 0));
	b[31] ^= 0x80;
	assert_false(cs_ct_equal(a, b, sizeof(a)));
	b[31] ^= 0x80;
	b[0] ^= 0x01;
	assert_false(cs_ct_equal(a, b, sizeof(a)));

	cs_wipe(a, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_memory_equal(a, b, sizeof(a));
	cs_wipe(NULL, 10);

	assert_int_equal(cs_alg_parse("p256", &alg), CS_OK);
	assert_int_equal(alg, CS_ALG_P256);
	assert_int_equal(cs_alg_parse("ed25519", &alg), CS_OK);
	assert_int_equal(alg, CS_ALG_ED25519);
	assert_int_equal(cs_alg_parse("P256", &alg), CS_EINVAL);
	assert_int_equal(cs_alg_parse("rsa", &alg), CS_EINVAL);
	assert_string_equal(cs_alg_name(CS_ALG_P256), "p256");
	assert_string_equal(cs_alg_name(CS_ALG_ED25519), "ed25519");
	assert_string_equal(cs_alg_name(CS_ALG_NONE), "none");
}

/* AES-256-GCM: the GCM specification's test case 14, then tampering. */
static void
test_aes_gcm(void **state)
{
	static const uint8_t ct14[16] = {0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60,
	    0x6b, 0x6e, 0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3, 0x9d, 0x18};
	static const uint8_t tag14[16] = {0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99,
	    0x6b, 0xf0, 0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19};
	uint8_t key[CS_AES256_KEY_LEN] = {0}, nonce[CS_GCM_NONCE_LEN] = {0};
	uint8_t pt[16] = {0}, out[32], back[16];
	const uint8_t aad[] = "order v1 0 1";

	(void)state;
	assert_int_equal(cs_aes_gcm_seal(key, nonce, NULL, 0, pt, 16, out),
	    CS_OK);
	assert_memory_equal(out, ct14, 16);
	assert_memory_equal(out + 16, tag14, 16);
	assert_int_equal(cs_aes_gcm_open(key, nonce, NULL, 0, out, 32, back),
	    CS_OK);
	assert_memory_equal(back, pt, 16);

	assert_int_equal(cs_aes_gcm_seal(key, nonce, aad, sizeof(aad), pt, 16,
	    out), CS_OK);
	assert_int_equal(cs_aes_gcm_open(key, nonce, NULL, 0, out, 32, back),
	    CS_ECRYPTO);
	for (size_t i = 0; i < 32; i++) {
		out[i] ^= 0x80;
		assert_int_equal(cs_aes_gcm_open(key, nonce, aad, sizeof(aad),
		    out, 32, back), CS_ECRYPTO);
		out[i] ^= 0x80;
	}
	nonce[11] = 1;
	assert_int_equal(cs_aes_gcm_open(key, nonce, aad, sizeof(aad), out,
	    32, back), CS_ECRYPTO);
	nonce[11] = 0;
	key[0] = 1;
	assert_int_equal(cs_aes_gcm_open(key, nonce, aad, sizeof(aad), out,
	    32, back), CS_ECRYPTO);
	key[0] = 0;
	assert_int_equal(cs_aes_gcm_open(key, nonce, aad, sizeof(aad), out,
	    15, back), CS_ECRYPTO);
	assert_int_equal(cs_aes_gcm_open(key, nonce, aad, sizeof(aad), out,
	    32, back), CS_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_spki_p256, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spki_ed25519, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_spki_rejects, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_key_id, setup, teardown),
	    cmocka_unit_test(test_sha256_vectors),
	    cmocka_unit_test_setup_teardown(test_verify_p256, setup,
		teardown),
	    cmocka_unit_test(test_raw_to_der_edges),
	    cmocka_unit_test_setup_teardown(test_verify_ed25519, setup,
		teardown),
	    cmocka_unit_test(test_small_helpers),
	    cmocka_unit_test(test_aes_gcm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
