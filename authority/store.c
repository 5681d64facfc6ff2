/*
 * store.c - the authority's LMDB store (see store.h).
 *
 * This is the one file that talks to LMDB: MDB_* codes are translated to
 * cs_err here and logged with mdb_strerror beside the original code.  Values
 * are protobuf-c messages; a value that fails to decode is reported as
 * CS_ESTORE with the database and key in the log line, never papered over.
 *
 * A write that fails inside LMDB leaves its transaction unusable (LMDB
 * marks it as failed), so we abort it on the spot and remember the error:
 * nothing of a half-done transaction can be committed by mistake.
 */
#include "store.h"

#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_log.h"

#include <lmdb.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

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
	DB_COUNT
};

static const char *const db_names[DB_COUNT] = {
	[DB_ORDERS]   = "orders",
	[DB_STATIONS] = "stations",
	[DB_DEVICES]  = "devices",
	[DB_UIDS]     = "uids",
	[DB_KEYS]     = "keys",
	[DB_TOKENS]   = "tokens",
	[DB_AUDIT]    = "audit",
	[DB_META]     = "meta",
};

/* The message each database holds (meta holds raw values). */
static const ProtobufCMessageDescriptor *const db_desc[DB_COUNT] = {
	[DB_ORDERS]   = &countersign__v1__stored_order__descriptor,
	[DB_STATIONS] = &countersign__v1__stored_station__descriptor,
	[DB_DEVICES]  = &countersign__v1__stored_device__descriptor,
	[DB_UIDS]     = &countersign__v1__stored_uid__descriptor,
	[DB_KEYS]     = &countersign__v1__stored_key__descriptor,
	[DB_TOKENS]   = &countersign__v1__stored_token__descriptor,
	[DB_AUDIT]    = &countersign__v1__stored_audit_event__descriptor,
	[DB_META]     = NULL,
};

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
 * Translate an LMDB (or errno) code, logging it.  MDB_NOTFOUND and
 * MDB_KEYEXIST are answers, not failures, and are not logged.
 */
static int
mdb_err(int rc, const char *what, const char *db)
{
	int rv;

	switch (rc) {
	case MDB_SUCCESS:
		return CS_OK;
	case MDB_NOTFOUND:
		return CS_ENOENT;
	case MDB_KEYEXIST:
		return CS_EEXIST;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_READERS_FULL:
	case MDB_DBS_FULL:
		rv = CS_EEXHAUSTED;
		break;
	case ENOMEM:
		rv = CS_ENOMEM;
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		rv = CS_EPERM;
		break;
	case ENOSPC:
	case EDQUOT:
		/* The disk under the map is full: to the station the same
		 * "store full" as a full map. */
		rv = CS_EEXHAUSTED;
		break;
	case EIO:
		rv = CS_EIO;
		break;
	default:
		rv = CS_ESTORE;
		break;
	}
	cs_log_error(LOG_MOD, "%s failed db=%s mdb_err=%d mdb_msg=\"%s\"",
	    what, db != NULL ? db : "-", rc, mdb_strerror(rc));
	return rv;
}

/* Hex of up to 64 bytes of a key for log lines. */
static const char *
key_hex(char *buf, size_t len, const void *key, size_t klen)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t    *k     = key;
	size_t            i, o = 0;

	for (i = 0; i < klen && i < 64 && o + 3 <= len; i++) {
		buf[o++] = hex[k[i] >> 4];
		buf[o++] = hex[k[i] & 0x0f];
	}
	buf[o] = '\0';
	return buf;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint64_t
get_be64(const uint8_t *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A string argument of 1..max bytes. */
static bool
str_ok(const char *s, size_t max)
{
	return s != NULL && s[0] != '\0' && strnlen(s, max + 1) <= max;
}

static bool
uid_ok(const uint8_t *uid, size_t uid_len)
{
	return uid != NULL && uid_len >= STORE_UID_MIN &&
	    uid_len <= STORE_UID_MAX;
}

bool
store_id_ok(const char *s, size_t max)
{
	size_t i;

	if (s == NULL || s[0] == '\0') {
		return false;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max || s[i] <= 0x20 || s[i] >= 0x7f) {
			return false;
		}
	}
	return true;
}

