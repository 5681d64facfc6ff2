/*
 * crypto_wolfcrypt.c - the verifier's crypto backend on wolfCrypt's public
 * API (wc_ecc_verify_hash_ex, wc_ed25519_verify_msg).  The host build links
 * Debian's libwolfssl; the Cortex-M build compiles the needed wolfCrypt
 * files from Debian's source package with a user_settings.h that enables
 * one algorithm (target/cortex-m/).  Which algorithms exist follows
 * wolfCrypt's own HAVE_ECC / HAVE_ED25519.
 *
 * wolfCrypt's verify functions report twice: a return code and a verdict.
 * A signature is valid only when both say so (a bad ECDSA signature is
 * rc 0 with verdict 0; a bad Ed25519 one is rc SIG_VERIFY_E).
 */
#ifndef CS_CRYPTO_WOLFCRYPT
#error "crypto_wolfcrypt.c is the CS_CRYPTO_WOLFCRYPT backend"
#endif

#ifdef WOLFSSL_USER_SETTINGS
#include <wolfssl/wolfcrypt/settings.h>
#else
#include <wolfssl/options.h>
#endif
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "countersign/verify.h"

#include "crypto.h"

#if !defined(HAVE_ECC) && !defined(HAVE_ED25519)
#error "wolfCrypt is built with neither ECC nor Ed25519"
#endif

#ifdef HAVE_ECC
/* r and s are 32 big-endian bytes each; the hash is SHA-256(msg). */
static uint32_t
verify_p256(const uint8_t *pub, size_t pub_len, const uint8_t *msg,
    size_t msg_len, const uint8_t *sig)
{
	ecc_key   key;
	mp_int    r, s;
	uint8_t   hash[WC_SHA256_DIGEST_SIZE];
	int       res = 0, rc;
	uint32_t  out = CS_VERIFY_BAD_SIGNATURE;

	if (pub_len != 65 || pub[0] != 0x04 || msg_len > 0xFFFFFFFFu) {
		return CS_VERIFY_CRYPTO_ERROR;
	}
	if (wc_Sha256Hash(msg, (word32)msg_len, hash) != 0) {
		return CS_VERIFY_CRYPTO_ERROR;
	}
	if (wc_ecc_init(&key) != 0) {
		return CS_VERIFY_CRYPTO_ERROR;
	}
	if (wc_ecc_import_x963_ex(pub, (word32)pub_len, &key,
		ECC_SECP256R1) != 0) {
		wc_ecc_free(&key);
		return CS_VERIFY_CRYPTO_ERROR;
	}
	if (mp_init(&r) != MP_OKAY || mp_init(&s) != MP_OKAY) {
		wc_ecc_free(&key);
		return CS_VERIFY_CRYPTO_ERROR;
	}
	if (mp_read_unsigned_bin(&r, sig, 32) == MP_OKAY &&
	    mp_read_unsigned_bin(&s, sig + 32, 32) == MP_OKAY) {
		/* wolfCrypt rejects r, s = 0 or >= n itself. */
		rc = wc_ecc_verify_hash_ex(&r, &s, hash, sizeof(hash), &res,
		    &key);
		out = cs_crypto_verdict(rc, res, rc, res,
		    CS_VERIFY_BAD_SIGNATURE);
	}
	mp_clear(&r);
	mp_clear(&s);
	wc_ecc_free(&key);
#ifdef FP_ECC
	/* A host wolfCrypt built with FP_ECC (Debian's) keeps a table of
	 * precomputed points per thread, which leaks when the thread ends.
	 * This library has no hook for thread exit, and a verify per device
	 * is rare: free it every time. */
	wc_ecc_fp_free();
#endif
	return out;
}
#endif

#ifdef HAVE_ED25519
static uint32_t
verify_ed25519(const uint8_t *pub, size_t pub_len, const uint8_t *msg,
    size_t msg_len, const uint8_t *sig)
{
	ed25519_key key;
	int         res = 0, rc;
	uint32_t    out;

	if (pub_len != ED25519_PUB_KEY_SIZE || msg_len > 0xFFFFFFFFu) {
		return CS_VERIFY_CRYPTO_ERROR;
	}
	if (wc_ed25519_init(&key) != 0) {
		return CS_VERIFY_CRYPTO_ERROR;
	}
	if (wc_ed25519_import_public(pub, (word32)pub_len, &key) != 0) {
		wc_ed25519_free(&key);
		return CS_VERIFY_CRYPTO_ERROR;
	}
	rc = wc_ed25519_verify_msg(sig, ED25519_SIG_SIZE, msg,
	    (word32)msg_len, &res, &key);
	/* One verify: wolfCrypt's Ed25519 reports failure in two values it
	 * sets apart (rc = SIG_VERIFY_E and res left 0), and the skip
	 * campaign finds no single skip inside it that sets both; a second
	 * verify would cost another 78 M instructions.  A bad signature is
	 * rc SIG_VERIFY_E: BAD_SIGNATURE either way. */
	out = cs_crypto_verdict(rc, res, rc, res, CS_VERIFY_BAD_SIGNATURE);
	wc_ed25519_free(&key);
	return out;
}
#endif

int
cs_crypto_has_alg(uint8_t alg)
{
#ifdef HAVE_ECC
	if (alg == CS_RECORD_ALG_P256) {
		return 1;
	}
#endif
#ifdef HAVE_ED25519
	if (alg == CS_RECORD_ALG_ED25519) {
		return 1;
	}
#endif
	return 0;
}

uint32_t
cs_crypto_verify(uint8_t alg, const uint8_t *pub, size_t pub_len,
    const uint8_t *msg, size_t msg_len, const uint8_t *sig)
{
#ifdef HAVE_ECC
	if (alg == CS_RECORD_ALG_P256) {
		return verify_p256(pub, pub_len, msg, msg_len, sig);
	}
#endif
#ifdef HAVE_ED25519
	if (alg == CS_RECORD_ALG_ED25519) {
		return verify_ed25519(pub, pub_len, msg, msg_len, sig);
	}
#endif
	(void)pub;
	(void)pub_len;
	(void)msg;
	(void)msg_len;
	(void)sig;
	return CS_VERIFY_UNSUPPORTED_ALG;
}
