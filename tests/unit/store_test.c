/*
 * store_test.c - the authority's LMDB store against a real LMDB directory
 * (a fresh temporary one per test): data survives close and reopen; a
 * newer schema is refused; orders, devices and the UID index round-trip;
 * an aborted transaction leaves nothing; a full map fails cleanly and
 * keeps what was committed; the audit chain verifies, and a changed byte,
 * a missing event or a cut-off tail is found at its seq; and a commit
 * survives the process being killed with SIGKILL right after it returns
 * (the committed data is in the file, not in the dead process; power
 * loss is LMDB's fsync's job and is not simulated here).
 *
 * The test includes <lmdb.h> itself only to tamper with the store behind
 * the API's back, as an attacker with file access would.
 */
#include "cs_err.h"
#include "store.h"
#include "test_util.h"

#include <lmdb.h>

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define MAP_SIZE  (16u * 1024u * 1024u)
#define SMALL_MAP (128u * 1024u) /* full within ~150 commits */

static const uint8_t UID_A[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t UID_B[8] = {8, 7, 6, 5, 4, 3, 2, 1};

static int
setup(void **state)
{
	*state = tu_tmpdir();
	return 0;
}

static int
teardown(void **state)
{
	tu_rmtree_free(*state);
	return 0;
}

static store *
open_ok(const char *dir, size_t map_size)
{
	store *st = NULL;
	char   err[256] = "";
	int    rv;

	rv = store_open(&st, dir, map_size, err, sizeof(err));
	if (rv != CS_OK) {
		fprintf(stderr, "store_open: %s (%s)\n", err, cs_errname(rv));
	}
	assert_int_equal(rv, CS_OK);
	assert_non_null(st);
	return st;
}

static void
put_order(store *st, const char *id, uint64_t quota)
{
	StoredOrder o = COUNTERSIGN__V1__STORED_ORDER__INIT;
	store_txn  *t;
	char       *cms[] = {(char *)"cm-a", (char *)"cm-b"};

	o.order_id   = (char *)id;
	o.product_id = 0xC0FFEE;
	o.key_label  = (char *)"k1";
	o.quota      = quota;
	o.uid_len    = 8;
	o.n_cms      = 2;
	o.cms        = cms;
	assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
	assert_int_equal(store_order_put(t, &o), CS_OK);
	assert_int_equal(store_txn_commit(t), CS_OK);
}

static void
test_reopen_keeps_data(void **state)
{
	const char  *dir = *state;
	store       *st  = open_ok(dir, MAP_SIZE);
	store_txn   *t;
	StoredOrder *o = NULL;

	put_order(st, "order-1", 100);
	store_close(st);
	store_close(NULL);

	st = open_ok(dir, MAP_SIZE);
	assert_int_equal(store_txn_begin(st, false, &t), CS_OK);
	assert_int_equal(store_order_get(t, "order-1", &o), CS_OK);
	assert_string_equal(o->order_id, "order-1");
	assert_int_equal(o->quota, 100);
	assert_int_equal(o->n_cms, 2);
	assert_string_equal(o->cms[1], "cm-b");
	countersign__v1__stored_order__free_unpacked(o, NULL);
	assert_int_equal(store_order_get(t, "order-2", &o), CS_ENOENT);
	store_txn_abort(t);
	store_close(st);
}

static void
test_schema_newer_refused(void **state)
{
	const char *dir = *state;
	store      *st  = open_ok(dir, MAP_SIZE);
	MDB_env    *env;
	MDB_txn    *txn;
	MDB_dbi     dbi;
	MDB_val     k, v;
	uint8_t     two[4] = {0, 0, 0, 2};
	char        err[256] = "";

	store_close(st);

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	k.mv_data = (void *)"schema";
	k.mv_size = 6;
	v.mv_data = two;
	v.mv_size = sizeof(two);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	st = NULL;
	assert_int_equal(store_open(&st, dir, MAP_SIZE, err, sizeof(err)),
	    CS_EPRECOND);
	assert_null(st);
	assert_string_equal(err, "store schema 2 is newer than this "
	    "program's 1: upgrade countersign-authority");
}

static void
test_order_device_uid_round_trip(void **state)
{
	const char    *dir = *state;
	store         *st  = open_ok(dir, MAP_SIZE);
	store_txn     *t;
	StoredOrder  **orders = NULL;
	StoredDevice   d      = COUNTERSIGN__V1__STORED_DEVICE__INIT;
	StoredDevice  *dp     = NULL;
	StoredUid     *u      = NULL;
	StoredStation  s      = COUNTERSIGN__V1__STORED_STATION__INIT;
	StoredStation *sp     = NULL;
	StoredKey      key    = COUNTERSIGN__V1__STORED_KEY__INIT;
	StoredKey    **keys   = NULL;
	uint8_t        rec[3] = {0xaa, 0xbb, 0xcc};
	uint8_t        big[STORE_UID_MAX + 1];
	char           longid[STORE_ORDER_ID_MAX + 2];
	size_t         n;

	put_order(st, "b-order", 2);
	put_order(st, "a-order", 1);

	assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
	d.order_id      = (char *)"a-order";
	d.uid.data      = (uint8_t *)UID_A;
	d.uid.len       = sizeof(UID_A);
	d.station       = (char *)"st1";
	d.serial        = 7;
	d.issued_unix_s = 1700000000;
	d.record.data   = rec;
	d.record.len    = sizeof(rec);
	d.state         = (char *)"issued";
	assert_int_equal(store_device_put(t, &d), CS_OK);
	assert_int_equal(store_uid_put(t, 0xC0FFEE, UID_A, sizeof(UID_A),
	    "a-order", "st1", "acme"), CS_OK);
	/* First seen wins; the index is never overwritten. */
	assert_int_equal(store_uid_put(t, 0xC0FFEE, UID_A, sizeof(UID_A),
	    "b-order", "st2", "acme"), CS_EEXIST);
	s.name    = (char *)"st1";
	s.cm      = (char *)"cm-a";
	s.enabled = true;
	assert_int_equal(store_station_put(t, &s), CS_OK);
	key.label     = (char *)"k1";
	key.algorithm = (char *)"p256";
	assert_int_equal(store_key_put(t, &key), CS_OK);

	/* Lengths from outside are checked. */
	memset(big, 1, sizeof(big));
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(store_uid_put(t, 1, big, sizeof(big), "a-order",
	    "", ""), CS_EINVAL);
	assert_int_equal(store_uid_put(t, 1, big, 0, "a-order", "", ""),
	    CS_EINVAL);
	d.order_id = longid;
	assert_int_equal(store_device_put(t, &d), CS_EINVAL);
	d.order_id = (char *)"";
	assert_int_equal(store_device_put(t, &d), CS_EINVAL);
	assert_int_equal(store_txn_commit(t), CS_OK);

	assert_int_equal(store_txn_begin(st, false, &t), CS_OK);
	/* Writes on a read transaction are refused. */
	assert_int_equal(store_station_put(t, &s), CS_EINVAL);
	assert_int_equal(store_order_list(t, &orders, &n), CS_OK);
	assert_int_equal(n, 2);
	assert_string_equal(orders[0]->order_id, "a-order");
	assert_string_equal(orders[1]->order_id, "b-order");
	assert_int_equal(orders[1]->quota, 2);
	store_order_list_free(orders, n);

	assert_int_equal(store_device_get(t, "a-order", UID_A, sizeof(UID_A),
	    &dp), CS_OK);
	assert_int_equal(dp->serial, 7);
	assert_string_equal(dp->station, "st1");
	assert_string_equal(dp->state, "issued");
	assert_memory_equal(dp->record.data, rec, sizeof(rec));
	assert_memory_equal(dp->uid.data, UID_A, sizeof(UID_A));
	countersign__v1__stored_device__free_unpacked(dp, NULL);
	assert_int_equal(store_device_get(t, "b-order", UID_A, sizeof(UID_A),
	    &dp), CS_ENOENT);
	assert_int_equal(store_device_get(t, "a-order", UID_B, sizeof(UID_B),
	    &dp), CS_ENOENT);

	assert_int_equal(store_uid_get(t, 0xC0FFEE, UID_A, sizeof(UID_A), &u),
	    CS_OK);
	assert_string_equal(u->order_id, "a-order");
	assert_string_equal(u->station, "st1");
	countersign__v1__stored_uid__free_unpacked(u, NULL);
	assert_int_equal(store_uid_get(t, 0xC0FFEF, UID_A, sizeof(UID_A), &u),
	    CS_ENOENT);

	assert_int_equal(store_station_get(t, "st1", &sp), CS_OK);
	assert_string_equal(sp->cm, "cm-a");
	assert_true(sp->enabled);
	countersign__v1__stored_station__free_unpacked(sp, NULL);
	assert_int_equal(store_key_list(t, &keys, &n), CS_OK);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0]->algorithm, "p256");
	store_key_list_free(keys, n);
	store_txn_abort(t);
	store_close(st);
}

