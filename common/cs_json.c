/*
 * cs_json.c - the project's JSON, through jansson (cs_json.h says why and
 * how).  The only code here that is not a call into jansson is the UTF-8
 * repair, because jansson refuses invalid UTF-8 instead of replacing it,
 * and the depth walk, because jansson's own bound (2048) is far above
 * what any request of ours needs.
 */
#include "cs_json.h"
#include "cs_err.h"
#include "cs_hex.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(json_int_t) == 8, "jansson with 64-bit integers");

/* ------------------------------------------------------------------ */
/* Strings                                                             */

static bool
is_cont(uint8_t b)
{
	return (b & 0xc0) == 0x80;
}

/*
 * Length of the well-formed UTF-8 sequence at p (n bytes left), or 0.
 * The second-byte ranges are those of RFC 3629's table: they exclude
 * overlong forms, the UTF-16 surrogates and code points past U+10FFFF.
 */
static size_t
utf8_len(const uint8_t *p, size_t n)
{
	uint8_t lo = 0x80, hi = 0xbf;
	size_t  len;

	if (p[0] < 0x80) {
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		lo  = p[0] == 0xe0 ? 0xa0 : 0x80;
		hi  = p[0] == 0xed ? 0x9f : 0xbf;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		lo  = p[0] == 0xf0 ? 0x90 : 0x80;
		hi  = p[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi) {
		return 0;
	}
	for (size_t i = 2; i < len; i++) {
		if (!is_cont(p[i])) {
			return 0;
		}
	}
	return len;
}

json_t *
cs_json_string_lossy(const char *s, size_t len)
{
	static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
	const uint8_t    *p      = (const uint8_t *)s;
	char             *buf;
	size_t            i = 0, n = 0;
	json_t           *v;

	if (len > (SIZE_MAX - 1) / 3) {
		return NULL;
	}
	/* A bad byte (1) becomes 3 bytes; nothing grows more. */
	if ((buf = malloc(len * 3 + 1)) == NULL) {
		return NULL;
	}
	while (i < len) {
		size_t u = utf8_len(p + i, len - i);
		if (u == 0) {
			memcpy(buf + n, repl, 3);
			n += 3;
			i++; /* the next byte may start a good sequence */
		} else {
			memcpy(buf + n, p + i, u);
			n += u;
			i += u;
		}
	}
	buf[n] = '\0';
	v      = json_stringn_nocheck(buf, n); /* checked above */
	free(buf);
	return v;
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */

void
cs_json_init(struct cs_json *j, FILE *fp)
{
	memset(j, 0, sizeof(*j));
	j->fp = fp;
}

bool
cs_json_failed(const struct cs_json *j)
{
	return j->failed;
}

/* Place v (a new reference, or NULL when out of memory) under key. */
static void
add(struct cs_json *j, const char *key, json_t *v)
{
	json_t *top;

	if (v == NULL) {
		j->failed = true;
		return;
	}
	if (j->failed) {
		json_decref(v); /* nothing will be printed */
		return;
	}
	if (j->depth == 0) {
		abort(); /* scalars are written inside a container */
	}
	top = j->stack[j->depth - 1];
	if (json_is_object(top) != (key != NULL)) {
		abort(); /* a key in an array, or none in an object */
	}
	if ((key != NULL ? json_object_set_new(top, key, v) :
	    json_array_append_new(top, v)) != 0) {
		j->failed = true;
	}
}

static void
push(struct cs_json *j, const char *key, json_t *v)
{
	if (j->depth + 1 >= CS_JSON_DEPTH) {
		abort(); /* fixed output shapes: a bug, not input */
	}
	if (v == NULL) {
		/* Keep the depth right; values go nowhere until the pop. */
		j->failed = true;
		v         = json_null();
	} else if (j->depth > 0) {
		json_incref(v); /* one reference for the parent, one here */
		add(j, key, v);
	} else if (key != NULL) {
		abort();
	}
	j->stack[j->depth++] = v;
}

static void
pop(struct cs_json *j, bool object)
{
	json_t *v;

	if (j->depth == 0) {
		abort();
	}
	v = j->stack[--j->depth];
	if (!j->failed && json_is_object(v) != object) {
		abort(); /* } for a [ or ] for a { */
	}
	if (j->depth == 0 && !j->failed &&
	    json_dumpf(v, j->fp, JSON_COMPACT) != 0) {
		j->failed = true;
	}
	json_decref(v);
}

void
cs_json_open(struct cs_json *j, const char *key)
{
	push(j, key, json_object());
}

void
cs_json_close(struct cs_json *j)
{
	pop(j, true);
}

void
cs_json_array(struct cs_json *j, const char *key)
{
	push(j, key, json_array());
}

void
cs_json_end(struct cs_json *j)
{
	pop(j, false);
}

void
cs_json_strn(struct cs_json *j, const char *key, const char *s, size_t len)
{
	add(j, key, cs_json_string_lossy(s != NULL ? s : "", s != NULL ? len :
	    0));
}

void
cs_json_str(struct cs_json *j, const char *key, const char *s)
{
	cs_json_strn(j, key, s, s != NULL ? strlen(s) : 0);
}

void
cs_json_u64(struct cs_json *j, const char *key, uint64_t v)
{
	char buf[24];

	if (v <= (uint64_t)INT64_MAX) { /* json_int_t is 64-bit here */
		add(j, key, json_integer((json_int_t)v));
		return;
	}
	/* jansson's integers are signed 64-bit; no count of ours gets
	 * here, but a wrong number must never be printed. */
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	add(j, key, json_string(buf));
}

void
cs_json_i64(struct cs_json *j, const char *key, int64_t v)
{
	add(j, key, json_integer((json_int_t)v));
}

void
cs_json_bool(struct cs_json *j, const char *key, bool v)
{
	add(j, key, json_boolean(v));
}

void
cs_json_null(struct cs_json *j, const char *key)
{
	add(j, key, json_null());
}

void
cs_json_bytes(struct cs_json *j, const char *key, const uint8_t *p,
    size_t n)
{
	char *buf;

	if (n > (SIZE_MAX - 1) / 2 || (buf = malloc(2 * n + 1)) == NULL) {
		j->failed = true;
		return;
	}
	cs_hex_encode(p, n, buf, 2 * n + 1);
	add(j, key, json_stringn_nocheck(buf, 2 * n));
	free(buf);
}

void
cs_json_value(struct cs_json *j, const char *key, json_t *v)
{
	add(j, key, v);
}

int
cs_json_print_string(FILE *fp, const char *s, size_t len)
{
	json_t *v  = cs_json_string_lossy(s, len);
	int     rv = CS_ENOMEM;

	if (v != NULL) {
		rv = json_dumpf(v, fp, JSON_COMPACT | JSON_ENCODE_ANY) == 0 ?
		    CS_OK : CS_EIO;
		json_decref(v);
	}
	return rv;
}

int
cs_json_print_line(FILE *fp, const json_t *v)
{
	if (json_dumpf(v, fp, JSON_COMPACT | JSON_ENCODE_ANY) != 0 ||
	    fputc('\n', fp) == EOF) {
		return CS_EIO;
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* Reader                                                              */

/* Nesting of containers in v (a scalar is 0, {} or [] is 1, {"a":[]} is 2);
 * the walk stops once it is past limit. */
static unsigned
depth_of(json_t *v, unsigned limit)
{
	unsigned    deepest = 0, d;
	const char *key;
	json_t     *m;
	size_t      i;

	if (!json_is_object(v) && !json_is_array(v)) {
		return 0;
	}
	if (limit == 0) {
		return 1; /* already past */
	}
	if (json_is_object(v)) {
		json_object_foreach (v, key, m) {
			if ((d = depth_of(m, limit - 1)) > deepest) {
				deepest = d;
			}
		}
	} else {
		json_array_foreach (v, i, m) {
			if ((d = depth_of(m, limit - 1)) > deepest) {
				deepest = d;
			}
		}
	}
	return deepest + 1;
}

json_t *
cs_json_parse_object(const char *body, size_t len, unsigned max_depth,
    char *err, size_t errlen)
{
	json_error_t e;
	json_t      *v;

	/* No JSON_DECODE_ANY: the text must be an object or an array; no
	 * JSON_DISABLE_EOF_CHECK: nothing may follow it; no
	 * JSON_ALLOW_NUL: "\u0000" is refused. */
	v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (v == NULL) {
		snprintf(err, errlen, "malformed JSON: %s at line %d column %d",
		    e.text, e.line, e.column);
		return NULL;
	}
	if (!json_is_object(v)) {
		snprintf(err, errlen, "malformed JSON: the body must be a JSON "
		    "object");
		json_decref(v);
		return NULL;
	}
	if (depth_of(v, max_depth) > max_depth) {
		snprintf(err, errlen, "malformed JSON: nested deeper than %u "
		    "levels", max_depth);
		json_decref(v);
		return NULL;
	}
	return v;
}
