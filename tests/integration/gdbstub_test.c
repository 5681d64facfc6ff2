/*
 * gdbstub_test.c - the GDB RSP probe against a real emulated device: QEMU
 * lm3s6965evb started halted (-S) with its gdbstub on a Unix socket and a
 * UID in its UID mailbox.  Through the probe: read the UID, program the
 * example firmware (its PT_LOAD segments; a tiny ELF reader here, the
 * station's image loader is tested on its own) and a device record into
 * flash, read back and compare, reset, run, and see the firmware's
 * verdict as its semihosting exit code: 0 with a record signed by the
 * firmware's key (the build's SoftHSM token, as qemu_test.c signs), 1
 * with an erased record page.
 */
#include "countersign/verify.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "probe.h"
#include "record_encode.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define UID_ADDR    0x2000FF00u
#define RECORD_ADDR 0x0003F000u
#define PAGE        0x400u
#define FW_MAX      (256u * 1024u)

static const uint8_t UID[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
    0xef};

static uint32_t
le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	    (uint32_t)b[3] << 24;
}

static uint16_t
le16(const uint8_t *b)
{
	return (uint16_t)(b[0] | b[1] << 8);
}

/* Program every PT_LOAD segment of the ELF32 at path into flash. */
static void
program_elf(probe *p, const char *path)
{
	static uint8_t elf[1024 * 1024];
	FILE          *fp = fopen(path, "rb");
	size_t         n;

	assert_non_null(fp);
	n = fread(elf, 1, sizeof(elf), fp);
	fclose(fp);
	assert_true(n > 52 && memcmp(elf, "\177ELF\001\001", 6) == 0);
	uint32_t phoff = le32(elf + 28);
	uint16_t phent = le16(elf + 42), phnum = le16(elf + 44);

	assert_true(phent >= 32 && phoff + (size_t)phent * phnum <= n);
	for (uint16_t i = 0; i < phnum; i++) {
		const uint8_t *ph = elf + phoff + (size_t)i * phent;
		uint32_t off = le32(ph + 4), paddr = le32(ph + 12);
		uint32_t filesz = le32(ph + 16);
		uint32_t start, end;
		uint8_t  back[FW_MAX];

		if (le32(ph) != 1 || filesz == 0) {
			continue; /* not PT_LOAD, or nothing to load */
		}
		assert_true(off + (size_t)filesz <= n);
		assert_true(paddr + (size_t)filesz <= FW_MAX);
		start = paddr & ~(PAGE - 1);
		end   = (paddr + filesz + PAGE - 1) & ~(PAGE - 1);
		assert_int_equal(probe_flash_write(p, start, end - start, paddr,
		    elf + off, filesz), CS_OK);
		assert_int_equal(probe_read(p, paddr, back, filesz), CS_OK);
		assert_memory_equal(back, elf + off, filesz);
	}
}

static void
sign_record(uint8_t *rec, size_t *len)
{
	struct cs_hsm_opts      o;
	struct cs_hsm_key       key;
	struct cs_record_fields fields;
	cs_hsm                 *h = NULL;
	char                    conf[512], pin[512], err[256];

	snprintf(conf, sizeof(conf), "%s/token/softhsm2.conf", CS_FW_KEY_DIR);
	snprintf(pin, sizeof(pin), "%s/token/pin", CS_FW_KEY_DIR);
	assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
	memset(&o, 0, sizeof(o));
	o.module   = CS_SOFTHSM_MODULE;
	o.token    = "cs-firmware";
	o.pin_file = pin;
	assert_int_equal(cs_hsm_open(&h, &o, err, sizeof(err)), CS_OK);
	assert_int_equal(cs_hsm_key(h, "fw-p256", &key), CS_OK);
	memset(&fields, 0, sizeof(fields));
	fields.product_id = CS_FW_PRODUCT_ID;
	fields.serial     = 1;
	fields.uid        = UID;
	fields.uid_len    = sizeof(UID);
	assert_int_equal(cs_record_order_hash("PO-GDB-1", fields.order_hash),
	    CS_OK);
	assert_int_equal(cs_record_sign_hsm(h, &key, &fields, rec,
	    CS_RECORD_MAX_LEN, len), CS_OK);
	cs_hsm_close(h);
}

/* Start QEMU halted; returns its pid, the socket path in sock. */
static pid_t
start_qemu(const char *dir, char *sock, size_t len)
{
	char        gdb[700], log[600];
	struct stat st;
	pid_t       pid;

	tu_path(sock, len, dir, "gdb.sock");
	tu_path(log, sizeof(log), dir, "qemu.log");
	snprintf(gdb, sizeof(gdb), "unix:%s,server=on,wait=off", sock);
	/* The loader stores data in the target's order (little-endian):
	 * byte 0 of the UID is the low byte. */
	char *argv[] = {CS_QEMU, "-M", "lm3s6965evb", "-nographic",
	    "-monitor", "none", "-serial", "none", "-semihosting-config",
	    "enable=on,target=native", "-S", "-gdb", gdb, "-device",
	    "loader,addr=0x2000FF00,data=0xefcdab8967452301,data-len=8",
	    NULL};
	pid = tu_spawn(argv, log);
	for (int i = 0; i < 500 && stat(sock, &st) != 0; i++) {
		nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
	}
	assert_int_equal(stat(sock, &st), 0);
	return pid;
}

static void
boot(bool with_record, int want)
{
	char              *dir = tu_tmpdir();
	char               sock[600], url[700], err[256], elf[512];
	uint8_t            uid[8], rec[CS_RECORD_MAX_LEN], back[PAGE];
	size_t             n = 0;
	struct probe_stop  st;
	probe             *p = NULL;
	pid_t              pid;

	pid = start_qemu(dir, sock, sizeof(sock));
	snprintf(url, sizeof(url), "gdb+unix://%s?server=qemu", sock);
	if (probe_open(&p, url, 5000, err, sizeof(err)) != CS_OK) {
		fprintf(stderr, "probe_open: %s\n", err);
		fail();
	}
	assert_int_equal(probe_read(p, UID_ADDR, uid, sizeof(uid)), CS_OK);
	assert_memory_equal(uid, UID, sizeof(UID));

	snprintf(elf, sizeof(elf), "%s/target/fw-p256/countersign-fw.elf",
	    CS_BINARY_DIR);
	program_elf(p, elf);
	if (with_record) {
		sign_record(rec, &n);
	}
	/* The record page: erased, then the record (if any). */
	assert_int_equal(probe_flash_write(p, RECORD_ADDR, PAGE, RECORD_ADDR,
	    rec, n), CS_OK);
	assert_int_equal(probe_flash_done(p), CS_OK);
	assert_int_equal(probe_read(p, RECORD_ADDR, back, PAGE), CS_OK);
	assert_memory_equal(back, rec, n);
	for (size_t i = n; i < PAGE; i++) {
		assert_int_equal(back[i], 0xFF);
	}
	if (probe_reset_halt(p) != CS_OK) {
		fprintf(stderr, "reset: %s\n", probe_error(p));
		fail();
	}
	if (probe_run(p, 60000, &st) != CS_OK) {
		fprintf(stderr, "run: %s\n", probe_error(p));
		fail();
	}
	assert_true(st.exited);
	assert_int_equal(st.exit_code, want);
	probe_close(p);
	assert_int_equal(tu_stop(pid, SIGTERM, 5000), want);
	tu_rmtree_free(dir);
}

static void
test_authorized(void **state)
{
	(void)state;
	boot(true, 0);
}

static void
test_no_record(void **state)
{
	(void)state;
	boot(false, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_authorized),
	    cmocka_unit_test(test_no_record),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
