/*
 * store_audit.c - the store's tamper-evident audit chain (store.h):
 * appending an event in the caller's transaction, with hash =
 * SHA-256(prev_hash || encoded event) and the chain's head in meta, and
 * verifying and listing the chain.  Apart from store.c because the chain
 * is a concern of its own with its own invariants.
 */
#include "store_impl.h"

#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * The hash at the end of a stored audit value, after checking that the
 * value ends with the field-7 trailer.  NULL if it does not.
 */
static const uint8_t *
audit_trailer(const MDB_val *v)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < AUDIT_TRAILER_LEN) {
		return NULL;
	}
	p += v->mv_size - AUDIT_TRAILER_LEN;
	if (p[0] != AUDIT_TRAILER_TAG || p[1] != STORE_HASH_LEN) {
		return NULL;
	}
	return p + 2;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
store_audit_append(store_txn *t, const char *actor, const char *type,
    const char *const *kv, uint64_t *seq_out)
{
	StoredAuditEvent               ev;
	StoredAuditEvent__FieldsEntry  ent[STORE_AUDIT_FIELDS_MAX];
	StoredAuditEvent__FieldsEntry *entp[STORE_AUDIT_FIELDS_MAX];
	MDB_cursor                    *cur;
	MDB_val                        k, v;
	uint8_t                        prev[STORE_HASH_LEN];
	uint8_t                        key[8];
	uint8_t                       *buf = NULL;
	const uint8_t                 *h;
	uint64_t                       seq;
	size_t                         nkv = 0, elen;
	int                            rc, rv;

	countersign__v1__stored_audit_event__init(&ev);
	if ((rv = store_txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (!store_str_ok(actor, STORE_AUDIT_ACTOR_MAX) ||
	    !store_str_ok(type, STORE_AUDIT_TYPE_MAX)) {
		return CS_EINVAL;
	}
	for (; kv != NULL && kv[2 * nkv] != NULL; nkv++) {
		if (nkv == STORE_AUDIT_FIELDS_MAX ||
		    !store_str_ok(kv[2 * nkv], STORE_AUDIT_KEY_MAX) ||
		    kv[2 * nkv + 1] == NULL ||
		    strnlen(kv[2 * nkv + 1], STORE_AUDIT_VALUE_MAX + 1) >
		        STORE_AUDIT_VALUE_MAX) {
			return CS_EINVAL;
		}
		countersign__v1__stored_audit_event__fields_entry__init(
		    &ent[nkv]);
		ent[nkv].key   = (char *)kv[2 * nkv];
		ent[nkv].value = (char *)kv[2 * nkv + 1];
		entp[nkv]      = &ent[nkv];
	}

	/* The previous event: its seq and the hash it ends with. */
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[DB_AUDIT], &cur)) !=
	    MDB_SUCCESS) {
		return store_txn_fail(t, store_mdb_err(rc, "mdb_cursor_open",
		    "audit"));
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	/* k and v stay valid until the next write; the cursor is done. */
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		seq = 1;
		memset(prev, 0, sizeof(prev));
	} else if (rc == MDB_SUCCESS) {
		char hex[2 * 64 + 1];

		if (k.mv_size != 8 || (h = audit_trailer(&v)) == NULL ||
		    store_get_be64(k.mv_data) == UINT64_MAX) {
			cs_log_error(LOG_MOD, "malformed last audit event "
			    "db=audit key=%s len=%zu",
			    store_key_hex(hex, sizeof(hex), k.mv_data,
			    k.mv_size),
			    v.mv_size);
			rv = CS_ESTORE;
			goto out;
		}
		seq = store_get_be64(k.mv_data) + 1;
		memcpy(prev, h, sizeof(prev));
	} else {
		rv = store_txn_fail(t, store_mdb_err(rc, "mdb_cursor_get",
		    "audit"));
		goto out;
	}

	ev.seq            = seq;
	ev.time_unix_ms   = now_ms();
	ev.actor          = (char *)actor;
	ev.type           = (char *)type;
	ev.n_fields       = nkv;
	ev.fields         = nkv > 0 ? entp : NULL;
	ev.prev_hash.data = prev;
	ev.prev_hash.len  = sizeof(prev);

	/* buf = prev || E || trailer; hash over the first two. */
	elen = countersign__v1__stored_audit_event__get_packed_size(&ev);
	if (elen + AUDIT_TRAILER_LEN > STORE_VALUE_MAX) {
		rv = CS_ETOOBIG;
		goto out;
	}
	if ((buf = malloc(STORE_HASH_LEN + elen + AUDIT_TRAILER_LEN)) ==
	    NULL) {
		rv = CS_ENOMEM;
		goto out;
	}
	memcpy(buf, prev, STORE_HASH_LEN);
	countersign__v1__stored_audit_event__pack(&ev, buf + STORE_HASH_LEN);
	buf[STORE_HASH_LEN + elen]     = AUDIT_TRAILER_TAG;
	buf[STORE_HASH_LEN + elen + 1] = STORE_HASH_LEN;
	if ((rv = cs_sha256(buf, STORE_HASH_LEN + elen,
	         buf + STORE_HASH_LEN + elen + 2)) != CS_OK) {
		goto out;
	}

	store_put_be64(key, seq);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	v.mv_data = buf + STORE_HASH_LEN;
	v.mv_size = elen + AUDIT_TRAILER_LEN;
	if ((rc = mdb_put(t->txn, t->st->dbi[DB_AUDIT], &k, &v,
	         MDB_NOOVERWRITE | MDB_APPEND)) != MDB_SUCCESS) {
		rv = store_txn_fail(t, store_mdb_err(rc, "mdb_put", "audit"));
		goto out;
	}
	/* The head, in the same transaction; reuse buf's prev slot. */
	memmove(buf + 8, buf + STORE_HASH_LEN + elen + 2, STORE_HASH_LEN);
	store_put_be64(buf, seq);
	k.mv_data = (void *)META_AUDIT_HEAD;
	k.mv_size = strlen(META_AUDIT_HEAD);
	v.mv_data = buf;
	v.mv_size = META_AUDIT_HEAD_LEN;
	if ((rc = mdb_put(t->txn, t->st->dbi[DB_META], &k, &v, 0)) !=
	    MDB_SUCCESS) {
		rv = store_txn_fail(t, store_mdb_err(rc, "mdb_put", "meta"));
		goto out;
	}
	if (seq_out != NULL) {
		*seq_out = seq;
	}
	rv = CS_OK;
