/*
 * qemu_test.c - the example firmware on emulated devices (QEMU
 * lm3s6965evb, Cortex-M3).  Each test boots the cross-built image with a
 * device record in its flash page and a UID in its UID mailbox, exactly as
 * a programmed device would start, and checks the verdict line and the
 * exit status.  Records are signed through the HSM shim with the key the
 * firmware was built to trust (the build's SoftHSM token, made by
 * target/cortex-m/make-fw-key.sh).
 *
 * Memory map (target/examples/lm3s6965/README.md): record at 0x0003F000,
 * UID (8 bytes) at 0x2000FF00.
 */
#include "countersign/verify.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "record_encode.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A record for uid signed with the firmware's key of alg, into path. */
static void
write_record(struct fx *f, const char *alg, const uint8_t *uid,
    uint32_t product, const char *name, char *path, size_t len,
    uint8_t *rec, size_t *rec_len)
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
write_bytes(const char *path, const uint8_t *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	fclose(fp);
}

/*
 * Boot the alg image as the device with uid and the record file in flash
 * (NULL: an erased record page).  Returns QEMU's exit status (the
 * firmware's); output in f->out.
 */
static int
boot(struct fx *f, const char *alg, const uint8_t *uid, const char *record)
{
	char elf[512], uid_dev[128], rec_dev[640];
	char uid_val[19];
	int  n = 0;

	snprintf(elf, sizeof(elf), "%s/fw-%s/countersign-fw.elf", CS_FW_DIR,
	    alg);
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
	    "-device", uid_dev, "-device", rec_dev, NULL};
	if (record == NULL) {
		argv[16] = NULL; /* no record loader */
	}
	return tu_run(argv, f->out, sizeof(f->out));
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

static void
devices(struct fx *f, const char *alg)
{
	uint8_t rec[CS_RECORD_MAX_LEN];
	size_t  n;
	char    good[512], forged[512], other[512];

	/* Device A with its own record: authorized. */
	write_record(f, alg, UID_A, CS_FW_PRODUCT_ID, "good.bin", good,
	    sizeof(good), rec, &n);
	expect_boot(f, boot(f, alg, UID_A, good), 0,
	    "countersign: device authorized");
	assert_null(strstr(f->out, "UNAUTHORIZED"));

	/* The same flash image on device B: refused. */
	expect_boot(f, boot(f, alg, UID_B, good), 1,
	    "countersign: UNAUTHORIZED DEVICE (UID_MISMATCH)");

	/* A forged record: A's record with B's UID patched in. */
	rec[CS_RECORD_OFF_UID + 7] = UID_B[7];
	tu_path(forged, sizeof(forged), f->dir, "forged.bin");
	write_bytes(forged, rec, n);
	expect_boot(f, boot(f, alg, UID_B, forged), 1,
	    "countersign: UNAUTHORIZED DEVICE (BAD_SIGNATURE)");

	/* A genuine record for another product. */
	write_record(f, alg, UID_A, CS_FW_PRODUCT_ID + 1, "other.bin", other,
	    sizeof(other), rec, &n);
	expect_boot(f, boot(f, alg, UID_A, other), 1,
	    "countersign: UNAUTHORIZED DEVICE (WRONG_PRODUCT)");

	/* No record at all (erased page). */
	expect_boot(f, boot(f, alg, UID_A, NULL), 1,
	    "countersign: UNAUTHORIZED DEVICE (BAD_MAGIC)");
}

static void
test_p256(void **state)
{
	devices(*state, "p256");
}

static void
test_ed25519(void **state)
{
	devices(*state, "ed25519");
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
	    cmocka_unit_test_setup_teardown(test_other_alg, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
