/*
 * qemu_test.c - the example firmware on emulated devices (QEMU
 * lm3s6965evb, Cortex-M3).  Each test boots the cross-built image with a
 * device record in its flash page and a UID in its UID mailbox, exactly as
 * a programmed device would start, and checks the verdict line and the
 * exit status.  Records are signed through the HSM shim with the key the
 * firmware was built to trust (the build's SoftHSM token, made by
 * target/cortex-m/make-fw-key.sh).
 *
 * Three images: P-256 and Ed25519 in the size profile, P-256 in the speed
 * profile (wolfCrypt's Cortex-M assembly, fw-p256speed); the P-256 cases
 * run on both P-256 images.
 *
 * Memory map (target/examples/lm3s6965/README.md): record at 0x0003F000,
 * UID (8 bytes) at 0x2000FF00.
 *
 * The firmware measures itself at boot (measure.c).  test_fw_digest_*
 * bind records to the image's digest as the station and the authority
 * compute it (image_digest over the ELF) and change single flash bytes
 * inside and outside the measured span through QEMU's gdbstub with
 * gdb-multiarch, on a device halted before its first instruction.
 */
#include "countersign/verify.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "cs_image.h"
#include "cs_target.h"
#include "record_encode.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* Two emulated devices. */
static const uint8_t UID_A[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
    0xef};
static const uint8_t UID_B[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
    0xee};

struct fx {
	char   *dir;
	cs_hsm *h;
	char    out[16384];
};

