/*
 * probe_cmsis_test.c - the cmsis-dap:// probe backend over injected
 * simulated probes (dap_sim.c): URL handling, UID read, flash programming
 * through the LM3S flash controller with read-back, the NOR rule, the
 * refusal without a [flash_controller], reset and run, an image plus
 * record programmed the way the job runner does (hermetic: no authority),
 * and locking with the lm3s6965-locked profile's steps.
 */
#include "cs_err.h"
#include "dap_sim.h"
#include "probe.h"
#include "probe_cmsis.h"
#include "cs_target.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifndef CS_TARGETS_DIR
#error "build with -DCS_TARGETS_DIR=<source>/station/targets"
#endif

/* The factory's device: one sim per test. */
static dap_sim *the_sim;
static char     last_serial[64];
static uint16_t last_vid, last_pid;

static int
sim_factory(const char *serial, uint16_t vid, uint16_t pid,
    struct dap_transport *t, char *err, size_t errlen)
{
	snprintf(last_serial, sizeof(last_serial), "%s", serial);
	last_vid = vid;
	last_pid = pid;
	if (the_sim == NULL || strcmp(serial, "missing") == 0) {
		snprintf(err, errlen, "no CMSIS-DAP probe with serial '%s'",
		    serial);
		return CS_ENOENT;
	}
	dap_sim_transport(the_sim, t);
	return CS_OK;
}

static const uint8_t uid[8] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70,
    0x80};

struct fx {
	probe        *p;
	struct target t;
	char          err[512];
};

