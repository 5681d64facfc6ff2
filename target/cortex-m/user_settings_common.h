/*
 * user_settings_common.h - wolfCrypt settings shared by the Cortex-M
 * verifier builds: wolfCrypt only, verify only, no RNG, no files, no
 * threads, no heap.  Included by p256/user_settings.h and
 * ed25519/user_settings.h; the build puts one of the two directories on
 * the include path.
 */
#ifndef CS_USER_SETTINGS_COMMON_H
#define CS_USER_SETTINGS_COMMON_H

#define WOLFCRYPT_ONLY
#define SINGLE_THREADED
#define NO_FILESYSTEM
#define NO_WRITEV
#define NO_MAIN_DRIVER
#define NO_DEV_RANDOM
#define NO_STDIO_FILESYSTEM
#define WC_NO_RNG
#define NO_ASN
#define NO_ASN_TIME
#define NO_CERTS
#define NO_CODING
#define NO_SIG_WRAPPER
#define NO_ERROR_STRINGS
#define NO_WOLFSSL_MEMORY
#define WOLFSSL_NO_MALLOC
#define BENCH_EMBEDDED
#define WOLFSSL_GENERAL_ALIGNMENT 4
/* Verification handles public data only: no secret to shield from
 * timing side channels, so the hardening options are not needed. */
#define WC_NO_HARDEN
#define SIZEOF_LONG_LONG 8

/* Everything the verifier does not use. */
#define NO_RSA
#define NO_DH
#define NO_DSA
#define NO_AES
#define NO_AES_CBC
#define NO_DES3
#define NO_RC4
#define NO_MD4
#define NO_MD5
#define NO_SHA
#define NO_HMAC
#define NO_PSK
#define NO_PWDBASED
#define NO_OLD_TLS
#define NO_SESSION_CACHE
#define NO_KDF
#define WOLFSSL_NO_SHAKE256
#define WOLFSSL_NO_SHAKE128

#endif /* CS_USER_SETTINGS_COMMON_H */