static void
test_abort_leaves_nothing(void **state)
{
	const char  *dir = *state;
	store       *st  = open_ok(dir, MAP_SIZE);
	store_txn   *t;
	StoredOrder  o = COUNTERSIGN__V1__STORED_ORDER__INIT;
	StoredOrder *op;
	StoredUid   *u;
	uint64_t     seq, good, bad;
	StoredAuditEvent **ev;
	size_t             n;

	assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
	o.order_id = (char *)"gone";
	assert_int_equal(store_order_put(t, &o), CS_OK);
	assert_int_equal(store_uid_put(t, 1, UID_A, sizeof(UID_A), "gone",
	    "", ""), CS_OK);
	assert_int_equal(store_audit_append(t, "test", "order.create", NULL,
	    &seq), CS_OK);
	assert_int_equal(seq, 1);
	store_txn_abort(t);
	store_txn_abort(NULL);

	assert_int_equal(store_txn_begin(st, false, &t), CS_OK);
	assert_int_equal(store_order_get(t, "gone", &op), CS_ENOENT);
	assert_int_equal(store_uid_get(t, 1, UID_A, sizeof(UID_A), &u),
	    CS_ENOENT);
	store_txn_abort(t);
	assert_int_equal(store_audit_list(st, 0, 0, &ev, &n), CS_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_audit_verify(st, &good, &bad), CS_OK);
	assert_int_equal(good, 0);

	/* The next event is seq 1 again: the aborted one never existed. */
	assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
	assert_int_equal(store_audit_append(t, "test", "x", NULL, &seq),
	    CS_OK);
	assert_int_equal(seq, 1);
	assert_int_equal(store_txn_commit(t), CS_OK);
	store_close(st);
}

