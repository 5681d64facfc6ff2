/*
 * dap_test.c - the CMSIS-DAP command layer (dap.c) and ADIv5 / Cortex-M
 * debug (adiv5.c) against the simulated probe and target (dap_sim.c):
 * DAP_Info, SWD connect, power-up, MEM-AP memory access at every alignment
 * and across 1 KiB TAR blocks, WAIT, FAULT and unplugging, halt, core
 * registers and reset through the real flash controller's vector table.
 */
#include "adiv5.h"
#include "cs_err.h"
#include "dap.h"
#include "dap_sim.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define RAM 0x20000000u

struct fx {
	dap_sim *sim;
	dap     *d;
	adiv5   *a;
};

static int
setup(void **state)
{
	struct fx           *f = calloc(1, sizeof(*f));
	struct dap_transport t;
	static const uint8_t uid[12] = {0xc0, 0xff, 0xee, 1, 2, 3, 4, 5, 6,
	    7, 8, 9};
	uint32_t             dpidr = 0;

	assert_non_null(f);
	assert_int_equal(dap_sim_new(&f->sim, "CSIM0001", uid, sizeof(uid)),
	    CS_OK);
	dap_sim_transport(f->sim, &t);
	assert_int_equal(dap_open(&f->d, &t, 1000), CS_OK);
	assert_int_equal(dap_connect_swd(f->d, 4000000, &dpidr), CS_OK);
	assert_int_equal(dpidr, 0x2BA01477u);
	assert_int_equal(adiv5_open(&f->a, f->d), CS_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	adiv5_close(f->a);
	dap_close(f->d);
	dap_sim_free(f->sim);
	free(f);
	return 0;
}

static void
test_info(void **state)
{
	struct fx *f = *state;
	char       s[64];

	assert_int_equal(dap_info_string(f->d, 1, s, sizeof(s)), CS_OK);
	assert_string_equal(s, "Countersign");
	assert_int_equal(dap_info_string(f->d, 2, s, sizeof(s)), CS_OK);
	assert_string_equal(s, "CMSIS-DAP sim");
	assert_int_equal(dap_info_string(f->d, 3, s, sizeof(s)), CS_OK);
	assert_string_equal(s, "CSIM0001");
	assert_int_equal(dap_info_string(f->d, 4, s, sizeof(s)), CS_OK);
	assert_string_equal(s, "2.1.0");
	assert_int_equal(dap_info_string(f->d, 3, s, 4), CS_ETOOBIG);
	assert_int_equal(dap_info_string(f->d, 9, s, sizeof(s)), CS_EINVAL);
}

/* Without the JTAG-to-SWD switch nobody answers. */
static void
test_no_swd_without_switch(void **state)
{
	dap_sim             *sim;
	dap                 *d;
	struct dap_transport t;
	uint32_t             v;
	uint8_t              cmd[2] = {DAP_CMD_CONNECT, 1}, rsp[8];

	(void)state;
	assert_int_equal(dap_sim_new(&sim, "X", NULL, 0), CS_OK);
	assert_int_equal(dap_sim_command(sim, cmd, 2, rsp, sizeof(rsp)), 2);
	assert_int_equal(rsp[0], DAP_CMD_CONNECT);
	assert_int_equal(rsp[1], 1);
	dap_sim_transport(sim, &t);
	assert_int_equal(dap_open(&d, &t, 1000), CS_OK);
	assert_int_equal(dap_reg_read(d, false, 0, &v), CS_EIO);
	assert_non_null(strstr(dap_error(d), "no ACK"));
	/* An unknown command gets ID_DAP_Invalid. */
	cmd[0] = 0x7E;
	assert_int_equal(dap_sim_command(sim, cmd, 1, rsp, sizeof(rsp)), 1);
	assert_int_equal(rsp[0], 0xFF);
	dap_close(d);
	dap_sim_free(sim);
}

static void
test_power_and_ap(void **state)
{
	struct fx *f = *state;
	uint32_t   v;

	assert_int_equal(dap_reg_read(f->d, false, 0x4, &v), CS_OK);
	assert_int_equal(v & 0xF0000000u, 0xF0000000u);
	assert_int_equal(adiv5_ap_read(f->a, 0xFC, &v), CS_OK);
	assert_int_equal(v, 0x24770011u);
}

static void
fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		b[i] = (uint8_t)(i * 7u + seed);
	}
}

