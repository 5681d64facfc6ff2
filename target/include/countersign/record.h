/*
 * countersign/record.h - the device record, v1: layout constants shared by
 * the authority (which encodes and signs records) and the target verifier
 * (which parses and checks them).  docs/record-format.md is the byte-by-
 * byte description; this header and that document must agree.
 *
 * Freestanding C99: only <stddef.h> and <stdint.h>.
 *
 *   off  len      field
 *   0    4        magic "CSRD"
 *   4    1        version (1)
 *   5    1        alg: 1 = ECDSA P-256 / SHA-256, 2 = Ed25519
 *   6    1        flags: bit 0 = firmware digest present; others 0
 *   7    1        uid_len: 1..32
 *   8    8        key_id: SHA-256(SubjectPublicKeyInfo DER)[0..8)
 *   16   4        product_id (little-endian)
 *   20   4        serial (little-endian, from 1)
 *   24   8        order_hash: SHA-256(order id, UTF-8)[0..8)
 *   32   uid_len  uid
 *   ..   32       firmware SHA-256 (only when flags bit 0)
 *   ..   64       signature over "countersign/record/v1" || bytes [0, sig)
 */
#ifndef COUNTERSIGN_RECORD_H
#define COUNTERSIGN_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define CS_RECORD_MAGIC      "CSRD"
#define CS_RECORD_MAGIC_LEN  4u
#define CS_RECORD_VERSION    1u

/* Values of the alg byte; equal to cs_alg in common/cs_crypto.h. */
#define CS_RECORD_ALG_P256    1u
#define CS_RECORD_ALG_ED25519 2u

/* The flags byte. */
#define CS_RECORD_FLAG_FIRMWARE 0x01u /* a firmware digest is present */
#define CS_RECORD_FLAGS_KNOWN   0x01u /* every other bit must be 0 */

/* Field offsets of the fixed header. */
#define CS_RECORD_OFF_MAGIC      0u
#define CS_RECORD_OFF_VERSION    4u
#define CS_RECORD_OFF_ALG        5u
#define CS_RECORD_OFF_FLAGS      6u
#define CS_RECORD_OFF_UID_LEN    7u
#define CS_RECORD_OFF_KEY_ID     8u
#define CS_RECORD_OFF_PRODUCT    16u
#define CS_RECORD_OFF_SERIAL     20u
#define CS_RECORD_OFF_ORDER_HASH 24u
#define CS_RECORD_OFF_UID        32u

/* Field sizes. */
#define CS_RECORD_HEADER_LEN     32u /* everything before the UID */
#define CS_RECORD_KEY_ID_LEN     8u
#define CS_RECORD_ORDER_HASH_LEN 8u
#define CS_RECORD_UID_MIN        1u
#define CS_RECORD_UID_MAX        32u
#define CS_RECORD_FW_DIGEST_LEN  32u
#define CS_RECORD_SIG_LEN        64u

/* Whole-record bounds: 32 + 1 + 64 and 32 + 32 + 32 + 64. */
#define CS_RECORD_MIN_LEN 97u
#define CS_RECORD_MAX_LEN 160u

/* Domain separation: the signed message is this string (21 bytes, no
 * NUL) followed by every record byte before the signature. */
#define CS_RECORD_DOMAIN     "countersign/record/v1"
#define CS_RECORD_DOMAIN_LEN 21u

/* Longest signed message: domain + 96 bytes of body. */
#define CS_RECORD_MSG_MAX \
	(CS_RECORD_DOMAIN_LEN + CS_RECORD_MAX_LEN - CS_RECORD_SIG_LEN)

/*
 * Length of a record whose header declares uid_len and flags: 32 +
 * uid_len (+ 32 with a firmware digest) + 64.  Does not check uid_len or
 * flags; callers check them first.
 */
#define CS_RECORD_SIZE(uid_len, flags)                                  \
	(CS_RECORD_HEADER_LEN + (size_t)(uid_len) +                      \
	    (((flags) & CS_RECORD_FLAG_FIRMWARE) != 0                    \
		    ? CS_RECORD_FW_DIGEST_LEN                            \
		    : 0u) +                                              \
	    CS_RECORD_SIG_LEN)

#endif /* COUNTERSIGN_RECORD_H */