/*
 * One process per store: LMDB itself lets two processes share an
 * environment, and two authorities on one data_dir each count quota and
 * serials on their own (serials were issued twice).  An exclusive flock on
 * <dir>/countersign.lock, held until store_close (or the process's end),
 * keeps the second out; the file names the holder's PID for the message.
 * A standby on shared storage waits on the same lock.
 */
static int
store_lock(store *st, const char *dir, char *err, size_t errlen)
{
	char    path[4096], pid[32] = "";
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/countersign.lock", dir) >=
	    (int)sizeof(path)) {
		set_err(err, errlen, "store: directory name too long");
		return CS_EINVAL;
	}
	if ((st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) <
	    0) {
		set_err(err, errlen, "store: cannot open %s: %s", path,
		    strerror(errno));
		return errno == EACCES ? CS_EPERM : CS_EIO;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			n = pread(st->lock_fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			set_err(err, errlen, "store %s is in use by another "
			    "process (pid %s): one authority per data_dir; stop "
			    "that one first, or give this one its own data_dir",
			    dir, pid[0] != '\0' ? pid : "unknown");
			return CS_EPRECOND;
		}
		set_err(err, errlen, "store: cannot lock %s: %s", path,
		    strerror(e));
		return CS_EIO;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(st->lock_fd, 0) != 0 ||
	    pwrite(st->lock_fd, pid, (size_t)n, 0) != n) {
		/* The lock holds all the same; only the message loses the
		 * PID. */
		cs_log_warn("store", "cannot write the PID into %s", path);
	}
	return CS_OK;
}

