/*
 * cs_auth.h - the station's proof of possession of its key (DESIGN.md
 * "Identity and authentication"): what exactly a station signs to answer
 * the authority's challenge.
 *
 * Hello returns a fresh 32-byte challenge; the station signs
 *
 *   "countersign/auth/v1" 0x00 authority_id 0x00 station_name 0x00 challenge
 *
 * with its P-256 key (ECDSA over SHA-256, signature as raw r||s, 64 bytes)
 * and sends it in Authenticate.  The authority checks it against the
 * public key it registered when it enrolled the station, and answers with
 * a 32-byte random session token.  Binding the authority's id and the
 * station's name keeps an answer from being replayed to another authority
 * or for another station.
 */
#ifndef CS_AUTH_H
#define CS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define CS_AUTH_DOMAIN        "countersign/auth/v1"
#define CS_AUTH_CHALLENGE_LEN 32u
#define CS_AUTH_TOKEN_LEN     32u
#define CS_AUTH_NAME_MAX      64u /* authority id and station name */
/* Longest message: domain, three NULs, two names and the challenge. */
#define CS_AUTH_MSG_MAX                                                       \
	(sizeof(CS_AUTH_DOMAIN) - 1 + 3 + 2 * CS_AUTH_NAME_MAX +               \
	    CS_AUTH_CHALLENGE_LEN)

/*
 * Build the signed message into out (at least CS_AUTH_MSG_MAX bytes).
 * Errors: CS_EINVAL (NULL, empty or over-long names, a name with a NUL).
 */
int cs_auth_message(const char *authority_id, const char *station,
    const uint8_t challenge[CS_AUTH_CHALLENGE_LEN], uint8_t *out,
    size_t out_size, size_t *len);

#endif /* CS_AUTH_H */
