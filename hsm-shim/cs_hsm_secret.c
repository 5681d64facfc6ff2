/*
 * cs_hsm_secret.c - the HSM shim's secret keys: an AES-256 key made on the
 * token (sensitive, never extractable, encrypt/decrypt only) and the two
 * verbs on it, seal and unseal, with CKM_AES_GCM.
 *
 * What it is for: the authority keeps an order's firmware image encrypted
 * under a fresh data key per image, and only that small data key is sealed
 * here.  So the HSM sees a few dozen bytes per request, never an image,
 * and the key that protects every image at rest never leaves the token.
 *
 * Sealed form: iv (12 bytes, from the token's C_GenerateRandom) ||
 * ciphertext || tag (16 bytes).  A random 96-bit IV is safe for the number
 * of seals an authority makes (one per image version), far below the 2^32
 * that NIST SP 800-38D allows for random IVs under one key.
 *
 * SoftHSM 2.6.1 reads ulIvLen and ignores ulIvBits; other modules (and
 * PKCS#11 3.0) read ulIvBits, so both are set.  A failed tag check comes
 * back as CKR_ENCRYPTED_DATA_INVALID (or _LEN_RANGE for a short input)
 * from most modules, as CKR_GENERAL_ERROR from SoftHSM 2.6.1 (its OpenSSL
 * backend's final step fails; verified here).  All three are reported as
 * CS_ECRYPTO, with the CKR_ name in the log, and none marks the session
 * broken (C_Decrypt ends the operation either way).
 *
 * Secret-key handles are not cached (the cache in cs_hsm_keys.c is for
 * signing keys): a seal or unseal finds the key by label each time, which
 * costs one C_FindObjects on a local token and keeps the cache's rules
 * (one private key per label) untouched.
 */
#include "cs_hsm.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_log.h"

#include <string.h>

/* Last: it includes the PKCS#11 header (lowercase macros). */
#include "cs_hsm_impl.h"

/* The one AES key labelled label (CS_ENOENT, CS_EPRECOND: ambiguous). */
static int
find_secret(struct hsm_op *op, const char *label, CK_OBJECT_HANDLE *obj)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_CLASS   cls = CKO_SECRET_KEY;
	CK_KEY_TYPE       kt  = CKK_AES;
	CK_OBJECT_HANDLE  found[2];
	CK_ULONG          n = 0;
	CK_ATTRIBUTE      tmpl[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_KEY_TYPE, &kt, sizeof(kt)},
            {CKA_LABEL, (void *)label, strlen(label)},
        };
	CK_RV rv, fin;

	if ((rv = p11->C_FindObjectsInit(op->s, tmpl, 3)) != CKR_OK) {
		return hsm_op_fail(op, "C_FindObjectsInit", rv);
	}
	rv  = p11->C_FindObjects(op->s, found, 2, &n);
	fin = p11->C_FindObjectsFinal(op->s);
	if (rv != CKR_OK) {
		return hsm_op_fail(op, "C_FindObjects", rv);
	}
	if (fin != CKR_OK) {
		return hsm_op_fail(op, "C_FindObjectsFinal", fin);
	}
	if (n == 0) {
		/* Private objects are invisible without a login: a session
		 * that lost it must not make the key look missing. */
		CK_SESSION_INFO si;
		if ((rv = p11->C_GetSessionInfo(op->s, &si)) != CKR_OK) {
			return hsm_op_fail(op, "C_GetSessionInfo", rv);
		}
		if (si.state != CKS_RO_USER_FUNCTIONS &&
		    si.state != CKS_RW_USER_FUNCTIONS) {
			return hsm_op_fail(op, "C_FindObjects",
			    CKR_USER_NOT_LOGGED_IN);
		}
		return CS_ENOENT;
	}
	if (n > 1) {
		cs_log_warn("hsm", "label is ambiguous, several secret keys "
		    "carry it key=%s token=%s", label, op->h->token);
		return CS_EPRECOND;
	}
	*obj = found[0];
	return CS_OK;
}

/* Is any object (key of any class) labelled label? */
static int
label_taken(struct hsm_op *op, const char *label, bool *taken)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  found[1];
	CK_ULONG          n = 0;
	CK_ATTRIBUTE      tmpl[] = {
            {CKA_LABEL, (void *)label, strlen(label)},
        };
	CK_RV rv, fin;

	if ((rv = p11->C_FindObjectsInit(op->s, tmpl, 1)) != CKR_OK) {
		return hsm_op_fail(op, "C_FindObjectsInit", rv);
	}
	rv  = p11->C_FindObjects(op->s, found, 1, &n);
	fin = p11->C_FindObjectsFinal(op->s);
	if (rv != CKR_OK) {
		return hsm_op_fail(op, "C_FindObjects", rv);
	}
	if (fin != CKR_OK) {
		return hsm_op_fail(op, "C_FindObjectsFinal", fin);
	}
	*taken = n > 0;
	return CS_OK;
}

