/*
 * cs_hsm.h - the HSM shim: PKCS#11 signing with keys that never leave the
 * HSM.
 *
 * One cs_hsm is one loaded PKCS#11 module, one token (found by label, never
 * by slot number) logged in as the user, and a pool of sessions for
 * concurrent signing.  Keys are found by label (CKA_LABEL) and their
 * handles cached.  When the token goes away or sessions become invalid
 * (CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
 * ...), the shim re-opens sessions, logs in again and re-finds handles on
 * the next use, so callers see CS_EHSM for the failed operation and
 * success again once the token is back.
 *
 * PKCS#11's header defines common lowercase macros; only cs_hsm.c includes
 * it.  All functions are thread-safe unless noted.
 *
 * One cs_hsm per module per process: PKCS#11 initialisation and login are
 * per application, so a second cs_hsm on the same module shares them (it
 * works, but the one that initialised the module finalizes it on close).
 */
#ifndef CS_HSM_H
#define CS_HSM_H

#include "cs_crypto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cs_hsm cs_hsm;

struct cs_hsm_opts {
	const char *module;   /* PKCS#11 module path (dlopen) */
	const char *token;    /* token label, at most 32 bytes */
	const char *pin_file; /* file whose first line is the user PIN */
	const char *pin_env;  /* or: name of an environment variable with it
	                         (exactly one of the two) */
	unsigned    sessions; /* pool size; 0 = 2, at most 64 */
	unsigned    wait_ms;  /* longest wait for a free session; 0 = 5000,
	                         at most 600000 */
};

/* What the shim knows of one key. */
struct cs_hsm_key {
	char    label[65]; /* 1..64 bytes of printable ASCII */
	cs_alg  alg;       /* CS_ALG_NONE: another kind of key (list only) */
	uint8_t pub[CS_P256_POINT_LEN]; /* raw public key */
	size_t  pub_len;
	uint8_t spki[CS_SPKI_MAX];      /* SubjectPublicKeyInfo DER */
	size_t  spki_len;
	uint8_t key_id[CS_KEY_ID_LEN];
	bool    sensitive;   /* CKA_SENSITIVE of the private key */
	bool    extractable; /* CKA_EXTRACTABLE of the private key */
};

/*
 * Load the module, initialise it (OS locking), find the token, log in and
 * open the session pool.  The PIN is never taken from argv.  It stays in
 * memory for the re-login that recovery needs: in a page of its own,
 * locked into RAM, excluded from core dumps, wiped by cs_hsm_close.
 * Blocks for as long as the module takes.  Errors (err, always
 * NUL-terminated, says what to fix): CS_ENOENT (module file or PIN file
 * missing, PIN variable unset, token label unknown: err lists the labels
 * present), CS_EINVAL (not a PKCS#11 module, bad options, empty PIN),
 * CS_EPERM (wrong PIN, PIN locked, PIN file unreadable), CS_EPRECOND
 * (token without a user PIN), CS_EHSM (other PKCS#11 failures, logged
 * with the CKR_ name).
 */
int cs_hsm_open(cs_hsm **out, const struct cs_hsm_opts *o, char *err,
    size_t errlen);

/*
 * Log out, close sessions, finalize and unload the module, wipe the PIN.
 * NULL-safe.  No other call on h may be running or follow.
 */
void cs_hsm_close(cs_hsm *h);

/*
 * Generate a key pair on the token: private key CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN only (no decrypt, unwrap,
 * derive); public key CKA_VERIFY only.  Both get the key id as CKA_ID.
 * Errors: CS_EEXIST (a private, public or secret key with that label
 * exists), CS_EINVAL (bad label or algorithm, or the token refused the
 * template), CS_EHSM.  Fills *key when non-NULL.
 */
int cs_hsm_keygen(cs_hsm *h, const char *label, cs_alg alg,
    struct cs_hsm_key *key);

/*
 * Find a key pair by label.  Errors: CS_ENOENT (no such private key, or
 * its public half is missing), CS_EINVAL (not a p256 or ed25519 key),
 * CS_EPRECOND (several keys carry the label), CS_ETIMEDOUT, CS_EHSM.
 */
int cs_hsm_key(cs_hsm *h, const char *label, struct cs_hsm_key *key);

/*
 * List the key pairs on the token (those with a private key that signs and
 * a printable label).  Keys of other algorithms are listed with alg
 * CS_ALG_NONE and no public key.  *keys is malloc'ed (free()); *n their
 * count.  Errors: CS_ENOMEM, CS_ETIMEDOUT, CS_EHSM.
 */
int cs_hsm_list(cs_hsm *h, struct cs_hsm_key **keys, size_t *n);

