/*
 * config_test.c - the strict INI loader through the real option tables of
 * authority.conf and station.conf.
 */
#include "authority_config.h"
#include "cs_config.h"
#include "cs_err.h"
#include "station_config.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char good_authority[] =
    "# a comment\n"
    "[authority]\n"
    "id = oem-authority\n"
    "data_dir = /var/lib/countersign\n"
    "station_listen = tls+tcp://0.0.0.0:7443\n"
    "\n"
    "[tls]\n"
    "cert = /etc/countersign/authority.pem\n"
    "key = /etc/countersign/authority.key\n"
    "station_ca = /etc/countersign/station-ca.pem\n";

struct fx {
	char *dir;
	char  path[512];
	char  err[512];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_path(f->path, sizeof(f->path), f->dir, "test.conf");
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

/* Load text as authority.conf; returns the result, err in f->err. */
static int
load_authority(struct fx *f, const char *text, struct authority_config *c)
{
	tu_write_file(f->path, text);
	return authority_config_load(c, f->path, f->err, sizeof(f->err));
}

/* Expect a failure whose message is "<path>:<line>: ..." with needle. */
static void
expect_error(struct fx *f, const char *text, int line, const char *needle)
{
	struct authority_config c;
	char                    prefix[600];

	assert_int_equal(load_authority(f, text, &c), CS_ECONFIG);
	if (line > 0) {
		snprintf(prefix, sizeof(prefix), "%s:%d: ", f->path, line);
	} else {
		snprintf(prefix, sizeof(prefix), "%s: ", f->path);
	}
	if (strncmp(f->err, prefix, strlen(prefix)) != 0 ||
	    strstr(f->err, needle) == NULL) {
		fail_msg("got \"%s\", want prefix \"%s\" and \"%s\"", f->err,
		    prefix, needle);
	}
	/* nothing left allocated on failure */
	assert_null(c.id);
	assert_null(c.log_level);
}

static void
test_good_file(void **state)
{
	struct fx              *f = *state;
	struct authority_config c;

	assert_int_equal(load_authority(f, good_authority, &c), CS_OK);
	assert_string_equal(c.id, "oem-authority");
	assert_string_equal(c.station_listen, "tls+tcp://0.0.0.0:7443");
	assert_string_equal(c.station_ca, "/etc/countersign/station-ca.pem");
	/* defaults */
	assert_string_equal(c.admin_listen,
	    "ipc:///run/countersign/admin.sock");
	assert_int_equal(c.workers, 16);
	assert_string_equal(c.log_level, "info");
	assert_false(c.log_syslog);
	assert_null(c.crl);
	/* no [hsm] section is fine until signing is configured */
	assert_null(c.hsm_module);
	assert_int_equal(c.hsm_sessions, 2);
	authority_config_free(&c);
	authority_config_free(&c); /* idempotent */
}

static void
test_hsm_section(void **state)
{
	struct fx              *f = *state;
	struct authority_config c;
	char                    text[2048];

	snprintf(text, sizeof(text), "%s[hsm]\nmodule = /usr/lib/softhsm/"
	    "libsofthsm2.so\ntoken = oem\npin_file = /etc/pin\n"
	    "sessions = 4\n", good_authority);
	assert_int_equal(load_authority(f, text, &c), CS_OK);
	assert_string_equal(c.hsm_token, "oem");
	assert_int_equal(c.hsm_sessions, 4);
	authority_config_free(&c);

	/* a partial [hsm] section names what is missing */
	snprintf(text, sizeof(text), "%s[hsm]\nmodule = /x.so\n",
	    good_authority);
	expect_error(f, text, 0, "missing required key 'token' in [hsm]");
}

static void
test_missing_required(void **state)
{
	struct fx *f = *state;
	expect_error(f, "[authority]\nid = a\nstation_listen = "
	    "tls+tcp://127.0.0.1:1\n", 0,
	    "missing required key 'data_dir' in [authority]");
}

static void
test_bad_values_with_lines(void **state)
{
	struct fx *f = *state;
	char       text[2048];

	snprintf(text, sizeof(text), "%s[authority]\nworkers = lots\n",
	    good_authority);
	expect_error(f, text, 12,
	    "bad value 'lots' for 'workers' in [authority]");

	snprintf(text, sizeof(text), "[authority]\nworkers = 0\n");
	expect_error(f, text, 2, "expected a number from 1 to 256");

	expect_error(f, "[authority]\nid = a\nstation_listen = "
	    "tcp://0.0.0.0:7443\n", 3, "plain tcp:// is refused");
	expect_error(f, "[authority]\nstation_listen = tls+tcp://host\n", 2,
	    "expected host:port");
	expect_error(f, "[authority]\nid = bad name!\n", 2,
	    "expected only letters");
	expect_error(f, "[authority]\nlog_syslog = maybe\n", 2,
	    "expected true or false");
	expect_error(f, "[authority]\nlog_level = loud\n", 2,
	    "expected error, warn, info or debug");
	expect_error(f, "[authority]\nadmin_listen = /run/x.sock\n", 2,
	    "expected ipc:///absolute/path");
}

static void
test_unknown_and_duplicate(void **state)
{
	struct fx *f = *state;
	char       text[2048];

	snprintf(text, sizeof(text), "%sstation_caa = /x\n", good_authority);
	expect_error(f, text, 11, "unknown key 'station_caa' in [tls]");
	expect_error(f, "[authority]\nid = a\n[consle]\nlisten = x\n", 4,
	    "unknown section [consle]");
	expect_error(f, "[authority]\nid = a\n\nid = b\n", 4,
	    "'id' in [authority] is set twice (first on line 2)");
	expect_error(f, "id = a\n", 1, "outside any [section]");
	expect_error(f, "[authority]\nthis line is wrong\n", 2,
	    "syntax error");
	expect_error(f, "[authority]\nid =\n", 2, "empty value");
}

static void
test_missing_file(void **state)
{
	struct fx              *f = *state;
	struct authority_config c;
	char                    path[600];

	tu_path(path, sizeof(path), f->dir, "nope.conf");
	assert_int_equal(authority_config_load(&c, path, f->err,
	    sizeof(f->err)), CS_ENOENT);
	assert_non_null(strstr(f->err, "cannot open"));
}

static void
test_station_config(void **state)
{
	struct fx            *f = *state;
	struct station_config c;

	tu_write_file(f->path, "[station]\nname = line1-station\n"
	    "authority_url = tls+tcp://authority.example:7443\n"
	    "ca = /etc/countersign/authority-ca.pem\n"
	    "cert = /etc/countersign/station.pem\n"
	    "key = /etc/countersign/station.key\n");
	assert_int_equal(station_config_load(&c, f->path, f->err,
	    sizeof(f->err)), CS_OK);
	assert_string_equal(c.name, "line1-station");
	assert_int_equal(c.timeout_ms, 10000);
	station_config_free(&c);

	tu_write_file(f->path, "[station]\nname = s\n"
	    "authority_url = tcp://authority.example:7443\n");
	assert_int_equal(station_config_load(&c, f->path, f->err,
	    sizeof(f->err)), CS_ECONFIG);
	assert_non_null(strstr(f->err, ":3: bad value"));
	assert_non_null(strstr(f->err, "plain tcp:// is refused"));
}

/* CS_CONF_ADDR (decimal or 0x hex, 32-bit) and cs_conf_load_lines. */
struct addr_cfg {
	unsigned base;
	unsigned size;
};

static const struct cs_conf_opt addr_opts[] = {
	{"flash", "base", CS_CONF_ADDR, offsetof(struct addr_cfg, base),
	    CS_CONF_REQUIRED, NULL, 0, 0xFFFFFFFFu, NULL, "base address"},
	{"flash", "size", CS_CONF_ADDR, offsetof(struct addr_cfg, size),
	    CS_CONF_OPTIONAL, "0x400", 0x100, 0x1000000, NULL, "size"},
};

static int
load_addr(struct fx *f, const char *text, struct addr_cfg *c, int *lines)
{
	memset(c, 0, sizeof(*c));
	tu_write_file(f->path, text);
	return cs_conf_load_lines(f->path, addr_opts, 2, c, lines, f->err,
	    sizeof(f->err));
}

static void
test_addr_values(void **state)
{
	struct fx      *f = *state;
	struct addr_cfg c;
	int             lines[2];

	assert_int_equal(load_addr(f, "[flash]\nbase = 0xFFFFFFFF\n", &c,
	    lines), CS_OK);
	assert_int_equal(c.base, 0xFFFFFFFFu);
	assert_int_equal(c.size, 0x400); /* default, not set: line 0 */
	assert_int_equal(lines[0], 2);
	assert_int_equal(lines[1], 0);

	assert_int_equal(load_addr(f, "[flash]\n\nsize = 4096\n"
	    "base = 0x0800abcd\n", &c, lines), CS_OK);
	assert_int_equal(c.base, 0x0800ABCDu);
	assert_int_equal(c.size, 4096);
	assert_int_equal(lines[0], 4);
	assert_int_equal(lines[1], 3);

	/* past 32 bits, bad digits, signs, blanks, an empty 0x */
	assert_int_equal(load_addr(f, "[flash]\nbase = 0x100000000\n", &c,
	    NULL), CS_ECONFIG);
	assert_non_null(strstr(f->err, ":2: bad value '0x100000000'"));
	assert_non_null(strstr(f->err, "up to 0xFFFFFFFF"));
	assert_int_equal(load_addr(f, "[flash]\nbase = 4294967296\n", &c,
	    NULL), CS_ECONFIG);
	assert_int_equal(load_addr(f, "[flash]\nbase = 0x12g4\n", &c,
	    NULL), CS_ECONFIG);
	assert_non_null(strstr(f->err, "expected a number (decimal or 0x"));
	assert_int_equal(load_addr(f, "[flash]\nbase = 0x\n", &c, NULL),
	    CS_ECONFIG);
	assert_int_equal(load_addr(f, "[flash]\nbase = -1\n", &c, NULL),
	    CS_ECONFIG);
	assert_int_equal(load_addr(f, "[flash]\nbase = 0x-1\n", &c, NULL),
	    CS_ECONFIG);
	assert_int_equal(load_addr(f, "[flash]\nbase = 0x +1\n", &c, NULL),
	    CS_ECONFIG);
	/* the range is printed in hex */
	assert_int_equal(load_addr(f, "[flash]\nbase = 0\nsize = 0x10\n",
	    &c, NULL), CS_ECONFIG);
	assert_non_null(strstr(f->err,
	    ":3: bad value '0x10' for 'size' in [flash]: expected a number "
	    "from 0x100 to 0x1000000"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hsm_section, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_missing_required, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_bad_values_with_lines, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_and_duplicate, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_station_config, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_addr_values, setup,
	        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