static void
test_map_full(void **state)
{
	const char  *dir = *state;
	store       *st  = open_ok(dir, SMALL_MAP);
	store_txn   *t;
	StoredOrder  o = COUNTERSIGN__V1__STORED_ORDER__INIT;
	StoredOrder *op;
	uint8_t      pad[100];
	char         id[32];
	int          i, committed = 0, rv = CS_OK;

	memset(pad, 0x5a, sizeof(pad));
	o.firmware_sha256.data = pad;
	o.firmware_sha256.len  = sizeof(pad);
	for (i = 0; i < 10000; i++) {
		snprintf(id, sizeof(id), "order-%05d", i);
		o.order_id = id;
		assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
		rv = store_order_put(t, &o);
		if (rv == CS_OK) {
			rv = store_audit_append(t, "test", "order.create",
			    NULL, NULL);
		}
		if (rv != CS_OK) {
			/* The txn is dead: later calls give the same error
			 * and commit writes nothing. */
			assert_int_equal(store_order_put(t, &o), rv);
			assert_int_equal(store_txn_commit(t), rv);
			break;
		}
		rv = store_txn_commit(t);
		if (rv != CS_OK) {
			break;
		}
		committed++;
	}
	assert_int_equal(rv, CS_EEXHAUSTED);
	fprintf(stderr, "committed %d before the map was full\n", committed);
	assert_true(committed > 10);
	store_close(st);

	st = open_ok(dir, SMALL_MAP);
	assert_int_equal(store_txn_begin(st, false, &t), CS_OK);
	for (i = 0; i < committed; i++) {
		snprintf(id, sizeof(id), "order-%05d", i);
		assert_int_equal(store_order_get(t, id, &op), CS_OK);
		assert_int_equal(op->firmware_sha256.len, sizeof(pad));
		countersign__v1__stored_order__free_unpacked(op, NULL);
	}
	snprintf(id, sizeof(id), "order-%05d", committed);
	assert_int_equal(store_order_get(t, id, &op), CS_ENOENT);
	store_txn_abort(t);
	{
		uint64_t good, bad;

		assert_int_equal(store_audit_verify(st, &good, &bad), CS_OK);
		assert_int_equal(good, (uint64_t)committed);
	}
	store_close(st);
}

