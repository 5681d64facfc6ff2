/*
 * verify.c - the device record parser and verifier (cs_verify_record).
 *
 * The checks run in a fixed, documented order (docs/record-format.md,
 * "Order of checks").  Every read of the record is preceded by a length
 * check against len; nothing is copied except into the caller's info and
 * one fixed stack buffer holding the signed message (at most 117 bytes).
 *
 * The verdict is reached twice (see verify.h): the first pass returns the
 * first failing check; a second pass re-derives every fact that decides
 * "authorized" from scratch, with different comparisons, and only when
 * both agree is CS_VERIFY_OK returned.  CS_VERIFY_OK appears in one place
 * only, the end: sub-checks report success as 0 and every early return
 * is a failure constant, so skipping the test of a sub-check's result can
 * never return OK early (the first fault-injection campaign on QEMU found
 * exactly that with "return rv").  Nor is OK ever returned as a literal:
 * the result is the backend's derived value (crypto.h, cs_crypto_verdict)
 * XOR the second pass's accumulated difference.  Intermediate verdicts
 * live in volatile variables so that the compiler cannot fold the two
 * passes into one.
 */
#include "countersign/verify.h"

#include "crypto.h"

#include <string.h>

/* Exactly one backend per build (see crypto.h). */
#if defined(CS_CRYPTO_WOLFCRYPT) + defined(CS_CRYPTO_WOLFCRYPT_SP) != 1
#error "define exactly one of CS_CRYPTO_WOLFCRYPT, CS_CRYPTO_WOLFCRYPT_SP"
#endif

#define CS_INV(x) ((uint32_t)(x) ^ 0xFFFFFFFFu)

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* Constant-time difference of two buffers: 0 when equal, nonzero
 * otherwise.  The time depends on len only. */
static uint32_t
ct_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	volatile uint32_t acc = 0;

	for (size_t i = 0; i < len; i++) {
		acc |= (uint32_t)(a[i] ^ b[i]);
	}
	return acc;
}

/* The header checks that need no key: magic, version, flags, uid_len.
 * hdr has at least CS_RECORD_HEADER_LEN bytes.  Returns 0 when they pass,
 * else the failure code.  Sub-checks never return CS_VERIFY_OK: a glitch
 * that skips the caller's test of the result must not hand OK upwards. */
static uint32_t
check_header(const uint8_t *hdr)
{
	if (memcmp(hdr + CS_RECORD_OFF_MAGIC, CS_RECORD_MAGIC,
		CS_RECORD_MAGIC_LEN) != 0) {
		return CS_VERIFY_BAD_MAGIC;
	}
	if (hdr[CS_RECORD_OFF_VERSION] != CS_RECORD_VERSION) {
		return CS_VERIFY_BAD_VERSION;
	}
	if ((hdr[CS_RECORD_OFF_FLAGS] & ~CS_RECORD_FLAGS_KNOWN) != 0) {
		return CS_VERIFY_BAD_FLAGS;
	}
	if (hdr[CS_RECORD_OFF_UID_LEN] < CS_RECORD_UID_MIN ||
	    hdr[CS_RECORD_OFF_UID_LEN] > CS_RECORD_UID_MAX) {
		return CS_VERIFY_BAD_UID_LEN;
	}
	return 0;
}

size_t
cs_record_size(const uint8_t *hdr, size_t hdr_len)
{
	if (hdr == NULL || hdr_len < CS_RECORD_HEADER_LEN ||
	    check_header(hdr) != 0) {
		return 0;
	}
	return CS_RECORD_SIZE(hdr[CS_RECORD_OFF_UID_LEN],
	    hdr[CS_RECORD_OFF_FLAGS]);
}

/* Find the trusted key with the record's key id and algorithm.  Every
 * entry is compared (constant time per entry, no early exit), so timing
 * shows only the table size.  Returns the index, or n_keys if none. */
static size_t
find_key(const struct cs_verify_trust *trust, uint8_t alg,
    const uint8_t *key_id)
{
	size_t found = trust->n_keys;

	for (size_t i = 0; i < trust->n_keys; i++) {
		const struct cs_trust_key *k = &trust->keys[i];
		uint32_t                   d;

		if (k->key_id == NULL || k->pub == NULL) {
			continue; /* an unusable entry matches nothing */
		}
		d = ct_diff(k->key_id, key_id, CS_RECORD_KEY_ID_LEN);
		d |= (uint32_t)(k->alg ^ alg);
		if (d == 0 && found == trust->n_keys) {
			found = i;
		}
	}
	return found;
}

