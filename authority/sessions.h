/*
 * sessions.h - station challenges and session tokens, in memory.
 *
 * Hello hands out a challenge (32 random bytes) that is good once, for one
 * station, for CHALLENGE_TTL_S seconds.  A successful Authenticate turns
 * it into a session token (32 random bytes) that later requests carry.
 * Tokens are kept only as their SHA-256 (looked up by hash), and
 * die at the TTL, when the station is disabled (sessions_revoke) or when
 * the authority restarts (a station then authenticates again).
 *
 * Thread-safe: one mutex; every operation is short.
 */
#ifndef SESSIONS_H
#define SESSIONS_H

#include "cs_auth.h"

#include <stddef.h>
#include <stdint.h>

#define SESSIONS_CHALLENGE_TTL_S 30u
#define SESSIONS_MAX_CHALLENGES  1024u
#define SESSIONS_MAX_TOKENS      4096u
/* What one station may hold at once (gang programming runs many requests
 * on one session; a station restarting makes a new one). */
#define SESSIONS_PER_STATION_CHALLENGES 4u
#define SESSIONS_PER_STATION_TOKENS     16u

typedef struct sessions sessions;

/* What a valid token stands for. */
struct session_info {
	char station[CS_AUTH_NAME_MAX + 1];
	char cm[CS_AUTH_NAME_MAX + 1];
};

/* ttl_s: lifetime of tokens.  Errors: CS_ENOMEM, CS_EINVAL. */
int  sessions_open(sessions **out, unsigned ttl_s);
void sessions_close(sessions *s);

/*
 * A fresh challenge for station (replacing the station's oldest when it
 * holds SESSIONS_PER_STATION_CHALLENGES).  When the table is full of live
 * challenges: CS_EUNAVAIL.  Errors also: CS_EINVAL, CS_ECRYPTO (no
 * randomness).
 */
int sessions_challenge(sessions *s, const char *station,
    uint8_t challenge[CS_AUTH_CHALLENGE_LEN]);

/*
 * Consume the challenge given to station: CS_OK once, when it was issued
 * to this station and has not expired; CS_EUNAUTH otherwise (unknown,
 * used, expired or issued to another station).
 */
int sessions_take_challenge(sessions *s, const char *station,
    const uint8_t challenge[CS_AUTH_CHALLENGE_LEN]);

/*
 * A new token for an authenticated station of CM cm.  *ttl_s receives
 * the lifetime.  A station holding SESSIONS_PER_STATION_TOKENS loses its
 * oldest; when the table is full the oldest token of all is dropped.
 * Errors: CS_EINVAL, CS_ECRYPTO.
 */
int sessions_issue(sessions *s, const char *station, const char *cm,
    uint8_t token[CS_AUTH_TOKEN_LEN], unsigned *ttl_s);

/*
 * Look a token up: CS_OK and *info when it is live, CS_EUNAUTH when not
 * (unknown, expired, revoked, wrong length).
 */
int sessions_check(sessions *s, const uint8_t *token, size_t len,
    struct session_info *info);

/* Kill every token and challenge of station (disabled).  Returns how many
 * tokens died. */
unsigned sessions_revoke(sessions *s, const char *station);

#endif /* SESSIONS_H */
