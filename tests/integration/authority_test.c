/*
 * authority_test.c - the signing authority end to end: a real SoftHSM
 * token, a real LMDB directory, real TLS on loopback and the real
 * programs (countersign-authority, countersign-admin,
 * countersign-station, countersign-keytool).  In-process clients (the
 * station's own session code and the RPC client on the admin socket) are
 * used where the test must look at structured answers or drive many
 * requests at once.
 *
 * One authority serves the tests in order; some restart it (SIGTERM,
 * kill -9) on purpose.
 */
#include "countersign/v1/admin.pb-c.h"
#include "countersign/v1/authority.pb-c.h"
#include "countersign/verify.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_rpc.h"
#include "station_config.h"
#include "station_fixture.h"
#include "station_session.h"
#include "store.h"
#include "test_util.h"

#include <lmdb.h>

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define TOKEN   "authority"
#define PIN     "123456"
#define KEY     "oem-p256"
#define PRODUCT 4242u
#define UIDLEN  12u

struct fx {
	char *dir;
	char  authority[512], admin[512], station[512], keytool[512];
	char  conf[600], log[600], sock[600], data[600];
	char  out[16384];
	pid_t pid;
	pid_t pid2; /* a second authority of one case, stopped even when the
	               case fails half-way */
	char  mnt[600]; /* a tmpfs of one case, unmounted the same way */
	int   port;
	int   restarts;
	uint8_t spki[CS_SPKI_MAX];
	size_t  spki_len;
};

static struct fx *F;

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

static void
write_conf(struct fx *f, const char *path, const char *data,
    const char *sock, const char *token, unsigned map_mb)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "[authority]\n"
	    "id = test-authority\n"
	    "data_dir = %s\n"
	    "station_listen = tls+tcp://127.0.0.1:0\n"
	    "admin_listen = ipc://%s\n"
	    "map_size_mb = %u\n"
	    "[tls]\n"
	    "cert = %s/server.pem\n"
	    "key = %s/server.key\n"
	    "station_ca = %s/station-ca.pem\n"
	    "[hsm]\n"
	    "module = " CS_SOFTHSM_MODULE "\n"
	    "token = %s\n"
	    "pin_file = %s/pin\n"
	    "sessions = 4\n"
	    "[firmware]\n"
	    "targets_dir = " CS_TARGETS_DIR "\n",
	    data, sock, map_mb, f->dir, f->dir, f->dir, token, f->dir);
	tu_write_file(path, text);
}

static pid_t
start_authority(struct fx *f, const char *conf, const char *log, int *port)
{
	char *argv[] = {f->authority, (char *)"-c", (char *)conf, NULL};
	pid_t pid;

	unlink(log);
	pid   = tu_spawn(argv, log);
	*port = tu_wait_port(log, "tls");
	return pid;
}

static void
restart(struct fx *f)
{
	char log[700];

	snprintf(log, sizeof(log), "%s.%d", f->log, ++f->restarts);
	f->pid = start_authority(f, f->conf, log, &f->port);
}

/* Run a program (NULL-terminated arguments); output in f->out. */
#define run(f, ...) tu_runl((f)->out, sizeof((f)->out), __VA_ARGS__)

#define ADMIN(f, ...) run(f, (f)->admin, "-c", (f)->conf, __VA_ARGS__, NULL)
#define STATION(f, conf, ...)                                                 \
	run(f, (f)->station, "-c", conf, __VA_ARGS__, NULL)

#define expect(f, got, want, needle)                                         \
	tu_expect((f)->out, (got), (want), (needle))

/* Station config for name; returns its path in buf. */
static const char *
station_conf(struct fx *f, const char *name, char *buf, size_t len)
{
	char text[2048];

	snprintf(buf, len, "%s/%s.conf", f->dir, name);
	snprintf(text, sizeof(text),
	    "[station]\n"
	    "name = %s\n"
	    "authority_url = tls+tcp://127.0.0.1:%d\n"
	    "authority_id = test-authority\n"
	    "ca = %s/ca.pem\n"
	    "cert = %s/%s.pem\n"
	    "key = %s/%s.key\n"
	    "timeout_ms = 20000\n",
	    name, f->port, f->dir, f->dir, name, f->dir, name);
	tu_write_file(buf, text);
	return buf;
}

/* station init, then enrollment by the officer. */
static void
enroll(struct fx *f, const char *name, const char *cm)
{
	char conf[700], csr[700], cert[700];

	station_conf(f, name, conf, sizeof(conf));
	expect(f, STATION(f, conf, "init"), 0, ".csr");
	snprintf(csr, sizeof(csr), "%s/%s.csr", f->dir, name);
	snprintf(cert, sizeof(cert), "%s/%s.pem", f->dir, name);
	expect(f, ADMIN(f, "station", "enroll", "--csr", csr, "--name", name,
	    "--cm", cm, "-o", cert), 0, name);
}

static void
create_order(struct fx *f, const char *id, const char *quota,
    const char *cm)
{
	char product[16], uidlen[8];

	snprintf(product, sizeof(product), "%u", PRODUCT);
	snprintf(uidlen, sizeof(uidlen), "%u", UIDLEN);
	if (cm == NULL) {
		expect(f, ADMIN(f, "order", "create", "--id", id, "--product",
		    product, "--key", KEY, "--quota", quota, "--uid-len", uidlen),
		    0, id);
	} else {
		expect(f, ADMIN(f, "order", "create", "--id", id, "--product",
		    product, "--key", KEY, "--quota", quota, "--uid-len", uidlen,
		    "--cm", cm),
		    0, id);
	}
}

static void
uid_hex(char *out, unsigned tag, unsigned n)
{
	snprintf(out, 2 * UIDLEN + 1, "c0ffee%08x%010x", tag, n);
}

static size_t
read_file(const char *path, uint8_t *buf, size_t len)
{
	FILE  *fp = fopen(path, "rb");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, len, fp);
	fclose(fp);
	return n;
}

/* ------------------------------------------------------------------ */
/* In-process clients                                                  */
/* ------------------------------------------------------------------ */

static cs_rpc_client *
admin_client(const char *sock)
{
	cs_rpc_client *c = NULL;
	char           url[700], err[256];

	snprintf(url, sizeof(url), "ipc://%s", sock);
	struct cs_rpc_client_opts o = {
	    .url = url, .timeout_ms = 30000, .max_msg = 16u << 20, .wait = true};
	if (cs_rpc_client_open(&c, &o, err, sizeof(err)) != CS_OK) {
		fprintf(stderr, "admin client: %s\n", err);
		fail();
	}
	return c;
}