int
store_open(store **out, const char *dir, size_t map_size, char *err,
    size_t errlen)
{
	store   *st  = NULL;
	MDB_txn *txn = NULL;
	MDB_val  k, v;
	uint8_t  schema[4];
	int      rc, rv, i;

	if (out == NULL || dir == NULL || dir[0] == '\0') {
		set_err(err, errlen, "store: no directory given");
		return CS_EINVAL;
	}
	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rv = errno == EACCES ? CS_EPERM : CS_EIO;
		set_err(err, errlen, "store: cannot create %s: %s", dir,
		    strerror(errno));
		return rv;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		set_err(err, errlen, "store: out of memory");
		return CS_ENOMEM;
	}
	st->lock_fd = -1;
	if (pthread_rwlock_init(&st->gate, NULL) != 0) {
		free(st);
		set_err(err, errlen, "store: out of memory");
		return CS_ENOMEM;
	}
	st->gate_ok = true;
	if ((rv = store_lock(st, dir, err, errlen)) != CS_OK) {
		goto out;
	}
	if ((rc = mdb_env_create(&st->env)) != MDB_SUCCESS) {
		st->env = NULL;
		rv      = mdb_err(rc, "mdb_env_create", NULL);
		set_err(err, errlen, "store: %s", mdb_strerror(rc));
		goto out;
	}
	if ((rc = mdb_env_set_maxdbs(st->env, DB_COUNT)) != MDB_SUCCESS ||
	    (map_size != 0 &&
	        (rc = mdb_env_set_mapsize(st->env, map_size)) !=
	            MDB_SUCCESS)) {
		rv = mdb_err(rc, "mdb_env_set", NULL);
		set_err(err, errlen, "store: %s", mdb_strerror(rc));
		goto out;
	}
	/*
	 * MDB_NOTLS: read transactions are not tied to a thread, so a
	 * pipeline may hand one to a worker.  Sync flags stay at their
	 * defaults: a commit is durable when it returns.
	 */
	if ((rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0600)) !=
	    MDB_SUCCESS) {
		rv = mdb_err(rc, "mdb_env_open", NULL);
		set_err(err, errlen, "store: cannot open %s: %s", dir,
		    mdb_strerror(rc));
		goto out;
	}
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != MDB_SUCCESS) {
		rv = mdb_err(rc, "mdb_txn_begin", NULL);
		set_err(err, errlen, "store: %s: %s", dir, mdb_strerror(rc));
		goto out;
	}
	for (i = 0; i < DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &st->dbi[i]);
		if (rc != MDB_SUCCESS) {
			rv = mdb_err(rc, "mdb_dbi_open", db_names[i]);
			set_err(err, errlen, "store: %s: database %s: %s",
			    dir, db_names[i], mdb_strerror(rc));
			goto out;
		}
	}
	k.mv_data = (void *)META_SCHEMA;
	k.mv_size = strlen(META_SCHEMA);
	rc        = mdb_get(txn, st->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		put_be32(schema, STORE_SCHEMA);
		v.mv_data = schema;
		v.mv_size = sizeof(schema);
		rc        = mdb_put(txn, st->dbi[DB_META], &k, &v, 0);
	} else if (rc == MDB_SUCCESS) {
		uint32_t have;

		if (v.mv_size != sizeof(schema)) {
			rv = CS_ESTORE;
			cs_log_error(LOG_MOD, "bad schema value db=meta "
			    "len=%zu", v.mv_size);
			set_err(err, errlen, "store: %s: malformed schema "
			    "entry", dir);
			goto out;
		}
		have = get_be32(v.mv_data);
		if (have > STORE_SCHEMA) {
			rv = CS_EPRECOND;
			set_err(err, errlen, "store schema %u is newer than "
			    "this program's %u: upgrade countersign-authority",
			    (unsigned)have, (unsigned)STORE_SCHEMA);
			cs_log_error(LOG_MOD, "store schema %u is newer than "
			    "this program's %u: upgrade countersign-authority "
			    "dir=%s", (unsigned)have, (unsigned)STORE_SCHEMA,
			    dir);
			goto out;
		}
	}
	if (rc != MDB_SUCCESS) {
		rv = mdb_err(rc, "schema", "meta");
		set_err(err, errlen, "store: %s: %s", dir, mdb_strerror(rc));
		goto out;
	}
	rc  = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != MDB_SUCCESS) {
		rv = mdb_err(rc, "mdb_txn_commit", NULL);
		set_err(err, errlen, "store: %s: %s", dir, mdb_strerror(rc));
		goto out;
	}
	*out = st;
	st   = NULL;
	rv   = CS_OK;
out:
	if (txn != NULL) {
		mdb_txn_abort(txn);
	}
	store_close(st);
	return rv;
}

void
store_close(store *st)
{
	if (st == NULL) {
		return;
	}
	if (st->env != NULL) {
		mdb_env_close(st->env);
	}
	if (st->lock_fd >= 0) {
		close(st->lock_fd); /* releases the flock */
	}
	if (st->gate_ok) {
		pthread_rwlock_destroy(&st->gate);
	}
	free(st);
}

int
store_txn_begin(store *st, bool write, store_txn **out)
{
	store_txn *t;
	int        rc;

	if (st == NULL || out == NULL) {
		return CS_EINVAL;
	}
	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return CS_ENOMEM;
	}
	pthread_rwlock_rdlock(&st->gate);
	rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc != MDB_SUCCESS) {
		pthread_rwlock_unlock(&st->gate);
		free(t);
		return mdb_err(rc, "mdb_txn_begin", NULL);
	}
	t->st    = st;
	t->write = write;
	*out     = t;
	return CS_OK;
}

int
store_txn_commit(store_txn *t)
{
	int rc, rv;

	if (t == NULL) {
		return CS_EINVAL;
	}
	if (t->txn == NULL) {
		rv = t->err;
	} else {
		rc = mdb_txn_commit(t->txn);
		rv = mdb_err(rc, "mdb_txn_commit", NULL);
	}
	pthread_rwlock_unlock(&t->st->gate);
	free(t);
	return rv;
}

