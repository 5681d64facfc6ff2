/*
 * order_fw_test.c - the station's view of an order's firmware
 * (station/order_fw.c) and its locked memory (station/secmem.c): the
 * measured form as a view of a flat image must be exactly what
 * image_from_flat and image_digest give (the authority and the firmware
 * compute it that way), on both sides of a record area too; what an
 * OrderStatus may say; secmem's blocks locked, wiped and given back.
 */
#include "countersign/v1/authority.pb-c.h"
#include "cs_err.h"
#include "cs_image.h"
#include "cs_target.h"
#include "order_fw.h"
#include "secmem.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#ifndef CS_TARGETS_DIR
#error "build with -DCS_TARGETS_DIR=<source>/station/targets"
#endif

static void
load(struct target *t, const char *name)
{
	char path[512], err[512];

	snprintf(path, sizeof(path), "%s/%s.ini", CS_TARGETS_DIR, name);
	if (target_load(t, path, NULL, err, sizeof(err)) != CS_OK) {
		fail_msg("%s", err);
	}
}

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* view + digest == image_from_flat + image_digest, for one flat image. */
static void
same_as_cs_image(const struct target *t, uint32_t base, const uint8_t *flat,
    size_t len)
{
	struct image view, copy;
	uint8_t      d1[32], d2[32];
	char         err[512];

	assert_int_equal(order_fw_view(&view, t, base, flat, len, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(image_from_flat(&copy, t, base, flat, len, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(view.nseg, copy.nseg);
	assert_int_equal(view.bytes, copy.bytes);
	for (size_t i = 0; i < view.nseg; i++) {
		assert_int_equal(view.seg[i].addr, copy.seg[i].addr);
		assert_int_equal(view.seg[i].len, copy.seg[i].len);
		assert_memory_equal(view.seg[i].data, copy.seg[i].data,
		    view.seg[i].len);
		/* Pointing into flat: no copy of the firmware. */
		assert_true(view.seg[i].data >= flat &&
		    view.seg[i].data + view.seg[i].len <= flat + len);
	}
	assert_int_equal(order_fw_digest(&view, d1), CS_OK);
	assert_int_equal(image_digest(&copy, t, d2), CS_OK);
	assert_memory_equal(d1, d2, 32);
	image_free(&copy);
}

static void
test_view_matches_cs_image(void **state)
{
	struct target t;
	uint8_t      *flat = malloc(0x20000);
	char          err[512];
	struct image  view;

	(void)state;
	assert_non_null(flat);
	fill(flat, 0x20000, 7);
	/* Below the record area (lm3s6965: 0x3F000). */
	load(&t, "lm3s6965");
	same_as_cs_image(&t, 0, flat, 3000);
	/* Running into the record area: cut before it. */
	same_as_cs_image(&t, 0x3E000, flat, 0x2000);
	/* STM32F407: the record in sector 1 (0x08004000), the image on
	 * both sides of it. */
	load(&t, "stm32f407");
	same_as_cs_image(&t, 0x08000000, flat, 0x20000);
	/* Outside flash: refused, as image_from_flat does. */
	assert_int_equal(order_fw_view(&view, &t, 0x07FFF000, flat, 0x2000,
	    err, sizeof(err)), CS_EINVAL);
	assert_non_null(strstr(err, "outside the flash"));
	assert_int_equal(order_fw_view(&view, &t, 0x08000000, flat, 0, err,
	    sizeof(err)), CS_EINVAL);
	free(flat);
}

static void
test_from_status(void **state)
{
	Countersign__V1__OrderStatus os = COUNTERSIGN__V1__ORDER_STATUS__INIT;
	struct order_fw              of;
	uint8_t                      d[32];
	char                         err[256], brief[20];

	(void)state;
	os.order_id = (char *)"PO-1";
	os.target   = (char *)"";
	assert_int_equal(order_fw_from_status(&of, &os, err, sizeof(err)),
	    CS_OK);
	assert_false(of.binds_digest);
	assert_false(of.held);
	memset(d, 0xab, sizeof(d));
	os.firmware_sha256.data = d;
	os.firmware_sha256.len  = 31;
	assert_int_equal(order_fw_from_status(&of, &os, err, sizeof(err)),
	    CS_EPROTO);
	os.firmware_sha256.len = 32;
	os.firmware_held       = true;
	os.firmware_size       = 0;
	assert_int_equal(order_fw_from_status(&of, &os, err, sizeof(err)),
	    CS_EPROTO);
	os.firmware_size = (uint64_t)IMAGE_MAX_BYTES + 1;
	assert_int_equal(order_fw_from_status(&of, &os, err, sizeof(err)),
	    CS_EPROTO);
	os.firmware_size = 4096;
	os.target        = (char *)"lm3s6965";
	os.require_lock  = true;
	assert_int_equal(order_fw_from_status(&of, &os, err, sizeof(err)),
	    CS_OK);
	assert_true(of.binds_digest && of.held && of.require_lock);
	assert_string_equal(of.target, "lm3s6965");
	assert_string_equal(order_fw_short(of.digest, brief),
	    "abababababababab...");
	os.firmware_sha256.len = 0; /* held without a digest */
	assert_int_equal(order_fw_from_status(&of, &os, err, sizeof(err)),
	    CS_EPROTO);
}

static void
test_secmem(void **state)
{
	struct rlimit rl;
	uint8_t      *p = NULL;
	bool          locked;
	char          err[512];

	(void)state;
	assert_int_equal(secmem_alloc((void **)&p, 5000, false, &locked, err,
	    sizeof(err)), CS_OK);
	assert_non_null(p);
	memset(p, 0x5a, 5000);
	secmem_wipe_all();
	for (size_t i = 0; i < 5000; i++) {
		assert_int_equal(p[i], 0);
	}
	secmem_free(p, 5000);
	assert_int_equal(secmem_alloc((void **)&p, 0, false, NULL, err,
	    sizeof(err)), CS_EINVAL);
	/* More than the limit: the budget says so, and how to raise it;
	 * a block that must be locked is refused.  (A process with
	 * CAP_IPC_LOCK, such as root, has no limit: both go through.) */
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (64u << 20)) {
		size_t big = (size_t)rl.rlim_cur + 4096;
		int    rv  = secmem_alloc((void **)&p, big, true, NULL, err,
		    sizeof(err));

		if (rv == CS_OK) {
			print_message("CAP_IPC_LOCK: no memlock limit here\n");
			secmem_free(p, big);
			assert_int_equal(secmem_budget(big, err, sizeof(err)),
			    CS_OK);
		} else {
			assert_int_equal(rv, CS_ENOMEM);
			assert_null(p);
			assert_non_null(strstr(err, "ulimit -l"));
			assert_int_equal(secmem_budget(big, err, sizeof(err)),
			    CS_ENOMEM);
			assert_non_null(strstr(err, "RLIMIT_MEMLOCK"));
			assert_non_null(strstr(err, "LimitMEMLOCK="));
			print_message("refused: %s\n", err);
		}
	}
	assert_int_equal(secmem_budget(4096, err, sizeof(err)), CS_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_view_matches_cs_image),
	    cmocka_unit_test(test_from_status),
	    cmocka_unit_test(test_secmem),
	};

	return tu_run_tests("order_fw", tests, NULL, NULL);
}
