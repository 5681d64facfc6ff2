/*
 * cs_crypto.h - small crypto helpers shared by every component: SHA-256,
 * SubjectPublicKeyInfo encoding of the two signature algorithms, key ids,
 * and signature verification with wolfCrypt.
 *
 * The key id is the one way the project names a public key: the first 8
 * bytes of SHA-256 over the key's SubjectPublicKeyInfo DER.  It is computed
 * here and nowhere else.
 */
#ifndef CS_CRYPTO_H
#define CS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Signature algorithms of device records. */
typedef enum cs_alg {
	CS_ALG_NONE    = 0,
	CS_ALG_P256    = 1, /* ECDSA P-256 over SHA-256, signature r||s */
	CS_ALG_ED25519 = 2, /* PureEdDSA Ed25519 */
} cs_alg;

#define CS_SHA256_LEN      32u
#define CS_KEY_ID_LEN      8u
#define CS_SIG_LEN         64u  /* both algorithms */
#define CS_P256_POINT_LEN  65u  /* 04 || X || Y */
#define CS_ED25519_PUB_LEN 32u
#define CS_SPKI_MAX        91u  /* P-256 SPKI DER; Ed25519 is 44 */

/* "p256" / "ed25519"; "none" otherwise. */
const char *cs_alg_name(cs_alg alg);

/* Parse "p256" or "ed25519"; CS_OK or CS_EINVAL. */
int cs_alg_parse(const char *s, cs_alg *out);

/* SHA-256 of data.  Returns CS_OK or CS_ECRYPTO. */
int cs_sha256(const void *data, size_t len, uint8_t out[CS_SHA256_LEN]);

/*
 * Encode a raw public key as SubjectPublicKeyInfo DER.  pub is the
 * uncompressed point (65 bytes, 0x04 first) for P-256, the 32-byte key for
 * Ed25519.  Returns the DER length in *len.  Errors: CS_EINVAL (wrong
 * length or format), CS_ETOOBIG (out too small).
 */
int cs_spki_encode(cs_alg alg, const uint8_t *pub, size_t pub_len,
    uint8_t *out, size_t out_size, size_t *len);

/*
 * Decode SubjectPublicKeyInfo DER of one of the two algorithms: sets *alg
 * and copies the raw key (point or 32 bytes) to pub (at least 65 bytes),
 * its length to *pub_len.  Errors: CS_EINVAL (not one of the two exact
 * encodings).
 */
int cs_spki_decode(const uint8_t *der, size_t len, cs_alg *alg,
    uint8_t *pub, size_t *pub_len);

/* Key id: the first 8 bytes of SHA-256 over the SPKI DER. */
int cs_key_id(const uint8_t *spki, size_t len, uint8_t id[CS_KEY_ID_LEN]);

/*
 * Verify a 64-byte signature with a raw public key (as cs_spki_encode
 * takes it).  P-256: msg is hashed with SHA-256 and r||s checked against
 * it; Ed25519: PureEdDSA over msg.  Returns CS_OK when valid, CS_ECRYPTO
 * when the signature does not verify, CS_EINVAL for a malformed key.
 */
int cs_verify(cs_alg alg, const uint8_t *pub, size_t pub_len,
    const void *msg, size_t msg_len, const uint8_t sig[CS_SIG_LEN]);

/*
 * Convert a raw r||s P-256 signature to DER (ECDSA-Sig-Value), as openssl
 * dgst -verify expects.  out needs at least 72 bytes.  Returns CS_OK with
 * *len set, or CS_ETOOBIG.
 */
int cs_ecdsa_raw_to_der(const uint8_t sig[CS_SIG_LEN], uint8_t *out,
    size_t out_size, size_t *len);

/* PEM-armour DER as "-----BEGIN <label>-----"; out is NUL-terminated.
 * Returns CS_OK or CS_ETOOBIG. */
int cs_pem_encode(const char *label, const uint8_t *der, size_t len,
    char *out, size_t out_size);

/*
 * AES-256-GCM (wolfCrypt): the authority's sealing of held firmware
 * chunks.  seal writes len bytes of ciphertext then the 16-byte tag to
 * out (len + CS_GCM_TAG_LEN bytes); open checks the tag of in (ciphertext
 * || tag, at least CS_GCM_TAG_LEN bytes) and only then writes the
 * plaintext (in_len - CS_GCM_TAG_LEN bytes) to out.  A nonce must never
 * repeat under one key.  Errors: CS_EINVAL, CS_ECRYPTO (open: the tag,
 * the key, the nonce or the AAD does not match).  The key schedule is
 * wiped before return.
 */
#define CS_AES256_KEY_LEN 32u
#define CS_GCM_NONCE_LEN  12u
#define CS_GCM_TAG_LEN    16u
int cs_aes_gcm_seal(const uint8_t key[CS_AES256_KEY_LEN],
    const uint8_t nonce[CS_GCM_NONCE_LEN], const uint8_t *aad,
    size_t aad_len, const uint8_t *pt, size_t len, uint8_t *out);
int cs_aes_gcm_open(const uint8_t key[CS_AES256_KEY_LEN],
    const uint8_t nonce[CS_GCM_NONCE_LEN], const uint8_t *aad,
    size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out);

/* Wipe memory that held a secret; never optimised away. */
void cs_wipe(void *p, size_t len);

/* Constant-time comparison: true when equal. */
bool cs_ct_equal(const void *a, const void *b, size_t len);

/*
 * Call at the end of a thread that did TLS handshakes or verified ECDSA
 * signatures through wolfCrypt: frees the thread's FP_ECC table (see
 * cs_crypto.c), which wolfCrypt otherwise leaks when the thread ends.
 */
void cs_crypto_thread_end(void);

#endif /* CS_CRYPTO_H */