void
store_txn_abort(store_txn *t)
{
	if (t == NULL) {
		return;
	}
	if (t->txn != NULL) {
		mdb_txn_abort(t->txn);
	}
	pthread_rwlock_unlock(&t->st->gate);
	free(t);
}

/* CS_OK if t may be used (for writing if write). */
static int
txn_usable(store_txn *t, bool write)
{
	if (t == NULL) {
		return CS_EINVAL;
	}
	if (t->txn == NULL) {
		return t->err;
	}
	if (write && !t->write) {
		return CS_EINVAL;
	}
	return CS_OK;
}

/*
 * A write failed inside LMDB: LMDB will refuse to commit this transaction,
 * so abort it now and make every later call report rv.
 */
static int
txn_fail(store_txn *t, int rv)
{
	if (t->write && t->txn != NULL) {
		mdb_txn_abort(t->txn);
		t->txn = NULL;
		t->err = rv;
	}
	return rv;
}

static int
put_msg(store_txn *t, enum store_db db, const void *key, size_t klen,
    const ProtobufCMessage *m, unsigned flags)
{
	MDB_val k, v;
	uint8_t *buf;
	size_t   len;
	int      rc, rv;

	len = protobuf_c_message_get_packed_size(m);
	if (len > STORE_VALUE_MAX) {
		cs_log_warn(LOG_MOD, "value too large db=%s len=%zu",
		    db_names[db], len);
		return CS_ETOOBIG;
	}
	/* A zero-length value is legal protobuf; LMDB wants a pointer. */
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		return CS_ENOMEM;
	}
	protobuf_c_message_pack(m, buf);
	k.mv_data = (void *)key;
	k.mv_size = klen;
	v.mv_data = buf;
	v.mv_size = len;
	rc        = mdb_put(t->txn, t->st->dbi[db], &k, &v, flags);
	free(buf);
	if (rc == MDB_KEYEXIST) {
		return CS_EEXIST; /* txn stays usable */
	}
	if (rc != MDB_SUCCESS) {
		rv = mdb_err(rc, "mdb_put", db_names[db]);
		return txn_fail(t, rv);
	}
	return CS_OK;
}

static int
decode(enum store_db db, const MDB_val *k, const MDB_val *v,
    ProtobufCMessage **out)
{
	char hex[2 * 64 + 1];

	*out = protobuf_c_message_unpack(db_desc[db], NULL, v->mv_size,
	    v->mv_data);
	if (*out == NULL) {
		cs_log_error(LOG_MOD, "cannot decode value db=%s key=%s "
		    "len=%zu", db_names[db],
		    key_hex(hex, sizeof(hex), k->mv_data, k->mv_size),
		    v->mv_size);
		return CS_ESTORE;
	}
	return CS_OK;
}

static int
get_msg(store_txn *t, enum store_db db, const void *key, size_t klen,
    void *out)
{
	MDB_val k, v;
	int     rc;

	k.mv_data = (void *)key;
	k.mv_size = klen;
	rc        = mdb_get(t->txn, t->st->dbi[db], &k, &v);
	if (rc != MDB_SUCCESS) {
		return mdb_err(rc, "mdb_get", db_names[db]);
	}
	return decode(db, &k, &v, out);
}

void
store_list_free(void *msgs, size_t n)
{
	ProtobufCMessage **list = msgs;
	size_t             i;

	if (list == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		protobuf_c_message_free_unpacked(list[i], NULL);
	}
	free(list);
}

/* Which records a listing takes: 1 take, 0 skip, -1 stop here. */
typedef int (*list_match)(const MDB_val *k, const void *arg);

/*
 * The records of db in key order, from the first key >= seek (NULL: the
 * start) for as long as match (NULL: all) does not say stop; only the
 * records match takes are decoded, so a scan for a few holds only those.
 */
