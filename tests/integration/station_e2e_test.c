/*
 * station_e2e_test.c - the whole system on emulated devices: SoftHSM (the
 * example firmware's signing key), countersign-authority, and
 * countersign-station run programming QEMU lm3s6965evb devices through
 * QEMU's own gdbstub (each device started with -S, a gdb Unix socket and
 * its UID in the UID mailbox).  Each device then boots the example
 * firmware, which verifies its record against its UID and exits 0
 * ("device authorized") or 1.
 */
#include "cs_err.h"
#include "cs_image.h"
#include "cs_target.h"
#include "test_util.h"

#include <dirent.h>
#include <sys/stat.h>

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>

#define NDEV 4

struct fx {
	char *dir;
	char  authority[512], admin[512], station[512], keytool[512];
	char  conf[600], sconf[600], log[600], elf[600], target[600];
	char  out[65536];
	pid_t pid;
	int   port;
	int   restarts;
	pid_t qemu[8];
	char  sock[8][600];
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Run a program (NULL-terminated arguments); output in f->out. */
#define run(f, ...) tu_runl((f)->out, sizeof((f)->out), __VA_ARGS__)

#define ADMIN(f, ...) run(f, (f)->admin, "-c", (f)->conf, __VA_ARGS__, NULL)

#define expect(f, got, want, needle)                                         \
	tu_expect((f)->out, (got), (want), (needle))

/* A free TCP port on loopback (the authority keeps it across restarts). */
static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t          len = sizeof(a);
	int                fd  = socket(AF_INET, SOCK_STREAM, 0);
	int                port;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family      = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void
start_authority(struct fx *f)
{
	char  log[700];
	char *argv[] = {f->authority, (char *)"-c", f->conf, NULL};

	snprintf(log, sizeof(log), "%s.%d", f->log, f->restarts++);
	f->pid = tu_spawn(argv, log);
	assert_true(tu_wait_for_line(log, "listening url=tls", NULL, 0,
	    20000));
}

/* Start emulated device i with uid (8 bytes), halted, gdb on a socket. */
static void
start_device(struct fx *f, int i, const uint8_t uid[8])
{
	char  dev[128], gdb[700], val[19], log[700];
	int   n = 0;

	/* The loader stores data little-endian: byte 0 is the low byte. */
	n = snprintf(val, sizeof(val), "0x");
	for (int k = 7; k >= 0; k--) {
		n += snprintf(val + n, sizeof(val) - (size_t)n, "%02x", uid[k]);
	}
	snprintf(dev, sizeof(dev), "loader,addr=0x2000FF00,data=%s,data-len=8",
	    val);
	snprintf(f->sock[i], sizeof(f->sock[i]), "%s/dev%d.sock", f->dir, i);
	unlink(f->sock[i]);
	snprintf(gdb, sizeof(gdb), "unix:%s,server=on,wait=off", f->sock[i]);
	snprintf(log, sizeof(log), "%s/dev%d.log", f->dir, i);
	char *argv[] = {(char *)CS_QEMU, "-M", "lm3s6965evb", "-nographic",
	    "-monitor", "none", "-serial", "none", "-semihosting-config",
	    "enable=on,target=native", "-S", "-gdb", gdb, "-device", dev,
	    NULL};
	f->qemu[i] = tu_spawn(argv, log);
	for (n = 0; n < 100 && access(f->sock[i], F_OK) != 0; n++) {
		usleep(20000);
	}
	assert_int_equal(access(f->sock[i], F_OK), 0);
}

/* Wait for device i to end; returns its exit status (-1: signal). */
static int
device_exit(struct fx *f, int i)
{
	int st = tu_stop(f->qemu[i], 0, 30000);

	f->qemu[i] = 0;
	return st;
}

static void
kill_devices(struct fx *f)
{
	for (int i = 0; i < 8; i++) {
		if (f->qemu[i] > 0) {
			tu_stop(f->qemu[i], SIGKILL, 5000);
			f->qemu[i] = 0;
		}
	}
}

static void
make_uid(uint8_t uid[8], unsigned tag, unsigned i)
{
	uid[0] = 0x5e;
	uid[1] = 0xed;
	uid[2] = (uint8_t)tag;
	uid[3] = 0x10;
	uid[4] = 0x20;
	uid[5] = 0x30;
	uid[6] = 0x40;
	uid[7] = (uint8_t)i;
}

static const char *
probe_url(struct fx *f, int i, char *buf, size_t len)
{
	snprintf(buf, len, "gdb+unix://%s", f->sock[i]);
	return buf;
}

static void
order(struct fx *f, const char *id, const char *quota)
{
	char product[16];

	snprintf(product, sizeof(product), "%u", (unsigned)CS_FW_PRODUCT_ID);
	expect(f, ADMIN(f, "order", "create", "--id", id, "--product", product,
	    "--key", "fw-p256", "--quota", quota, "--uid-len", "8"), 0, id);
}

/* countersign-station run over devices [0, n). */
static int
station_run(struct fx *f, const char *order_id, int n)
{
	char  urls[NDEV][700];
	char *argv[32];
	int   k = 0;

	argv[k++] = f->station;
	argv[k++] = (char *)"-c";
	argv[k++] = f->sconf;
	argv[k++] = (char *)"run";
	argv[k++] = (char *)"--order";
	argv[k++] = (char *)order_id;
	argv[k++] = (char *)"--image";
	argv[k++] = f->elf;
	argv[k++] = (char *)"--target";
	argv[k++] = f->target;
	argv[k++] = (char *)"--json";
	argv[k++] = (char *)"--next-device-s";
	argv[k++] = (char *)"5";
	for (int i = 0; i < n; i++) {
		argv[k++] = (char *)"--probe";
		argv[k++] = (char *)probe_url(f, i, urls[i], sizeof(urls[i]));
	}
	argv[k] = NULL;
	return tu_run(argv, f->out, sizeof(f->out));
}

static unsigned
count_of(const char *text, const char *needle)
{
	unsigned    n = 0;
	const char *p = text;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char       cmd[2048], text[4096];

	assert_non_null(f);
	*state = f;
	f->dir = tu_tmpdir();
	tu_program(f->authority, sizeof(f->authority), "authority",
	    "countersign-authority");
	tu_program(f->admin, sizeof(f->admin), "authority",
	    "countersign-admin");
	tu_program(f->station, sizeof(f->station), "station",
	    "countersign-station");
	tu_program(f->keytool, sizeof(f->keytool), "hsm-shim",
	    "countersign-keytool");
	snprintf(f->elf, sizeof(f->elf), "%s/fw-p256/countersign-fw.elf",
	    CS_FW_DIR);
	snprintf(f->target, sizeof(f->target), "%s/station/targets/"
	    "lm3s6965.ini", getenv("CS_SOURCE_DIR"));
	tu_make_pki(f->dir);

	/* The firmware trusts the build's test key: a copy of its token, so
	 * that the station CA's key made here stays out of the build tree. */
	snprintf(cmd, sizeof(cmd), "cp -r %s/token %s/token", CS_FW_KEY_DIR,
	    f->dir);
	assert_int_equal(system(cmd), 0);
	snprintf(text, sizeof(text), "directories.tokendir = %s/token/tokens\n"
	    "objectstore.backend = file\nlog.level = ERROR\n", f->dir);
	snprintf(cmd, sizeof(cmd), "%s/token/softhsm2.conf", f->dir);
	tu_write_file(cmd, text);
	setenv("SOFTHSM2_CONF", cmd, 1);

	f->port = free_port();
	snprintf(f->conf, sizeof(f->conf), "%s/authority.conf", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/authority.log", f->dir);
	snprintf(text, sizeof(text),
	    "[authority]\nid = e2e-authority\ndata_dir = %s/data\n"
	    "station_listen = tls+tcp://127.0.0.1:%d\n"
	    "admin_listen = ipc://%s/admin.sock\n"
	    "[tls]\ncert = %s/server.pem\nkey = %s/server.key\n"
	    "station_ca = %s/station-ca.pem\n"
	    "[hsm]\nmodule = " CS_SOFTHSM_MODULE "\ntoken = cs-firmware\n"
	    "pin_file = %s/token/pin\nsessions = 4\nfirmware_key = fw-seal\n"
	    "[firmware]\ntargets_dir = %s/station/targets\n",
	    f->dir, f->port, f->dir, f->dir, f->dir, f->dir, f->dir,
	    getenv("CS_SOURCE_DIR"));
	tu_write_file(f->conf, text);
	snprintf(f->sconf, sizeof(f->sconf), "%s/station.conf", f->dir);
	snprintf(text, sizeof(text),
	    "[station]\nname = gang1\n"
	    "authority_url = tls+tcp://127.0.0.1:%d\n"
	    "authority_id = e2e-authority\n"
	    "ca = %s/ca.pem\ncert = %s/gang1.pem\nkey = %s/gang1.key\n"
	    "timeout_ms = 10000\n",
	    f->port, f->dir, f->dir, f->dir);
	tu_write_file(f->sconf, text);

	/* The key that seals the images orders hold. */
	snprintf(cmd, sizeof(cmd), "%s/token/pin", f->dir);
	setenv("COUNTERSIGN_HSM_MODULE", CS_SOFTHSM_MODULE, 1);
	setenv("COUNTERSIGN_HSM_TOKEN", "cs-firmware", 1);
	setenv("COUNTERSIGN_HSM_PIN_FILE", cmd, 1);
	expect(f, run(f, f->keytool, "keygen", "--label", "fw-seal", "--alg",
	    "aes256", NULL), 0, NULL);
	expect(f, ADMIN(f, "ca", "init"), 0, NULL);
	start_authority(f);
	expect(f, ADMIN(f, "key", "add", "--label", "fw-p256"), 0, NULL);
	expect(f, run(f, f->station, "-c", f->sconf, "init", NULL), 0, NULL);
	snprintf(cmd, sizeof(cmd), "%s/gang1.csr", f->dir);
	snprintf(text, sizeof(text), "%s/gang1.pem", f->dir);
	expect(f, ADMIN(f, "station", "enroll", "--csr", cmd, "--name", "gang1",
	    "--cm", "acme", "-o", text), 0, NULL);
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f == NULL) {
		return 0;
	}
	kill_devices(f);
	if (f->pid > 0) {
		tu_stop(f->pid, SIGTERM, 15000);
	}
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/* Four devices at once; each boots "device authorized". */
static void
test_gang_of_four(void **state)
{
	struct fx *f = *state;
	uint8_t    uid[8];
	int        i, rv;

	order(f, "PO-GANG", "10");
	for (i = 0; i < NDEV; i++) {
		make_uid(uid, 1, (unsigned)i);
		start_device(f, i, uid);
	}
	rv = station_run(f, "PO-GANG", NDEV);
	if (rv != 0 || count_of(f->out, "\"event\":\"programmed\"") != NDEV) {
		fprintf(stderr, "station run: exit %d\n%s\n", rv, f->out);
		fail();
	}
	for (i = 0; i < NDEV; i++) {
		assert_int_equal(device_exit(f, i), 0); /* authorized */
	}
	expect(f, ADMIN(f, "order", "show", "PO-GANG"), 0, "issued      4");
	assert_non_null(strstr(f->out, "confirmed   4"));
}

/* Another device's flash (image and record) on a fifth device. */
static void
test_copied_flash_refused(void **state)
{
	struct fx *f = *state;
	char       rec[700], dev[128], recdev[760];
	uint8_t    uid[8];
	int        rv;

	/* The record device 0 of the gang got. */
	snprintf(rec, sizeof(rec), "%s/dev0.rec", f->dir);
	expect(f, ADMIN(f, "device", "show", "5eed011020304000", "--order",
	    "PO-GANG", "--record-out", rec), 0, NULL);
	make_uid(uid, 1, 99); /* a fifth chip */
	snprintf(dev, sizeof(dev), "loader,addr=0x2000FF00,data=0x%02x%02x%02x"
	    "%02x%02x%02x%02x%02x,data-len=8", uid[7], uid[6], uid[5], uid[4],
	    uid[3], uid[2], uid[1], uid[0]);
	snprintf(recdev, sizeof(recdev), "loader,file=%s,addr=0x3F000", rec);
	rv = run(f, "timeout", "60", CS_QEMU, "-M", "lm3s6965evb",
	    "-nographic", "-monitor", "none", "-serial", "none",
	    "-semihosting-config", "enable=on,target=native", "-kernel", f->elf,
	    "-device", dev, "-device", recdev, NULL);
	expect(f, rv, 1, "UNAUTHORIZED");
}

/* Quota 3, four devices: three made, one refused, counters exact. */
static void
test_quota_three_of_four(void **state)
{
	struct fx *f = *state;
	uint8_t    uid[8];
	int        i, ok = 0, rv;

	order(f, "PO-THREE", "3");
	for (i = 0; i < NDEV; i++) {
		make_uid(uid, 2, (unsigned)i);
		start_device(f, i, uid);
	}
	rv = station_run(f, "PO-THREE", NDEV);
	if (rv != 5 || count_of(f->out, "\"event\":\"programmed\"") != 3 ||
	    strstr(f->out, "quota-exhausted") == NULL) {
		fprintf(stderr, "station run: exit %d\n%s\n", rv, f->out);
		fail();
	}
	/* A programmed device's firmware exits by itself (0: authorized);
	 * the one left untouched stays halted until it is killed. */
	for (i = 0; i < NDEV; i++) {
		if (tu_stop(f->qemu[i], 0, 5000) == 0) {
			ok++;
		}
		f->qemu[i] = 0;
	}
	assert_int_equal(ok, 3);
	expect(f, ADMIN(f, "order", "show", "PO-THREE"), 0, "issued      3");
	assert_non_null(strstr(f->out, "remaining   0"));
}

/*
 * The authority killed in the middle of a run and restarted: a run of 8
 * devices on 4 probes; after the first four, the authority is killed
 * (-9) and the next four devices are connected while it is down; the
 * station waits, the authority comes back, the run completes.
 */
static void
test_authority_restart_mid_run(void **state)
{
	struct fx *f = *state;
	uint8_t    uid[8];
	char       urls[NDEV][700], log[700];
	char      *argv[40];
	pid_t      st;
	int        i, k = 0, rv;

	order(f, "PO-KILL", "20");
	for (i = 0; i < NDEV; i++) {
		make_uid(uid, 3, (unsigned)i);
		start_device(f, i, uid);
	}
	snprintf(log, sizeof(log), "%s/run-kill.log", f->dir);
	argv[k++] = f->station;
	argv[k++] = (char *)"-c";
	argv[k++] = f->sconf;
	argv[k++] = (char *)"run";
	argv[k++] = (char *)"--order";
	argv[k++] = (char *)"PO-KILL";
	argv[k++] = (char *)"--image";
	argv[k++] = f->elf;
	argv[k++] = (char *)"--target";
	argv[k++] = f->target;
	argv[k++] = (char *)"--json";
	argv[k++] = (char *)"--count";
	argv[k++] = (char *)"8";
	argv[k++] = (char *)"--next-device-s";
	argv[k++] = (char *)"60";
	for (i = 0; i < NDEV; i++) {
		argv[k++] = (char *)"--probe";
		argv[k++] = (char *)probe_url(f, i, urls[i], sizeof(urls[i]));
	}
	argv[k] = NULL;
	st = tu_spawn(argv, log);

	/* The first four devices, then pull the plug. */
	for (i = 0; i < NDEV; i++) {
		assert_int_equal(device_exit(f, i), 0);
	}
	assert_true(f->pid > 0); /* never kill(0 or -1) */
	kill(f->pid, SIGKILL);
	tu_stop(f->pid, SIGKILL, 5000);
	f->pid = 0;
	/* The next four devices arrive while the authority is down. */
	for (i = 0; i < NDEV; i++) {
		make_uid(uid, 4, (unsigned)i);
		start_device(f, i, uid);
	}
	assert_true(tu_wait_for_line(log, "\"event\":\"waiting\"", NULL, 0,
	    30000));
	sleep(1);
	start_authority(f);
	rv = tu_stop(st, 0, 120000);
	{
		FILE  *fp = fopen(log, "r");
		size_t n  = fp != NULL ? fread(f->out, 1, sizeof(f->out) - 1, fp)
		                       : 0;

		if (fp != NULL) {
			fclose(fp);
		}
		f->out[n] = '\0';
	}
	if (rv != 0) {
		fprintf(stderr, "station run: exit %d\n%s\n", rv, f->out);
		fail();
	}
	for (i = 0; i < NDEV; i++) {
		assert_int_equal(device_exit(f, i), 0);
	}
	assert_int_equal(count_of(f->out, "\"event\":\"programmed\""),
	    2 * NDEV);
	assert_non_null(strstr(f->out, "\"event\":\"authority-back\""));
	print_message("run across the restart: %u waiting, %u signed, %u "
	    "programmed\n", count_of(f->out, "\"event\":\"waiting\""),
	    count_of(f->out, "\"event\":\"signed\""),
	    count_of(f->out, "\"event\":\"programmed\""));
	/* No unit lost, none counted twice. */
	expect(f, ADMIN(f, "order", "show", "PO-KILL"), 0, "issued      8");
	assert_non_null(strstr(f->out, "confirmed   8"));
}

/*
 * The image's bytes, to look for copies of: its flat form (what the
 * authority serves), cut into aligned 32-byte blocks.  Any 64-byte window
 * of the image contains one of them whole, so a file without any block
 * holds no 64-byte window.  Blocks of few distinct values (0xFF gaps,
 * zero tables) could match anything and are left out.
 */
#define BLK 32u

struct blocks {
	uint64_t *hash; /* sorted */
	size_t    n;
	uint8_t  *flat;
	size_t    len;
};

static uint64_t
blk_hash(const uint8_t *p)
{
	uint64_t h = 0;

	for (unsigned i = 0; i < BLK; i++) {
		h = h * 1099511628211ull + p[i];
	}
	return h;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
blocks_make(struct blocks *b, const char *elf, const char *target)
{
	struct image  img;
	struct target t;
	uint32_t      base;
	char          err[512];

	memset(b, 0, sizeof(*b));
	assert_int_equal(image_load(&img, elf, IMAGE_AUTO, 0, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(target_load(&t, target, NULL, err, sizeof(err)),
	    CS_OK);
	assert_int_equal(image_flatten(&img, &t, &base, &b->flat, &b->len),
	    CS_OK);
	image_free(&img);
	b->hash = calloc(b->len / BLK + 1, sizeof(*b->hash));
	assert_non_null(b->hash);
	for (size_t off = 0; off + BLK <= b->len; off += BLK) {
		bool seen[256] = {false};
		unsigned distinct = 0;

		for (unsigned i = 0; i < BLK; i++) {
			distinct += !seen[b->flat[off + i]];
			seen[b->flat[off + i]] = true;
		}
		if (distinct >= 8) {
			b->hash[b->n++] = blk_hash(b->flat + off);
		}
	}
	qsort(b->hash, b->n, sizeof(*b->hash), u64_cmp);
	assert_true(b->n > 100); /* a real firmware, not filler */
}

static void
blocks_free(struct blocks *b)
{
	free(b->hash);
	free(b->flat);
}

/* Whether the file at path holds one of the blocks (rolling hash, then
 * the bytes compared).  drop: take every block found out of the set
 * (and go on looking) instead. */
static bool
file_blocks(struct blocks *b, const char *path, bool drop)
{
	uint64_t pw = 1, h = 0;
	uint8_t *d;
	size_t   n;
	FILE    *fp = fopen(path, "rb");
	struct stat sb;
	bool     found = false;

	if (fp == NULL || fstat(fileno(fp), &sb) != 0 || sb.st_size < BLK ||
	    sb.st_size > (256 << 20)) {
		if (fp != NULL) {
			fclose(fp);
		}
		return false;
	}
	d = malloc((size_t)sb.st_size);
	assert_non_null(d);
	n = fread(d, 1, (size_t)sb.st_size, fp);
	fclose(fp);
	for (unsigned i = 0; i < BLK - 1; i++) {
		pw *= 1099511628211ull;
	}
	for (size_t i = 0; i < n && !found; i++) {
		if (i >= BLK) {
			h -= d[i - BLK] * pw;
		}
		h = h * 1099511628211ull + d[i];
		if (i + 1 >= BLK && bsearch(&h, b->hash, b->n, sizeof(h),
		        u64_cmp) != NULL) {
			const uint8_t *w = d + i + 1 - BLK;

			for (size_t off = 0; off + BLK <= b->len && !found;
			     off += BLK) {
				found = memcmp(w, b->flat + off, BLK) == 0;
			}
			if (found && drop) {
				uint64_t *e = bsearch(&h, b->hash, b->n,
				    sizeof(h), u64_cmp);

				*e = UINT64_MAX;
				qsort(b->hash, b->n, sizeof(h), u64_cmp);
				b->n--;
				found = false;
			}
		}
	}
	free(d);
	return found;
}

static bool
file_has_block(const struct blocks *b, const char *path)
{
	return file_blocks((struct blocks *)b, path, false);
}

/* Every regular file under dir that holds a block: named on stderr. */
static unsigned
tree_has_block(const struct blocks *b, const char *dir)
{
	DIR           *dp = opendir(dir);
	struct dirent *e;
	unsigned       hits = 0;

	assert_non_null(dp);
	while ((e = readdir(dp)) != NULL) {
		char        path[1200];
		struct stat sb;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &sb) != 0) {
			continue;
		}
		if (S_ISDIR(sb.st_mode)) {
			hits += tree_has_block(b, path);
		} else if (S_ISREG(sb.st_mode) && file_has_block(b, path)) {
			fprintf(stderr, "image bytes found in %s\n", path);
			hits++;
		}
	}
	closedir(dp);
	return hits;
}

/*
 * An order whose image the authority holds: the station runs with no
 * image file and a fresh directory as its home, temporary directory and
 * working directory; it fetches the image into memory and programs four
 * devices that measure themselves and boot "device authorized".  No file
 * the test's directory holds afterwards (the station's home, the
 * authority's store, logs) contains 64 bytes of the image in a row.
 */
static void
test_held_image_never_on_disk(void **state)
{
	struct fx    *f = *state;
	struct blocks b;
	uint8_t       uid[8];
	char          home[700], cwd[1024], urls[NDEV][700], targets[700];
	char         *argv[32], *old_home, *old_tmp;
	int           i, k = 0, rv;

	snprintf(targets, sizeof(targets), "%s/station/targets",
	    getenv("CS_SOURCE_DIR"));
	{
		char product[16];

		snprintf(product, sizeof(product), "%u",
		    (unsigned)CS_FW_PRODUCT_ID);
		expect(f, ADMIN(f, "order", "create", "--id", "PO-HELD",
		    "--product", product, "--key", "fw-p256", "--quota", "10",
		    "--uid-len", "8", "--cm", "acme", "--target", "lm3s6965",
		    "--firmware", f->elf, "--targets-dir", targets), 0,
		    "PO-HELD");
	}
	blocks_make(&b, f->elf, f->target);
	/* The check finds the bytes where they are. */
	assert_true(file_has_block(&b, f->elf));
	/* The firmware has the OEM's public key compiled in, which the HSM
	 * token (and the authority's key table) hold anyway: those blocks
	 * are not the image's secret. */
	{
		size_t before = b.n;
		char   pub[700];

		snprintf(pub, sizeof(pub), "%s/fw-pub.der", f->dir);
		expect(f, run(f, f->keytool, "export", "--label", "fw-p256",
		    "--format", "der", "-o", pub, NULL), 0, NULL);
		file_blocks(&b, pub, true);
		fprintf(stderr, "image blocks: %zu checked, %zu left out (the "
		    "public key)\n", b.n, before - b.n);
		assert_true(before - b.n <= 3);
	}
	/* What an authorized device prints (main.c) comes from the image's
	 * string literals and lands in its log by design: a block that lies
	 * wholly inside that text (where one falls depends on the image's
	 * layout) is not the image's secret either. */
	{
		size_t before = b.n;
		char   said[700];
		FILE  *fp;

		snprintf(said, sizeof(said), "%s/fw-says.txt", f->dir);
		fp = fopen(said, "w");
		assert_non_null(fp);
		fputs("countersign: stack high-water mark \n"
		    "countersign: device authorized\n", fp);
		assert_int_equal(fclose(fp), 0);
		file_blocks(&b, said, true);
		assert_int_equal(unlink(said), 0);
		fprintf(stderr, "image blocks: %zu left out (text the firmware "
		    "prints)\n", before - b.n);
		assert_true(before - b.n <= 2);
	}

	for (i = 0; i < NDEV; i++) {
		make_uid(uid, 5, (unsigned)i);
		start_device(f, i, uid);
	}
	snprintf(home, sizeof(home), "%s/station-home", f->dir);
	assert_int_equal(mkdir(home, 0700), 0);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	old_home = getenv("HOME") != NULL ? strdup(getenv("HOME")) : NULL;
	old_tmp  = getenv("TMPDIR") != NULL ? strdup(getenv("TMPDIR")) : NULL;
	setenv("HOME", home, 1);
	setenv("TMPDIR", home, 1);
	assert_int_equal(chdir(home), 0);
	argv[k++] = f->station;
	argv[k++] = (char *)"-c";
	argv[k++] = f->sconf;
	argv[k++] = (char *)"run";
	argv[k++] = (char *)"--order";
	argv[k++] = (char *)"PO-HELD";
	argv[k++] = (char *)"--target";
	argv[k++] = f->target;
	argv[k++] = (char *)"--json";
	argv[k++] = (char *)"--next-device-s";
	argv[k++] = (char *)"5";
	for (i = 0; i < NDEV; i++) {
		argv[k++] = (char *)"--probe";
		argv[k++] = (char *)probe_url(f, i, urls[i], sizeof(urls[i]));
	}
	argv[k] = NULL;
	rv = tu_run(argv, f->out, sizeof(f->out));
	assert_int_equal(chdir(cwd), 0);
	if (old_home != NULL) {
		setenv("HOME", old_home, 1);
	} else {
		unsetenv("HOME");
	}
	if (old_tmp != NULL) {
		setenv("TMPDIR", old_tmp, 1);
	} else {
		unsetenv("TMPDIR");
	}
	free(old_home);
	free(old_tmp);
	if (rv != 0 || count_of(f->out, "\"event\":\"programmed\"") != NDEV ||
	    strstr(f->out, "\"source\":\"held\"") == NULL) {
		fprintf(stderr, "station run: exit %d\n%s\n", rv, f->out);
		fail();
	}
	/* The firmware event, and each device's device and programmed. */
	assert_int_equal(count_of(f->out, "\"firmware_checked\":true"),
	    2 * NDEV + 1);
	for (i = 0; i < NDEV; i++) {
		assert_int_equal(device_exit(f, i), 0); /* authorized */
	}
	expect(f, ADMIN(f, "order", "show", "PO-HELD"), 0, "issued      4");
	assert_non_null(strstr(f->out, "confirmed   4"));
	assert_int_equal(tree_has_block(&b, home), 0);
	assert_int_equal(tree_has_block(&b, f->dir), 0);
	blocks_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gang_of_four),
	    cmocka_unit_test(test_copied_flash_refused),
	    cmocka_unit_test(test_quota_three_of_four),
	    cmocka_unit_test(test_authority_restart_mid_run),
	    cmocka_unit_test(test_held_image_never_on_disk),
	};

	return tu_run_tests("station_e2e", tests, setup, teardown);
}
