/*
 * fuzz_console_body.c - libFuzzer target for the console's request-body
 * parser (authority/console_body.c over common/cs_json.c and jansson),
 * built with clang and -fsanitize=fuzzer,address,undefined by
 * tests/fuzz/run-fuzz-console-body.sh.
 *
 * Every POST body anyone can reach the console with goes through
 * body_parse (POST /api/login needs no sign-in), so whatever the bytes:
 * no crash, no leak, and what it accepts is one object that keeps the
 * shape the handlers rely on: at most BODY_FIELDS_MAX members, each a
 * string, an integer, a boolean, null or an array of at most
 * BODY_ARRAY_MAX strings.  An accepted object is then read the way the
 * handlers read it; a refused one must come with a message.  Inputs are
 * at most CONSOLE_BODY_MAX (64 KiB, -max_len): larger bodies get a 413
 * before the parser sees them.
 */
#include "console_body.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every member name a route accepts. */
static const char *const names[] = {"token", "delta", "order_id",
    "product_id", "key_label", "quota", "uid_len", "cms", "expires_unix_s",
    "firmware_sha256", NULL};

static void
check_shape(const json_t *o)
{
	const char *key;
	json_t     *v, *e;
	size_t      i;

	if (!json_is_object(o) || json_object_size(o) > BODY_FIELDS_MAX) {
		abort();
	}
	json_object_foreach ((json_t *)o, key, v) {
		if (json_is_object(v) || json_is_real(v)) {
			abort();
		}
		if (!json_is_array(v)) {
			continue;
		}
		if (json_array_size(v) > BODY_ARRAY_MAX) {
			abort();
		}
		json_array_foreach (v, i, e) {
			if (!json_is_string(e)) {
				abort();
			}
		}
	}
}

/* Read o as the handlers do: any answer is fine, a crash is not. */
static void
read_like_handlers(const json_t *o)
{
	char     err[192];
	uint64_t u;

	(void)body_unknown(o, names);
	for (size_t k = 0; names[k] != NULL; k++) {
		const char *s = body_str(o, names[k]);

		/* handlers use C strings: no member may hide a NUL */
		if (s != NULL &&
		    strlen(s) != json_string_length(json_object_get(o,
		                     names[k]))) {
			abort();
		}
		if (body_uint(o, names[k], UINT32_MAX, k % 2 == 0, 7, &u, err,
		        sizeof(err)) &&
		    u > UINT32_MAX) {
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char    err[192];
	json_t *o;

	err[0] = '\0';
	o      = body_parse((const char *)data, size, err, sizeof(err));
	if (o == NULL) {
		/* a refusal always says why, as one C string */
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL) {
			abort();
		}
		return 0;
	}
	check_shape(o);
	read_like_handlers(o);
	json_decref(o);
	return 0;
}