static int
list_where(store_txn *t, enum store_db db, const void *seek, size_t seek_len,
    list_match match, const void *arg, void *outp, size_t *n)
{
	ProtobufCMessage ***out  = outp;
	ProtobufCMessage  **list = NULL, **nl;
	MDB_cursor         *cur  = NULL;
	MDB_val            k, v;
	size_t             cnt = 0, cap = 0;
	int                rc, rv, take;

	if (out == NULL || n == NULL) {
		return CS_EINVAL;
	}
	*out = NULL;
	*n   = 0;
	if ((rv = txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[db], &cur)) !=
	    MDB_SUCCESS) {
		return mdb_err(rc, "mdb_cursor_open", db_names[db]);
	}
	k.mv_data = (void *)seek;
	k.mv_size = seek_len;
	for (rc = mdb_cursor_get(cur, &k, &v,
	         seek != NULL ? MDB_SET_RANGE : MDB_FIRST);
	     rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if ((take = match != NULL ? match(&k, arg) : 1) < 0) {
			break;
		}
		if (take == 0) {
			continue;
		}
		if (cnt == STORE_LIST_MAX) {
			rv = CS_ETOOBIG;
			goto out;
		}
		if (cnt == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			nl = realloc(list, cap * sizeof(*list));
			if (nl == NULL) {
				rv = CS_ENOMEM;
				goto out;
			}
			list = nl;
		}
		if ((rv = decode(db, &k, &v, &list[cnt])) != CS_OK) {
			goto out;
		}
		cnt++;
	}
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
		rv = mdb_err(rc, "mdb_cursor_get", db_names[db]);
		goto out;
	}
	*out = list;
	*n   = cnt;
	list = NULL;
	rv   = CS_OK;
out:
	if (cur != NULL) {
		mdb_cursor_close(cur);
	}
	store_list_free(list, cnt);
	return rv;
}

static int
list_msgs(store_txn *t, enum store_db db, void *outp, size_t *n)
{
	return list_where(t, db, NULL, 0, NULL, NULL, outp, n);
}

