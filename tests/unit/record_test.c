/*
 * record_test.c - the device record on the host: the authority's encoder
 * and the target verifier (cs_target, Debian's libwolfssl), with keys made
 * by wolfCrypt in the test.  Good records of both algorithms verify; every
 * result code has a vector; one flipped bit anywhere fails; the worked
 * example in docs/record-format.md verifies with cs_verify_record, with
 * the openssl commands printed there, and with countersign-verify.
 */
#include "countersign/verify.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "record_encode.h"
#include "test_util.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PRODUCT 0x00C0FFEEu

static const uint8_t UID[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
    0xef};

/* A signing key made in the test. */
struct tkey {
	cs_alg      alg;
	ecc_key     ecc;
	ed25519_key ed;
	uint8_t     pub[CS_P256_POINT_LEN];
	size_t      pub_len;
	uint8_t     key_id[CS_KEY_ID_LEN];
};

static WC_RNG rng;

static void
tkey_make(struct tkey *k, cs_alg alg)
{
	uint8_t spki[CS_SPKI_MAX];
	size_t  spki_len;
	word32  n = sizeof(k->pub);

	memset(k, 0, sizeof(*k));
	k->alg = alg;
	if (alg == CS_ALG_P256) {
		assert_int_equal(wc_ecc_init(&k->ecc), 0);
		assert_int_equal(wc_ecc_make_key_ex(&rng, 32, &k->ecc,
		    ECC_SECP256R1), 0);
		assert_int_equal(wc_ecc_export_x963(&k->ecc, k->pub, &n), 0);
	} else {
		assert_int_equal(wc_ed25519_init(&k->ed), 0);
		assert_int_equal(wc_ed25519_make_key(&rng, 32, &k->ed), 0);
		assert_int_equal(wc_ed25519_export_public(&k->ed, k->pub, &n),
		    0);
	}
	k->pub_len = n;
	assert_int_equal(cs_spki_encode(alg, k->pub, k->pub_len, spki,
	    sizeof(spki), &spki_len), CS_OK);
	assert_int_equal(cs_key_id(spki, spki_len, k->key_id), CS_OK);
}

static void
tkey_free(struct tkey *k)
{
	if (k->alg == CS_ALG_P256) {
		wc_ecc_free(&k->ecc);
	} else {
		wc_ed25519_free(&k->ed);
	}
}

/* Sign msg the way the HSM does; sig gets 64 bytes. */
static void
tkey_sign(struct tkey *k, const uint8_t *msg, size_t len, uint8_t *sig)
{
	if (k->alg == CS_ALG_P256) {
		uint8_t d[CS_SHA256_LEN], der[80], r[32], s[32];
		word32  dl = sizeof(der), rl = 32, sl = 32;

		assert_int_equal(cs_sha256(msg, len, d), CS_OK);
		assert_int_equal(wc_ecc_sign_hash(d, sizeof(d), der, &dl, &rng,
		    &k->ecc), 0);
		assert_int_equal(wc_ecc_sig_to_rs(der, dl, r, &rl, s, &sl), 0);
		memset(sig, 0, 64);
		memcpy(sig + 32 - rl, r, rl);
		memcpy(sig + 64 - sl, s, sl);
	} else {
		word32 sl = 64;

		assert_int_equal(wc_ed25519_sign_msg(msg, (word32)len, sig,
		    &sl, &k->ed), 0);
		assert_int_equal(sl, 64);
	}
}

/* Encode and sign a record with k; returns its length. */
static size_t
make_record(struct tkey *k, const struct cs_record_fields *f, uint8_t *out,
    size_t out_size)
{
	uint8_t msg[CS_RECORD_MSG_MAX];
	size_t  tbs, mlen;

	assert_int_equal(cs_record_encode(f, k->alg, k->key_id, out, out_size,
	    &tbs), CS_OK);
	assert_int_equal(cs_record_message(out, tbs, msg, sizeof(msg), &mlen),
	    CS_OK);
	tkey_sign(k, msg, mlen, out + tbs);
	return tbs + CS_RECORD_SIG_LEN;
}

