/*
 * cs_json.h - every JSON the project reads or writes goes through jansson
 * (Debian's libjansson), and this is the one place that says how.
 *
 * Why jansson rather than cJSON: integers are 64-bit (cJSON stores every
 * number as a double, so a serial or a time in ms past 2^53 would change),
 * duplicate member names can be refused (JSON_REJECT_DUPLICATES), text
 * after the value is refused, "\u0000" is refused unless asked for, and
 * objects keep their members in insertion order, so output is stable.
 *
 * Two halves:
 *
 *  - a writer (struct cs_json) that builds a jansson value as the caller
 *    says what goes where and prints it, compact and on one line (no
 *    newline: the caller ends the line), when the outermost object or
 *    array is closed.  Strings that are not valid
 *    UTF-8 (station text, say) have each bad byte replaced by U+FFFD, so
 *    the output is valid JSON whatever the input;
 *  - a strict reader for untrusted bodies (cs_json_parse_object): one
 *    object, nesting bounded, no duplicate names, no NUL in strings.
 *
 * Callers that need more of jansson include this header and use jansson's
 * own API (json_object_get, json_string_value, ...); reference counting
 * is jansson's: a value returned "new" is the caller's to json_decref().
 *
 * Thread-safety: a struct cs_json belongs to one thread; the functions
 * keep no other state.
 */
#ifndef CS_JSON_H
#define CS_JSON_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Deepest nesting the writer builds; the project's outputs use four. */
#define CS_JSON_DEPTH 8

/*
 * The writer.  Keys are NULL for the outermost value and inside arrays,
 * a member name inside objects.  Nesting deeper than CS_JSON_DEPTH, a
 * close without an open, or a key where none belongs is a programming
 * error and aborts (the output shapes are fixed, never input).  Out of
 * memory: the value is dropped, nothing is printed, cs_json_failed() is
 * true.
 */
struct cs_json {
	FILE    *fp;
	unsigned depth;
	json_t  *stack[CS_JSON_DEPTH];
	bool     failed;
};

void cs_json_init(struct cs_json *j, FILE *fp);
void cs_json_open(struct cs_json *j, const char *key);  /* { */
void cs_json_close(struct cs_json *j);                  /* }, printed at 0 */
void cs_json_array(struct cs_json *j, const char *key); /* [ */
void cs_json_end(struct cs_json *j);                    /* ], printed at 0 */
void cs_json_str(struct cs_json *j, const char *key, const char *s);
void cs_json_strn(struct cs_json *j, const char *key, const char *s,
    size_t len);
void cs_json_u64(struct cs_json *j, const char *key, uint64_t v);
void cs_json_i64(struct cs_json *j, const char *key, int64_t v);
void cs_json_bool(struct cs_json *j, const char *key, bool v);
void cs_json_null(struct cs_json *j, const char *key);
/* p[0..n) as a lowercase hex string ("" when n is 0). */
void cs_json_bytes(struct cs_json *j, const char *key, const uint8_t *p,
    size_t n);
/* Add a value made with jansson's API; takes the caller's reference. */
void cs_json_value(struct cs_json *j, const char *key, json_t *v);
bool cs_json_failed(const struct cs_json *j);

/*
 * A new JSON string of s[0..len) with every byte that is not part of
 * well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code
 * points past U+10FFFF) replaced by U+FFFD, one per bad byte.  NUL bytes
 * are kept (jansson escapes them as \u0000).  NULL only when out of
 * memory.
 */
json_t *cs_json_string_lossy(const char *s, size_t len);

/*
 * Print s[0..len) as one quoted JSON string (cs_json_string_lossy's
 * rules).  Returns CS_OK, CS_ENOMEM or CS_EIO.
 */
int cs_json_print_string(FILE *fp, const char *s, size_t len);

/*
 * Print v compact on one line, followed by '\n', to fp.  Returns CS_OK,
 * or CS_EIO when writing failed.
 */
int cs_json_print_line(FILE *fp, const json_t *v);

/*
 * Parse body[0..len) as exactly one JSON object, with nothing but white
 * space after it, no member name twice at any level, no "\u0000" in any
 * string and no containers nested deeper than max_depth (the object itself
 * is depth 1, an array in it depth 2).  Returns a new reference, or NULL with err saying what was
 * wrong and where ("malformed JSON: ... at line L column C").
 */
json_t *cs_json_parse_object(const char *body, size_t len,
    unsigned max_depth, char *err, size_t errlen);

#endif /* CS_JSON_H */
