/*
 * cs_hsm_keys.c - the HSM shim's key objects: finding keys by label (with
 * the label -> handle cache), reading their public halves, and the verbs
 * on them: sign, describe, list and generate.  Split from cs_hsm.c; every
 * verb borrows a session from the pool (cs_hsm_pool.c) and retries once
 * after recovery when a handle went stale.
 */
#include "cs_hsm.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Last: it includes the PKCS#11 header, whose lowercase macros (value,
 * count, parameter, ...) would break any header after it.
 */
#include "cs_hsm_impl.h"

/* DER of the curve parameters (CKA_EC_PARAMS) we know. */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
    0x03, 0x01, 0x07};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
/* What pkcs11-tool (OpenSC 0.23) writes: PrintableString "edwards25519". */
static const uint8_t str_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
    'd', 's', '2', '5', '5', '1', '9'};

static bool
bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* ------------------------------------------------------------------ */
/* Objects                                                             */

/*
 * Find the one object of class cls labelled label.  CS_ENOENT when there
 * is none, CS_EPRECOND when the label is ambiguous.
 */
static int
find_object(struct hsm_op *op, CK_OBJECT_CLASS cls, const char *label,
    CK_OBJECT_HANDLE *obj)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  found[2];
	CK_ULONG          n = 0;
	CK_ATTRIBUTE      tmpl[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_LABEL, (void *)label, strlen(label)},
        };
	CK_RV rv;

	if ((rv = p11->C_FindObjectsInit(op->s, tmpl, 2)) != CKR_OK) {
		return hsm_op_fail(op, "C_FindObjectsInit", rv);
	}
	rv = p11->C_FindObjects(op->s, found, 2, &n);
	CK_RV fin = p11->C_FindObjectsFinal(op->s);
	if (rv != CKR_OK) {
		return hsm_op_fail(op, "C_FindObjects", rv);
	}
	if (fin != CKR_OK) {
		return hsm_op_fail(op, "C_FindObjectsFinal", fin);
	}
	if (n == 0 && cls == CKO_PRIVATE_KEY) {
		/* Private objects are invisible without a login.  A session
		 * that lost it must not make a key look missing. */
		CK_SESSION_INFO si;
		rv = p11->C_GetSessionInfo(op->s, &si);
		if (rv != CKR_OK) {
			return hsm_op_fail(op, "C_GetSessionInfo", rv);
		}
		if (si.state != CKS_RO_USER_FUNCTIONS &&
		    si.state != CKS_RW_USER_FUNCTIONS) {
			return hsm_op_fail(op, "C_FindObjects",
			    CKR_USER_NOT_LOGGED_IN);
		}
	}
	if (n == 0) {
		return CS_ENOENT;
	}
	if (n > 1) {
		cs_log_warn("hsm", "label is ambiguous, several objects carry "
		    "it key=%s token=%s", label, op->h->token);
		return CS_EPRECOND;
	}
	*obj = found[0];
	return CS_OK;
}

/* The algorithm of a key object, CS_ALG_NONE for any other kind. */
static int
object_alg(struct hsm_op *op, CK_OBJECT_HANDLE obj, cs_alg *alg)
{
	CK_KEY_TYPE  kt = 0;
	uint8_t      params[HSM_ATTR_MAX];
	CK_ATTRIBUTE a  = {CKA_KEY_TYPE, &kt, sizeof(kt)};
	CK_RV        rv;

	*alg = CS_ALG_NONE;
	rv   = op->h->p11->C_GetAttributeValue(op->s, obj, &a, 1);
	if (rv != CKR_OK) {
		return hsm_op_fail(op, "C_GetAttributeValue", rv);
	}
	if (kt != CKK_EC && kt != CKK_EC_EDWARDS) {
		return CS_OK;
	}
	a = (CK_ATTRIBUTE){CKA_EC_PARAMS, params, sizeof(params)};
	rv = op->h->p11->C_GetAttributeValue(op->s, obj, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID ||
	    rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_BUFFER_TOO_SMALL) {
		return CS_OK; /* not a curve of ours */
	}
	if (rv != CKR_OK) {
		return hsm_op_fail(op, "C_GetAttributeValue", rv);
	}
	if (kt == CKK_EC &&
	    bytes_eq(params, a.ulValueLen, oid_p256, sizeof(oid_p256))) {
		*alg = CS_ALG_P256;
	} else if (kt == CKK_EC_EDWARDS &&
	    (bytes_eq(params, a.ulValueLen, oid_ed25519,
		 sizeof(oid_ed25519)) ||
		bytes_eq(params, a.ulValueLen, str_ed25519,
		    sizeof(str_ed25519)))) {
		*alg = CS_ALG_ED25519;
	}
	return CS_OK;
}

