/*
 * job_sim_test.c - the station's job runner (station/job.c) against a
 * real authority (SoftHSM token, LMDB, TLS on loopback, the real
 * programs) and simulated devices ("sim:" probes, station/probe_sim.c).
 *
 * job_run() runs in this process on one authenticated station session;
 * its events go to a memory stream as JSON lines, which the tests parse.
 * The sims' boot check runs the real target verifier against the public
 * key the authority signs with (trust=), so "programmed" here means what
 * it means on a device: the record verified for that UID and product.
 * Every case reads the order's counters back from the authority (Admin
 * ShowOrder) and the sims' flash back through the probe layer.
 *
 * One authority serves every case; each case uses its own order(s) and
 * its own UIDs (all orders share the sims' product, and a UID signed in
 * one order is a clone in another).
 */
#include "countersign/record.h"
#include "countersign/v1/admin.pb-c.h"
#include "countersign/v1/authority.pb-c.h"
#include "countersign/verify.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "dap_sim.h"
#include "probe_cmsis.h"
#include "cs_rpc.h"
#include "cs_image.h"
#include "job.h"
#include "order_fw.h"
#include "probe.h"
#include "probe_sim.h"
#include "station_config.h"
#include "station_fixture.h"
#include "station_session.h"
#include "cs_target.h"
#include "test_util.h"

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <malloc.h>
#include <pthread.h>

#define TOKEN    "jobsim"
#define PIN      "123456"
#define KEY      "oem-p256"
#define KEY2     "oem-other"
#define FWKEY    "fw-key"   /* the AES key that seals held images */
#define PRODUCT  "4660" /* 0x1234: the sims' default product= */
#define UIDLEN   8u     /* the sims' UID and the lm3s6965 profile's */
#define IMG_LEN  3000u  /* three 1 KiB pages, the last one partly */
#define REC_ADDR 0x3F000u
#define FLASH_SZ 0x40000u

struct fx {
	char            *dir;
	char             authority[512], admin[512], station[512], keytool[512];
	char             conf[600], log[600], sock[600], data[600];
	char             trust[600], trust2[600]; /* SPKI DER: ours, another */
	char             out[16384];
	pid_t            pid;
	int              port;
	uint8_t          spki[CS_SPKI_MAX];
	size_t           spki_len;
	uint8_t          img_bytes[IMG_LEN];
	struct image     img;
	struct target    tgt;
	struct target    tgt_lock; /* lm3s6965-locked: can lock */
	char             app[600], app2[600]; /* the image, another one */
	uint8_t          dig[32], dig2[32];   /* their firmware digests */
	station_session *session;
};

/* ------------------------------------------------------------------ */
/* Programs and the authority                                          */
/* ------------------------------------------------------------------ */

/* Run a program (NULL-terminated arguments); output in f->out. */
#define run(f, ...) tu_runl((f)->out, sizeof((f)->out), __VA_ARGS__)

#define ADMIN(f, ...) run(f, (f)->admin, "-c", (f)->conf, __VA_ARGS__, NULL)
#define STATION(f, conf, ...)                                                 \
	run(f, (f)->station, "-c", conf, __VA_ARGS__, NULL)

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
	    "station_listen = tls+tcp://127.0.0.1:%d\n"
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
	    "sessions = 4\n"
	    "firmware_key = " FWKEY "\n"
	    "[firmware]\n"
	    "targets_dir = " CS_TARGETS_DIR "\n",
	    f->data, f->port, f->sock, f->dir, f->dir, f->dir, f->dir);
	tu_write_file(f->conf, text);
}

static void
start_authority(struct fx *f)
{
	char *argv[] = {f->authority, (char *)"-c", f->conf, NULL};

	unlink(f->log);
	f->pid  = tu_spawn(argv, f->log);
	f->port = tu_wait_port(f->log, "tls");
}

/* station init, then enrollment by the officer. */
static void
enroll(struct fx *f, const char *name, const char *cm)
{
	char conf[700], csr[700], cert[700], text[2048];

	snprintf(conf, sizeof(conf), "%s/%s.conf", f->dir, name);
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
	tu_write_file(conf, text);
	expect(f, STATION(f, conf, "init"), 0, ".csr");
	snprintf(csr, sizeof(csr), "%s/%s.csr", f->dir, name);
	snprintf(cert, sizeof(cert), "%s/%s.pem", f->dir, name);
	expect(f, ADMIN(f, "station", "enroll", "--csr", csr, "--name", name,
	    "--cm", cm, "-o", cert), 0, name);
}

static station_session *
open_session(struct fx *f, const char *name)
{
	return tf_session(f->dir, f->port, name);
}

static void
create_order(struct fx *f, const char *id, const char *quota)
{
	expect(f, ADMIN(f, "order", "create", "--id", id, "--product",
	    PRODUCT, "--key", KEY, "--quota", quota, "--uid-len", "8"), 0, id);
}

/* The order's counters, through the Admin RPC. */
struct counts {
	uint64_t issued, confirmed, failed, remaining;
};

static struct counts
order_counts(struct fx *f, const char *id)
{
	cs_rpc_client                    *c = NULL;
	Countersign__V1__ShowOrderRequest in =
	    COUNTERSIGN__V1__SHOW_ORDER_REQUEST__INIT;
	Countersign__V1__OrderReply      *r = NULL;
	struct cs_rpc_result              res;
	struct counts                     k;
	char                              url[700], err[256];

	snprintf(url, sizeof(url), "ipc://%s", f->sock);
	struct cs_rpc_client_opts o = {
	    .url = url, .timeout_ms = 30000, .max_msg = 16u << 20, .wait = true};
	if (cs_rpc_client_open(&c, &o, err, sizeof(err)) != CS_OK) {
		fprintf(stderr, "admin client: %s\n", err);
		fail();
	}
	in.order_id = (char *)id;
	assert_int_equal(cs_rpc_call(c, &countersign__v1__admin__descriptor,
	    "ShowOrder", &in.base, (ProtobufCMessage **)&r, &res), CS_OK);
	cs_rpc_client_close(c);
	assert_non_null(r->order);
	k.issued    = r->order->issued;
	k.confirmed = r->order->confirmed;
	k.failed    = r->order->failed;
	k.remaining = r->order->remaining;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return k;
}

static void
check_counts(struct fx *f, const char *id, uint64_t issued,
    uint64_t confirmed, uint64_t failed)
{
	struct counts k = order_counts(f, id);

	if (k.issued != issued || k.confirmed != confirmed ||
	    k.failed != failed) {
		fprintf(stderr, "order %s: issued %llu confirmed %llu failed "
		    "%llu, want %llu %llu %llu\n", id,
		    (unsigned long long)k.issued,
		    (unsigned long long)k.confirmed,
		    (unsigned long long)k.failed, (unsigned long long)issued,
		    (unsigned long long)confirmed, (unsigned long long)failed);
		fail();
	}
}

/* ------------------------------------------------------------------ */
/* Jobs and their events                                               */
/* ------------------------------------------------------------------ */

/* What a job of run_job_ex is given beyond run_job's. */
struct job_extra {
	const struct target *target;  /* NULL: f->tgt */
	const uint8_t       *fw;      /* the digest Sign names */
	bool                 require_lock;
};

static int
run_job_ex(struct fx *f, const char *order, const char *const *probes,
    size_t n, unsigned count, const struct job_extra *x,
    struct job_result *res, char **events);

/* A job over probes; the events (JSON lines) are returned in *events. */
static int
run_job(struct fx *f, const char *order, const char *const *probes,
    size_t n, unsigned count, struct job_result *res, char **events)
{
	return run_job_ex(f, order, probes, n, count, NULL, res, events);
}

static int
run_job_ex(struct fx *f, const char *order, const char *const *probes,
    size_t n, unsigned count, const struct job_extra *x,
    struct job_result *res, char **events)
{
	struct job_opts o;
	size_t          len = 0;
	FILE           *fp;
	int             rv;

