/*
 * p256-speed/user_settings.h - wolfCrypt for a Cortex-M3 verifier of ECDSA
 * P-256 records, speed profile: wolfCrypt's single-precision P-256 code in
 * Thumb-2 assembly (sp_cortexm.c, WOLFSSL_SP_ARM_CORTEX_M_ASM: unrolled
 * 8x32-bit Montgomery multiplication and squaring), no heap, the P-256
 * curve only, no signing, no key export.
 *
 * sp_cortexm.c in wolfssl 5.5.4 uses ARMv7-M instructions only (umull,
 * adcs, udiv, clz; no umaal or other ARMv7E-M DSP instruction), so it runs
 * on a Cortex-M3 such as the lm3s6965.
 *
 * WOLFSSL_SP_SMALL still: it selects the 16-point (1 KB) base-point table
 * instead of the 256-point (16 KB) one.  Measured on the lm3s6965 in QEMU:
 * with it 3.15 M instructions per verify and ~17 KB flash; without it
 * 2.33 M and ~32 KB, over the 20 KB this profile is allowed.
 * WC_NO_CACHE_RESISTANT: a verifier handles public data only (as
 * WC_NO_HARDEN); it drops the constant-time table scans (-850 bytes).
 *
 * Its verify keeps its temporaries on the stack (~5.6 KB: the build's
 * footprint report gives the figure).  The resumable verify the size
 * profile uses to keep them off the stack (WOLFSSL_SP_NONBLOCK) does not
 * compile in 5.5.4's sp_cortexm.c (sp_256_ecc_mulmod_8_ctx undefined).
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
#define WOLFSSL_SP_ARM_CORTEX_M_ASM
#define WOLFSSL_SP_SMALL
#define WC_NO_CACHE_RESISTANT
#define WOLFSSL_SP_NO_MALLOC
#define SP_WORD_SIZE 32
#define USE_SLOW_SHA256
#define NO_SHA512
#define NO_SHA384
#define WOLFSSL_NO_SHA512

#endif /* CS_USER_SETTINGS_H */
