/*
 * json_test.c - the project's JSON through jansson (cs_json.h): strings
 * (controls, quotes, UTF-8 pass-through, every kind of malformed UTF-8
 * replaced), the writer's shape and its one-line output, and the strict
 * reader for untrusted bodies (duplicates, trailing text, NUL, depth,
 * big numbers, truncation).
 */
#include "cs_err.h"
#include "cs_json.h"

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
esc(const char *in, size_t len, const char *want)
{
	struct cap c;

	cap_open(&c);
	assert_int_equal(cs_json_print_string(c.fp, in, len), CS_OK);
	cap_check(&c, want);
}

#define ESC(lit, want) esc(lit, sizeof(lit) - 1, want)
#define FFFD           "\xef\xbf\xbd"

static void
test_escape_ascii(void **state)
{
	(void)state;
	ESC("", "\"\"");
	ESC("plain text", "\"plain text\"");
	ESC("a\"b\\c", "\"a\\\"b\\\\c\"");
	ESC("/", "\"/\"");
	ESC("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
	ESC("\x01\x1f\x1b\x20\x7f", "\"\\u0001\\u001F\\u001B \x7f\"");
	/* An embedded NUL is data, not the end. */
	ESC("a\0b", "\"a\\u0000b\"");
}

static void
test_escape_utf8_valid(void **state)
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
test_escape_utf8_invalid(void **state)
{
	(void)state;
	/* Lone continuation byte, and 0xff / 0xfe that never occur. */
	ESC("\x80", "\"" FFFD "\"");
	ESC("a\xff" "b\xfe", "\"a" FFFD "b" FFFD "\"");
	/* Overlong forms of '/' and of U+0000. */
	ESC("\xc0\xaf", "\"" FFFD FFFD "\"");
	ESC("\xc1\x80", "\"" FFFD FFFD "\"");
	ESC("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\"");
	ESC("\xf0\x80\x80\xaf", "\"" FFFD FFFD FFFD FFFD "\"");
	/* UTF-16 surrogates encoded as UTF-8 (CESU). */
	ESC("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"");
	ESC("\xed\xbf\xbf", "\"" FFFD FFFD FFFD "\"");
	/* Past U+10FFFF, and lead bytes 0xf5.. that cannot start one. */
	ESC("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
	ESC("\xf5\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
	/* Truncated sequences, at the end and before ASCII; the byte
	 * after a bad lead is examined again on its own. */
	ESC("\xe2\x82", "\"" FFFD FFFD "\"");
	ESC("\xc3", "\"" FFFD "\"");
	ESC("\xc3x", "\"" FFFD "x\"");
	ESC("\xe2\x82\xc3\xa9", "\"" FFFD FFFD "\xc3\xa9\"");
	/* The length limit is respected: a valid sequence cut by len. */
	esc("\xc3\xa9", 1, "\"" FFFD "\"");
}

static void
test_writer(void **state)
{
	struct cs_json j;
	struct cap     c;
	const uint8_t  b[] = {0x00, 0xab, 0x10};

	(void)state;
	cap_open(&c);
	cs_json_init(&j, c.fp);
	cs_json_open(&j, NULL);
	cs_json_str(&j, "s", "x\"y");
	cs_json_u64(&j, "u", (uint64_t)INT64_MAX);
	cs_json_u64(&j, "big", UINT64_MAX);
	cs_json_i64(&j, "i", -5);
	cs_json_bool(&j, "t", true);
	cs_json_bytes(&j, "b", b, sizeof(b));
	cs_json_bytes(&j, "e", NULL, 0);
	cs_json_str(&j, "n", NULL);
	cs_json_null(&j, "z");
	cs_json_strn(&j, "bad", "a\xffz", 3);
	cs_json_array(&j, "a");
	cs_json_str(&j, NULL, "1");
	cs_json_open(&j, NULL);
	cs_json_close(&j);
	cs_json_array(&j, NULL);
	cs_json_end(&j);
	cs_json_end(&j);
	cs_json_open(&j, "o");
	cs_json_value(&j, "v", json_integer(7));
	cs_json_close(&j);
	cs_json_close(&j);
	assert_false(cs_json_failed(&j));
	/* Members in the order written, compact, no newline. */
	cap_check(&c, "{\"s\":\"x\\\"y\",\"u\":9223372036854775807,"
	              "\"big\":\"18446744073709551615\","
	              "\"i\":-5,\"t\":true,\"b\":\"00ab10\",\"e\":\"\","
	              "\"n\":\"\",\"z\":null,\"bad\":\"a" FFFD "z\","
	              "\"a\":[\"1\",{},[]],\"o\":{\"v\":7}}");

	/* An array at the top, printed when it ends. */
	cap_open(&c);
	cs_json_init(&j, c.fp);
	cs_json_array(&j, NULL);
	cs_json_u64(&j, NULL, 1);
	cs_json_end(&j);
	cap_check(&c, "[1]");
}

static void
test_print_line(void **state)
{
	struct cap c;
	json_t    *v = json_pack("{s:i,s:[s]}", "a", 1, "b", "x\ny");

	(void)state;
	assert_non_null(v);
	cap_open(&c);
	assert_int_equal(cs_json_print_line(c.fp, v), CS_OK);
	cap_check(&c, "{\"a\":1,\"b\":[\"x\\ny\"]}\n");
	json_decref(v);
}

/* Parse text (a literal) and expect a refusal whose message has want. */
static void
refused(const char *text, size_t len, unsigned depth, const char *want)
{
	char    err[256] = "";
	json_t *v        = cs_json_parse_object(text, len, depth, err,
	           sizeof(err));

	if (v != NULL) {
		json_decref(v);
		fail_msg("accepted: %.*s", (int)len, text);
	}
	if (strstr(err, want) == NULL) {
		fail_msg("for %.*s: \"%s\" lacks \"%s\"", (int)len, text, err,
		    want);
	}
}

#define REFUSED(lit, depth, want) refused(lit, sizeof(lit) - 1, depth, want)

static void
test_parse_good(void **state)
{
	static const char text[] =
	    " {\"a\": \"caf\\u00e9\", \"n\": -9223372036854775808,"
	    " \"l\": [\"x\", \"\\ud83d\\ude00\"], \"t\": true, \"z\": null}\n";
	char    err[256];
	json_t *v;

	(void)state;
	v = cs_json_parse_object(text, sizeof(text) - 1, 2, err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "a")),
	    "caf\xc3\xa9");
	assert_true(json_integer_value(json_object_get(v, "n")) == INT64_MIN);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(v, "l"), 1)), "\xf0\x9f\x98\x80");
	json_decref(v);
	/* The length bounds the text: what follows it is not read. */
	v = cs_json_parse_object("{}garbage", 2, 1, err, sizeof(err));
	assert_non_null(v);
	json_decref(v);
}

