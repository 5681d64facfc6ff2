/*
 * record_encode.c - encode and sign device records (see record_encode.h).
 *
 * The layout constants come from the header the target verifier uses, so
 * the two sides cannot disagree on an offset.
 */
#include "record_encode.h"

#include "cs_err.h"

#include <string.h>

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

int
cs_record_order_hash(const char *order_id,
    uint8_t out[CS_RECORD_ORDER_HASH_LEN])
{
	uint8_t d[CS_SHA256_LEN];
	int     rv;

	if (order_id == NULL || order_id[0] == '\0' || out == NULL) {
		return CS_EINVAL;
	}
	if ((rv = cs_sha256(order_id, strlen(order_id), d)) != CS_OK) {
		return rv;
	}
	memcpy(out, d, CS_RECORD_ORDER_HASH_LEN);
	return CS_OK;
}

int
cs_record_encode(const struct cs_record_fields *f, cs_alg alg,
    const uint8_t key_id[CS_RECORD_KEY_ID_LEN], uint8_t *out,
    size_t out_size, size_t *tbs_len)
{
	uint8_t flags;
	size_t  size, off;

	if (f == NULL || key_id == NULL || out == NULL || tbs_len == NULL ||
	    f->uid == NULL || f->uid_len < CS_RECORD_UID_MIN ||
	    f->uid_len > CS_RECORD_UID_MAX || f->serial == 0 ||
	    (alg != CS_ALG_P256 && alg != CS_ALG_ED25519)) {
		return CS_EINVAL;
	}
	flags = f->firmware_digest != NULL ? CS_RECORD_FLAG_FIRMWARE : 0;
	size  = CS_RECORD_SIZE(f->uid_len, flags);
	if (out_size < size) {
		return CS_ETOOBIG;
	}
	memcpy(out + CS_RECORD_OFF_MAGIC, CS_RECORD_MAGIC,
	    CS_RECORD_MAGIC_LEN);
	out[CS_RECORD_OFF_VERSION] = CS_RECORD_VERSION;
	out[CS_RECORD_OFF_ALG]     = (uint8_t)alg;
	out[CS_RECORD_OFF_FLAGS]   = flags;
	out[CS_RECORD_OFF_UID_LEN] = (uint8_t)f->uid_len;
	memcpy(out + CS_RECORD_OFF_KEY_ID, key_id, CS_RECORD_KEY_ID_LEN);
	put_le32(out + CS_RECORD_OFF_PRODUCT, f->product_id);
	put_le32(out + CS_RECORD_OFF_SERIAL, f->serial);
	memcpy(out + CS_RECORD_OFF_ORDER_HASH, f->order_hash,
	    CS_RECORD_ORDER_HASH_LEN);
	off = CS_RECORD_OFF_UID;
	memcpy(out + off, f->uid, f->uid_len);
	off += f->uid_len;
	if (f->firmware_digest != NULL) {
		memcpy(out + off, f->firmware_digest, CS_RECORD_FW_DIGEST_LEN);
		off += CS_RECORD_FW_DIGEST_LEN;
	}
	memset(out + off, 0, CS_RECORD_SIG_LEN);
	*tbs_len = off;
	return CS_OK;
}

int
cs_record_message(const uint8_t *tbs, size_t tbs_len, uint8_t *msg,
    size_t msg_size, size_t *msg_len)
{
	if (tbs == NULL || msg == NULL || msg_len == NULL ||
	    tbs_len > CS_RECORD_MAX_LEN - CS_RECORD_SIG_LEN) {
		return CS_EINVAL;
	}
	if (msg_size < CS_RECORD_DOMAIN_LEN + tbs_len) {
		return CS_ETOOBIG;
	}
	memcpy(msg, CS_RECORD_DOMAIN, CS_RECORD_DOMAIN_LEN);
	memcpy(msg + CS_RECORD_DOMAIN_LEN, tbs, tbs_len);
	*msg_len = CS_RECORD_DOMAIN_LEN + tbs_len;
	return CS_OK;
}

int
cs_record_sign_hsm(cs_hsm *h, const struct cs_hsm_key *key,
    const struct cs_record_fields *f, uint8_t *out, size_t out_size,
    size_t *len)
{
	uint8_t        msg[CS_RECORD_MSG_MAX], digest[CS_SHA256_LEN];
	const uint8_t *what;
	size_t         tbs_len, msg_len, what_len;
	int            rv;

	if (h == NULL || key == NULL || len == NULL) {
		return CS_EINVAL;
	}
	rv = cs_record_encode(f, key->alg, key->key_id, out, out_size,
	    &tbs_len);
	if (rv != CS_OK) {
		return rv;
	}
	rv = cs_record_message(out, tbs_len, msg, sizeof(msg), &msg_len);
	if (rv != CS_OK) {
		return rv;
	}
	/* P-256: the HSM signs SHA-256(msg) (CKM_ECDSA); Ed25519: msg. */
	what     = msg;
	what_len = msg_len;
	if (key->alg == CS_ALG_P256) {
		if ((rv = cs_sha256(msg, msg_len, digest)) != CS_OK) {
			return rv;
		}
		what     = digest;
		what_len = sizeof(digest);
	}
	rv = cs_hsm_sign(h, key->label, key->alg, what, what_len,
	    out + tbs_len);
	if (rv != CS_OK) {
		return rv;
	}
	rv = cs_verify(key->alg, key->pub, key->pub_len, msg, msg_len,
	    out + tbs_len);
	if (rv != CS_OK) {
		memset(out, 0, tbs_len + CS_RECORD_SIG_LEN);
		return CS_ECRYPTO;
	}
	*len = tbs_len + CS_RECORD_SIG_LEN;
	return CS_OK;
}