out:
	free(buf);
	return rv;
}

/*
 * Check one stored event against the previous hash; on success copy its
 * hash to prev.  CS_ECRYPTO if it fails, CS_ENOMEM.
 */
static int
audit_event_check(uint64_t seq, const MDB_val *k, const MDB_val *v,
    uint8_t prev[STORE_HASH_LEN])
{
	StoredAuditEvent *ev = NULL;
	const uint8_t    *h;
	uint8_t          *buf = NULL;
	uint8_t           d[STORE_HASH_LEN];
	size_t            elen;
	int               rv = CS_ECRYPTO;
	char              hex[2 * 64 + 1];

	if ((h = audit_trailer(v)) == NULL) {
		goto out;
	}
	elen = v->mv_size - AUDIT_TRAILER_LEN;
	if ((buf = malloc(STORE_HASH_LEN + elen)) == NULL) {
		rv = CS_ENOMEM;
		goto out;
	}
	memcpy(buf, prev, STORE_HASH_LEN);
	memcpy(buf + STORE_HASH_LEN, v->mv_data, elen);
	if (cs_sha256(buf, STORE_HASH_LEN + elen, d) != CS_OK ||
	    !cs_ct_equal(d, h, STORE_HASH_LEN)) {
		goto out;
	}
	/* The hash matches; the decoded fields must agree with the key and
	 * the chain too (E could otherwise be any bytes). */
	ev = countersign__v1__stored_audit_event__unpack(NULL, v->mv_size,
	    v->mv_data);
	if (ev == NULL || ev->seq != seq || ev->prev_hash.len !=
	    STORE_HASH_LEN || memcmp(ev->prev_hash.data, prev,
	    STORE_HASH_LEN) != 0 || ev->hash.len != STORE_HASH_LEN ||
	    memcmp(ev->hash.data, h, STORE_HASH_LEN) != 0) {
		goto out;
	}
	memcpy(prev, h, STORE_HASH_LEN);
	rv = CS_OK;
out:
	if (rv == CS_ECRYPTO) {
		cs_log_error(LOG_MOD, "audit event fails verification "
		    "db=audit key=%s seq=%llu",
		    store_key_hex(hex, sizeof(hex), k->mv_data, k->mv_size),
		    (unsigned long long)seq);
	}
	if (ev != NULL) {
		countersign__v1__stored_audit_event__free_unpacked(ev, NULL);
	}
	free(buf);
	return rv;
}

/*
 * The intact chain ends at *good with hash last; compare with the head
 * recorded in meta.  Sets *bad (and lowers *good) on a mismatch.
 */