static Countersign__V1__OrderStatus *
show_order(const char *sock, const char *id, Countersign__V1__OrderReply **r)
{
	cs_rpc_client                  *c  = admin_client(sock);
	Countersign__V1__ShowOrderRequest in =
	    COUNTERSIGN__V1__SHOW_ORDER_REQUEST__INIT;
	struct cs_rpc_result            res;

	in.order_id = (char *)id;
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "ShowOrder", &in.base, (ProtobufCMessage **)r, &res), CS_OK);
	cs_rpc_client_close(c);
	return (*r)->order;
}

static void
check_counts(struct fx *f, const char *id, uint64_t issued,
    uint64_t remaining)
{
	Countersign__V1__OrderReply  *r;
	Countersign__V1__OrderStatus *o = show_order(f->sock, id, &r);

	assert_int_equal(o->issued, issued);
	assert_int_equal(o->remaining, remaining);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static station_session *
session(struct fx *f, const char *name)
{
	return tf_session(f->dir, f->port, name);
}

/* Sign through a session; returns the cs_err code. */
static int
sign(station_session *s, const char *order, const uint8_t *uid,
    uint8_t *rec, size_t *rec_len, struct cs_rpc_result *res)
{
	Countersign__V1__SignRequest  in = COUNTERSIGN__V1__SIGN_REQUEST__INIT;
	Countersign__V1__SignResponse *out = NULL;
	int                            rv;

	in.order_id = (char *)order;
	in.uid.data = (uint8_t *)uid;
	in.uid.len  = UIDLEN;
	rv = station_session_call(s, "Sign", &in.base,
	    (ProtobufCMessage **)&out, res);
	if (rv == CS_OK) {
		assert_true(out->record.len <= CS_RECORD_MAX_LEN);
		memcpy(rec, out->record.data, out->record.len);
		*rec_len = out->record.len;
		protobuf_c_message_free_unpacked(&out->base, NULL);
	}
	return rv;
}

static void
make_uid(uint8_t uid[UIDLEN], unsigned tag, unsigned n)
{
	memset(uid, 0, UIDLEN);
	uid[0] = 0xa5;
	uid[1] = (uint8_t)tag;
	uid[8] = (uint8_t)(n >> 24);
	uid[9] = (uint8_t)(n >> 16);
	uid[10] = (uint8_t)(n >> 8);
	uid[11] = (uint8_t)n;
}

/* The record verifies with the target library for uid. */
static void
check_record(struct fx *f, const uint8_t *rec, size_t len,
    const uint8_t *uid)
{
	uint8_t             pub[CS_P256_POINT_LEN], kid[CS_KEY_ID_LEN];
	size_t              plen = sizeof(pub);
	cs_alg              alg;
	struct cs_trust_key tk;
	struct cs_verify_trust trust;
	struct cs_record_info info;

	assert_int_equal(cs_spki_decode(f->spki, f->spki_len, &alg, pub, &plen),
	    CS_OK);
	assert_int_equal(cs_key_id(f->spki, f->spki_len, kid), CS_OK);
	memset(&tk, 0, sizeof(tk));
	tk.alg     = (uint8_t)alg;
	tk.key_id  = kid;
	tk.pub     = pub;
	tk.pub_len = plen;
	memset(&trust, 0, sizeof(trust));
	trust.keys       = &tk;
	trust.n_keys     = 1;
	trust.product_id = PRODUCT;
	assert_true(CS_VERIFY_AUTHORIZED(
	    cs_verify_record(rec, len, uid, UIDLEN, &trust, &info)));
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char       spki[700];

	assert_non_null(f);
	*state = f; /* teardown cleans up even when setup fails */
	f->dir = tu_tmpdir();
	tu_programs(f->authority, f->admin, f->station, f->keytool,
	    sizeof(f->authority));
	tu_make_pki(f->dir);
	tu_make_token(f->dir, TOKEN, PIN);
	snprintf(f->conf, sizeof(f->conf), "%s/authority.conf", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/authority.log", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/admin.sock", f->dir);
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	write_conf(f, f->conf, f->data, f->sock, TOKEN, 64);

	setenv("COUNTERSIGN_HSM_MODULE", CS_SOFTHSM_MODULE, 1);
	setenv("COUNTERSIGN_HSM_TOKEN", TOKEN, 1);
	snprintf(spki, sizeof(spki), "%s/pin", f->dir);
	setenv("COUNTERSIGN_HSM_PIN_FILE", spki, 1);
	expect(f, run(f, f->keytool, "keygen", "--label", KEY, "--alg", "p256",
	    NULL), 0, NULL);
	snprintf(spki, sizeof(spki), "%s/oem.der", f->dir);
	expect(f, run(f, f->keytool, "export", "--label", KEY, "--format",
	    "der", "-o", spki, NULL), 0, NULL);
	f->spki_len = read_file(spki, f->spki, sizeof(f->spki));

	/* The station CA is made before the authority first starts. */
	expect(f, ADMIN(f, "ca", "init"), 0, "station-ca.pem");
	f->pid = start_authority(f, f->conf, f->log, &f->port);
	expect(f, ADMIN(f, "key", "add", "--label", KEY), 0, KEY);
	enroll(f, "st1", "acme");
	enroll(f, "st2", "acme");
	enroll(f, "other1", "othercm");
	F      = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f == NULL) {
		return 0;
	}
	if (f->pid2 > 0) {
		tu_stop(f->pid2, SIGKILL, 5000);
	}
	if (f->pid > 0) {
		tu_stop(f->pid, SIGTERM, 15000);
	}
	if (f->mnt[0] != '\0') {
		char *argv[] = {(char *)"umount", f->mnt, NULL};
		(void)tu_run(argv, f->out, sizeof(f->out));
	}
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/* The README's story: sign, the same record again, the key verifies it. */
static void
test_sign_and_reissue(void **state)
{
	struct fx *f = *state;
	char       conf[700], a[700], b[700], uid[2 * UIDLEN + 1];
	uint8_t    ra[256], rb[256], ub[UIDLEN];
	size_t     la, lb, i;

	create_order(f, "PO-1", "10", NULL);
	station_conf(f, "st1", conf, sizeof(conf));
	snprintf(a, sizeof(a), "%s/a.rec", f->dir);
	snprintf(b, sizeof(b), "%s/b.rec", f->dir);
	uid_hex(uid, 1, 1);
	expect(f, STATION(f, conf, "sign", "--order", "PO-1", "--uid", uid,
	    "--out", a), 0, "reissued=no");
	check_counts(f, "PO-1", 1, 9);
	expect(f, STATION(f, conf, "sign", "--order", "PO-1", "--uid", uid,
	    "--out", b), 0, "reissued=yes");
	check_counts(f, "PO-1", 1, 9);
	la = read_file(a, ra, sizeof(ra));
	lb = read_file(b, rb, sizeof(rb));
	assert_true(la >= CS_RECORD_MIN_LEN);
	assert_int_equal(la, lb);
	assert_memory_equal(ra, rb, la);
	for (i = 0; i < UIDLEN; i++) {
		unsigned v;

		sscanf(uid + 2 * i, "%2x", &v);
		ub[i] = (uint8_t)v;
	}
	check_record(f, ra, la, ub);
	/* Another station of the same CM gets the same record too. */
	station_conf(f, "st2", conf, sizeof(conf));
	expect(f, STATION(f, conf, "sign", "--order", "PO-1", "--uid", uid,
	    "--out", b), 0, "reissued=yes");
	lb = read_file(b, rb, sizeof(rb));
	assert_memory_equal(ra, rb, la);
	/* The record and the order from the officer's side. */
	expect(f, ADMIN(f, "device", "show", uid, "--order", "PO-1"), 0,
	    "st1");
	expect(f, ADMIN(f, "audit", "verify"), 0, "intact");
}

/* Up to the quota and not one more; reports move the counters. */
static void
test_quota_and_reports(void **state)
{
	struct fx *f = *state;
	char       conf[700], uid[2 * UIDLEN + 1];

	create_order(f, "PO-Q", "2", "acme");
	station_conf(f, "st1", conf, sizeof(conf));
	uid_hex(uid, 2, 1);
	expect(f, STATION(f, conf, "sign", "--order", "PO-Q", "--uid", uid,
	    "--out", "/dev/null"), 0, NULL);
	expect(f, STATION(f, conf, "report", "--order", "PO-Q", "--uid", uid,
	    "--outcome", "failed", "--detail", "flash write error"), 0,
	    "failed=1");
	expect(f, STATION(f, conf, "report", "--order", "PO-Q", "--uid", uid,
	    "--outcome", "programmed"), 0, "confirmed=1");
	uid_hex(uid, 2, 2);
	expect(f, STATION(f, conf, "sign", "--order", "PO-Q", "--uid", uid,
	    "--out", "/dev/null"), 0, "remaining=0");
	uid_hex(uid, 2, 3);
	expect(f, STATION(f, conf, "sign", "--order", "PO-Q", "--uid", uid,
	    "--out", "/dev/null"), 5, "no quota left");
	check_counts(f, "PO-Q", 2, 0);
	/* Writing to a device file writes into it, never replaces it (the
	 * station runs as root on many lines). */
	{
		struct stat st;

		assert_int_equal(stat("/dev/null", &st), 0);
		assert_true(S_ISCHR(st.st_mode));
		assert_int_not_equal(access("/dev/null.tmp", F_OK), 0);
	}
	/* More quota, one more unit. */
	expect(f, ADMIN(f, "order", "quota", "PO-Q", "+1"), 0, NULL);
	expect(f, STATION(f, conf, "sign", "--order", "PO-Q", "--uid", uid,
	    "--out", "/dev/null"), 0, "remaining=0");
	/* Never below what was issued. */
	expect(f, ADMIN(f, "order", "quota", "PO-Q", "-1"), 1, "below");
	check_counts(f, "PO-Q", 3, 0);
	/* A report for a UID without a record. */
	uid_hex(uid, 2, 9);
	expect(f, STATION(f, conf, "report", "--order", "PO-Q", "--uid", uid,
	    "--outcome", "programmed"), 6, "no record");
}

/* Every refusal: precise status and message, counters unchanged. */
static void
test_refusals(void **state)
{
	struct fx *f = *state;
	char       conf[700], oconf[700], uid[2 * UIDLEN + 1];

	create_order(f, "PO-R", "5", "acme");
	create_order(f, "PO-R2", "5", NULL);
	station_conf(f, "st1", conf, sizeof(conf));
	station_conf(f, "other1", oconf, sizeof(oconf));

	uid_hex(uid, 3, 1);
	expect(f, STATION(f, conf, "sign", "--order", "NO-SUCH", "--uid", uid,
	    "--out", "/dev/null"), 6, "not known");
	expect(f, STATION(f, conf, "sign", "--order", "PO-R", "--uid",
	    "0102030405", "--out", "/dev/null"), 7, "expects 12-byte");
	expect(f, STATION(f, conf, "sign", "--order", "PO-R", "--uid",
	    "ffffffffffffffffffffffff", "--out", "/dev/null"), 7, "0xFF");
	expect(f, STATION(f, conf, "sign", "--order", "PO-R", "--uid",
	    "000000000000000000000000", "--out", "/dev/null"), 7, "0x00");
	expect(f, STATION(f, oconf, "sign", "--order", "PO-R", "--uid", uid,
	    "--out", "/dev/null"), 4, "CM othercm");
	check_counts(f, "PO-R", 0, 5);

	/* A clone: the UID already signed for this product elsewhere. */
	expect(f, STATION(f, conf, "sign", "--order", "PO-R", "--uid", uid,
	    "--out", "/dev/null"), 0, NULL);
	expect(f, STATION(f, conf, "sign", "--order", "PO-R2", "--uid", uid,
	    "--out", "/dev/null"), 8, "clone");
	check_counts(f, "PO-R2", 0, 5);

	/* The same UID in the same order, asked for by another CM's
	 * station: a clone too (PO-R2 allows every CM). */
	uid_hex(uid, 3, 7);
	expect(f, STATION(f, conf, "sign", "--order", "PO-R2", "--uid", uid,
	    "--out", "/dev/null"), 0, NULL);
	expect(f, STATION(f, oconf, "sign", "--order", "PO-R2", "--uid", uid,
	    "--out", "/dev/null"), 8, "another CM");
	/* ... and may not report on it. */
	expect(f, STATION(f, oconf, "report", "--order", "PO-R2", "--uid", uid,
	    "--outcome", "failed"), 4, "another CM");
	check_counts(f, "PO-R2", 1, 4);

	/* A station that answers only its own authority. */
	{
		char wrong[700], text[2048];

		snprintf(wrong, sizeof(wrong), "%s/wrong-id.conf", f->dir);
		snprintf(text, sizeof(text),
		    "[station]\nname = st1\n"
		    "authority_url = tls+tcp://127.0.0.1:%d\n"
		    "authority_id = some-other-authority\n"
		    "ca = %s/ca.pem\ncert = %s/st1.pem\nkey = %s/st1.key\n",
		    f->port, f->dir, f->dir, f->dir);
		tu_write_file(wrong, text);
		assert_int_not_equal(STATION(f, wrong, "sign", "--order",
		    "PO-R", "--uid", uid, "--out", "/dev/null"), 0);
		assert_non_null(strstr(f->out, "authority_id"));
	}

	/* A disabled station: refused at once, at TLS (its certificate is
	 * on the station CA's CRL), and served again when enabled. */
	uid_hex(uid, 3, 2);
	expect(f, ADMIN(f, "station", "disable", "st1"), 0, NULL);
	assert_int_not_equal(STATION(f, conf, "sign", "--order", "PO-R",
	    "--uid", uid, "--out", "/dev/null"), 0);
	assert_non_null(strstr(f->out, "refused this client's certificate"));
	expect(f, ADMIN(f, "station", "enable", "st1"), 0, NULL);
	expect(f, STATION(f, conf, "sign", "--order", "PO-R", "--uid", uid,
	    "--out", "/dev/null"), 0, NULL);

	/* A closed order. */
	expect(f, ADMIN(f, "order", "close", "PO-R"), 0, NULL);
	uid_hex(uid, 3, 3);
	expect(f, STATION(f, conf, "sign", "--order", "PO-R", "--uid", uid,
	    "--out", "/dev/null"), 6, "closed");
	check_counts(f, "PO-R", 2, 3);

	/* The refusals are in the audit log. */
	expect(f, ADMIN(f, "audit", "list"), 0, "reason=clone");
	expect(f, ADMIN(f, "audit", "list"), 0, "reason=cm-not-allowed");
	expect(f, ADMIN(f, "audit", "list"), 0, "reason=order-closed");
	expect(f, ADMIN(f, "audit", "list"), 0, "station.disabled");
}

/* An order that expires while stations use it. */
static void
test_expired_order(void **state)
{
	struct fx *f = *state;
	cs_rpc_client *c = admin_client(f->sock);
	Countersign__V1__CreateOrderRequest in =
	    COUNTERSIGN__V1__CREATE_ORDER_REQUEST__INIT;
	Countersign__V1__OrderReply *r = NULL;
	struct cs_rpc_result         res;
	char                         conf[700], uid[2 * UIDLEN + 1];

	in.order_id       = (char *)"PO-EXP";
	in.product_id     = PRODUCT;
	in.key_label      = (char *)KEY;
	in.quota          = 5;
	in.uid_len        = UIDLEN;
	in.expires_unix_s = (uint64_t)time(NULL) + 2;
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "CreateOrder", &in.base, (ProtobufCMessage **)&r, &res), CS_OK);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	cs_rpc_client_close(c);
	sleep(3);
	station_conf(f, "st1", conf, sizeof(conf));
	uid_hex(uid, 4, 1);
	expect(f, STATION(f, conf, "sign", "--order", "PO-EXP", "--uid", uid,
	    "--out", "/dev/null"), 6, "expired");
	check_counts(f, "PO-EXP", 0, 5);
}