static void
fill_info(struct cs_record_info *info, const uint8_t *r, size_t size)
{
	size_t off = CS_RECORD_OFF_UID;

	info->parsed     = 1;
	info->version    = r[CS_RECORD_OFF_VERSION];
	info->alg        = r[CS_RECORD_OFF_ALG];
	info->flags      = r[CS_RECORD_OFF_FLAGS];
	info->uid_len    = r[CS_RECORD_OFF_UID_LEN];
	info->product_id = get_le32(r + CS_RECORD_OFF_PRODUCT);
	info->serial     = get_le32(r + CS_RECORD_OFF_SERIAL);
	info->record_len = size;
	memcpy(info->key_id, r + CS_RECORD_OFF_KEY_ID, CS_RECORD_KEY_ID_LEN);
	memcpy(info->order_hash, r + CS_RECORD_OFF_ORDER_HASH,
	    CS_RECORD_ORDER_HASH_LEN);
	memcpy(info->uid, r + off, info->uid_len);
	off += info->uid_len;
	if ((info->flags & CS_RECORD_FLAG_FIRMWARE) != 0) {
		memcpy(info->firmware_digest, r + off,
		    CS_RECORD_FW_DIGEST_LEN);
		off += CS_RECORD_FW_DIGEST_LEN;
	}
	memcpy(info->signature, r + off, CS_RECORD_SIG_LEN);
}

/* The firmware binding check: 0 (passed), FIRMWARE_MISMATCH or
 * FIRMWARE_MISSING.  rec_fw is NULL when the record binds no firmware. */
static uint32_t
check_firmware(const struct cs_verify_trust *trust, const uint8_t *rec_fw)
{
	if (rec_fw == NULL) {
		return trust->require_firmware_digest != 0
		    ? (uint32_t)CS_VERIFY_FIRMWARE_MISSING
		    : 0;
	}
	if (trust->firmware_digest == NULL ||
	    ct_diff(rec_fw, trust->firmware_digest,
		CS_RECORD_FW_DIGEST_LEN) != 0) {
		return CS_VERIFY_FIRMWARE_MISMATCH;
	}
	return 0;
}

cs_verify_result
cs_verify_record(const uint8_t *record, size_t len, const uint8_t *uid,
    size_t uid_len, const struct cs_verify_trust *trust,
    struct cs_record_info *info)
{
	uint8_t           msg[CS_RECORD_MSG_MAX];
	volatile uint32_t sig_ok   = CS_VERIFY_BAD_SIGNATURE;
	volatile uint32_t sig_inv  = CS_INV(CS_VERIFY_BAD_SIGNATURE);
	volatile uint32_t verdict  = CS_VERIFY_FAULT;
	volatile uint32_t recheck  = 0;
	uint32_t          rv;
	const uint8_t    *rec_uid, *rec_fw = NULL, *sig;
	size_t            size, body, key;
	uint32_t          r;

	if (info != NULL) {
		memset(info, 0, sizeof(*info));
	}
	if (record == NULL || trust == NULL || trust->keys == NULL ||
	    trust->n_keys == 0 || (uid == NULL && uid_len != 0)) {
		return CS_VERIFY_BAD_ARGUMENT;
	}

	/* 1. Length and header: nothing beyond 32 bytes is read until the
	 * declared size is known to fit in len. */
	if (len < CS_RECORD_HEADER_LEN) {
		return CS_VERIFY_TRUNCATED;
	}
	if ((rv = check_header(record)) != 0) {
		return (cs_verify_result)rv;
	}
	size = CS_RECORD_SIZE(record[CS_RECORD_OFF_UID_LEN],
	    record[CS_RECORD_OFF_FLAGS]);
	if (len < size) {
		return CS_VERIFY_TRUNCATED;
	}
	if (len > size) {
		return CS_VERIFY_OVERSIZED;
	}
	body    = size - CS_RECORD_SIG_LEN;
	rec_uid = record + CS_RECORD_OFF_UID;
	if ((record[CS_RECORD_OFF_FLAGS] & CS_RECORD_FLAG_FIRMWARE) != 0) {
		rec_fw = rec_uid + record[CS_RECORD_OFF_UID_LEN];
	}
	sig = record + body;
	if (info != NULL) {
		fill_info(info, record, size);
	}