/*
 * The private key labelled label: from the cache when it holds an entry of
 * this pool generation, from the token otherwise.
 */
static int
key_handle(struct hsm_op *op, const char *label, CK_OBJECT_HANDLE *obj,
    cs_alg *alg)
{
	cs_hsm *h = op->h;
	int     rv;

	pthread_rwlock_rdlock(&h->klock);
	for (unsigned i = 0; i < HSM_KEY_CACHE; i++) {
		struct hsm_cached_key *k = &h->keys[i];
		if (k->used && k->gen == op->gen &&
		    strcmp(k->label, label) == 0) {
			*obj = k->obj;
			*alg = k->alg;
			pthread_rwlock_unlock(&h->klock);
			return CS_OK;
		}
	}
	pthread_rwlock_unlock(&h->klock);

	if ((rv = find_object(op, CKO_PRIVATE_KEY, label, obj)) != CS_OK ||
	    (rv = object_alg(op, *obj, alg)) != CS_OK) {
		return rv;
	}

	/* Reuse this label's entry, else a free or stale one, else evict. */
	pthread_rwlock_wrlock(&h->klock);
	struct hsm_cached_key *slot = NULL;
	for (unsigned i = 0; i < HSM_KEY_CACHE && slot == NULL; i++) {
		if (h->keys[i].used && strcmp(h->keys[i].label, label) == 0) {
			slot = &h->keys[i];
		}
	}
	for (unsigned i = 0; i < HSM_KEY_CACHE && slot == NULL; i++) {
		if (!h->keys[i].used || h->keys[i].gen != op->gen) {
			slot = &h->keys[i];
		}
	}
	if (slot == NULL) {
		slot       = &h->keys[h->kc_next];
		h->kc_next = (h->kc_next + 1) % HSM_KEY_CACHE;
	}
	snprintf(slot->label, sizeof(slot->label), "%s", label);
	slot->obj  = *obj;
	slot->alg  = *alg;
	slot->gen  = op->gen;
	slot->used = true;
	pthread_rwlock_unlock(&h->klock);
	return CS_OK;
}

/*
 * CKA_EC_POINT comes as a DER OCTET STRING (04 41 04||X||Y for P-256,
 * 04 20 ||32 bytes for Ed25519).  Some modules return the bare key; its
 * length tells the two forms apart, so both are accepted, nothing else.
 */
static int
ec_point_unwrap(cs_alg alg, const uint8_t *in, size_t n, uint8_t *pub,
    size_t *pub_len)
{
	size_t want = alg == CS_ALG_P256 ? CS_P256_POINT_LEN
	                                 : CS_ED25519_PUB_LEN;

	if (n == want + 2 && in[0] == 0x04 && in[1] == want) {
		in += 2;
	} else if (n != want) {
		return CS_EINVAL;
	}
	if (alg == CS_ALG_P256 && in[0] != 0x04) {
		return CS_EINVAL; /* compressed or hybrid point */
	}
	memcpy(pub, in, want);
	*pub_len = want;
	return CS_OK;
}

