/*
 * firmware_test.c - orders that hold their firmware image, end to end: a
 * real SoftHSM token with the firmware key, a real LMDB directory, real
 * TLS on loopback and the real programs (countersign-authority,
 * countersign-admin, countersign-keytool).  Stations fetch the image over
 * their session (GetFirmware) with the station's own session code.
 *
 * One authority serves the cases in order; the tamper case stops it,
 * changes a sealed chunk in the LMDB file and starts it again.
 */
#include "countersign/record.h"
#include "countersign/v1/admin.pb-c.h"
#include "countersign/v1/authority.pb-c.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_image.h"
#include "cs_rpc.h"
#include "cs_target.h"
#include "station_fixture.h"
#include "station_session.h"
#include "test_util.h"

#include <lmdb.h>

#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define TOKEN   "authority"
#define PIN     "123456"
#define KEY     "oem-p256"
#define FWKEY   "fw-key"
#define TARGET  "lm3s6965"
#define CHUNK   32768u
/* 3 full chunks and a short one, below lm3s6965's record area. */
#define IMG_LEN (3u * CHUNK + 4000u)

struct fx {
	char   *dir;
	char    authority[512], admin[512], station[512], keytool[512];
	char    conf[600], log[600], sock[600], data[600], img[600];
	char    out[16384];
	pid_t   pid;
	int     port;
	int     restarts;
	uint8_t image[IMG_LEN];
};

static const char *const target_dirs[] = {CS_TARGETS_DIR, NULL};

#define run(f, ...) tu_runl((f)->out, sizeof((f)->out), __VA_ARGS__)
#define ADMIN(f, ...) run(f, (f)->admin, "-c", (f)->conf, __VA_ARGS__, NULL)
#define expect(f, got, want, needle)                                         \
	tu_expect((f)->out, (got), (want), (needle))

static void
write_conf(struct fx *f)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "[authority]\n"
	    "id = test-authority\n"
	    "data_dir = %s\n"
	    "station_listen = tls+tcp://127.0.0.1:0\n"
	    "admin_listen = ipc://%s\n"
	    "map_size_mb = 64\n"
	    "[tls]\n"
	    "cert = %s/server.pem\n"
	    "key = %s/server.key\n"
	    "station_ca = %s/station-ca.pem\n"
	    "[hsm]\n"
	    "module = " CS_SOFTHSM_MODULE "\n"
	    "token = " TOKEN "\n"
	    "pin_file = %s/pin\n"
	    "sessions = 2\n"
	    "firmware_key = " FWKEY "\n"
	    "[firmware]\n"
	    "targets_dir = " CS_TARGETS_DIR "\n",
	    f->data, f->sock, f->dir, f->dir, f->dir, f->dir);
	tu_write_file(f->conf, text);
}

static void
start(struct fx *f)
{
	char  log[700];
	char *argv[] = {f->authority, (char *)"-c", f->conf, NULL};

	snprintf(log, sizeof(log), "%s.%d", f->log, f->restarts++);
	f->pid  = tu_spawn(argv, log);
	f->port = tu_wait_port(log, "tls");
}

