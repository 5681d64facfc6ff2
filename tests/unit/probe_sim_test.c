/*
 * probe_sim_test.c - the "sim:" probe: URL handling, the NOR flash rules,
 * the read-only UID, every fail= injection, copying a device's flash, and
 * the boot check with a record signed on a SoftHSM2 token and verified by
 * the real target verifier (with the device measuring its firmware), and
 * locking with the lm3s6965-locked profile: reads of flash fail after it,
 * the lock survives a reopen, only a mass erase (probe_sim_recover) undoes
 * it, and fail=lock makes a lock that does not take.
 */
#include "countersign/verify.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "cs_target.h"
#include "probe.h"
#include "probe_sim.h"
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

#define FLASH_PAGE  0x400u
#define RECORD_ADDR 0x3F000u
#define UID_ADDR    0x2000FF00u

#ifndef CS_TARGETS_DIR
#error "build with -DCS_TARGETS_DIR=<source>/station/targets"
#endif

static void
load_target(struct target *t, const char *name)
{
	const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	char              err[512];

	if (target_load(t, name, dirs, err, sizeof(err)) != CS_OK) {
		fail_msg("%s", err);
	}
}

static probe *
open_ok(const char *url)
{
	probe *p = NULL;
	char   err[256];
	int    rv = probe_open(&p, url, 0, err, sizeof(err));

	if (rv != CS_OK) {
		fprintf(stderr, "probe_open(%s): %s\n", url, err);
	}
	assert_int_equal(rv, CS_OK);
	return p;
}

static int
reset_all(void **state)
{
	(void)state;
	probe_sim_reset_all();
	return 0;
}

static void
test_urls(void **state)
{
	probe *p = NULL;
	char   err[256];

	(void)state;
	assert_int_equal(probe_open(&p, "nope", 0, err, sizeof(err)),
	    CS_EADDR);
	assert_non_null(strstr(err, "no scheme"));
	assert_int_equal(probe_open(&p, "usb:x", 0, err, sizeof(err)),
	    CS_EADDR);
	assert_non_null(strstr(err, "unknown scheme"));
	assert_int_equal(probe_open(&p, "sim:a?color=red", 0, err,
	    sizeof(err)), CS_EADDR);
	assert_non_null(strstr(err, "color"));
	assert_int_equal(probe_open(&p, "sim:a?uid=xyz", 0, err, sizeof(err)),
	    CS_EADDR);
	assert_non_null(strstr(err, "uid="));
	assert_int_equal(probe_open(&p, "sim:a?fail=explode", 0, err,
	    sizeof(err)), CS_EADDR);
	assert_non_null(strstr(err, "explode"));
	assert_int_equal(probe_open(&p, "sim:a/b", 0, err, sizeof(err)),
	    CS_EADDR);
	assert_int_equal(probe_open(&p, "sim:a?trust=/nonexistent", 0, err,
	    sizeof(err)), CS_EADDR);
	assert_non_null(strstr(err, "/nonexistent"));
	assert_int_equal(probe_open(&p, "gdb:/x", 0, err, sizeof(err)),
	    CS_EADDR);
	assert_null(p);
	probe_close(NULL);
}

static void
test_uid(void **state)
{
	static const uint8_t def[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
	    0xcd, 0xef};
	uint8_t b[16];
	probe  *p;

	(void)state;
	p = open_ok("sim:u1");
	assert_int_equal(probe_read(p, UID_ADDR, b, 8), CS_OK);
	assert_memory_equal(b, def, 8);
	/* Read-only, and only through the API's rules. */
	assert_int_equal(probe_write(p, UID_ADDR + 4, b, 1), CS_EIO);
	assert_non_null(strstr(probe_error(p), "read-only UID"));
	assert_int_equal(probe_write(p, UID_ADDR - 4, b, 5), CS_EIO);
	assert_int_equal(probe_write(p, UID_ADDR - 4, "abcd", 4), CS_OK);
	assert_int_equal(probe_read(p, UID_ADDR - 4, b, 12), CS_OK);
	assert_memory_equal(b, "abcd", 4);
	assert_memory_equal(b + 4, def, 8);
	probe_close(p);

	p = open_ok("sim:u2?uid=a1:b2:c3:d4:e5:f6:07:08:09:10");
	assert_int_equal(probe_read(p, UID_ADDR, b, 10), CS_OK);
	assert_int_equal(b[0], 0xa1);
	assert_int_equal(b[9], 0x10);
	probe_close(p);
	/* The device keeps its UID when reopened. */
	p = open_ok("sim:u2");
	assert_int_equal(probe_read(p, UID_ADDR, b, 1), CS_OK);
	assert_int_equal(b[0], 0xa1);
	assert_int_equal(probe_reset_halt(p), CS_OK);
	probe_close(p);

	p = open_ok("sim:u1?fail=uid-ff");
	assert_int_equal(probe_read(p, UID_ADDR, b, 8), CS_OK);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(b[i], 0xFF);
	}
	probe_close(p);
}

