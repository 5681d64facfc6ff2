/*
 * admin_json_test.c - the text formats of countersign-admin: the JSON
 * string escaper (controls, quotes, UTF-8 pass-through, every kind of
 * malformed UTF-8), the JSON writer's commas, RFC 4180 CSV quoting, the
 * expiry date parser and the strict number, delta and hex parsers.
 */
#include "admin_json.h"
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

/* Captures what a formatter writes, NUL-terminated. */
struct cap {
	char  *buf;
	size_t len;
	FILE  *fp;
};

static void
cap_open(struct cap *c)
{
	c->buf = NULL;
	c->len = 0;
	c->fp  = open_memstream(&c->buf, &c->len);
	assert_non_null(c->fp);
}

/* Close and compare with want; frees the buffer. */
static void
cap_check(struct cap *c, const char *want)
{
	assert_int_equal(fclose(c->fp), 0);
	assert_string_equal(c->buf, want);
	free(c->buf);
}

static void
esc(const char *in, size_t len, const char *want)
{
	struct cap c;

	cap_open(&c);
	admin_json_string(c.fp, in, len);
	cap_check(&c, want);
}

#define ESC(lit, want) esc(lit, sizeof(lit) - 1, want)

static void
test_json_escape_ascii(void **state)
{
	(void)state;
	ESC("", "\"\"");
	ESC("plain text", "\"plain text\"");
	ESC("a\"b\\c", "\"a\\\"b\\\\c\"");
	ESC("/", "\"/\"");
	ESC("\n\r\t\b\f", "\"\\u000a\\u000d\\u0009\\u0008\\u000c\"");
	ESC("\x01\x1f\x20\x7f", "\"\\u0001\\u001f \x7f\"");
	/* An embedded NUL is data, not the end. */
	ESC("a\0b", "\"a\\u0000b\"");
}

static void
test_json_escape_utf8_valid(void **state)
{
	(void)state;
	ESC("caf\xc3\xa9", "\"caf\xc3\xa9\"");                 /* U+00E9 */
	ESC("\xe2\x82\xac", "\"\xe2\x82\xac\"");               /* U+20AC */
	ESC("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");               /* U+D7FF */
	ESC("\xee\x80\x80", "\"\xee\x80\x80\"");               /* U+E000 */
	ESC("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");       /* U+1F600 */
	ESC("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");       /* U+10FFFF */
	ESC("\xc2\x80", "\"\xc2\x80\"");                       /* U+0080 */
}

static void
test_json_escape_utf8_invalid(void **state)
{
	(void)state;
	/* Lone continuation byte, and 0xff / 0xfe that never occur. */
	ESC("\x80", "\"\\ufffd\"");
	ESC("a\xff" "b\xfe", "\"a\\ufffdb\\ufffd\"");
	/* Overlong forms of '/' and of U+0000. */
	ESC("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	ESC("\xc1\x80", "\"\\ufffd\\ufffd\"");
	ESC("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
	ESC("\xf0\x80\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	/* UTF-16 surrogates encoded as UTF-8 (CESU). */
	ESC("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	ESC("\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\"");
	/* Past U+10FFFF, and lead bytes 0xf5.. that cannot start one. */
	ESC("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	ESC("\xf5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	/* Truncated sequences, at the end and before ASCII; the byte
	 * after a bad lead is examined again on its own. */
	ESC("\xe2\x82", "\"\\ufffd\\ufffd\"");
	ESC("\xc3", "\"\\ufffd\"");
	ESC("\xc3x", "\"\\ufffdx\"");
	ESC("\xe2\x82\xc3\xa9", "\"\\ufffd\\ufffd\xc3\xa9\"");
	/* The length limit is respected: a valid sequence cut by len. */
	esc("\xc3\xa9", 1, "\"\\ufffd\"");
}

static void
test_json_writer(void **state)
{
	struct admin_json j;
	struct cap        c;
	const uint8_t     b[] = {0x00, 0xab, 0x10};

	(void)state;
	cap_open(&c);
	admin_json_init(&j, c.fp);
	admin_json_open(&j, NULL);
	admin_json_str(&j, "s", "x\"y");
	admin_json_u64(&j, "u", UINT64_MAX);
	admin_json_i64(&j, "i", -5);
	admin_json_bool(&j, "t", true);
	admin_json_bytes(&j, "b", b, sizeof(b));
	admin_json_bytes(&j, "e", NULL, 0);
	admin_json_array(&j, "a");
	admin_json_str(&j, NULL, "1");
	admin_json_open(&j, NULL);
	admin_json_close(&j);
	admin_json_array(&j, NULL);
	admin_json_end(&j);
	admin_json_end(&j);
	admin_json_open(&j, "o");
	admin_json_close(&j);
	admin_json_close(&j);
	cap_check(&c, "{\"s\":\"x\\\"y\",\"u\":18446744073709551615,"
	              "\"i\":-5,\"t\":true,\"b\":\"00ab10\",\"e\":\"\","
	              "\"a\":[\"1\",{},[]],\"o\":{}}");
}

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
	    cmocka_unit_test(test_json_escape_ascii),
	    cmocka_unit_test(test_json_escape_utf8_valid),
	    cmocka_unit_test(test_json_escape_utf8_invalid),
	    cmocka_unit_test(test_json_writer),
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