static void
write_bytes(const char *path, const uint8_t *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

/* A raw binary at 0 of n pseudo-random bytes (seeded), none 0xFF-filled
 * runs, so that a window of it cannot appear by chance. */
static void
make_image(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void
enroll(struct fx *f, const char *name, const char *cm)
{
	char conf[700], csr[700], cert[700], text[2048];

	snprintf(conf, sizeof(conf), "%s/%s.conf", f->dir, name);
	snprintf(text, sizeof(text),
	    "[station]\nname = %s\nauthority_url = tls+tcp://127.0.0.1:%d\n"
	    "authority_id = test-authority\nca = %s/ca.pem\n"
	    "cert = %s/%s.pem\nkey = %s/%s.key\n",
	    name, f->port, f->dir, f->dir, name, f->dir, name);
	tu_write_file(conf, text);
	expect(f, run(f, f->station, "-c", conf, "init", NULL), 0, ".csr");
	snprintf(csr, sizeof(csr), "%s/%s.csr", f->dir, name);
	snprintf(cert, sizeof(cert), "%s/%s.pem", f->dir, name);
	expect(f, ADMIN(f, "station", "enroll", "--csr", csr, "--name", name,
	    "--cm", cm, "-o", cert), 0, name);
}

/* order create with a held image of f->img (bin at 0). */
static int
create_held(struct fx *f, const char *id, const char *img)
{
	return ADMIN(f, "order", "create", "--id", id, "--product", "7",
	    "--key", KEY, "--quota", "10", "--uid-len", "8", "--cm", "acme",
	    "--target", TARGET, "--firmware", img, "--firmware-format", "bin",
	    "--firmware-base", "0", "--targets-dir", CS_TARGETS_DIR);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char       pin[700];

	assert_non_null(f);
	*state = f;
	f->dir = tu_tmpdir();
	tu_programs(f->authority, f->admin, f->station, f->keytool,
	    sizeof(f->authority));
	tu_make_pki(f->dir);
	tu_make_token(f->dir, TOKEN, PIN);
	snprintf(f->conf, sizeof(f->conf), "%s/authority.conf", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/authority.log", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/admin.sock", f->dir);
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	snprintf(f->img, sizeof(f->img), "%s/app.bin", f->dir);
	write_conf(f);
	make_image(f->image, sizeof(f->image), 42);
	write_bytes(f->img, f->image, sizeof(f->image));

	setenv("COUNTERSIGN_HSM_MODULE", CS_SOFTHSM_MODULE, 1);
	setenv("COUNTERSIGN_HSM_TOKEN", TOKEN, 1);
	snprintf(pin, sizeof(pin), "%s/pin", f->dir);
	setenv("COUNTERSIGN_HSM_PIN_FILE", pin, 1);
	expect(f, run(f, f->keytool, "keygen", "--label", KEY, NULL), 0, NULL);
	expect(f, run(f, f->keytool, "keygen", "--label", FWKEY, "--alg",
	    "aes256", NULL), 0, "never extractable");
	expect(f, ADMIN(f, "ca", "init"), 0, "station-ca.pem");
	start(f);
	expect(f, ADMIN(f, "key", "add", "--label", KEY), 0, KEY);
	enroll(f, "st1", "acme");
	enroll(f, "other1", "othercm");
	expect(f, create_held(f, "PO-HELD", f->img), 0, "held, version 1");
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f == NULL) {
		return 0;
	}
	if (f->pid > 0) {
		tu_stop(f->pid, SIGTERM, 15000);
	}
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* One GetFirmware call; *out (may be NULL) freed by the caller. */
static int
get_fw(station_session *s, const char *order, uint64_t offset,
    uint32_t version, Countersign__V1__GetFirmwareResponse **out,
    struct cs_rpc_result *res)
{
	Countersign__V1__GetFirmwareRequest in =
	    COUNTERSIGN__V1__GET_FIRMWARE_REQUEST__INIT;
	Countersign__V1__GetFirmwareResponse *r = NULL;
	int                                   rv;

	in.order_id = (char *)order;
	in.offset   = offset;
	in.version  = version;
	rv = station_session_call(s, "GetFirmware", &in.base,
	    (ProtobufCMessage **)&r, res);
	if (out != NULL) {
		*out = r;
	} else if (r != NULL) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	return rv;
}

/* Fetch the whole image; returns it (malloc'ed) with base, size, version
 * and the digest the authority sent. */
static uint8_t *
fetch_all(station_session *s, const char *order, uint32_t *base,
    size_t *size, uint32_t *version, uint8_t digest[32])
{
	Countersign__V1__GetFirmwareResponse *r = NULL;
	struct cs_rpc_result                  res;
	uint8_t                              *buf = NULL;
	uint64_t                              off = 0;

	do {
		int rv = get_fw(s, order, off, off == 0 ? 0 : *version, &r,
		    &res);
		if (rv != CS_OK) {
			fprintf(stderr, "GetFirmware %llu: %s\n",
			    (unsigned long long)off, res.message);
		}
		assert_int_equal(rv, CS_OK);
		if (off == 0) {
			*base    = r->base_addr;
			*size    = r->size;
			*version = r->version;
			assert_int_equal(r->firmware_sha256.len, 32);
			memcpy(digest, r->firmware_sha256.data, 32);
			assert_string_equal(r->target, TARGET);
			buf = malloc(r->size);
			assert_non_null(buf);
		}
		assert_int_equal(r->offset, off);
		assert_int_equal(r->version, *version);
		assert_true(r->data.len > 0 && r->data.len <= CHUNK);
		assert_true(off + r->data.len <= *size);
		memcpy(buf + off, r->data.data, r->data.len);
		off += r->data.len;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} while (off < *size);
	return buf;
}

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

/* The order's digest as the authority shows it. */
static void
order_digest(struct fx *f, const char *id, uint8_t digest[32])
{
	cs_rpc_client                    *c  = admin_client(f->sock);
	Countersign__V1__ShowOrderRequest in =
	    COUNTERSIGN__V1__SHOW_ORDER_REQUEST__INIT;
	Countersign__V1__OrderReply      *r  = NULL;
	struct cs_rpc_result              res;

	in.order_id = (char *)id;
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "ShowOrder", &in.base, (ProtobufCMessage **)&r, &res), CS_OK);
	assert_int_equal(r->order->firmware_sha256.len, 32);
	memcpy(digest, r->order->firmware_sha256.data, 32);
	assert_true(r->order->firmware_held);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	cs_rpc_client_close(c);
}