static void
test_nor(void **state)
{
	uint8_t page[FLASH_PAGE], b[FLASH_PAGE];
	probe  *p;

	(void)state;
	p = open_ok("sim:nor");
	/* Fresh flash is erased. */
	assert_int_equal(probe_read(p, 0x1000, b, sizeof(b)), CS_OK);
	for (size_t i = 0; i < sizeof(b); i++) {
		assert_int_equal(b[i], 0xFF);
	}
	/* Plain writes to flash are refused. */
	assert_int_equal(probe_write(p, 0x1000, "x", 1), CS_EIO);
	assert_non_null(strstr(probe_error(p), "probe_flash_write"));

	for (size_t i = 0; i < sizeof(page); i++) {
		page[i] = (uint8_t)(i * 7);
	}
	assert_int_equal(probe_flash_write(p, 0x1000, FLASH_PAGE, 0x1000, page,
	    sizeof(page)), CS_OK);
	assert_int_equal(probe_flash_done(p), CS_OK);
	assert_int_equal(probe_read(p, 0x1000, b, sizeof(b)), CS_OK);
	assert_memory_equal(b, page, sizeof(page));
	assert_int_equal(probe_bytes(p), 3u * FLASH_PAGE);

	/* Without an erase, only clearing bits works: 0x0e -> 0x0c ok,
	 * 0x00 over 0x00 ok, 0x08 over 0x07 fails and changes nothing. */
	assert_int_equal(probe_flash_write(p, 0, 0, 0x1002, "\x0c", 1),
	    CS_OK);
	assert_int_equal(probe_flash_write(p, 0, 0, 0x1000, "\x00\x08", 2),
	    CS_EIO);
	assert_non_null(strstr(probe_error(p), "0x00001001"));
	assert_non_null(strstr(probe_error(p), "erase"));
	assert_int_equal(probe_read(p, 0x1000, b, 3), CS_OK);
	assert_int_equal(b[0], 0x00);
	assert_int_equal(b[1], 0x07);
	assert_int_equal(b[2], 0x0c);

	/* Erase must be whole pages inside flash; data inside the erase. */
	assert_int_equal(probe_flash_write(p, 0x1001, FLASH_PAGE, 0x1001, b,
	    1), CS_EINVAL);
	assert_int_equal(probe_flash_write(p, 0x3FC00, 2 * FLASH_PAGE,
	    0x3FC00, b, 1), CS_EINVAL);
	assert_int_equal(probe_flash_write(p, 0x1000, FLASH_PAGE, 0x1400, b,
	    1), CS_EINVAL);
	assert_non_null(strstr(probe_error(p), "outside the erased range"));

	/* An erase brings the page back to 0xFF around new data. */
	assert_int_equal(probe_flash_write(p, 0x1000, FLASH_PAGE, 0x1010,
	    "AB", 2), CS_OK);
	assert_int_equal(probe_read(p, 0x1000, b, sizeof(b)), CS_OK);
	assert_int_equal(b[0], 0xFF);
	assert_memory_equal(b + 0x10, "AB", 2);
	assert_int_equal(b[0x12], 0xFF);

	/* Unmapped memory. */
	assert_int_equal(probe_read(p, 0x10000000, b, 4), CS_EIO);
	assert_non_null(strstr(probe_error(p), "0x10000000"));
	assert_int_equal(probe_read(p, 0x3FFFE, b, 4), CS_EIO);
	assert_int_equal(probe_read(p, 0xFFFFFFFF, b, 2), CS_EINVAL);
	probe_close(p);

	/* Reopened: the flash is still there. */
	p = open_ok("sim:nor");
	assert_int_equal(probe_read(p, 0x1010, b, 2), CS_OK);
	assert_memory_equal(b, "AB", 2);
	probe_close(p);
}

