/*
 * crypto_wolfcrypt_sp.c - the verifier's crypto backend for size-bound
 * Cortex-M builds: ECDSA P-256 only, straight into wolfCrypt's
 * single-precision P-256 code (sp_ecc_verify_256, sp_c32.c) and SHA-256.
 *
 * Why not the public API (crypto_wolfcrypt.c): wc_ecc_verify_hash_ex pulls
 * in ecc.c's key object, curve tables and name lookups, about 3 KB of
 * flash and a few hundred bytes of stack that a verify-only boot check
 * does not need.  The price: sp_ecc_verify_256 is an internal wolfCrypt
 * function (WOLFSSL_LOCAL in sp.h), so this file is tied to the wolfssl
 * version the build fetches, and it must do what ecc.c does before calling
 * it: refuse r or s outside [1, n-1].  The public key is the compiled-in,
 * trusted one; it is not re-validated on every boot.
 *
 * Stack: wolfCrypt's blocking sp_ecc_verify_256 keeps its points and
 * scratch (about 2.3 KB in the small C profile) on the stack.  When the
 * build's user_settings.h defines WOLFSSL_SP_NONBLOCK (the size profile,
 * cortex-m/p256/user_settings.h), the same verify runs as wolfCrypt's
 * resumable sp_ecc_verify_256_nb, whose temporaries live in a context
 * that this file keeps in .bss (p256_work, 2 560 bytes: the size of
 * wolfCrypt's sp_ecc_ctx_t): the worst stack path of a verify drops
 * from 3 080 to 1 176 bytes (now through SHA-256, not the curve) and the
 * RAM moves to a fixed buffer the linker accounts for.  The price: this
 * backend is not re-entrant (one verify at a time; a boot check runs
 * once, on one thread, before anything else), 9 % more instructions (the
 * state machine returns here after every step), and the work buffer
 * holds public values only, so it is not wiped.  A step loop cut short
 * (a glitch) leaves rc at FP_WOULDBLOCK and res at 0: refused.  Without
 * WOLFSSL_SP_NONBLOCK (the speed profile on sp_cortexm.c, whose resumable
 * form does not compile in wolfssl 5.5.4) the blocking call is used.
 */
#ifndef CS_CRYPTO_WOLFCRYPT_SP
#error "crypto_wolfcrypt_sp.c is the CS_CRYPTO_WOLFCRYPT_SP backend"
#endif

#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sp.h>
#include <wolfssl/wolfcrypt/sp_int.h>

#include "countersign/verify.h"

#include "crypto.h"

#if !defined(WOLFSSL_HAVE_SP_ECC) || defined(WOLFSSL_SP_NO_256)
#error "CS_CRYPTO_WOLFCRYPT_SP needs wolfCrypt's SP P-256 code"
#endif

