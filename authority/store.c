/*
 * store.c - the authority's LMDB store (see store.h): the environment, its
 * lock and size, transactions, and the put/get/listing of protobuf values
 * that the records (store_records.c) and the audit chain (store_audit.c)
 * are built on; store_impl.h is what these files share.
 *
 * The store module is the one part that talks to LMDB: MDB_* codes are
 * translated to cs_err here and logged with mdb_strerror beside the
 * original code.  Values
 * are protobuf-c messages; a value that fails to decode is reported as
 * CS_ESTORE with the database and key in the log line, never papered over.
 *
 * A write that fails inside LMDB leaves its transaction unusable (LMDB
 * marks it as failed), so we abort it on the spot and remember the error:
 * nothing of a half-done transaction can be committed by mistake.
 */
#include "store_impl.h"

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

const char *const store_db_names[DB_COUNT] = {
	[DB_ORDERS]   = "orders",
	[DB_STATIONS] = "stations",
	[DB_DEVICES]  = "devices",
	[DB_UIDS]     = "uids",
	[DB_KEYS]     = "keys",
	[DB_TOKENS]   = "tokens",
	[DB_AUDIT]    = "audit",
	[DB_META]     = "meta",
	[DB_FIRMWARE] = "firmware",
	[DB_FWCHUNKS] = "fwchunks",
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
	[DB_FIRMWARE] = &countersign__v1__stored_firmware__descriptor,
	[DB_FWCHUNKS] = NULL,
};

/*
 * Translate an LMDB (or errno) code, logging it.  MDB_NOTFOUND and
 * MDB_KEYEXIST are answers, not failures, and are not logged.
 */
int
store_mdb_err(int rc, const char *what, const char *db)
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
const char *
store_key_hex(char *buf, size_t len, const void *key, size_t klen)
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

void
store_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
store_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void
store_put_be64(uint8_t *p, uint64_t v)
{
	store_put_be32(p, (uint32_t)(v >> 32));
	store_put_be32(p + 4, (uint32_t)v);
}

uint64_t
store_get_be64(const uint8_t *p)
{
	return ((uint64_t)store_get_be32(p) << 32) | store_get_be32(p + 4);
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
bool
store_str_ok(const char *s, size_t max)
{
	return s != NULL && s[0] != '\0' && strnlen(s, max + 1) <= max;
}

bool
store_uid_ok(const uint8_t *uid, size_t uid_len)
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
 * the data_dir directory itself, held until store_close (or the process's
 * end), keeps the second out: a directory cannot be deleted while it holds
 * the store, so nobody can remove the lock from under a running
 * authority (a lock file could be deleted, and then a second authority
 * locked a new one).  <dir>/countersign.lock only names the holder's PID
 * for the message, and is flocked too for tools that look there.  A
 * standby on shared storage waits on the same lock.
 */
/* The holder's PID from the lock file at path (fd, or opened read-only
 * when fd < 0), for the message; "unknown" when there is none. */
static void
holder_pid(const char *path, int fd, char *pid, size_t len)
{
	int     own = fd < 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	ssize_t n   = pread(fd >= 0 ? fd : own, pid, len - 1, 0);

	if (own >= 0) {
		close(own);
	}
	pid[n > 0 ? n : 0] = '\0';
	pid[strcspn(pid, "\n")] = '\0';
	if (pid[0] == '\0') {
		snprintf(pid, len, "unknown");
	}
}

static int
store_lock(store *st, const char *dir, char *err, size_t errlen)
{
	char path[4096], pid[32];
	int  n;

	if (snprintf(path, sizeof(path), "%s/countersign.lock", dir) >=
	    (int)sizeof(path)) {
		set_err(err, errlen, "store: directory name too long");
		return CS_EINVAL;
	}
	if ((st->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		set_err(err, errlen, "store: cannot open %s: %s", dir,
		    strerror(errno));
		return errno == EACCES ? CS_EPERM : CS_EIO;
	}
	if (flock(st->dir_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			/* Touch nothing of the running one's. */
			holder_pid(path, -1, pid, sizeof(pid));
			goto held;
		}
		/* Some network file systems lock only files. */
		cs_log_warn("store", "cannot lock the directory %s itself "
		    "(%s): only %s guards it", dir, strerror(errno), path);
	}
	if ((st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) <
	    0) {
		set_err(err, errlen, "store: cannot open %s: %s", path,
		    strerror(errno));
		return errno == EACCES ? CS_EPERM : CS_EIO;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK) {
			set_err(err, errlen, "store: cannot lock %s: %s", path,
			    strerror(errno));
			return CS_EIO;
		}
		holder_pid(path, st->lock_fd, pid, sizeof(pid));
		goto held;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(st->lock_fd, 0) != 0 ||
	    pwrite(st->lock_fd, pid, (size_t)n, 0) != n) {
		/* The lock holds all the same; only the message loses the
		 * PID. */
		cs_log_warn("store", "cannot write the PID into %s", path);
	}
	return CS_OK;
held:
	set_err(err, errlen, "store %s is in use by another process (pid %s): "
	    "one authority per data_dir; stop that one first, or give this "
	    "one its own data_dir", dir, pid);
	return CS_EPRECOND;
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
	st->dir_fd  = -1;
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
		rv      = store_mdb_err(rc, "mdb_env_create", NULL);
		set_err(err, errlen, "store: %s", mdb_strerror(rc));
		goto out;
	}
	if ((rc = mdb_env_set_maxdbs(st->env, DB_COUNT)) != MDB_SUCCESS ||
	    (map_size != 0 &&
	        (rc = mdb_env_set_mapsize(st->env, map_size)) !=
	            MDB_SUCCESS)) {
		rv = store_mdb_err(rc, "mdb_env_set", NULL);
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
		rv = store_mdb_err(rc, "mdb_env_open", NULL);
		set_err(err, errlen, "store: cannot open %s: %s", dir,
		    mdb_strerror(rc));
		goto out;
	}
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != MDB_SUCCESS) {
		rv = store_mdb_err(rc, "mdb_txn_begin", NULL);
		set_err(err, errlen, "store: %s: %s", dir, mdb_strerror(rc));
		goto out;
	}
	for (i = 0; i < DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, store_db_names[i], MDB_CREATE,
		    &st->dbi[i]);
		if (rc != MDB_SUCCESS) {
			rv = store_mdb_err(rc, "mdb_dbi_open",
			    store_db_names[i]);
			set_err(err, errlen, "store: %s: database %s: %s",
			    dir, store_db_names[i], mdb_strerror(rc));
			goto out;
		}
	}
	k.mv_data = (void *)META_SCHEMA;
	k.mv_size = strlen(META_SCHEMA);
	rc        = mdb_get(txn, st->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		store_put_be32(schema, STORE_SCHEMA);
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
		have = store_get_be32(v.mv_data);
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
		rv = store_mdb_err(rc, "schema", "meta");
		set_err(err, errlen, "store: %s: %s", dir, mdb_strerror(rc));
		goto out;
	}
	rc  = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != MDB_SUCCESS) {
		rv = store_mdb_err(rc, "mdb_txn_commit", NULL);
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
	if (st->dir_fd >= 0) {
		close(st->dir_fd); /* and this one */
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
		return store_mdb_err(rc, "mdb_txn_begin", NULL);
	}
	t->st    = st;
	t->write = write;
	*out     = t;
	return CS_OK;
}