static void
default_fields(struct cs_record_fields *f)
{
	memset(f, 0, sizeof(*f));
	f->product_id = PRODUCT;
	f->serial     = 42;
	assert_int_equal(cs_record_order_hash("PO-TEST-1", f->order_hash),
	    CS_OK);
	f->uid     = UID;
	f->uid_len = sizeof(UID);
}

static void
trust_for(struct cs_verify_trust *t, struct cs_trust_key *tk,
    const struct tkey *k)
{
	memset(tk, 0, sizeof(*tk));
	tk->alg     = (uint8_t)k->alg;
	tk->key_id  = k->key_id;
	tk->pub     = k->pub;
	tk->pub_len = k->pub_len;
	memset(t, 0, sizeof(*t));
	t->keys       = tk;
	t->n_keys     = 1;
	t->product_id = PRODUCT;
}

static void
expect(cs_verify_result want, cs_verify_result got)
{
	if (want != got) {
		fprintf(stderr, "wanted %s, got %s\n", cs_verify_name(want),
		    cs_verify_name(got));
	}
	assert_int_equal(want, got);
}

static int
setup_all(void **state)
{
	(void)state;
	return wc_InitRng(&rng);
}

static int
teardown_all(void **state)
{
	(void)state;
	return wc_FreeRng(&rng);
}

/* ------------------------------------------------------------------ */

static void
good_record(cs_alg alg)
{
	struct tkey             k;
	struct cs_record_fields f;
	struct cs_verify_trust  t;
	struct cs_trust_key     tk;
	struct cs_record_info   info;
	uint8_t                 rec[CS_RECORD_MAX_LEN], fw[32];
	size_t                  n;
	cs_verify_result        r;

	tkey_make(&k, alg);
	default_fields(&f);
	trust_for(&t, &tk, &k);
	n = make_record(&k, &f, rec, sizeof(rec));
	assert_int_equal(n, 32 + 8 + 64);
	assert_int_equal(cs_record_size(rec, 32), n);
	r = cs_verify_record(rec, n, UID, sizeof(UID), &t, &info);
	expect(CS_VERIFY_OK, r);
	assert_true(CS_VERIFY_AUTHORIZED(r));
	assert_true(info.parsed && info.signature_valid);
	assert_int_equal(info.version, 1);
	assert_int_equal(info.alg, alg);
	assert_int_equal(info.flags, 0);
	assert_int_equal(info.uid_len, 8);
	assert_memory_equal(info.uid, UID, 8);
	assert_memory_equal(info.key_id, k.key_id, 8);
	assert_memory_equal(info.order_hash, f.order_hash, 8);
	assert_int_equal(info.product_id, PRODUCT);
	assert_int_equal(info.serial, 42);
	assert_int_equal(info.record_len, n);
	assert_memory_equal(info.signature, rec + n - 64, 64);
	/* info is optional. */
	expect(CS_VERIFY_OK, cs_verify_record(rec, n, UID, sizeof(UID), &t,
	    NULL));

	/* With a firmware digest, and the longest and shortest UIDs. */
	memset(fw, 0xA5, sizeof(fw));
	f.firmware_digest = fw;
	t.firmware_digest = fw;
	n = make_record(&k, &f, rec, sizeof(rec));
	assert_int_equal(n, 32 + 8 + 32 + 64);
	expect(CS_VERIFY_OK, cs_verify_record(rec, n, UID, sizeof(UID), &t,
	    &info));
	assert_int_equal(info.flags, CS_RECORD_FLAG_FIRMWARE);
	assert_memory_equal(info.firmware_digest, fw, 32);

	uint8_t big[32];
	memset(big, 0x5C, sizeof(big));
	f.uid     = big;
	f.uid_len = 32;
	n         = make_record(&k, &f, rec, sizeof(rec));
	assert_int_equal(n, CS_RECORD_MAX_LEN);
	expect(CS_VERIFY_OK, cs_verify_record(rec, n, big, 32, &t, NULL));
	f.uid_len         = 1;
	f.firmware_digest = NULL;
	n                 = make_record(&k, &f, rec, sizeof(rec));
	assert_int_equal(n, CS_RECORD_MIN_LEN);
	expect(CS_VERIFY_OK, cs_verify_record(rec, n, big, 1, &t, NULL));
	tkey_free(&k);
}