/* 100 events over 10 transactions, each with two fields. */
static void
append_100(store *st)
{
	store_txn *t;
	char       num[32];
	uint64_t   seq = 0;
	int        i, j;

	for (i = 0; i < 10; i++) {
		assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
		for (j = 0; j < 10; j++) {
			snprintf(num, sizeof(num), "%d", i * 10 + j);
			const char *kv[] = {"n", num, "order", "o-1", NULL};

			assert_int_equal(store_audit_append(t, "officer",
			    "test.event", kv, &seq), CS_OK);
			assert_int_equal(seq, (uint64_t)(i * 10 + j + 1));
		}
		assert_int_equal(store_txn_commit(t), CS_OK);
	}
}

/*
 * Behind the API's back, in the (closed) store in dir: flip one byte of
 * audit event seq, or delete it.
 */
static void
tamper(const char *dir, uint64_t seq, bool delete)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi  dbi;
	MDB_val  k, v, nv;
	uint8_t  key[8];
	uint8_t *copy;
	int      i;

	for (i = 0; i < 8; i++) {
		key[i] = (uint8_t)(seq >> (56 - 8 * i));
	}
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	if (delete) {
		assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	} else {
		assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
		copy = malloc(v.mv_size);
		assert_non_null(copy);
		memcpy(copy, v.mv_data, v.mv_size);
		/* A byte inside the actor/type strings. */
		copy[v.mv_size / 3] ^= 0x01;
		nv.mv_data = copy;
		nv.mv_size = v.mv_size;
		assert_int_equal(mdb_put(txn, dbi, &k, &nv, 0), 0);
		free(copy);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/*
 * The disk under the store fills (a 2 MiB tmpfs under a 64 MiB map):
 * every failed commit says "full" (CS_EEXHAUSTED), whether LMDB saw
 * ENOSPC or, as on tmpfs, an I/O error from a short write; nothing
 * committed is lost.  Needs mount(8) (root): skipped without.
 */
static void
test_disk_full(void **state)
{
	const char *dir = *state;
	char        mnt[600], cmd[1400];
	store      *st;
	store_txn  *t;
	StoredOrder o = COUNTERSIGN__V1__STORED_ORDER__INIT;
	uint8_t     pad[2000];
	char        id[32];
	int         i, committed = 0, rv = CS_OK;

	snprintf(mnt, sizeof(mnt), "%s/tmpfs", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && mount -t tmpfs -o size=2m "
	    "tmpfs %s 2>/dev/null", mnt, mnt);
	if (system(cmd) != 0) {
		printf("disk full: skipped, cannot mount a tmpfs here\n");
		return;
	}
	st = open_ok(mnt, 64u * 1024u * 1024u);
	memset(pad, 0xa5, sizeof(pad));
	o.firmware_sha256.data = pad;
	o.firmware_sha256.len  = sizeof(pad);
	for (i = 0; i < 5000 && rv == CS_OK; i++) {
		snprintf(id, sizeof(id), "order-%05d", i);
		o.order_id = id;
		assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
		if ((rv = store_order_put(t, &o)) != CS_OK) {
			store_txn_abort(t);
			break;
		}
		if ((rv = store_txn_commit(t)) == CS_OK) {
			committed++;
		}
	}
	printf("disk full: %d committed, then %s\n", committed,
	    cs_errname(rv));
	assert_int_equal(rv, CS_EEXHAUSTED);
	assert_true(committed > 10);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "umount %s", mnt);
	assert_int_equal(system(cmd), 0);
}