	/* 2. Algorithm and key. */
	if (!cs_crypto_has_alg(record[CS_RECORD_OFF_ALG])) {
		return CS_VERIFY_UNSUPPORTED_ALG;
	}
	key = find_key(trust, record[CS_RECORD_OFF_ALG],
	    record + CS_RECORD_OFF_KEY_ID);
	if (key >= trust->n_keys) {
		return CS_VERIFY_UNKNOWN_KEY;
	}
	if (info != NULL) {
		info->key_index = key;
	}

	/* 3. Signature over domain || body. */
	memcpy(msg, CS_RECORD_DOMAIN, CS_RECORD_DOMAIN_LEN);
	memcpy(msg + CS_RECORD_DOMAIN_LEN, record, body);
	r = cs_crypto_verify(record[CS_RECORD_OFF_ALG],
	    trust->keys[key].pub, trust->keys[key].pub_len, msg,
	    CS_RECORD_DOMAIN_LEN + body, sig);
	sig_ok  = r;
	sig_inv = CS_INV(r);
	if (r != CS_VERIFY_OK) {
		/* Constants only: never pass r itself upwards. */
		if (r == CS_VERIFY_CRYPTO_ERROR) {
			return CS_VERIFY_CRYPTO_ERROR;
		}
		if (r == CS_VERIFY_UNSUPPORTED_ALG) {
			return CS_VERIFY_UNSUPPORTED_ALG;
		}
		return CS_VERIFY_BAD_SIGNATURE;
	}
	if (info != NULL) {
		info->signature_valid = 1;
	}

	/* 4. What the record says, against this device.  No early return
	 * here: the signature's value may still sit in a register, and a
	 * skipped load of a failure constant before "return" would hand
	 * it upwards (the skip campaign found exactly that).  A failure
	 * replaces the verdict instead, and the second pass runs in any
	 * case. */
	verdict = sig_ok;
	if (get_le32(record + CS_RECORD_OFF_PRODUCT) != trust->product_id) {
		verdict = CS_VERIFY_WRONG_PRODUCT;
	} else if (uid_len != record[CS_RECORD_OFF_UID_LEN] ||
	    ct_diff(rec_uid, uid, uid_len) != 0) {
		verdict = CS_VERIFY_UID_MISMATCH;
	} else if ((rv = check_firmware(trust, rec_fw)) != 0) {
		verdict = rv;
	}

	/* 5. Second pass: every decisive fact again, compared differently.
	 * Any difference means a check above was skipped or corrupted. */
	recheck |= sig_ok ^ (uint32_t)CS_VERIFY_OK;
	recheck |= sig_inv ^ CS_INV(CS_VERIFY_OK);
	recheck |= ct_diff(trust->keys[key].key_id,
	    record + CS_RECORD_OFF_KEY_ID, CS_RECORD_KEY_ID_LEN);
	recheck |= (uint32_t)(trust->keys[key].alg ^
	    record[CS_RECORD_OFF_ALG]);
	recheck |= CS_INV(get_le32(record + CS_RECORD_OFF_PRODUCT)) ^
	    CS_INV(trust->product_id);
	recheck |= (uint32_t)(uid_len ^ (size_t)record[CS_RECORD_OFF_UID_LEN]);
	/* Only as many bytes as the device's UID has (the first pass may
	 * have failed on the length). */
	recheck |= uid_len == record[CS_RECORD_OFF_UID_LEN]
	    ? ct_diff(uid, rec_uid, uid_len)
	    : 1u;
	recheck |= check_firmware(trust, rec_fw);
	if (verdict != CS_VERIFY_OK && recheck != 0) {
		/* The first pass's reason; the second pass agrees that
		 * something failed.  Never OK: recheck is nonzero. */
		return (cs_verify_result)verdict;
	}
	if (recheck != 0 || verdict != CS_VERIFY_OK ||
	    CS_INV(verdict) != CS_INV(CS_VERIFY_OK)) {
		return CS_VERIFY_FAULT;
	}
	/* recheck is 0 here; were the test above skipped, a nonzero one
	 * still keeps the result away from OK. */
	return (cs_verify_result)(verdict ^ recheck);
}

#define CS_VERIFY_RESULT_CASE(name, val, text)                          \
	case CS_VERIFY_##name:                                          \
		return which ? #name : text;

static const char *
describe(cs_verify_result r, int which)
{
	switch (r) {
		CS_VERIFY_RESULT_LIST(CS_VERIFY_RESULT_CASE)
	}
	return which ? "UNKNOWN" : "unknown verifier result";
}

const char *
cs_verify_strerror(cs_verify_result r)
{
	return describe(r, 0);
}

const char *
cs_verify_name(cs_verify_result r)
{
	return describe(r, 1);
}
