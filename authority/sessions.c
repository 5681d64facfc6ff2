/*
 * sessions.c - challenges and session tokens (sessions.h).
 *
 * Small fixed tables scanned linearly: a few thousand stations at most,
 * and a scan of 4096 hashes costs microseconds next to an HSM signature.
 * Tokens are looked up by their SHA-256: how long a comparison of hashes
 * takes tells an attacker nothing usable about any token (finding a token
 * from its hash prefix is a preimage problem), so a plain memcmp is safe
 * there.  Challenges, which are secrets compared directly, are compared
 * in constant time.
 *
 * One peer cannot crowd out the others: everything is bound to the
 * connection it was made on (cs_srv's connection id, never reused), a
 * connection holds at most SESSIONS_PER_CONN_CHALLENGES challenges and
 * one token, a new one replaces only its own, and what a closed connection
 * held is dropped (sessions_forget_conn).
 */
#include "sessions.h"

#include "cs_crypto.h"
#include "cs_err.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct challenge {
	bool     used;
	uint64_t conn;
	uint64_t expires_ms;
	uint64_t seq; /* issue order: ties in time are common */
	char     station[CS_AUTH_NAME_MAX + 1];
	uint8_t  value[CS_AUTH_CHALLENGE_LEN];
};

struct token {
	bool     used;
	uint64_t conn;
	uint64_t expires_ms;
	uint64_t seq; /* issue order */
	struct session_info info;
	uint8_t  hash[CS_SHA256_LEN]; /* SHA-256 of the token */
};

struct sessions {
	pthread_mutex_t  mtx;
	WC_RNG           rng;
	unsigned         ttl_s;
	uint64_t         seq;
	struct challenge ch[SESSIONS_MAX_CHALLENGES];
	struct token     tok[SESSIONS_MAX_TOKENS];
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool
name_ok(const char *s)
{
	size_t n;

	if (s == NULL) {
		return false;
	}
	n = strnlen(s, CS_AUTH_NAME_MAX + 1);
	return n > 0 && n <= CS_AUTH_NAME_MAX;
}

int
sessions_open(sessions **out, unsigned ttl_s)
{
	sessions *s;

	if (out == NULL || ttl_s == 0) {
		return CS_EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return CS_ENOMEM;
	}
	if (wc_InitRng(&s->rng) != 0) {
		free(s);
		return CS_ECRYPTO;
	}
	pthread_mutex_init(&s->mtx, NULL);
	s->ttl_s = ttl_s;
	*out     = s;
	return CS_OK;
}

void
sessions_close(sessions *s)
{
	if (s == NULL) {
		return;
	}
	wc_FreeRng(&s->rng);
	pthread_mutex_destroy(&s->mtx);
	cs_wipe(s, sizeof(*s));
	free(s);
}

/* Locked: random bytes. */
static int
random_bytes(sessions *s, uint8_t *buf, size_t len)
{
	return wc_RNG_GenerateBlock(&s->rng, buf, (word32)len) == 0
	    ? CS_OK
	    : CS_ECRYPTO;
}

/*
 * Locked: where a new challenge for conn goes.  The connection's oldest
 * when it already holds its share, else a free or expired slot; NULL when
 * every slot holds a live challenge of other connections.
 */
static struct challenge *
challenge_slot(sessions *s, uint64_t conn, uint64_t now)
{
	struct challenge *free_slot = NULL, *oldest = NULL;
	unsigned          mine      = 0;
	size_t            i;

	for (i = 0; i < SESSIONS_MAX_CHALLENGES; i++) {
		struct challenge *c = &s->ch[i];

		if (!c->used || c->expires_ms <= now) {
			if (free_slot == NULL) {
				free_slot = c;
			}
			continue;
		}
		if (c->conn == conn) {
			mine++;
			if (oldest == NULL || c->seq < oldest->seq) {
				oldest = c;
			}
		}
	}
	if (mine >= SESSIONS_PER_CONN_CHALLENGES) {
		return oldest;
	}
	return free_slot;
}

int
sessions_challenge(sessions *s, uint64_t conn, const char *station,
    uint8_t challenge[CS_AUTH_CHALLENGE_LEN])
{
	uint64_t          now = mono_ms();
	struct challenge *c   = NULL;
	int               rv;

	if (s == NULL || !name_ok(station) || challenge == NULL) {
		return CS_EINVAL;
	}
	pthread_mutex_lock(&s->mtx);
	c = challenge_slot(s, conn, now);
	if (c == NULL) {
		pthread_mutex_unlock(&s->mtx);
		return CS_EUNAVAIL;
	}
	if ((rv = random_bytes(s, c->value, sizeof(c->value))) == CS_OK) {
		c->used       = true;
		c->conn       = conn;
		c->expires_ms = now + SESSIONS_CHALLENGE_TTL_S * 1000u;
		c->seq        = ++s->seq;
		strcpy(c->station, station);
		memcpy(challenge, c->value, CS_AUTH_CHALLENGE_LEN);
	}
	pthread_mutex_unlock(&s->mtx);
	return rv;
}

int
sessions_take_challenge(sessions *s, uint64_t conn, const char *station,
    const uint8_t challenge[CS_AUTH_CHALLENGE_LEN])
{
	uint64_t now = mono_ms();
	size_t   i;
	int      rv = CS_EUNAUTH;

	if (s == NULL || !name_ok(station) || challenge == NULL) {
		return CS_EUNAUTH;
	}
	pthread_mutex_lock(&s->mtx);
	for (i = 0; i < SESSIONS_MAX_CHALLENGES; i++) {
		struct challenge *c = &s->ch[i];

		/* Only this connection's: another's cannot be burnt from
		 * here either. */
		if (!c->used || c->conn != conn ||
		    !cs_ct_equal(c->value, challenge, CS_AUTH_CHALLENGE_LEN)) {
			continue;
		}
		/* Found: good or not, it is never usable again. */
		if (c->expires_ms > now && strcmp(c->station, station) == 0) {
			rv = CS_OK;
		}
		memset(c, 0, sizeof(*c));
		break;
	}
	pthread_mutex_unlock(&s->mtx);
	return rv;
}

/*
 * Locked: where a new token for conn goes: the connection's own, else a
 * free or expired slot; NULL when every slot is another connection's live
 * token.
 */
static struct token *
token_slot(sessions *s, uint64_t conn, uint64_t now)
{
	struct token *free_slot = NULL;
	size_t        i;

	for (i = 0; i < SESSIONS_MAX_TOKENS; i++) {
		struct token *t = &s->tok[i];

		if (t->used && t->conn == conn) {
			return t;
		}
		if ((!t->used || t->expires_ms <= now) && free_slot == NULL) {
			free_slot = t;
		}
	}
	return free_slot;
}

int
sessions_issue(sessions *s, uint64_t conn, const char *station,
    const char *cm, uint8_t token[CS_AUTH_TOKEN_LEN], unsigned *ttl_s)
{
	uint64_t      now  = mono_ms();
	struct token *slot = NULL;
	int           rv;

	if (s == NULL || !name_ok(station) || cm == NULL ||
	    strlen(cm) > CS_AUTH_NAME_MAX || token == NULL) {
		return CS_EINVAL;
	}
	pthread_mutex_lock(&s->mtx);
	if ((slot = token_slot(s, conn, now)) == NULL) {
		pthread_mutex_unlock(&s->mtx);
		return CS_EUNAVAIL;
	}
	if ((rv = random_bytes(s, token, CS_AUTH_TOKEN_LEN)) == CS_OK &&
	    (rv = cs_sha256(token, CS_AUTH_TOKEN_LEN, slot->hash)) == CS_OK) {
		slot->used       = true;
		slot->conn       = conn;
		slot->seq        = ++s->seq;
		slot->expires_ms = now + (uint64_t)s->ttl_s * 1000u;
		strcpy(slot->info.station, station);
		strcpy(slot->info.cm, cm);
		if (ttl_s != NULL) {
			*ttl_s = s->ttl_s;
		}
	} else {
		memset(slot, 0, sizeof(*slot));
	}
	pthread_mutex_unlock(&s->mtx);
	return rv;
}

int
sessions_check(sessions *s, uint64_t conn, const uint8_t *token, size_t len,
    struct session_info *info)
{
	uint8_t h[CS_SHA256_LEN];
	uint64_t now = mono_ms();
	size_t   i;
	int      rv = CS_EUNAUTH;