static int
keygen_once(struct hsm_op *op, const char *label)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  key;
	CK_BBOOL          yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG          len = CS_HSM_AES_KEY_LEN;
	CK_MECHANISM      mech = {CKM_AES_KEY_GEN, NULL, 0};
	bool              taken = false;
	CK_RV             rv;
	int               ret;

	if ((ret = label_taken(op, label, &taken)) != CS_OK) {
		return ret;
	}
	if (taken) {
		return CS_EEXIST; /* a label names one key for life */
	}
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SENSITIVE, &yes, sizeof(yes)},
	    {CKA_EXTRACTABLE, &no, sizeof(no)},
	    {CKA_ENCRYPT, &yes, sizeof(yes)},
	    {CKA_DECRYPT, &yes, sizeof(yes)},
	    {CKA_WRAP, &no, sizeof(no)},
	    {CKA_UNWRAP, &no, sizeof(no)},
	    {CKA_SIGN, &no, sizeof(no)},
	    {CKA_VERIFY, &no, sizeof(no)},
	    {CKA_DERIVE, &no, sizeof(no)},
	    {CKA_VALUE_LEN, &len, sizeof(len)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	};
	rv = p11->C_GenerateKey(op->s, &mech, tmpl,
	    sizeof(tmpl) / sizeof(tmpl[0]), &key);
	if (rv != CKR_OK) {
		return hsm_op_fail(op, "C_GenerateKey", rv);
	}
	cs_log_info("hsm", "secret key generated key=%s alg=aes256 token=%s",
	    label, op->h->token);
	return CS_OK;
}

int
cs_hsm_secret_keygen(cs_hsm *h, const char *label)
{
	struct hsm_op op;
	int           rv;

	if (h == NULL || hsm_label_len(label) == 0) {
		return CS_EINVAL;
	}
	/* No transparent retry, as for key pairs (cs_hsm_keygen). */
	if ((rv = hsm_op_begin(h, &op)) != CS_OK) {
		return rv;
	}
	rv = keygen_once(&op, label);
	hsm_op_end(&op, label);
	return rv;
}

static int
info_once(struct hsm_op *op, const char *label, struct cs_hsm_secret *info)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  obj;
	CK_BBOOL          sens = CK_FALSE, extr = CK_TRUE;
	CK_ULONG          vlen = 0;
	uint8_t           value[64];
	CK_ATTRIBUTE      a[] = {
            {CKA_SENSITIVE, &sens, sizeof(sens)},
            {CKA_EXTRACTABLE, &extr, sizeof(extr)},
            {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
        };
	CK_RV rv;
	int   ret;

	if ((ret = find_secret(op, label, &obj)) != CS_OK) {
		return ret;
	}
	if ((rv = p11->C_GetAttributeValue(op->s, obj, a, 3)) != CKR_OK) {
		return hsm_op_fail(op, "C_GetAttributeValue", rv);
	}
	info->sensitive   = sens == CK_TRUE;
	info->extractable = extr == CK_TRUE;
	info->key_len     = (size_t)vlen;
	/* The proof that matters: ask for the key itself. */
	CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
	rv = p11->C_GetAttributeValue(op->s, obj, &v, 1);
	info->value_readable = rv == CKR_OK;
	cs_wipe(value, sizeof(value));
	return CS_OK;
}

int
cs_hsm_secret_info(cs_hsm *h, const char *label, struct cs_hsm_secret *info)
{
	struct hsm_op op;
	int           rv;

	if (h == NULL || hsm_label_len(label) == 0 || info == NULL) {
		return CS_EINVAL;
	}
	memset(info, 0, sizeof(*info));
	for (int attempt = 0;; attempt++) {
		if ((rv = hsm_op_begin(h, &op)) != CS_OK) {
			return rv;
		}
		rv = info_once(&op, label, info);
		if (!hsm_op_end(&op, label) || attempt > 0) {
			return rv;
		}
	}
}

