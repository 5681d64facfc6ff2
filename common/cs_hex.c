/*
 * cs_hex.c - hex text for bytes (cs_hex.h).
 */
#include "cs_hex.h"

#include "cs_err.h"

int
cs_hex_digit(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

int
cs_hex_decode(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = 0;

	if (s == NULL || out == NULL || len == NULL) {
		return CS_EINVAL;
	}
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
	}
	for (;;) {
		int hi = cs_hex_digit(s[0]);
		int lo = hi < 0 ? -1 : cs_hex_digit(s[1]);

		if (lo < 0 || n == max) {
			return CS_EINVAL;
		}
		out[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (*s == '\0') {
			break;
		}
		/* A separator stands between two bytes: never first, last or
		 * doubled, which the next pair's digit check enforces. */
		if (*s == ':' || *s == '-') {
			s++;
		}
	}
	*len = n;
	return CS_OK;
}

void
cs_hex_encode(const uint8_t *b, size_t n, char *out, size_t outlen)
{
	static const char digits[] = "0123456789abcdef";
	size_t            i;

	if (outlen == 0) {
		return;
	}
	for (i = 0; i < n && 2 * i + 2 < outlen; i++) {
		out[2 * i]     = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * i] = '\0';
}