static void
test_good_p256(void **state)
{
	(void)state;
	good_record(CS_ALG_P256);
}

static void
test_good_ed25519(void **state)
{
	(void)state;
	good_record(CS_ALG_ED25519);
}

/* Every single-bit change of a good record must be refused. */
static void
bitflips(cs_alg alg, int with_fw)
{
	struct tkey             k;
	struct cs_record_fields f;
	struct cs_verify_trust  t;
	struct cs_trust_key     tk;
	uint8_t                 rec[CS_RECORD_MAX_LEN], fw[32];
	size_t                  n;

	tkey_make(&k, alg);
	default_fields(&f);
	trust_for(&t, &tk, &k);
	if (with_fw) {
		memset(fw, 0x3C, sizeof(fw));
		f.firmware_digest = fw;
		t.firmware_digest = fw;
	}
	n = make_record(&k, &f, rec, sizeof(rec));
	for (size_t i = 0; i < n; i++) {
		for (unsigned b = 0; b < 8; b++) {
			cs_verify_result r;

			rec[i] ^= (uint8_t)(1u << b);
			r = cs_verify_record(rec, n, UID, sizeof(UID), &t,
			    NULL);
			if (r == CS_VERIFY_OK) {
				fprintf(stderr, "byte %zu bit %u accepted\n",
				    i, b);
			}
			assert_int_not_equal(r, CS_VERIFY_OK);
			assert_false(CS_VERIFY_AUTHORIZED(r));
			rec[i] ^= (uint8_t)(1u << b);
		}
	}
	expect(CS_VERIFY_OK, cs_verify_record(rec, n, UID, sizeof(UID), &t,
	    NULL));
	tkey_free(&k);
}

static void
test_bitflips(void **state)
{
	(void)state;
	bitflips(CS_ALG_P256, 0);
	bitflips(CS_ALG_P256, 1);
	bitflips(CS_ALG_ED25519, 0);
	bitflips(CS_ALG_ED25519, 1);
}

