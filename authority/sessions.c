/*
 * sessions.c - challenges and session tokens (sessions.h).
 *
 * One table entry per connection, found by the connection id: a token is
 * only ever valid on the connection it was issued on, so a lookup never
 * needs to search the others.  Tokens are kept as their SHA-256 and,
 * like challenges, compared in constant time.
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
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct challenge {
	bool     used;
	uint64_t expires_ms;
	uint64_t seq; /* issue order: ties in time are common */
	char     station[CS_AUTH_NAME_MAX + 1];
	uint8_t  value[CS_AUTH_CHALLENGE_LEN];
};

struct token {
	bool     used;
	uint64_t expires_ms;
	struct session_info info;
	uint8_t  hash[CS_SHA256_LEN]; /* SHA-256 of the token */
};

/* What one connection holds; conn 0 marks a free slot (cs_srv's
 * connection ids start at 1 and are never reused). */
struct fetch {
	bool     started;
	uint32_t version;
	uint64_t last; /* offset last allowed */
	char     order_id[SESSIONS_FETCH_ID_MAX + 1];
};

struct entry {
	uint64_t         conn;
	struct challenge ch[SESSIONS_PER_CONN_CHALLENGES];
	struct token     tok;
	struct fetch     fetch;
};

/*
 * An open-addressing table keyed by connection id, at most half full:
 * room for one entry per connection the server may hold at once, so a
 * connection always finds its own place and no peer can fill the table
 * for the others.
 */