static int
crypt_once(struct hsm_op *op, const char *label, bool seal,
    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
    uint8_t *out, size_t *out_len)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  obj;
	uint8_t           iv[CS_HSM_SEAL_IV_LEN];
	CK_GCM_PARAMS     gcm;
	CK_MECHANISM      mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
	CK_ULONG          n;
	CK_RV             rv;
	int               ret;

	if ((ret = find_secret(op, label, &obj)) != CS_OK) {
		return ret;
	}
	if (seal) {
		rv = p11->C_GenerateRandom(op->s, iv, sizeof(iv));
		if (rv != CKR_OK) {
			return hsm_op_fail(op, "C_GenerateRandom", rv);
		}
	} else {
		memcpy(iv, in, sizeof(iv));
		in += sizeof(iv);
		len -= sizeof(iv);
	}
	gcm = (CK_GCM_PARAMS){
	    .iv_ptr   = iv,
	    .iv_len   = sizeof(iv),
	    .iv_bits  = 8 * sizeof(iv),
	    .aad_ptr  = (uint8_t *)aad,
	    .aad_len  = aad_len,
	    .tag_bits = 8 * CS_HSM_SEAL_TAG_LEN,
	};
	if (seal) {
		n = CS_HSM_SEAL_MAX + CS_HSM_SEAL_TAG_LEN;
		if ((rv = p11->C_EncryptInit(op->s, &mech, obj)) != CKR_OK) {
			return hsm_op_fail(op, "C_EncryptInit", rv);
		}
		rv = p11->C_Encrypt(op->s, (CK_BYTE *)in, len,
		    out + sizeof(iv), &n);
		if (rv != CKR_OK) {
			return hsm_op_fail(op, "C_Encrypt", rv);
		}
		if (n != len + CS_HSM_SEAL_TAG_LEN) {
			cs_log_error("hsm", "AES-GCM output has an unexpected "
			    "length key=%s len=%lu", label, (unsigned long)n);
			return CS_EHSM;
		}
		memcpy(out, iv, sizeof(iv));
		*out_len = sizeof(iv) + (size_t)n;
		return CS_OK;
	}
	/* Some modules write the whole input before checking the tag:
	 * room for it, in the caller's buffer (cs_hsm_unseal sized it). */
	n = len;
	if ((rv = p11->C_DecryptInit(op->s, &mech, obj)) != CKR_OK) {
		return hsm_op_fail(op, "C_DecryptInit", rv);
	}
	rv = p11->C_Decrypt(op->s, (CK_BYTE *)in, len, out, &n);
	if (rv == CKR_ENCRYPTED_DATA_INVALID ||
	    rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR) {
		cs_log_warn("hsm", "sealed data failed its tag check key=%s "
		    "ckr=%s", label, hsm_ckr_name(rv));
		return CS_ECRYPTO;
	}
	if (rv != CKR_OK) {
		return hsm_op_fail(op, "C_Decrypt", rv);
	}
	if (n != len - CS_HSM_SEAL_TAG_LEN) {
		cs_log_error("hsm", "AES-GCM output has an unexpected length "
		    "key=%s len=%lu", label, (unsigned long)n);
		return CS_EHSM;
	}
	*out_len = (size_t)n;
	return CS_OK;
}

static int
crypt(cs_hsm *h, const char *label, bool seal, const uint8_t *aad,
    size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
    size_t *out_len)
{
	struct hsm_op op;
	int           rv;

	for (int attempt = 0;; attempt++) {
		if ((rv = hsm_op_begin(h, &op)) != CS_OK) {
			return rv;
		}
		rv = crypt_once(&op, label, seal, aad, aad_len, in, len, out,
		    out_len);
		if (!hsm_op_end(&op, label) || attempt > 0) {
			return rv;
		}
	}
}

int
cs_hsm_seal(cs_hsm *h, const char *label, const uint8_t *aad,
    size_t aad_len, const uint8_t *pt, size_t len,
    uint8_t out[CS_HSM_SEALED_MAX], size_t *out_len)
{
	if (h == NULL || hsm_label_len(label) == 0 || pt == NULL ||
	    len == 0 || len > CS_HSM_SEAL_MAX || out == NULL ||
	    out_len == NULL || (aad == NULL && aad_len > 0) ||
	    aad_len > CS_HSM_AAD_MAX) {
		return CS_EINVAL;
	}
	*out_len = 0;
	return crypt(h, label, true, aad, aad_len, pt, len, out, out_len);
}

int
cs_hsm_unseal(cs_hsm *h, const char *label, const uint8_t *aad,
    size_t aad_len, const uint8_t *sealed, size_t len,
    uint8_t out[CS_HSM_SEAL_MAX], size_t *out_len)
{
	uint8_t buf[CS_HSM_SEALED_MAX];
	size_t  n = 0;
	int     rv;

	if (h == NULL || hsm_label_len(label) == 0 || sealed == NULL ||
	    out == NULL || out_len == NULL || (aad == NULL && aad_len > 0) ||
	    aad_len > CS_HSM_AAD_MAX) {
		return CS_EINVAL;
	}
	*out_len = 0;
	if (len < CS_HSM_SEAL_OVERHEAD + 1 || len > CS_HSM_SEALED_MAX) {
		return CS_ECRYPTO; /* cannot be anything we sealed */
	}
	rv = crypt(h, label, false, aad, aad_len, sealed, len, buf, &n);
	if (rv == CS_OK) {
		memcpy(out, buf, n);
		*out_len = n;
	}
	cs_wipe(buf, sizeof(buf));
	return rv;
}