/* The order n of the P-256 group, big-endian. */
static const uint8_t p256_order[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
	0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* 1 when 1 <= v < n for the 32-byte big-endian v.  v is public (part of
 * the signature): no need for constant time. */
static int
in_range(const uint8_t *v)
{
	int nonzero = 0;

	for (size_t i = 0; i < 32; i++) {
		nonzero |= v[i];
	}
	for (size_t i = 0; i < 32; i++) {
		if (v[i] != p256_order[i]) {
			return nonzero != 0 && v[i] < p256_order[i];
		}
	}
	return 0; /* v == n */
}

#ifdef WOLFSSL_SP_NONBLOCK
/* The resumable verify's state: static, so the backend is not re-entrant
 * (see the top of this file). */
static sp_ecc_ctx_t p256_work;

/* sp_ecc_verify_256 in steps, its temporaries in p256_work instead of on
 * the stack.  Each step returns FP_WOULDBLOCK until the last; a fresh
 * context (state 0) starts a new verify. */
static int
p256_verify(const uint8_t *hash, const mp_int *x, const mp_int *y,
    const mp_int *z, const mp_int *r, const mp_int *s, int *res)
{
	int rc;

	XMEMSET(&p256_work, 0, sizeof(p256_work));
	do {
		rc = sp_ecc_verify_256_nb(&p256_work, hash,
		    WC_SHA256_DIGEST_SIZE, x, y, z, r, s, res, NULL);
	} while (rc == FP_WOULDBLOCK);
	return rc;
}
#else
static int
p256_verify(const uint8_t *hash, const mp_int *x, const mp_int *y,
    const mp_int *z, const mp_int *r, const mp_int *s, int *res)
{
	return sp_ecc_verify_256(hash, WC_SHA256_DIGEST_SIZE, x, y, z, r, s,
	    res, NULL);
}
#endif

/* SHA-256 of msg.  Kept out of line so that the hash state is off the
 * stack before the curve arithmetic, the deepest part, starts. */
static int __attribute__((noinline))
sha256(const uint8_t *msg, size_t len, uint8_t out[WC_SHA256_DIGEST_SIZE])
{
	wc_Sha256 sha;
	int       rc;

	if (len > 0xFFFFFFFFu || wc_InitSha256(&sha) != 0) {
		return -1;
	}
	rc = wc_Sha256Update(&sha, msg, (word32)len);
	if (rc == 0) {
		rc = wc_Sha256Final(&sha, out);
	}
	wc_Sha256Free(&sha);
	return rc;
}

int
cs_crypto_has_alg(uint8_t alg)
{
	return alg == CS_RECORD_ALG_P256;
}

uint32_t
cs_crypto_verify(uint8_t alg, const uint8_t *pub, size_t pub_len,
    const uint8_t *msg, size_t msg_len, const uint8_t *sig)
{
	uint8_t hash[WC_SHA256_DIGEST_SIZE];
	mp_int  x, y, z, r, s;
	int     res = 0, res2 = 0, rc, rc2;

	if (alg != CS_RECORD_ALG_P256) {
		return CS_VERIFY_UNSUPPORTED_ALG;
	}
	if (pub_len != 65 || pub[0] != 0x04) {
		return CS_VERIFY_CRYPTO_ERROR;
	}
	if (!in_range(sig) || !in_range(sig + 32)) {
		return CS_VERIFY_BAD_SIGNATURE;
	}
	if (sha256(msg, msg_len, hash) != 0) {
		return CS_VERIFY_CRYPTO_ERROR;
	}
	if (mp_init_multi(&x, &y, &z, &r, &s, NULL) != MP_OKAY ||
	    mp_read_unsigned_bin(&x, pub + 1, 32) != MP_OKAY ||
	    mp_read_unsigned_bin(&y, pub + 33, 32) != MP_OKAY ||
	    mp_set(&z, 1) != MP_OKAY ||
	    mp_read_unsigned_bin(&r, sig, 32) != MP_OKAY ||
	    mp_read_unsigned_bin(&s, sig + 32, 32) != MP_OKAY) {
		return CS_VERIFY_CRYPTO_ERROR;
	}
	/* Twice, and both runs must say valid.  wolfCrypt's verdict rests
	 * on one comparison (sp_256_cmp_9 of x(R') with r.z^2) whose result
	 * one skipped instruction can force: the skip campaign found that
	 * skipping the "mov r0, sp" before it or the "cmp r0, #0" after it
	 * sets res to 1 for a garbage signature.  The second run recomputes
	 * R' and compares again; a single fault corrupts at most one run,
	 * and cs_crypto_verdict needs both (one XOR step from each).  It
	 * doubles the verify time (21 M more instructions, ~0.3 s at
	 * 72 MHz); a cheaper second comparison would need wolfCrypt's
	 * internal point, which sp_ecc_verify_256 does not give out. */
	rc  = p256_verify(hash, &x, &y, &z, &r, &s, &res);
	rc2 = p256_verify(hash, &x, &y, &z, &r, &s, &res2);
	return cs_crypto_verdict(rc, res, rc2, res2,
	    rc == MP_OKAY && rc2 == MP_OKAY
		? (uint32_t)CS_VERIFY_BAD_SIGNATURE
		: (uint32_t)CS_VERIFY_CRYPTO_ERROR);
}