/* A token that is not one, on a raw session. */
static void
test_bad_token(void **state)
{
	struct fx       *f = *state;
	station_session *s = session(f, "st2");
	cs_rpc_client   *c = station_session_client(s);
	Countersign__V1__SignRequest in = COUNTERSIGN__V1__SIGN_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	struct cs_rpc_result res;
	uint8_t          bogus[32], uid[UIDLEN];

	memset(bogus, 0x42, sizeof(bogus));
	make_uid(uid, 5, 1);
	in.order_id = (char *)"PO-1";
	in.uid.data = uid;
	in.uid.len  = UIDLEN;
	assert_int_equal(cs_rpc_client_set_token(c, bogus, sizeof(bogus)),
	    CS_OK);
	assert_int_equal(cs_rpc_call(c, &countersign__v1__authority__descriptor,
	    "Sign", &in.base, &out, &res), CS_EUNAUTH);
	assert_non_null(strstr(res.message, "authenticate again"));
	assert_int_equal(cs_rpc_client_set_token(c, bogus, 7), CS_OK);
	assert_int_equal(cs_rpc_call(c, &countersign__v1__authority__descriptor,
	    "Sign", &in.base, &out, &res), CS_EUNAUTH);
	station_session_close(s);
	check_counts(f, "PO-1", 1, 9);
}

