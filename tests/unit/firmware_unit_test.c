/*
 * firmware_unit_test.c - authority/firmware.c without an HSM: profiles by
 * name (never a path), the checks on an image's segments, the digest
 * check, and the table of fetches started per connection.  Sealing and
 * fetching with a real token are in tests/integration/firmware_test.c.
 */
#include "cs_err.h"
#include "firmware.h"
#include "test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static firmware *
open_fw(void)
{
	struct firmware_opts o  = {.targets_dir = CS_TARGETS_DIR};
	firmware            *fw = NULL;

	assert_int_equal(firmware_open(&fw, &o), CS_OK);
	assert_null(firmware_key_label(fw));
	return fw;
}

static void
test_targets(void **state)
{
	firmware     *fw = open_fw();
	struct target t;
	char          msg[1024];

	(void)state;
	assert_int_equal(firmware_target(fw, "lm3s6965", &t, msg,
	    sizeof(msg)), CS_OK);
	assert_string_equal(t.name, "lm3s6965");
	assert_int_equal(firmware_target(fw, "no-such", &t, msg, sizeof(msg)),
	    CS_ENOENT);
	assert_non_null(strstr(msg, "lm3s6965"));
	/* Names only: a path, a dot file or a traversal is refused. */
	assert_int_equal(firmware_target(fw, CS_TARGETS_DIR "/lm3s6965.ini",
	    &t, msg, sizeof(msg)), CS_EINVAL);
	assert_non_null(strstr(msg, "not a path"));
	assert_int_equal(firmware_target(fw, "../targets/lm3s6965", &t, msg,
	    sizeof(msg)), CS_EINVAL);
	assert_int_equal(firmware_target(fw, ".hidden", &t, msg, sizeof(msg)),
	    CS_EINVAL);
	assert_int_equal(firmware_target(fw, "", &t, msg, sizeof(msg)),
	    CS_EINVAL);
	firmware_close(fw);
	firmware_close(NULL);
}

static void
test_segments(void **state)
{
	Countersign__V1__FirmwareSegment  s[3], *p[3];
	struct image                      img;
	struct target                     t;
	firmware                         *fw = open_fw();
	uint8_t                           a[64], b[16], digest[32];
	ProtobufCBinaryData               want;
	char                              msg[1024];

	(void)state;
	memset(a, 0x5a, sizeof(a));
	memset(b, 0xa5, sizeof(b));
	for (int i = 0; i < 3; i++) {
		countersign__v1__firmware_segment__init(&s[i]);
		p[i] = &s[i];
	}
	s[0].addr      = 0x100;
	s[0].data.data = a;
	s[0].data.len  = sizeof(a);
	s[1].addr      = 0x140; /* adjacent */
	s[1].data.data = b;
	s[1].data.len  = sizeof(b);
	assert_int_equal(firmware_image(&img, p, 2, msg, sizeof(msg)), CS_OK);
	assert_int_equal(img.nseg, 2);
	assert_int_equal(img.bytes, sizeof(a) + sizeof(b));
	assert_int_equal(firmware_target(fw, "lm3s6965", &t, msg,
	    sizeof(msg)), CS_OK);
	assert_int_equal(firmware_check(&t, &img, NULL, digest, msg,
	    sizeof(msg)), CS_OK);
	want.data = digest;
	want.len  = 32;
	assert_int_equal(firmware_check(&t, &img, &want, digest, msg,
	    sizeof(msg)), CS_OK);
	digest[0] ^= 1;
	uint8_t other[32];
	memcpy(other, digest, 32);
	want.data = other;
	assert_int_equal(firmware_check(&t, &img, &want, digest, msg,
	    sizeof(msg)), CS_EINVAL);
	assert_non_null(strstr(msg, "not the firmware_sha256 given"));
	firmware_image_free(&img);

	/* Overlapping, descending, empty, none, past 4 GiB. */
	s[1].addr = 0x13f;
	assert_int_equal(firmware_image(&img, p, 2, msg, sizeof(msg)),
	    CS_EINVAL);
	assert_non_null(strstr(msg, "overlaps"));
	s[1].addr = 0x10;
	assert_int_equal(firmware_image(&img, p, 2, msg, sizeof(msg)),
	    CS_EINVAL);
	s[1].addr     = 0x200;
	s[1].data.len = 0;
	assert_int_equal(firmware_image(&img, p, 2, msg, sizeof(msg)),
	    CS_EINVAL);
	assert_int_equal(firmware_image(&img, p, 0, msg, sizeof(msg)),
	    CS_EINVAL);
	s[1].data.len = sizeof(b);
	s[1].addr     = 0xfffffff8u;
	assert_int_equal(firmware_image(&img, p, 2, msg, sizeof(msg)),
	    CS_EINVAL);
	assert_int_equal(img.nseg, 0);

	/* In the record area: the check names it. */
	s[0].addr = t.record_addr;
	assert_int_equal(firmware_image(&img, p, 1, msg, sizeof(msg)), CS_OK);
	assert_int_equal(firmware_check(&t, &img, NULL, digest, msg,
	    sizeof(msg)), CS_EINVAL);
	assert_non_null(strstr(msg, "record"));
	firmware_image_free(&img);
	firmware_close(fw);
}

static void
test_fetches(void **state)
{
	firmware *fw = open_fw();

	(void)state;
	assert_false(firmware_fetch_started(fw, 1, "PO-1", 1));
	firmware_fetch_begin(fw, 1, "PO-1", 1);
	assert_true(firmware_fetch_started(fw, 1, "PO-1", 1));
	assert_false(firmware_fetch_started(fw, 1, "PO-1", 2));
	assert_false(firmware_fetch_started(fw, 1, "PO-2", 1));
	assert_false(firmware_fetch_started(fw, 2, "PO-1", 1));
	assert_false(firmware_fetch_started(fw, 0, "PO-1", 1));
	/* A connection has one fetch: a new one replaces it. */
	firmware_fetch_begin(fw, 1, "PO-2", 3);
	assert_false(firmware_fetch_started(fw, 1, "PO-1", 1));
	assert_true(firmware_fetch_started(fw, 1, "PO-2", 3));
	/* Full: the oldest is forgotten, the newest kept. */
	for (uint64_t c = 2; c <= FIRMWARE_FETCHES + 1; c++) {
		firmware_fetch_begin(fw, c, "PO-1", 1);
	}
	assert_false(firmware_fetch_started(fw, 1, "PO-2", 3));
	assert_true(firmware_fetch_started(fw, 2, "PO-1", 1));
	assert_true(firmware_fetch_started(fw, FIRMWARE_FETCHES + 1, "PO-1",
	    1));
	firmware_fetch_begin(fw, FIRMWARE_FETCHES + 2, "PO-9", 1);
	assert_false(firmware_fetch_started(fw, 2, "PO-1", 1));
	assert_true(firmware_fetch_started(fw, 3, "PO-1", 1));
	firmware_close(fw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_targets),
	    cmocka_unit_test(test_segments),
	    cmocka_unit_test(test_fetches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
