/*
 * store.h - the authority's durable state on LMDB: orders, stations,
 * devices, the per-product UID index, signing keys, the hash-chained audit
 * log and a little metadata.
 *
 * Why LMDB: one writer, many readers, copy-on-write pages and a commit that
 * is durable when mdb_txn_commit returns (default flags, fsync).  That is
 * exactly the promise the sign pipeline needs: nothing leaves the authority
 * before the transaction that counts it has committed.  store.c is the only
 * file that includes <lmdb.h>; everything above it sees opaque handles and
 * cs_err codes.
 *
 * Named databases (keys are raw bytes, values protobuf-encoded messages of
 * proto/countersign/v1/store.proto):
 *   orders    order_id                              -> StoredOrder
 *   stations  name                                  -> StoredStation
 *   devices   order_id NUL uid                      -> StoredDevice
 *   uids      product_id (4 bytes BE) uid           -> StoredUid
 *   keys      label                                 -> StoredKey
 *   tokens    SHA-256 of an admin token (32 bytes)  -> StoredToken
 *   firmware  order_id                              -> StoredFirmware
 *   fwchunks  order_id NUL version (4 BE) index (4 BE)
 *                                                   -> sealed chunk
 *             (ciphertext || 16-byte GCM tag; see StoredFirmware)
 *   audit     seq (8 bytes BE)                      -> StoredAuditEvent
 *   meta      "schema"     -> uint32 BE (STORE_SCHEMA)
 *             "audit_head" -> seq (8 bytes BE) || hash of the last event
 *
 * Threads: a store may be shared by threads.  LMDB allows one write
 * transaction at a time (store_txn_begin(write) blocks until the previous
 * one ends); read transactions run in parallel with it.  A transaction is
 * used by one thread at a time.  Messages returned by getters belong to
 * the caller and stay valid after the transaction ends.
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include "countersign/v1/store.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Short names for the stored messages (store.proto). */
typedef Countersign__V1__StoredOrder      StoredOrder;
typedef Countersign__V1__StoredStation    StoredStation;
typedef Countersign__V1__StoredDevice     StoredDevice;
typedef Countersign__V1__StoredUid        StoredUid;
typedef Countersign__V1__StoredKey        StoredKey;
typedef Countersign__V1__StoredToken      StoredToken;
typedef Countersign__V1__StoredFirmware   StoredFirmware;
typedef Countersign__V1__StoredAuditEvent StoredAuditEvent;
typedef Countersign__V1__StoredAuditEvent__FieldsEntry
    StoredAuditEvent__FieldsEntry;

/* Schema version this program writes and understands. */
#define STORE_SCHEMA 1u

/* Maxima for every length that reaches the store from outside. */
#define STORE_ORDER_ID_MAX     64u   /* bytes, excluding NUL */
#define STORE_NAME_MAX         64u   /* station name, key label */
#define STORE_UID_MIN          1u
#define STORE_UID_MAX          32u
#define STORE_VALUE_MAX        65536u /* one encoded value */
#define STORE_AUDIT_ACTOR_MAX  128u
#define STORE_AUDIT_TYPE_MAX   64u
#define STORE_AUDIT_FIELDS_MAX 32u   /* key/value pairs per event */
#define STORE_AUDIT_KEY_MAX    64u
#define STORE_AUDIT_VALUE_MAX  1024u
#define STORE_AUDIT_LIST_MAX   1000u /* events per store_audit_list */
#define STORE_LIST_MAX         100000u /* items per list call */
#define STORE_HASH_LEN         32u
/* A held firmware image: one sealed chunk is at most this much plaintext
 * (plus the 16-byte tag, well under STORE_VALUE_MAX). */
#define STORE_FW_CHUNK         32768u
#define STORE_FW_TAG_LEN       16u

/*
 * Is s an identifier the store accepts from outside (order ids, station,
 * CM and key names): 1..max bytes of printable ASCII without spaces?
 */
bool store_id_ok(const char *s, size_t max);

typedef struct store     store;
typedef struct store_txn store_txn;