/*
 * A commit that failed with EIO: on a filesystem that is (nearly) full,
 * that is how a short write of LMDB's shows up (tmpfs, some network file
 * systems), and the station must hear "store full" with the same words as
 * for ENOSPC; otherwise it is an I/O error.
 */
static int
io_error_or_full(store *st)
{
	struct statvfs vfs;

	if (fstatvfs(st->dir_fd, &vfs) == 0 &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < STORE_DISK_LOW) {
		cs_log_warn("store", "commit failed with an I/O error with "
		    "%llu bytes left on the disk: taken as a full disk",
		    (unsigned long long)vfs.f_bavail * vfs.f_frsize);
		return CS_EEXHAUSTED;
	}
	return CS_EIO;
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
		rv = store_mdb_err(rc, "mdb_txn_commit", NULL);
		rv = rv == CS_EIO ? io_error_or_full(t->st) : rv;
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
int
store_txn_usable(store_txn *t, bool write)
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
int
store_txn_fail(store_txn *t, int rv)
{
	if (t->write && t->txn != NULL) {
		mdb_txn_abort(t->txn);
		t->txn = NULL;
		t->err = rv;
	}
	return rv;
}

int
store_put_msg(store_txn *t, enum store_db db, const void *key, size_t klen,
    const ProtobufCMessage *m, unsigned flags)
{
	MDB_val k, v;
	uint8_t *buf;
	size_t   len;
	int      rc, rv;

	len = protobuf_c_message_get_packed_size(m);
	if (len > STORE_VALUE_MAX) {
		cs_log_warn(LOG_MOD, "value too large db=%s len=%zu",
		    store_db_names[db], len);
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
		rv = store_mdb_err(rc, "mdb_put", store_db_names[db]);
		return store_txn_fail(t, rv);
	}
	return CS_OK;
}

int
store_decode(enum store_db db, const MDB_val *k, const MDB_val *v,
    ProtobufCMessage **out)
{
	char hex[2 * 64 + 1];

	*out = protobuf_c_message_unpack(db_desc[db], NULL, v->mv_size,
	    v->mv_data);
	if (*out == NULL) {
		cs_log_error(LOG_MOD, "cannot decode value db=%s key=%s "
		    "len=%zu", store_db_names[db],
		    store_key_hex(hex, sizeof(hex), k->mv_data, k->mv_size),
		    v->mv_size);
		return CS_ESTORE;
	}
	return CS_OK;
}

int
store_get_msg(store_txn *t, enum store_db db, const void *key, size_t klen,
    void *out)
{
	MDB_val k, v;
	int     rc;

	k.mv_data = (void *)key;
	k.mv_size = klen;
	rc        = mdb_get(t->txn, t->st->dbi[db], &k, &v);
	if (rc != MDB_SUCCESS) {
		return store_mdb_err(rc, "mdb_get", store_db_names[db]);
	}
	return store_decode(db, &k, &v, out);
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

/*
 * The records of db in key order, from the first key >= seek (NULL: the
 * start) for as long as match (NULL: all) does not say stop; only the
 * records match takes are decoded, so a scan for a few holds only those.
 */
int
store_list_where(store_txn *t, enum store_db db, const void *seek,
    size_t seek_len, store_list_match match, const void *arg, void *outp,
    size_t *n)
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
	if ((rv = store_txn_usable(t, false)) != CS_OK) {
		return rv;
	}
	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[db], &cur)) !=
	    MDB_SUCCESS) {
		return store_mdb_err(rc, "mdb_cursor_open",
		    store_db_names[db]);
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
		if ((rv = store_decode(db, &k, &v, &list[cnt])) != CS_OK) {
			goto out;
		}
		cnt++;
	}
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
		rv = store_mdb_err(rc, "mdb_cursor_get", store_db_names[db]);
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
	return store_mdb_err(rc, "mdb_env_set_mapsize", NULL);
}