static void
test_failures(void **state)
{
	uint8_t b[64];
	probe  *p = NULL;
	char    err[256];

	(void)state;
	memset(b, 0x5a, sizeof(b));
	assert_int_equal(probe_open(&p, "sim:f?fail=open", 0, err,
	    sizeof(err)), CS_EUNAVAIL);
	assert_non_null(strstr(err, "fail=open"));
	assert_null(p);

	p = open_ok("sim:f?fail=read");
	assert_int_equal(probe_read(p, 0, b, 4), CS_EIO);
	assert_non_null(strstr(probe_error(p), "fail=read"));
	probe_close(p);

	p = open_ok("sim:f?fail=flash");
	assert_int_equal(probe_flash_write(p, 0, FLASH_PAGE, 0, b, 4), CS_EIO);
	assert_non_null(strstr(probe_error(p), "fail=flash"));
	assert_int_equal(probe_read(p, 0, b, 4), CS_OK);
	assert_int_equal(b[0], 0xFF); /* nothing erased or written */
	probe_close(p);

	p = open_ok("sim:f?fail=verify");
	memset(b, 0x5a, sizeof(b));
	assert_int_equal(probe_flash_write(p, 0, FLASH_PAGE, 0, b, 64), CS_OK);
	assert_int_equal(probe_read(p, 0, b, 64), CS_OK);
	assert_int_equal(b[0], 0x5b); /* one bit flipped ... */
	assert_int_equal(b[1], 0x5a); /* ... the rest intact */
	probe_close(p);

	/* Unplugged after 100 bytes: a write of 64, then a write of 64 that
	 * stops halfway, then nothing works. */
	p = open_ok("sim:g?fail=disconnect@100,uid-ff");
	memset(b, 0x11, sizeof(b));
	assert_int_equal(probe_flash_write(p, 0, FLASH_PAGE, 0, b, 64), CS_OK);
	assert_int_equal(probe_flash_write(p, 0, 0, 64, b, 64), CS_ECLOSED);
	assert_non_null(strstr(probe_error(p), "disconnected"));
	assert_int_equal(probe_read(p, 0, b, 4), CS_ECLOSED);
	assert_int_equal(probe_write(p, 0x20000000, b, 4), CS_ECLOSED);
	assert_int_equal(probe_reset_halt(p), CS_ECLOSED);
	assert_int_equal(probe_flash_done(p), CS_ECLOSED);
	struct probe_stop st;
	assert_int_equal(probe_run(p, 0, &st), CS_ECLOSED);
	probe_close(p);
	/* What made it into flash before the plug came out: 100 bytes. */
	p = open_ok("sim:g");
	assert_int_equal(probe_read(p, 98, b, 4), CS_OK);
	assert_int_equal(b[1], 0x11);
	assert_int_equal(b[2], 0xFF);
	probe_close(p);
}

static void
test_copy_and_magic_boot(void **state)
{
	struct probe_stop st;
	uint8_t           b[8];
	probe            *p;

	(void)state;
	assert_int_equal(probe_sim_copy_flash("none", "x"), CS_ENOENT);
	assert_int_equal(probe_sim_copy_flash("x", "x"), CS_EINVAL);
	p = open_ok("sim:src");
	/* Without trust=: exit 0 iff the record page starts "CSRD". */
	assert_int_equal(probe_run(p, 0, &st), CS_OK);
	assert_true(st.exited);
	assert_int_equal(st.exit_code, 1);
	assert_int_equal(probe_flash_write(p, RECORD_ADDR, FLASH_PAGE,
	    RECORD_ADDR, "CSRD", 4), CS_OK);
	assert_int_equal(probe_reset_halt(p), CS_OK);
	assert_int_equal(probe_run(p, 0, &st), CS_OK);
	assert_true(st.exited);
	assert_int_equal(st.exit_code, 0);
	probe_close(p);

	assert_int_equal(probe_sim_copy_flash("src", "dst"), CS_OK);
	p = open_ok("sim:dst");
	assert_int_equal(probe_read(p, RECORD_ADDR, b, 4), CS_OK);
	assert_memory_equal(b, "CSRD", 4);
	probe_close(p);
}