/* 8 clients race for the last 50 units. */
struct racer {
	struct fx  *f;
	int         id;
	unsigned    tag; /* UIDs of different runs never meet */
	const char *order;
	unsigned    tries;
	unsigned    ok, exhausted, other;
	uint8_t     uids[64][UIDLEN];
	uint8_t     recs[64][CS_RECORD_MAX_LEN];
	size_t      lens[64];
	bool        stop_on_error;
	volatile bool *stop;
};

static void *
racer_main(void *arg)
{
	struct racer        *r = arg;
	char                 name[16];
	station_session     *s;
	struct cs_rpc_result res;
	unsigned             i;

	snprintf(name, sizeof(name), "race%d", r->id);
	s = session(r->f, name);
	for (i = 0; i < r->tries && !(r->stop != NULL && *r->stop); i++) {
		uint8_t uid[UIDLEN], rec[CS_RECORD_MAX_LEN];
		size_t  len = 0;
		int     rv;

		make_uid(uid, r->tag + (unsigned)r->id, i + 1);
		rv = sign(s, r->order, uid, rec, &len, &res);
		if (rv == CS_OK && r->ok < 64) {
			memcpy(r->uids[r->ok], uid, UIDLEN);
			memcpy(r->recs[r->ok], rec, len);
			r->lens[r->ok] = len;
			r->ok++;
		} else if (rv == CS_EEXHAUSTED) {
			r->exhausted++;
		} else {
			r->other++;
			if (r->stop_on_error) {
				break;
			}
		}
	}
	station_session_close(s);
	return NULL;
}

