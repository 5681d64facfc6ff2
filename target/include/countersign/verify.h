/*
 * countersign/verify.h - the target verifier: decides whether this device
 * is authorized, from its device record, its own UID and the public keys
 * compiled into its firmware.
 *
 * Freestanding C99.  No malloc, no global state (one exception: the
 * Cortex-M P-256 size profile's crypto backend keeps its verify context,
 * 2 560 bytes, in .bss; see cs_verify_record): the caller owns every
 * buffer.  The verifier never reads a record byte at or beyond len.  Crypto
 * is wolfCrypt; exactly one backend is compiled per build (host: Debian's
 * libwolfssl; Cortex-M: the few wolfCrypt files the build takes from
 * Debian's wolfssl source package, one algorithm per image).
 *
 * Fault-injection hardening (in the spirit of mcuboot's FIH): the success
 * value is a multi-bit constant, never 0 or 1, and every failure code is a
 * different, equally unlikely value, so a zeroed register or a skipped
 * store does not turn a failure into CS_VERIFY_OK.  The signature's OK is
 * derived from two reports of wolfCrypt (P-256: two verifies) in two XOR
 * steps, and before returning CS_VERIFY_OK the verifier re-checks the
 * decisive facts a second, independent time (signature result against its
 * inverse, key id, product, UID, firmware digest); any disagreement
 * returns CS_VERIFY_FAULT.  The caller should test the result twice as
 * well (CS_VERIFY_AUTHORIZED).  Fault model: one skipped instruction per
 * verify, wolfCrypt included (checked on QEMU by skip_campaign_test); not
 * repeated, coordinated glitches, nor code that ignores the result.  See
 * docs/record-format.md, "Fault injection".
 */
#ifndef COUNTERSIGN_VERIFY_H
#define COUNTERSIGN_VERIFY_H

#include "countersign/record.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Results: name, value, text.  Checks run in this documented order (see
 * docs/record-format.md, "Order of checks"): arguments, length >= 32,
 * magic, version, flags, uid_len, exact length, algorithm, key id, then
 * the signature, and only on a valid signature product, UID and firmware.
 */
#define CS_VERIFY_RESULT_LIST(X)                                           \
	X(OK, 0x5A3C96A5, "device authorized")                             \
	X(BAD_ARGUMENT, 0x2C4B1E01, "bad argument (NULL or no keys)")     \
	X(TRUNCATED, 0x2C4B1E12, "record truncated")                       \
	X(BAD_MAGIC, 0x2C4B1E23, "not a device record (bad magic)")        \
	X(BAD_VERSION, 0x2C4B1E34, "unsupported record version")           \
	X(BAD_FLAGS, 0x2C4B1E45, "unknown record flags")                   \
	X(BAD_UID_LEN, 0x2C4B1E56, "record UID length out of range")       \
	X(OVERSIZED, 0x2C4B1E67, "record longer than its declared size")   \
	X(UNSUPPORTED_ALG, 0x2C4B1E78, "signature algorithm not supported") \
	X(UNKNOWN_KEY, 0x2C4B1E89, "record signed by an unknown key")      \
	X(BAD_SIGNATURE, 0x2C4B1E9A, "bad signature")                      \
	X(WRONG_PRODUCT, 0x2C4B1EAB, "record is for another product")      \
	X(UID_MISMATCH, 0x2C4B1EBC, "record is for another device (UID)")  \
	X(FIRMWARE_MISMATCH, 0x2C4B1ECD, "record is for another firmware") \
	X(FIRMWARE_MISSING, 0x2C4B1EDE,                                    \
	    "record binds no firmware but policy requires it")             \
	X(CRYPTO_ERROR, 0x2C4B1EEF, "crypto backend error (bad key)")      \
	X(FAULT, 0x2C4B1EF0, "inconsistent verdict (fault detected)")

typedef enum cs_verify_result {
#define CS_VERIFY_RESULT_ENUM(name, val, text) CS_VERIFY_##name = val,
	CS_VERIFY_RESULT_LIST(CS_VERIFY_RESULT_ENUM)
#undef CS_VERIFY_RESULT_ENUM
} cs_verify_result;

/* A result is "authorized" only if two separate comparisons agree; use
 * this macro (or two comparisons of your own) at the decision point. */