/* The boot check with the real verifier and a record signed on a token. */
static void
test_boot_check(void **state)
{
	static const uint8_t uid[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
	    0xcd, 0xef};
	char                    *dir = tu_tmpdir();
	char                     pin[512], trust[512], url[1024], err[256];
	struct cs_hsm_opts       o;
	struct cs_hsm_key        key;
	struct cs_record_fields  fields;
	struct probe_stop        st;
	cs_hsm                  *h = NULL;
	uint8_t                  rec[CS_RECORD_MAX_LEN];
	size_t                   n;
	probe                   *p;
	FILE                    *fp;

	(void)state;
	tu_make_token(dir, "sim-token", "sim-pin-1");
	tu_path(pin, sizeof(pin), dir, "pin");
	memset(&o, 0, sizeof(o));
	o.module   = CS_SOFTHSM_MODULE;
	o.token    = "sim-token";
	o.pin_file = pin;
	assert_int_equal(cs_hsm_open(&h, &o, err, sizeof(err)), CS_OK);
	assert_int_equal(cs_hsm_keygen(h, "fw", CS_ALG_P256, &key), CS_OK);
	memset(&fields, 0, sizeof(fields));
	fields.product_id = 0x1234;
	fields.serial     = 1;
	fields.uid        = uid;
	fields.uid_len    = sizeof(uid);
	assert_int_equal(cs_record_order_hash("PO-SIM-1", fields.order_hash),
	    CS_OK);
	assert_int_equal(cs_record_sign_hsm(h, &key, &fields, rec,
	    sizeof(rec), &n), CS_OK);
	tu_path(trust, sizeof(trust), dir, "trust.der");
	fp = fopen(trust, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(key.spki, 1, key.spki_len, fp), key.spki_len);
	fclose(fp);

	/* Authorized. */
	snprintf(url, sizeof(url), "sim:boot?trust=%s", trust);
	p = open_ok(url);
	assert_int_equal(probe_flash_write(p, RECORD_ADDR, FLASH_PAGE,
	    RECORD_ADDR, rec, n), CS_OK);
	assert_int_equal(probe_run(p, 0, &st), CS_OK);
	assert_true(st.exited);
	assert_int_equal(st.exit_code, 0);
	probe_close(p);

	/* The same flash on another device: refused, and the reason told. */
	assert_int_equal(probe_sim_copy_flash("boot", "clone"), CS_OK);
	snprintf(url, sizeof(url), "sim:clone?uid=0123456789abcdee&trust=%s",
	    trust);
	p = open_ok(url);
	assert_int_equal(probe_run(p, 0, &st), CS_OK);
	assert_int_equal(st.exit_code, 1);
	assert_non_null(strstr(probe_error(p), "UID_MISMATCH"));
	probe_close(p);

	/* Another product, a broken UID, a tampered record. */
	snprintf(url, sizeof(url), "sim:boot?trust=%s&product=0x1235", trust);
	p = open_ok(url);
	assert_int_equal(probe_run(p, 0, &st), CS_OK);
	assert_int_equal(st.exit_code, 1);
	assert_non_null(strstr(probe_error(p), "WRONG_PRODUCT"));
	probe_close(p);
	snprintf(url, sizeof(url), "sim:boot?trust=%s&fail=uid-ff", trust);
	p = open_ok(url);
	assert_int_equal(probe_run(p, 0, &st), CS_OK);
	assert_int_equal(st.exit_code, 1);
	probe_close(p);
	snprintf(url, sizeof(url), "sim:boot?trust=%s", trust);
	p = open_ok(url);
	{
		/* NOR can only clear bits: clear one that is set in the
		 * signature, so the record really changes. */
		uint8_t  b = 0;
		uint32_t a = RECORD_ADDR + 40;

		for (; a < RECORD_ADDR + 100; a++) {
			assert_int_equal(probe_read(p, a, &b, 1), CS_OK);
			if (b != 0) {
				break;
			}
		}
		assert_true(b != 0);
		b &= (uint8_t)(b - 1);
		assert_int_equal(probe_flash_write(p, 0, 0, a, &b, 1), CS_OK);
	}
	assert_int_equal(probe_run(p, 0, &st), CS_OK);
	assert_int_equal(st.exit_code, 1);
	assert_non_null(strstr(probe_error(p), "BAD_SIGNATURE"));
	probe_close(p);

	/* The device measures its firmware: flash from 0 to the end of its
	 * last byte that is not 0xFF below the record area, or to fw_end=. */
	{
		uint8_t fw[FLASH_PAGE], digest[CS_SHA256_LEN], b;

		for (size_t i = 0; i < sizeof(fw); i++) {
			fw[i] = (uint8_t)(i * 5 + 3);
		}
		fw[sizeof(fw) - 1] = 0x42; /* the image does not end in 0xFF */
		assert_int_equal(cs_sha256(fw, sizeof(fw), digest), CS_OK);
		fields.serial          = 2;
		fields.firmware_digest = digest;
		assert_int_equal(cs_record_sign_hsm(h, &key, &fields, rec,
		    sizeof(rec), &n), CS_OK);
		snprintf(url, sizeof(url), "sim:fwd?trust=%s", trust);
		p = open_ok(url);
		assert_int_equal(probe_flash_write(p, 0, FLASH_PAGE, 0, fw,
		    sizeof(fw)), CS_OK);
		assert_int_equal(probe_flash_write(p, RECORD_ADDR, FLASH_PAGE,
		    RECORD_ADDR, rec, n), CS_OK);
		assert_int_equal(probe_run(p, 0, &st), CS_OK);
		assert_true(st.exited);
		if (st.exit_code != 0) {
			fail_msg("boot check: %s", probe_error(p));
		}
		/* One bit of the firmware cleared: refused. */
		b = (uint8_t)(fw[10] & (fw[10] - 1));
		assert_int_equal(probe_flash_write(p, 0, 0, 10, &b, 1), CS_OK);
		assert_int_equal(probe_run(p, 0, &st), CS_OK);
		assert_int_equal(st.exit_code, 1);
		assert_non_null(strstr(probe_error(p), "FIRMWARE_MISMATCH"));
		probe_close(p);

		/* Firmware that ends in 0xFF bytes needs fw_end=. */
		memset(fw + sizeof(fw) - 16, 0xFF, 16);
		assert_int_equal(cs_sha256(fw, sizeof(fw), digest), CS_OK);
		assert_int_equal(cs_record_sign_hsm(h, &key, &fields, rec,
		    sizeof(rec), &n), CS_OK);
		snprintf(url, sizeof(url), "sim:fwff?trust=%s", trust);
		p = open_ok(url);
		assert_int_equal(probe_flash_write(p, 0, FLASH_PAGE, 0, fw,
		    sizeof(fw)), CS_OK);
		assert_int_equal(probe_flash_write(p, RECORD_ADDR, FLASH_PAGE,
		    RECORD_ADDR, rec, n), CS_OK);
		assert_int_equal(probe_run(p, 0, &st), CS_OK);
		assert_int_equal(st.exit_code, 1);
		probe_close(p);
		snprintf(url, sizeof(url), "sim:fwff?trust=%s&fw_end=0x400",
		    trust);
		p = open_ok(url);
		assert_int_equal(probe_run(p, 0, &st), CS_OK);
		assert_int_equal(st.exit_code, 0);
		probe_close(p);
		assert_int_equal(probe_open(&p, "sim:fwff?fw_end=0x3F001", 0,
		    err, sizeof(err)), CS_EADDR);
		assert_non_null(strstr(err, "fw_end="));
		assert_int_equal(probe_open(&p, "sim:fwff?fw_end=0", 0, err,
		    sizeof(err)), CS_EADDR);
		fields.firmware_digest = NULL;
	}

	/* Not a key file. */
	snprintf(url, sizeof(url), "sim:boot?trust=%s", pin);
	assert_int_equal(probe_open(&p, url, 0, err, sizeof(err)), CS_EADDR);
	assert_non_null(strstr(err, "SubjectPublicKeyInfo"));

	cs_hsm_close(h);
	tu_rmtree_free(dir);
}

