/*
 * dap_usb_test.c - dap_usb.c through the unmodified libusb-1.0 against a
 * simulated CMSIS-DAP v2 probe on a umockdev bus (usb_mock.h): discovery,
 * filters, `countersign-station probes`, raw DAP commands, the DAP and
 * ADIv5 layers over USB (DPIDR, WAIT/FAULT answers, MEM-AP memory), the
 * cmsis-dap probe backend programming flash, a probe that hangs (timeout,
 * then resync) and one pulled out mid-way.
 *
 * Runs under umockdev-wrapper only (ctest does that); the libusb context
 * is process-wide, so one testbed serves every case and each case plugs a
 * fresh simulated probe+target into it.
 */
#include "adiv5.h"
#include "cs_err.h"
#include "dap.h"
#include "dap_sim.h"
#include "dap_usb.h"
#include "probe.h"
#include "probe_cmsis.h"
#include "cs_target.h"
#include "usb_mock.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#define SERIAL  "CSIM0001"
#define TIMEOUT 1000u

static const uint8_t test_uid[8] = {0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5,
    0xf6, 0x07};

static usb_mock *mock;

struct fixture {
	dap_sim             *sim;
	struct dap_transport t;
	bool                 open;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(dap_sim_new(&f->sim, SERIAL, test_uid,
	    sizeof(test_uid)), CS_OK);
	usb_mock_set_sim(mock, f->sim);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f->open) {
		f->t.close(f->t.ctx);
	}
	usb_mock_set_sim(mock, NULL);
	dap_sim_free(f->sim);
	free(f);
	return 0;
}

static void
open_probe(struct fixture *f)
{
	char err[512];
	int  rv = dap_usb_open(SERIAL, 0, 0, &f->t, err, sizeof(err));

	if (rv != CS_OK) {
		fail_msg("dap_usb_open: %s: %s", cs_errname(rv), err);
	}
	f->open = true;
}

/* Send raw command bytes, expect CS_OK and return the response length. */
static size_t
raw(struct fixture *f, const uint8_t *cmd, size_t len, uint8_t *rsp,
    size_t rsp_size)
{
	size_t got = 0;

	assert_int_equal(f->t.xfer(f->t.ctx, cmd, len, rsp, rsp_size, &got,
	    TIMEOUT), CS_OK);
	return got;
}

/* How many probes the host sees, waiting up to 3 s for it to become
 * want (hotplug events reach libusb on its own thread). */
static size_t
wait_probes(size_t want)
{
	struct dap_usb_info *info;
	size_t               n = 0;
	char                 err[256];

	for (int i = 0; i < 300; i++) {
		assert_int_equal(dap_usb_list(&info, &n, err, sizeof(err)),
		    CS_OK);
		free(info);
		if (n == want) {
			break;
		}
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	return n;
}

/* Pull the probe out of sysfs, then plug a fresh one (a new sim) in and
 * wait until the host sees it. */
static void
replug_fresh(struct fixture *f)
{
	usb_mock_unplug(mock);
	assert_int_equal(wait_probes(0), 0);
	usb_mock_set_sim(mock, NULL);
	dap_sim_free(f->sim);
	assert_int_equal(dap_sim_new(&f->sim, SERIAL, test_uid,
	    sizeof(test_uid)), CS_OK);
	usb_mock_set_sim(mock, f->sim);
	usb_mock_replug(mock);
	assert_int_equal(wait_probes(1), 1);
}

static void
test_list(void **state)
{
	struct dap_usb_info *info = NULL;
	size_t               n    = 0;
	char                 err[256];

	(void)state;
	assert_int_equal(dap_usb_list(&info, &n, err, sizeof(err)), CS_OK);
	/* The root hub on the same bus is not a probe. */
	assert_int_equal(n, 1);
	assert_string_equal(info[0].serial, SERIAL);
	assert_string_equal(info[0].product, "CSIM CMSIS-DAP");
	assert_int_equal(info[0].vid, 0xc251);
	assert_int_equal(info[0].pid, 0xf002);
	assert_int_equal(info[0].packet_size, 512);
	assert_int_equal(info[0].interface, 0);
	assert_int_equal(info[0].ep_out, 0x01);
	assert_int_equal(info[0].ep_in, 0x81);
	assert_int_equal(info[0].bus, 1);
	assert_int_equal(info[0].address, 2);
	assert_string_equal(err, "");
	free(info);
}

/* countersign-station probes, in a child process on the same bus. */
static void
test_cli_probes(void **state)
{
	char  cmd[1024], line[512];
	FILE *p;

	(void)state;
	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' probes --json",
	    CS_STATION_BIN, CS_STATION_CONF);
	assert_non_null(p = popen(cmd, "r"));
	assert_non_null(fgets(line, sizeof(line), p));
	assert_null(fgets(line + strlen(line), 2, p)); /* one probe */
	assert_int_equal(pclose(p), 0);
	assert_string_equal(line, "{\"serial\":\"CSIM0001\",\"vid\":"
	    "\"c251\",\"pid\":\"f002\",\"product\":\"CSIM CMSIS-DAP\","
	    "\"packet_size\":512,\"bus\":1,\"address\":2,\"url\":"
	    "\"cmsis-dap://CSIM0001\"}\n");
	/* The table for people: serial, VID:PID, product, packet size, URL. */
	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' probes", CS_STATION_BIN,
	    CS_STATION_CONF);
	assert_non_null(p = popen(cmd, "r"));
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	assert_non_null(strstr(line, "CSIM0001 "));
	assert_non_null(strstr(line, " c251:f002 "));
	assert_non_null(strstr(line, " CSIM CMSIS-DAP "));
	assert_non_null(strstr(line, " 512 "));
	assert_non_null(strstr(line, " cmsis-dap://CSIM0001\n"));
}