/*
 * Sign with the key labelled label.  P-256: msg is a 32-byte SHA-256
 * digest (the shim signs it with CKM_ECDSA); Ed25519: msg is the message
 * itself (CKM_EDDSA).  sig receives 64 bytes (r||s for ECDSA).  Errors:
 * CS_ENOENT (no such key), CS_EINVAL (wrong digest length for the key's
 * algorithm, or expect is not the key's algorithm), CS_ETIMEDOUT (no
 * session free within wait_ms), CS_EHSM (the token failed or went away;
 * the pool recovers on later calls), CS_EPERM (the token no longer takes
 * the PIN).  expect: the algorithm the caller expects, or CS_ALG_NONE for
 * any.  A call that failed only because sessions or handles went stale
 * (sessions closed, login lost) is retried once after recovery, so the
 * caller does not see it.  Ed25519 messages are at most 64 MiB.
 */
int cs_hsm_sign(cs_hsm *h, const char *label, cs_alg expect,
    const uint8_t *msg, size_t len, uint8_t sig[CS_SIG_LEN]);

/*
 * Secret keys (cs_hsm_secret.c): an AES-256 key on the token that seals
 * small secrets (the authority's firmware data keys) with AES-GCM.
 */
#define CS_HSM_AES_KEY_LEN   32u
#define CS_HSM_SEAL_IV_LEN   12u
#define CS_HSM_SEAL_TAG_LEN  16u
#define CS_HSM_SEAL_OVERHEAD (CS_HSM_SEAL_IV_LEN + CS_HSM_SEAL_TAG_LEN)
#define CS_HSM_SEAL_MAX      256u /* plaintext bytes per seal */
#define CS_HSM_SEALED_MAX    (CS_HSM_SEAL_MAX + CS_HSM_SEAL_OVERHEAD)
#define CS_HSM_AAD_MAX       1024u

/* What the token says of a secret key. */
struct cs_hsm_secret {
	bool   sensitive;      /* CKA_SENSITIVE */
	bool   extractable;    /* CKA_EXTRACTABLE */
	bool   value_readable; /* C_GetAttributeValue(CKA_VALUE) succeeded:
	                          must be false for a key of ours */
	size_t key_len;        /* CKA_VALUE_LEN */
};

/*
 * Generate an AES-256 key on the token: CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_ENCRYPT and CKA_DECRYPT only (no
 * wrap, unwrap, sign, derive).  Errors: CS_EEXIST (any object carries the
 * label), CS_EINVAL (bad label, or the token refused the template),
 * CS_EHSM.
 */
int cs_hsm_secret_keygen(cs_hsm *h, const char *label);

/*
 * Describe the AES key labelled label.  Errors: CS_ENOENT (no AES key with
 * that label), CS_EPRECOND (several), CS_ETIMEDOUT, CS_EHSM.
 */
int cs_hsm_secret_info(cs_hsm *h, const char *label,
    struct cs_hsm_secret *info);

/*
 * Seal pt (1..CS_HSM_SEAL_MAX bytes) with the AES key labelled label:
 * out = iv (12, random from the token) || ciphertext || tag (16), *out_len
 * = len + CS_HSM_SEAL_OVERHEAD.  aad (0..CS_HSM_AAD_MAX bytes) is
 * authenticated, not stored: unseal needs the same bytes.  Errors:
 * CS_EINVAL, CS_ENOENT (no such key), CS_EPRECOND, CS_ETIMEDOUT, CS_EHSM,
 * CS_EPERM.
 */
int cs_hsm_seal(cs_hsm *h, const char *label, const uint8_t *aad,
    size_t aad_len, const uint8_t *pt, size_t len,
    uint8_t out[CS_HSM_SEALED_MAX], size_t *out_len);

/*
 * Open what cs_hsm_seal made.  Errors: CS_ECRYPTO (the tag does not check
 * out: sealed or aad changed, another key, or too short to be sealed),
 * others as cs_hsm_seal.  out is written only on success; the caller
 * wipes it after use.
 */
int cs_hsm_unseal(cs_hsm *h, const char *label, const uint8_t *aad,
    size_t aad_len, const uint8_t *sealed, size_t len,
    uint8_t out[CS_HSM_SEAL_MAX], size_t *out_len);

/* Sessions in the pool, and the token label, for logs. */
unsigned    cs_hsm_sessions(const cs_hsm *h);
const char *cs_hsm_token(const cs_hsm *h);

/*
 * True once the token has refused the PIN (incorrect, locked, expired,
 * wrong length): the shim never tries it again, every call that needs a
 * login fails CS_EPERM, and the program should stop and say so.
 */
bool cs_hsm_pin_refused(cs_hsm *h);

#endif /* CS_HSM_H */
