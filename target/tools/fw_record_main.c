/*
 * fw_record_main.c - cs-fw-record: sign one device record with the example
 * firmware's test key, for the build's own measurements.
 *
 *     cs-fw-record KEY_DIR ALG UID_HEX PRODUCT OUT.bin
 *
 * KEY_DIR is the SoftHSM token directory made by
 * target/cortex-m/make-fw-key.sh (token "cs-firmware", keys "fw-p256" and
 * "fw-ed25519"); ALG is p256 or ed25519.  The record is for the device
 * UID_HEX (2..64 hex digits), product PRODUCT, serial 1, order
 * "PO-QEMU-1", not bound to a firmware digest: the record a good device
 * boots with, which count-insns.sh runs each firmware on to count the
 * instructions of a verify.  A build helper, not installed.  Exits 0, or
 * 1 with a message.
 */
#include "cs_err.h"
#include "cs_hsm.h"
#include "record_encode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Parse hex into out (at most max bytes); returns the length or 0. */
static size_t
parse_hex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex);

	if (n == 0 || n % 2 != 0 || n / 2 > max) {
		return 0;
	}
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_digit((unsigned char)hex[2 * i]);
		int lo = hex_digit((unsigned char)hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			return 0;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n / 2;
}

int
main(int argc, char **argv)
{
	struct cs_hsm_opts      o;
	struct cs_hsm_key       key;
	struct cs_record_fields f;
	cs_hsm                 *h = NULL;
	uint8_t                 uid[32], rec[CS_RECORD_MAX_LEN];
	char                    conf[1024], pin[1024], label[32], err[512];
	char                   *end;
	unsigned long           product;
	size_t                  uid_len, len = 0;
	FILE                   *fp;
	int                     rv;

	if (argc != 6) {
		fprintf(stderr, "usage: cs-fw-record KEY_DIR ALG UID_HEX "
		    "PRODUCT OUT.bin\n");
		return 1;
	}
	uid_len = parse_hex(argv[3], uid, sizeof(uid));
	product = strtoul(argv[4], &end, 0);
	if (uid_len == 0 || *end != '\0' || product > 0xFFFFFFFFul ||
	    (strcmp(argv[2], "p256") != 0 &&
	    strcmp(argv[2], "ed25519") != 0)) {
		fprintf(stderr, "cs-fw-record: bad UID, product or ALG\n");
		return 1;
	}
	snprintf(conf, sizeof(conf), "%s/token/softhsm2.conf", argv[1]);
	snprintf(pin, sizeof(pin), "%s/token/pin", argv[1]);
	snprintf(label, sizeof(label), "fw-%s", argv[2]);
	if (setenv("SOFTHSM2_CONF", conf, 1) != 0) {
		return 1;
	}
	memset(&o, 0, sizeof(o));
	o.module   = CS_SOFTHSM_MODULE;
	o.token    = "cs-firmware";
	o.pin_file = pin;
	if ((rv = cs_hsm_open(&h, &o, err, sizeof(err))) != CS_OK) {
		fprintf(stderr, "cs-fw-record: %s\n", err);
		return 1;
	}
	memset(&f, 0, sizeof(f));
	f.product_id = (uint32_t)product;
	f.serial     = 1;
	f.uid        = uid;
	f.uid_len    = uid_len;
	if ((rv = cs_hsm_key(h, label, &key)) != CS_OK ||
	    (rv = cs_record_order_hash("PO-QEMU-1", f.order_hash)) != CS_OK ||
	    (rv = cs_record_sign_hsm(h, &key, &f, rec, sizeof(rec), &len)) !=
	    CS_OK) {
		fprintf(stderr, "cs-fw-record: signing with %s failed (%d)\n",
		    label, rv);
		cs_hsm_close(h);
		return 1;
	}
	cs_hsm_close(h);
	fp = fopen(argv[5], "wb");
	if (fp == NULL || fwrite(rec, 1, len, fp) != len) {
		fprintf(stderr, "cs-fw-record: cannot write %s\n", argv[5]);
		if (fp != NULL) {
			fclose(fp);
		}
		return 1;
	}
	if (fclose(fp) != 0) {
		fprintf(stderr, "cs-fw-record: cannot write %s\n", argv[5]);
		return 1;
	}
	return 0;
}