#define CS_VERIFY_AUTHORIZED(r)                                          \
	((r) == CS_VERIFY_OK &&                                          \
	    ((uint32_t)(r) ^ 0xFFFFFFFFu) ==                             \
		((uint32_t)CS_VERIFY_OK ^ 0xFFFFFFFFu))

/* One trusted public key, as countersign-keytool export --format c-header
 * writes it, so that firmware can keep the table in flash:
 *   { CS_TRUST_KEY_ALG, cs_trust_key_id, cs_trust_public_key,
 *     CS_TRUST_KEY_LEN } */
struct cs_trust_key {
	uint8_t        alg;     /* CS_RECORD_ALG_P256 or _ED25519 */
	const uint8_t *key_id;  /* CS_RECORD_KEY_ID_LEN (8) bytes */
	const uint8_t *pub;     /* P-256: 04||X||Y (65); Ed25519: 32 bytes */
	size_t         pub_len;
};

/* What the device trusts, and its policy.  Usually a const in flash. */
struct cs_verify_trust {
	const struct cs_trust_key *keys; /* 1..n keys (key rotation) */
	size_t                     n_keys;
	uint32_t                   product_id; /* this firmware's product */
	/* The SHA-256 of the running firmware, or NULL when the firmware
	 * does not measure itself.  A record that carries a digest must
	 * match it (NULL then fails: FIRMWARE_MISMATCH). */
	const uint8_t *firmware_digest;
	/* Nonzero: a record without a firmware digest is refused
	 * (FIRMWARE_MISSING).  Zero: such records are accepted. */
	int require_firmware_digest;
};

/*
 * The decoded record.  Filled as far as parsing got: header fields once
 * the length checks passed (parsed != 0); they are authentic only when the
 * result is CS_VERIFY_OK or a check after BAD_SIGNATURE failed
 * (signature_valid != 0).
 */
struct cs_record_info {
	int      parsed;
	int      signature_valid;
	uint8_t  version;
	uint8_t  alg;
	uint8_t  flags;
	uint8_t  uid_len;
	uint8_t  key_id[CS_RECORD_KEY_ID_LEN];
	uint32_t product_id;
	uint32_t serial;
	uint8_t  order_hash[CS_RECORD_ORDER_HASH_LEN];
	uint8_t  uid[CS_RECORD_UID_MAX];
	uint8_t  firmware_digest[CS_RECORD_FW_DIGEST_LEN]; /* if flag bit 0 */
	uint8_t  signature[CS_RECORD_SIG_LEN];
	size_t   record_len; /* the size the header declares */
	size_t   key_index;  /* index into trust->keys of the key found */
};

/*
 * How many bytes the record starting at hdr occupies, judged from its
 * first 32 bytes (hdr_len must be >= 32): 97..160, or 0 when those bytes
 * are not a v1 record header (bad magic, version, flags or uid_len).  Lets
 * boot code read exactly one record from flash.  Reads at most hdr_len and
 * at most 32 bytes.
 */
size_t cs_record_size(const uint8_t *hdr, size_t hdr_len);

/*
 * Verify the record (exactly len bytes: shorter than its declared size is
 * TRUNCATED, longer is OVERSIZED) for the device whose UID is uid
 * (uid_len bytes, as the hardware reports it) against trust.  info, when
 * not NULL, receives the decoded fields.  Returns CS_VERIFY_OK only when
 * the signature is valid under a trusted key of the record's algorithm,
 * the product, the UID and (per policy) the firmware digest match.  Never
 * reads record[len] or beyond; uses a fixed amount of stack (no VLAs, no
 * malloc); UID, key id and digest compares are constant-time.  Reentrant,
 * except with the P-256 backend built with WOLFSSL_SP_NONBLOCK (the
 * Cortex-M size profile, src/crypto_wolfcrypt_sp.c): its verify state is
 * one static buffer, so one verify at a time (not from an interrupt that
 * may preempt another).
 */
cs_verify_result cs_verify_record(const uint8_t *record, size_t len,
    const uint8_t *uid, size_t uid_len, const struct cs_verify_trust *trust,
    struct cs_record_info *info);

/* A short English text for r ("bad signature"); never NULL. */
const char *cs_verify_strerror(cs_verify_result r);

/* The code's name without prefix ("BAD_SIGNATURE"); never NULL
 * ("UNKNOWN" for values outside the enum). */
const char *cs_verify_name(cs_verify_result r);

#endif /* COUNTERSIGN_VERIFY_H */