/* put/get of records keyed by a name of 1..max bytes. */
static int
put_named(store_txn *t, enum store_db db, const char *name, size_t max,
    const ProtobufCMessage *m)
{
	int rv;

	if ((rv = txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (m == NULL || !str_ok(name, max)) {
		return CS_EINVAL;
	}
	return put_msg(t, db, name, strlen(name), m, 0);
}

static int
get_named(store_txn *t, enum store_db db, const char *name, size_t max,
    void *out)
{
	int rv;

	if ((rv = txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (out == NULL || !str_ok(name, max)) {
		return CS_EINVAL;
	}
	return get_msg(t, db, name, strlen(name), out);
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
store_space(store *st, uint64_t *used, uint64_t *size)
{
	MDB_envinfo info;
	MDB_stat    stat;

	if (st == NULL || mdb_env_info(st->env, &info) != MDB_SUCCESS ||
	    mdb_env_stat(st->env, &stat) != MDB_SUCCESS) {
		return CS_ESTORE;
	}
	*used = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
	*size = info.me_mapsize;
	return CS_OK;
}

int
store_room(store *st, uint64_t *map_left, uint64_t *disk_left)
{
	uint64_t       used, size;
	struct statvfs vfs;

	if (store_space(st, &used, &size) != CS_OK) {
		return CS_ESTORE;
	}
	*map_left = size > used ? size - used : 0;
	*disk_left = UINT64_MAX;
	if (fstatvfs(st->lock_fd, &vfs) == 0) {
		*disk_left = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	}
	return CS_OK;
}

int
store_grow(store *st, size_t map_size)
{
	struct timespec until;
	uint64_t        used, size;
	int             rc;

	if (st == NULL || map_size == 0) {
		return CS_EINVAL;
	}
	if (store_space(st, &used, &size) != CS_OK) {
		return CS_ESTORE;
	}
	if (map_size < size) {
		return CS_EINVAL; /* never shrunk under live data */
	}
	if (map_size == size) {
		return CS_OK;
	}
	/* Transactions are short; wait for a moment with none. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	if (pthread_rwlock_timedwrlock(&st->gate, &until) != 0) {
		return CS_EAGAIN;
	}
	rc = mdb_env_set_mapsize(st->env, map_size);
	pthread_rwlock_unlock(&st->gate);
	return mdb_err(rc, "mdb_env_set_mapsize", NULL);
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

	if ((rv = txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (hash == NULL || tok == NULL ||
	    !str_ok(tok->name, STORE_NAME_MAX)) {
		return CS_EINVAL;
	}
	return put_msg(t, DB_TOKENS, hash, STORE_HASH_LEN, &tok->base, 0);
}

int
store_token_get(store_txn *t, const uint8_t hash[STORE_HASH_LEN],
    StoredToken **out)
{
	int rv;

	if ((rv = txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (hash == NULL || out == NULL) {
		return CS_EINVAL;
	}
	return get_msg(t, DB_TOKENS, hash, STORE_HASH_LEN, out);
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
	if ((rv = txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (!str_ok(name, STORE_NAME_MAX)) {
		return CS_EINVAL;
	}
	/* Collect the keys first: writing while a cursor walks is not
	 * worth the subtlety for a handful of tokens. */
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[DB_TOKENS], &cur)) !=
	    MDB_SUCCESS) {
		return txn_fail(t, mdb_err(rc, "mdb_cursor_open", "tokens"));
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		StoredToken *tok = NULL;

		if ((rv = decode(DB_TOKENS, &k, &v,
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

	if ((rv = txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (d == NULL || !str_ok(d->order_id, STORE_ORDER_ID_MAX) ||
	    !uid_ok(d->uid.data, d->uid.len)) {
		return CS_EINVAL;
	}
	return put_msg(t, DB_DEVICES, key,
	    device_key(key, d->order_id, d->uid.data, d->uid.len), &d->base,
	    0);
}

int
store_device_get(store_txn *t, const char *order_id, const uint8_t *uid,
    size_t uid_len, StoredDevice **out)
{
	uint8_t key[KEY_MAX];
	int     rv;

	if ((rv = txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (out == NULL || !str_ok(order_id, STORE_ORDER_ID_MAX) ||
	    !uid_ok(uid, uid_len)) {
		return CS_EINVAL;
	}
	return get_msg(t, DB_DEVICES, key,
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

	if (out == NULL || n == NULL || !uid_ok(uid, uid_len)) {
		return CS_EINVAL;
	}
	/* Device lookups by UID alone are rare (an officer's question) and
	 * the per-product index only knows the first order: walk the keys,
	 * decoding only the matches. */
	rv = list_where(t, DB_DEVICES, NULL, 0, match_uid, &u, out, n);
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

	if (out == NULL || n == NULL || !str_ok(order_id, STORE_ORDER_ID_MAX)) {
		return CS_EINVAL;
	}
	a.p   = (const uint8_t *)order_id;
	a.len = strlen(order_id) + 1; /* with its NUL */
	return list_where(t, DB_DEVICES, a.p, a.len, match_prefix, &a, out,
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
	put_be32(key, product_id);
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

	if ((rv = txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (!uid_ok(uid, uid_len) || !str_ok(order_id, STORE_ORDER_ID_MAX) ||
	    station == NULL || strnlen(station, STORE_NAME_MAX + 1) >
	    STORE_NAME_MAX || cm == NULL ||
	    strnlen(cm, STORE_NAME_MAX + 1) > STORE_NAME_MAX) {
		return CS_EINVAL;
	}
	u.order_id = (char *)order_id;
	u.station  = (char *)station;
	u.cm       = (char *)cm;
	return put_msg(t, DB_UIDS, key,
	    uid_key(key, product_id, uid, uid_len), &u.base,
	    MDB_NOOVERWRITE);
}

int
store_uid_get(store_txn *t, uint32_t product_id, const uint8_t *uid,
    size_t uid_len, StoredUid **out)
{
	uint8_t key[4 + STORE_UID_MAX];
	int     rv;

	if ((rv = txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if (out == NULL || !uid_ok(uid, uid_len)) {
		return CS_EINVAL;
	}
	return get_msg(t, DB_UIDS, key, uid_key(key, product_id, uid, uid_len),
	    out);
}

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
	if ((rv = txn_usable(t, true)) != CS_OK) {
		return rv;
	}
	if (!str_ok(actor, STORE_AUDIT_ACTOR_MAX) ||
	    !str_ok(type, STORE_AUDIT_TYPE_MAX)) {
		return CS_EINVAL;
	}
	for (; kv != NULL && kv[2 * nkv] != NULL; nkv++) {
		if (nkv == STORE_AUDIT_FIELDS_MAX ||
		    !str_ok(kv[2 * nkv], STORE_AUDIT_KEY_MAX) ||
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
		return txn_fail(t, mdb_err(rc, "mdb_cursor_open", "audit"));
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
		    get_be64(k.mv_data) == UINT64_MAX) {
			cs_log_error(LOG_MOD, "malformed last audit event "
			    "db=audit key=%s len=%zu",
			    key_hex(hex, sizeof(hex), k.mv_data, k.mv_size),
			    v.mv_size);
			rv = CS_ESTORE;
			goto out;
		}
		seq = get_be64(k.mv_data) + 1;
		memcpy(prev, h, sizeof(prev));
	} else {
		rv = txn_fail(t, mdb_err(rc, "mdb_cursor_get", "audit"));
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

	put_be64(key, seq);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	v.mv_data = buf + STORE_HASH_LEN;
	v.mv_size = elen + AUDIT_TRAILER_LEN;
	if ((rc = mdb_put(t->txn, t->st->dbi[DB_AUDIT], &k, &v,
	         MDB_NOOVERWRITE | MDB_APPEND)) != MDB_SUCCESS) {
		rv = txn_fail(t, mdb_err(rc, "mdb_put", "audit"));
		goto out;
	}
	/* The head, in the same transaction; reuse buf's prev slot. */
	memmove(buf + 8, buf + STORE_HASH_LEN + elen + 2, STORE_HASH_LEN);
	put_be64(buf, seq);
	k.mv_data = (void *)META_AUDIT_HEAD;
	k.mv_size = strlen(META_AUDIT_HEAD);
	v.mv_data = buf;
	v.mv_size = META_AUDIT_HEAD_LEN;
	if ((rc = mdb_put(t->txn, t->st->dbi[DB_META], &k, &v, 0)) !=
	    MDB_SUCCESS) {
		rv = txn_fail(t, mdb_err(rc, "mdb_put", "meta"));
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
		    key_hex(hex, sizeof(hex), k->mv_data, k->mv_size),
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
		return mdb_err(rc, "mdb_get", "meta");
	}
	if (v.mv_size != META_AUDIT_HEAD_LEN) {
		cs_log_error(LOG_MOD, "malformed audit head db=meta len=%zu",
		    v.mv_size);
		*bad = *good + 1;
		return CS_OK;
	}
	head = get_be64(v.mv_data);
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
		rv = mdb_err(rc, "mdb_cursor_open", "audit");
		goto out;
	}
	memset(prev, 0, sizeof(prev));
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8 || get_be64(k.mv_data) != expect) {
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
		rv = mdb_err(rc, "mdb_cursor_get", "audit");
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
		rv = mdb_err(rc, "mdb_cursor_open", "audit");
		goto out;
	}
	put_be64(key, since + 1);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == MDB_SUCCESS && cnt < limit;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if ((rv = decode(DB_AUDIT, &k, &v,
		         (ProtobufCMessage **)&list[cnt])) != CS_OK) {
			goto out;
		}
		cnt++;
	}
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
		rv = mdb_err(rc, "mdb_cursor_get", "audit");
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
