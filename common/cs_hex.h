/*
 * cs_hex.h - hex text for bytes: UIDs typed by people, and the hex every
 * log line, audit field and listing prints.
 */
#ifndef CS_HEX_H
#define CS_HEX_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse s: pairs of hex digits (either case), an optional "0x" prefix,
 * optionally one ':' or '-' between two bytes (as tools print UIDs), at
 * least one and at most max bytes, nothing else.  CS_OK with *len, or
 * CS_EINVAL.
 */
int cs_hex_decode(const char *s, uint8_t *out, size_t max, size_t *len);

/* The value of one hex digit (either case), or -1. */
int cs_hex_digit(int c);

/* Lowercase hex of n bytes into out (NUL-terminated; cut to fit outlen,
 * which must be at least 1). */
void cs_hex_encode(const uint8_t *b, size_t n, char *out, size_t outlen);

#endif /* CS_HEX_H */
