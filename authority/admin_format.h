/*
 * admin_format.h - the text formats of countersign-admin and the console
 * other than JSON (which goes through cs_json.h): RFC 4180 CSV fields,
 * UTC times, and the strict parsers for what the officer types (numbers,
 * dates).  They are kept apart from the command line so that the unit
 * test (tests/unit/admin_format_test.c) reaches every one of them
 * directly.
 *
 * Nothing here allocates or keeps state between calls.  Output goes to a
 * stdio stream; write errors are left to the caller's final
 * ferror()/fclose() check.
 */
#ifndef ADMIN_FORMAT_H
#define ADMIN_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* "2026-03-01T12:00:00.123Z" plus NUL. */
#define ADMIN_TIME_LEN 32

/* "2026-03-01" plus NUL (with room for the year going past 9999). */
#define ADMIN_DATE_LEN 16

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


#endif /* ADMIN_FORMAT_H */