static void
test_race_last_50(void **state)
{
	struct fx    *f = *state;
	struct racer *r = calloc(8, sizeof(*r));
	pthread_t     t[8];
	unsigned      ok = 0, ex = 0, i, j, a, b;
	char          name[16];

	assert_non_null(r);
	for (i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "race%u", i);
		enroll(f, name, "acme");
	}
	/* An order with 50 units left: 150 of 200 already made. */
	create_order(f, "PO-RACE", "200", NULL);
	/* Fill 150 quickly from one client. */
	{
		station_session     *s = session(f, "race0");
		struct cs_rpc_result res;

		for (i = 0; i < 150; i++) {
			uint8_t uid[UIDLEN], rec[CS_RECORD_MAX_LEN];
			size_t  len;

			make_uid(uid, 0x30, i + 1);
			assert_int_equal(sign(s, "PO-RACE", uid, rec, &len, &res),
			    CS_OK);
		}
		station_session_close(s);
	}
	check_counts(f, "PO-RACE", 150, 50);
	for (i = 0; i < 8; i++) {
		r[i].f     = f;
		r[i].id    = (int)i;
		r[i].order = "PO-RACE";
		r[i].tag   = 0x40;
		r[i].tries = 20;
		assert_int_equal(pthread_create(&t[i], NULL, racer_main, &r[i]),
		    0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].ok;
		ex += r[i].exhausted;
		assert_int_equal(r[i].other, 0);
	}
	assert_int_equal(ok, 50);
	assert_int_equal(ex, 8 * 20 - 50);
	check_counts(f, "PO-RACE", 200, 0);
	/* Distinct UIDs, each record for its own UID. */
	for (i = 0; i < 8; i++) {
		for (a = 0; a < r[i].ok; a++) {
			check_record(f, r[i].recs[a], r[i].lens[a], r[i].uids[a]);
			for (j = i; j < 8; j++) {
				for (b = (j == i ? a + 1 : 0); b < r[j].ok; b++) {
					assert_memory_not_equal(r[i].uids[a],
					    r[j].uids[b], UIDLEN);
				}
			}
		}
	}
	free(r);
}

/* Count the devices of order in the stopped authority's store. */
static size_t
stored_devices(struct fx *f, const char *order, StoredDevice ***list)
{
	store     *st = NULL;
	store_txn *txn;
	char       err[256];
	size_t     n = 0;

	assert_int_equal(store_open(&st, f->data, 0, err, sizeof(err)), CS_OK);
	assert_int_equal(store_txn_begin(st, false, &txn), CS_OK);
	assert_int_equal(store_device_list_order(txn, order, list, &n), CS_OK);
	store_txn_abort(txn);
	store_close(st);
	return n;
}

/* SIGTERM, restart: every count and record kept. */
static void
test_restart_keeps_state(void **state)
{
	struct fx *f = *state;
	char       conf[700], a[700], uid[2 * UIDLEN + 1];
	uint8_t    before[256], after[256];
	size_t     lb, la;

	assert_int_equal(tu_stop(f->pid, SIGTERM, 15000), 0);
	f->pid = 0;
	restart(f);
	check_counts(f, "PO-RACE", 200, 0);
	check_counts(f, "PO-1", 1, 9);
	station_conf(f, "st1", conf, sizeof(conf));
	snprintf(a, sizeof(a), "%s/a.rec", f->dir);
	lb = read_file(a, before, sizeof(before));
	uid_hex(uid, 1, 1);
	expect(f, STATION(f, conf, "sign", "--order", "PO-1", "--uid", uid,
	    "--out", a), 0, "reissued=yes");
	la = read_file(a, after, sizeof(after));
	assert_int_equal(la, lb);
	assert_memory_equal(before, after, la);
}

/* kill -9 in the middle of a burst: nothing received is lost. */
static void
test_kill9_during_burst(void **state)
{
	struct fx     *f = *state;
	struct racer  *r = calloc(8, sizeof(*r));
	StoredDevice **list = NULL;
	pthread_t      t[8];
	volatile bool  stop = false;
	unsigned       i, a, got = 0;
	size_t         n, k;
	Countersign__V1__OrderReply  *rep;
	Countersign__V1__OrderStatus *o;
	uint64_t       issued;

	assert_non_null(r);
	create_order(f, "PO-KILL", "100000", NULL);
	for (i = 0; i < 8; i++) {
		r[i].f             = f;
		r[i].id            = (int)i;
		r[i].order         = "PO-KILL";
		r[i].tag           = 0x50;
		r[i].tries         = 64;
		r[i].stop_on_error = true;
		r[i].stop          = &stop;
		assert_int_equal(pthread_create(&t[i], NULL, racer_main, &r[i]),
		    0);
	}
	/* Let some records through, then pull the plug. */
	for (i = 0; i < 200; i++) {
		unsigned sum = 0, j;

		for (j = 0; j < 8; j++) {
			sum += r[j].ok;
		}
		if (sum >= 40) {
			break;
		}
		usleep(20000);
	}
	assert_true(f->pid > 0); /* never kill(0 or -1) */
	kill(f->pid, SIGKILL);
	tu_stop(f->pid, SIGKILL, 5000);
	f->pid = 0;
	stop   = true;
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		got += r[i].ok;
	}
	assert_true(got > 0);

	/* Every record a client holds is in the store, byte for byte. */
	n = stored_devices(f, "PO-KILL", &list);
	for (i = 0; i < 8; i++) {
		for (a = 0; a < r[i].ok; a++) {
			bool found = false;

			for (k = 0; k < n && !found; k++) {
				found = list[k]->uid.len == UIDLEN &&
				    memcmp(list[k]->uid.data, r[i].uids[a],
				        UIDLEN) == 0 &&
				    list[k]->record.len == r[i].lens[a] &&
				    memcmp(list[k]->record.data, r[i].recs[a],
				        r[i].lens[a]) == 0;
			}
			assert_true(found);
		}
	}
	assert_true(n >= got);
	print_message("kill -9: %u records received, %zu stored\n", got, n);
	store_device_list_free(list, n);

	/* And after a restart the order counts exactly what is stored. */
	restart(f);
	o      = show_order(f->sock, "PO-KILL", &rep);
	issued = o->issued;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	assert_int_equal(issued, n);
	expect(f, ADMIN(f, "audit", "verify"), 0, "intact");
	free(r);
}

