/*
 * admin_format.c - the text formats other than JSON (CSV, times) and the
 * strict parsers for what the officer types (see admin_format.h).  JSON
 * is written through cs_json.h.
 */
#include "admin_format.h"
#include "cs_err.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* CSV and times                                                       */

void
admin_csv_field(FILE *fp, const char *s, size_t len)
{
	bool quote = false;

	for (size_t i = 0; i < len && !quote; i++) {
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' ||
		    s[i] == '\n';
	}
	if (!quote) {
		fwrite(s, 1, len, fp);
		return;
	}
	fputc('"', fp);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"') {
			fputc('"', fp);
		}
		fputc(s[i], fp);
	}
	fputc('"', fp);
}

static void
csv_kv_part(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == ';' || *s == '=') {
			fputc('\\', fp);
		}
		fputc(*s, fp);
	}
}

void
admin_csv_kv(FILE *fp, const char *key, const char *value, bool first)
{
	if (!first) {
		fputc(';', fp);
	}
	csv_kv_part(fp, key);
	fputc('=', fp);
	csv_kv_part(fp, value);
}

void
admin_time_iso(uint64_t unix_ms, char out[ADMIN_TIME_LEN])
{
	time_t    t = (time_t)(unix_ms / 1000u);
	struct tm tm;
	size_t    n;

	/* strftime rather than snprintf of the fields: it reports a year
	 * too wide for the buffer instead of truncating silently. */
	if (gmtime_r(&t, &tm) == NULL ||
	    (n = strftime(out, ADMIN_TIME_LEN - 5, "%Y-%m-%dT%H:%M:%S",
	    &tm)) == 0) {
		snprintf(out, ADMIN_TIME_LEN, "?");
		return;
	}
	snprintf(out + n, ADMIN_TIME_LEN - n, ".%03uZ",
	    (unsigned)(unix_ms % 1000u));
}

void
admin_date(uint64_t unix_s, char out[ADMIN_DATE_LEN])
{
	time_t    t = (time_t)unix_s;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, ADMIN_DATE_LEN, "%Y-%m-%d", &tm) == 0) {
		snprintf(out, ADMIN_DATE_LEN, "?");
	}
}

/* ------------------------------------------------------------------ */
/* Parsers                                                             */

int
admin_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;

	/* By hand rather than strtoull, which accepts "-1", " 1" and "+1"
	 * and would wrap the first into a huge quota. */
	if (s == NULL || *s == '\0') {
		return CS_EINVAL;
	}
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9') {
			return CS_EINVAL;
		}
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10u) {
			return CS_EINVAL;
		}
		v = v * 10u + d;
	}
	if (v < lo || v > hi) {
		return CS_EINVAL;
	}
	*out = v;
	return CS_OK;
}

int
admin_parse_delta(const char *s, uint64_t max, int64_t *out)
{
	uint64_t v;

	if (s == NULL || (s[0] != '+' && s[0] != '-') || max > INT64_MAX ||
	    admin_parse_u64(s + 1, 1, max, &v) != CS_OK) {
		return CS_EINVAL;
	}
	*out = s[0] == '-' ? -(int64_t)v : (int64_t)v;
	return CS_OK;
}

static bool
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Read n decimal digits at s; -1 when any is not a digit. */
static int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
admin_parse_date(const char *s, time_t now, uint64_t *expires, char *err,
    size_t errlen)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31};
	struct tm tm;
	int       y, m, d;

	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    (y = digits(s, 4)) < 0 || (m = digits(s + 5, 2)) < 0 ||
	    (d = digits(s + 8, 2)) < 0) {
		snprintf(err, errlen, "\"%s\" is not a date: write YYYY-MM-DD",
		    s != NULL ? s : "");
		return CS_EINVAL;
	}
	if (y < 1970 || m < 1 || m > 12 || d < 1 ||
	    d > mdays[m - 1] + (m == 2 && leap(y))) {
		snprintf(err, errlen, "%s is not a calendar date", s);
		return CS_EINVAL;
	}
	/* timegm normalises day d + 1 into the next month or year. */
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon  = m - 1;
	tm.tm_mday = d + 1;
	time_t t   = timegm(&tm);
	if (t == (time_t)-1) {
		snprintf(err, errlen, "%s is out of range", s);
		return CS_EINVAL;
	}
	if (t <= now) {
		snprintf(err, errlen, "%s is in the past (UTC): an order "
		    "expiring then could never be used", s);
		return CS_EPRECOND;
	}
	*expires = (uint64_t)t;
	return CS_OK;
}