/* Lock with lm3s6965-locked: flash unreadable and unprogrammable, RAM
 * and UID readable, kept across a reopen, undone only by a mass erase. */
static void
test_lock(void **state)
{
	struct target t;
	uint8_t       fw[FLASH_PAGE], b[FLASH_PAGE];
	probe        *p;

	(void)state;
	load_target(&t, "lm3s6965-locked");
	for (size_t i = 0; i < sizeof(fw); i++) {
		fw[i] = (uint8_t)(i * 3 + 1);
	}
	p = open_ok("sim:lk");
	assert_int_equal(probe_flash_write(p, 0, FLASH_PAGE, 0, fw,
	    sizeof(fw)), CS_OK);
	assert_int_equal(probe_sim_locked("lk"), 0);
	if (probe_protect(p, &t) != CS_OK) {
		fail_msg("probe_protect: %s", probe_error(p));
	}
	assert_string_equal(probe_error(p), "");
	assert_int_equal(probe_sim_locked("lk"), 1);
	/* Flash: no reads, no erase, no programming. */
	assert_int_equal(probe_read(p, 0, b, 4), CS_EIO);
	assert_non_null(strstr(probe_error(p), "read protected"));
	assert_int_equal(probe_read(p, RECORD_ADDR, b, 4), CS_EIO);
	assert_int_equal(probe_flash_write(p, RECORD_ADDR, FLASH_PAGE,
	    RECORD_ADDR, "CSRD", 4), CS_EIO);
	assert_non_null(strstr(probe_error(p), "write protected"));
	/* RAM and the UID stay readable. */
	assert_int_equal(probe_read(p, UID_ADDR, b, 8), CS_OK);
	assert_int_equal(b[0], 0x01);
	assert_int_equal(probe_write(p, 0x20000100, "ram", 3), CS_OK);
	assert_int_equal(probe_read(p, 0x20000100, b, 3), CS_OK);
	assert_memory_equal(b, "ram", 3);
	/* Locking again is harmless: it is locked, and the check says so. */
	assert_int_equal(probe_protect(p, &t), CS_OK);
	probe_close(p);

	/* Committed: a reopen and a reset do not undo it. */
	p = open_ok("sim:lk");
	assert_int_equal(probe_reset_halt(p), CS_OK);
	assert_int_equal(probe_read(p, 0, b, 4), CS_EIO);
	probe_close(p);

	/* The debug port unlock: everything erased, nothing protected. */
	assert_int_equal(probe_sim_recover("nope"), CS_ENOENT);
	assert_int_equal(probe_sim_recover("lk"), CS_OK);
	assert_int_equal(probe_sim_locked("lk"), 0);
	p = open_ok("sim:lk");
	assert_int_equal(probe_read(p, 0, b, sizeof(b)), CS_OK);
	for (size_t i = 0; i < sizeof(b); i++) {
		assert_int_equal(b[i], 0xFF);
	}
	assert_int_equal(probe_flash_write(p, 0, FLASH_PAGE, 0, fw,
	    sizeof(fw)), CS_OK);
	assert_int_equal(probe_read(p, 0, b, sizeof(b)), CS_OK);
	assert_memory_equal(b, fw, sizeof(fw));
	probe_close(p);
}