static int
setup(void **state)
{
	const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	struct fx        *f      = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(dap_sim_new(&the_sim, "CSIM0042", uid, sizeof(uid)),
	    CS_OK);
	probe_cmsis_set_transport_factory(sim_factory);
	assert_int_equal(target_load(&f->t, "lm3s6965", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(probe_open(&f->p, "cmsis-dap://CSIM0042?vid=c251&"
	    "pid=0xF001&clock=2000000", 1000, f->err, sizeof(f->err)), CS_OK);
	assert_string_equal(last_serial, "CSIM0042");
	assert_int_equal(last_vid, 0xC251);
	assert_int_equal(last_pid, 0xF001);
	assert_int_equal(probe_cmsis_set_target(f->p, &f->t), CS_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	probe_close(f->p);
	dap_sim_free(the_sim);
	the_sim = NULL;
	probe_cmsis_set_transport_factory(NULL);
	free(f);
	return 0;
}

static void
test_urls(void **state)
{
	probe *p = NULL;
	char   err[512];

	(void)state;
	probe_cmsis_set_transport_factory(sim_factory);
	assert_int_equal(probe_open(&p, "cmsis-dap://x?speed=1", 0, err,
	    sizeof(err)), CS_EADDR);
	assert_non_null(strstr(err, "speed"));
	assert_int_equal(probe_open(&p, "cmsis-dap://x?vid=xyz", 0, err,
	    sizeof(err)), CS_EADDR);
	assert_int_equal(probe_open(&p, "cmsis-dap://x?clock=0", 0, err,
	    sizeof(err)), CS_EADDR);
	assert_int_equal(probe_open(&p, "cmsis-dap:x", 0, err, sizeof(err)),
	    CS_EADDR);
	assert_int_equal(probe_open(&p, "cmsis-dap://missing", 0, err,
	    sizeof(err)), CS_EUNAVAIL);
	assert_non_null(strstr(err, "no CMSIS-DAP probe"));
	assert_null(p);
	/* The default factory is the USB one: no device here. */
	probe_cmsis_set_transport_factory(NULL);
	assert_int_not_equal(probe_open(&p, "cmsis-dap://none-such", 200, err,
	    sizeof(err)), CS_OK);
	assert_null(p);
}

static void
test_uid_and_ram(void **state)
{
	struct fx *f = *state;
	uint8_t    b[8], in[100], out[100];

	assert_int_equal(probe_read(f->p, f->t.uid_addr, b, f->t.uid_len),
	    CS_OK);
	assert_memory_equal(b, uid, sizeof(uid));
	for (size_t i = 0; i < sizeof(in); i++) {
		in[i] = (uint8_t)(i ^ 0x5A);
	}
	assert_int_equal(probe_write(f->p, 0x20000101u, in, sizeof(in)),
	    CS_OK);
	assert_int_equal(probe_read(f->p, 0x20000101u, out, sizeof(out)),
	    CS_OK);
	assert_memory_equal(in, out, sizeof(in));
	/* Plain writes to flash fault on the bus. */
	assert_int_equal(probe_write(f->p, 0x100u, in, 4), CS_EIO);
	assert_non_null(strstr(probe_error(f->p), "FAULT"));
	/* Unmapped memory. */
	assert_int_equal(probe_read(f->p, 0x60000000u, out, 4), CS_EIO);
	assert_non_null(strstr(probe_error(f->p), "0x60000000"));
	assert_int_equal(probe_bytes(f->p), 8 + 2 * sizeof(in));
}

static void
test_flash(void **state)
{
	struct fx *f = *state;
	uint8_t    img[3000], back[3000];

	for (size_t i = 0; i < sizeof(img); i++) {
		img[i] = (uint8_t)(i * 13u + 1u);
	}
	img[100] = 0xFF; /* a word of all ones is skipped, still verified */
	img[101] = 0xFF;
	img[102] = 0xFF;
	img[103] = 0xFF;
	/* Odd start and end: partial words at both edges. */
	assert_int_equal(probe_flash_write(f->p, 0x1000u, 0x1000u, 0x1003u,
	    img, sizeof(img)), CS_OK);
	assert_int_equal(probe_flash_done(f->p), CS_OK);
	assert_int_equal(dap_sim_peek(the_sim, 0x1003u, back, sizeof(back)),
	    CS_OK);
	assert_memory_equal(img, back, sizeof(img));
	assert_int_equal(dap_sim_peek(the_sim, 0x1000u, back, 3), CS_OK);
	assert_int_equal(back[0] & back[1] & back[2], 0xFF);
	/* A byte programmed into the erased gap before it. */
	assert_int_equal(probe_flash_write(f->p, 0, 0, 0x1001u,
	    (const uint8_t[]){0x42}, 1), CS_OK);
	assert_int_equal(dap_sim_peek(the_sim, 0x1000u, back, 4), CS_OK);
	assert_int_equal(back[0], 0xFF);
	assert_int_equal(back[1], 0x42);
	assert_int_equal(back[3], img[0]);
	/* NOR: without an erase the bits that would have to rise do not,
	 * and the read-back says so. */
	assert_int_equal(probe_flash_write(f->p, 0, 0, 0x1004u, img, 8),
	    CS_EIO);
	assert_non_null(strstr(probe_error(f->p), "NOR"));
	/* With the erase it works. */
	assert_int_equal(probe_flash_write(f->p, 0x1000u, 0x400u, 0x1004u,
	    img, 8), CS_OK);
	/* The erase took the whole page. */
	assert_int_equal(dap_sim_peek(the_sim, 0x1010u, back, 4), CS_OK);
	assert_int_equal(back[0] & back[1] & back[2] & back[3], 0xFF);
	/* Outside flash, and erase not whole pages. */
	assert_int_equal(probe_flash_write(f->p, 0, 0, 0x3FFFEu, img, 4),
	    CS_EINVAL);
	assert_int_equal(probe_flash_write(f->p, 0x1000u, 0x200u, 0x1000u,
	    img, 4), CS_EINVAL);
}

static void
test_no_flash_controller(void **state)
{
	struct fx    *f = *state;
	struct target t = f->t;
	uint8_t       b[4] = {0};

	t.flash_ctl = TARGET_FLASH_CTL_NONE;
	assert_int_equal(probe_cmsis_set_target(f->p, &t), CS_OK);
	assert_int_equal(probe_flash_write(f->p, 0x0, 0x400, 0x0, b, 4),
	    CS_EPRECOND);
	assert_non_null(strstr(probe_error(f->p), "[flash_controller]"));
	assert_int_equal(dap_sim_peek(the_sim, 0, b, 4), CS_OK);
	assert_int_equal(b[0], 0xFF);
}

/* What the job runner does for one device, minus the authority: an image
 * at 0 and a record page, then reset and run. */
static void
test_image_and_record(void **state)
{
	struct fx     *f = *state;
	uint8_t        image[1500], rec[160], back[1500];
	uint32_t       vec[2] = {0x20010000u, 0x00000201u};
	struct probe_stop stop;

	memset(image, 0, sizeof(image));
	memcpy(image, vec, sizeof(vec));
	for (size_t i = 8; i < sizeof(image); i++) {
		image[i] = (uint8_t)(i * 31u);
	}
	memset(rec, 0xA5, sizeof(rec));
	memcpy(rec, "CSRD", 4);
	assert_int_equal(probe_flash_write(f->p, 0, 0x800u, 0, image,
	    sizeof(image)), CS_OK);
	assert_int_equal(probe_flash_write(f->p, f->t.record_addr,
	    f->t.record_size, f->t.record_addr, rec, sizeof(rec)), CS_OK);
	assert_int_equal(probe_flash_done(f->p), CS_OK);
	assert_int_equal(dap_sim_peek(the_sim, 0, back, sizeof(image)),
	    CS_OK);
	assert_memory_equal(back, image, sizeof(image));
	assert_int_equal(dap_sim_peek(the_sim, f->t.record_addr, back,
	    sizeof(rec)), CS_OK);
	assert_memory_equal(back, rec, sizeof(rec));
	assert_int_equal(probe_read(f->p, f->t.record_addr, back, 4), CS_OK);
	assert_memory_equal(back, "CSRD", 4);
	/* Reset to the vector, then run: no semihosting, so it times out
	 * and is halted again. */
	assert_int_equal(probe_reset_halt(f->p), CS_OK);
	assert_int_equal(probe_run(f->p, 50, &stop), CS_OK);
	assert_true(stop.timed_out);
	assert_false(stop.exited);
}

static void
test_unplugged(void **state)
{
	struct fx            *f = *state;
	struct dap_sim_faults flt;
	uint8_t               img[2048] = {0};

	memset(&flt, 0, sizeof(flt));
	flt.unplug_after = 40;
	dap_sim_set_faults(the_sim, &flt);
	assert_int_equal(probe_flash_write(f->p, 0, 0x800, 0, img,
	    sizeof(img)), CS_ECLOSED);
	assert_non_null(strstr(probe_error(f->p), "disconnected"));
	assert_int_equal(probe_read(f->p, 0x20000000u, img, 4), CS_ECLOSED);
}

/* Locking through the real CMSIS-DAP path: the lm3s6965-locked steps go
 * over the MEM-AP to the simulated flash controller; afterwards a flash
 * read faults on the bus (sticky error), RAM and the UID still read, the
 * controller refuses to program, and the debug port unlock restores. */
static void
test_lock(void **state)
{
	const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	struct fx        *f      = *state;
	struct target     t;
	uint8_t           img[64], b[64];

	for (size_t i = 0; i < sizeof(img); i++) {
		img[i] = (uint8_t)(i + 1);
	}
	assert_int_equal(target_load(&t, "lm3s6965-locked", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(probe_set_target(f->p, &t), CS_OK);
	assert_int_equal(probe_flash_write(f->p, 0, 0x400, 0, img,
	    sizeof(img)), CS_OK);
	if (probe_protect(f->p, &t) != CS_OK) {
		fail_msg("probe_protect: %s", probe_error(f->p));
	}
	assert_int_equal(probe_read(f->p, 0, b, 4), CS_EIO);
	assert_non_null(strstr(probe_error(f->p), "FAULT"));
	assert_int_equal(probe_read(f->p, 0x3F000u, b, 4), CS_EIO);
	/* The sticky error was cleared: RAM and the UID still read. */
	assert_int_equal(probe_read(f->p, t.uid_addr, b, t.uid_len), CS_OK);
	assert_memory_equal(b, uid, sizeof(uid));
	assert_int_equal(probe_write(f->p, 0x20000200u, img, 8), CS_OK);
	assert_int_equal(probe_read(f->p, 0x20000200u, b, 8), CS_OK);
	assert_memory_equal(b, img, 8);
	/* No erase or programming either; the flash keeps its bytes. */
	assert_int_equal(probe_flash_write(f->p, 0, 0x400, 0, b, 4), CS_EIO);
	assert_non_null(strstr(probe_error(f->p), "refused"));
	assert_int_equal(dap_sim_peek(the_sim, 0, b, sizeof(img)), CS_OK);
	assert_memory_equal(b, img, sizeof(img));
	/* A reset keeps it (the commits hold). */
	assert_int_equal(probe_reset_halt(f->p), CS_OK);
	assert_int_equal(probe_read(f->p, 0, b, 4), CS_EIO);
	/* The debug port unlock: mass erase, readable again. */
	dap_sim_recover(the_sim);
	assert_int_equal(probe_read(f->p, 0, b, 4), CS_OK);
	assert_int_equal(b[0] & b[1] & b[2] & b[3], 0xFF);
	assert_int_equal(probe_flash_write(f->p, 0, 0x400, 0, img,
	    sizeof(img)), CS_OK);
}

/* The flash controller's commit keeps nothing: after the sequence's
 * reset the part is open again, and the check says so. */
static void
test_lock_does_not_take(void **state)
{
	const char *const     dirs[] = {CS_TARGETS_DIR, NULL};
	struct fx            *f      = *state;
	struct target         t;
	struct dap_sim_faults flt;
	uint8_t               b[4];

	assert_int_equal(target_load(&t, "lm3s6965-locked", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(probe_set_target(f->p, &t), CS_OK);
	memset(&flt, 0, sizeof(flt));
	flt.lock_ignored = true;
	dap_sim_set_faults(the_sim, &flt);
	assert_int_equal(probe_protect(f->p, &t), CS_EIO);
	assert_string_equal(probe_error(f->p), "lock did not take: flash at "
	    "0x00000000 is still readable");
	assert_int_equal(probe_read(f->p, 0, b, 4), CS_OK);

	/* A poll that cannot finish names its step and its time. */
	flt.lock_ignored = false;
	dap_sim_set_faults(the_sim, &flt);
	t.protect.n_steps = 1;
	t.protect.step[0] = (struct target_step){.op = TARGET_STEP_POLL,
	    .addr = 0x400FD00Cu, .mask = 1, .value = 1, .timeout_ms = 20};
	assert_int_equal(probe_protect(f->p, &t), CS_ETIMEDOUT);
	assert_string_equal(probe_error(f->p), "lock sequence step 1: poll "
	    "0x400FD00C timed out after 20 ms (it reads 0x00000000; want "
	    "0x00000001 under mask 0x00000001)");
	/* A write that faults on the bus names its step too. */
	t.protect.step[0] = (struct target_step){.op = TARGET_STEP_WRITE,
	    .addr = 0x60000000u, .value = 7};
	assert_int_equal(probe_protect(f->p, &t), CS_EIO);
	assert_non_null(strstr(probe_error(f->p), "lock sequence step 1: "
	    "write 0x00000007 to 0x60000000: cmsis-dap://CSIM0042: "));
	/* QEMU's part cannot be locked, whatever the probe. */
	assert_int_equal(probe_protect(f->p, &f->t), CS_EUNIMPL);
	assert_non_null(strstr(probe_error(f->p), "cannot be locked"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test_setup_teardown(test_uid_and_ram, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_flash, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_flash_controller, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_image_and_record, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_unplugged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock_does_not_take, setup,
	        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
