/*
 * firmware_unit_test.c - authority/firmware.c without an HSM: profiles by
 * name (never a path), the checks on an image's segments, the digest
 * check, and the table of fetches started per connection.  Sealing and
 * fetching with a real token are in tests/integration/firmware_test.c.
 */
#include "cs_auth.h"
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

/* Each station has its own budget of fetch starts; the first refusal
 * since the last admission asks to be logged, the next ones not. */
static void
test_fetch_budget(void **state)
{
	firmware *fw = open_fw();
	bool      log;

	(void)state;
	for (unsigned i = 0; i < FIRMWARE_FETCH_BURST; i++) {
		assert_true(firmware_fetch_admit(fw, "st1", &log));
		assert_false(log);
	}
	assert_false(firmware_fetch_admit(fw, "st1", &log));
	assert_true(log);
	assert_false(firmware_fetch_admit(fw, "st1", &log));
	assert_false(log);
	/* Another station is not held back by st1. */
	assert_true(firmware_fetch_admit(fw, "st2", &log));
	/* More stations than the table remembers: st1's bucket is
	 * forgotten (a full one again), never another's taken. */
	for (unsigned i = 0; i < FIRMWARE_BUDGETS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "x%u", i);
		assert_true(firmware_fetch_admit(fw, name, &log));
	}
	assert_true(firmware_fetch_admit(fw, "st1", &log));
	/* Names longer than a station name can be are refused. */
	{
		char big[CS_AUTH_NAME_MAX + 2];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_false(firmware_fetch_admit(fw, big, &log));
	}
	firmware_close(fw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_targets),
	    cmocka_unit_test(test_segments),
	    cmocka_unit_test(test_fetch_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
