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

#endif /* CS_TARGET_CRYPTO_H */
