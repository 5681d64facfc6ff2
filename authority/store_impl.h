/*
 * store_impl.h - private to the store module: the store and transaction
 * structs, the named databases and the helpers that store.c offers its
 * other files (store_records.c: the records of orders, stations, keys,
 * tokens, devices and UIDs; store_audit.c: the audit chain).  Everything
 * here talks LMDB; nothing outside the store includes this header.
 */
#ifndef STORE_IMPL_H
#define STORE_IMPL_H

/* A commit that fails with an I/O error while less than this is left on
 * the disk is taken as a full disk (io_error_or_full). */
#define STORE_DISK_LOW (4u * 1024u * 1024u)

#include "store.h"

#include <lmdb.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_MOD "store"

enum store_db {
	DB_ORDERS,
	DB_STATIONS,
	DB_DEVICES,
	DB_UIDS,
	DB_KEYS,
	DB_TOKENS,
	DB_AUDIT,
	DB_META,
	DB_FIRMWARE,
	DB_FWCHUNKS,
	DB_COUNT
};

/* Database names, for log lines. */
extern const char *const store_db_names[DB_COUNT];

#define META_SCHEMA "schema"
/*
 * The last audit event: seq (8 bytes BE) || its hash.  Written with every
 * append, so that removing events from the end of the log is detected.
 */
#define META_AUDIT_HEAD     "audit_head"
#define META_AUDIT_HEAD_LEN (8u + STORE_HASH_LEN)

/* The bytes that follow E in a stored audit value: field 7, length 32. */
#define AUDIT_TRAILER_TAG 0x3au
#define AUDIT_TRAILER_LEN (2u + STORE_HASH_LEN)

/* Largest key we build: devices (order id, NUL, uid). */
#define KEY_MAX (STORE_ORDER_ID_MAX + 1u + STORE_UID_MAX)

struct store {
	MDB_env *env;
	MDB_dbi  dbi[DB_COUNT];
	int      lock_fd; /* <dir>/countersign.lock, flock'ed for our life */
	int      dir_fd;  /* <dir> itself, flock'ed for our life */
	/* Held shared by every transaction, exclusively to resize the map
	 * (LMDB allows that only with no transaction active). */
	pthread_rwlock_t gate;
	bool             gate_ok;
};

struct store_txn {
	store   *st;
	MDB_txn *txn;   /* NULL once a failed write aborted it */
	bool     write;
	int      err;   /* the error that aborted it */
};

/*
 * Translate an LMDB (or errno) code rc of call what on database db (may
 * be NULL), logging it; MDB_NOTFOUND and MDB_KEYEXIST are not logged.
 */
int store_mdb_err(int rc, const char *what, const char *db);

/* Hex of up to 64 bytes of a key for log lines, in buf. */
const char *store_key_hex(char *buf, size_t len, const void *key,
    size_t klen);

/* Big-endian integers in keys and meta values. */
void store_put_be32(uint8_t *p, uint32_t v);
void store_put_be64(uint8_t *p, uint64_t v);
uint64_t store_get_be64(const uint8_t *p);

/* A string argument of 1..max bytes; a UID of STORE_UID_MIN..MAX. */
bool store_str_ok(const char *s, size_t max);
bool store_uid_ok(const uint8_t *uid, size_t uid_len);

/* CS_OK if t may be used (for writing if write), else why not. */
int store_txn_usable(store_txn *t, bool write);

/*
 * A write failed inside LMDB: abort t now (LMDB would refuse to commit
 * it) and make every later call on it report rv.  Returns rv.
 */
int store_txn_fail(store_txn *t, int rv);

/* Encode m and put it under key in db (flags: mdb_put's). */
int store_put_msg(store_txn *t, enum store_db db, const void *key,
    size_t klen, const ProtobufCMessage *m, unsigned flags);

/* Decode the value v (under key k) of db into *out. */
int store_decode(enum store_db db, const MDB_val *k, const MDB_val *v,
    ProtobufCMessage **out);

/* Get and decode the value under key in db; out is a message pointer. */
int store_get_msg(store_txn *t, enum store_db db, const void *key,
    size_t klen, void *out);

/* Which records a listing takes: 1 take, 0 skip, -1 stop here. */
typedef int (*store_list_match)(const MDB_val *k, const void *arg);

/*
 * The records of db in key order, from the first key >= seek (NULL: the
 * start) for as long as match (NULL: all) does not say stop; only the
 * records match takes are decoded.  outp is a message-array pointer,
 * freed with store_list_free.
 */
int store_list_where(store_txn *t, enum store_db db, const void *seek,
    size_t seek_len, store_list_match match, const void *arg, void *outp,
    size_t *n);

#endif /* STORE_IMPL_H */