static int
read_bool(struct hsm_op *op, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    bool *out)
{
	CK_BBOOL     b = CK_FALSE;
	CK_ATTRIBUTE a = {type, &b, sizeof(b)};
	CK_RV        rv;

	rv = op->h->p11->C_GetAttributeValue(op->s, obj, &a, 1);
	if (rv != CKR_OK) {
		return hsm_op_fail(op, "C_GetAttributeValue", rv);
	}
	*out = b == CK_TRUE;
	return CS_OK;
}

/*
 * Everything cs_hsm_key reports about the private key priv, labelled
 * label.  A key of another algorithm is described with CS_ALG_NONE.
 */
static int
key_describe(struct hsm_op *op, CK_OBJECT_HANDLE priv, const char *label,
    struct cs_hsm_key *key)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  pubobj;
	uint8_t           point[HSM_ATTR_MAX];
	CK_ATTRIBUTE      a = {CKA_EC_POINT, point, sizeof(point)};
	CK_RV             rv = CKR_ATTRIBUTE_TYPE_INVALID;
	int               ret;

	memset(key, 0, sizeof(*key));
	snprintf(key->label, sizeof(key->label), "%s", label);
	if ((ret = object_alg(op, priv, &key->alg)) != CS_OK ||
	    (ret = read_bool(op, priv, CKA_SENSITIVE, &key->sensitive)) !=
		CS_OK ||
	    (ret = read_bool(op, priv, CKA_EXTRACTABLE, &key->extractable)) !=
		CS_OK) {
		return ret;
	}
	if (key->alg == CS_ALG_NONE) {
		return CS_OK;
	}
	/* The public key object; failing that, some modules put the point
	 * on the private key too. */
	ret = find_object(op, CKO_PUBLIC_KEY, label, &pubobj);
	if (ret == CS_OK) {
		rv = p11->C_GetAttributeValue(op->s, pubobj, &a, 1);
		if (hsm_ckr_lost(rv)) {
			return hsm_op_fail(op, "C_GetAttributeValue", rv);
		}
	} else if (ret != CS_ENOENT) {
		return ret;
	}
	if (rv != CKR_OK) {
		a  = (CK_ATTRIBUTE){CKA_EC_POINT, point, sizeof(point)};
		rv = p11->C_GetAttributeValue(op->s, priv, &a, 1);
	}
	if (rv != CKR_OK) {
		if (hsm_ckr_lost(rv)) {
			return hsm_op_fail(op, "C_GetAttributeValue", rv);
		}
		cs_log_warn("hsm", "no public key (CKA_EC_POINT) for key "
		    "key=%s token=%s ckr=%s", label, op->h->token,
		    hsm_ckr_name(rv));
		return CS_ENOENT;
	}
	if (ec_point_unwrap(key->alg, point, a.ulValueLen, key->pub,
		&key->pub_len) != CS_OK) {
		cs_log_warn("hsm", "CKA_EC_POINT has an unexpected encoding "
		    "key=%s token=%s len=%lu", label, op->h->token,
		    (unsigned long)a.ulValueLen);
		return CS_EHSM;
	}
	if ((ret = cs_spki_encode(key->alg, key->pub, key->pub_len, key->spki,
		 sizeof(key->spki), &key->spki_len)) != CS_OK) {
		return ret == CS_EINVAL ? CS_EHSM : ret;
	}
	return cs_key_id(key->spki, key->spki_len, key->key_id);
}

/* ------------------------------------------------------------------ */
/* Public API: signing and keys                                        */