/* One vector per result code (FAULT has none: it needs a fault). */
static void
test_codes(void **state)
{
	struct tkey             k, other, ed;
	struct cs_record_fields f;
	struct cs_verify_trust  t;
	struct cs_trust_key     tk, tks[3];
	uint8_t                 rec[CS_RECORD_MAX_LEN + 8], bad[160];
	uint8_t                 fw[32], fw2[32], uid2[8];
	size_t                  n;

	(void)state;
	tkey_make(&k, CS_ALG_P256);
	tkey_make(&other, CS_ALG_P256);
	tkey_make(&ed, CS_ALG_ED25519);
	default_fields(&f);
	trust_for(&t, &tk, &k);
	n = make_record(&k, &f, rec, sizeof(rec));

	/* BAD_ARGUMENT */
	expect(CS_VERIFY_BAD_ARGUMENT, cs_verify_record(NULL, n, UID, 8, &t,
	    NULL));
	expect(CS_VERIFY_BAD_ARGUMENT, cs_verify_record(rec, n, UID, 8, NULL,
	    NULL));
	expect(CS_VERIFY_BAD_ARGUMENT, cs_verify_record(rec, n, NULL, 8, &t,
	    NULL));
	t.n_keys = 0;
	expect(CS_VERIFY_BAD_ARGUMENT, cs_verify_record(rec, n, UID, 8, &t,
	    NULL));
	t.n_keys = 1;

	/* TRUNCATED: shorter than the header, or than the declared size. */
	for (size_t len = 0; len < n; len++) {
		expect(CS_VERIFY_TRUNCATED, cs_verify_record(rec, len, UID, 8,
		    &t, NULL));
	}
	/* OVERSIZED: longer than the declared size. */
	rec[n] = 0;
	expect(CS_VERIFY_OVERSIZED, cs_verify_record(rec, n + 1, UID, 8, &t,
	    NULL));
	expect(CS_VERIFY_OVERSIZED, cs_verify_record(rec, n + 8, UID, 8, &t,
	    NULL));

	/* Header fields: each edited on a copy. */
	memcpy(bad, rec, n);
	bad[0] = 'X';
	expect(CS_VERIFY_BAD_MAGIC, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));
	assert_int_equal(cs_record_size(bad, n), 0);
	memcpy(bad, rec, n);
	bad[CS_RECORD_OFF_VERSION] = 2;
	expect(CS_VERIFY_BAD_VERSION, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));
	memcpy(bad, rec, n);
	bad[CS_RECORD_OFF_FLAGS] = 0x02;
	expect(CS_VERIFY_BAD_FLAGS, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));
	memcpy(bad, rec, n);
	bad[CS_RECORD_OFF_UID_LEN] = 0;
	expect(CS_VERIFY_BAD_UID_LEN, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));
	bad[CS_RECORD_OFF_UID_LEN] = 33;
	expect(CS_VERIFY_BAD_UID_LEN, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));
	assert_int_equal(cs_record_size(bad, 32), 0);
	memcpy(bad, rec, n);
	bad[CS_RECORD_OFF_ALG] = 3;
	expect(CS_VERIFY_UNSUPPORTED_ALG, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));
	bad[CS_RECORD_OFF_ALG] = 0;
	expect(CS_VERIFY_UNSUPPORTED_ALG, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));

	/* UNKNOWN_KEY: another key; the same key id under another alg. */
	trust_for(&t, &tk, &other);
	expect(CS_VERIFY_UNKNOWN_KEY, cs_verify_record(rec, n, UID, 8, &t,
	    NULL));
	trust_for(&t, &tk, &k);
	tk.alg = CS_ALG_ED25519;
	expect(CS_VERIFY_UNKNOWN_KEY, cs_verify_record(rec, n, UID, 8, &t,
	    NULL));
	/* ... and several keys: the right one is found wherever it is. */
	trust_for(&t, &tks[0], &other);
	trust_for(&t, &tks[1], &ed);
	trust_for(&t, &tks[2], &k);
	t.keys   = tks;
	t.n_keys = 3;
	struct cs_record_info info;
	expect(CS_VERIFY_OK, cs_verify_record(rec, n, UID, 8, &t, &info));
	assert_int_equal(info.key_index, 2);
	t.n_keys = 2;
	expect(CS_VERIFY_UNKNOWN_KEY, cs_verify_record(rec, n, UID, 8, &t,
	    NULL));
	trust_for(&t, &tk, &k);

	/* BAD_SIGNATURE: a signature of another key under this key id;
	 * r = 0; r = s = n - 1 (all 0xFF is >= n). */
	memcpy(bad, rec, n);
	tkey_sign(&other, bad, n - 64, bad + n - 64);
	expect(CS_VERIFY_BAD_SIGNATURE, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));
	memset(bad + n - 64, 0, 32);
	expect(CS_VERIFY_BAD_SIGNATURE, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));
	memset(bad + n - 64, 0xFF, 64);
	expect(CS_VERIFY_BAD_SIGNATURE, cs_verify_record(bad, n, UID, 8, &t,
	    NULL));

	/* CRYPTO_ERROR: the trusted key itself is malformed.  (A point off
	 * the curve imports, and then no signature verifies.) */
	uint8_t broken[65];
	memcpy(broken, k.pub, sizeof(broken));
	broken[64] ^= 1;
	tk.pub = broken;
	expect(CS_VERIFY_BAD_SIGNATURE, cs_verify_record(rec, n, UID, 8, &t,
	    NULL));
	broken[0] = 0x03;
	expect(CS_VERIFY_CRYPTO_ERROR, cs_verify_record(rec, n, UID, 8, &t,
	    NULL));
	tk.pub     = k.pub;
	tk.pub_len = 64;
	expect(CS_VERIFY_CRYPTO_ERROR, cs_verify_record(rec, n, UID, 8, &t,
	    NULL));
	trust_for(&t, &tk, &k);

	/* WRONG_PRODUCT */
	t.product_id = PRODUCT + 1;
	expect(CS_VERIFY_WRONG_PRODUCT, cs_verify_record(rec, n, UID, 8, &t,
	    &info));
	assert_true(info.signature_valid);
	t.product_id = PRODUCT;

	/* UID_MISMATCH: other bytes, shorter, longer, none. */
	memcpy(uid2, UID, 8);
	uid2[7] ^= 0x80;
	expect(CS_VERIFY_UID_MISMATCH, cs_verify_record(rec, n, uid2, 8, &t,
	    NULL));
	expect(CS_VERIFY_UID_MISMATCH, cs_verify_record(rec, n, UID, 7, &t,
	    NULL));
	uint8_t uid9[9] = {0};
	memcpy(uid9, UID, 8);
	expect(CS_VERIFY_UID_MISMATCH, cs_verify_record(rec, n, uid9, 9, &t,
	    NULL));
	expect(CS_VERIFY_UID_MISMATCH, cs_verify_record(rec, n, NULL, 0, &t,
	    NULL));

	/* Firmware policy. */
	t.require_firmware_digest = 1;
	expect(CS_VERIFY_FIRMWARE_MISSING, cs_verify_record(rec, n, UID, 8,
	    &t, NULL));
	t.require_firmware_digest = 0;
	memset(fw, 0x11, sizeof(fw));
	memset(fw2, 0x11, sizeof(fw2));
	fw2[31] = 0x12;
	f.firmware_digest = fw;
	n = make_record(&k, &f, rec, sizeof(rec));
	expect(CS_VERIFY_FIRMWARE_MISMATCH, cs_verify_record(rec, n, UID, 8,
	    &t, NULL));
	t.firmware_digest = fw2;
	expect(CS_VERIFY_FIRMWARE_MISMATCH, cs_verify_record(rec, n, UID, 8,
	    &t, NULL));
	t.firmware_digest         = fw;
	t.require_firmware_digest = 1;
	expect(CS_VERIFY_OK, cs_verify_record(rec, n, UID, 8, &t, NULL));

	tkey_free(&k);
	tkey_free(&other);
	tkey_free(&ed);
}