static int
audit_head_check(store_txn *t, uint64_t *good, uint64_t *bad,
    const uint8_t last[STORE_HASH_LEN])
{
	MDB_val  k, v;
	uint64_t head;
	int      rc;

	k.mv_data = (void *)META_AUDIT_HEAD;
	k.mv_size = strlen(META_AUDIT_HEAD);
	rc        = mdb_get(t->txn, t->st->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		if (*good != 0) {
			cs_log_error(LOG_MOD, "audit head missing db=meta "
			    "last_seq=%llu", (unsigned long long)*good);
			*bad = *good + 1;
		}
		return CS_OK;
	}
	if (rc != MDB_SUCCESS) {
		return store_mdb_err(rc, "mdb_get", "meta");
	}
	if (v.mv_size != META_AUDIT_HEAD_LEN) {
		cs_log_error(LOG_MOD, "malformed audit head db=meta len=%zu",
		    v.mv_size);
		*bad = *good + 1;
		return CS_OK;
	}
	head = store_get_be64(v.mv_data);
	if (head > *good) {
		/* Events at the end of the log were removed. */
		*bad = *good + 1;
	} else if (head < *good) {
		/* Events were added behind the store's back. */
		*bad  = head + 1;
		*good = head;
	} else if (*good != 0 && memcmp((const uint8_t *)v.mv_data + 8, last,
	               STORE_HASH_LEN) != 0) {
		/* The last event was replaced by another, well-formed one. */
		*bad  = *good;
		*good = *good - 1;
	}
	if (*bad != 0) {
		cs_log_error(LOG_MOD, "audit chain does not end at its head "
		    "db=meta head_seq=%llu chain_seq=%llu",
		    (unsigned long long)head, (unsigned long long)*good);
	}
	return CS_OK;
}

int
store_audit_verify(store *st, uint64_t *verified_up_to, uint64_t *first_bad)
{
	store_txn  *t   = NULL;
	MDB_cursor *cur = NULL;
	MDB_val     k, v;
	uint8_t     prev[STORE_HASH_LEN];
	uint64_t    expect = 1, good = 0, bad = 0;
	int         rc, rv;

	if (st == NULL || verified_up_to == NULL || first_bad == NULL) {
		return CS_EINVAL;
	}
	*verified_up_to = 0;
	*first_bad      = 0;
	if ((rv = store_txn_begin(st, false, &t)) != CS_OK) {
		return rv;
	}
	if ((rc = mdb_cursor_open(t->txn, st->dbi[DB_AUDIT], &cur)) !=
	    MDB_SUCCESS) {
		rv = store_mdb_err(rc, "mdb_cursor_open", "audit");
		goto out;
	}
	memset(prev, 0, sizeof(prev));
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8 || store_get_be64(k.mv_data) != expect) {
			/* A missing sequence number (or a foreign key). */
			cs_log_error(LOG_MOD, "audit chain gap db=audit "
			    "expected_seq=%llu", (unsigned long long)expect);
			bad = expect;
			break;
		}
		rv = audit_event_check(expect, &k, &v, prev);
		if (rv == CS_ECRYPTO) {
			bad = expect;
			break;
		}
		if (rv != CS_OK) {
			goto out;
		}
		good = expect++;
	}
	if (bad == 0 && rc != MDB_NOTFOUND) {
		rv = store_mdb_err(rc, "mdb_cursor_get", "audit");
		goto out;
	}
	if (bad == 0 && (rv = audit_head_check(t, &good, &bad, prev)) !=
	    CS_OK) {
		goto out;
	}
	*verified_up_to = good;
	*first_bad      = bad;
	rv              = bad == 0 ? CS_OK : CS_ECRYPTO;
out:
	if (cur != NULL) {
		mdb_cursor_close(cur);
	}
	store_txn_abort(t);
	return rv;
}

int
store_audit_list(store *st, uint64_t since, size_t limit,
    StoredAuditEvent ***events, size_t *n)
{
	StoredAuditEvent **list = NULL;
	store_txn         *t    = NULL;
	MDB_cursor        *cur  = NULL;
	MDB_val            k, v;
	uint8_t            key[8];
	size_t             cnt = 0;
	int                rc, rv;

	if (st == NULL || events == NULL || n == NULL) {
		return CS_EINVAL;
	}
	*events = NULL;
	*n      = 0;
	if (limit == 0 || limit > STORE_AUDIT_LIST_MAX) {
		limit = STORE_AUDIT_LIST_MAX;
	}
	if (since == UINT64_MAX) {
		return CS_OK;
	}
	if ((list = calloc(limit, sizeof(*list))) == NULL) {
		return CS_ENOMEM;
	}
	if ((rv = store_txn_begin(st, false, &t)) != CS_OK) {
		goto out;
	}
	if ((rc = mdb_cursor_open(t->txn, st->dbi[DB_AUDIT], &cur)) !=
	    MDB_SUCCESS) {
		rv = store_mdb_err(rc, "mdb_cursor_open", "audit");
		goto out;
	}
	store_put_be64(key, since + 1);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == MDB_SUCCESS && cnt < limit;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if ((rv = store_decode(DB_AUDIT, &k, &v,
		         (ProtobufCMessage **)&list[cnt])) != CS_OK) {
			goto out;
		}
		cnt++;
	}
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
		rv = store_mdb_err(rc, "mdb_cursor_get", "audit");
		goto out;
	}
	if (cnt == 0) {
		free(list);
		list = NULL;
	}
	*events = list;
	*n      = cnt;
	list    = NULL;
	rv      = CS_OK;
out:
	if (cur != NULL) {
		mdb_cursor_close(cur);
	}
	store_txn_abort(t);
	store_audit_list_free(list, cnt);
	return rv;
}

void
store_audit_list_free(StoredAuditEvent **events, size_t n)
{
	store_list_free(events, n);
}