	if (s == NULL || token == NULL || len != CS_AUTH_TOKEN_LEN ||
	    cs_sha256(token, len, h) != CS_OK) {
		return CS_EUNAUTH;
	}
	pthread_mutex_lock(&s->mtx);
	for (i = 0; i < SESSIONS_MAX_TOKENS; i++) {
		struct token *t = &s->tok[i];

		if (t->used && memcmp(t->hash, h, sizeof(h)) == 0) {
			if (t->expires_ms > now && t->conn == conn) {
				if (info != NULL) {
					*info = t->info;
				}
				rv = CS_OK;
			}
			break;
		}
	}
	pthread_mutex_unlock(&s->mtx);
	return rv;
}

unsigned
sessions_revoke(sessions *s, const char *station)
{
	unsigned n = 0;
	size_t   i;

	if (s == NULL || station == NULL) {
		return 0;
	}
	pthread_mutex_lock(&s->mtx);
	for (i = 0; i < SESSIONS_MAX_TOKENS; i++) {
		if (s->tok[i].used &&
		    strcmp(s->tok[i].info.station, station) == 0) {
			memset(&s->tok[i], 0, sizeof(s->tok[i]));
			n++;
		}
	}
	for (i = 0; i < SESSIONS_MAX_CHALLENGES; i++) {
		if (s->ch[i].used && strcmp(s->ch[i].station, station) == 0) {
			memset(&s->ch[i], 0, sizeof(s->ch[i]));
		}
	}
	pthread_mutex_unlock(&s->mtx);
	return n;
}

void
sessions_forget_conn(sessions *s, uint64_t conn)
{
	size_t i;

	if (s == NULL) {
		return;
	}
	pthread_mutex_lock(&s->mtx);
	for (i = 0; i < SESSIONS_MAX_TOKENS; i++) {
		if (s->tok[i].used && s->tok[i].conn == conn) {
			memset(&s->tok[i], 0, sizeof(s->tok[i]));
		}
	}
	for (i = 0; i < SESSIONS_MAX_CHALLENGES; i++) {
		if (s->ch[i].used && s->ch[i].conn == conn) {
			memset(&s->ch[i], 0, sizeof(s->ch[i]));
		}
	}
	pthread_mutex_unlock(&s->mtx);
}