static int
sign_once(struct hsm_op *op, const char *label, cs_alg expect,
    const uint8_t *msg, size_t len, uint8_t sig[CS_SIG_LEN])
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  obj;
	CK_MECHANISM      mech = {CKM_ECDSA, NULL, 0};
	CK_BYTE           buf[HSM_SIG_BUF];
	CK_ULONG          n = sizeof(buf);
	cs_alg            alg;
	CK_RV             rv;
	int               ret;

	if ((ret = key_handle(op, label, &obj, &alg)) != CS_OK) {
		return ret;
	}
	if (alg == CS_ALG_NONE || (expect != CS_ALG_NONE && expect != alg)) {
		cs_log_debug("hsm", "key has another algorithm key=%s alg=%s "
		    "expected=%s", label, cs_alg_name(alg),
		    cs_alg_name(expect));
		return CS_EINVAL;
	}
	if (alg == CS_ALG_P256 && len != CS_SHA256_LEN) {
		return CS_EINVAL; /* CKM_ECDSA signs a digest, not a message */
	}
	if (alg == CS_ALG_ED25519) {
		mech.mechanism = CKM_EDDSA;
	}
	if ((rv = p11->C_SignInit(op->s, &mech, obj)) != CKR_OK) {
		return hsm_op_fail(op, "C_SignInit", rv);
	}
	if ((rv = p11->C_Sign(op->s, (CK_BYTE *)msg, len, buf, &n)) !=
	    CKR_OK) {
		return hsm_op_fail(op, "C_Sign", rv);
	}
	if (n != CS_SIG_LEN) {
		cs_log_error("hsm", "signature has an unexpected length "
		    "key=%s len=%lu", label, (unsigned long)n);
		return CS_EHSM;
	}
	memcpy(sig, buf, CS_SIG_LEN);
	return CS_OK;
}

int
cs_hsm_sign(cs_hsm *h, const char *label, cs_alg expect, const uint8_t *msg,
    size_t len, uint8_t sig[CS_SIG_LEN])
{
	struct hsm_op op;
	int           rv;

	if (h == NULL || hsm_label_len(label) == 0 ||
	    (msg == NULL && len > 0) || sig == NULL || len > HSM_MSG_MAX) {
		return CS_EINVAL;
	}
	for (int attempt = 0;; attempt++) {
		if ((rv = hsm_op_begin(h, &op)) != CS_OK) {
			return rv;
		}
		rv = sign_once(&op, label, expect, msg, len, sig);
		if (!hsm_op_end(&op, label) || attempt > 0) {
			return rv;
		}
	}
}

int
cs_hsm_key(cs_hsm *h, const char *label, struct cs_hsm_key *key)
{
	struct hsm_op    op;
	CK_OBJECT_HANDLE priv;
	int              rv;

	if (h == NULL || hsm_label_len(label) == 0 || key == NULL) {
		return CS_EINVAL;
	}
	for (int attempt = 0;; attempt++) {
		if ((rv = hsm_op_begin(h, &op)) != CS_OK) {
			return rv;
		}
		rv = find_object(&op, CKO_PRIVATE_KEY, label, &priv);
		if (rv == CS_OK) {
			rv = key_describe(&op, priv, label, key);
		}
		if (rv == CS_OK && key->alg == CS_ALG_NONE) {
			rv = CS_EINVAL; /* a key, but not one we can use */
		}
		if (!hsm_op_end(&op, label) || attempt > 0) {
			return rv;
		}
	}
}

/* Find every private key that may sign; *objs is malloc'ed. */
static int
find_signing_keys(struct hsm_op *op, CK_OBJECT_HANDLE **objs, size_t *n)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_CLASS   cls = CKO_PRIVATE_KEY;
	CK_BBOOL          yes = CK_TRUE;
	CK_ATTRIBUTE      tmpl[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_SIGN, &yes, sizeof(yes)},
        };
	CK_OBJECT_HANDLE *all = NULL;
	CK_ULONG          got = 0;
	size_t            cap = 64, count = 0;
	CK_RV             rv;
	int               ret = CS_OK;

	if ((all = malloc(cap * sizeof(*all))) == NULL) {
		return CS_ENOMEM;
	}
	if ((rv = p11->C_FindObjectsInit(op->s, tmpl, 2)) != CKR_OK) {
		free(all);
		return hsm_op_fail(op, "C_FindObjectsInit", rv);
	}
	for (;;) {
		if (count == cap) {
			CK_OBJECT_HANDLE *more;
			if (cap >= HSM_LIST_MAX) {
				cs_log_warn("hsm", "more keys than listed "
				    "token=%s listed=%zu", op->h->token,
				    count);
				break;
			}
			more = realloc(all, 2 * cap * sizeof(*all));
			if (more == NULL) {
				ret = CS_ENOMEM;
				break;
			}
			all = more;
			cap *= 2;
		}
		rv = p11->C_FindObjects(op->s, all + count, cap - count,
		    &got);
		if (rv != CKR_OK) {
			ret = hsm_op_fail(op, "C_FindObjects", rv);
			break;
		}
		if (got == 0) {
			break;
		}
		count += got;
	}
	rv = p11->C_FindObjectsFinal(op->s);
	if (ret == CS_OK && rv != CKR_OK) {
		ret = hsm_op_fail(op, "C_FindObjectsFinal", rv);
	}
	if (ret != CS_OK) {
		free(all);
		return ret;
	}
	*objs = all;
	*n    = count;
	return CS_OK;
}