static void
test_open_filters(void **state)
{
	struct dap_transport t;
	char                 err[512];

	(void)state;
	assert_int_equal(dap_usb_open("NOSUCH", 0, 0, &t, err, sizeof(err)),
	    CS_ENOENT);
	/* The error names what is attached, so the operator can fix the
	 * URL. */
	assert_non_null(strstr(err, "NOSUCH"));
	assert_non_null(strstr(err, SERIAL));
	assert_int_equal(dap_usb_open(NULL, 0x1366, 0, &t, err, sizeof(err)),
	    CS_ENOENT);
	assert_int_equal(dap_usb_open(SERIAL, 0xc251, 0x0001, &t, err,
	    sizeof(err)), CS_ENOENT);
	assert_int_equal(dap_usb_open(NULL, 0xc251, 0xf002, &t, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(t.packet_size, 512);
	t.close(t.ctx);
}

static void
test_raw_info(void **state)
{
	struct fixture       *f = *state;
	struct usb_mock_stats st0, st;
	uint8_t               rsp[512];
	size_t                n;

	usb_mock_stats(mock, &st0);
	open_probe(f);
	/* DAP_Info(serial): 0x00, length, string. */
	n = raw(f, (const uint8_t[]){DAP_CMD_INFO, 0x03}, 2, rsp,
	    sizeof(rsp));
	assert_true(n >= 2);
	assert_int_equal(rsp[0], DAP_CMD_INFO);
	assert_true(rsp[1] > 0 && (size_t)rsp[1] + 2 <= n);
	assert_memory_equal(rsp + 2, SERIAL, strlen(SERIAL));
	/* DAP_Info(packet size): 2 bytes, 512 for a high-speed v2 probe. */
	n = raw(f, (const uint8_t[]){DAP_CMD_INFO, 0xff}, 2, rsp,
	    sizeof(rsp));
	assert_int_equal(n, 4);
	assert_int_equal(rsp[1], 2);
	assert_int_equal(rsp[2] | rsp[3] << 8, 512);
	f->t.close(f->t.ctx);
	f->open = false;
	usb_mock_stats(mock, &st);
	assert_int_equal(st.bulk_out - st0.bulk_out, 2);
	assert_int_equal(st.bulk_in - st0.bulk_in, 2);
	assert_int_equal(st.claims - st0.claims, 1);
	assert_int_equal(st.releases - st0.releases, 1);
	assert_int_equal(st.unknown, 0);
}

/* The DAP layer over USB reads the same DPIDR as over the in-process
 * transport onto an identical sim. */
static void
test_dap_connect(void **state)
{
	struct fixture      *f = *state;
	struct dap_transport local;
	dap_sim             *twin;
	dap                 *d, *dl;
	uint32_t             dpidr = 0, want = 0;
	char                 s[64];

	open_probe(f);
	assert_int_equal(dap_open(&d, &f->t, TIMEOUT), CS_OK);
	f->open = false; /* dap_close closes it */
	assert_int_equal(dap_info_string(d, 3, s, sizeof(s)), CS_OK);
	assert_string_equal(s, SERIAL);
	if (dap_connect_swd(d, 1000000, &dpidr) != CS_OK) {
		fail_msg("connect: %s", dap_error(d));
	}
	assert_int_equal(dap_sim_new(&twin, SERIAL, test_uid,
	    sizeof(test_uid)), CS_OK);
	dap_sim_transport(twin, &local);
	assert_int_equal(dap_open(&dl, &local, TIMEOUT), CS_OK);
	assert_int_equal(dap_connect_swd(dl, 1000000, &want), CS_OK);
	assert_int_not_equal(dpidr, 0);
	assert_int_equal(dpidr, want);
	dap_close(dl);
	dap_sim_free(twin);
	dap_close(d);
}

/* Power up the debug domain, select the MEM-AP's IDR bank and read AP
 * register 0xC twice (the first read of an AP may be posted). */
static void
ap_reads(dap *d, uint32_t v[2])
{
	assert_int_equal(dap_reg_write(d, false, 0x4, 0x50000000u), CS_OK);
	assert_int_equal(dap_reg_write(d, false, 0x8, 0xf0u), CS_OK);
	assert_int_equal(dap_reg_read(d, true, 0xc, &v[0]), CS_OK);
	assert_int_equal(dap_reg_read(d, true, 0xc, &v[1]), CS_OK);
}

/* A target that answers WAIT a few times is retried; a FAULT fails the
 * one call, and the link works afterwards.  The values read over USB are
 * those read from an identical sim in-process. */
static void
test_wait_fault(void **state)
{
	struct fixture      *f = *state;
	struct dap_transport local;
	dap_sim             *twin;
	dap                 *d, *dl;
	uint32_t             dpidr, v[2], want[2], x = 0, y = 0;

	assert_int_equal(dap_sim_new(&twin, SERIAL, test_uid,
	    sizeof(test_uid)), CS_OK);
	dap_sim_transport(twin, &local);
	assert_int_equal(dap_open(&dl, &local, TIMEOUT), CS_OK);
	assert_int_equal(dap_connect_swd(dl, 1000000, &dpidr), CS_OK);
	ap_reads(dl, want);
	assert_int_equal(dap_reg_read(dl, true, 0xc, &x), CS_OK);

	open_probe(f);
	assert_int_equal(dap_open(&d, &f->t, TIMEOUT), CS_OK);
	f->open = false;
	assert_int_equal(dap_connect_swd(d, 1000000, &dpidr), CS_OK);
	ap_reads(d, v);
	assert_memory_equal(v, want, sizeof(v));
	dap_sim_set_faults(f->sim, &(struct dap_sim_faults){.wait_count = 3});
	assert_int_equal(dap_reg_read(d, true, 0xc, &y), CS_OK);
	assert_int_equal(y, x);
	dap_sim_set_faults(f->sim, &(struct dap_sim_faults){.fault_next = 1});
	if (dap_reg_read(d, true, 0xc, &y) == CS_OK) {
		dap_close(d);
		fail_msg("a FAULT answer was taken for data 0x%08x", y);
	}
	assert_non_null(strstr(dap_error(d), "FAULT"));
	assert_int_equal(dap_reg_read(d, false, 0x0, &y), CS_OK);
	assert_int_equal(y, dpidr);
	dap_close(d);
	dap_close(dl);
	dap_sim_free(twin);
}

/* Target memory through the MEM-AP over USB: the UID the sim was made
 * with, and a write that is not word aligned, spans 1 KiB TAR boundaries
 * and several USB packets, read back and seen by the target. */
static void
test_mem(void **state)
{
	struct fixture *f = *state;
	dap            *d;
	adiv5          *a;
	uint32_t        dpidr;
	uint8_t         uid[sizeof(test_uid)], out[3000], back[3000],
	                seen[3000];

	open_probe(f);
	assert_int_equal(dap_open(&d, &f->t, TIMEOUT), CS_OK);
	f->open = false;
	assert_int_equal(dap_connect_swd(d, 1000000, &dpidr), CS_OK);
	if (adiv5_open(&a, d) != CS_OK) {
		dap_close(d);
		fail_msg("adiv5_open failed");
	}
	assert_int_equal(adiv5_mem_read(a, 0x2000ff00u, uid, sizeof(uid)),
	    CS_OK);
	assert_memory_equal(uid, test_uid, sizeof(uid));
	for (size_t i = 0; i < sizeof(out); i++) {
		out[i] = (uint8_t)(i * 7 + 3);
	}
	assert_int_equal(adiv5_mem_write(a, 0x20000401u, out, sizeof(out)),
	    CS_OK);
	assert_int_equal(adiv5_mem_read(a, 0x20000401u, back, sizeof(back)),
	    CS_OK);
	assert_memory_equal(back, out, sizeof(out));
	assert_int_equal(dap_sim_peek(f->sim, 0x20000401u, seen,
	    sizeof(seen)), CS_OK);
	assert_memory_equal(seen, out, sizeof(out));
	adiv5_close(a);
	dap_close(d);
}

/* The cmsis-dap probe backend on its default transport (dap_usb_open):
 * a record programmed into flash over USB arrives whole; one whose
 * programming the unplug cuts short does not, and the error says so. */
static void
test_probe_flash_unplug(void **state)
{
	static const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	struct fixture          *f       = *state;
	struct usb_mock_stats    st1, st;
	struct target            tg;
	probe                   *p;
	uint8_t                  rec[160], got[160], uid[8];
	char                     err[512];
	int                      rv;

	assert_int_equal(target_load(&tg, "lm3s6965", dirs, err, sizeof(err)),
	    CS_OK);
	if ((rv = probe_open(&p, "cmsis-dap://" SERIAL, TIMEOUT, err,
	         sizeof(err))) != CS_OK) {
		fail_msg("probe_open: %s: %s", cs_errname(rv), err);
	}
	assert_int_equal(probe_cmsis_set_target(p, &tg), CS_OK);
	assert_int_equal(probe_read(p, tg.uid_addr, uid, sizeof(uid)), CS_OK);
	assert_memory_equal(uid, test_uid, sizeof(uid));
	for (size_t i = 0; i < sizeof(rec); i++) {
		rec[i] = (uint8_t)(0xa5 ^ i);
	}
	usb_mock_stats(mock, &st1);
	rv = probe_flash_write(p, tg.record_addr, tg.page_size, tg.record_addr,
	    rec, sizeof(rec));
	if (rv == CS_OK) {
		rv = probe_flash_done(p);
	}
	if (rv != CS_OK) {
		fail_msg("flash write: %s: %s", cs_errname(rv),
		    probe_error(p));
	}
	assert_int_equal(dap_sim_peek(f->sim, tg.record_addr, got,
	    sizeof(got)), CS_OK);
	assert_memory_equal(got, rec, sizeof(rec));

	/* Again with another record, and the probe gone after half the
	 * commands the first one took. */
	usb_mock_stats(mock, &st);
	assert_true(st.bulk_out - st1.bulk_out >= 4);
	dap_sim_set_faults(f->sim, &(struct dap_sim_faults){
	    .unplug_after = (st.bulk_out - st1.bulk_out) / 2});
	for (size_t i = 0; i < sizeof(rec); i++) {
		rec[i] = (uint8_t)(0x3c + i);
	}
	rv = probe_flash_write(p, tg.record_addr, tg.page_size, tg.record_addr,
	    rec, sizeof(rec));
	if (rv == CS_OK) {
		rv = probe_flash_done(p);
	}
	assert_int_equal(rv, CS_ECLOSED);
	assert_string_not_equal(probe_error(p), "");
	probe_close(p);
	assert_int_equal(dap_sim_peek(f->sim, tg.record_addr, got,
	    sizeof(got)), CS_OK);
	assert_memory_not_equal(got, rec, sizeof(rec));
	replug_fresh(f);
}

/* A probe that does not answer in time: CS_ETIMEDOUT (the host discards
 * its IN URB), and its late answer is not taken for the next command's. */
static void
test_timeout_resync(void **state)
{
	struct fixture       *f = *state;
	struct usb_mock_stats st0, st;
	uint8_t               rsp[512];
	size_t                n = 0;

	open_probe(f);
	usb_mock_stats(mock, &st0);
	usb_mock_swallow(mock, 1);
	assert_int_equal(f->t.xfer(f->t.ctx,
	    (const uint8_t[]){DAP_CMD_INFO, 0xff}, 2, rsp, sizeof(rsp), &n,
	    100), CS_ETIMEDOUT);
	usb_mock_stats(mock, &st);
	assert_int_equal(st.discarded - st0.discarded, 1);
	n = raw(f, (const uint8_t[]){DAP_CMD_INFO, 0x03}, 2, rsp,
	    sizeof(rsp));
	assert_int_equal(rsp[0], DAP_CMD_INFO);
	assert_true(n >= 2 + strlen(SERIAL));
	assert_memory_equal(rsp + 2, SERIAL, strlen(SERIAL));
}

/* Pulled out mid-transfer: the command in flight and every later one end
 * in CS_ECLOSED, close is clean, the probe leaves the list, and comes back
 * when plugged in again. */
static void
test_unplug(void **state)
{
	struct fixture      *f = *state;
	struct dap_transport t;
	uint8_t              rsp[512];
	size_t               n = 0;
	char                 err[512];
	int                  i, rv = CS_OK;

	open_probe(f);
	dap_sim_set_faults(f->sim,
	    &(struct dap_sim_faults){.unplug_after = 3});
	for (i = 0; i < 10 && rv == CS_OK; i++) {
		rv = f->t.xfer(f->t.ctx, (const uint8_t[]){DAP_CMD_INFO, 0x03},
		    2, rsp, sizeof(rsp), &n, TIMEOUT);
	}
	assert_int_equal(rv, CS_ECLOSED);
	assert_true(i >= 3 && i <= 4);
	assert_int_equal(f->t.xfer(f->t.ctx,
	    (const uint8_t[]){DAP_CMD_INFO, 0x03}, 2, rsp, sizeof(rsp), &n,
	    TIMEOUT), CS_ECLOSED);
	f->t.close(f->t.ctx);
	f->open = false;
	usb_mock_unplug(mock);
	assert_int_equal(wait_probes(0), 0);
	assert_int_equal(dap_usb_open(SERIAL, 0, 0, &t, err, sizeof(err)),
	    CS_ENOENT);
	replug_fresh(f);
	open_probe(f);
	n = raw(f, (const uint8_t[]){DAP_CMD_INFO, 0x03}, 2, rsp,
	    sizeof(rsp));
	assert_memory_equal(rsp + 2, SERIAL, strlen(SERIAL));
}

static void *
unplug_later(void *arg)
{
	(void)arg;
	nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	usb_mock_unplug(mock);
	return NULL;
}

/* Pulled out while the host waits for a response: the pending IN URB
 * completes with -ESHUTDOWN at once, long before the timeout. */
static void
test_unplug_waiting(void **state)
{
	struct fixture *f = *state;
	struct timespec t0, t1;
	pthread_t       th;
	uint8_t         rsp[512];
	size_t          n = 0;
	long            ms;

	open_probe(f);
	usb_mock_swallow(mock, 1);
	assert_int_equal(pthread_create(&th, NULL, unplug_later, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(f->t.xfer(f->t.ctx,
	    (const uint8_t[]){DAP_CMD_INFO, 0x03}, 2, rsp, sizeof(rsp), &n,
	    5000), CS_ECLOSED);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(pthread_join(th, NULL), 0);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < 2500);
	f->t.close(f->t.ctx);
	f->open = false;
	replug_fresh(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cli_probes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_filters, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_raw_info, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dap_connect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mem, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_resync, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_probe_flash_unplug, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_unplug, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unplug_waiting, setup,
	        teardown),
	};
	int rv;

	if (!usb_mock_preloaded()) {
		fprintf(stderr, "dap_usb_test: run me under umockdev-wrapper "
		    "(LD_PRELOAD must contain libumockdev-preload.so; ctest "
		    "does this)\n");
		return 1;
	}
	/* Before libusb's first use: it enumerates once at start. */
	if (usb_mock_new(&mock, SERIAL, NULL) != 0) {
		fprintf(stderr, "dap_usb_test: cannot build the testbed\n");
		return 1;
	}
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	usb_mock_free(mock);
	return rv;
}
