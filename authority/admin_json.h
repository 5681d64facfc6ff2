/*
 * admin_json.h - the text formats of countersign-admin: a small JSON
 * writer with a strict string escaper, RFC 4180 CSV fields, UTC times,
 * and the strict parsers for what the officer types (numbers, dates,
 * UIDs).  They are kept apart from the command line so that the unit test
 * (tests/unit/admin_json_test.c) reaches every one of them directly.
 *
 * Nothing here allocates, and nothing keeps state between calls except
 * the writer struct the caller owns.  Output goes to a stdio stream; write
 * errors are left to the caller's final ferror()/fclose() check.
 */
#ifndef ADMIN_JSON_H
#define ADMIN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Deepest nesting the writer tracks; the admin outputs use three. */
#define ADMIN_JSON_DEPTH 8

/* "2026-03-01T12:00:00.123Z" plus NUL. */
#define ADMIN_TIME_LEN 32

/* "2026-03-01" plus NUL (with room for the year going past 9999). */
#define ADMIN_DATE_LEN 16

/*
 * Write s[0..len) as a quoted JSON string.  '"' and '\\' are escaped,
 * control characters (< 0x20) become \u00XX (\n, \r, \t included: one
 * rule is easier to check), bytes >= 0x80 pass through only as part of a
 * well-formed UTF-8 sequence (no overlong forms, no surrogates, nothing
 * above U+10FFFF); every other byte becomes \uFFFD.  The result is valid
 * JSON whatever the input, which matters because audit fields carry text
 * that stations sent.
 */
void admin_json_string(FILE *fp, const char *s, size_t len);

/* Write p[0..n) as a quoted lowercase hex string ("" when n is 0). */
void admin_json_hex(FILE *fp, const uint8_t *p, size_t n);

/*
 * A JSON writer that places the commas and colons, so that the callers
 * only say what goes where.  Keys are passed as NULL inside arrays and
 * for the outermost value.  Nesting deeper than ADMIN_JSON_DEPTH is a
 * programming error and aborts.
 */
struct admin_json {
	FILE    *fp;
	unsigned depth;
	bool     first[ADMIN_JSON_DEPTH]; /* no member written yet */
};

void admin_json_init(struct admin_json *j, FILE *fp);
void admin_json_open(struct admin_json *j, const char *key);  /* { */
void admin_json_close(struct admin_json *j);                  /* } */
void admin_json_array(struct admin_json *j, const char *key); /* [ */
void admin_json_end(struct admin_json *j);                    /* ] */
void admin_json_str(struct admin_json *j, const char *key, const char *s);
void admin_json_u64(struct admin_json *j, const char *key, uint64_t v);
void admin_json_i64(struct admin_json *j, const char *key, int64_t v);
void admin_json_bool(struct admin_json *j, const char *key, bool v);
void admin_json_bytes(struct admin_json *j, const char *key,
    const uint8_t *p, size_t n);

/*
 * Write s[0..len) as one CSV field (RFC 4180): quoted when it contains a
 * comma, a double quote, CR or LF, with inner quotes doubled; as is
 * otherwise.
 */
void admin_csv_field(FILE *fp, const char *s, size_t len);

/*
 * One audit field into the fields cell of a CSV export, which joins them
 * as key=value;key=value: `\`, `;` and `=` inside a key or value are
 * written as `\\`, `\;` and `\=`, so that a value (a station's report
 * detail, say) cannot forge another field.  first: no `;` before it.
 */
void admin_csv_kv(FILE *fp, const char *key, const char *value, bool first);

/* Format milliseconds since the epoch as ISO-8601 UTC with milliseconds. */
void admin_time_iso(uint64_t unix_ms, char out[ADMIN_TIME_LEN]);

/* Format the UTC day that contains unix_s as YYYY-MM-DD. */
void admin_date(uint64_t unix_s, char out[ADMIN_DATE_LEN]);

/*
 * Parse a decimal number lo <= n <= hi: digits only (no sign, no spaces,
 * no trailing text, no base prefix).  Returns CS_OK or CS_EINVAL.
 */
int admin_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/*
 * Parse a signed quota change "+N" or "-N", 1 <= N <= max: the sign is
 * required so that "order quota X 500" cannot be mistaken for setting the
 * quota to 500.  Returns CS_OK or CS_EINVAL.
 */
int admin_parse_delta(const char *s, uint64_t max, int64_t *out);

/*
 * Parse an order's last valid day, YYYY-MM-DD (UTC).  *expires becomes
 * 00:00 UTC of the following day, the first second the order is no longer
 * valid.  Errors (err says which): CS_EINVAL for anything but an existing
 * calendar date between 1970 and 9999, CS_EPRECOND when that day has
 * already ended at now.
 */
int admin_parse_date(const char *s, time_t now, uint64_t *expires,
    char *err, size_t errlen);


#endif /* ADMIN_JSON_H */