static int
list_once(struct hsm_op *op, struct cs_hsm_key **keys, size_t *n)
{
	CK_OBJECT_HANDLE  *objs = NULL;
	struct cs_hsm_key *out  = NULL;
	size_t             nobj = 0, count = 0;
	int                rv;

	if ((rv = find_signing_keys(op, &objs, &nobj)) != CS_OK) {
		return rv;
	}
	if ((out = calloc(nobj > 0 ? nobj : 1, sizeof(*out))) == NULL) {
		rv = CS_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nobj; i++) {
		char         label[HSM_LABEL_MAX + 1];
		CK_ATTRIBUTE a = {CKA_LABEL, label, HSM_LABEL_MAX};
		CK_RV        r;

		r = op->h->p11->C_GetAttributeValue(op->s, objs[i], &a, 1);
		if (r != CKR_OK && hsm_ckr_lost(r)) {
			rv = hsm_op_fail(op, "C_GetAttributeValue", r);
			goto out;
		}
		if (r != CKR_OK || a.ulValueLen > HSM_LABEL_MAX) {
			continue; /* no label, or one longer than ours */
		}
		label[a.ulValueLen] = '\0';
		if (hsm_label_len(label) != a.ulValueLen) {
			cs_log_info("hsm", "skipping a key whose label is "
			    "empty or not printable ASCII token=%s",
			    op->h->token);
			continue;
		}
		rv = key_describe(op, objs[i], label, &out[count]);
		if (rv != CS_OK && op->ckr != CKR_OK) {
			goto out; /* the token failed: give up */
		}
		if (rv == CS_OK) {
			count++;
		}
	}
	rv    = CS_OK;
	*keys = out;
	*n    = count;
	out   = NULL;
out:
	free(out);
	free(objs);
	return rv;
}

int
cs_hsm_list(cs_hsm *h, struct cs_hsm_key **keys, size_t *n)
{
	struct hsm_op op;
	int           rv;

	if (h == NULL || keys == NULL || n == NULL) {
		return CS_EINVAL;
	}
	*keys = NULL;
	*n    = 0;
	for (int attempt = 0;; attempt++) {
		if ((rv = hsm_op_begin(h, &op)) != CS_OK) {
			return rv;
		}
		rv = list_once(&op, keys, n);
		if (!hsm_op_end(&op, NULL) || attempt > 0) {
			return rv;
		}
	}
}