static void
test_audit_chain(void **state)
{
	const char        *dir = *state;
	store             *st  = open_ok(dir, MAP_SIZE);
	StoredAuditEvent **ev  = NULL;
	uint64_t           good, bad;
	size_t             n;
	const uint8_t      zero[STORE_HASH_LEN] = {0};

	append_100(st);
	assert_int_equal(store_audit_verify(st, &good, &bad), CS_OK);
	assert_int_equal(good, 100);
	assert_int_equal(bad, 0);

	assert_int_equal(store_audit_list(st, 0, 5, &ev, &n), CS_OK);
	assert_int_equal(n, 5);
	assert_int_equal(ev[0]->seq, 1);
	assert_memory_equal(ev[0]->prev_hash.data, zero, STORE_HASH_LEN);
	assert_memory_equal(ev[1]->prev_hash.data, ev[0]->hash.data,
	    STORE_HASH_LEN);
	assert_string_equal(ev[0]->actor, "officer");
	assert_int_equal(ev[0]->n_fields, 2);
	assert_string_equal(ev[0]->fields[0]->key, "n");
	assert_string_equal(ev[0]->fields[0]->value, "0");
	assert_true(ev[0]->time_unix_ms > 1600000000000ull);
	store_audit_list_free(ev, n);
	assert_int_equal(store_audit_list(st, 98, 0, &ev, &n), CS_OK);
	assert_int_equal(n, 2);
	assert_int_equal(ev[0]->seq, 99);
	assert_int_equal(ev[1]->seq, 100);
	store_audit_list_free(ev, n);
	store_close(st);

	/* One changed byte in event 50. */
	tamper(dir, 50, false);
	st = open_ok(dir, MAP_SIZE);
	assert_int_equal(store_audit_verify(st, &good, &bad), CS_ECRYPTO);
	assert_int_equal(bad, 50);
	assert_int_equal(good, 49);
	store_close(st);

	/* Event 30 removed: the chain breaks at the gap, before 50. */
	tamper(dir, 30, true);
	st = open_ok(dir, MAP_SIZE);
	assert_int_equal(store_audit_verify(st, &good, &bad), CS_ECRYPTO);
	assert_int_equal(bad, 30);
	assert_int_equal(good, 29);
	store_close(st);
}

static void
test_audit_gap_only(void **state)
{
	const char *dir = *state;
	store      *st  = open_ok(dir, MAP_SIZE);
	uint64_t    good, bad;

	append_100(st);
	store_close(st);
	tamper(dir, 1, true);
	st = open_ok(dir, MAP_SIZE);
	assert_int_equal(store_audit_verify(st, &good, &bad), CS_ECRYPTO);
	assert_int_equal(bad, 1);
	assert_int_equal(good, 0);
	store_close(st);
}

static void
test_audit_truncated(void **state)
{
	const char *dir = *state;
	store      *st  = open_ok(dir, MAP_SIZE);
	uint64_t    good, bad;

	append_100(st);
	store_close(st);
	tamper(dir, 100, true);
	st = open_ok(dir, MAP_SIZE);
	assert_int_equal(store_audit_verify(st, &good, &bad), CS_ECRYPTO);
	assert_int_equal(bad, 100);
	assert_int_equal(good, 99);
	store_close(st);
}

