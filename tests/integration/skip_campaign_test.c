/*
 * skip_campaign_test.c - the instruction-skip fault-injection campaign
 * (target/cortex-m/skip-campaign.py) on the example firmware, both
 * algorithms, two forgeries each:
 *
 *   bad signature  device A's genuine record with one UID byte changed to
 *                  device B's, booted on device B (BAD_SIGNATURE);
 *   wrong UID      device A's genuine record booted on device B
 *                  (UID_MISMATCH).
 *
 * For each, the script boots the firmware once per skipped instruction
 * (every execution of every instruction of the deciding functions, plus a
 * seeded sample of the rest) and fails when any skip makes the device
 * print "device authorized".  CS_SKIP_CAMPAIGN=full in the environment
 * runs the full campaign instead (every instruction the verify executes,
 * hours); CS_SKIP_SAMPLE sets the sample size of the CI run;
 * CS_SKIP_KEEP=DIR also leaves the records in DIR, to rerun the script
 * by hand.
 *
 * Records are signed through the HSM shim with the key the firmware was
 * built to trust, as in qemu_test.c.
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

static const uint8_t UID_A[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
    0xef};
static const uint8_t UID_B[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
    0xee};

struct fx {
	char   *dir;
	cs_hsm *h;
	char    out[1 << 16];
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

/* Device A's genuine record for alg into path; bad_sig: with device B's
 * last UID byte patched in, which breaks the signature. */
static void
write_record(struct fx *f, const char *alg, int bad_sig, char *path,
    size_t len)
{
	struct cs_hsm_key       key;
	struct cs_record_fields fields;
	uint8_t                 rec[CS_RECORD_MAX_LEN];
	size_t                  n;
	char                    label[64], name[64];
	FILE                   *fp;

	snprintf(label, sizeof(label), "fw-%s", alg);
	assert_int_equal(cs_hsm_key(f->h, label, &key), CS_OK);
	memset(&fields, 0, sizeof(fields));
	fields.product_id = CS_FW_PRODUCT_ID;
	fields.serial     = 1;
	fields.uid        = UID_A;
	fields.uid_len    = 8;
	assert_int_equal(cs_record_order_hash("PO-SKIP-1", fields.order_hash),
	    CS_OK);
	assert_int_equal(cs_record_sign_hsm(f->h, &key, &fields, rec,
	    sizeof(rec), &n), CS_OK);
	if (bad_sig) {
		rec[CS_RECORD_OFF_UID + 7] = UID_B[7];
	}
	snprintf(name, sizeof(name), "%s-%s.bin", alg,
	    bad_sig ? "bad-signature" : "wrong-uid");
	tu_path(path, len, f->dir, name);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(rec, 1, n, fp), n);
	fclose(fp);
	if (getenv("CS_SKIP_KEEP") != NULL) {
		char keep[512];

		snprintf(keep, sizeof(keep), "%s/%s", getenv("CS_SKIP_KEEP"),
		    name);
		fp = fopen(keep, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(rec, 1, n, fp), n);
		fclose(fp);
	}
}

static void
campaign(struct fx *f, const char *alg, int bad_sig)
{
	const char *mode   = getenv("CS_SKIP_CAMPAIGN");
	const char *sample = getenv("CS_SKIP_SAMPLE");
	char        elf[512], record[512], label[64], uid[19];
	int         n, rv;

	write_record(f, alg, bad_sig, record, sizeof(record));
	snprintf(elf, sizeof(elf), "%s/fw-%s/countersign-fw.elf", CS_FW_DIR,
	    alg);
	snprintf(label, sizeof(label), "%s/%s", alg,
	    bad_sig ? "bad-signature" : "wrong-uid");
	/* The loader stores data little-endian: byte 0 is the low byte. */
	n = snprintf(uid, sizeof(uid), "0x");
	for (int i = 7; i >= 0; i--) {
		n += snprintf(uid + n, sizeof(uid) - (size_t)n, "%02x",
		    UID_B[i]);
	}
	rv = tu_runl(f->out, sizeof(f->out), "python3", CS_SKIP_SCRIPT,
	    "--elf", elf, "--record", record, "--uid", uid, "--qemu", CS_QEMU,
	    "--label", label, "--mode", mode != NULL ? mode : "ci",
	    "--sample", sample != NULL ? sample : "150", NULL);
	fprintf(stderr, "%s", f->out);
	assert_int_equal(rv, 0);
	assert_non_null(strstr(f->out, " authorized=0 "));
	assert_non_null(strstr(f->out, bad_sig ? "baseline=BAD_SIGNATURE"
					       : "baseline=UID_MISMATCH"));
}

static void
test_p256_bad_signature(void **state)
{
	campaign(*state, "p256", 1);
}

static void
test_p256_wrong_uid(void **state)
{
	campaign(*state, "p256", 0);
}

static void
test_ed25519_bad_signature(void **state)
{
	campaign(*state, "ed25519", 1);
}

static void
test_ed25519_wrong_uid(void **state)
{
	campaign(*state, "ed25519", 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_p256_bad_signature, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_p256_wrong_uid, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_ed25519_bad_signature, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_ed25519_wrong_uid, setup,
	        teardown),
	};

	return tu_run_tests("skip_campaign_test", tests, NULL, NULL);
}