/* ------------------------------------------------------------------ */

/* Fetch every chunk; the reassembled image is the one given, and its
 * digest is the order's. */
static void
test_fetch_all(void **state)
{
	struct fx       *f = *state;
	station_session *s = tf_session(f->dir, f->port, "st1");
	struct target    t;
	struct image     img;
	uint8_t          want[32], sent[32], got[32], *flat;
	uint32_t         base = 1, version = 0;
	size_t           size = 0;
	char             err[512];

	flat = fetch_all(s, "PO-HELD", &base, &size, &version, sent);
	assert_int_equal(base, 0);
	assert_int_equal(size, IMG_LEN);
	assert_int_equal(version, 1);
	assert_memory_equal(flat, f->image, IMG_LEN);

	assert_int_equal(target_load(&t, TARGET, target_dirs, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(image_from_flat(&img, &t, base, flat, size, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(image_digest(&img, &t, got), CS_OK);
	image_free(&img);
	order_digest(f, "PO-HELD", want);
	assert_memory_equal(got, want, 32);
	assert_memory_equal(sent, want, 32);
	/* Here the image lies below the record area: the plain SHA-256. */
	assert_int_equal(cs_sha256(f->image, IMG_LEN, got), CS_OK);
	assert_memory_equal(got, want, 32);
	free(flat);
	station_session_close(s);

	/* Each start is audited. */
	expect(f, ADMIN(f, "audit", "export", "--format", "jsonl"), 0,
	    "\"firmware.fetch\"");
	expect(f, ADMIN(f, "--json", "order", "show", "PO-HELD"), 0,
	    "\"firmware_held\":true");
	expect(f, ADMIN(f, "order", "show", "PO-HELD"), 0,
	    "target      lm3s6965");
}

/* Offsets, another CM, a fetch not started on this connection. */
static void
test_fetch_refusals(void **state)
{
	struct fx           *f = *state;
	station_session     *s = tf_session(f->dir, f->port, "st1"), *o;
	struct cs_rpc_result res;

	/* A later chunk first: not started on this connection. */
	assert_int_equal(get_fw(s, "PO-HELD", CHUNK, 1, NULL, &res),
	    CS_EPRECOND);
	assert_non_null(strstr(res.message, "offset 0"));
	assert_int_equal(get_fw(s, "PO-HELD", 0, 0, NULL, &res), CS_OK);
	assert_int_equal(get_fw(s, "PO-HELD", CHUNK, 1, NULL, &res), CS_OK);
	assert_int_equal(get_fw(s, "PO-HELD", 100, 1, NULL, &res), CS_EINVAL);
	assert_int_equal(res.status, CS_STATUS_INVALID_ARGUMENT);
	assert_int_equal(get_fw(s, "PO-HELD", 4 * CHUNK, 1, NULL, &res),
	    CS_EINVAL);
	assert_int_equal(get_fw(s, "PO-HELD", 0, 7, NULL, &res), CS_EPRECOND);
	assert_non_null(strstr(res.message, "replaced (now version 1)"));
	assert_int_equal(get_fw(s, "NO-SUCH", 0, 0, NULL, &res), CS_ENOENT);
	assert_int_equal(get_fw(s, "bad id", 0, 0, NULL, &res), CS_EINVAL);
	station_session_close(s);

	/* A station of another CM: refused and audited. */
	o = tf_session(f->dir, f->port, "other1");
	assert_int_equal(get_fw(o, "PO-HELD", 0, 0, NULL, &res), CS_EPERM);
	assert_int_equal(res.status, CS_STATUS_PERMISSION_DENIED);
	station_session_close(o);
	expect(f, ADMIN(f, "audit", "export", "--format", "jsonl"), 0,
	    "\"firmware.refused\"");
	expect(f, ADMIN(f, "audit", "verify"), 0, "intact");
}

/* No 64-byte window of the plaintext is anywhere in the store's file:
 * every such window contains a 32-byte block at a multiple of 32, so
 * looking for those blocks is enough (and stronger). */
static void
test_no_plaintext_at_rest(void **state)
{
	struct fx *f = *state;
	char       path[700];
	uint8_t   *db;
	FILE      *fp;
	long       n;

	snprintf(path, sizeof(path), "%s/data.mdb", f->data);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n > (long)IMG_LEN);
	rewind(fp);
	db = malloc((size_t)n);
	assert_non_null(db);
	assert_int_equal(fread(db, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	for (size_t off = 0; off + 32 <= IMG_LEN; off += 32) {
		if (memmem(db, (size_t)n, f->image + off, 32) != NULL) {
			fprintf(stderr, "plaintext at image offset %zu found "
			    "in data.mdb\n", off);
			fail();
		}
	}
	/* The test can see plaintext where there is some. */
	assert_non_null(memmem(db, (size_t)n, "PO-HELD", 7));
	free(db);
}

/* Replace makes version 2 (the old one refused), withdraw stops it. */
static void
test_replace_withdraw(void **state)
{
	struct fx           *f = *state;
	station_session     *s;
	struct cs_rpc_result res;
	uint8_t              img2[5000], sent[32], *flat;
	uint32_t             base = 0, version = 0;
	size_t               size = 0;
	char                 path[700];

	expect(f, create_held(f, "PO-R", f->img), 0, "held, version 1");
	make_image(img2, sizeof(img2), 7);
	snprintf(path, sizeof(path), "%s/app2.bin", f->dir);
	write_bytes(path, img2, sizeof(img2));
	s = tf_session(f->dir, f->port, "st1");
	assert_int_equal(get_fw(s, "PO-R", 0, 0, NULL, &res), CS_OK);

	expect(f, ADMIN(f, "order", "firmware", "PO-R", "--replace", path,
	    "--firmware-format", "bin", "--firmware-base", "0",
	    "--targets-dir", CS_TARGETS_DIR), 0, "held, version 2");
	/* The fetch of version 1 cannot go on. */
	assert_int_equal(get_fw(s, "PO-R", CHUNK, 1, NULL, &res), CS_EPRECOND);
	assert_non_null(strstr(res.message, "replaced (now version 2): fetch "
	    "it again"));
	flat = fetch_all(s, "PO-R", &base, &size, &version, sent);
	assert_int_equal(version, 2);
	assert_int_equal(size, sizeof(img2));
	assert_memory_equal(flat, img2, sizeof(img2));
	free(flat);
	expect(f, ADMIN(f, "audit", "export", "--format", "jsonl"), 0,
	    "\"firmware.replaced\"");

	expect(f, ADMIN(f, "order", "firmware", "PO-R", "--withdraw"), 0,
	    "withdrawn (version 2)");
	assert_int_equal(get_fw(s, "PO-R", 0, 0, NULL, &res), CS_EPRECOND);
	assert_int_equal(res.status, CS_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(res.message, "withdrawn by the officer"));
	expect(f, ADMIN(f, "order", "firmware", "PO-R", "--withdraw"), 1,
	    "already withdrawn");
	expect(f, ADMIN(f, "--json", "order", "show", "PO-R"), 0,
	    "\"firmware_withdrawn\":true");
	expect(f, ADMIN(f, "audit", "export", "--format", "jsonl"), 0,
	    "\"firmware.withdrawn\"");
	/* A new image brings the order back. */
	expect(f, ADMIN(f, "order", "firmware", "PO-R", "--replace", path,
	    "--firmware-format", "bin", "--firmware-base", "0",
	    "--targets-dir", CS_TARGETS_DIR), 0, "held, version 3");
	assert_int_equal(get_fw(s, "PO-R", 0, 3, NULL, &res), CS_OK);
	station_session_close(s);
	expect(f, ADMIN(f, "order", "firmware", "PO-R"), 2, "--withdraw");
	expect(f, ADMIN(f, "audit", "verify"), 0, "intact");
}

/* Events of type by actor in the whole audit log (ListAudit). */
static int
audit_count(struct fx *f, const char *actor, const char *type)
{
	cs_rpc_client                   *c = admin_client(f->sock);
	Countersign__V1__ListAuditRequest in =
	    COUNTERSIGN__V1__LIST_AUDIT_REQUEST__INIT;
	Countersign__V1__ListAuditReply *r = NULL;
	struct cs_rpc_result             res;
	uint64_t                         since = 0;
	int                              n = 0;
	size_t                           k;

	do {
		in.since_seq = since;
		in.limit     = 500;
		assert_int_equal(cs_rpc_call(c,
		    &countersign__v1__admin__descriptor, "ListAudit", &in.base,
		    (ProtobufCMessage **)&r, &res), CS_OK);
		for (k = 0; k < r->n_events; k++) {
			const Countersign__V1__AuditEvent *e = r->events[k];

			if (strcmp(e->actor, actor) == 0 &&
			    strcmp(e->type, type) == 0) {
				n++;
			}
			since = e->seq;
		}
		k = r->n_events;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} while (k > 0);
	cs_rpc_client_close(c);
	return n;
}

/*
 * One start serves the image once, in order; a station's starts are
 * budgeted, each one audited, and the budget is the station's own.
 */
static void
test_fetch_order_and_budget(void **state)
{
	struct fx           *f = *state;
	station_session     *s, *s2;
	struct cs_rpc_result res;
	char                 n[32];
	int                  i, rv = CS_OK;

	enroll(f, "burst", "acme");
	s = tf_session(f->dir, f->port, "burst");
	assert_int_equal(get_fw(s, "PO-HELD", 0, 0, NULL, &res), CS_OK);
	assert_int_equal(get_fw(s, "PO-HELD", CHUNK, 1, NULL, &res), CS_OK);
	/* The same chunk again, or going back: start over. */
	assert_int_equal(get_fw(s, "PO-HELD", CHUNK, 1, NULL, &res),
	    CS_EPRECOND);
	assert_non_null(strstr(res.message, "each chunk once, in order"));
	assert_int_equal(get_fw(s, "PO-HELD", 0, 1, NULL, &res), CS_OK);
	/* 16 starts at once (two used above), then refused. */
	for (i = 2; i < 16; i++) {
		assert_int_equal(get_fw(s, "PO-HELD", 0, 0, NULL, &res), CS_OK);
	}
	rv = get_fw(s, "PO-HELD", 0, 0, NULL, &res);
	assert_int_equal(rv, CS_EUNAVAIL);
	assert_non_null(strstr(res.message, "more than 16 fetches"));
	/* Another station of the same CM is not held back. */
	s2 = tf_session(f->dir, f->port, "st1");
	assert_int_equal(get_fw(s2, "PO-HELD", 0, 0, NULL, &res), CS_OK);
	station_session_close(s2);
	station_session_close(s);
	/* Each admitted start is in the log, by name. */
	snprintf(n, sizeof(n), "station:burst");
	assert_int_equal(audit_count(f, n, "firmware.fetch"), 16);
}

/* Sign with a firmware digest; the record (may be NULL) and serial. */
static int
sign_fw(station_session *s, const char *order, const uint8_t uid[8],
    const uint8_t digest[32], uint8_t *rec, size_t *rec_len,
    uint64_t *serial, bool *reissued, struct cs_rpc_result *res)
{
	Countersign__V1__SignRequest   in = COUNTERSIGN__V1__SIGN_REQUEST__INIT;
	Countersign__V1__SignResponse *out = NULL;
	int                            rv;

	in.order_id             = (char *)order;
	in.uid.data             = (uint8_t *)uid;
	in.uid.len              = 8;
	in.firmware_sha256.data = (uint8_t *)digest;
	in.firmware_sha256.len  = 32;
	rv = station_session_call(s, "Sign", &in.base,
	    (ProtobufCMessage **)&out, res);
	if (rv == CS_OK) {
		assert_true(out->record.len <= CS_RECORD_MAX_LEN);
		if (rec != NULL) {
			memcpy(rec, out->record.data, out->record.len);
			*rec_len = out->record.len;
		}
		*serial   = out->serial;
		*reissued = out->reissued;
		protobuf_c_message_free_unpacked(&out->base, NULL);
	}
	return rv;
}

static uint64_t
issued_of(struct fx *f, const char *id)
{
	cs_rpc_client                    *c  = admin_client(f->sock);
	Countersign__V1__ShowOrderRequest in =
	    COUNTERSIGN__V1__SHOW_ORDER_REQUEST__INIT;
	Countersign__V1__OrderReply      *r  = NULL;
	struct cs_rpc_result              res;
	uint64_t                          n;

	in.order_id = (char *)id;
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "ShowOrder", &in.base, (ProtobufCMessage **)&r, &res), CS_OK);
	n = r->order->issued;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	cs_rpc_client_close(c);
	return n;
}

/*
 * Records follow the order's image: a device signed for version 1 and
 * asked for again once version 2 replaced it gets a record binding
 * version 2 (same serial, no quota; device.resigned); the old digest is
 * refused; a withdrawn image stops Sign.
 */
static void
test_sign_follows_image(void **state)
{
	struct fx           *f = *state;
	station_session     *s;
	struct cs_rpc_result res;
	uint8_t              img2[6000], d1[32], d2[32], rec[CS_RECORD_MAX_LEN];
	uint8_t              rec2[CS_RECORD_MAX_LEN];
	const uint8_t        u1[8] = {0x51, 1, 2, 3, 4, 5, 6, 7};
	const uint8_t        u2[8] = {0x52, 1, 2, 3, 4, 5, 6, 7};
	size_t               len = 0, len2 = 0;
	uint64_t             serial = 0, serial2 = 0;
	bool                 again = false;
	char                 path[700];

	expect(f, create_held(f, "PO-S", f->img), 0, "held, version 1");
	order_digest(f, "PO-S", d1);
	s = tf_session(f->dir, f->port, "st1");
	assert_int_equal(sign_fw(s, "PO-S", u1, d1, rec, &len, &serial, &again,
	    &res), CS_OK);
	assert_false(again);
	assert_int_equal(issued_of(f, "PO-S"), 1);
	assert_memory_equal(rec + CS_RECORD_OFF_UID + 8, d1, 32);

	make_image(img2, sizeof(img2), 99);
	snprintf(path, sizeof(path), "%s/app3.bin", f->dir);
	write_bytes(path, img2, sizeof(img2));
	expect(f, ADMIN(f, "order", "firmware", "PO-S", "--replace", path,
	    "--firmware-format", "bin", "--firmware-base", "0",
	    "--targets-dir", CS_TARGETS_DIR), 0, "held, version 2");
	order_digest(f, "PO-S", d2);
	assert_memory_not_equal(d1, d2, 32);
	/* The old image: refused, nothing signed. */
	assert_int_equal(sign_fw(s, "PO-S", u1, d1, NULL, NULL, &serial2,
	    &again, &res), CS_EPRECOND);
	assert_non_null(strstr(res.message, "is not the one order PO-S binds"));
	/* The new one: a record binding it, the same serial, no quota. */
	assert_int_equal(sign_fw(s, "PO-S", u1, d2, rec2, &len2, &serial2,
	    &again, &res), CS_OK);
	assert_int_equal(serial2, serial);
	assert_false(again);
	assert_int_equal(len2, len);
	assert_memory_equal(rec2 + CS_RECORD_OFF_UID + 8, d2, 32);
	assert_int_equal(issued_of(f, "PO-S"), 1);
	/* Asked again: the same new record. */
	assert_int_equal(sign_fw(s, "PO-S", u1, d2, rec, &len, &serial,
	    &again, &res), CS_OK);
	assert_true(again);
	assert_memory_equal(rec, rec2, len2);
	expect(f, ADMIN(f, "audit", "export", "--format", "jsonl"), 0,
	    "\"device.resigned\"");

	/* Withdrawn: no new device, whatever digest it names. */
	expect(f, ADMIN(f, "order", "firmware", "PO-S", "--withdraw"), 0,
	    "withdrawn");
	assert_int_equal(sign_fw(s, "PO-S", u2, d2, NULL, NULL, &serial,
	    &again, &res), CS_EPRECOND);
	assert_non_null(strstr(res.message, "withdrew the firmware"));
	assert_int_equal(issued_of(f, "PO-S"), 1);
	station_session_close(s);
}

/* What order creation refuses, with the messages an officer sees. */
static void
test_create_refusals(void **state)
{
	struct fx *f = *state;
	char       path[700];
	uint8_t    rec[64];

	expect(f, ADMIN(f, "order", "create", "--id", "PO-X", "--product",
	    "7", "--key", KEY, "--quota", "1", "--uid-len", "8",
	    "--firmware", f->img, "--firmware-format", "bin",
	    "--firmware-base", "0"), 2, "--firmware needs --target");
	expect(f, ADMIN(f, "order", "create", "--id", "PO-X", "--product",
	    "7", "--key", KEY, "--quota", "1", "--uid-len", "8",
	    "--require-lock"), 2, "--require-lock needs --target");
	/* A held image names the CMs that may fetch it. */
	expect(f, ADMIN(f, "order", "create", "--id", "PO-X", "--product",
	    "7", "--key", KEY, "--quota", "1", "--uid-len", "8", "--target",
	    TARGET, "--firmware", f->img, "--firmware-format", "bin",
	    "--firmware-base", "0", "--targets-dir", CS_TARGETS_DIR), 1,
	    "must name the CMs whose stations may fetch it");
	expect(f, ADMIN(f, "order", "create", "--id", "PO-X", "--product",
	    "7", "--key", KEY, "--quota", "1", "--uid-len", "8", "--target",
	    TARGET, "--require-lock", "--targets-dir", CS_TARGETS_DIR), 1,
	    "target lm3s6965 cannot be locked (its profile has no [protect] "
	    "section): an order on it cannot require the lock");
	/* An image in the record area. */
	make_image(rec, sizeof(rec), 3);
	snprintf(path, sizeof(path), "%s/rec.bin", f->dir);
	write_bytes(path, rec, sizeof(rec));
	expect(f, ADMIN(f, "order", "create", "--id", "PO-X", "--product",
	    "7", "--key", KEY, "--quota", "1", "--uid-len", "8", "--target",
	    TARGET, "--firmware", path, "--firmware-format", "bin",
	    "--firmware-base", "0x3F000", "--targets-dir", CS_TARGETS_DIR), 1,
	    "record");
	expect(f, ADMIN(f, "order", "create", "--id", "PO-X", "--product",
	    "7", "--key", KEY, "--quota", "1", "--uid-len", "8", "--target",
	    "no-such-part", "--targets-dir", CS_TARGETS_DIR), 1, "lm3s6965");
	/* Digest only: bound, not held. */
	expect(f, ADMIN(f, "order", "create", "--id", "PO-D", "--product",
	    "7", "--key", KEY, "--quota", "1", "--uid-len", "8", "--target",
	    TARGET, "--firmware", f->img, "--firmware-format", "bin",
	    "--firmware-base", "0", "--digest-only", "--targets-dir",
	    CS_TARGETS_DIR), 0, "not held (digest only)");
	expect(f, ADMIN(f, "order", "list"), 0, "PO-D");
	assert_null(strstr(f->out, "PO-X"));
}

/* The daemon checks for itself what the CLI checked (a script may call
 * the Admin API directly). */
static void
test_create_refusals_rpc(void **state)
{
	struct fx                          *f = *state;
	cs_rpc_client                      *c = admin_client(f->sock);
	Countersign__V1__CreateOrderRequest in =
	    COUNTERSIGN__V1__CREATE_ORDER_REQUEST__INIT;
	Countersign__V1__FirmwareSegment    seg =
	    COUNTERSIGN__V1__FIRMWARE_SEGMENT__INIT;
	Countersign__V1__FirmwareSegment   *segp = &seg;
	Countersign__V1__OrderReply        *r    = NULL;
	struct cs_rpc_result                res;
	uint8_t                             bad[32];
	char                               *cms[] = {(char *)"acme"};

	in.order_id  = (char *)"PO-RPC";
	in.cms       = cms;
	in.n_cms     = 1;
	in.product_id = 7;
	in.key_label = (char *)KEY;
	in.quota     = 1;
	in.uid_len   = 8;
	in.target    = (char *)TARGET;
	in.require_lock = true;
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "CreateOrder", &in.base, (ProtobufCMessage **)&r, &res),
	    CS_EINVAL);
	assert_non_null(strstr(res.message, "cannot be locked"));
	in.require_lock = false;
	in.target       = (char *)"../../etc/passwd";
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "CreateOrder", &in.base, (ProtobufCMessage **)&r, &res),
	    CS_EINVAL);
	assert_non_null(strstr(res.message, "not a path"));
	/* Segments in the record area; then a digest that disagrees. */
	in.target                = (char *)TARGET;
	seg.addr                 = 0x3F000;
	seg.data.data            = f->image;
	seg.data.len             = 16;
	in.firmware_segments     = &segp;
	in.n_firmware_segments   = 1;
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "CreateOrder", &in.base, (ProtobufCMessage **)&r, &res),
	    CS_EINVAL);
	assert_non_null(strstr(res.message, "record"));
	seg.addr = 0;
	memset(bad, 0x11, sizeof(bad));
	in.firmware_sha256.data = bad;
	in.firmware_sha256.len  = sizeof(bad);
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "CreateOrder", &in.base, (ProtobufCMessage **)&r, &res),
	    CS_EINVAL);
	assert_non_null(strstr(res.message, "not the firmware_sha256 given"));
	in.target = (char *)"";
	in.firmware_sha256.len = 0;
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "CreateOrder", &in.base, (ProtobufCMessage **)&r, &res),
	    CS_EINVAL);
	assert_non_null(strstr(res.message, "needs a target"));
	cs_rpc_client_close(c);
	expect(f, ADMIN(f, "order", "list"), 0, "PO-HELD");
	assert_null(strstr(f->out, "PO-RPC"));
}