/*
 * Open (creating if needed) the store in directory dir; dir itself is
 * created with mode 0700 if missing (not its parents).  map_size is the
 * most the data file may grow to, in bytes (0: LMDB's default, 1 MiB; an
 * existing larger file keeps its size).  On failure a message for the
 * operator is written to err (errlen bytes, may be NULL/0).
 * Errors: CS_EINVAL, CS_ENOMEM, CS_EIO, CS_EPERM, CS_ESTORE (not an LMDB
 * store or corrupt), CS_EPRECOND (the store's schema is newer than
 * STORE_SCHEMA: refused untouched), CS_EEXHAUSTED (map full on creation).
 */
int store_open(store **out, const char *dir, size_t map_size, char *err,
    size_t errlen);

/* Close the store.  Every transaction must have ended.  NULL-safe. */
void store_close(store *st);

/*
 * Begin a transaction.  write=true blocks until no other write transaction
 * is open.  Errors: CS_EINVAL, CS_ENOMEM, CS_EEXHAUSTED (too many
 * readers), CS_ESTORE.
 */
int store_txn_begin(store *st, bool write, store_txn **out);

/*
 * Commit and free txn (always freed, even on error).  For a write
 * transaction the data is on disk when CS_OK is returned (LMDB default
 * flags: fsync).  If an earlier call on txn failed with a store error,
 * nothing is committed and that error is returned.  Errors: CS_EINVAL,
 * CS_EEXHAUSTED (map full: nothing written), CS_EIO, CS_ESTORE.
 */
int store_txn_commit(store_txn *txn);

/* Abort (discard) and free txn.  NULL-safe. */
void store_txn_abort(store_txn *txn);

/*
 * Common errors of the verbs below.  A failed write (CS_EEXHAUSTED when the
 * map is full, CS_EIO, CS_ESTORE) aborts the whole transaction at once: no
 * partial state can be committed; later calls on it return the same error
 * and the caller still ends it with store_txn_abort (or _commit, which
 * returns the error).  Argument errors (CS_EINVAL) leave txn usable.
 * CS_ESTORE on a get also means a stored value failed to decode (logged
 * with the database and key).  Writes on a read transaction: CS_EINVAL.
 * A value that encodes to more than STORE_VALUE_MAX: CS_ETOOBIG (txn stays
 * usable).  Any call may also return CS_ENOMEM.
 */

/* Insert or replace an order (key: o->order_id, 1..STORE_ORDER_ID_MAX). */
int store_order_put(store_txn *txn, const StoredOrder *o);

/*
 * Look up an order; *out is freed with
 * countersign__v1__stored_order__free_unpacked(o, NULL).
 * Errors: CS_ENOENT, CS_EINVAL, CS_ESTORE.
 */
int store_order_get(store_txn *txn, const char *order_id, StoredOrder **out);

/*
 * All orders in key order.  *out (array of *n messages) freed with
 * store_order_list_free.  Errors: CS_ENOMEM, CS_ESTORE, CS_ETOOBIG (more
 * than STORE_LIST_MAX).
 */
int store_order_list(store_txn *txn, StoredOrder ***out, size_t *n);
void store_order_list_free(StoredOrder **list, size_t n);

/*
 * Free any listing of this store (the array of n messages that one of the
 * store_*_list, store_device_find or store_audit_list calls made), for
 * code that handles listings of several kinds alike; NULL-safe.
 */
void store_list_free(void *list, size_t n);

/*
 * How much of the map is in use: *used bytes (pages up to the last one
 * written) of *size (the map size, map_size_mb).  Errors: CS_ESTORE.
 */
int store_space(store *st, uint64_t *used, uint64_t *size);

/*
 * Room left: *map_left bytes of the map, *disk_left bytes free for
 * unprivileged use on the filesystem of data_dir (UINT64_MAX when that
 * cannot be read).  Errors: CS_ESTORE.
 */
int store_room(store *st, uint64_t *map_left, uint64_t *disk_left);

/*
 * Raise the map to map_size bytes while the store is open (never lower):
 * waits up to 5 s for a moment with no transaction.  Errors: CS_EINVAL
 * (smaller than now), CS_EAGAIN (transactions kept running), as LMDB.
 */
int store_grow(store *st, size_t map_size);

/* What a station or an officer is told when the store is full (a full
 * map and a full disk alike). */
#define STORE_FULL_TODO                                                     \
	"the OEM must raise [authority] map_size_mb and reload the "        \
	"authority, or free disk space under data_dir"