static void
test_audit_bad_args(void **state)
{
	const char *dir = *state;
	store      *st  = open_ok(dir, MAP_SIZE);
	store_txn  *t;
	char        big[STORE_AUDIT_VALUE_MAX + 2];
	const char *odd[] = {"k", NULL};

	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const char *kv[] = {"k", big, NULL};

	assert_int_equal(store_txn_begin(st, false, &t), CS_OK);
	assert_int_equal(store_audit_append(t, "a", "b", NULL, NULL),
	    CS_EINVAL);
	store_txn_abort(t);
	assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
	assert_int_equal(store_audit_append(t, "", "b", NULL, NULL),
	    CS_EINVAL);
	assert_int_equal(store_audit_append(t, "a", "b", kv, NULL),
	    CS_EINVAL);
	assert_int_equal(store_audit_append(t, "a", "b", odd, NULL),
	    CS_EINVAL);
	/* Argument errors leave the transaction usable. */
	assert_int_equal(store_audit_append(t, "a", "b", NULL, NULL), CS_OK);
	assert_int_equal(store_txn_commit(t), CS_OK);
	store_close(st);
}

#define CHILD_EVENTS 25

static void
test_kill9_durability(void **state)
{
	const char        *dir = *state;
	store             *st;
	StoredAuditEvent **ev = NULL;
	uint64_t           good, bad;
	size_t             n;
	pid_t              pid;
	int                status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Child: commit, then die without closing anything. */
		store_txn *t;
		int        i;

		if (store_open(&st, dir, MAP_SIZE, NULL, 0) != CS_OK) {
			_exit(2);
		}
		for (i = 0; i < CHILD_EVENTS; i++) {
			if (store_txn_begin(st, true, &t) != CS_OK ||
			    store_audit_append(t, "child", "commit", NULL,
			        NULL) != CS_OK ||
			    store_txn_commit(t) != CS_OK) {
				_exit(3);
			}
		}
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);

	st = open_ok(dir, MAP_SIZE);
	assert_int_equal(store_audit_list(st, 0, 0, &ev, &n), CS_OK);
	assert_int_equal(n, CHILD_EVENTS);
	assert_int_equal(ev[n - 1]->seq, CHILD_EVENTS);
	store_audit_list_free(ev, n);
	assert_int_equal(store_audit_verify(st, &good, &bad), CS_OK);
	assert_int_equal(good, CHILD_EVENTS);
	store_close(st);
}

/* Devices by UID across orders, and by order (an id that is a prefix of
 * another's, UIDs with NUL bytes). */
static void
test_device_scans(void **state)
{
	const char         *dir = *state;
	store              *st  = open_ok(dir, MAP_SIZE);
	store_txn          *t;
	StoredDevice        d = COUNTERSIGN__V1__STORED_DEVICE__INIT;
	StoredDevice      **list = NULL;
	static const uint8_t z[4] = {0, 1, 0, 2};
	static const char *const orders[] = {"a", "ab", "b"};
	size_t              n = 0;

	assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
	for (size_t i = 0; i < 3; i++) {
		d.order_id = (char *)orders[i];
		d.uid.data = (uint8_t *)z;
		d.uid.len  = sizeof(z);
		assert_int_equal(store_device_put(t, &d), CS_OK);
		d.uid.data = (uint8_t *)UID_A;
		d.uid.len  = i == 1 ? sizeof(UID_A) : 0;
		if (d.uid.len > 0) {
			assert_int_equal(store_device_put(t, &d), CS_OK);
		}
	}
	assert_int_equal(store_txn_commit(t), CS_OK);

	assert_int_equal(store_txn_begin(st, false, &t), CS_OK);
	assert_int_equal(store_device_find(t, z, sizeof(z), &list, &n), CS_OK);
	assert_int_equal(n, 3);
	store_device_list_free(list, n);
	assert_int_equal(store_device_find(t, z, 3, &list, &n), CS_ENOENT);
	assert_int_equal(store_device_find(t, UID_A, sizeof(UID_A), &list,
	    &n), CS_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0]->order_id, "ab");
	store_device_list_free(list, n);
	assert_int_equal(store_device_list_order(t, "a", &list, &n), CS_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(list[0]->uid.data, z, sizeof(z));
	store_device_list_free(list, n);
	assert_int_equal(store_device_list_order(t, "ab", &list, &n), CS_OK);
	assert_int_equal(n, 2);
	store_device_list_free(list, n);
	assert_int_equal(store_device_list_order(t, "c", &list, &n), CS_OK);
	assert_int_equal(n, 0);
	assert_null(list);
	store_txn_abort(t);
	store_close(st);
}