	*events = NULL;
	fp      = open_memstream(events, &len);
	assert_non_null(fp);
	memset(&o, 0, sizeof(o));
	o.session          = f->session;
	o.order_id         = order;
	o.target           = x != NULL && x->target != NULL ? x->target
	                                                    : &f->tgt;
	o.image            = &f->img;
	o.probes           = probes;
	o.nprobes          = n;
	o.count            = count;
	o.probe_timeout_ms = 2000;
	o.retry_max_s      = 10;
	o.next_device_s    = 1; /* a probe without a new device: give up soon */
	o.firmware_sha256  = x != NULL ? x->fw : NULL;
	o.firmware_checked = x != NULL && x->fw != NULL;
	o.require_lock     = x != NULL && x->require_lock;
	o.json             = true;
	o.events           = fp;
	memset(res, 0, sizeof(*res));
	rv = job_run(&o, res);
	fclose(fp);
	fprintf(stderr, "--- job %s: rv %d programmed %u failed %u refused "
	    "%u quota_exhausted %d\n%s", order, rv, res->programmed,
	    res->failed, res->refused, res->quota_exhausted, *events);
	return rv;
}

/* The value of "key":"..." in one JSON line, unescaped; "" if absent. */
static void
json_get(const char *line, const char *end, const char *key, char *out,
    size_t outlen)
{
	char        pat[64];
	const char *p;
	size_t      n = 0;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(line, pat);
	if (p == NULL || p >= end) {
		return;
	}
	for (p += strlen(pat); p < end && *p != '"' && n + 1 < outlen; p++) {
		if (*p == '\\' && p + 1 < end) {
			p++;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
}

/*
 * Walk the event lines: each must be one JSON object.  Returns how many
 * have event == what (and, when uid is not NULL, that uid); the message
 * and serial of the first such line go to msg / *serial if not NULL.
 */
static unsigned
events_of(const char *ev, const char *what, const char *uid, char *msg,
    size_t msglen, uint64_t *serial)
{
	unsigned    n = 0;
	const char *line, *end;
	char        v[512];

	if (msg != NULL) {
		msg[0] = '\0';
	}
	for (line = ev; line != NULL && *line != '\0'; line = end + 1) {
		end = strchr(line, '\n');
		assert_non_null(end);
		assert_true(line[0] == '{' && end[-1] == '}');
		json_get(line, end, "event", v, sizeof(v));
		if (strcmp(v, what) != 0) {
			continue;
		}
		json_get(line, end, "uid", v, sizeof(v));
		if (uid != NULL && strcmp(v, uid) != 0) {
			continue;
		}
		if (n++ == 0) {
			const char *s = strstr(line, "\"serial\":");

			if (msg != NULL) {
				json_get(line, end, "message", msg, msglen);
			}
			if (serial != NULL) {
				*serial = s != NULL && s < end
				    ? strtoull(s + 9, NULL, 10)
				    : 0;
			}
		}
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Sims                                                                */
/* ------------------------------------------------------------------ */

static void
uid_of(char hex[2 * UIDLEN + 1], unsigned tcase, unsigned n)
{
	snprintf(hex, 2 * UIDLEN + 1, "c5%02x0000000000%02x", tcase & 0xff,
	    n & 0xff);
}

static void
uid_bytes(const char *hex, uint8_t uid[UIDLEN])
{
	for (size_t i = 0; i < UIDLEN; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		uid[i] = (uint8_t)v;
	}
}

/* The sim's whole flash, read through the probe layer (buf FLASH_SZ). */
static void
sim_flash(const char *name, uint8_t *buf)
{
	probe *p = NULL;
	char   url[128], err[256];

	snprintf(url, sizeof(url), "sim:%s", name);
	if (probe_open(&p, url, 1000, err, sizeof(err)) != CS_OK) {
		fprintf(stderr, "%s: %s\n", url, err);
		fail();
	}
	assert_int_equal(probe_read(p, 0, buf, FLASH_SZ), CS_OK);
	probe_close(p);
}

static bool
all_erased(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i] != 0xff) {
			return false;
		}
	}
	return true;
}

static void
expect_untouched(const char *name)
{
	uint8_t *fl = malloc(FLASH_SZ);

	assert_non_null(fl);
	sim_flash(name, fl);
	if (!all_erased(fl, FLASH_SZ)) {
		free(fl);
		fprintf(stderr, "sim:%s: flash was written\n", name);
		fail();
	}
	free(fl);
}

/* The verdict on the record in flash for uid under key spki, as the
 * device's own verifier gives it. */
static cs_verify_result
verify_flash_record(const uint8_t *spki, size_t spki_len,
    const uint8_t *fl, const uint8_t uid[UIDLEN])
{
	uint8_t                pub[CS_P256_POINT_LEN], kid[CS_KEY_ID_LEN];
	size_t                 plen = sizeof(pub), len;
	cs_alg                 alg;
	struct cs_trust_key    tk;
	struct cs_verify_trust trust;

	assert_int_equal(cs_spki_decode(spki, spki_len, &alg, pub, &plen),
	    CS_OK);
	assert_int_equal(cs_key_id(spki, spki_len, kid), CS_OK);
	memset(&tk, 0, sizeof(tk));
	tk.alg     = (uint8_t)alg;
	tk.key_id  = kid;
	tk.pub     = pub;
	tk.pub_len = plen;
	memset(&trust, 0, sizeof(trust));
	trust.keys       = &tk;
	trust.n_keys     = 1;
	trust.product_id = 0x1234u;
	len = cs_record_size(fl + REC_ADDR, CS_RECORD_HEADER_LEN);
	assert_true(len >= CS_RECORD_MIN_LEN && len <= CS_RECORD_MAX_LEN);
	return cs_verify_record(fl + REC_ADDR, len, uid, UIDLEN, &trust, NULL);
}

/* The sim holds exactly the image and a record that verifies for uid. */
static void
expect_programmed(struct fx *f, const char *name, const char *uidhex)
{
	uint8_t *fl = malloc(FLASH_SZ);
	uint8_t  uid[UIDLEN];

	assert_non_null(fl);
	uid_bytes(uidhex, uid);
	sim_flash(name, fl);
	assert_memory_equal(fl, f->img_bytes, IMG_LEN);
	assert_true(all_erased(fl + IMG_LEN, REC_ADDR - IMG_LEN));
	assert_memory_equal(fl + REC_ADDR, CS_RECORD_MAGIC,
	    CS_RECORD_MAGIC_LEN);
	assert_int_equal(fl[REC_ADDR + CS_RECORD_OFF_UID_LEN], UIDLEN);
	assert_memory_equal(fl + REC_ADDR + CS_RECORD_OFF_UID, uid, UIDLEN);
	assert_true(CS_VERIFY_AUTHORIZED(verify_flash_record(f->spki,
	    f->spki_len, fl, uid)));
	free(fl);
}

/* The device's own boot check on a fresh probe: exits 0 (authorized). */
static void
expect_boots(struct fx *f, const char *name)
{
	probe            *p = NULL;
	struct probe_stop st;
	char              url[1024], err[256];

	snprintf(url, sizeof(url), "sim:%s?trust=%s", name, f->trust);
	assert_int_equal(probe_open(&p, url, 1000, err, sizeof(err)), CS_OK);
	assert_int_equal(probe_reset_halt(p), CS_OK);
	memset(&st, 0, sizeof(st));
	assert_int_equal(probe_run(p, 1000, &st), CS_OK);
	assert_true(st.exited);
	assert_int_equal(st.exit_code, 0);
	probe_close(p);
}

static const char *
sim_url(char *buf, size_t len, const char *name, const char *uidhex,
    const char *trust, const char *fail)
{
	int n = snprintf(buf, len, "sim:%s?uid=%s", name, uidhex);

	if (trust != NULL) {
		n += snprintf(buf + n, len - (size_t)n, "&trust=%s", trust);
	}
	if (fail != NULL) {
		snprintf(buf + n, len - (size_t)n, "&fail=%s", fail);
	}
	return buf;
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char       path[700], err[512];
	FILE      *fp;

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
	snprintf(f->trust, sizeof(f->trust), "%s/oem.der", f->dir);
	snprintf(f->trust2, sizeof(f->trust2), "%s/other.der", f->dir);
	write_conf(f);

	setenv("COUNTERSIGN_HSM_MODULE", CS_SOFTHSM_MODULE, 1);
	setenv("COUNTERSIGN_HSM_TOKEN", TOKEN, 1);
	snprintf(path, sizeof(path), "%s/pin", f->dir);
	setenv("COUNTERSIGN_HSM_PIN_FILE", path, 1);
	expect(f, run(f, f->keytool, "keygen", "--label", KEY, "--alg", "p256",
	    NULL), 0, NULL);
	expect(f, run(f, f->keytool, "export", "--label", KEY, "--format",
	    "der", "-o", f->trust, NULL), 0, NULL);
	/* A key the authority never signs with: a device that trusts only
	 * it must refuse the records. */
	expect(f, run(f, f->keytool, "keygen", "--label", KEY2, "--alg",
	    "p256", NULL), 0, NULL);
	expect(f, run(f, f->keytool, "export", "--label", KEY2, "--format",
	    "der", "-o", f->trust2, NULL), 0, NULL);
	expect(f, run(f, f->keytool, "keygen", "--label", FWKEY, "--alg",
	    "aes256", NULL), 0, NULL);
	fp = fopen(f->trust, "rb");
	assert_non_null(fp);
	f->spki_len = fread(f->spki, 1, sizeof(f->spki), fp);
	fclose(fp);
	assert_true(f->spki_len > 0);

	expect(f, ADMIN(f, "ca", "init"), 0, "station-ca.pem");
	start_authority(f);
	expect(f, ADMIN(f, "key", "add", "--label", KEY), 0, KEY);
	enroll(f, "st1", "acme");
	f->session = open_session(f, "st1");

	/* The image: a raw binary at 0, no byte 0xFF-only. */
	for (size_t i = 0; i < IMG_LEN; i++) {
		f->img_bytes[i] = (uint8_t)(i * 7u + 3u);
		if (f->img_bytes[i] == 0xff) {
			f->img_bytes[i] = 0x5a;
		}
	}
	snprintf(f->app, sizeof(f->app), "%s/app.bin", f->dir);
	fp = fopen(f->app, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(f->img_bytes, 1, IMG_LEN, fp), IMG_LEN);
	fclose(fp);
	/* Another build of it: one byte differs. */
	snprintf(f->app2, sizeof(f->app2), "%s/app2.bin", f->dir);
	fp = fopen(f->app2, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(f->img_bytes, 1, 100, fp), 100);
	fputc(f->img_bytes[100] ^ 0x55, fp);
	assert_int_equal(fwrite(f->img_bytes + 101, 1, IMG_LEN - 101, fp),
	    IMG_LEN - 101);
	fclose(fp);
	if (image_load(&f->img, f->app, IMAGE_BIN, 0, err, sizeof(err)) !=
	    CS_OK) {
		fprintf(stderr, "image: %s\n", err);
		fail();
	}
	if (target_load(&f->tgt, CS_TARGETS_DIR "/lm3s6965.ini", NULL, err,
	    sizeof(err)) != CS_OK) {
		fprintf(stderr, "target: %s\n", err);
		fail();
	}
	assert_int_equal(f->tgt.uid_len, UIDLEN);
	assert_int_equal(f->tgt.record_addr, REC_ADDR);
	assert_int_equal(image_check(&f->img, &f->tgt, err, sizeof(err)),
	    CS_OK);
	assert_int_equal(image_digest(&f->img, &f->tgt, f->dig), CS_OK);
	{
		struct image other;

		assert_int_equal(image_load(&other, f->app2, IMAGE_BIN, 0, err,
		    sizeof(err)), CS_OK);
		assert_int_equal(image_digest(&other, &f->tgt, f->dig2), CS_OK);
		image_free(&other);
	}
	if (target_load(&f->tgt_lock, CS_TARGETS_DIR "/lm3s6965-locked.ini",
	    NULL, err, sizeof(err)) != CS_OK) {
		fprintf(stderr, "target: %s\n", err);
		fail();
	}
	assert_true(f->tgt_lock.can_lock);
	assert_false(f->tgt.can_lock);
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f == NULL) {
		return 0;
	}
	station_session_close(f->session);
	if (f->pid > 0) {
		tu_stop(f->pid, SIGTERM, 15000);
	}
	image_free(&f->img);
	probe_sim_reset_all();
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* Each case starts from erased sims. */
static int
fresh_sims(void **state)
{
	(void)state;
	probe_sim_reset_all();
	return 0;
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

/* 1. A gang of three: all programmed, each boots authorized. */
static void
test_gang_of_three(void **state)
{
	struct fx        *f = *state;
	char              url[3][1024], uid[3][2 * UIDLEN + 1], name[16];
	const char       *probes[3];
	struct job_result r;
	char             *ev;

	create_order(f, "JOB-1", "10");
	for (unsigned i = 0; i < 3; i++) {
		uid_of(uid[i], 1, i);
		snprintf(name, sizeof(name), "g%u", i);
		probes[i] = sim_url(url[i], sizeof(url[i]), name, uid[i],
		    f->trust, NULL);
	}
	assert_int_equal(run_job(f, "JOB-1", probes, 3, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 3);
	assert_int_equal(r.failed, 0);
	assert_int_equal(r.refused, 0);
	assert_false(r.quota_exhausted);
	assert_false(r.authority_lost);
	assert_int_equal(r.remaining, 7);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(events_of(ev, "signed", uid[i], NULL, 0, NULL),
		    1);
		assert_int_equal(events_of(ev, "programmed", uid[i], NULL, 0,
		    NULL), 1);
		snprintf(name, sizeof(name), "g%u", i);
		expect_programmed(f, name, uid[i]);
		expect_boots(f, name);
	}
	assert_int_equal(events_of(ev, "failed", NULL, NULL, 0, NULL), 0);
	free(ev);
	check_counts(f, "JOB-1", 3, 3, 0);
}

/* 2. A UID that reads as erased memory: skipped, never signed. */
static void
test_uid_ff_skipped(void **state)
{
	struct fx        *f = *state;
	char              url[2][1024], uid[2][2 * UIDLEN + 1], msg[512];
	const char       *probes[2];
	struct job_result r;
	char             *ev;

	create_order(f, "JOB-2", "10");
	uid_of(uid[0], 2, 0);
	uid_of(uid[1], 2, 1);
	probes[0] = sim_url(url[0], sizeof(url[0]), "ff", uid[0], f->trust,
	    "uid-ff");
	probes[1] = sim_url(url[1], sizeof(url[1]), "ok2", uid[1], f->trust,
	    NULL);
	assert_int_equal(run_job(f, "JOB-2", probes, 2, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 1);
	assert_int_equal(r.failed, 0);
	assert_int_equal(r.refused, 0);
	assert_int_equal(events_of(ev, "signed", NULL, NULL, 0, NULL), 1);
	assert_int_equal(events_of(ev, "device", uid[0], NULL, 0, NULL), 0);
	/* One for the erased UID; the other worker, done with its device,
	 * also waits for a next one (the count is not reached). */
	assert_true(events_of(ev, "no-device", NULL, msg, sizeof(msg),
	    NULL) >= 1);
	assert_non_null(strstr(ev, "reads as erased memory"));
	free(ev);
	check_counts(f, "JOB-2", 1, 1, 0);
	expect_untouched("ff");
	expect_programmed(f, "ok2", uid[1]);
}

/* 3. A flash failure is reported; the device re-seated gets the same
 * record again for no quota. */
static void
test_flash_fail_then_retry(void **state)
{
	struct fx        *f = *state;
	char              url[1024], uid[2 * UIDLEN + 1], msg[512];
	const char       *probes[1];
	struct job_result r;
	char             *ev;
	uint64_t          s1 = 0, s2 = 0;
	uint8_t          *fl;

	create_order(f, "JOB-3", "10");
	uid_of(uid, 3, 0);
	probes[0] = sim_url(url, sizeof(url), "fl", uid, f->trust, "flash");
	assert_int_equal(run_job(f, "JOB-3", probes, 1, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 0);
	assert_int_equal(r.failed, 1);
	assert_int_equal(events_of(ev, "signed", uid, NULL, 0, &s1), 1);
	assert_int_equal(events_of(ev, "failed", uid, msg, sizeof(msg), NULL),
	    1);
	assert_non_null(strstr(msg, "writing flash"));
	assert_non_null(strstr(msg, "fail=flash"));
	assert_int_equal(events_of(ev, "programmed", NULL, NULL, 0, NULL), 0);
	free(ev);
	assert_true(s1 != 0);
	check_counts(f, "JOB-3", 1, 0, 1);
	expect_untouched("fl");

	/* The same device, now healthy. */
	probes[0] = sim_url(url, sizeof(url), "fl", uid, f->trust, NULL);
	assert_int_equal(run_job(f, "JOB-3", probes, 1, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 1);
	assert_int_equal(r.failed, 0);
	assert_int_equal(events_of(ev, "signed", uid, NULL, 0, &s2), 1);
	assert_int_equal(events_of(ev, "programmed", uid, NULL, 0, NULL), 1);
	free(ev);
	assert_int_equal(s1, s2); /* the same record */
	check_counts(f, "JOB-3", 1, 1, 0);
	expect_programmed(f, "fl", uid);
	fl = malloc(FLASH_SZ);
	assert_non_null(fl);
	sim_flash("fl", fl);
	assert_int_equal(fl[REC_ADDR + CS_RECORD_OFF_UID_LEN], UIDLEN);
	free(fl);
}

/* 4. The probe drops in the middle of the image. */
static void
test_disconnect_mid_image(void **state)
{
	struct fx        *f = *state;
	char              url[1024], uid[2 * UIDLEN + 1], msg[512];
	const char       *probes[1];
	struct job_result r;
	char             *ev;

	create_order(f, "JOB-4", "10");
	uid_of(uid, 4, 0);
	probes[0] = sim_url(url, sizeof(url), "dc", uid, f->trust,
	    "disconnect@1500");
	assert_int_equal(run_job(f, "JOB-4", probes, 1, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 0);
	assert_int_equal(r.failed, 1);
	assert_int_equal(events_of(ev, "failed", uid, msg, sizeof(msg), NULL),
	    1);
	assert_non_null(strstr(msg, "writing flash at 0x00000000"));
	assert_non_null(strstr(msg, "disconnected"));
	assert_int_equal(events_of(ev, "programmed", NULL, NULL, 0, NULL), 0);
	free(ev);
	check_counts(f, "JOB-4", 1, 0, 1);
	expect(f, ADMIN(f, "device", "show", uid, "--order", "JOB-4"), 0,
	    "failed");
}

/* 5. The read-back differs: verify-failed. */
static void
test_verify_fail(void **state)
{
	struct fx        *f = *state;
	char              url[1024], uid[2 * UIDLEN + 1], msg[512];
	const char       *probes[1];
	struct job_result r;
	char             *ev;

	create_order(f, "JOB-5", "10");
	uid_of(uid, 5, 0);
	probes[0] = sim_url(url, sizeof(url), "vf", uid, f->trust, "verify");
	assert_int_equal(run_job(f, "JOB-5", probes, 1, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 0);
	assert_int_equal(r.failed, 1);
	assert_int_equal(events_of(ev, "failed", uid, msg, sizeof(msg), NULL),
	    1);
	assert_non_null(strstr(msg, "read-back differs"));
	free(ev);
	check_counts(f, "JOB-5", 1, 0, 1);
	expect(f, ADMIN(f, "device", "show", uid, "--order", "JOB-5"), 0,
	    "verify-failed");
}

/* 6. A device that trusts another key refuses the record at boot. */
static void
test_boot_check_other_key(void **state)
{
	struct fx        *f = *state;
	char              url[1024], uid[2 * UIDLEN + 1], msg[512];
	const char       *probes[1];
	struct job_result r;
	char             *ev;

	create_order(f, "JOB-6", "10");
	uid_of(uid, 6, 0);
	probes[0] = sim_url(url, sizeof(url), "ok6", uid, f->trust2, NULL);
	assert_int_equal(run_job(f, "JOB-6", probes, 1, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 0);
	assert_int_equal(r.failed, 1);
	assert_int_equal(events_of(ev, "failed", uid, msg, sizeof(msg), NULL),
	    1);
	assert_non_null(strstr(msg, "refused to run"));
	assert_int_equal(events_of(ev, "programmed", NULL, NULL, 0, NULL), 0);
	free(ev);
	check_counts(f, "JOB-6", 1, 0, 1);
	expect(f, ADMIN(f, "device", "show", uid, "--order", "JOB-6"), 0,
	    "verify-failed");
}

/* 7. Quota 2, three devices: two programmed, the third left alone. */
static void
test_quota(void **state)
{
	struct fx        *f = *state;
	char              url[3][1024], uid[3][2 * UIDLEN + 1], name[16];
	const char       *probes[3];
	struct job_result r;
	char             *ev;
	unsigned          erased = 0, done = 0;
	uint8_t          *fl;

	create_order(f, "JOB-7", "2");
	for (unsigned i = 0; i < 3; i++) {
		uid_of(uid[i], 7, i);
		snprintf(name, sizeof(name), "q%u", i);
		probes[i] = sim_url(url[i], sizeof(url[i]), name, uid[i],
		    f->trust, NULL);
	}
	assert_int_equal(run_job(f, "JOB-7", probes, 3, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 2);
	assert_int_equal(r.failed, 0);
	assert_true(r.quota_exhausted);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(events_of(ev, "quota-exhausted", NULL, NULL, 0, NULL),
	    1);
	assert_int_equal(events_of(ev, "programmed", NULL, NULL, 0, NULL), 2);
	free(ev);
	check_counts(f, "JOB-7", 2, 2, 0);
	fl = malloc(FLASH_SZ);
	assert_non_null(fl);
	for (unsigned i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "q%u", i);
		sim_flash(name, fl);
		if (all_erased(fl, FLASH_SZ)) {
			erased++;
		} else {
			expect_programmed(f, name, uid[i]);
			done++;
		}
	}
	free(fl);
	assert_int_equal(erased, 1);
	assert_int_equal(done, 2);
}

/* 8. A UID programmed in order A, then seen again in order B: a clone. */
static void
test_clone_refused(void **state)
{
	struct fx        *f = *state;
	char              url[1024], uid[2 * UIDLEN + 1], msg[512];
	const char       *probes[1];
	struct job_result r;
	char             *ev;

	create_order(f, "JOB-8A", "10");
	create_order(f, "JOB-8B", "10");
	uid_of(uid, 8, 0);
	probes[0] = sim_url(url, sizeof(url), "orig", uid, f->trust, NULL);
	assert_int_equal(run_job(f, "JOB-8A", probes, 1, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 1);
	free(ev);

	probes[0] = sim_url(url, sizeof(url), "clone", uid, f->trust, NULL);
	assert_int_equal(run_job(f, "JOB-8B", probes, 1, 0, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 0);
	assert_int_equal(r.failed, 0);
	assert_int_equal(r.refused, 1);
	assert_int_equal(events_of(ev, "refused", uid, msg, sizeof(msg), NULL),
	    1);
	assert_non_null(strstr(msg, "already signed"));
	assert_non_null(strstr(msg, "clone"));
	assert_non_null(strstr(msg, "JOB-8A"));
	assert_int_equal(events_of(ev, "signed", NULL, NULL, 0, NULL), 0);
	free(ev);
	check_counts(f, "JOB-8A", 1, 1, 0);
	check_counts(f, "JOB-8B", 0, 0, 0);
	expect_untouched("clone");
	expect_programmed(f, "orig", uid);
}

/* 9. --count beyond the devices on the probes: the job waits for the
 * next device, gives up after next_device_s, and says how many it never
 * started (countersign-station run then exits 9). */
static void
test_count_beyond_probes(void **state)
{
	struct fx        *f = *state;
	char              url[2][1024], uid[2][2 * UIDLEN + 1], name[16];
	const char       *probes[2];
	struct job_result r;
	char             *ev;

	create_order(f, "JOB-9", "10");
	for (unsigned i = 0; i < 2; i++) {
		uid_of(uid[i], 9, i);
		snprintf(name, sizeof(name), "c%u", i);
		probes[i] = sim_url(url[i], sizeof(url[i]), name, uid[i],
		    f->trust, NULL);
	}
	assert_int_equal(run_job(f, "JOB-9", probes, 2, 5, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 2);
	assert_int_equal(r.failed, 0);
	assert_int_equal(r.refused, 0);
	assert_false(r.quota_exhausted);
	assert_false(r.authority_lost);
	assert_int_equal(r.short_of_count, 3);
	assert_int_equal(events_of(ev, "programmed", NULL, NULL, 0, NULL), 2);
	assert_int_equal(events_of(ev, "no-device", NULL, NULL, 0, NULL), 2);
	free(ev);
	check_counts(f, "JOB-9", 2, 2, 0);
}

/* 12. A refusal about the order (closed), not the device: the job stops
 * instead of refusing device after device; nothing is written. */
static void
test_closed_order_halts(void **state)
{
	struct fx        *f = *state;
	char              url[3][1024], uid[3][2 * UIDLEN + 1], name[16];
	const char       *probes[3];
	struct job_result r;
	char             *ev;

	create_order(f, "JOB-12", "10");
	expect(f, ADMIN(f, "order", "close", "JOB-12"), 0, NULL);
	for (unsigned i = 0; i < 3; i++) {
		uid_of(uid[i], 12, i);
		snprintf(name, sizeof(name), "h%u", i);
		probes[i] = sim_url(url[i], sizeof(url[i]), name, uid[i],
		    f->trust, NULL);
	}
	assert_int_equal(run_job(f, "JOB-12", probes, 3, 6, &r, &ev), CS_OK);
	assert_int_equal(r.programmed, 0);
	assert_int_equal(r.halt_status, CS_STATUS_FAILED_PRECONDITION);
	assert_true(r.refused >= 1 && r.refused <= 3);
	assert_true(events_of(ev, "stopped", NULL, NULL, 0, NULL) >= 1);
	assert_int_equal(events_of(ev, "signed", NULL, NULL, 0, NULL), 0);
	free(ev);
	for (unsigned i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "h%u", i);
		expect_untouched(name);
	}
	check_counts(f, "JOB-12", 0, 0, 0);
}

/*
 * 10. count = 2 on two probes; probe A has no device seated and waits
 * next_device_s.  B programs its device and then the operator's next
 * device on B: a worker waiting for a device holds no unit another
 * worker could use, so the job ends with 2 of 2.
 */
struct bg_job {
	struct fx        *f;
	const char       *order;  /* NULL: JOB-10 */
	const uint8_t    *fw;     /* the digest Sign names, or NULL */
	const char *const *probes;
	size_t            n;
	unsigned          count;
	struct job_result r;
	char             *ev;
	int               rv;
};

static void *
bg_job_main(void *arg)
{
	struct bg_job *b = arg;
	struct job_opts o;
	size_t          len = 0;
	FILE           *fp  = open_memstream(&b->ev, &len);

	if (fp == NULL) {
		b->rv = CS_ENOMEM;
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	o.session          = b->f->session;
	o.order_id         = b->order != NULL ? b->order : "JOB-10";
	o.firmware_sha256  = b->fw;
	o.firmware_checked = b->fw != NULL;
	o.target           = &b->f->tgt;
	o.image            = &b->f->img;
	o.probes           = b->probes;
	o.nprobes          = b->n;
	o.count            = b->count;
	o.probe_timeout_ms = 2000;
	o.retry_max_s      = 10;
	o.next_device_s    = 4;
	o.json             = true;
	o.events           = fp;
	b->rv = job_run(&o, &b->r);
	fclose(fp);
	return NULL;
}

/* Seat a device with this UID on the sim name (the probe URL of the job
 * carries no uid=, so the device's own UID counts). */
static void
seat(const char *name, const char *uidhex)
{
	probe *p = NULL;
	char   url[128], err[256];

	snprintf(url, sizeof(url), "sim:%s?uid=%s", name, uidhex);
	assert_int_equal(probe_open(&p, url, 1000, err, sizeof(err)), CS_OK);
	probe_close(p);
}

static void
test_claim_starvation(void **state)
{
	struct fx    *f = *state;
	char          ua[2 * UIDLEN + 1], u1[2 * UIDLEN + 1],
	              u2[2 * UIDLEN + 1], urla[1024], urlb[1024];
	const char   *probes[2];
	struct bg_job b;
	pthread_t     t;

	create_order(f, "JOB-10", "10");
	uid_of(ua, 10, 0);
	uid_of(u1, 10, 1);
	uid_of(u2, 10, 2);
	probes[0] = sim_url(urla, sizeof(urla), "sa", ua, f->trust, "uid-ff");
	snprintf(urlb, sizeof(urlb), "sim:sb?trust=%s", f->trust);
	probes[1] = urlb;
	seat("sb", u1);
	memset(&b, 0, sizeof(b));
	b.f      = f;
	b.probes = probes;
	b.n      = 2;
	b.count  = 2;
	assert_int_equal(pthread_create(&t, NULL, bg_job_main, &b), 0);
	sleep(1);       /* B's first device is done by now */
	seat("sb", u2); /* the operator swaps it for the next */
	assert_int_equal(pthread_join(t, NULL), 0);
	fprintf(stderr, "--- job JOB-10: rv %d programmed %u\n%s", b.rv,
	    b.r.programmed, b.ev != NULL ? b.ev : "");
	assert_int_equal(b.rv, CS_OK);
	assert_int_equal(events_of(b.ev, "programmed", u1, NULL, 0, NULL), 1);
	free(b.ev);
	check_counts(f, "JOB-10", 2, 2, 0);
	assert_int_equal(b.r.programmed, 2);
	expect_programmed(f, "sb", u2);
}

/*
 * 11. Every worker thread that runs a P-256 boot check (the sim runs the
 * target verifier, on host wolfCrypt with FP_ECC) must leave no
 * per-thread table behind: heap in use before and after a job on three
 * fresh sims (the sims themselves freed) must not grow by megabytes.
 * (Under ASan mallinfo2 says nothing; LeakSanitizer checks it there.)
 */
static size_t
heap_in_use(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

static void
test_boot_check_thread_leak(void **state)
{
	struct fx        *f = *state;
	char              url[3][1024], uid[3][2 * UIDLEN + 1], name[16];
	const char       *probes[3];
	struct job_result r;
	char             *ev;
	size_t            before, after;

	create_order(f, "JOB-11", "10");
	for (unsigned i = 0; i < 3; i++) {
		uid_of(uid[i], 11, i);
		snprintf(name, sizeof(name), "lk%u", i);
		probes[i] = sim_url(url[i], sizeof(url[i]), name, uid[i],
		    f->trust, NULL);
	}
	before = heap_in_use();
	assert_int_equal(run_job(f, "JOB-11", probes, 3, 0, &r, &ev), CS_OK);
	free(ev);
	probe_sim_reset_all();
	after = heap_in_use();
	assert_int_equal(r.programmed, 3);
	fprintf(stderr, "heap in use: %zu before, %zu after\n", before, after);
	assert_true(after < before + 512u * 1024u);
}

/*
 * 13. A CMSIS-DAP probe (the simulated probe and SWD target of dap_sim.h,
 * reached through the cmsis-dap backend, DAP, ADIv5 and the part's flash
 * controller): a device programmed end to end with its record from the
 * authority, read back through the same path.  Real parts give no boot
 * verdict over SWD: the profile says boot_check = none.
 */
static dap_sim *cmsis_sim;

static int
cmsis_factory(const char *serial, uint16_t vid, uint16_t pid,
    struct dap_transport *t, char *err, size_t errlen)
{
	(void)vid;
	(void)pid;
	if (cmsis_sim == NULL || strcmp(serial, "CSIM0013") != 0) {
		snprintf(err, errlen, "no CMSIS-DAP probe '%s'", serial);
		return CS_ENOENT;
	}
	dap_sim_transport(cmsis_sim, t);
	return CS_OK;
}

static void
test_cmsis_dap_end_to_end(void **state)
{
	struct fx        *f = *state;
	struct target     swd = f->tgt, saved = f->tgt;
	const char       *probes[1] = {"cmsis-dap://CSIM0013"};
	char              uidhex[2 * UIDLEN + 1];
	uint8_t           uid[UIDLEN], rec[256], *fl;
	struct job_result r;
	char             *ev;

	create_order(f, "JOB-13", "5");
	uid_of(uidhex, 13, 0);
	uid_bytes(uidhex, uid);
	assert_int_equal(dap_sim_new(&cmsis_sim, "CSIM0013", uid, UIDLEN),
	    CS_OK);
	probe_cmsis_set_transport_factory(cmsis_factory);
	swd.boot_check = TARGET_BOOT_NONE;
	f->tgt         = swd;
	assert_int_equal(run_job(f, "JOB-13", probes, 1, 1, &r, &ev), CS_OK);
	f->tgt = saved;
	probe_cmsis_set_transport_factory(NULL);
	assert_int_equal(r.programmed, 1);
	assert_int_equal(r.failed, 0);
	free(ev);
	/* What the target's flash holds now. */
	fl = malloc(IMG_LEN);
	assert_non_null(fl);
	assert_int_equal(dap_sim_peek(cmsis_sim, 0, fl, IMG_LEN), CS_OK);
	assert_memory_equal(fl, f->img_bytes, IMG_LEN);
	free(fl);
	assert_int_equal(dap_sim_peek(cmsis_sim, REC_ADDR, rec, sizeof(rec)),
	    CS_OK);
	assert_memory_equal(rec, CS_RECORD_MAGIC, CS_RECORD_MAGIC_LEN);
	assert_memory_equal(rec + CS_RECORD_OFF_UID, uid, UIDLEN);
	dap_sim_free(cmsis_sim);
	cmsis_sim = NULL;
	check_counts(f, "JOB-13", 1, 1, 0);
}

/* ------------------------------------------------------------------ */
/* The order's firmware and the lock                                   */
/* ------------------------------------------------------------------ */

/* countersign-station run (as station st1) over sim probes, which live in
 * the station's own process and start erased; output in f->out. */
static int
station_run_sims_as(struct fx *f, bool json, const char *order,
    const char *target, const char *image, const char *const *probes,
    size_t n)
{
	char  conf[700];
	char *argv[48];
	int   k = 0;

	snprintf(conf, sizeof(conf), "%s/st1.conf", f->dir);
	argv[k++] = f->station;
	argv[k++] = (char *)"-c";
	argv[k++] = conf;
	argv[k++] = (char *)"run";
	argv[k++] = (char *)"--order";
	argv[k++] = (char *)order;
	argv[k++] = (char *)"--target";
	argv[k++] = (char *)target;
	if (json) {
		argv[k++] = (char *)"--json";
	}
	argv[k++] = (char *)"--next-device-s";
	argv[k++] = (char *)"1";
	argv[k++] = (char *)"--retry-s";
	argv[k++] = (char *)"10";
	if (image != NULL) {
		argv[k++] = (char *)"--image";
		argv[k++] = (char *)image;
		argv[k++] = (char *)"--format";
		argv[k++] = (char *)"bin";
		argv[k++] = (char *)"--base";
		argv[k++] = (char *)"0";
	}
	for (size_t i = 0; i < n && k < 46; i++) {
		argv[k++] = (char *)"--probe";
		argv[k++] = (char *)probes[i];
	}
	argv[k] = NULL;
	return tu_run(argv, f->out, sizeof(f->out));
}

static int
station_run_sims(struct fx *f, const char *order, const char *target,
    const char *image, const char *const *probes, size_t n)
{
	return station_run_sims_as(f, true, order, target, image, probes, n);
}

/* How often needle occurs in text. */
static unsigned
count_str(const char *text, const char *needle)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL;
	     p += strlen(needle)) {
		n++;
	}
	return n;
}

/* The first 8 bytes of a digest in hex, as the station's messages show
 * them. */
static const char *
short_hex(const uint8_t d[32], char out[17])
{
	for (int i = 0; i < 8; i++) {
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	}
	return out;
}

/* Orders on the lm3s6965 profile that bind f->app's digest: only the
 * digest (held false) or the image itself (held true). */
static void
create_fw_order(struct fx *f, const char *id, const char *target,
    bool held)
{
	char tgt[700];

	snprintf(tgt, sizeof(tgt), "%s", target);
	if (held) {
		expect(f, ADMIN(f, "order", "create", "--id", id, "--product",
		    PRODUCT, "--key", KEY, "--quota", "10", "--uid-len", "8",
		    "--cm", "acme", "--target", tgt, "--firmware", f->app,
		    "--firmware-format", "bin", "--firmware-base", "0",
		    "--targets-dir", CS_TARGETS_DIR), 0, id);
	} else {
		expect(f, ADMIN(f, "order", "create", "--id", id, "--product",
		    PRODUCT, "--key", KEY, "--quota", "10", "--uid-len", "8",
		    "--target", tgt, "--firmware", f->app, "--firmware-format",
		    "bin", "--firmware-base", "0", "--digest-only",
		    "--targets-dir", CS_TARGETS_DIR), 0, id);
	}
}

/*
 * 14. An order that binds a firmware digest (the image stays with the
 * CM): a local image with another digest is refused before any Sign,
 * with both digests shown (exit 10), the order's counters unchanged; the
 * image with the order's digest is programmed, its Sign named the digest
 * and its record binds it.
 */
static void
test_digest_precheck(void **state)
{
	struct fx  *f = *state;
	char        url[1024], uid[2 * UIDLEN + 1], a[17], b[17], rec[700];
	const char *probes[1];
	uint8_t     r[256];
	size_t      len;
	FILE       *fp;
	int         rv;

	create_fw_order(f, "JOB-14", "lm3s6965", false);
	uid_of(uid, 14, 0);
	probes[0] = sim_url(url, sizeof(url), "d14", uid, f->trust, NULL);
	rv = station_run_sims(f, "JOB-14", CS_TARGETS_DIR "/lm3s6965.ini",
	    f->app2, probes, 1);
	expect(f, rv, 10, "is not the firmware order JOB-14 was made for");
	assert_non_null(strstr(f->out, short_hex(f->dig2, a)));
	assert_non_null(strstr(f->out, short_hex(f->dig, b)));
	assert_null(strstr(f->out, "\"event\":\"device\""));
	assert_null(strstr(f->out, "\"event\":\"signed\""));
	check_counts(f, "JOB-14", 0, 0, 0);

	rv = station_run_sims(f, "JOB-14", CS_TARGETS_DIR "/lm3s6965.ini",
	    f->app, probes, 1);
	expect(f, rv, 0, "\"event\":\"programmed\"");
	assert_non_null(strstr(f->out, "\"firmware_checked\":true"));
	assert_non_null(strstr(f->out, "digest ok, not locked"));
	check_counts(f, "JOB-14", 1, 1, 0);
	/* The record binds the digest the station named. */
	snprintf(rec, sizeof(rec), "%s/job14.rec", f->dir);
	expect(f, ADMIN(f, "device", "show", uid, "--order", "JOB-14",
	    "--record-out", rec), 0, "checked against the order's digest");
	fp = fopen(rec, "rb");
	assert_non_null(fp);
	len = fread(r, 1, sizeof(r), fp);
	fclose(fp);
	assert_true(len > CS_RECORD_OFF_UID + UIDLEN + 32);
	assert_true((r[CS_RECORD_OFF_FLAGS] & CS_RECORD_FLAG_FIRMWARE) != 0);
	assert_memory_equal(r + CS_RECORD_OFF_UID + UIDLEN, f->dig, 32);
}

/*
 * 15. An order whose image the authority holds: --image is refused with
 * the reason; without it the station fetches the image and programs two
 * sims whose boot check measures the firmware in flash against the
 * record.
 */
static void
test_held_image(void **state)
{
	struct fx  *f = *state;
	char        url[2][1024], uid[2][2 * UIDLEN + 1], name[16];
	const char *probes[2];
	int         rv;

	create_fw_order(f, "JOB-15", "lm3s6965", true);
	{
		char conf[700], want[160], hex[17];

		snprintf(conf, sizeof(conf), "%s/st1.conf", f->dir);
		snprintf(want, sizeof(want), "firmware=held:v1 "
		    "firmware_sha256=%s... target=lm3s6965 lock=not-required",
		    short_hex(f->dig, hex));
		expect(f, STATION(f, conf, "order", "JOB-15"), 0, want);
	}
	for (unsigned i = 0; i < 2; i++) {
		uid_of(uid[i], 15, i);
		snprintf(name, sizeof(name), "h15-%u", i);
		probes[i] = sim_url(url[i], sizeof(url[i]), name, uid[i],
		    f->trust, NULL);
	}
	rv = station_run_sims(f, "JOB-15", CS_TARGETS_DIR "/lm3s6965.ini",
	    f->app, probes, 2);
	expect(f, rv, 2, "order JOB-15's firmware is held by the authority: "
	    "the station fetches it; run without --image");
	check_counts(f, "JOB-15", 0, 0, 0);

	rv = station_run_sims(f, "JOB-15", CS_TARGETS_DIR "/lm3s6965.ini",
	    NULL, probes, 2);
	expect(f, rv, 0, "\"source\":\"held\"");
	assert_int_equal(count_str(f->out, "\"event\":\"programmed\""), 2);
	assert_non_null(strstr(f->out, "\"firmware_checked\":true"));
	check_counts(f, "JOB-15", 2, 2, 0);
	/* The text the shift lead reads. */
	uid_of(uid[0], 15, 7);
	probes[0] = sim_url(url[0], sizeof(url[0]), "h15-7", uid[0], f->trust,
	    NULL);
	rv = station_run_sims_as(f, false, "JOB-15",
	    CS_TARGETS_DIR "/lm3s6965.ini", NULL, probes, 1);
	expect(f, rv, 0, ": digest ok, not locked (the profile cannot lock)");
	assert_non_null(strstr(f->out, "fetched from the authority, held in "
	    "memory only"));
	assert_non_null(strstr(f->out, "run finished: 1 programmed (1 not "
	    "locked), 0 failed, 0 refused"));
	check_counts(f, "JOB-15", 3, 3, 0);
	/* Made for another part: refused before anything is fetched. */
	rv = station_run_sims(f, "JOB-15",
	    CS_TARGETS_DIR "/lm3s6965-locked.ini", NULL, probes, 1);
	expect(f, rv, 10, "was made for target lm3s6965, not "
	    "lm3s6965-locked");
	check_counts(f, "JOB-15", 3, 3, 0);
}

/*
 * 16. The officer withdraws the image in the middle of a run: the device
 * in hand was finished; the next one is not started (Sign refused, the
 * job halts with the authority's reason); a new run is refused at once.
 * An image replaced meanwhile: a job still naming the old digest is
 * stopped at its first Sign.
 */
static void
test_withdrawn_mid_run(void **state)
{
	struct fx        *f = *state;
	char              u1[2 * UIDLEN + 1], u2[2 * UIDLEN + 1], url[1024];
	const char       *probes[1];
	struct bg_job     b;
	struct job_result r;
	char             *ev;
	pthread_t         t;
	uint8_t          *fl, ub[UIDLEN];
	int               rv;

	create_fw_order(f, "JOB-16", "lm3s6965", true);
	uid_of(u1, 16, 1);
	uid_of(u2, 16, 2);
	snprintf(url, sizeof(url), "sim:w16?trust=%s", f->trust);
	probes[0] = url;
	seat("w16", u1);
	memset(&b, 0, sizeof(b));
	b.f      = f;
	b.order  = "JOB-16";
	b.fw     = f->dig;
	b.probes = probes;
	b.n      = 1;
	b.count  = 2;
	assert_int_equal(pthread_create(&t, NULL, bg_job_main, &b), 0);
	sleep(1); /* the first device is done */
	expect(f, ADMIN(f, "order", "firmware", "JOB-16", "--withdraw"), 0,
	    NULL);
	seat("w16", u2); /* the next device (the sim keeps its flash) */
	assert_int_equal(pthread_join(t, NULL), 0);
	fprintf(stderr, "--- job JOB-16: rv %d programmed %u halt %d %s\n%s",
	    b.rv, b.r.programmed, b.r.halt_status, b.r.halt_message,
	    b.ev != NULL ? b.ev : "");
	assert_int_equal(b.rv, CS_OK);
	assert_int_equal(b.r.programmed, 1);
	assert_int_equal(b.r.halt_status, CS_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(b.r.halt_message, "withdrew the firmware"));
	assert_int_equal(events_of(b.ev, "programmed", u1, NULL, 0, NULL), 1);
	assert_int_equal(events_of(b.ev, "stopped", u2, NULL, 0, NULL), 1);
	assert_int_equal(events_of(b.ev, "signed", u2, NULL, 0, NULL), 0);
	free(b.ev);
	fl = malloc(FLASH_SZ);
	assert_non_null(fl);
	sim_flash("w16", fl); /* still the first device's record */
	uid_bytes(u1, ub);
	assert_memory_equal(fl + REC_ADDR + CS_RECORD_OFF_UID, ub, UIDLEN);
	free(fl);
	check_counts(f, "JOB-16", 1, 1, 0);
	/* A new run: refused before a device is touched. */
	rv = station_run_sims(f, "JOB-16", CS_TARGETS_DIR "/lm3s6965.ini",
	    NULL, probes, 1);
	expect(f, rv, 6, "withdrawn");

	/* Replaced: the old digest is no longer signed for. */
	create_fw_order(f, "JOB-16R", "lm3s6965", true);
	expect(f, ADMIN(f, "order", "firmware", "JOB-16R", "--replace",
	    f->app2, "--firmware-format", "bin", "--firmware-base", "0",
	    "--targets-dir", CS_TARGETS_DIR), 0, NULL);
	uid_of(u1, 16, 3);
	probes[0] = sim_url(url, sizeof(url), "r16", u1, f->trust, NULL);
	struct job_extra x = {.fw = f->dig};
	assert_int_equal(run_job_ex(f, "JOB-16R", probes, 1, 1, &x, &r, &ev),
	    CS_OK);
	assert_int_equal(r.programmed, 0);
	assert_int_equal(r.halt_status, CS_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.halt_message, "is not the one order JOB-16R "
	    "binds"));
	assert_int_equal(events_of(ev, "signed", NULL, NULL, 0, NULL), 0);
	free(ev);
	expect_untouched("r16");
	check_counts(f, "JOB-16R", 0, 0, 0);
}

/*
 * 17. A profile that can lock (lm3s6965-locked on sims): the device is
 * locked after its boot check and reported locked; a device whose lock
 * does not take (fail=lock) fails with the reason and counts as failed.
 */
static void
test_lock_sim(void **state)
{
	struct fx        *f = *state;
	char              url[2][1024], uid[2][2 * UIDLEN + 1], msg[512];
	char              line[512];
	const char       *probes[2];
	struct job_result r;
	struct job_extra  x = {.target = &f->tgt_lock};
	char             *ev;
	const char       *p;

	create_order(f, "JOB-17", "10");
	uid_of(uid[0], 17, 0);
	uid_of(uid[1], 17, 1);
	probes[0] = sim_url(url[0], sizeof(url[0]), "lk17", uid[0], f->trust,
	    NULL);
	probes[1] = sim_url(url[1], sizeof(url[1]), "nl17", uid[1], f->trust,
	    "lock");
	assert_int_equal(run_job_ex(f, "JOB-17", probes, 2, 0, &x, &r, &ev),
	    CS_OK);
	assert_int_equal(r.programmed, 1);
	assert_int_equal(r.locked, 1);
	assert_int_equal(r.unlocked, 0);
	assert_int_equal(r.failed, 1);
	assert_int_equal(events_of(ev, "programmed", uid[0], msg, sizeof(msg),
	    NULL), 1);
	assert_string_equal(msg, "no digest bound, locked");
	p = strstr(ev, "\"event\":\"programmed\"");
	assert_non_null(p);
	snprintf(line, sizeof(line), "%.*s", (int)(strchr(p, '\n') - p), p);
	assert_non_null(strstr(line, "\"locked\":true"));
	assert_non_null(strstr(line, "\"firmware_checked\":false"));
	assert_int_equal(events_of(ev, "failed", uid[1], msg, sizeof(msg),
	    NULL), 1);
	assert_non_null(strstr(msg, "lock did not take"));
	free(ev);
	assert_int_equal(probe_sim_locked("lk17"), 1);
	assert_int_equal(probe_sim_locked("nl17"), 0);
	check_counts(f, "JOB-17", 2, 1, 1);
	expect(f, ADMIN(f, "device", "show", uid[0], "--order", "JOB-17"), 0,
	    "lock     locked");
	expect(f, ADMIN(f, "device", "show", uid[1], "--order", "JOB-17"), 0,
	    "state    failed");
}

/*
 * 18. An order that requires the lock, made for lm3s6965-locked: a
 * station whose profile of that name cannot lock is refused at the start
 * (exit 10), as is another profile; with the real profile the device is
 * programmed and locked.
 */
static void
test_require_lock(void **state)
{
	struct fx  *f = *state;
	char        url[1024], uid[2 * UIDLEN + 1], dir[700], path[800];
	char        text[8192];
	const char *probes[1];
	char       *cut;
	FILE       *fp;
	size_t      n;
	int         rv;

	expect(f, ADMIN(f, "order", "create", "--id", "JOB-18", "--product",
	    PRODUCT, "--key", KEY, "--quota", "10", "--uid-len", "8",
	    "--target", "lm3s6965-locked", "--require-lock", "--targets-dir",
	    CS_TARGETS_DIR), 0, "JOB-18");
	/* The station's own copy of the profile, without [protect]. */
	fp = fopen(CS_TARGETS_DIR "/lm3s6965-locked.ini", "r");
	assert_non_null(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	cut     = strstr(text, "\n[protect]");
	assert_non_null(cut);
	cut[1] = '\0';
	snprintf(dir, sizeof(dir), "%s/nolock", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/lm3s6965-locked.ini", dir);
	tu_write_file(path, text);

	uid_of(uid, 18, 0);
	probes[0] = sim_url(url, sizeof(url), "rl18", uid, f->trust, NULL);
	rv = station_run_sims(f, "JOB-18", path, f->app, probes, 1);
	expect(f, rv, 10, "order JOB-18 requires every device to be locked, "
	    "but target profile lm3s6965-locked cannot lock the part");
	rv = station_run_sims(f, "JOB-18", CS_TARGETS_DIR "/lm3s6965.ini",
	    f->app, probes, 1);
	expect(f, rv, 10, "was made for target lm3s6965-locked");
	check_counts(f, "JOB-18", 0, 0, 0);

	rv = station_run_sims(f, "JOB-18",
	    CS_TARGETS_DIR "/lm3s6965-locked.ini", f->app, probes, 1);
	expect(f, rv, 0, "\"locked\":true");
	assert_non_null(strstr(f->out, "1 programmed (1 locked)"));
	assert_non_null(strstr(f->out, "\"locked\":1,\"unlocked\":0"));
	check_counts(f, "JOB-18", 1, 1, 0);
}

/*
 * 19. The authority restarts in the middle of a fetch (killed after the
 * first chunk, started again on the same port): the station waits, asks
 * again on a new connection, which must start the fetch at offset 0 for
 * the same version, and goes on from the offset it had reached; the
 * image arrives whole and checks against the order.
 */
struct restart_ctx {
	struct fx *f;
	unsigned   chunks, waits, backs;
};

static void
restart_progress(void *ctx, uint64_t got, uint64_t size)
{
	struct restart_ctx *c = ctx;

	if (c->chunks++ == 0 && got < size) {
		kill(c->f->pid, SIGKILL);
		tu_stop(c->f->pid, SIGKILL, 5000);
		start_authority(c->f); /* the same port: pinned in the conf */
	}
}

static void
restart_note(void *ctx, const char *what, const char *message)
{
	struct restart_ctx *c = ctx;

	(void)message;
	if (strcmp(what, "waiting") == 0) {
		c->waits++;
	} else {
		c->backs++;
	}
}

static void
test_fetch_resumes(void **state)
{
	struct fx                         *f = *state;
	Countersign__V1__GetOrderRequest   req =
	    COUNTERSIGN__V1__GET_ORDER_REQUEST__INIT;
	Countersign__V1__GetOrderResponse *rsp = NULL;
	struct cs_rpc_result               res;
	struct order_fw                    of;
	struct held_image                  h;
	struct fetch_opts                  fo;
	struct restart_ctx                 c = {.f = f};
	enum { BIG = 100u * 1024u };
	uint8_t                           *big = malloc(BIG);
	char                               path[700], err[512];
	uint32_t                           seed = 19;
	bool                               mismatch;
	FILE                              *fp;

	assert_non_null(big);
	for (size_t i = 0; i < BIG; i++) {
		seed   = seed * 1103515245u + 12345u;
		big[i] = (uint8_t)(seed >> 16) | 1u; /* never 0xFF-only */
	}
	big[BIG - 1] = 0x5a;
	snprintf(path, sizeof(path), "%s/big.bin", f->dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(big, 1, BIG, fp), BIG);
	fclose(fp);
	expect(f, ADMIN(f, "order", "create", "--id", "JOB-19", "--product",
	    PRODUCT, "--key", KEY, "--quota", "10", "--uid-len", "8",
	    "--cm", "acme", "--target", "lm3s6965", "--firmware", path,
	    "--firmware-format", "bin", "--firmware-base", "0",
	    "--targets-dir", CS_TARGETS_DIR), 0, "JOB-19");
	/* Restarts keep the port the session dials. */
	write_conf(f);

	req.order_id = (char *)"JOB-19";
	assert_int_equal(station_session_call(f->session, "GetOrder",
	    &req.base, (ProtobufCMessage **)&rsp, &res), CS_OK);
	assert_int_equal(order_fw_from_status(&of, rsp->order, err,
	    sizeof(err)), CS_OK);
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
	assert_true(of.held);
	assert_int_equal(of.size, BIG);

	memset(&fo, 0, sizeof(fo));
	fo.session      = f->session;
	fo.order_id     = "JOB-19";
	fo.target       = &f->tgt;
	fo.of           = &of;
	fo.retry_max_s  = 30;
	fo.note         = restart_note;
	fo.note_ctx     = &c;
	fo.progress     = restart_progress;
	fo.progress_ctx = &c;
	if (held_image_fetch(&fo, &h, &res, &mismatch, err, sizeof(err)) !=
	    CS_OK) {
		fprintf(stderr, "fetch: %s (%s)\n", err, res.message);
		fail();
	}
	fprintf(stderr, "fetch across a restart: %u chunks, %u waits, %u "
	    "back\n", c.chunks, c.waits, c.backs);
	assert_true(c.chunks >= 4); /* 100 KiB in 32 KiB chunks */
	assert_int_equal(h.flat_len, BIG);
	assert_int_equal(h.base, 0);
	assert_memory_equal(h.flat, big, BIG);
	assert_int_equal(h.img.nseg, 1);
	assert_true(h.img.seg[0].data == h.flat); /* a view, not a copy */
	held_image_free(&h);
	assert_null(h.flat);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_gang_of_three, fresh_sims),
	    cmocka_unit_test_setup(test_uid_ff_skipped, fresh_sims),
	    cmocka_unit_test_setup(test_flash_fail_then_retry, fresh_sims),
	    cmocka_unit_test_setup(test_disconnect_mid_image, fresh_sims),
	    cmocka_unit_test_setup(test_verify_fail, fresh_sims),
	    cmocka_unit_test_setup(test_boot_check_other_key, fresh_sims),
	    cmocka_unit_test_setup(test_quota, fresh_sims),
	    cmocka_unit_test_setup(test_clone_refused, fresh_sims),
	    cmocka_unit_test_setup(test_count_beyond_probes, fresh_sims),
	    cmocka_unit_test_setup(test_claim_starvation, fresh_sims),
	    cmocka_unit_test_setup(test_boot_check_thread_leak, fresh_sims),
	    cmocka_unit_test_setup(test_closed_order_halts, fresh_sims),
	    cmocka_unit_test_setup(test_cmsis_dap_end_to_end, fresh_sims),
	    cmocka_unit_test_setup(test_digest_precheck, fresh_sims),
	    cmocka_unit_test_setup(test_held_image, fresh_sims),
	    cmocka_unit_test_setup(test_withdrawn_mid_run, fresh_sims),
	    cmocka_unit_test_setup(test_lock_sim, fresh_sims),
	    cmocka_unit_test_setup(test_require_lock, fresh_sims),
	    /* Last: it restarts the authority. */
	    cmocka_unit_test_setup(test_fetch_resumes, fresh_sims),
	};

	return tu_run_tests("job_sim", tests, setup, teardown);
}