static void
test_names(void **state)
{
	static const cs_verify_result all[] = {
#define ALL(name, val, text) CS_VERIFY_##name,
	    CS_VERIFY_RESULT_LIST(ALL)
#undef ALL
	};
	size_t n = sizeof(all) / sizeof(all[0]);

	(void)state;
	assert_int_equal(CS_VERIFY_OK, 0x5A3C96A5);
	for (size_t i = 0; i < n; i++) {
		assert_true((uint32_t)all[i] > 1);
		assert_non_null(cs_verify_strerror(all[i]));
		assert_string_not_equal(cs_verify_name(all[i]), "UNKNOWN");
		for (size_t j = i + 1; j < n; j++) {
			assert_int_not_equal(all[i], all[j]);
		}
		/* Failure codes are far from OK: no few bit flips reach it. */
		if (all[i] != CS_VERIFY_OK) {
			assert_true(__builtin_popcount((uint32_t)all[i] ^
			    (uint32_t)CS_VERIFY_OK) >= 8);
			assert_false(CS_VERIFY_AUTHORIZED(all[i]));
		}
	}
	assert_string_equal(cs_verify_name(CS_VERIFY_UID_MISMATCH),
	    "UID_MISMATCH");
	assert_string_equal(cs_verify_name((cs_verify_result)0), "UNKNOWN");
	assert_string_equal(cs_verify_strerror(CS_VERIFY_BAD_SIGNATURE),
	    "bad signature");
}

static void
test_encoder(void **state)
{
	struct cs_record_fields f;
	uint8_t                 out[CS_RECORD_MAX_LEN], id[8] = {0};
	uint8_t                 msg[CS_RECORD_MSG_MAX], big[33] = {0};
	size_t                  tbs, mlen;

	(void)state;
	default_fields(&f);
	assert_int_equal(cs_record_encode(&f, CS_ALG_P256, id, out, 104,
	    &tbs), CS_OK);
	assert_int_equal(tbs, 40);
	assert_memory_equal(out, "CSRD\x01\x01\x00\x08", 8);
	assert_memory_equal(out + 16, "\xee\xff\xc0\x00\x2a\x00\x00\x00", 8);
	assert_int_equal(cs_record_encode(&f, CS_ALG_P256, id, out, 103,
	    &tbs), CS_ETOOBIG);
	assert_int_equal(cs_record_encode(&f, CS_ALG_NONE, id, out,
	    sizeof(out), &tbs), CS_EINVAL);
	f.serial = 0;
	assert_int_equal(cs_record_encode(&f, CS_ALG_P256, id, out,
	    sizeof(out), &tbs), CS_EINVAL);
	f.serial  = 1;
	f.uid     = big;
	f.uid_len = 33;
	assert_int_equal(cs_record_encode(&f, CS_ALG_P256, id, out,
	    sizeof(out), &tbs), CS_EINVAL);
	f.uid_len = 0;
	assert_int_equal(cs_record_encode(&f, CS_ALG_P256, id, out,
	    sizeof(out), &tbs), CS_EINVAL);
	assert_int_equal(cs_record_message(out, 40, msg, 60, &mlen),
	    CS_ETOOBIG);
	assert_int_equal(cs_record_message(out, 40, msg, 61, &mlen), CS_OK);
	assert_int_equal(mlen, 61);
	assert_memory_equal(msg, "countersign/record/v1", 21);
	assert_int_equal(cs_record_order_hash("", id), CS_EINVAL);
}