static void
test_mem_alignments(void **state)
{
	struct fx *f = *state;
	uint8_t    in[3000], out[3000], peek[3000];
	uint8_t    zero[8] = {0};

	/* Every start alignment, lengths 1..9 and a long run that crosses
	 * two 1 KiB TAR blocks. */
	for (unsigned off = 0; off < 4; off++) {
		for (size_t len = 1; len <= 9; len++) {
			uint32_t at = RAM + 0x100u + off;

			assert_int_equal(adiv5_mem_write(f->a, at - 4, zero,
			    8), CS_OK);
			assert_int_equal(adiv5_mem_write(f->a, at + 4, zero,
			    8), CS_OK);
			fill(in, len, off + (unsigned)len);
			assert_int_equal(adiv5_mem_write(f->a, at, in, len),
			    CS_OK);
			memset(out, 0xAA, sizeof(out));
			assert_int_equal(adiv5_mem_read(f->a, at, out, len),
			    CS_OK);
			assert_memory_equal(in, out, len);
			/* Neighbours untouched. */
			assert_int_equal(dap_sim_peek(f->sim, at - 1, peek, 1),
			    CS_OK);
			assert_int_equal(peek[0], 0);
			assert_int_equal(dap_sim_peek(f->sim, at + len, peek,
			    1), CS_OK);
			assert_int_equal(peek[0], 0);
		}
	}
	fill(in, sizeof(in), 3);
	assert_int_equal(adiv5_mem_write(f->a, RAM + 0x3FDu, in, sizeof(in)),
	    CS_OK);
	assert_int_equal(dap_sim_peek(f->sim, RAM + 0x3FDu, peek,
	    sizeof(peek)), CS_OK);
	assert_memory_equal(in, peek, sizeof(in));
	assert_int_equal(adiv5_mem_read(f->a, RAM + 0x3FDu, out, sizeof(out)),
	    CS_OK);
	assert_memory_equal(in, out, sizeof(in));
	/* Words */
	assert_int_equal(adiv5_mem_write32(f->a, RAM + 0x7FCu, 0x11223344u),
	    CS_OK);
	assert_int_equal(adiv5_mem_read(f->a, RAM + 0x7FEu, out, 2), CS_OK);
	assert_int_equal(out[0], 0x22);
	assert_int_equal(out[1], 0x11);
}

/* TAR wraps at 1 KiB: a block run past the boundary without rewriting TAR
 * lands at the start of the same block, as on real MEM-APs. */
static void
test_tar_wraps_in_sim(void **state)
{
	struct fx *f = *state;
	uint32_t   w[4] = {1, 2, 3, 4};
	uint8_t    b[8];

	assert_int_equal(adiv5_ap_write(f->a, 0x00, 0x23000012u), CS_OK);
	assert_int_equal(adiv5_ap_write(f->a, 0x04, RAM + 0x3F8u), CS_OK);
	assert_int_equal(dap_ap_write_block(f->d, 0x0C, w, 4), CS_OK);
	assert_int_equal(dap_sim_peek(f->sim, RAM, b, 8), CS_OK);
	assert_int_equal(b[0], 3);
	assert_int_equal(b[4], 4);
	/* adiv5 rewrites TAR per 1 KiB block, so its reads are right. */
	assert_int_equal(adiv5_mem_read(f->a, RAM + 0x3F8u, b, 8), CS_OK);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[4], 2);
}

static void
test_block_read_posted(void **state)
{
	struct fx *f = *state;
	uint32_t   w[200], r[200];

	for (size_t i = 0; i < 200; i++) {
		w[i] = 0xA5000000u + (uint32_t)i;
	}
	assert_int_equal(adiv5_mem_write(f->a, RAM + 0x1000u, w, sizeof(w)),
	    CS_OK);
	/* Raw: TAR, then 200 DRW reads in DAP_TransferBlock packets. */
	assert_int_equal(adiv5_ap_write(f->a, 0x04, RAM + 0x1000u), CS_OK);
	assert_int_equal(dap_ap_read_block(f->d, 0x0C, r, 200), CS_OK);
	assert_memory_equal(w, r, sizeof(w));
	/* A single AP read returns its own value (the probe collects the
	 * posted result from RDBUFF). */
	assert_int_equal(adiv5_ap_write(f->a, 0x04, RAM + 0x1004u), CS_OK);
	assert_int_equal(adiv5_ap_read(f->a, 0x0C, &r[0]), CS_OK);
	assert_int_equal(r[0], w[1]);
}