static int
keygen_once(struct hsm_op *op, const char *label, cs_alg alg,
    struct cs_hsm_key *key)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  obj, pub, priv;
	CK_BBOOL          yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM      mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	const uint8_t    *params     = oid_p256;
	CK_ULONG          params_len = sizeof(oid_p256);
	size_t            llen       = strlen(label);
	CK_RV             rv;
	int               ret;

	if (alg == CS_ALG_ED25519) {
		mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		params         = oid_ed25519;
		params_len     = sizeof(oid_ed25519);
	}
	/* Never two keys under one label: a label names one key for life. */
	ret = find_object(op, CKO_PRIVATE_KEY, label, &obj);
	if (ret == CS_ENOENT) {
		ret = find_object(op, CKO_PUBLIC_KEY, label, &obj);
	}
	if (ret == CS_ENOENT) { /* the firmware key (cs_hsm_secret.c) */
		ret = find_object(op, CKO_SECRET_KEY, label, &obj);
	}
	if (ret == CS_OK || ret == CS_EPRECOND) {
		return CS_EEXIST;
	}
	if (ret != CS_ENOENT) {
		return ret;
	}

	CK_ATTRIBUTE pub_tmpl[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &no, sizeof(no)},
	    {CKA_VERIFY, &yes, sizeof(yes)},
	    {CKA_ENCRYPT, &no, sizeof(no)},
	    {CKA_WRAP, &no, sizeof(no)},
	    {CKA_DERIVE, &no, sizeof(no)},
	    {CKA_EC_PARAMS, (void *)params, params_len},
	    {CKA_LABEL, (void *)label, llen},
	};
	CK_ATTRIBUTE priv_tmpl[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SENSITIVE, &yes, sizeof(yes)},
	    {CKA_EXTRACTABLE, &no, sizeof(no)},
	    {CKA_SIGN, &yes, sizeof(yes)},
	    {CKA_DECRYPT, &no, sizeof(no)},
	    {CKA_UNWRAP, &no, sizeof(no)},
	    {CKA_DERIVE, &no, sizeof(no)},
	    {CKA_LABEL, (void *)label, llen},
	};
	rv = p11->C_GenerateKeyPair(op->s, &mech, pub_tmpl,
	    sizeof(pub_tmpl) / sizeof(pub_tmpl[0]), priv_tmpl,
	    sizeof(priv_tmpl) / sizeof(priv_tmpl[0]), &pub, &priv);
	if (rv != CKR_OK) {
		return hsm_op_fail(op, "C_GenerateKeyPair", rv);
	}
	if ((ret = key_describe(op, priv, label, key)) != CS_OK ||
	    key->alg != alg) {
		/* A key we cannot describe is of no use: take it away. */
		cs_log_error("hsm", "generated key unusable, destroying it "
		    "key=%s token=%s", label, op->h->token);
		p11->C_DestroyObject(op->s, priv);
		p11->C_DestroyObject(op->s, pub);
		return ret != CS_OK ? ret : CS_EHSM;
	}
	/* CKA_ID = key id, so that other PKCS#11 tools pair the two halves
	 * and show the project's key id.  Nice to have, not essential. */
	CK_ATTRIBUTE id = {CKA_ID, key->key_id, CS_KEY_ID_LEN};
	if ((rv = p11->C_SetAttributeValue(op->s, priv, &id, 1)) != CKR_OK ||
	    (rv = p11->C_SetAttributeValue(op->s, pub, &id, 1)) != CKR_OK) {
		cs_log_warn("hsm", "cannot set CKA_ID key=%s ckr=%s", label,
		    hsm_ckr_name(rv));
	}
	cs_log_info("hsm", "key generated key=%s alg=%s token=%s", label,
	    cs_alg_name(alg), op->h->token);
	return CS_OK;
}

int
cs_hsm_keygen(cs_hsm *h, const char *label, cs_alg alg,
    struct cs_hsm_key *key)
{
	struct cs_hsm_key scratch;
	struct hsm_op     op;
	int               rv;

	if (h == NULL || hsm_label_len(label) == 0 ||
	    (alg != CS_ALG_P256 && alg != CS_ALG_ED25519)) {
		return CS_EINVAL;
	}
	if (key == NULL) {
		key = &scratch;
	}
	/* No transparent retry: had the key been made before the failure, a
	 * second attempt would only report that the label exists. */
	if ((rv = hsm_op_begin(h, &op)) != CS_OK) {
		return rv;
	}
	rv = keygen_once(&op, label, alg, key);
	hsm_op_end(&op, label);
	return rv;
}

bool
cs_hsm_pin_refused(cs_hsm *h)
{
	return h != NULL && __atomic_load_n(&h->pin_refused, __ATOMIC_ACQUIRE);
}