/* One changed byte in one stored event breaks the chain. */
static void
test_audit_tamper(void **state)
{
	struct fx  *f = *state;
	MDB_env    *env;
	MDB_txn    *txn;
	MDB_dbi     dbi;
	MDB_val     k, v;
	uint8_t     key[8] = {0, 0, 0, 0, 0, 0, 0, 3}, *copy;

	expect(f, ADMIN(f, "audit", "verify"), 0, "intact");
	expect(f, ADMIN(f, "audit", "export", "--format", "jsonl"), 0,
	    "\"seq\":3");
	assert_int_equal(tu_stop(f->pid, SIGTERM, 15000), 0);
	f->pid = 0;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 64u << 20), 0);
	assert_int_equal(mdb_env_open(env, f->data, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	copy = malloc(v.mv_size);
	assert_non_null(copy);
	memcpy(copy, v.mv_data, v.mv_size);
	copy[v.mv_size / 2] ^= 0x01;
	v.mv_data = copy;
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	free(copy);

	restart(f);
	expect(f, ADMIN(f, "audit", "verify"), 3, "seq 3");
}

/* The signing key missing on the HSM: UNAVAILABLE, nothing spent. */
static void
test_hsm_key_unavailable(void **state)
{
	struct fx *f = *state;
	char       conf[700], other[700], odir[700], cmd[2048], uid[2 * UIDLEN + 1];

	/* The same store, but a second token (same SoftHSM configuration)
	 * that lacks the OEM key. */
	snprintf(cmd, sizeof(cmd), "softhsm2-util --init-token --free --label "
	    "other --pin %s --so-pin so-%s >/dev/null", PIN, PIN);
	assert_int_equal(system(cmd), 0);
	(void)odir;
	assert_int_equal(tu_stop(f->pid, SIGTERM, 15000), 0);
	f->pid = 0;
	snprintf(other, sizeof(other), "%s/authority-other.conf", f->dir);
	write_conf(f, other, f->data, f->sock, "other", 64);
	{
		char log[700];

		snprintf(log, sizeof(log), "%s.other", f->log);
		f->pid = start_authority(f, other, log, &f->port);
	}
	create_order(f, "PO-HSM", "5", NULL);
	station_conf(f, "st1", conf, sizeof(conf));
	uid_hex(uid, 6, 1);
	expect(f, STATION(f, conf, "sign", "--order", "PO-HSM", "--uid", uid,
	    "--out", "/dev/null"), 3, "no quota was spent");
	check_counts(f, "PO-HSM", 0, 5);
	assert_int_equal(tu_stop(f->pid, SIGTERM, 15000), 0);
	f->pid = 0;
	restart(f);
}

/* A store that fills up: RESOURCE_EXHAUSTED, nothing half-written. */
/* Sign fresh UIDs (tag, 1..) of PO-FULL as small1 until one is refused:
 * returns how many were signed; *rv and res say why it stopped, uid is
 * the refused one. */
static unsigned
fill(struct fx *f, unsigned tag, int *rv, struct cs_rpc_result *res,
    uint8_t uid[UIDLEN])
{
	station_session *s = session(f, "small1");
	unsigned         ok = 0;

	for (unsigned n = 0; n < 200000; n++) {
		uint8_t rec[CS_RECORD_MAX_LEN];
		size_t  len;

		make_uid(uid, tag, n + 1);
		if ((*rv = sign(s, "PO-FULL", uid, rec, &len, res)) != CS_OK) {
			break;
		}
		ok++;
	}
	station_session_close(s);
	return ok;
}

/* A second authority on data, sharing token and CA, with order PO-FULL
 * and station small1; f->pid/f->port are switched to it. */
static void
small_authority(struct fx *f, const char *conf, const char *data,
    const char *sock, const char *log, unsigned map_mb)
{
	char c[700], csr[700], cert[700];

	write_conf(f, conf, data, sock, TOKEN, map_mb);
	f->pid2 = start_authority(f, conf, log, &f->port);
	expect(f, run(f, f->admin, "-c", conf, "key", "add", "--label", KEY,
	    NULL), 0, NULL);
	expect(f, run(f, f->admin, "-c", conf, "order", "create", "--id",
	    "PO-FULL", "--product", "7", "--key", KEY, "--quota", "1000000",
	    "--uid-len", "12", NULL), 0, NULL);
	station_conf(f, "small1", c, sizeof(c));
	snprintf(csr, sizeof(csr), "%s/small1.csr", f->dir);
	if (access(csr, F_OK) != 0) { /* one station key for both cases */
		expect(f, STATION(f, c, "init"), 0, NULL);
	}
	snprintf(cert, sizeof(cert), "%s/small1.pem", f->dir);
	unlink(cert); /* issued again by this authority */
	expect(f, run(f, f->admin, "-c", conf, "station", "enroll", "--csr",
	    csr, "--name", "small1", "--cm", "acme", "-o", cert, NULL), 0,
	    NULL);
}

/*
 * The store filled up: every further sign is refused "store full"
 * (RESOURCE_EXHAUSTED, exit 5) while a station still authenticates;
 * issued == stored == received (the last UID received is on record, the
 * refused one is not); the audit chain is intact.
 */
static void
check_full(struct fx *f, const char *conf, const char *sock, unsigned ok,
    int rv, const struct cs_rpc_result *res, const uint8_t refused[UIDLEN],
    unsigned tag)
{
	char             hex[2 * UIDLEN + 1];
	uint8_t          uid[UIDLEN], rec[CS_RECORD_MAX_LEN];
	size_t           len;
	struct cs_rpc_result res2;
	station_session *s;

	assert_int_equal(rv, CS_EEXHAUSTED);
	assert_non_null(strstr(res->message, "store is full"));
	assert_non_null(strstr(res->message, "map_size_mb"));
	assert_non_null(strstr(res->message, "disk space"));
	s = session(f, "small1"); /* authentication needs no room */
	assert_int_equal(sign(s, "PO-FULL", refused, rec, &len, &res2),
	    CS_EEXHAUSTED);
	assert_string_equal(res2.message, res->message);
	station_session_close(s);
	{
		Countersign__V1__OrderReply  *rep;
		Countersign__V1__OrderStatus *o = show_order(sock, "PO-FULL",
		    &rep);
		assert_int_equal(o->issued, ok);
		protobuf_c_message_free_unpacked(&rep->base, NULL);
	}
	make_uid(uid, tag, ok);
	cs_hex_encode(uid, UIDLEN, hex, sizeof(hex));
	expect(f, run(f, f->admin, "-c", conf, "device", "show", hex, NULL), 0,
	    "PO-FULL");
	cs_hex_encode(refused, UIDLEN, hex, sizeof(hex));
	expect(f, run(f, f->admin, "-c", conf, "device", "show", hex, NULL),
	    1, "no record");
	{
		/* The shift lead's view: exit 5, the same words. */
		char c[700], out[700];

		station_conf(f, "small1", c, sizeof(c));
		snprintf(out, sizeof(out), "%s/full.rec", f->dir);
		expect(f, STATION(f, c, "sign", "--order", "PO-FULL", "--uid",
		    hex, "--out", out), 5, "store is full");
		assert_non_null(strstr(f->out, "disk space under data_dir"));
	}
	expect(f, run(f, f->admin, "-c", conf, "audit", "verify", NULL), 0,
	    "intact");
}

/* After the room grew: the refused UID signs, without a restart. */
static void
check_resumed(struct fx *f, const char *sock, unsigned ok,
    const uint8_t refused[UIDLEN])
{
	station_session     *s = session(f, "small1");
	struct cs_rpc_result res;
	uint8_t              rec[CS_RECORD_MAX_LEN];
	size_t               len;
	int                  rv = CS_EEXHAUSTED;

	/* The committer re-reads the room at most every 100 ms. */
	for (int i = 0; i < 50 && rv == CS_EEXHAUSTED; i++) {
		if ((rv = sign(s, "PO-FULL", refused, rec, &len, &res)) ==
		    CS_EEXHAUSTED) {
			usleep(100000);
		}
	}
	if (rv != CS_OK) {
		fail_msg("no sign after growing: %s (%s)", cs_strerror(rv),
		    res.message);
	}
	station_session_close(s);
	Countersign__V1__OrderReply  *rep;
	Countersign__V1__OrderStatus *o = show_order(sock, "PO-FULL", &rep);
	assert_int_equal(o->issued, ok + 1);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
}

/* A 1 MiB map filled by signing, then raised in the configuration and
 * applied by SIGHUP. */
static void
test_store_full(void **state)
{
	struct fx *f = *state;
	char       conf[700], data[700], sock[700], log[700], line[1024];
	int        main_port = f->port, rv = CS_OK;
	struct cs_rpc_result res;
	uint8_t    refused[UIDLEN];
	unsigned   ok;

	snprintf(conf, sizeof(conf), "%s/small.conf", f->dir);
	snprintf(data, sizeof(data), "%s/small-data", f->dir);
	snprintf(sock, sizeof(sock), "%s/small.sock", f->dir);
	snprintf(log, sizeof(log), "%s/small.log", f->dir);
	small_authority(f, conf, data, sock, log, 1);
	ok = fill(f, 0x77, &rv, &res, refused);
	printf("store full: %u records in a 1 MiB map\n", ok);
	check_full(f, conf, sock, ok, rv, &res, refused, 0x77);
	/* DevOps was warned (checked every second: a store that fills within
	 * one may pass 80 % unseen, never 90 %), and of the reserve. */
	assert_true(tu_wait_for_line(log, "the store is 90% full", line,
	    sizeof(line), 5000));
	assert_true(tu_wait_for_line(log, "into its reserve", line,
	    sizeof(line), 1000));
	/* The map raised in the configuration, applied by SIGHUP. */
	write_conf(f, conf, data, sock, TOKEN, 2);
	kill(f->pid2, SIGHUP);
	assert_true(tu_wait_for_line(log, "reload: map_size_mb 1 -> 2", line,
	    sizeof(line), 10000));
	check_resumed(f, sock, ok, refused);
	assert_int_equal(tu_stop(f->pid2, SIGTERM, 15000), 0);
	f->pid2 = 0;
	f->port = main_port;
	{
		char c[700];

		station_conf(f, "st1", c, sizeof(c)); /* back to the main port */
	}
}

/* A small filesystem (tmpfs) under data_dir filled by signing: "store
 * full" as for a full map; after the filesystem grew (remount), signing
 * resumes without a restart.  Needs mount(8) (root); skipped without. */
static void
test_disk_full(void **state)
{
	struct fx *f = *state;
	char       conf[700], data[700], sock[700], log[700], cmd[2000];
	int        main_port = f->port, rv = CS_OK;
	struct cs_rpc_result res;
	uint8_t    refused[UIDLEN];
	unsigned   ok;
	char      *argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};

	snprintf(f->mnt, sizeof(f->mnt), "%s/tmpfs", f->dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && mount -t tmpfs -o "
	    "size=1m countersign-test %s", f->mnt, f->mnt);
	if (tu_run(argv, f->out, sizeof(f->out)) != 0) {
		printf("disk full: skipped, cannot mount a tmpfs here: %s\n",
		    f->out);
		f->mnt[0] = '\0';
		skip();
	}
	snprintf(conf, sizeof(conf), "%s/disk.conf", f->dir);
	snprintf(data, sizeof(data), "%s/data", f->mnt);
	snprintf(sock, sizeof(sock), "%s/disk.sock", f->dir);
	snprintf(log, sizeof(log), "%s/disk.log", f->dir);
	small_authority(f, conf, data, sock, log, 64);
	ok = fill(f, 0x78, &rv, &res, refused);
	printf("disk full: %u records on a 1 MiB filesystem\n", ok);
	check_full(f, conf, sock, ok, rv, &res, refused, 0x78);
	snprintf(cmd, sizeof(cmd), "mount -o remount,size=8m %s", f->mnt);
	assert_int_equal(tu_run(argv, f->out, sizeof(f->out)), 0);
	check_resumed(f, sock, ok, refused);
	assert_int_equal(tu_stop(f->pid2, SIGTERM, 15000), 0);
	f->pid2 = 0;
	f->port = main_port;
	snprintf(cmd, sizeof(cmd), "umount %s", f->mnt);
	assert_int_equal(tu_run(argv, f->out, sizeof(f->out)), 0);
	f->mnt[0] = '\0';
	{
		char c[700];

		station_conf(f, "st1", c, sizeof(c)); /* back to the main port */
	}
}