static void
test_wait(void **state)
{
	struct fx            *f = *state;
	struct dap_sim_faults flt;
	uint32_t              v;
	uint8_t               b[64], in[64];

	/* More WAITs than the probe retries: dap.c sends it again. */
	memset(&flt, 0, sizeof(flt));
	flt.wait_count = 150;
	dap_sim_set_faults(f->sim, &flt);
	assert_int_equal(adiv5_ap_read(f->a, 0xFC, &v), CS_OK);
	assert_int_equal(v, 0x24770011u);
	/* In a block: the run is redone after rewriting TAR. */
	fill(in, sizeof(in), 9);
	assert_int_equal(adiv5_mem_write(f->a, RAM + 0x200u, in, sizeof(in)),
	    CS_OK);
	flt.wait_count = 70;
	dap_sim_set_faults(f->sim, &flt);
	assert_int_equal(adiv5_mem_read(f->a, RAM + 0x200u, b, sizeof(b)),
	    CS_OK);
	assert_memory_equal(in, b, sizeof(b));
	/* Forever WAIT: bounded, then CS_ETIMEDOUT. */
	flt.wait_count = 100000;
	dap_sim_set_faults(f->sim, &flt);
	assert_int_equal(adiv5_ap_read(f->a, 0xFC, &v), CS_ETIMEDOUT);
	assert_non_null(strstr(adiv5_error(f->a), "WAIT"));
	flt.wait_count = 0;
	dap_sim_set_faults(f->sim, &flt);
	assert_int_equal(adiv5_ap_read(f->a, 0xFC, &v), CS_OK);
}

static void
test_fault(void **state)
{
	struct fx            *f = *state;
	struct dap_sim_faults flt;
	uint8_t               b[8];
	uint32_t              v;

	/* A bus error: FAULT, sticky flags cleared, next access works. */
	assert_int_equal(adiv5_mem_read(f->a, 0x30000000u, b, 8), CS_EIO);
	assert_non_null(strstr(adiv5_error(f->a), "FAULT"));
	assert_non_null(strstr(adiv5_error(f->a), "STICKYERR"));
	assert_non_null(strstr(adiv5_error(f->a), "cleared"));
	assert_non_null(strstr(adiv5_error(f->a), "0x30000000"));
	assert_int_equal(dap_reg_read(f->d, false, 0x4, &v), CS_OK);
	assert_int_equal(v & 0xB2u, 0);
	assert_int_equal(adiv5_mem_read(f->a, RAM, b, 8), CS_OK);
	/* Flash is not writable over the bus (NOR: only the controller). */
	memset(b, 0, sizeof(b));
	assert_int_equal(adiv5_mem_write(f->a, 0x100u, b, 8), CS_EIO);
	assert_int_equal(dap_sim_peek(f->sim, 0x100u, b, 8), CS_OK);
	assert_int_equal(b[0], 0xFF);
	/* The read-only UID. */
	assert_int_equal(adiv5_mem_write(f->a, 0x2000FF00u, b, 1), CS_EIO);
	assert_int_equal(adiv5_mem_read(f->a, 0x2000FF00u, b, 3), CS_OK);
	assert_int_equal(b[0], 0xc0);
	assert_int_equal(b[2], 0xee);
	/* Injected FAULT. */
	memset(&flt, 0, sizeof(flt));
	flt.fault_next = true;
	dap_sim_set_faults(f->sim, &flt);
	assert_int_equal(adiv5_ap_read(f->a, 0xFC, &v), CS_EIO);
	assert_int_equal(adiv5_ap_read(f->a, 0xFC, &v), CS_OK);
	assert_int_equal(v, 0x24770011u);
}

static void
test_unplug(void **state)
{
	struct fx            *f = *state;
	struct dap_sim_faults flt;
	static uint8_t        b[8192];
	uint32_t              v;

	memset(&flt, 0, sizeof(flt));
	flt.unplug_after = 5;
	dap_sim_set_faults(f->sim, &flt);
	assert_int_equal(adiv5_mem_read(f->a, RAM, b, sizeof(b)), CS_ECLOSED);
	assert_non_null(strstr(adiv5_error(f->a), "disconnected"));
	assert_int_equal(dap_reg_read(f->d, false, 0, &v), CS_ECLOSED);
}

/* Program the vector table through the LM3S flash controller. */
static void
flash_word(struct fx *f, uint32_t addr, uint32_t val)
{
	uint32_t regs[3] = {addr, val, 0xA4420001u};
	uint32_t fmc     = 1;

	assert_int_equal(adiv5_mem_write(f->a, 0x400FD000u, regs,
	    sizeof(regs)), CS_OK);
	assert_int_equal(adiv5_mem_read32(f->a, 0x400FD008u, &fmc), CS_OK);
	assert_int_equal(fmc & 1u, 0);
}