struct sessions {
	pthread_mutex_t mtx;
	WC_RNG          rng;
	unsigned        ttl_s;
	uint64_t        seq;
	size_t          mask;  /* slots - 1, slots a power of two */
	size_t          count; /* entries in use */
	size_t          limit; /* max_conns */
	struct entry   *e;
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
sessions_open(sessions **out, unsigned ttl_s, unsigned max_conns)
{
	sessions *s;
	size_t    slots = 16;

	if (out == NULL || ttl_s == 0 || max_conns == 0 ||
	    max_conns > SESSIONS_MAX_CONNS) {
		return CS_EINVAL;
	}
	while (slots < 2u * (size_t)max_conns) {
		slots *= 2;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return CS_ENOMEM;
	}
	if ((s->e = calloc(slots, sizeof(*s->e))) == NULL) {
		free(s);
		return CS_ENOMEM;
	}
	if (wc_InitRng(&s->rng) != 0) {
		free(s->e);
		free(s);
		return CS_ECRYPTO;
	}
	pthread_mutex_init(&s->mtx, NULL);
	s->ttl_s = ttl_s;
	s->mask  = slots - 1;
	s->limit = max_conns;
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
	cs_wipe(s->e, (s->mask + 1) * sizeof(*s->e));
	free(s->e);
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

/* Home slot of conn (ids are sequential: mix them). */
static size_t
home(const sessions *s, uint64_t conn)
{
	return (size_t)((conn * 0x9e3779b97f4a7c15u) >> 17) & s->mask;
}

/* Locked: conn's entry, or NULL. */
static struct entry *
find(sessions *s, uint64_t conn)
{
	if (conn == 0) {
		return NULL; /* 0 marks free slots */
	}
	for (size_t i = home(s, conn);; i = (i + 1) & s->mask) {
		if (s->e[i].conn == conn) {
			return &s->e[i];
		}
		if (s->e[i].conn == 0) {
			return NULL;
		}
	}
}

/* Locked: remove e, moving later entries of its probe run back so that
 * every lookup still finds them (no tombstones). */
static void
remove_entry(sessions *s, struct entry *e)
{
	size_t hole = (size_t)(e - s->e), i = hole;

	for (;;) {
		i = (i + 1) & s->mask;
		if (s->e[i].conn == 0) {
			break;
		}
		size_t h = home(s, s->e[i].conn);
		/* Move i into the hole unless its home lies cyclically in
		 * (hole, i]. */
		if ((i > hole && (h <= hole || h > i)) ||
		    (i < hole && h <= hole && h > i)) {
			s->e[hole] = s->e[i];
			hole       = i;
		}
	}
	cs_wipe(&s->e[hole], sizeof(s->e[hole]));
	s->count--;
}

/* Whether e still holds a challenge or a token that could be used. */
static bool
entry_live(const struct entry *e, uint64_t now)
{
	if (e->tok.used && e->tok.expires_ms > now) {
		return true;
	}
	for (size_t k = 0; k < SESSIONS_PER_CONN_CHALLENGES; k++) {
		if (e->ch[k].used && e->ch[k].expires_ms > now) {
			return true;
		}
	}
	return false;
}

/*
 * Locked: drop the entries that hold nothing usable any more.  The table
 * is emptied by sessions_forget_conn when a connection ends; this is the
 * second line, for an entry whose forget never came: it cannot keep a
 * place longer than what it holds lives.
 */
static void
sweep_dead(sessions *s, uint64_t now)
{
	for (size_t i = 0; i <= s->mask;) {
		if (s->e[i].conn != 0 && !entry_live(&s->e[i], now)) {
			remove_entry(s, &s->e[i]); /* i again: a later one
			                              may have moved here */
			continue;
		}
		i++;
	}
}

/* Locked: conn's entry, made when it has none; NULL only when more
 * connections than max_conns hold one (the server never allows that). */
static struct entry *
find_or_add(sessions *s, uint64_t conn, uint64_t now)
{
	size_t i;

	for (i = home(s, conn); s->e[i].conn != 0; i = (i + 1) & s->mask) {
		if (s->e[i].conn == conn) {
			return &s->e[i];
		}
	}
	if (s->count >= s->limit) {
		sweep_dead(s, now);
		if (s->count >= s->limit) {
			return NULL;
		}
		for (i = home(s, conn); s->e[i].conn != 0;
		     i = (i + 1) & s->mask) {
		}
	}
	s->count++;
	memset(&s->e[i], 0, sizeof(s->e[i]));
	s->e[i].conn = conn;
	return &s->e[i];
}

/*
 * Locked: where a new challenge of e goes: a free or expired one, else
 * the oldest (a connection's own share is all it can replace).
 */
static struct challenge *
challenge_slot(struct entry *e, uint64_t now)
{
	struct challenge *oldest = &e->ch[0];

	for (size_t i = 0; i < SESSIONS_PER_CONN_CHALLENGES; i++) {
		struct challenge *c = &e->ch[i];

		if (!c->used || c->expires_ms <= now) {
			return c;
		}
		if (c->seq < oldest->seq) {
			oldest = c;
		}
	}
	return oldest;
}

int
sessions_challenge(sessions *s, uint64_t conn, const char *station,
    uint8_t challenge[CS_AUTH_CHALLENGE_LEN])
{
	uint64_t          now = mono_ms();
	struct entry     *e;
	struct challenge *c;
	int               rv;

	if (s == NULL || conn == 0 || !name_ok(station) || challenge == NULL) {
		return CS_EINVAL;
	}
	pthread_mutex_lock(&s->mtx);
	if ((e = find_or_add(s, conn, now)) == NULL) {
		pthread_mutex_unlock(&s->mtx);
		return CS_EUNAVAIL;
	}
	c = challenge_slot(e, now);
	if ((rv = random_bytes(s, c->value, sizeof(c->value))) == CS_OK) {
		c->used       = true;
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
	uint64_t      now = mono_ms();
	struct entry *e;
	int           rv = CS_EUNAUTH;

	if (s == NULL || !name_ok(station) || challenge == NULL) {
		return CS_EUNAUTH;
	}
	pthread_mutex_lock(&s->mtx);
	/* Only this connection's: another's cannot be burnt from here
	 * either. */
	e = find(s, conn);
	for (size_t i = 0; e != NULL && i < SESSIONS_PER_CONN_CHALLENGES;
	    i++) {
		struct challenge *c = &e->ch[i];

		if (!c->used ||
		    !cs_ct_equal(c->value, challenge, CS_AUTH_CHALLENGE_LEN)) {
			continue;
		}
		/* Found: good or not, it is never usable again. */
		if (c->expires_ms > now && strcmp(c->station, station) == 0) {
			rv = CS_OK;
		}
		cs_wipe(c, sizeof(*c));
		break;
	}
	pthread_mutex_unlock(&s->mtx);
	return rv;
}

int
sessions_issue(sessions *s, uint64_t conn, const char *station,
    const char *cm, uint8_t token[CS_AUTH_TOKEN_LEN], unsigned *ttl_s)
{
	uint64_t      now = mono_ms();
	struct entry *e;
	struct token *t;
	int           rv;

	if (s == NULL || conn == 0 || !name_ok(station) || cm == NULL ||
	    strlen(cm) > CS_AUTH_NAME_MAX || token == NULL) {
		return CS_EINVAL;
	}
	pthread_mutex_lock(&s->mtx);
	if ((e = find_or_add(s, conn, now)) == NULL) {
		pthread_mutex_unlock(&s->mtx);
		return CS_EUNAVAIL;
	}
	t = &e->tok; /* the connection's previous token, if any, goes */
	if ((rv = random_bytes(s, token, CS_AUTH_TOKEN_LEN)) == CS_OK &&
	    (rv = cs_sha256(token, CS_AUTH_TOKEN_LEN, t->hash)) == CS_OK) {
		t->used       = true;
		t->expires_ms = now + (uint64_t)s->ttl_s * 1000u;
		strcpy(t->info.station, station);
		strcpy(t->info.cm, cm);
		if (ttl_s != NULL) {
			*ttl_s = s->ttl_s;
		}
	} else {
		cs_wipe(t, sizeof(*t));
	}
	pthread_mutex_unlock(&s->mtx);
	return rv;
}

int
sessions_check(sessions *s, uint64_t conn, const uint8_t *token, size_t len,
    struct session_info *info)
{
	uint8_t       h[CS_SHA256_LEN];
	uint64_t      now = mono_ms();
	struct entry *e;
	int           rv = CS_EUNAUTH;

	if (s == NULL || token == NULL || len != CS_AUTH_TOKEN_LEN ||
	    cs_sha256(token, len, h) != CS_OK) {
		return CS_EUNAUTH;
	}
	pthread_mutex_lock(&s->mtx);
	e = find(s, conn);
	if (e != NULL && e->tok.used && e->tok.expires_ms > now &&
	    cs_ct_equal(e->tok.hash, h, sizeof(h))) {
		if (info != NULL) {
			*info = e->tok.info;
		}
		rv = CS_OK;
	}
	pthread_mutex_unlock(&s->mtx);
	return rv;
}

unsigned
sessions_revoke(sessions *s, const char *station)
{
	unsigned n = 0;

	if (s == NULL || station == NULL) {
		return 0;
	}
	pthread_mutex_lock(&s->mtx);
	for (size_t i = 0; i <= s->mask; i++) {
		struct entry *e = &s->e[i];

		if (e->conn == 0) {
			continue;
		}
		if (e->tok.used && strcmp(e->tok.info.station, station) == 0) {
			cs_wipe(&e->tok, sizeof(e->tok));
			cs_wipe(&e->fetch, sizeof(e->fetch));
			n++;
		}
		for (size_t k = 0; k < SESSIONS_PER_CONN_CHALLENGES; k++) {
			if (e->ch[k].used &&
			    strcmp(e->ch[k].station, station) == 0) {
				cs_wipe(&e->ch[k], sizeof(e->ch[k]));
			}
		}
	}
	pthread_mutex_unlock(&s->mtx);
	return n;
}

void
sessions_forget_conn(sessions *s, uint64_t conn)
{
	struct entry *e;

	if (s == NULL) {
		return;
	}
	pthread_mutex_lock(&s->mtx);
	if ((e = find(s, conn)) != NULL) {
		remove_entry(s, e);
	}
	pthread_mutex_unlock(&s->mtx);
}

size_t
sessions_held(sessions *s)
{
	size_t n;

	if (s == NULL) {
		return 0;
	}
	pthread_mutex_lock(&s->mtx);
	n = s->count;
	pthread_mutex_unlock(&s->mtx);
	return n;
}

int
sessions_fetch_begin(sessions *s, uint64_t conn, const char *order_id,
    uint32_t version)
{
	uint64_t      now = mono_ms();
	struct entry *e;
	int           rv = CS_EUNAUTH;

	if (s == NULL || order_id == NULL ||
	    strnlen(order_id, SESSIONS_FETCH_ID_MAX + 1) >
	        SESSIONS_FETCH_ID_MAX) {
		return CS_EINVAL;
	}
	pthread_mutex_lock(&s->mtx);
	e = find(s, conn);
	if (e != NULL && e->tok.used && e->tok.expires_ms > now) {
		e->fetch.started = true;
		e->fetch.version = version;
		e->fetch.last    = 0;
		snprintf(e->fetch.order_id, sizeof(e->fetch.order_id), "%s",
		    order_id);
		rv = CS_OK;
	}
	pthread_mutex_unlock(&s->mtx);
	return rv;
}

int
sessions_fetch_next(sessions *s, uint64_t conn, const char *order_id,
    uint32_t version, uint64_t offset)
{
	uint64_t      now = mono_ms();
	struct entry *e;
	int           rv = CS_EPRECOND;

	if (s == NULL || order_id == NULL) {
		return CS_EPRECOND;
	}
	pthread_mutex_lock(&s->mtx);
	e = find(s, conn);
	if (e != NULL && e->tok.used && e->tok.expires_ms > now &&
	    e->fetch.started && e->fetch.version == version &&
	    offset > e->fetch.last &&
	    strcmp(e->fetch.order_id, order_id) == 0) {
		e->fetch.last = offset;
		rv            = CS_OK;
	}
	pthread_mutex_unlock(&s->mtx);
	return rv;
}