/* ------------------------------------------------------------------ */
/* The worked example of docs/record-format.md                          */

static char doc[65536];

/* The fenced block after "<!-- example:NAME -->", into out. */
static void
doc_block(const char *name, char *out, size_t len)
{
	char        marker[128];
	const char *p, *e;

	snprintf(marker, sizeof(marker), "<!-- example:%s -->", name);
	p = strstr(doc, marker);
	assert_non_null(p);
	p = strstr(p, "```");
	assert_non_null(p);
	p = strchr(p, '\n');
	assert_non_null(p);
	p++;
	e = strstr(p, "```");
	assert_non_null(e);
	assert_true((size_t)(e - p) < len);
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
}

static void
worked_example(const char *alg, const char *key_id)
{
	char    path[512], pem[1024], hex[1024], script[4096], out[8192];
	char    tool[512], *dir = tu_tmpdir();
	uint8_t rec[256], der[256], pub[65], id[8];
	size_t  n = 0, pub_len, dlen;
	cs_alg  a;
	FILE   *fp;
	char    name[64];

	tu_path(path, sizeof(path), getenv("CS_SOURCE_DIR"),
	    "docs/record-format.md");
	fp = fopen(path, "r");
	assert_non_null(fp);
	size_t dn = fread(doc, 1, sizeof(doc) - 1, fp);
	doc[dn] = '\0';
	fclose(fp);

	snprintf(name, sizeof(name), "%s-pub", alg);
	doc_block(name, pem, sizeof(pem));
	snprintf(name, sizeof(name), "%s-record", alg);
	doc_block(name, hex, sizeof(hex));
	snprintf(name, sizeof(name), "%s-check", alg);
	doc_block(name, script, sizeof(script));

	/* 1. The commands printed in the document, as printed. */
	tu_write_file(tu_path(path, sizeof(path), dir, "pub.pem"), pem);
	tu_write_file(tu_path(path, sizeof(path), dir, "record.hex"), hex);
	tu_write_file(tu_path(path, sizeof(path), dir, "check.sh"), script);
	char *sh[] = {"bash", "-ec", "cd \"$0\" && . ./check.sh", dir, NULL};
	int   rv   = tu_run(sh, out, sizeof(out));
	if (rv != 0) {
		fprintf(stderr, "check.sh: %d: %s\n", rv, out);
	}
	assert_int_equal(rv, 0);
	assert_true(strstr(out, "Verified OK") != NULL ||
	    strstr(out, "Signature Verified Successfully") != NULL);

	/* 2. cs_verify_record on the same bytes. */
	for (const char *p = hex; *p != '\0'; p++) {
		unsigned v;
		if (*p == '\n') {
			continue;
		}
		assert_int_equal(sscanf(p, "%2x", &v), 1);
		rec[n++] = (uint8_t)v;
		p++;
	}
	assert_int_equal(n, 104);
	/* The PEM through openssl to DER, then our decoder. */
	tu_path(path, sizeof(path), dir, "pub.der");
	char pemp[512];
	tu_path(pemp, sizeof(pemp), dir, "pub.pem");
	char *conv[] = {"openssl", "pkey", "-pubin", "-in", pemp, "-outform",
	    "DER", "-out", path, NULL};
	assert_int_equal(tu_run(conv, out, sizeof(out)), 0);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	dlen = fread(der, 1, sizeof(der), fp);
	fclose(fp);
	assert_int_equal(cs_spki_decode(der, dlen, &a, pub, &pub_len), CS_OK);
	assert_int_equal(cs_key_id(der, dlen, id), CS_OK);
	char idhex[17];
	for (int i = 0; i < 8; i++) {
		snprintf(idhex + 2 * i, 3, "%02x", id[i]);
	}
	assert_string_equal(idhex, key_id);

	struct cs_trust_key    tk = {.alg = (uint8_t)a, .pub = pub,
	    .pub_len = pub_len};
	struct cs_verify_trust t  = {.keys = &tk, .n_keys = 1,
	    .product_id = 0x1234};
	struct cs_record_info  info;
	tk.key_id = id;
	expect(CS_VERIFY_OK, cs_verify_record(rec, n, UID, 8, &t, &info));
	assert_int_equal(info.serial, 1);
	uint8_t oh[8];
	assert_int_equal(cs_record_order_hash("PO-2026-0001", oh), CS_OK);
	assert_memory_equal(info.order_hash, oh, 8);

	/* 3. countersign-verify, as the document shows it. */
	tu_program(tool, sizeof(tool), "target", "countersign-verify");
	tu_path(path, sizeof(path), dir, "record.bin");
	char *cv[] = {tool, "--key", pemp, "--uid", "0123456789abcdef",
	    "--product", "0x1234", path, NULL};
	rv = tu_run(cv, out, sizeof(out));
	if (rv != 0) {
		fprintf(stderr, "countersign-verify: %d: %s\n", rv, out);
	}
	assert_int_equal(rv, 0);
	assert_non_null(strstr(out, "verdict:       authorized"));
	assert_non_null(strstr(out, "serial:        1"));
	char *cv2[] = {tool, "--key", pemp, "--uid", "0123456789abcdee",
	    path, NULL};
	assert_int_equal(tu_run(cv2, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "UNAUTHORIZED (UID_MISMATCH"));
	char *cv3[] = {tool, "--key", pemp, "--uid", "0123456789abcdef",
	    "--product", "7", path, NULL};
	assert_int_equal(tu_run(cv3, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "UNAUTHORIZED (WRONG_PRODUCT"));
	tu_rmtree_free(dir);
}

