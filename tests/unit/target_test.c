/*
 * target_test.c - target profiles: the shipped ones load, every check
 * reports its file:line, lookup by name and path, unknown names listed.
 */
#include "cs_err.h"
#include "cs_target.h"
#include "test_util.h"

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

/* A good profile; the cases below change one line of it.  Line numbers:
 *  1 [target]       5 address        9 size           13 size
 *  2 name           6 length        10 page_size      14 [program]
 *  3 description    7 [flash]       11 [record]       15 method
 *  4 [uid]          8 base          12 address        16 [reset]
 *                                                     17 method
 *                                                     18 boot_check
 *                                                     19 boot_timeout_ms */
static const char *const good[] = {
    "[target]",
    "name = part",
    "description = a test part",
    "[uid]",
    "address = 0x20000000",
    "length = 8",
    "[flash]",
    "base = 0x08000000",
    "size = 0x10000",
    "page_size = 0x800",
    "[record]",
    "address = 0x0800F800",
    "size = 0x800",
    "[program]",
    "method = vflash",
    "[reset]",
    "method = monitor",
    "boot_check = none",
    "boot_timeout_ms = 5000",
};

#define NGOOD (sizeof(good) / sizeof(good[0]))

struct fx {
	char *dir;
	char  path[512];
	char  err[1024];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_path(f->path, sizeof(f->path), f->dir, "part.ini");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* Write the good profile with line (1-based) replaced by repl (NULL:
 * unchanged; "" drops the line's content). */
static void
write_profile(struct fx *f, size_t line, const char *repl)
{
	char   text[2048];
	size_t m = 0;

	for (size_t i = 0; i < NGOOD; i++) {
		const char *s = (i + 1 == line && repl != NULL) ? repl :
								   good[i];
		m += (size_t)snprintf(text + m, sizeof(text) - m, "%s\n", s);
		assert_true(m < sizeof(text));
	}
	tu_write_file(f->path, text);
}

/* Expect CS_ECONFIG with "<path>:<line>: " and needle. */
static void
expect_error(struct fx *f, size_t line, const char *repl, int err_line,
    const char *needle)
{
	struct target t;
	char          prefix[600];

	write_profile(f, line, repl);
	memset(&t, 0xAB, sizeof(t));
	assert_int_equal(target_load(&t, f->path, NULL, f->err,
	    sizeof(f->err)), CS_ECONFIG);
	if (err_line > 0) {
		snprintf(prefix, sizeof(prefix), "%s:%d: ", f->path, err_line);
	} else {
		snprintf(prefix, sizeof(prefix), "%s: ", f->path);
	}
	if (strncmp(f->err, prefix, strlen(prefix)) != 0 ||
	    strstr(f->err, needle) == NULL) {
		fail_msg("line %zu '%s': got \"%s\", want prefix \"%s\" and "
		    "\"%s\"", line, repl ? repl : "", f->err, prefix, needle);
	}
}

static void
test_shipped_profiles(void **state)
{
	const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	struct target     t;
	char              err[1024];

	(void)state;
	assert_int_equal(target_load(&t, "lm3s6965", dirs, err, sizeof(err)),
	    CS_OK);
	assert_string_equal(t.name, "lm3s6965");
	assert_non_null(strstr(t.description, "lm3s6965evb"));
	assert_int_equal(t.uid_addr, 0x2000FF00u);
	assert_int_equal(t.uid_len, 8);
	assert_int_equal(t.flash_base, 0);
	assert_int_equal(t.flash_size, 0x40000);
	assert_int_equal(t.page_size, 0x400);
	assert_int_equal(t.record_addr, 0x3F000);
	assert_int_equal(t.record_size, 0x1000);
	assert_int_equal(t.flash_ctl, TARGET_FLASH_CTL_LM3S);
	assert_int_equal(t.flash_ctl_base, 0x400FD000u);
	assert_int_equal(t.program, TARGET_PROGRAM_MEMORY);
	assert_int_equal(t.boot_check, TARGET_BOOT_SEMIHOSTING);
	assert_int_equal(t.boot_timeout_ms, 10000);
	/* QEMU cannot be locked, and the profile says why. */
	assert_false(t.can_lock);
	assert_non_null(strstr(t.protect.reason, "QEMU"));

	/* The same part with the LM3S lock, for the simulated probes. */
	assert_int_equal(target_load(&t, "lm3s6965-locked", dirs, err,
	    sizeof(err)), CS_OK);
	assert_true(t.can_lock);
	assert_int_equal(t.record_addr, 0x3F000);
	assert_int_equal(t.flash_ctl, TARGET_FLASH_CTL_LM3S);
	assert_int_equal(t.protect.n_steps, 34);
	assert_int_equal(t.protect.n_monitors, 0);
	assert_int_equal(t.protect.step[0].op, TARGET_STEP_WRITE);
	assert_int_equal(t.protect.step[0].addr, 0x400FE200u);
	assert_int_equal(t.protect.step[0].value, 0);
	assert_int_equal(t.protect.step[2].value, 0xA4420008u);
	assert_int_equal(t.protect.step[3].op, TARGET_STEP_POLL);
	assert_int_equal(t.protect.step[3].addr, 0x400FD008u);
	assert_int_equal(t.protect.step[3].mask, 8);
	assert_int_equal(t.protect.step[3].timeout_ms, 500);
	assert_int_equal(t.protect.step[33].op, TARGET_STEP_RESET);
	assert_int_equal(t.protect.check, TARGET_CHECK_READ_FAILS);
	assert_int_equal(t.protect.check_addr, 0);

	assert_int_equal(target_load(&t, "stm32f407", dirs, err, sizeof(err)),
	    CS_OK);
	assert_string_equal(t.name, "stm32f407");
	assert_int_equal(t.uid_addr, 0x1FFF7A10u);
	assert_int_equal(t.uid_len, 12);
	assert_int_equal(t.flash_base, 0x08000000u);
	assert_int_equal(t.flash_size, 0x100000);
	assert_int_equal(t.page_size, 0x4000);
	assert_int_equal(t.record_addr, 0x08004000u);
	assert_int_equal(t.record_size, 0x4000);
	assert_int_equal(t.program, TARGET_PROGRAM_VFLASH);
	assert_int_equal(t.boot_check, TARGET_BOOT_NONE);
	/* Locked through OpenOCD's monitor commands. */
	assert_true(t.can_lock);
	assert_int_equal(t.protect.n_steps, 0);
	assert_int_equal(t.protect.n_monitors, 3);
	assert_string_equal(t.protect.monitor[1].server, "openocd");
	assert_string_equal(t.protect.monitor[1].cmd, "stm32f2x lock 0");
	assert_string_equal(t.protect.monitor[1].expect, "locked");
	assert_string_equal(t.protect.monitor[0].expect, "");
	assert_int_equal(t.protect.monitor_timeout_ms, 30000);
	assert_int_equal(t.protect.check, TARGET_CHECK_READ_FAILS);
	assert_int_equal(t.protect.check_addr, 0x08000000u);
}

static void
test_good_and_defaults(void **state)
{
	struct fx    *f = *state;
	struct target t;

	write_profile(f, 0, NULL);
	assert_int_equal(target_load(&t, f->path, NULL, f->err,
	    sizeof(f->err)), CS_OK);
	assert_string_equal(t.name, "part");
	assert_string_equal(t.description, "a test part");
	assert_int_equal(t.boot_timeout_ms, 5000);

	/* description and boot_timeout_ms are optional */
	write_profile(f, 3, "");
	assert_int_equal(target_load(&t, f->path, NULL, f->err,
	    sizeof(f->err)), CS_OK);
	assert_string_equal(t.description, "");
	write_profile(f, 19, "");
	assert_int_equal(target_load(&t, f->path, NULL, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(t.boot_timeout_ms, 10000);
}

static void
test_value_errors(void **state)
{
	struct fx *f = *state;

	/* [target] */
	expect_error(f, 2, "name = Part", 2, "expected only a-z");
	expect_error(f, 2, "name = other", 2,
	    "name 'other' does not match the file name 'part.ini'");
	expect_error(f, 2, "", 0, "missing required key 'name' in [target]");
	/* uid */
	expect_error(f, 6, "length = 0", 6, "expected a number from 1 to 32");
	expect_error(f, 6, "length = 33", 6, "expected a number from 1 to 32");
	expect_error(f, 5, "address = 0x08001000", 5,
	    "UID 0x08001000-0x08001007 overlaps flash 0x08000000-0x0800FFFF");
	expect_error(f, 5, "address = 0x07FFFFFC", 5, "overlaps flash");
	expect_error(f, 5, "address = 0xFFFFFFFC", 5,
	    "runs past the 32-bit address space");
	expect_error(f, 5, "address = 0x1_0000", 5, "expected a number");
	/* flash */
	expect_error(f, 10, "page_size = 0x600", 10,
	    "page_size 0x600 is not a power of two");
	expect_error(f, 10, "page_size = 2", 10,
	    "expected a number from 0x4 to 0x80000000");
	expect_error(f, 8, "base = 0x08000400", 8,
	    "flash base 0x08000400 is not aligned to the page size 0x800");
	expect_error(f, 9, "size = 0x10100", 9,
	    "flash size 0x10100 is not a whole number of pages");
	expect_error(f, 9, "size = 0", 9, "expected a number from 0x1");
	expect_error(f, 8, "base = 0xFFFF8000", 9,
	    "runs past the 32-bit address space");
	expect_error(f, 9, "size = 0x100000000", 9, "up to 0xFFFFFFFF");
	/* record */
	expect_error(f, 12, "address = 0x0800F900", 12,
	    "record address 0x0800F900 is not aligned to the page size");
	expect_error(f, 13, "size = 0x900", 13,
	    "record size 0x900 is not a whole number of pages");
	expect_error(f, 13, "size = 159", 13,
	    "expected a number from 0xA0 to 0xFFFFFFFF");
	expect_error(f, 12, "address = 0x08010000", 12,
	    "record area 0x08010000-0x080107FF is not inside flash "
	    "0x08000000-0x0800FFFF");
	expect_error(f, 12, "address = 0x07FFF800", 12, "is not inside flash");
	expect_error(f, 13, "size = 0x1000", 12, "is not inside flash");
	/* methods */
	expect_error(f, 15, "method = jtag", 15, "expected memory or vflash");
	expect_error(f, 17, "method = power", 17, "expected monitor");
	expect_error(f, 18, "boot_check = uart", 18,
	    "expected semihosting or none");
	expect_error(f, 18, "", 0, "missing required key 'boot_check'");
	expect_error(f, 19, "boot_timeout_ms = 99", 19,
	    "expected a number from 100 to 600000");
	expect_error(f, 19, "boot_timeout_ms = 600001", 19,
	    "expected a number from 100 to 600000");
	/* the loader's own checks */
	expect_error(f, 19, "boot_timeout = 5000", 19,
	    "unknown key 'boot_timeout' in [reset]");
	expect_error(f, 14, "[programme]", 15, "unknown section [programme]");
	expect_error(f, 10, "size = 0x10000", 10,
	    "'size' in [flash] is set twice (first on line 9)");
}

static void
test_edges_accepted(void **state)
{
	struct fx    *f = *state;
	struct target t;
	char          text[1024];

	/* flash at the top of the address space, record in its last page,
	 * the UID right below it */
	snprintf(text, sizeof(text),
	    "[target]\nname = part\n[uid]\naddress = 0xFFFEFFE0\n"
	    "length = 32\n[flash]\nbase = 0xFFFF0000\nsize = 0xFFF0\n"
	    "page_size = 16\n[record]\naddress = 0xFFFFFF00\nsize = 0xF0\n"
	    "[program]\nmethod = memory\n[reset]\nmethod = monitor\n"
	    "boot_check = semihosting\n");
	tu_write_file(f->path, text);
	assert_int_equal(target_load(&t, f->path, NULL, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(t.record_addr + t.record_size,
	    t.flash_base + t.flash_size);
	assert_int_equal(t.boot_timeout_ms, 10000);
	assert_int_equal(t.program, TARGET_PROGRAM_MEMORY);
}

static void
test_lookup(void **state)
{
	struct fx        *f = *state;
	const char *const dirs[] = {f->dir, CS_TARGETS_DIR, NULL};
	const char *const none[] = {NULL};
	const char       *want = "unknown target 'stm32f4': available: "
				 "lm3s6965, lm3s6965-locked, part, stm32f407 (in ";
	struct target     t;
	char              path[600];

	/* by name: the first directory that has it wins */
	write_profile(f, 0, NULL);
	assert_int_equal(target_load(&t, "part", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	assert_string_equal(t.name, "part");
	assert_int_equal(target_load(&t, "lm3s6965", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	assert_string_equal(t.name, "lm3s6965");

	/* by path: with a '/', or ending in .ini (relative to the cwd) */
	assert_int_equal(target_load(&t, CS_TARGETS_DIR "/stm32f407.ini",
	    none, f->err, sizeof(f->err)), CS_OK);
	assert_string_equal(t.name, "stm32f407");
	assert_int_equal(target_load(&t, "stm32f407.ini", dirs, f->err,
	    sizeof(f->err)), CS_ENOENT); /* a path: not looked up */
	assert_non_null(strstr(f->err, "stm32f407.ini: cannot open"));

	/* unknown: the names in all the directories, sorted, once each */
	tu_path(path, sizeof(path), f->dir, "lm3s6965.ini");
	tu_write_file(path, "broken");
	tu_path(path, sizeof(path), f->dir, "README.txt");
	tu_write_file(path, "not a profile");
	tu_path(path, sizeof(path), f->dir, "Bad Name.ini");
	tu_write_file(path, "not a profile name");
	assert_int_equal(target_load(&t, "stm32f4", dirs, f->err,
	    sizeof(f->err)), CS_ENOENT);
	if (strncmp(f->err, want, strlen(want)) != 0 ||
	    strstr(f->err, CS_TARGETS_DIR ")") == NULL) {
		fail_msg("got \"%s\"", f->err);
	}
	assert_int_equal(target_load(&t, "x", none, f->err, sizeof(f->err)),
	    CS_ENOENT);
	assert_string_equal(f->err, "unknown target 'x': no profiles");
	assert_int_equal(target_load(&t, "x", NULL, f->err, sizeof(f->err)),
	    CS_ENOENT);

	/* a broken profile found first is an error, not skipped */
	assert_int_equal(target_load(&t, "lm3s6965", dirs, f->err,
	    sizeof(f->err)), CS_ECONFIG);
	assert_non_null(strstr(f->err, "lm3s6965.ini:1: syntax error"));

	/* names outside [a-z0-9._-]{1,64} */
	assert_int_equal(target_load(&t, "LM3S6965", dirs, f->err,
	    sizeof(f->err)), CS_ENOENT);
	assert_non_null(strstr(f->err, "bad target name"));
	assert_int_equal(target_load(&t, "", dirs, f->err, sizeof(f->err)),
	    CS_ENOENT);
	assert_int_equal(target_load(&t, "a..b\\c", dirs, f->err,
	    sizeof(f->err)), CS_ENOENT);
	/* a short error buffer is cut, not overrun */
	assert_int_equal(target_load(&t, "nope", dirs, f->err, 20),
	    CS_ENOENT);
	assert_int_equal(strlen(f->err), 19);
}

/* The optional [flash_controller] section (after the good lines). */
static void
test_flash_controller(void **state)
{
	struct fx    *f = *state;
	struct target t;
	char          text[2048];
	size_t        m;
	const char   *tails[] = {
	    "",
	    "[flash_controller]\ntype = lm3s\nbase = 0x400FD000\n",
	    "[flash_controller]\ntype = lm3s\n",
	    "[flash_controller]\ntype = stm32\nbase = 0x40022000\n",
	    "[flash_controller]\ntype = lm3s\nbase = 0x400FD002\n",
	};
	const int     want[] = {CS_OK, CS_OK, CS_ECONFIG, CS_ECONFIG,
	    CS_ECONFIG};
	const char   *needle[] = {NULL, NULL, "missing required key 'base'",
	    "expected lm3s", ":22: flash controller base 0x400FD002 is not "
	    "word aligned"};

	for (size_t k = 0; k < sizeof(tails) / sizeof(tails[0]); k++) {
		m = 0;
		for (size_t i = 0; i < NGOOD; i++) {
			m += (size_t)snprintf(text + m, sizeof(text) - m,
			    "%s\n", good[i]);
		}
		snprintf(text + m, sizeof(text) - m, "%s", tails[k]);
		tu_write_file(f->path, text);
		assert_int_equal(target_load(&t, f->path, NULL, f->err,
		    sizeof(f->err)), want[k]);
		if (needle[k] != NULL && strstr(f->err, needle[k]) == NULL) {
			fail_msg("case %zu: got \"%s\"", k, f->err);
		}
	}
	/* What the loaded struct says, without and with the section. */
	m = 0;
	for (size_t i = 0; i < NGOOD; i++) {
		m += (size_t)snprintf(text + m, sizeof(text) - m, "%s\n",
		    good[i]);
	}
	tu_write_file(f->path, text);
	assert_int_equal(target_load(&t, f->path, NULL, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(t.flash_ctl, TARGET_FLASH_CTL_NONE);
	snprintf(text + m, sizeof(text) - m, "%s", tails[1]);
	tu_write_file(f->path, text);
	assert_int_equal(target_load(&t, f->path, NULL, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(t.flash_ctl, TARGET_FLASH_CTL_LM3S);
	assert_int_equal(t.flash_ctl_base, 0x400FD000u);
}

/* Load the good profile followed by tail; expect want and, for errors,
 * needle in the message (with "path:line: " when line > 0). */
static void
expect_tail(struct fx *f, const char *tail, int want, int line,
    const char *needle, struct target *t)
{
	char   text[8192], prefix[600];
	size_t m = 0;

	for (size_t i = 0; i < NGOOD; i++) {
		m += (size_t)snprintf(text + m, sizeof(text) - m, "%s\n",
		    good[i]);
	}
	snprintf(text + m, sizeof(text) - m, "%s", tail);
	tu_write_file(f->path, text);
	f->err[0] = '\0';
	if (target_load(t, f->path, NULL, f->err, sizeof(f->err)) != want) {
		fail_msg("tail \"%s\": want %d, got \"%s\"", tail, want,
		    f->err);
	}
	if (needle == NULL) {
		return;
	}
	snprintf(prefix, sizeof(prefix), "%s:%d: ", f->path, line);
	if ((line > 0 && strncmp(f->err, prefix, strlen(prefix)) != 0) ||
	    strstr(f->err, needle) == NULL) {
		fail_msg("tail \"%s\": got \"%s\", want \"%s\" and \"%s\"",
		    tail, f->err, line > 0 ? prefix : "", needle);
	}
}

/* [protect]: the good forms and the many ways to get it wrong.  The
 * section starts on line 20 (after the 19 good lines). */
static void
test_protect(void **state)
{
	struct fx    *f = *state;
	struct target t;
	char          many[4096];
	size_t        m = 0;

	/* No section: not lockable, no reason. */
	expect_tail(f, "", CS_OK, 0, NULL, &t);
	assert_false(t.can_lock);
	assert_string_equal(t.protect.reason, "");
	/* method = none with its reason. */
	expect_tail(f, "[protect]\nmethod = none\nreason = no lock here\n",
	    CS_OK, 0, NULL, &t);
	assert_false(t.can_lock);
	assert_string_equal(t.protect.reason, "no lock here");
	/* Steps, monitor commands and a reg check together. */
	expect_tail(f, "[protect]\nmethod = lock\n"
	    "step1 = write 0x40001000 0x1\n"
	    "step2 = poll 0x40001004 0xFF 0x0A 250\n"
	    "step3 = reset\n"
	    "step4 = write 1073745920 4294967295\n"
	    "monitor1 = openocd: flash protect 0 0 last on\n"
	    "expect1 = protection\n"
	    "monitor2 = jlink:   memU32 0x40001000 = 1\n"
	    "check = reg 0x40001008 0x3 0x1\n"
	    "timeout_ms = 2000\n", CS_OK, 0, NULL, &t);
	assert_true(t.can_lock);
	assert_int_equal(t.protect.n_steps, 4);
	assert_int_equal(t.protect.step[1].op, TARGET_STEP_POLL);
	assert_int_equal(t.protect.step[1].addr, 0x40001004u);
	assert_int_equal(t.protect.step[1].mask, 0xFF);
	assert_int_equal(t.protect.step[1].value, 0x0A);
	assert_int_equal(t.protect.step[1].timeout_ms, 250);
	assert_int_equal(t.protect.step[2].op, TARGET_STEP_RESET);
	assert_int_equal(t.protect.step[3].addr, 0x40001000u);
	assert_int_equal(t.protect.step[3].value, 0xFFFFFFFFu);
	assert_int_equal(t.protect.n_monitors, 2);
	assert_string_equal(t.protect.monitor[0].cmd,
	    "flash protect 0 0 last on");
	assert_string_equal(t.protect.monitor[0].expect, "protection");
	assert_string_equal(t.protect.monitor[1].server, "jlink");
	assert_string_equal(t.protect.monitor[1].cmd, "memU32 0x40001000 = 1");
	assert_int_equal(t.protect.check, TARGET_CHECK_REG);
	assert_int_equal(t.protect.check_addr, 0x40001008u);
	assert_int_equal(t.protect.check_mask, 3);
	assert_int_equal(t.protect.check_value, 1);
	assert_int_equal(t.protect.monitor_timeout_ms, 2000);

	/* The cap: 64 steps load, a 65th is an unknown key. */
	m = (size_t)snprintf(many, sizeof(many), "[protect]\nmethod = lock\n"
	    "check = read-fails 0\n");
	for (int i = 1; i <= 64; i++) {
		m += (size_t)snprintf(many + m, sizeof(many) - m,
		    "step%d = write 0x%X 0\n", i, 0x40000000 + 4 * i);
	}
	expect_tail(f, many, CS_OK, 0, NULL, &t);
	assert_int_equal(t.protect.n_steps, 64);
	snprintf(many + m, sizeof(many) - m, "step65 = reset\n");
	expect_tail(f, many, CS_ECONFIG, 87, "unknown key 'step65' in "
	    "[protect]", &t);

	/* Bad values, on their line. */
	expect_tail(f, "[protect]\nmethod = maybe\n", CS_ECONFIG, 21,
	    "expected none or lock", &t);
	expect_tail(f, "[protect]\nreason = x\n", CS_ECONFIG, 0,
	    "missing required key 'method' in [protect]", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncolor = red\n", CS_ECONFIG,
	    22, "unknown key 'color' in [protect]", &t);
	expect_tail(f, "[protect]\nmethod = lock\nstep1 = erase 0x0\n",
	    CS_ECONFIG, 22, "expected write ADDR VALUE, poll", &t);
	expect_tail(f, "[protect]\nmethod = lock\nstep1 = write 0x10\n",
	    CS_ECONFIG, 22, "expected write ADDR VALUE", &t);
	expect_tail(f, "[protect]\nmethod = lock\nstep1 = write 0x10 1 2\n",
	    CS_ECONFIG, 22, "expected write ADDR VALUE", &t);
	expect_tail(f, "[protect]\nmethod = lock\nstep1 = write 0x12 1\n",
	    CS_ECONFIG, 22, "word aligned", &t);
	expect_tail(f, "[protect]\nmethod = lock\n"
	    "step1 = write 0x100000000 1\n", CS_ECONFIG, 22,
	    "expected write ADDR VALUE", &t);
	expect_tail(f, "[protect]\nmethod = lock\nstep1 = write 0xZZ 1\n",
	    CS_ECONFIG, 22, "expected write ADDR VALUE", &t);
	expect_tail(f, "[protect]\nmethod = lock\nstep1 = write -4 1\n",
	    CS_ECONFIG, 22, "expected write ADDR VALUE", &t);
	expect_tail(f, "[protect]\nmethod = lock\n"
	    "step1 = poll 0x10 0xF 0x1\n", CS_ECONFIG, 22,
	    "expected poll ADDR MASK VALUE TIMEOUT_MS", &t);
	expect_tail(f, "[protect]\nmethod = lock\n"
	    "step1 = poll 0x10 0xF 0x1 0\n", CS_ECONFIG, 22,
	    "poll timeout must be 1 to 600000 ms", &t);
	expect_tail(f, "[protect]\nmethod = lock\n"
	    "step1 = poll 0x10 0xF 0x1 600001\n", CS_ECONFIG, 22,
	    "poll timeout must be 1 to 600000 ms", &t);
	expect_tail(f, "[protect]\nmethod = lock\n"
	    "step1 = poll 0x10 0xF 0x10 10\n", CS_ECONFIG, 22,
	    "bits outside MASK", &t);
	expect_tail(f, "[protect]\nmethod = lock\nstep1 = reset now\n",
	    CS_ECONFIG, 22, "nothing after reset", &t);
	expect_tail(f, "[protect]\nmethod = lock\nstep1 = resets\n",
	    CS_ECONFIG, 22, "expected write ADDR VALUE", &t);
	expect_tail(f, "[protect]\nmethod = lock\nstep0 = reset\n",
	    CS_ECONFIG, 22, "unknown key 'step0'", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncheck = read-fails 0\n"
	    "step1 = reset\nstep1 = reset\n", CS_ECONFIG, 24,
	    "'step1' in [protect] is set twice", &t);
	/* A gap in the numbers. */
	expect_tail(f, "[protect]\nmethod = lock\ncheck = read-fails 0\n"
	    "step1 = reset\nstep3 = reset\n", CS_ECONFIG, 24,
	    "step3 is set but step2 is missing", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncheck = read-fails 0\n"
	    "monitor2 = openocd: reset\n", CS_ECONFIG, 23,
	    "monitor2 is set but monitor1 is missing", &t);
	/* Monitor commands. */
	expect_tail(f, "[protect]\nmethod = lock\nmonitor1 = reset halt\n",
	    CS_ECONFIG, 22, "expected SERVER: COMMAND", &t);
	expect_tail(f, "[protect]\nmethod = lock\nmonitor1 = stlink: x\n",
	    CS_ECONFIG, 22, "SERVER openocd, jlink, pyocd or bmp", &t);
	expect_tail(f, "[protect]\nmethod = lock\nmonitor1 = openocd:\n",
	    CS_ECONFIG, 22, "no command after SERVER:", &t);
	expect_tail(f, "[protect]\nmethod = lock\nmonitor1 = openocd: "
	    "\x01\x02\n", CS_ECONFIG, 22, "printable ASCII", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncheck = read-fails 0\n"
	    "monitor1 = openocd: x\nexpect2 = y\n", CS_ECONFIG, 24,
	    "expect2 without monitor2", &t);
	expect_tail(f, "[protect]\nmethod = lock\nmonitor17 = openocd: x\n",
	    CS_ECONFIG, 22, "unknown key 'monitor17'", &t);
	expect_tail(f, "[protect]\nmethod = lock\ntimeout_ms = 99\n",
	    CS_ECONFIG, 22, "expected a number from 100 to 600000", &t);
	/* Checks. */
	expect_tail(f, "[protect]\nmethod = lock\nstep1 = reset\n",
	    CS_ECONFIG, 21, "method = lock needs a check", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncheck = read 0x0\n",
	    CS_ECONFIG, 22, "expected read-fails ADDR or reg", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncheck = read-fails\n",
	    CS_ECONFIG, 22, "expected read-fails ADDR", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncheck = reg 0x0 0x1\n",
	    CS_ECONFIG, 22, "expected reg ADDR MASK VALUE", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncheck = reg 0x0 0x0 0x0\n",
	    CS_ECONFIG, 22, "a MASK of 0 checks nothing", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncheck = reg 0x0 0x1 0x2\n",
	    CS_ECONFIG, 22, "bits outside MASK", &t);
	expect_tail(f, "[protect]\nmethod = lock\ncheck = read-fails 0x2\n",
	    CS_ECONFIG, 22, "word aligned", &t);
	/* What goes with which method. */
	expect_tail(f, "[protect]\nmethod = lock\ncheck = read-fails 0\n",
	    CS_ECONFIG, 21, "needs lock steps (step1 = ...) or GDB server "
	    "commands", &t);
	expect_tail(f, "[protect]\nmethod = none\n", CS_ECONFIG, 21,
	    "method = none needs a reason", &t);
	expect_tail(f, "[protect]\nmethod = none\nreason = r\n"
	    "step1 = reset\n", CS_ECONFIG, 23, "takes no steps", &t);
	expect_tail(f, "[protect]\nmethod = none\nreason = r\n"
	    "check = read-fails 0\n", CS_ECONFIG, 23, "takes no steps", &t);
	expect_tail(f, "[protect]\nmethod = lock\nreason = r\n"
	    "step1 = reset\ncheck = read-fails 0\n", CS_ECONFIG, 22,
	    "reason is only for method = none", &t);
	memset(many, 'x', 160);
	memcpy(many, "reason = ", 9);
	memcpy(many + 160, "\n", 2);
	expect_tail(f, "[protect]\nmethod = none\n", CS_ECONFIG, 21,
	    "needs a reason", &t);
	{
		char tail[4200];

		snprintf(tail, sizeof(tail), "[protect]\nmethod = none\n%.300s",
		    many);
		expect_tail(f, tail, CS_ECONFIG, 22, "at most 127", &t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shipped_profiles),
	    cmocka_unit_test_setup_teardown(test_good_and_defaults, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_value_errors, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_edges_accepted, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flash_controller, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_protect, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