static void
test_parse_refused(void **state)
{
	(void)state;
	REFUSED("", 2, "malformed JSON");
	REFUSED("[]", 2, "must be a JSON object");
	REFUSED("\"x\"", 2, "malformed JSON");
	REFUSED("7", 2, "malformed JSON");
	REFUSED("{\"a\":1,\"a\":2}", 2, "malformed JSON");
	REFUSED("{\"a\":{\"b\":1,\"b\":1}}", 3, "malformed JSON");
	REFUSED("{} {}", 2, "malformed JSON");
	REFUSED("{}x", 2, "malformed JSON");
	REFUSED("{\"a\":\"x\\u0000y\"}", 2, "malformed JSON");
	REFUSED("{\"a\\u0000\":1}", 2, "malformed JSON");
	REFUSED("{\"a\":\"x\0y\"}", 2, "malformed JSON");
	REFUSED("{\"a\":\"\xff\"}", 2, "malformed JSON");
	REFUSED("{\"a\":\"\\ud800\"}", 2, "malformed JSON");
	REFUSED("{\"a\":99999999999999999999}", 2, "malformed JSON");
	REFUSED("{\"a\":1", 2, "malformed JSON");
	REFUSED("{\"a\":\"x", 2, "malformed JSON");
	REFUSED("{\"a\":tru}", 2, "malformed JSON");
	REFUSED("{'a':1}", 2, "malformed JSON");
	REFUSED("{\"a\":[1,]}", 2, "malformed JSON");
	REFUSED("{\"a\":[[1]]}", 2, "nested deeper than 2");
	REFUSED("{\"a\":{}}", 1, "nested deeper than 1");
	/* Truncated at every byte, nothing is accepted. */
	static const char whole[] = "{\"a\":[\"x\",\"y\"],\"b\":-1,\"c\":true}";
	for (size_t n = 0; n + 1 < sizeof(whole) - 1; n++) {
		refused(whole, n, 2, "malformed JSON");
	}
}

static void
test_parse_deep(void **state)
{
	/* Far deeper than jansson's own bound: refused, no crash. */
	size_t n    = 100000;
	char  *deep = malloc(2 * n + 8);

	(void)state;
	assert_non_null(deep);
	deep[0] = '{', deep[1] = '"', deep[2] = 'a', deep[3] = '"';
	deep[4] = ':';
	memset(deep + 5, '[', n);
	memset(deep + 5 + n, ']', n);
	deep[5 + 2 * n] = '}';
	refused(deep, 6 + 2 * n, 2, "malformed JSON");
	free(deep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape_ascii),
	    cmocka_unit_test(test_escape_utf8_valid),
	    cmocka_unit_test(test_escape_utf8_invalid),
	    cmocka_unit_test(test_writer),
	    cmocka_unit_test(test_print_line),
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_refused),
	    cmocka_unit_test(test_parse_deep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