static void
test_worked_example_p256(void **state)
{
	(void)state;
	worked_example("p256", "73756192b0a3f179");
}

static void
test_worked_example_ed25519(void **state)
{
	(void)state;
	worked_example("ed25519", "2046eceefa28c9d6");
}

/* countersign-verify's usage errors and bad files. */
static void
test_tool_errors(void **state)
{
	char  tool[512], out[4096], path[512], *dir = tu_tmpdir();

	(void)state;
	tu_program(tool, sizeof(tool), "target", "countersign-verify");
	char *help[] = {tool, "--help", NULL};
	assert_int_equal(tu_run(help, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "usage: countersign-verify"));
	char *nokey[] = {tool, "--uid", "00", "x", NULL};
	assert_int_equal(tu_run(nokey, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--key is required"));
	char *baduid[] = {tool, "--key", "k", "--uid", "0g", "x", NULL};
	assert_int_equal(tu_run(baduid, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--uid"));
	tu_write_file(tu_path(path, sizeof(path), dir, "junk.pem"), "junk\n");
	char *badkey[] = {tool, "--key", path, "--uid", "00", "x", NULL};
	assert_int_equal(tu_run(badkey, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "not a P-256 or Ed25519 public key"));
	char *nokeyfile[] = {tool, "--key", "/nonexistent/k.pem", "--uid",
	    "00", "x", NULL};
	assert_int_equal(tu_run(nokeyfile, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "cannot read key file"));
	tu_rmtree_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_p256),
	    cmocka_unit_test(test_good_ed25519),
	    cmocka_unit_test(test_bitflips),
	    cmocka_unit_test(test_codes),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_encoder),
	    cmocka_unit_test(test_worked_example_p256),
	    cmocka_unit_test(test_worked_example_ed25519),
	    cmocka_unit_test(test_tool_errors),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
