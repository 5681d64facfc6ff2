/*
 * sessions.h - station challenges and session tokens, in memory.
 *
 * Hello hands out a challenge (32 random bytes) that is good once, for one
 * station on one connection, for CHALLENGE_TTL_S seconds.  A successful
 * Authenticate turns it into a session token (32 random bytes) that later
 * requests on the same connection carry: a challenge or a token is worth
 * nothing on any other connection, so no peer can use, or crowd out,
 * another's.  A station may hold many connections (a gang line's parallel
 * `sign` processes), each with its own challenges and token.
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
/* The most connections a table is made for ([limits] max_connections
 * cannot be set higher). */
#define SESSIONS_MAX_CONNS       65536u
/* What one connection may hold at once: a new challenge replaces the
 * connection's oldest, a new token its previous one (gang programming
 * runs many requests on one token). */
#define SESSIONS_PER_CONN_CHALLENGES 4u
/* Longest order id a fetch names (STORE_ORDER_ID_MAX). */
#define SESSIONS_FETCH_ID_MAX 64u

typedef struct sessions sessions;

/* What a valid token stands for. */
struct session_info {
	char station[CS_AUTH_NAME_MAX + 1];
	char cm[CS_AUTH_NAME_MAX + 1];
};

/*
 * ttl_s: lifetime of tokens; max_conns: the most connections the station
 * port holds at once (each has room for its challenges and its token, so
 * none can be crowded out).  Errors: CS_ENOMEM, CS_EINVAL.
 */
int  sessions_open(sessions **out, unsigned ttl_s, unsigned max_conns);
void sessions_close(sessions *s);

/*
 * A fresh challenge for station on connection conn (replacing the
 * connection's oldest when it holds SESSIONS_PER_CONN_CHALLENGES; never
 * another connection's).  CS_EUNAVAIL only when more than max_conns
 * connections hold something (the server never lets that many in).
 * Errors also: CS_EINVAL, CS_ECRYPTO (no randomness).
 */
int sessions_challenge(sessions *s, uint64_t conn, const char *station,
    uint8_t challenge[CS_AUTH_CHALLENGE_LEN]);

/*
 * Consume the challenge given to station on conn: CS_OK once, when it was
 * issued to this station on this connection and has not expired;
 * CS_EUNAUTH otherwise (unknown, used, expired, another station's or
 * another connection's).
 */
int sessions_take_challenge(sessions *s, uint64_t conn, const char *station,
    const uint8_t challenge[CS_AUTH_CHALLENGE_LEN]);

/*
 * A new token for an authenticated station of CM cm on conn, replacing
 * the connection's previous one.  *ttl_s receives the lifetime.  Errors:
 * CS_EINVAL, CS_ECRYPTO, CS_EUNAVAIL (as for sessions_challenge; nothing
 * of another connection is ever evicted).
 */
int sessions_issue(sessions *s, uint64_t conn, const char *station,
    const char *cm,
    uint8_t token[CS_AUTH_TOKEN_LEN], unsigned *ttl_s);

/*
 * Look a token up: CS_OK and *info when it is live and was issued on
 * conn, CS_EUNAUTH when not (unknown, expired, revoked, wrong length,
 * another connection's).
 */
int sessions_check(sessions *s, uint64_t conn, const uint8_t *token,
    size_t len, struct session_info *info);

/* How many connections hold an entry (challenges or a token). */
size_t sessions_held(sessions *s);

/*
 * Held firmware fetches, one per connection (GetFirmware): connection
 * conn, which holds a live token, starts fetching version of order_id
 * (offset 0, audited by the caller); it replaces any fetch conn had
 * started.  Further chunks may then be asked for on this connection only,
 * each once, at increasing offsets (sessions_fetch_next records the
 * offset it allows).  A fetch ends with its connection or its token, and
 * lives in the connection's own entry, so no other peer can push it out.
 * sessions_fetch_begin: CS_OK, CS_EUNAUTH (no live token on conn),
 * CS_EINVAL.  sessions_fetch_next: CS_OK or CS_EPRECOND.
 */
int sessions_fetch_begin(sessions *s, uint64_t conn, const char *order_id,
    uint32_t version);
int sessions_fetch_next(sessions *s, uint64_t conn, const char *order_id,
    uint32_t version, uint64_t offset);

/* Connection conn has ended: its challenges and token go. */
void sessions_forget_conn(sessions *s, uint64_t conn);

/* Kill every token and challenge of station (disabled).  Returns how many
 * tokens died. */
unsigned sessions_revoke(sessions *s, const char *station);

#endif /* SESSIONS_H */