/* A sealed chunk changed in the store fails its tag: an error, never
 * the changed bytes. */
static void
test_tampered_chunk(void **state)
{
	struct fx           *f = *state;
	station_session     *s;
	struct cs_rpc_result res;
	MDB_env             *env;
	MDB_txn             *txn;
	MDB_dbi              dbi;
	MDB_cursor          *cur;
	MDB_val              k, v;
	uint8_t             *copy;
	int                  changed = 0;

	assert_int_equal(tu_stop(f->pid, SIGTERM, 15000), 0);
	f->pid = 0;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 64u << 20), 0);
	assert_int_equal(mdb_env_open(env, f->data, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "fwchunks", 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
	/* Chunk 1 of PO-HELD version 1: flip one ciphertext bit. */
	while (mdb_cursor_get(cur, &k, &v, changed ? MDB_NEXT : MDB_FIRST) ==
	    0) {
		static const uint8_t want[] = {'P', 'O', '-', 'H', 'E', 'L',
		    'D', 0, 0, 0, 0, 1, 0, 0, 0, 1};
		changed = 1;
		if (k.mv_size == sizeof(want) &&
		    memcmp(k.mv_data, want, sizeof(want)) == 0) {
			copy = malloc(v.mv_size);
			assert_non_null(copy);
			memcpy(copy, v.mv_data, v.mv_size);
			copy[100] ^= 0x01;
			v.mv_data = copy;
			assert_int_equal(mdb_cursor_put(cur, &k, &v,
			    MDB_CURRENT), 0);
			free(copy);
			changed = 2;
			break;
		}
	}
	assert_int_equal(changed, 2);
	mdb_cursor_close(cur);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	start(f);

	s = tf_session(f->dir, f->port, "st1");
	assert_int_equal(get_fw(s, "PO-HELD", 0, 0, NULL, &res), CS_OK);
	assert_int_equal(get_fw(s, "PO-HELD", CHUNK, 1, NULL, &res),
	    CS_EINTERNAL);
	assert_int_equal(res.status, CS_STATUS_INTERNAL);
	assert_non_null(strstr(res.message, "integrity"));
	/* The others are fine. */
	assert_int_equal(get_fw(s, "PO-HELD", 2 * CHUNK, 1, NULL, &res),
	    CS_OK);
	station_session_close(s);
	/* A clean stop (under the sanitizers: no leak on those paths). */
	assert_int_equal(tu_stop(f->pid, SIGTERM, 15000), 0);
	f->pid = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fetch_all),
	    cmocka_unit_test(test_fetch_refusals),
	    cmocka_unit_test(test_no_plaintext_at_rest),
	    cmocka_unit_test(test_replace_withdraw),
	    cmocka_unit_test(test_sign_follows_image),
	    cmocka_unit_test(test_fetch_order_and_budget),
	    cmocka_unit_test(test_create_refusals),
	    cmocka_unit_test(test_create_refusals_rpc),
	    cmocka_unit_test(test_tampered_chunk),
	};

	return tu_run_tests("firmware_test", tests, setup, teardown);
}
