/*
 * record_encode.h - the authority side of the device record: lay out the
 * bytes of a v1 record (target/include/countersign/record.h,
 * docs/record-format.md), build the message that gets signed, and sign it
 * through the HSM shim.
 *
 * The authority never trusts its own encoder blindly: cs_record_sign_hsm
 * checks the HSM's signature against the key's public half before it
 * hands out a record.
 */
#ifndef CS_RECORD_ENCODE_H
#define CS_RECORD_ENCODE_H

#include "countersign/record.h"
#include "cs_crypto.h"
#include "cs_hsm.h"

#include <stddef.h>
#include <stdint.h>

/* What a record says about one device. */
struct cs_record_fields {
	uint32_t       product_id;
	uint32_t       serial;     /* from 1 within the order */
	uint8_t        order_hash[CS_RECORD_ORDER_HASH_LEN];
	const uint8_t *uid;        /* 1..32 bytes, as read from the device */
	size_t         uid_len;
	const uint8_t *firmware_digest; /* 32 bytes, or NULL: not bound */
};

/* order_hash: the first 8 bytes of SHA-256 over order_id (UTF-8, no NUL).
 * Returns CS_OK, CS_EINVAL (NULL or empty id) or CS_ECRYPTO. */
int cs_record_order_hash(const char *order_id,
    uint8_t out[CS_RECORD_ORDER_HASH_LEN]);

/*
 * Lay out the record for fields f signed with alg under the key key_id
 * into out: every byte except the signature.  *tbs_len receives the
 * length of that part (the record is *tbs_len + 64 bytes; out must hold
 * the whole record, the signature goes at out + *tbs_len).  Errors:
 * CS_EINVAL (uid_len outside 1..32, serial 0, unknown alg, NULL pointer),
 * CS_ETOOBIG (out_size smaller than the record).
 */
int cs_record_encode(const struct cs_record_fields *f, cs_alg alg,
    const uint8_t key_id[CS_RECORD_KEY_ID_LEN], uint8_t *out,
    size_t out_size, size_t *tbs_len);

/*
 * The signed message: "countersign/record/v1" || tbs (tbs_len bytes, the
 * record without its signature) into msg.  Errors: CS_EINVAL, CS_ETOOBIG
 * (msg_size < 21 + tbs_len).
 */
int cs_record_message(const uint8_t *tbs, size_t tbs_len, uint8_t *msg,
    size_t msg_size, size_t *msg_len);

/*
 * Encode and sign a whole record with the HSM key key (from cs_hsm_key):
 * alg and key id come from the key; the signature is checked against the
 * key's public half before the record is returned.  *len receives the
 * record length (97..160).  Errors: those of cs_record_encode, cs_hsm_sign
 * (CS_EHSM, CS_ETIMEDOUT, ...), and CS_ECRYPTO when the HSM's signature
 * does not verify.  Thread-safe as cs_hsm_sign is.
 */
int cs_record_sign_hsm(cs_hsm *h, const struct cs_hsm_key *key,
    const struct cs_record_fields *f, uint8_t *out, size_t out_size,
    size_t *len);

#endif /* CS_RECORD_ENCODE_H */