/* The firmware table: a row per order, chunks per version, deleted by
 * order without touching an order whose id extends this one's. */
static void
test_firmware_chunks(void **state)
{
	const char     *dir = *state;
	store          *st  = open_ok(dir, MAP_SIZE);
	store_txn      *t;
	StoredFirmware  f = COUNTERSIGN__V1__STORED_FIRMWARE__INIT;
	StoredFirmware *got = NULL;
	uint8_t         chunk[STORE_FW_CHUNK + STORE_FW_TAG_LEN], buf[64];
	size_t          n = 0, del = 0;

	memset(chunk, 0xA5, sizeof(chunk));
	assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
	assert_int_equal(store_firmware_get(t, "a", &got), CS_ENOENT);
	f.order_id = (char *)"a";
	f.version  = 2;
	f.chunks   = 3;
	assert_int_equal(store_firmware_put(t, &f), CS_OK);
	for (uint32_t v = 1; v <= 2; v++) {
		for (uint32_t i = 0; i < 3; i++) {
			chunk[0] = (uint8_t)(16 * v + i);
			assert_int_equal(store_fwchunk_put(t, "a", v, i,
			    chunk, sizeof(chunk)), CS_OK);
		}
	}
	chunk[0] = 0x77;
	assert_int_equal(store_fwchunk_put(t, "ab", 1, 0, chunk, 5), CS_OK);
	assert_int_equal(store_fwchunk_put(t, "b", 1, 0, chunk, 5), CS_OK);
	assert_int_equal(store_fwchunk_put(t, "a", 1, 0, chunk,
	    sizeof(chunk) + 1), CS_EINVAL);
	assert_int_equal(store_fwchunk_put(t, "a", 1, 0, chunk, 0),
	    CS_EINVAL);
	assert_int_equal(store_txn_commit(t), CS_OK);

	assert_int_equal(store_txn_begin(st, true, &t), CS_OK);
	assert_int_equal(store_firmware_get(t, "a", &got), CS_OK);
	assert_int_equal(got->version, 2);
	countersign__v1__stored_firmware__free_unpacked(got, NULL);
	assert_int_equal(store_fwchunk_get(t, "a", 2, 1, chunk,
	    sizeof(chunk), &n), CS_OK);
	assert_int_equal(n, sizeof(chunk));
	assert_int_equal(chunk[0], 0x21);
	assert_int_equal(store_fwchunk_get(t, "a", 2, 1, buf, sizeof(buf),
	    &n), CS_ETOOBIG);
	assert_int_equal(store_fwchunk_get(t, "a", 2, 3, buf, sizeof(buf),
	    &n), CS_ENOENT);
	assert_int_equal(store_fwchunk_delete_all(t, "a", &del), CS_OK);
	assert_int_equal(del, 6);
	assert_int_equal(store_fwchunk_get(t, "a", 1, 0, chunk,
	    sizeof(chunk), &n), CS_ENOENT);
	assert_int_equal(store_fwchunk_get(t, "ab", 1, 0, buf, sizeof(buf),
	    &n), CS_OK);
	assert_int_equal(n, 5);
	assert_int_equal(store_fwchunk_get(t, "b", 1, 0, buf, sizeof(buf),
	    &n), CS_OK);
	assert_int_equal(store_fwchunk_delete_all(t, "zz", &del), CS_OK);
	assert_int_equal(del, 0);
	assert_int_equal(store_txn_commit(t), CS_OK);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_schema_newer_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_order_device_uid_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_leaves_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_chain, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_gap_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_truncated, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_bad_args, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill9_durability, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_firmware_chunks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_device_scans, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
