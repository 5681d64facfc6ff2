/*
 * record_hsm_test.c - device records signed the way the authority signs
 * them: through the HSM shim on a real SoftHSM2 token
 * (cs_record_sign_hsm), then verified by the target library (cs_target)
 * and by countersign-verify with the public key in both forms the officer
 * exports with countersign-keytool (PEM and the firmware's C header).
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

#define TOKEN   "record-token"
#define PIN     "1357-pin"
#define PRODUCT 77u

static const uint8_t UID[12] = {0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36,
    0x37, 0x38, 0x39, 0x3a, 0x3b};

struct fx {
	char   *dir;
	cs_hsm *h;
	char    pin[512], conf[512];
	char    out[16384];
};

static int
setup(void **state)
{
	struct fx         *f = calloc(1, sizeof(*f));
	char               err[512];
	struct cs_hsm_opts o;
	int                rv;

	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_make_token(f->dir, TOKEN, PIN);
	tu_path(f->conf, sizeof(f->conf), f->dir, "softhsm2.conf");
	tu_path(f->pin, sizeof(f->pin), f->dir, "pin");
	memset(&o, 0, sizeof(o));
	o.module   = CS_SOFTHSM_MODULE;
	o.token    = TOKEN;
	o.pin_file = f->pin;
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

static int
run_verify(struct fx *f, const char *key, const char *uid,
    const char *record)
{
	char  tool[512];
	char *argv[] = {tool, "--key", (char *)key, "--uid", (char *)uid,
	    "--product", "77", (char *)record, NULL};

	tu_program(tool, sizeof(tool), "target", "countersign-verify");
	return tu_run(argv, f->out, sizeof(f->out));
}

static void
hsm_record(struct fx *f, const char *label, cs_alg alg)
{
	struct cs_hsm_key       key;
	struct cs_record_fields fields;
	struct cs_trust_key     tk;
	struct cs_verify_trust  t;
	struct cs_record_info   info;
	uint8_t                 rec[CS_RECORD_MAX_LEN], fw[32];
	size_t                  n;
	char                    path[512], pem[512], hdr[512], kt[512];
	FILE                   *fp;

	assert_int_equal(cs_hsm_keygen(f->h, label, alg, &key), CS_OK);
	memset(&fields, 0, sizeof(fields));
	memset(fw, 0x77, sizeof(fw));
	fields.product_id      = PRODUCT;
	fields.serial          = 3;
	fields.uid             = UID;
	fields.uid_len         = sizeof(UID);
	fields.firmware_digest = fw;
	assert_int_equal(cs_record_order_hash("PO-HSM-7", fields.order_hash),
	    CS_OK);
	assert_int_equal(cs_record_sign_hsm(f->h, &key, &fields, rec,
	    sizeof(rec), &n), CS_OK);
	assert_int_equal(n, 32 + 12 + 32 + 64);
	assert_int_equal(cs_record_sign_hsm(f->h, &key, &fields, rec, n - 1,
	    &n), CS_ETOOBIG);
	assert_int_equal(cs_record_sign_hsm(f->h, &key, &fields, rec,
	    sizeof(rec), &n), CS_OK);

	/* The target library. */
	memset(&tk, 0, sizeof(tk));
	tk.alg = (uint8_t)alg;
	tk.key_id  = key.key_id;
	tk.pub     = key.pub;
	tk.pub_len = key.pub_len;
	memset(&t, 0, sizeof(t));
	t.keys            = &tk;
	t.n_keys          = 1;
	t.product_id      = PRODUCT;
	t.firmware_digest = fw;
	assert_int_equal(cs_verify_record(rec, n, UID, sizeof(UID), &t,
	    &info), CS_VERIFY_OK);
	assert_int_equal(info.serial, 3);
	rec[40] ^= 1;
	assert_int_equal(cs_verify_record(rec, n, UID, sizeof(UID), &t,
	    NULL), CS_VERIFY_BAD_SIGNATURE);
	rec[40] ^= 1;

	/* countersign-verify with the keytool's PEM and C header. */
	tu_path(path, sizeof(path), f->dir, "record.bin");
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(rec, 1, n, fp), n);
	fclose(fp);
	tu_path(pem, sizeof(pem), f->dir, "pub.pem");
	tu_path(hdr, sizeof(hdr), f->dir, "trust_key.h");
	tu_program(kt, sizeof(kt), "hsm-shim", "countersign-keytool");
	assert_int_equal(setenv("COUNTERSIGN_HSM_MODULE", CS_SOFTHSM_MODULE,
	    1), 0);
	assert_int_equal(setenv("COUNTERSIGN_HSM_TOKEN", TOKEN, 1), 0);
	assert_int_equal(setenv("COUNTERSIGN_HSM_PIN_FILE", f->pin, 1), 0);
	char *e1[] = {kt, "export", "--label", (char *)label, "-o", pem,
	    NULL};
	assert_int_equal(tu_run(e1, f->out, sizeof(f->out)), 0);
	char *e2[] = {kt, "export", "--label", (char *)label, "--format",
	    "c-header", "-o", hdr, NULL};
	assert_int_equal(tu_run(e2, f->out, sizeof(f->out)), 0);

	/* The record binds a firmware digest; the tool is not given one,
	 * so it must refuse (fail closed)... */
	assert_int_equal(run_verify(f, pem, "303132333435363738393a3b",
	    path), 1);
	assert_non_null(strstr(f->out, "FIRMWARE_MISMATCH"));
	/* ... and authorize with it. */
	char tool[512], fwhex[65];
	for (int i = 0; i < 32; i++) {
		snprintf(fwhex + 2 * i, 3, "%02x", fw[i]);
	}
	tu_program(tool, sizeof(tool), "target", "countersign-verify");
	for (int i = 0; i < 2; i++) {
		char *argv[] = {tool, "--key", i == 0 ? pem : hdr, "--uid",
		    "303132333435363738393a3b", "--product", "77",
		    "--firmware-digest", fwhex, path, NULL};
		int   rv = tu_run(argv, f->out, sizeof(f->out));
		if (rv != 0) {
			fprintf(stderr, "%s\n", f->out);
		}
		assert_int_equal(rv, 0);
		assert_non_null(strstr(f->out, "authorized"));
		assert_non_null(strstr(f->out, "serial:        3"));
		argv[4] = "303132333435363738393a3c";
		assert_int_equal(tu_run(argv, f->out, sizeof(f->out)), 1);
		assert_non_null(strstr(f->out, "UID_MISMATCH"));
	}
}

static void
test_p256(void **state)
{
	hsm_record(*state, "record-p256", CS_ALG_P256);
}

static void
test_ed25519(void **state)
{
	hsm_record(*state, "record-ed25519", CS_ALG_ED25519);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_p256, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ed25519, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
