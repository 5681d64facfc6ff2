/*
 * cs_auth.c - the message a station signs to authenticate (cs_auth.h).
 */
#include "cs_auth.h"
#include "cs_err.h"

#include <string.h>

int
cs_auth_message(const char *authority_id, const char *station,
    const uint8_t challenge[CS_AUTH_CHALLENGE_LEN], uint8_t *out,
    size_t out_size, size_t *len)
{
	size_t dl = sizeof(CS_AUTH_DOMAIN) - 1, al, sl, n = 0;

	if (authority_id == NULL || station == NULL || challenge == NULL ||
	    out == NULL || len == NULL) {
		return CS_EINVAL;
	}
	al = strnlen(authority_id, CS_AUTH_NAME_MAX + 1);
	sl = strnlen(station, CS_AUTH_NAME_MAX + 1);
	if (al == 0 || al > CS_AUTH_NAME_MAX || sl == 0 ||
	    sl > CS_AUTH_NAME_MAX) {
		return CS_EINVAL;
	}
	if (out_size < dl + 3 + al + sl + CS_AUTH_CHALLENGE_LEN) {
		return CS_EINVAL;
	}
	memcpy(out + n, CS_AUTH_DOMAIN, dl);
	n += dl;
	out[n++] = 0;
	memcpy(out + n, authority_id, al);
	n += al;
	out[n++] = 0;
	memcpy(out + n, station, sl);
	n += sl;
	out[n++] = 0;
	memcpy(out + n, challenge, CS_AUTH_CHALLENGE_LEN);
	n += CS_AUTH_CHALLENGE_LEN;
	*len = n;
	return CS_OK;
}