/* fail=lock: the commits keep nothing, so the reset at the end of the
 * sequence unlocks the part again and the check catches it. */
static void
test_lock_does_not_take(void **state)
{
	struct target t;
	uint8_t       b[4];
	probe        *p;

	(void)state;
	load_target(&t, "lm3s6965-locked");
	p = open_ok("sim:weak?fail=lock");
	assert_int_equal(probe_protect(p, &t), CS_EIO);
	assert_string_equal(probe_error(p), "lock did not take: flash at "
	    "0x00000000 is still readable");
	assert_int_equal(probe_read(p, 0, b, 4), CS_OK);
	probe_close(p);
	/* The same device without the fault locks. */
	p = open_ok("sim:weak");
	assert_int_equal(probe_protect(p, &t), CS_OK);
	probe_close(p);
}

/* What cannot be locked says why; a failing step says which. */
static void
test_lock_refusals(void **state)
{
	struct target t;
	probe        *p;

	(void)state;
	p = open_ok("sim:no");
	load_target(&t, "lm3s6965");
	assert_int_equal(probe_protect(p, &t), CS_EUNIMPL);
	assert_string_equal(probe_error(p), "target lm3s6965 cannot be "
	    "locked: QEMU's lm3s6965evb models no flash protection");
	load_target(&t, "stm32f407");
	assert_int_equal(probe_protect(p, &t), CS_EUNIMPL);
	assert_non_null(strstr(probe_error(p), "no lock steps for sim "
	    "probes"));

	/* A poll that never matches: FCRIS.PRIS is clear on a fresh part. */
	load_target(&t, "lm3s6965-locked");
	t.protect.n_steps = 2;
	t.protect.step[1] = (struct target_step){.op = TARGET_STEP_POLL,
	    .addr = 0x400FD00Cu, .mask = 2, .value = 2, .timeout_ms = 30};
	assert_int_equal(probe_protect(p, &t), CS_ETIMEDOUT);
	assert_string_equal(probe_error(p), "lock sequence step 2: poll "
	    "0x400FD00C timed out after 30 ms (it reads 0x00000000; want "
	    "0x00000002 under mask 0x00000002)");
	/* A write nothing answers. */
	t.protect.step[1] = (struct target_step){.op = TARGET_STEP_WRITE,
	    .addr = 0x50000000u, .value = 1};
	assert_int_equal(probe_protect(p, &t), CS_EIO);
	assert_non_null(strstr(probe_error(p), "lock sequence step 2: write "
	    "0x00000001 to 0x50000000: sim:no: no RAM at 0x50000000"));
	/* A reg check that does not hold, then one that does. */
	t.protect.n_steps     = 1;
	t.protect.check       = TARGET_CHECK_REG;
	t.protect.check_addr  = 0x400FE200u;
	t.protect.check_mask  = 0xFFFFFFFFu;
	t.protect.check_value = 0x12345678u;
	assert_int_equal(probe_protect(p, &t), CS_EIO);
	assert_string_equal(probe_error(p), "lock did not take: 0x400FE200 "
	    "reads 0x00000000, want 0x12345678 under mask 0xFFFFFFFF");
	t.protect.check_value = 0;
	assert_int_equal(probe_protect(p, &t), CS_OK);
	probe_close(p);
	/* A probe that is gone cannot pass a read-fails check. */
	load_target(&t, "lm3s6965-locked");
	p = open_ok("sim:gone?fail=disconnect@0");
	assert_int_equal(probe_protect(p, &t), CS_ECLOSED);
	assert_non_null(strstr(probe_error(p), "lock sequence step 1"));
	probe_close(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_urls, reset_all),
	    cmocka_unit_test_setup(test_uid, reset_all),
	    cmocka_unit_test_setup(test_nor, reset_all),
	    cmocka_unit_test_setup(test_failures, reset_all),
	    cmocka_unit_test_setup(test_copy_and_magic_boot, reset_all),
	    cmocka_unit_test_setup(test_boot_check, reset_all),
	    cmocka_unit_test_setup(test_lock, reset_all),
	    cmocka_unit_test_setup(test_lock_does_not_take, reset_all),
	    cmocka_unit_test_setup(test_lock_refusals, reset_all),
	};

	return cmocka_run_group_tests(tests, NULL, reset_all);
}