/* Insert or replace a station (key: s->name, 1..STORE_NAME_MAX). */
int store_station_put(store_txn *txn, const StoredStation *s);
/* Errors: CS_ENOENT, CS_EINVAL, CS_ESTORE. */
int store_station_get(store_txn *txn, const char *name, StoredStation **out);
/* As store_order_list. */
int store_station_list(store_txn *txn, StoredStation ***out, size_t *n);
void store_station_list_free(StoredStation **list, size_t n);

/* Insert or replace a key (key: k->label, 1..STORE_NAME_MAX). */
int store_key_put(store_txn *txn, const StoredKey *k);
/* Errors: CS_ENOENT, CS_EINVAL, CS_ESTORE. */
int store_key_get(store_txn *txn, const char *label, StoredKey **out);
/* As store_order_list. */
int store_key_list(store_txn *txn, StoredKey ***out, size_t *n);
void store_key_list_free(StoredKey **list, size_t n);

/*
 * Admin tokens (the web console's sign-in and scripts' bearer tokens):
 * only the SHA-256 of a token is stored, so the store never holds a
 * secret; a token is found by hashing what the caller presents.
 * Insert or replace (key: hash; tok->name 1..STORE_NAME_MAX).
 */
int store_token_put(store_txn *txn, const uint8_t hash[STORE_HASH_LEN],
    const StoredToken *tok);
/* Errors: CS_ENOENT, CS_EINVAL, CS_ESTORE. */
int store_token_get(store_txn *txn, const uint8_t hash[STORE_HASH_LEN],
    StoredToken **out);
/* As store_order_list (in hash order). */
int store_token_list(store_txn *txn, StoredToken ***out, size_t *n);

/* Disable every token called name: *found of them exist, *changed were
 * enabled before (at most 64 a call).  Errors: CS_EINVAL, store errors. */
int store_token_disable(store_txn *txn, const char *name, unsigned *found,
    unsigned *changed);
void store_token_list_free(StoredToken **list, size_t n);

/*
 * The firmware an order holds (key: f->order_id).  An order that only binds
 * a digest (or none) has no row: store_firmware_get gives CS_ENOENT.  A
 * withdrawn image keeps its row (withdrawn = true, chunks = 0, its chunks
 * deleted), so "withdrawn" is told apart from "never held".
 *
 * For the Sign path: an order whose firmware row says withdrawn must not
 * sign any more (store_firmware_get(txn, order_id, &f) == CS_OK &&
 * f->withdrawn).  *out is freed with
 * countersign__v1__stored_firmware__free_unpacked(f, NULL).
 * Errors: CS_ENOENT, CS_EINVAL, CS_ESTORE.
 */
int store_firmware_put(store_txn *txn, const StoredFirmware *f);
int store_firmware_get(store_txn *txn, const char *order_id,
    StoredFirmware **out);

/*
 * One sealed chunk (1..STORE_FW_CHUNK + STORE_FW_TAG_LEN bytes) of version
 * of order_id's image.  store_fwchunk_get copies it into buf (cap bytes),
 * *len its length.  Errors: CS_EINVAL, CS_ENOENT, CS_ETOOBIG (larger than
 * cap), CS_ESTORE.
 */
int store_fwchunk_put(store_txn *txn, const char *order_id, uint32_t version,
    uint32_t index, const uint8_t *data, size_t len);
int store_fwchunk_get(store_txn *txn, const char *order_id, uint32_t version,
    uint32_t index, uint8_t *buf, size_t cap, size_t *len);

/* Delete every chunk of every version of order_id; *deleted (may be NULL)
 * counts them.  Errors: CS_EINVAL, store errors. */
int store_fwchunk_delete_all(store_txn *txn, const char *order_id,
    size_t *deleted);

/*
 * Insert or replace the device d->uid (STORE_UID_MIN..STORE_UID_MAX bytes)
 * of order d->order_id.
 */
int store_device_put(store_txn *txn, const StoredDevice *d);

/*
 * Look up a device; *out is freed with
 * countersign__v1__stored_device__free_unpacked(d, NULL).
 * Errors: CS_ENOENT, CS_EINVAL, CS_ESTORE.
 */
int store_device_get(store_txn *txn, const char *order_id,
    const uint8_t *uid, size_t uid_len, StoredDevice **out);

