/*
 * p256/user_settings.h - wolfCrypt for a Cortex-M3 verifier of ECDSA P-256
 * records, size profile: wolfCrypt's single-precision P-256 code in
 * portable C with 32-bit words (sp_c32.c, WOLFSSL_SP_SMALL), no heap, the
 * P-256 curve only, no signing, no key export, SHA-256 in its small form.
 * FIELD-NOTES.md has the measured figures of this profile.
 */
#ifndef CS_USER_SETTINGS_H
#define CS_USER_SETTINGS_H

#include "user_settings_common.h"

#define HAVE_ECC
#define ECC_USER_CURVES /* P-256 only */
#define NO_ECC_SIGN
#define NO_ECC_DHE
#define NO_ECC_KEY_EXPORT
#define HAVE_ECC_VERIFY
#define WOLFSSL_SP_MATH
#define WOLFSSL_HAVE_SP_ECC
#define WOLFSSL_SP_SMALL
#define WOLFSSL_SP_NO_MALLOC
/* The resumable verify (sp_ecc_verify_256_nb): its temporaries live in a
 * static context in the backend (crypto_wolfcrypt_sp.c), not on the
 * stack, so the verify fits the 2.5 KB stack budget. */
#define WOLFSSL_SP_NONBLOCK
#define SP_WORD_SIZE 32
#define USE_SLOW_SHA256
#define NO_SHA512
#define NO_SHA384
#define WOLFSSL_NO_SHA512

#endif /* CS_USER_SETTINGS_H */