/* An order with --firmware: its records bind that image's digest. */
static void
test_firmware_bound(void **state)
{
	struct fx *f = *state;
	char       conf[700], fw[700], rec[700], uid[2 * UIDLEN + 1];
	char       product[16], hex[2 * CS_SHA256_LEN + 1];
	uint8_t    r[256], digest[CS_SHA256_LEN], ub[UIDLEN];
	size_t     len, i;
	const char image[] = "pretend this is a firmware image\n";
	uint8_t    pub[CS_P256_POINT_LEN], kid[CS_KEY_ID_LEN];
	size_t     plen = sizeof(pub);
	cs_alg     alg;
	struct cs_trust_key    tk;
	struct cs_verify_trust trust;

	snprintf(fw, sizeof(fw), "%s/app.bin", f->dir);
	tu_write_file(fw, image);
	assert_int_equal(cs_sha256(image, strlen(image), digest), CS_OK);
	snprintf(product, sizeof(product), "%u", PRODUCT);
	/* A raw binary at 0 on lm3s6965, below its record area: the
	 * firmware digest is the plain SHA-256 of the file. */
	expect(f, ADMIN(f, "order", "create", "--id", "PO-FW", "--product",
	    product, "--key", KEY, "--quota", "3", "--uid-len", "12",
	    "--target", "lm3s6965", "--firmware", fw, "--firmware-format",
	    "bin", "--firmware-base", "0", "--digest-only", "--targets-dir",
	    CS_TARGETS_DIR), 0, NULL);
	station_conf(f, "st1", conf, sizeof(conf));
	snprintf(rec, sizeof(rec), "%s/fw.rec", f->dir);
	uid_hex(uid, 8, 1);
	/* A station that does not say which firmware it programs, or
	 * names another, gets nothing: its devices would refuse to run. */
	expect(f, STATION(f, conf, "sign", "--order", "PO-FW", "--uid", uid,
	    "--out", rec), 6, "must say which firmware");
	cs_hex_encode(digest, sizeof(digest), hex, sizeof(hex));
	hex[0] = hex[0] == '0' ? '1' : '0';
	expect(f, STATION(f, conf, "sign", "--order", "PO-FW", "--uid", uid,
	    "--firmware-sha256", hex, "--out", rec), 6,
	    "is not the one order PO-FW binds");
	check_counts(f, "PO-FW", 0, 3);
	expect(f, STATION(f, conf, "sign", "--order", "PO-FW", "--uid", uid,
	    "--firmware-sha256", "12", "--out", rec), 2, "64 hex digits");
	cs_hex_encode(digest, sizeof(digest), hex, sizeof(hex));
	expect(f, STATION(f, conf, "sign", "--order", "PO-FW", "--uid", uid,
	    "--firmware-sha256", hex, "--out", rec), 0, NULL);
	len = read_file(rec, r, sizeof(r));
	assert_int_equal(len, CS_RECORD_SIZE(UIDLEN, CS_RECORD_FLAG_FIRMWARE));
	for (i = 0; i < UIDLEN; i++) {
		unsigned v;

		sscanf(uid + 2 * i, "%2x", &v);
		ub[i] = (uint8_t)v;
	}
	assert_int_equal(cs_spki_decode(f->spki, f->spki_len, &alg, pub, &plen),
	    CS_OK);
	assert_int_equal(cs_key_id(f->spki, f->spki_len, kid), CS_OK);
	memset(&tk, 0, sizeof(tk));
	tk.alg     = (uint8_t)alg;
	tk.key_id  = kid;
	tk.pub     = pub;
	tk.pub_len = plen;
	memset(&trust, 0, sizeof(trust));
	trust.keys                    = &tk;
	trust.n_keys                  = 1;
	trust.product_id              = PRODUCT;
	trust.firmware_digest         = digest;
	trust.require_firmware_digest = 1;
	assert_true(CS_VERIFY_AUTHORIZED(
	    cs_verify_record(r, len, ub, UIDLEN, &trust, NULL)));
	digest[0] ^= 1; /* another build */
	assert_false(CS_VERIFY_AUTHORIZED(
	    cs_verify_record(r, len, ub, UIDLEN, &trust, NULL)));
}

