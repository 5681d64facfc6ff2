/*
 * crypto.h - the verifier's one crypto seam (internal).  Exactly one
 * backend source file implements it per build:
 *   crypto_wolfcrypt.c     CS_CRYPTO_WOLFCRYPT: wolfCrypt's public API,
 *                          both algorithms (host; Cortex-M Ed25519)
 *   crypto_wolfcrypt_sp.c  CS_CRYPTO_WOLFCRYPT_SP: P-256 only, straight
 *                          into wolfCrypt's SP code (Cortex-M P-256, size)
 * verify.c refuses to build unless exactly one is selected.
 */
#ifndef CS_TARGET_CRYPTO_H
#define CS_TARGET_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* Nonzero when this build can verify signatures of alg (a record alg
 * byte value). */
int cs_crypto_has_alg(uint8_t alg);

/*
 * Check sig (64 bytes) over msg with the raw public key pub of alg:
 * ECDSA P-256 over SHA-256(msg) with sig = r||s, or PureEdDSA Ed25519 over
 * msg.  Returns CS_VERIFY_OK (the multi-bit constant) only when wolfCrypt
 * reported success in both its return code and its verdict;
 * CS_VERIFY_BAD_SIGNATURE when the signature does not verify (r or s out
 * of range included); CS_VERIFY_CRYPTO_ERROR when the key does not import;
 * CS_VERIFY_UNSUPPORTED_ALG for an algorithm not in this build.
 */
uint32_t cs_crypto_verify(uint8_t alg, const uint8_t *pub, size_t pub_len,
    const uint8_t *msg, size_t msg_len, const uint8_t *sig);

/* The two halves of CS_VERIFY_BAD_SIGNATURE ^ CS_VERIFY_OK that
 * cs_crypto_verdict applies one after the other.  Their XOR with
 * BAD_SIGNATURE is neither OK nor any other result code. */
#define CS_CRYPTO_STEP1 0x3C5AA5C3u
#define CS_CRYPTO_STEP2 (CS_CRYPTO_STEP1 ^ \
	((uint32_t)CS_VERIFY_BAD_SIGNATURE ^ (uint32_t)CS_VERIFY_OK))

/*
 * The verdict from two reports of wolfCrypt: return code rc1 and verdict
 * res1 of one verify, rc2 and res2 of a second (valid: rc 0 and res 1
 * in both).  The P-256 backend verifies twice, so that the two reports
 * come from two runs of the arithmetic and its final comparison; the
 * Ed25519 backend passes the one report twice (see there why).
 *
 * Fault injection: the value starts as BAD_SIGNATURE and becomes
 * CS_VERIFY_OK only through two separate XOR steps, the first behind its
 * own test of rc1 and res1, the second behind one of rc2 and res2
 * (volatile, so the compiler re-reads them and cannot merge the tests).
 * A single skipped instruction applies at most one step, which gives a
 * value that is no result code, and callers treat anything but
 * CS_VERIFY_OK as failure.  The derived value itself is returned, never
 * the literal CS_VERIFY_OK; anything else returns fail, the caller's
 * failure constant.
 */
static inline uint32_t
cs_crypto_verdict(int rc1, int res1, int rc2, int res2, uint32_t fail)
{
	volatile int      a = rc1, b = res1, c = rc2, d = res2;
	volatile uint32_t v = CS_VERIFY_BAD_SIGNATURE;

	if (a == 0 && b == 1) {
		v ^= CS_CRYPTO_STEP1;
	}
	if (d == 1 && c == 0) {
		v ^= CS_CRYPTO_STEP2;
	}
	if (v == CS_VERIFY_OK && a == 0 && d == 1) {
		return v;
	}
	return fail;
}

#endif /* CS_TARGET_CRYPTO_H */