/*
 * Every device with this UID, in any order (a scan of all devices).
 * *out (array of *n) freed with store_device_list_free.  Errors:
 * CS_ENOENT (none), CS_EINVAL, CS_ENOMEM, CS_ESTORE, CS_ETOOBIG.
 */
int store_device_find(store_txn *txn, const uint8_t *uid, size_t uid_len,
    StoredDevice ***out, size_t *n);
void store_device_list_free(StoredDevice **list, size_t n);

/*
 * Every device of order_id (*n may be 0: *out is then NULL).  A scan of
 * all devices, for audits and tests.  Freed with store_device_list_free.
 * Errors: CS_EINVAL, CS_ENOMEM, CS_ESTORE, CS_ETOOBIG.
 */
int store_device_list_order(store_txn *txn, const char *order_id,
    StoredDevice ***out, size_t *n);

/*
 * Record the first order, station and CM a UID was seen under for
 * product_id.  Never replaces: a UID already indexed gives CS_EEXIST (txn
 * stays usable) so the caller can compare with store_uid_get (a cloning
 * signal).  station and cm may be "" but not NULL.
 */
int store_uid_put(store_txn *txn, uint32_t product_id, const uint8_t *uid,
    size_t uid_len, const char *order_id, const char *station,
    const char *cm);

/*
 * Look up the UID index; *out is freed with
 * countersign__v1__stored_uid__free_unpacked(u, NULL).
 * Errors: CS_ENOENT, CS_EINVAL, CS_ESTORE.
 */
int store_uid_get(store_txn *txn, uint32_t product_id, const uint8_t *uid,
    size_t uid_len, StoredUid **out);

/*
 * Append an audit event in the caller's write transaction, so that it
 * commits (or not) with the change it records.  kv is NULL or a
 * NULL-terminated list of key, value strings (at most
 * STORE_AUDIT_FIELDS_MAX pairs).  The event gets seq = last seq + 1
 * (1 for the first), time_unix_ms = now, prev_hash = the previous event's
 * hash (32 zero bytes for the first) and
 *
 *   hash = SHA-256(prev_hash (32 bytes) || E)
 *
 * where E is the protobuf encoding (protobuf-c, fields in number order,
 * map entries in the order given in kv) of the StoredAuditEvent with
 * every field set except hash.  The stored value is exactly
 * E || 0x3a 0x20 || hash, i.e. E followed by field 7 (hash), so the
 * verifier hashes the stored bytes themselves and never relies on
 * re-encoding.  meta "audit_head" is set to seq || hash in the same
 * transaction.  *seq_out (may be NULL) receives the seq.
 * Errors: CS_EINVAL, CS_ENOMEM, CS_ECRYPTO, CS_ESTORE, CS_EEXHAUSTED.
 */
int store_audit_append(store_txn *txn, const char *actor, const char *type,
    const char *const *kv, uint64_t *seq_out);

/*
 * Walk the whole audit chain in a read transaction of its own.  Returns
 * CS_OK when intact (*verified_up_to = last seq, 0 if empty;
 * *first_bad = 0).  Returns CS_ECRYPTO when an event was changed (hash or
 * encoding mismatch, undecodable), a link is broken (prev_hash differs
 * from the previous hash, seq in the value differs from its key) or a
 * sequence number is missing: *first_bad is the first seq that is bad or
 * missing, *verified_up_to the last good seq before it.  The chain must
 * also end exactly at meta "audit_head": events removed from (or added
 * at) the end are reported at the first seq past the agreeing part.  Like
 * any unkeyed chain, it cannot catch someone who rewrites the tail and
 * the head together; anchoring the head outside the store does that.
 * Other errors: CS_EINVAL, CS_ESTORE, CS_ENOMEM.
 */
int store_audit_verify(store *st, uint64_t *verified_up_to,
    uint64_t *first_bad);

/*
 * Events with seq > since, in order, at most limit (0 or more than
 * STORE_AUDIT_LIST_MAX: STORE_AUDIT_LIST_MAX), read in a transaction of
 * its own.  *events (array of *n) freed with store_audit_list_free.
 * Does not verify the chain.  Errors: CS_EINVAL, CS_ENOMEM, CS_ESTORE.
 */
int store_audit_list(store *st, uint64_t since, size_t limit,
    StoredAuditEvent ***events, size_t *n);
void store_audit_list_free(StoredAuditEvent **events, size_t n);

#endif /* CS_STORE_H */