static int
setup(void **state)
{
	struct fx         *f = calloc(1, sizeof(*f));
	struct cs_hsm_opts o;
	char               conf[512], pin[512], err[512];
	int                rv;

	assert_non_null(f);
	f->dir = tu_tmpdir();
	snprintf(conf, sizeof(conf), "%s/token/softhsm2.conf", CS_FW_KEY_DIR);
	snprintf(pin, sizeof(pin), "%s/token/pin", CS_FW_KEY_DIR);
	assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
	memset(&o, 0, sizeof(o));
	o.module   = CS_SOFTHSM_MODULE;
	o.token    = "cs-firmware";
	o.pin_file = pin;
	rv         = cs_hsm_open(&f->h, &o, err, sizeof(err));
	if (rv != CS_OK) {
		fprintf(stderr, "cs_hsm_open: %s\n", err);
	}
	assert_int_equal(rv, CS_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	cs_hsm_close(f->h);
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* A record for uid signed with the firmware's key of alg, into path;
 * bound to the firmware digest fw when it is not NULL. */
static void
write_record_fw(struct fx *f, const char *alg, const uint8_t *uid,
    uint32_t product, const uint8_t *fw, const char *name, char *path,
    size_t len, uint8_t *rec, size_t *rec_len)
{
	struct cs_hsm_key       key;
	struct cs_record_fields fields;
	char                    label[64];
	FILE                   *fp;

	snprintf(label, sizeof(label), "fw-%s", alg);
	assert_int_equal(cs_hsm_key(f->h, label, &key), CS_OK);
	memset(&fields, 0, sizeof(fields));
	fields.product_id = product;
	fields.serial     = 1;
	fields.uid        = uid;
	fields.uid_len    = 8;
	fields.firmware_digest = fw;
	assert_int_equal(cs_record_order_hash("PO-QEMU-1", fields.order_hash),
	    CS_OK);
	assert_int_equal(cs_record_sign_hsm(f->h, &key, &fields, rec,
	    CS_RECORD_MAX_LEN, rec_len), CS_OK);
	tu_path(path, len, f->dir, name);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(rec, 1, *rec_len, fp), *rec_len);
	fclose(fp);
}

static void
write_record(struct fx *f, const char *alg, const uint8_t *uid,
    uint32_t product, const char *name, char *path, size_t len,
    uint8_t *rec, size_t *rec_len)
{
	write_record_fw(f, alg, uid, product, NULL, name, path, len, rec,
	    rec_len);
}

static void
write_bytes(const char *path, const uint8_t *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	fclose(fp);
}

/* A flash byte to change before the device starts (boot_patched). */
struct patch {
	uint32_t addr;
	uint8_t  value;
};

/*
 * Start QEMU (argv, with room for 4 more arguments from index at) halted
 * with a gdbstub on a Unix socket, write the patch with gdb-multiarch,
 * detach (QEMU's gdbstub resumes the guest then) and wait for the
 * firmware's exit; QEMU's output into f->out.
 */
static int
run_with_gdb(struct fx *f, char **argv, int at, const struct patch *p)
{
#ifdef CS_GDB
	char   sock[600], gdb_dev[640], log[600], target[640], set[128];
	char   x[64], readback[64], gdb_out[4096];
	pid_t  qemu;
	int    status, gdb_status;
	FILE  *fp;
	size_t n;

	tu_path(sock, sizeof(sock), f->dir, "gdb.sock");
	tu_path(log, sizeof(log), f->dir, "qemu.log");
	unlink(sock);
	snprintf(gdb_dev, sizeof(gdb_dev), "unix:%s,server=on,wait=off", sock);
	argv[at]     = "-S";
	argv[at + 1] = "-gdb";
	argv[at + 2] = gdb_dev;
	argv[at + 3] = NULL;
	qemu         = tu_spawn(argv, log);
	for (int i = 0; i < 1000 && access(sock, F_OK) != 0; i++) {
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(access(sock, F_OK), 0);

	snprintf(target, sizeof(target), "target remote %s", sock);
	snprintf(set, sizeof(set), "set {unsigned char}0x%x = 0x%02x",
	    (unsigned)p->addr, p->value);
	snprintf(x, sizeof(x), "x/1xb 0x%x", (unsigned)p->addr);
	snprintf(readback, sizeof(readback), "0x%x:\t0x%02x",
	    (unsigned)p->addr, p->value);
	{
		char *gdb[] = {"timeout", "120", CS_GDB, "-batch", "-nx",
		    "-ex", "set confirm off", "-ex", target, "-ex", set,
		    "-ex", x, "-ex", "detach", NULL};
		gdb_status = tu_run(gdb, gdb_out, sizeof(gdb_out));
	}
	status = tu_stop(qemu, 0, 120000); /* signal 0: only wait */
	fp     = fopen(log, "r");
	assert_non_null(fp);
	n = fread(f->out, 1, sizeof(f->out) - 1, fp);
	f->out[n] = '\0';
	fclose(fp);
	/* gdb's exit status is not the verdict: the firmware may exit (and
	 * QEMU close the socket) while gdb is still detaching. */
	if (strstr(gdb_out, readback) == NULL) {
		fprintf(stderr, "gdb-multiarch (exit %d) did not write "
		    "\"%s\":\n%s\n", gdb_status, readback, gdb_out);
		fail();
	}
	return status;
#else
	(void)f, (void)argv, (void)at, (void)p;
	skip(); /* no gdb-multiarch (deploy/debian-packages.txt) */
	return -1;
#endif
}

/* The ELF of image: "p256" and "ed25519" (size profile), "p256speed"
 * (P-256, speed profile: wolfCrypt's Cortex-M assembly). */
static void
fw_elf(char *elf, size_t len, const char *image)
{
	snprintf(elf, len, "%s/fw-%s/countersign-fw.elf", CS_FW_DIR, image);
}

/*
 * Boot image as the device with uid and the record file in flash
 * (NULL: an erased record page).  With p, QEMU starts halted with its
 * gdbstub on a socket in f->dir; gdb-multiarch writes p->value at
 * p->addr, reads it back and detaches, which lets the firmware run to its
 * semihosting exit.  Returns QEMU's exit status (the firmware's); output
 * in f->out.
 */
static int
boot_patched(struct fx *f, const char *image, const uint8_t *uid,
    const char *record, const struct patch *p)
{
	char elf[512], uid_dev[128], rec_dev[640];
	char uid_val[19];
	int  n = 0;

	fw_elf(elf, sizeof(elf), image);
	/* The loader stores data little-endian: byte 0 is the low byte. */
	n = snprintf(uid_val, sizeof(uid_val), "0x");
	for (int i = 7; i >= 0; i--) {
		n += snprintf(uid_val + n, sizeof(uid_val) - (size_t)n, "%02x",
		    uid[i]);
	}
	snprintf(uid_dev, sizeof(uid_dev),
	    "loader,addr=0x2000FF00,data=%s,data-len=8", uid_val);
	snprintf(rec_dev, sizeof(rec_dev), "loader,file=%s,addr=0x3F000",
	    record != NULL ? record : "/dev/null");
	char *argv[] = {"timeout", "120", CS_QEMU, "-M", "lm3s6965evb",
	    "-nographic", "-monitor", "none", "-serial", "none",
	    "-semihosting-config", "enable=on,target=native", "-kernel", elf,
	    "-device", uid_dev, "-device", rec_dev, NULL, NULL, NULL, NULL};
	if (record == NULL) {
		argv[16] = NULL; /* no record loader */
	}
	if (p == NULL) {
		return tu_run(argv, f->out, sizeof(f->out));
	}
	return run_with_gdb(f, argv, record == NULL ? 16 : 18, p);
}

static int
boot(struct fx *f, const char *image, const uint8_t *uid, const char *record)
{
	return boot_patched(f, image, uid, record, NULL);
}

static void
expect_boot(struct fx *f, int status, int want, const char *line)
{
	if (status != want || strstr(f->out, line) == NULL) {
		fprintf(stderr, "exit %d (wanted %d), output:\n%s\n", status,
		    want, f->out);
	}
	assert_int_equal(status, want);
	assert_non_null(strstr(f->out, line));
}

/* The verdicts of image, which verifies alg records. */
static void
devices(struct fx *f, const char *alg, const char *image)
{
	uint8_t rec[CS_RECORD_MAX_LEN];
	size_t  n;
	char    good[512], forged[512], other[512];

	/* Device A with its own record: authorized. */
	write_record(f, alg, UID_A, CS_FW_PRODUCT_ID, "good.bin", good,
	    sizeof(good), rec, &n);
	expect_boot(f, boot(f, image, UID_A, good), 0,
	    "countersign: device authorized");
	assert_null(strstr(f->out, "UNAUTHORIZED"));

	/* The same flash image on device B: refused. */
	expect_boot(f, boot(f, image, UID_B, good), 1,
	    "countersign: UNAUTHORIZED DEVICE (UID_MISMATCH)");

	/* A forged record: A's record with B's UID patched in. */
	rec[CS_RECORD_OFF_UID + 7] = UID_B[7];
	tu_path(forged, sizeof(forged), f->dir, "forged.bin");
	write_bytes(forged, rec, n);
	expect_boot(f, boot(f, image, UID_B, forged), 1,
	    "countersign: UNAUTHORIZED DEVICE (BAD_SIGNATURE)");

	/* A genuine record for another product. */
	write_record(f, alg, UID_A, CS_FW_PRODUCT_ID + 1, "other.bin", other,
	    sizeof(other), rec, &n);
	expect_boot(f, boot(f, image, UID_A, other), 1,
	    "countersign: UNAUTHORIZED DEVICE (WRONG_PRODUCT)");

	/* No record at all (erased page). */
	expect_boot(f, boot(f, image, UID_A, NULL), 1,
	    "countersign: UNAUTHORIZED DEVICE (BAD_MAGIC)");
}

/*
 * Records bound to the firmware digest (docs/record-format.md, "Firmware
 * digest").  The digest is the station's and the authority's
 * (image_digest of the ELF against the lm3s6965 profile); the device
 * computes its own from flash.  That the bound record boots at all shows
 * that the device measured exactly the span the station did: one byte
 * more (QEMU's flash past the image is 0x00) or less gives another
 * digest.
 */
static void
fw_digest(struct fx *f, const char *alg, const char *image)
{
	const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	char              elf[512], err[512], good[512], wrong[512];
	char              name[64];
	struct image      img;
	struct target     t;
	uint8_t           digest[32], rec[CS_RECORD_MAX_LEN];
	size_t            n;
	uint32_t          end;
	const uint8_t    *s;
	const char        unused[] = "measuring failed";
	struct patch      p;

	fw_elf(elf, sizeof(elf), image);
	assert_int_equal(target_load(&t, "lm3s6965", dirs, err, sizeof(err)),
	    CS_OK);
	assert_int_equal(image_load(&img, elf, IMAGE_AUTO, 0, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(image_check(&img, &t, err, sizeof(err)), CS_OK);
	assert_int_equal(image_digest(&img, &t, digest), CS_OK);
	/* one segment from 0 (the example's linker script leaves no gaps,
	 * which -kernel would load as 0x00 instead of 0xFF) */
	assert_int_equal(img.nseg, 1);
	assert_int_equal(img.seg[0].addr, 0);
	end = img.seg[0].len;
	assert_true(end < t.record_addr);

	/* The record binds this image: authorized. */
	snprintf(name, sizeof(name), "fw-%s.bin", alg);
	write_record_fw(f, alg, UID_A, CS_FW_PRODUCT_ID, digest, name, good,
	    sizeof(good), rec, &n);
	assert_int_equal(n, 32 + 8 + 32 + 64);
	expect_boot(f, boot(f, image, UID_A, good), 0,
	    "countersign: device authorized");

	/* A record bound to another image (one bit off): refused. */
	digest[31] ^= 0x01;
	snprintf(name, sizeof(name), "wrong-%s.bin", alg);
	write_record_fw(f, alg, UID_A, CS_FW_PRODUCT_ID, digest, name, wrong,
	    sizeof(wrong), rec, &n);
	expect_boot(f, boot(f, image, UID_A, wrong), 1,
	    "countersign: UNAUTHORIZED DEVICE (FIRMWARE_MISMATCH)");

	/* One byte changed inside the measured span, in places the firmware
	 * never reads (so the verdict can only come from the digest): a
	 * reserved vector table entry, and a message main prints only when
	 * measuring fails. */
	p.addr  = 0x1C; /* vector 7, reserved on the Cortex-M3 */
	p.value = (uint8_t)(img.seg[0].data[0x1C] ^ 0x5A);
	expect_boot(f, boot_patched(f, image, UID_A, good, &p), 1,
	    "countersign: UNAUTHORIZED DEVICE (FIRMWARE_MISMATCH)");
	s = memmem(img.seg[0].data, img.seg[0].len, unused,
	    sizeof(unused) - 1);
	assert_non_null(s);
	p.addr  = (uint32_t)(s - img.seg[0].data);
	p.value = 'M';
	expect_boot(f, boot_patched(f, image, UID_A, good, &p), 1,
	    "countersign: UNAUTHORIZED DEVICE (FIRMWARE_MISMATCH)");

	/* Outside the span, below the record area: not measured, and the
	 * firmware never reads it, so the same record still boots (see
	 * docs/record-format.md for why that is harmless). */
	p.addr  = end;
	p.value = 0x5A;
	expect_boot(f, boot_patched(f, image, UID_A, good, &p), 0,
	    "countersign: device authorized");
	p.addr = t.record_addr - 1;
	expect_boot(f, boot_patched(f, image, UID_A, good, &p), 0,
	    "countersign: device authorized");

	image_free(&img);
}

static void
test_fw_digest_p256(void **state)
{
	fw_digest(*state, "p256", "p256");
}

static void
test_fw_digest_ed25519(void **state)
{
	fw_digest(*state, "ed25519", "ed25519");
}

static void
test_fw_digest_p256speed(void **state)
{
	fw_digest(*state, "p256", "p256speed");
}

static void
test_p256(void **state)
{
	devices(*state, "p256", "p256");
}

static void
test_ed25519(void **state)
{
	devices(*state, "ed25519", "ed25519");
}

/* The P-256 image in the speed profile (wolfCrypt's Cortex-M assembly):
 * the same verdicts. */
static void
test_p256speed(void **state)
{
	devices(*state, "p256", "p256speed");
}

/* A P-256 record shown to the Ed25519 image: that build carries one
 * algorithm only. */
static void
test_other_alg(void **state)
{
	struct fx *f = *state;
	uint8_t    rec[CS_RECORD_MAX_LEN];
	size_t     n;
	char       path[512];

	write_record(f, "p256", UID_A, CS_FW_PRODUCT_ID, "p256.bin", path,
	    sizeof(path), rec, &n);
	expect_boot(f, boot(f, "ed25519", UID_A, path), 1,
	    "countersign: UNAUTHORIZED DEVICE (UNSUPPORTED_ALG)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_p256, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ed25519, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_p256speed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_alg, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fw_digest_p256, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_fw_digest_ed25519, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_fw_digest_p256speed, setup,
	        teardown),
	};

	return tu_run_tests("qemu_test", tests, NULL, NULL);
}
