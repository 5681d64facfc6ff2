/*
 * ed25519/user_settings.h - wolfCrypt for a Cortex-M3 verifier of Ed25519
 * records, size profile: the low-memory field and group code
 * (fe_low_mem.c, ge_low_mem.c), no signing, SHA-512 in its small form.
 * Slow (tens of millions of instructions per verify) but small.
 *
 * SHA-256 is not part of this verifier; the example firmware compiles
 * sha256.c on its own to measure itself (examples/lm3s6965/measure.c),
 * in its small form like the P-256 profile's.
 */
#ifndef CS_USER_SETTINGS_H
#define CS_USER_SETTINGS_H

#include "user_settings_common.h"

#define HAVE_ED25519
#define ED25519_SMALL
#define CURVE25519_SMALL
#define NO_ED25519_SIGN
#define NO_ED25519_KEY_EXPORT
#define WOLFSSL_SHA512
#define USE_SLOW_SHA512
#define NO_SHA384
#define NO_ECC256
#define USE_SLOW_SHA256

#endif /* CS_USER_SETTINGS_H */
