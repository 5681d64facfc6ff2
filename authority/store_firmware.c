/*
 * store_firmware.c - the firmware an order holds (store.h): its
 * StoredFirmware row (version, digest, the wrapped data key, chunk count,
 * withdrawn) and its sealed chunks.
 *
 * The store never sees plaintext or a usable key: chunks arrive sealed
 * (AES-256-GCM under the version's data key) and the data key arrives
 * wrapped by the HSM.  What the store guarantees is placement: chunk keys
 * carry order, version and index, so one version's chunks are found (and
 * deleted) as a range, and a chunk is never confused with another
 * version's.  That the bytes are the right ones is checked by the GCM tag,
 * whose AAD binds the same order, version and index.
 */
#include "store_impl.h"

#include "cs_err.h"
#include "cs_log.h"

#include <string.h>

/* fwchunks keys: order_id NUL version (4 BE) index (4 BE). */
#define CHUNK_KEY_MAX (STORE_ORDER_ID_MAX + 1u + 8u)

static size_t
chunk_key(uint8_t *k, const char *order_id, uint32_t version,
    uint32_t index)
{
	size_t n = strlen(order_id);

	memcpy(k, order_id, n);
	k[n] = 0;
	store_put_be32(k + n + 1, version);
	store_put_be32(k + n + 5, index);
	return n + 9;
}

int
store_firmware_put(store_txn *t, const StoredFirmware *f)
{
	int rv;

	if ((rv = store_txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (f == NULL || !store_str_ok(f->order_id, STORE_ORDER_ID_MAX)) {
		return CS_EINVAL;
	}
	return store_put_msg(t, DB_FIRMWARE, f->order_id, strlen(f->order_id),
	    &f->base, 0);
}

int
store_firmware_get(store_txn *t, const char *order_id, StoredFirmware **out)
{
	int rv;

	if ((rv = store_txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (out == NULL || !store_str_ok(order_id, STORE_ORDER_ID_MAX)) {
		return CS_EINVAL;
	}
	return store_get_msg(t, DB_FIRMWARE, order_id, strlen(order_id), out);
}

int
store_fwchunk_put(store_txn *t, const char *order_id, uint32_t version,
    uint32_t index, const uint8_t *data, size_t len)
{
	uint8_t key[CHUNK_KEY_MAX];
	MDB_val k, v;
	int     rc, rv;

	if ((rv = store_txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (!store_str_ok(order_id, STORE_ORDER_ID_MAX) || data == NULL ||
	    len == 0 || len > STORE_FW_CHUNK + STORE_FW_TAG_LEN) {
		return CS_EINVAL;
	}
	k.mv_size = chunk_key(key, order_id, version, index);
	k.mv_data = key;
	v.mv_data = (void *)data;
	v.mv_size = len;
	rc = mdb_put(t->txn, t->st->dbi[DB_FWCHUNKS], &k, &v, 0);
	if (rc != MDB_SUCCESS) {
		rv = store_mdb_err(rc, "mdb_put", store_db_names[DB_FWCHUNKS]);
		return store_txn_fail(t, rv);
	}
	return CS_OK;
}

int
store_fwchunk_get(store_txn *t, const char *order_id, uint32_t version,
    uint32_t index, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t key[CHUNK_KEY_MAX];
	MDB_val k, v;
	int     rc, rv;

	if ((rv = store_txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (!store_str_ok(order_id, STORE_ORDER_ID_MAX) || buf == NULL ||
	    len == NULL) {
		return CS_EINVAL;
	}
	k.mv_size = chunk_key(key, order_id, version, index);
	k.mv_data = key;
	rc = mdb_get(t->txn, t->st->dbi[DB_FWCHUNKS], &k, &v);
	if (rc != MDB_SUCCESS) {
		return store_mdb_err(rc, "mdb_get",
		    store_db_names[DB_FWCHUNKS]);
	}
	if (v.mv_size > cap) {
		return CS_ETOOBIG;
	}
	memcpy(buf, v.mv_data, v.mv_size);
	*len = v.mv_size;
	return CS_OK;
}

int
store_fwchunk_delete_all(store_txn *t, const char *order_id,
    size_t *deleted)
{
	uint8_t     key[CHUNK_KEY_MAX];
	MDB_cursor *cur = NULL;
	MDB_val     k, v;
	size_t      plen, cnt = 0;
	int         rc, rv;

	if (deleted != NULL) {
		*deleted = 0;
	}
	if ((rv = store_txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (!store_str_ok(order_id, STORE_ORDER_ID_MAX)) {
		return CS_EINVAL;
	}
	/* The prefix order_id NUL: every version of this order, and no
	 * other order (an id never contains NUL). */
	plen = strlen(order_id) + 1;
	memcpy(key, order_id, plen);
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[DB_FWCHUNKS], &cur)) !=
	    MDB_SUCCESS) {
		rv = store_mdb_err(rc, "mdb_cursor_open",
		    store_db_names[DB_FWCHUNKS]);
		return store_txn_fail(t, rv);
	}
	k.mv_data = key;
	k.mv_size = plen;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0) {
			break;
		}
		/* After mdb_cursor_del the cursor already stands on the
		 * next item; LMDB's MDB_NEXT knows and does not skip it. */
		if ((rc = mdb_cursor_del(cur, 0)) != MDB_SUCCESS) {
			break;
		}
		cnt++;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
		rv = store_mdb_err(rc, "mdb_cursor_del",
		    store_db_names[DB_FWCHUNKS]);
		return store_txn_fail(t, rv);
	}
	if (deleted != NULL) {
		*deleted = cnt;
	}
	return CS_OK;
}
