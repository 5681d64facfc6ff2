/*
 * store_records.c - the records of the store (store.h): orders, stations,
 * keys, admin tokens, devices and the UIDs seen per product, each a
 * protobuf value under its key, put, got and listed through store.c's
 * helpers.  Kept apart from the environment (store.c) and the audit chain
 * (store_audit.c) so that each file holds one concern.
 */
#include "store_impl.h"

#include "cs_err.h"
#include "cs_log.h"

#include <stdlib.h>
#include <string.h>

static int
list_msgs(store_txn *t, enum store_db db, void *outp, size_t *n)
{
	return store_list_where(t, db, NULL, 0, NULL, NULL, outp, n);
}

/* put/get of records keyed by a name of 1..max bytes. */
static int
put_named(store_txn *t, enum store_db db, const char *name, size_t max,
    const ProtobufCMessage *m)
{
	int rv;

	if ((rv = store_txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (m == NULL || !store_str_ok(name, max)) {
		return CS_EINVAL;
	}
	return store_put_msg(t, db, name, strlen(name), m, 0);
}

static int
get_named(store_txn *t, enum store_db db, const char *name, size_t max,
    void *out)
{
	int rv;

	if ((rv = store_txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (out == NULL || !store_str_ok(name, max)) {
		return CS_EINVAL;
	}
	return store_get_msg(t, db, name, strlen(name), out);
}

int
store_order_put(store_txn *t, const StoredOrder *o)
{
	return put_named(t, DB_ORDERS, o != NULL ? o->order_id : NULL,
	    STORE_ORDER_ID_MAX, o != NULL ? &o->base : NULL);
}

int
store_order_get(store_txn *t, const char *order_id, StoredOrder **out)
{
	return get_named(t, DB_ORDERS, order_id, STORE_ORDER_ID_MAX, out);
}

int
store_order_list(store_txn *t, StoredOrder ***out, size_t *n)
{
	return list_msgs(t, DB_ORDERS, out, n);
}

void
store_order_list_free(StoredOrder **list, size_t n)
{
	store_list_free(list, n);
}

int
store_station_put(store_txn *t, const StoredStation *s)
{
	return put_named(t, DB_STATIONS, s != NULL ? s->name : NULL,
	    STORE_NAME_MAX, s != NULL ? &s->base : NULL);
}

int
store_station_get(store_txn *t, const char *name, StoredStation **out)
{
	return get_named(t, DB_STATIONS, name, STORE_NAME_MAX, out);
}

int
store_station_list(store_txn *t, StoredStation ***out, size_t *n)
{
	return list_msgs(t, DB_STATIONS, out, n);
}

void
store_station_list_free(StoredStation **list, size_t n)
{
	store_list_free(list, n);
}

int
store_key_put(store_txn *t, const StoredKey *key)
{
	return put_named(t, DB_KEYS, key != NULL ? key->label : NULL,
	    STORE_NAME_MAX, key != NULL ? &key->base : NULL);
}

int
store_key_get(store_txn *t, const char *label, StoredKey **out)
{
	return get_named(t, DB_KEYS, label, STORE_NAME_MAX, out);
}

int
store_key_list(store_txn *t, StoredKey ***out, size_t *n)
{
	return list_msgs(t, DB_KEYS, out, n);
}

void
store_key_list_free(StoredKey **list, size_t n)
{
	store_list_free(list, n);
}

int
store_token_put(store_txn *t, const uint8_t hash[STORE_HASH_LEN],
    const StoredToken *tok)
{
	int rv;

	if ((rv = store_txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (hash == NULL || tok == NULL ||
	    !store_str_ok(tok->name, STORE_NAME_MAX)) {
		return CS_EINVAL;
	}
	return store_put_msg(t, DB_TOKENS, hash, STORE_HASH_LEN, &tok->base,
	    0);
}

int
store_token_get(store_txn *t, const uint8_t hash[STORE_HASH_LEN],
    StoredToken **out)
{
	int rv;

	if ((rv = store_txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (hash == NULL || out == NULL) {
		return CS_EINVAL;
	}
	return store_get_msg(t, DB_TOKENS, hash, STORE_HASH_LEN, out);
}

int
store_token_disable(store_txn *t, const char *name, unsigned *found,
    unsigned *changed)
{
	MDB_cursor *cur = NULL;
	MDB_val     k, v;
	uint8_t     keys[64][STORE_HASH_LEN];
	size_t      nk = 0, i;
	int         rc, rv;

	*found = *changed = 0;
	if ((rv = store_txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (!store_str_ok(name, STORE_NAME_MAX)) {
		return CS_EINVAL;
	}
	/* Collect the keys first: writing while a cursor walks is not
	 * worth the subtlety for a handful of tokens. */
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[DB_TOKENS], &cur)) !=
	    MDB_SUCCESS) {
		return store_txn_fail(t, store_mdb_err(rc, "mdb_cursor_open",
		    "tokens"));
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		StoredToken *tok = NULL;

		if ((rv = store_decode(DB_TOKENS, &k, &v,
		         (ProtobufCMessage **)&tok)) != CS_OK) {
			mdb_cursor_close(cur);
			return rv;
		}
		if (strcmp(tok->name, name) == 0 && k.mv_size == STORE_HASH_LEN) {
			(*found)++;
			if (!tok->disabled && nk < sizeof(keys) / sizeof(keys[0])) {
				memcpy(keys[nk++], k.mv_data, STORE_HASH_LEN);
			}
		}
		countersign__v1__stored_token__free_unpacked(tok, NULL);
	}
	mdb_cursor_close(cur);
	for (i = 0; i < nk; i++) {
		StoredToken *tok = NULL;

		if ((rv = store_token_get(t, keys[i], &tok)) != CS_OK) {
			return rv;
		}
		tok->disabled = true;
		rv = store_token_put(t, keys[i], tok);
		countersign__v1__stored_token__free_unpacked(tok, NULL);
		if (rv != CS_OK) {
			return rv;
		}
		(*changed)++;
	}
	return CS_OK;
}

int
store_token_list(store_txn *t, StoredToken ***out, size_t *n)
{
	return list_msgs(t, DB_TOKENS, out, n);
}

void
store_token_list_free(StoredToken **list, size_t n)
{
	store_list_free(list, n);
}

/* devices key: order_id NUL uid; returns its length. */
static size_t
device_key(uint8_t key[KEY_MAX], const char *order_id, const uint8_t *uid,
    size_t uid_len)
{
	size_t olen = strlen(order_id);

	memcpy(key, order_id, olen);
	key[olen] = 0;
	memcpy(key + olen + 1, uid, uid_len);
	return olen + 1 + uid_len;
}

int
store_device_put(store_txn *t, const StoredDevice *d)
{
	uint8_t key[KEY_MAX];
	int     rv;

	if ((rv = store_txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (d == NULL || !store_str_ok(d->order_id, STORE_ORDER_ID_MAX) ||
	    !store_uid_ok(d->uid.data, d->uid.len)) {
		return CS_EINVAL;
	}
	return store_put_msg(t, DB_DEVICES, key,
	    device_key(key, d->order_id, d->uid.data, d->uid.len), &d->base,
	    0);
}

int
store_device_get(store_txn *t, const char *order_id, const uint8_t *uid,
    size_t uid_len, StoredDevice **out)
{
	uint8_t key[KEY_MAX];
	int     rv;

	if ((rv = store_txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (out == NULL || !store_str_ok(order_id, STORE_ORDER_ID_MAX) ||
	    !store_uid_ok(uid, uid_len)) {
		return CS_EINVAL;
	}
	return store_get_msg(t, DB_DEVICES, key,
	    device_key(key, order_id, uid, uid_len), out);
}

/* A UID to look for in device keys (order_id NUL uid). */
struct uid_arg {
	const uint8_t *uid;
	size_t         len;
};

/* Take devices keys whose UID part (after the order id's NUL) is uid. */
static int
match_uid(const MDB_val *k, const void *arg)
{
	const struct uid_arg *u   = arg;
	const uint8_t        *key = k->mv_data;
	const uint8_t        *nul = memchr(key, 0, k->mv_size);

	return nul != NULL &&
	    (size_t)(key + k->mv_size - (nul + 1)) == u->len &&
	    memcmp(nul + 1, u->uid, u->len) == 0;
}

int
store_device_find(store_txn *t, const uint8_t *uid, size_t uid_len,
    StoredDevice ***out, size_t *n)
{
	struct uid_arg u = {uid, uid_len};
	int            rv;

	if (out == NULL || n == NULL || !store_uid_ok(uid, uid_len)) {
		return CS_EINVAL;
	}
	/* Device lookups by UID alone are rare (an officer's question) and
	 * the per-product index only knows the first order: walk the keys,
	 * decoding only the matches. */
	rv = store_list_where(t, DB_DEVICES, NULL, 0, match_uid, &u, out, n);
	if (rv == CS_OK && *n == 0) {
		return CS_ENOENT;
	}
	return rv;
}

/* Device keys of one order: they start with order_id NUL. */
struct prefix_arg {
	const uint8_t *p;
	size_t         len;
};

static int
match_prefix(const MDB_val *k, const void *arg)
{
	const struct prefix_arg *a = arg;

	return k->mv_size >= a->len && memcmp(k->mv_data, a->p, a->len) == 0
	    ? 1
	    : -1; /* keys are sorted: past the prefix, nothing more */
}

int
store_device_list_order(store_txn *t, const char *order_id,
    StoredDevice ***out, size_t *n)
{
	struct prefix_arg a;

	if (out == NULL || n == NULL || !store_str_ok(order_id,
	    STORE_ORDER_ID_MAX)) {
		return CS_EINVAL;
	}
	a.p   = (const uint8_t *)order_id;
	a.len = strlen(order_id) + 1; /* with its NUL */
	return store_list_where(t, DB_DEVICES, a.p, a.len, match_prefix, &a,
	    out,
	    n);
}

void
store_device_list_free(StoredDevice **list, size_t n)
{
	store_list_free(list, n);
}

/* uids key: product_id (BE) uid; returns its length. */
static size_t
uid_key(uint8_t key[4 + STORE_UID_MAX], uint32_t product_id,
    const uint8_t *uid, size_t uid_len)
{
	store_put_be32(key, product_id);
	memcpy(key + 4, uid, uid_len);
	return 4 + uid_len;
}

int
store_uid_put(store_txn *t, uint32_t product_id, const uint8_t *uid,
    size_t uid_len, const char *order_id, const char *station,
    const char *cm)
{
	StoredUid u = COUNTERSIGN__V1__STORED_UID__INIT;
	uint8_t   key[4 + STORE_UID_MAX];
	int       rv;

	if ((rv = store_txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (!store_uid_ok(uid, uid_len) ||
	    !store_str_ok(order_id, STORE_ORDER_ID_MAX) || station == NULL ||
	    strnlen(station, STORE_NAME_MAX + 1) > STORE_NAME_MAX ||
	    cm == NULL || strnlen(cm, STORE_NAME_MAX + 1) > STORE_NAME_MAX) {
		return CS_EINVAL;
	}
	u.order_id = (char *)order_id;
	u.station  = (char *)station;
	u.cm       = (char *)cm;
	return store_put_msg(t, DB_UIDS, key,
	    uid_key(key, product_id, uid, uid_len), &u.base,
	    MDB_NOOVERWRITE);
}

int
store_uid_get(store_txn *t, uint32_t product_id, const uint8_t *uid,
    size_t uid_len, StoredUid **out)
{
	uint8_t key[4 + STORE_UID_MAX];
	int     rv;

	if ((rv = store_txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (out == NULL || !store_uid_ok(uid, uid_len)) {
		return CS_EINVAL;
	}
	return store_get_msg(t, DB_UIDS, key, uid_key(key, product_id, uid,
	    uid_len),
	    out);
}
