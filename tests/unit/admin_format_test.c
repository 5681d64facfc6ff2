/*
 * admin_format_test.c - the text formats of countersign-admin other than
 * JSON (tests/unit/json_test.c has those): RFC 4180 CSV quoting, the
 * expiry date parser and the strict number, delta and hex parsers.
 */
#include "admin_format.h"
#include "cs_err.h"
#include "cs_hex.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memcap.h"

static void
csv(const char *in, const char *want)
{
	struct cap c;

	cap_open(&c);
	admin_csv_field(c.fp, in, strlen(in));
	cap_check(&c, want);
}

static void
test_csv_quoting(void **state)
{
	(void)state;
	csv("", "");
	csv("plain", "plain");
	csv("k=v;k2=v 2", "k=v;k2=v 2");
	csv("a,b", "\"a,b\"");
	csv("say \"hi\"", "\"say \"\"hi\"\"\"");
	csv("\"", "\"\"\"\"");
	csv("line1\nline2", "\"line1\nline2\"");
	csv("cr\r", "\"cr\r\"");
	/* Only the four characters force quoting. */
	csv(" lead;tab\t", " lead;tab\t");
}

/* A report detail cannot forge fields of the joined key=value cell. */
static void
test_csv_kv(void **state)
{
	struct cap c;

	(void)state;
	cap_open(&c);
	admin_csv_kv(c.fp, "station", "st1", true);
	admin_csv_kv(c.fp, "detail", "ok;outcome=programmed", false);
	admin_csv_kv(c.fp, "k=;\\", "a\\b", false);
	cap_check(&c, "station=st1;detail=ok\\;outcome\\=programmed;"
	              "k\\=\\;\\\\=a\\\\b");
}

static void
test_times(void **state)
{
	char t[ADMIN_TIME_LEN], d[ADMIN_DATE_LEN];

	(void)state;
	admin_time_iso(0, t);
	assert_string_equal(t, "1970-01-01T00:00:00.000Z");
	admin_time_iso(1709294400123ull, t);
	assert_string_equal(t, "2024-03-01T12:00:00.123Z");
	admin_date(1709251200u - 1u, d);
	assert_string_equal(d, "2024-02-29");
}

/* 2026-01-15 12:00:00 UTC: "now" for the date tests. */
#define NOW ((time_t)1768478400)

static void
test_date_valid(void **state)
{
	uint64_t exp;
	char     err[128];

	(void)state;
	/* Valid through the named day: expires at the next midnight. */
	assert_int_equal(admin_parse_date("2026-01-15", NOW, &exp, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(exp, 1768521600u); /* 2026-01-16T00:00Z */
	assert_int_equal(admin_parse_date("2026-12-31", NOW, &exp, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(exp, 1798761600u); /* 2027-01-01T00:00Z */
	assert_int_equal(admin_parse_date("2028-02-29", NOW, &exp, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(exp, 1835481600u); /* 2028-03-01T00:00Z */
	assert_int_equal(admin_parse_date("2026-01-31", NOW, &exp, err,
	    sizeof(err)), CS_OK);
	assert_int_equal(exp, 1769904000u); /* 2026-02-01T00:00Z */
}

static void
test_date_invalid(void **state)
{
	static const char *bad[] = {"2026-02-30", "2027-02-29", "2100-02-29",
	    "2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00",
	    "2026-1-15", "2026/01/15", "2026-01-15 ", " 2026-01-15",
	    "2026-01-1x", "+026-01-15", "20260115", "", "1969-12-31",
	    "2026-01-15T00:00"};
	uint64_t exp = 7;
	char     err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(admin_parse_date(bad[i], NOW, &exp, err,
		    sizeof(err)), CS_EINVAL);
		assert_true(err[0] != '\0');
		assert_int_equal(exp, 7);
	}
	/* 2000 was a leap year (divisible by 400), yet is in the past. */
	assert_int_equal(admin_parse_date("2000-02-29", NOW, &exp, err,
	    sizeof(err)), CS_EPRECOND);
	assert_int_equal(admin_parse_date("2026-01-14", NOW, &exp, err,
	    sizeof(err)), CS_EPRECOND);
	assert_non_null(strstr(err, "past"));
	assert_int_equal(exp, 7);
}

static void
test_parse_u64(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(admin_parse_u64("0", 0, 10, &v), CS_OK);
	assert_int_equal(v, 0);
	assert_int_equal(admin_parse_u64("4294967296", 1,
	    (uint64_t)1 << 32, &v), CS_OK);
	assert_int_equal(v, (uint64_t)1 << 32);
	assert_int_equal(admin_parse_u64("18446744073709551615", 0,
	    UINT64_MAX, &v), CS_OK);
	assert_int_equal(v, UINT64_MAX);
	static const char *bad[] = {"", "-1", "+1", " 1", "1 ", "1x", "0x10",
	    "1e3", "4294967297", "18446744073709551616",
	    "99999999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		assert_int_equal(admin_parse_u64(bad[i], 0, (uint64_t)1 << 32,
		    &v), CS_EINVAL);
		assert_int_equal(v, 42);
	}
	assert_int_equal(admin_parse_u64("0", 1, 32, &v), CS_EINVAL);
	assert_int_equal(admin_parse_u64("33", 1, 32, &v), CS_EINVAL);
}

static void
test_parse_delta(void **state)
{
	int64_t d = 0;

	(void)state;
	assert_int_equal(admin_parse_delta("+500", 1000, &d), CS_OK);
	assert_int_equal(d, 500);
	assert_int_equal(admin_parse_delta("-1", 1000, &d), CS_OK);
	assert_int_equal(d, -1);
	static const char *bad[] = {"500", "+", "-", "+0", "-0", "++1", "+-1",
	    "+1001", "+ 1", "+1x", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(admin_parse_delta(bad[i], 1000, &d),
		    CS_EINVAL);
	}
}

static void
test_parse_hex(void **state)
{
	uint8_t b[4];
	size_t  n = 0;

	(void)state;
	assert_int_equal(cs_hex_decode("0a1B", b, sizeof(b), &n), CS_OK);
	assert_int_equal(n, 2);
	assert_int_equal(b[0], 0x0a);
	assert_int_equal(b[1], 0x1b);
	assert_int_equal(cs_hex_decode("0xDEADbeef", b, sizeof(b), &n),
	    CS_OK);
	assert_int_equal(n, 4);
	assert_int_equal(b[3], 0xef);
	assert_int_equal(cs_hex_decode("de:ad:be", b, sizeof(b), &n), CS_OK);
	assert_int_equal(n, 3);
	static const char *bad[] = {"", "0x", "abc", "zz", "de::ad", ":de",
	    "de:", "d:e", "0102030405", "0x 01", "01 ", "de--ad", "-de"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cs_hex_decode(bad[i], b, sizeof(b), &n),
		    CS_EINVAL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_csv_quoting),
	    cmocka_unit_test(test_csv_kv),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_date_valid),
	    cmocka_unit_test(test_date_invalid),
	    cmocka_unit_test(test_parse_u64),
	    cmocka_unit_test(test_parse_delta),
	    cmocka_unit_test(test_parse_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