/* What the station says of the lock is stored, counted and shown. */
static void
test_lock_reports(void **state)
{
	struct fx *f = *state;
	char       conf[700], uid[2 * UIDLEN + 1];
	Countersign__V1__OrderReply  *r;
	Countersign__V1__OrderStatus *o;

	create_order(f, "PO-L", "3", "acme");
	/* A station of its own: a changed report is recorded once per
	 * interval per station, and st1 used its turn in other tests. */
	enroll(f, "stlock", "acme");
	station_conf(f, "stlock", conf, sizeof(conf));
	uid_hex(uid, 9, 1);
	expect(f, STATION(f, conf, "sign", "--order", "PO-L", "--uid", uid,
	    "--out", "/dev/null"), 0, NULL);
	expect(f, STATION(f, conf, "report", "--order", "PO-L", "--uid", uid,
	    "--outcome", "programmed"), 0, "confirmed=1");
	expect(f, ADMIN(f, "device", "show", uid), 0, "lock     not-locked");
	o = show_order(f->sock, "PO-L", &r);
	assert_int_equal(o->unlocked, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* Re-seated and locked this time: no longer counted unlocked. */
	expect(f, STATION(f, conf, "report", "--order", "PO-L", "--uid", uid,
	    "--outcome", "programmed", "--locked"), 0, "confirmed=1");
	expect(f, ADMIN(f, "device", "show", uid), 0, "lock     locked");
	expect(f, ADMIN(f, "--json", "device", "show", uid), 0,
	    "\"lock\":\"locked\"");
	o = show_order(f->sock, "PO-L", &r);
	assert_int_equal(o->unlocked, 0);
	assert_int_equal(o->confirmed, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	expect(f, ADMIN(f, "audit", "list"), 0, "lock=locked");
}

/* Only root and the authority's own user may use the admin socket. */
static void
test_admin_peer_uid(void **state)
{
	struct fx *f = *state;
	char       url[700];
	int        rv;

	if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
		print_message("skipped: needs root and setpriv to connect as "
		    "another user\n");
		skip();
	}
	/* Let another user reach the socket at all; the authority must
	 * then refuse it by its credentials. */
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(chmod(f->sock, 0666), 0);
	snprintf(url, sizeof(url), "ipc://%s", f->sock);
	rv = run(f, "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
	    "--clear-groups", f->admin, "--url", url, "order", "list", NULL);
	assert_int_equal(chmod(f->dir, 0700), 0);
	expect(f, rv, 1, "may not administer");
	expect(f, ADMIN(f, "order", "list"), 0, "PO-1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sign_and_reissue),
	    cmocka_unit_test(test_quota_and_reports),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_expired_order),
	    cmocka_unit_test(test_bad_token),
	    cmocka_unit_test(test_firmware_bound),
	    cmocka_unit_test(test_lock_reports),
	    cmocka_unit_test(test_admin_peer_uid),
	    cmocka_unit_test(test_race_last_50),
	    cmocka_unit_test(test_restart_keeps_state),
	    cmocka_unit_test(test_kill9_during_burst),
	    cmocka_unit_test(test_store_full),
	    cmocka_unit_test(test_disk_full),
	    cmocka_unit_test(test_hsm_key_unavailable),
	    cmocka_unit_test(test_audit_tamper),
	};

	(void)F;
	return tu_run_tests("authority_test", tests, setup, teardown);
}