static void
test_core(void **state)
{
	struct fx *f = *state;
	uint32_t   v;
	bool       halted;

	flash_word(f, 0, 0x20010000u);
	flash_word(f, 4, 0x00000101u);
	assert_int_equal(adiv5_cm_halt(f->a), CS_OK);
	assert_int_equal(adiv5_cm_halted(f->a, &halted), CS_OK);
	assert_true(halted);
	for (unsigned r = 0; r <= 12; r++) {
		assert_int_equal(adiv5_cm_reg_write(f->a, r, 0x100u + r),
		    CS_OK);
	}
	for (unsigned r = 0; r <= 12; r++) {
		assert_int_equal(adiv5_cm_reg_read(f->a, r, &v), CS_OK);
		assert_int_equal(v, 0x100u + r);
	}
	/* SYSRESETREQ with VC_CORERESET: halted at the reset vector. */
	assert_int_equal(adiv5_cm_reset_halt(f->a, false), CS_OK);
	assert_int_equal(adiv5_cm_reg_read(f->a, ADIV5_REG_PC, &v), CS_OK);
	assert_int_equal(v, 0x100u);
	assert_int_equal(adiv5_cm_reg_read(f->a, ADIV5_REG_SP, &v), CS_OK);
	assert_int_equal(v, 0x20010000u);
	assert_int_equal(adiv5_cm_reg_read(f->a, ADIV5_REG_XPSR, &v), CS_OK);
	assert_int_equal(v, 0x01000000u);
	assert_int_equal(adiv5_cm_reg_read(f->a, 0, &v), CS_OK);
	assert_int_equal(v, 0);
	/* DEMCR restored. */
	assert_int_equal(adiv5_mem_read32(f->a, 0xE000EDFCu, &v), CS_OK);
	assert_int_equal(v & 1u, 0);
	/* Resume; registers then cannot be read. */
	assert_int_equal(adiv5_cm_resume(f->a), CS_OK);
	assert_int_equal(adiv5_cm_halted(f->a, &halted), CS_OK);
	assert_false(halted);
	assert_int_equal(adiv5_cm_reg_read(f->a, 0, &v), CS_ETIMEDOUT);
	/* The probe's reset line. */
	assert_int_equal(adiv5_cm_reset_halt(f->a, true), CS_OK);
	assert_int_equal(adiv5_cm_reg_read(f->a, ADIV5_REG_PC, &v), CS_OK);
	assert_int_equal(v, 0x100u);
	assert_int_equal(dap_reset_target(f->d), CS_OK);
}

/* Malformed commands to the sim never crash it and answer as a probe
 * would (it also sits behind umockdev, fed by another process). */
static void
test_sim_malformed(void **state)
{
	struct fx    *f = *state;
	uint8_t       rsp[600];
	const uint8_t xfer[]  = {DAP_CMD_TRANSFER, 0, 5, 0x02};
	const uint8_t blk[]   = {DAP_CMD_TRANSFER_BLOCK, 0, 0xFF, 0xFF, 0x0F};
	const uint8_t info[]  = {DAP_CMD_INFO};
	const uint8_t seq[]   = {DAP_CMD_SWJ_SEQUENCE, 64, 0xFF};

	assert_true(dap_sim_command(f->sim, xfer, sizeof(xfer), rsp,
	    sizeof(rsp)) >= 3);
	assert_int_equal(rsp[0], DAP_CMD_TRANSFER);
	assert_int_not_equal(rsp[2], DAP_ACK_OK);
	assert_int_equal(dap_sim_command(f->sim, blk, sizeof(blk), rsp,
	    sizeof(rsp)), 4);
	assert_int_equal(rsp[1] | rsp[2], 0);
	assert_int_equal(dap_sim_command(f->sim, info, 1, rsp, sizeof(rsp)),
	    2);
	assert_int_equal(dap_sim_command(f->sim, seq, sizeof(seq), rsp,
	    sizeof(rsp)), 2);
	assert_int_equal(rsp[1], 0xFF);
	/* A short response buffer is never overrun. */
	assert_int_equal(dap_sim_command(f->sim, (const uint8_t[]){0, 2}, 2,
	    rsp, 3), 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_info, setup, teardown),
	    cmocka_unit_test(test_no_swd_without_switch),
	    cmocka_unit_test_setup_teardown(test_power_and_ap, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_mem_alignments, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_tar_wraps_in_sim, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_block_read_posted, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_wait, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unplug, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_core, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sim_malformed, setup,
	        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
