/*
 * sessions_test.c - challenges and session tokens (authority/sessions.h):
 * single use, bound to one station and one connection, expiry,
 * revocation, and the per-connection caps that keep one peer from
 * crowding out the others.
 */
#include "cs_err.h"
#include "sessions.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void
test_challenge_once_and_bound(void **state)
{
	sessions *s;
	uint8_t   a[CS_AUTH_CHALLENGE_LEN], b[CS_AUTH_CHALLENGE_LEN];

	(void)state;
	assert_int_equal(sessions_open(&s, 60, 64), CS_OK);
	assert_int_equal(sessions_challenge(s, 1, "st1", a), CS_OK);
	assert_int_equal(sessions_challenge(s, 1, "st1", b), CS_OK);
	assert_memory_not_equal(a, b, sizeof(a));
	/* Issued to st1 on connection 1: st2 cannot use it, and trying
	 * burns it. */
	assert_int_equal(sessions_take_challenge(s, 1, "st2", a), CS_EUNAUTH);
	assert_int_equal(sessions_take_challenge(s, 1, "st1", a), CS_EUNAUTH);
	/* Another connection can neither use nor burn it. */
	assert_int_equal(sessions_take_challenge(s, 2, "st1", b), CS_EUNAUTH);
	/* Good once, on its own connection. */
	assert_int_equal(sessions_take_challenge(s, 1, "st1", b), CS_OK);
	assert_int_equal(sessions_take_challenge(s, 1, "st1", b), CS_EUNAUTH);
	/* Never issued. */
	memset(a, 0, sizeof(a));
	assert_int_equal(sessions_take_challenge(s, 1, "st1", a), CS_EUNAUTH);
	assert_int_equal(sessions_challenge(s, 1, "", a), CS_EINVAL);
	sessions_close(s);
}

static void
test_token_lifecycle(void **state)
{
	sessions           *s;
	struct session_info info;
	uint8_t             t1[CS_AUTH_TOKEN_LEN], t2[CS_AUTH_TOKEN_LEN];
	unsigned            ttl = 0;

	(void)state;
	assert_int_equal(sessions_open(&s, 3, 64), CS_OK);
	assert_int_equal(sessions_issue(s, 1, "st1", "acme", t1, &ttl), CS_OK);
	assert_int_equal(ttl, 3);
	assert_int_equal(sessions_issue(s, 2, "st2", "beta", t2, NULL), CS_OK);
	assert_int_equal(sessions_check(s, 1, t1, sizeof(t1), &info), CS_OK);
	assert_string_equal(info.station, "st1");
	assert_string_equal(info.cm, "acme");
	/* Only on the connection that authenticated. */
	assert_int_equal(sessions_check(s, 2, t1, sizeof(t1), &info),
	    CS_EUNAUTH);
	/* Wrong length, one bit off. */
	assert_int_equal(sessions_check(s, 1, t1, 31, &info), CS_EUNAUTH);
	t1[5] ^= 1;
	assert_int_equal(sessions_check(s, 1, t1, sizeof(t1), &info),
	    CS_EUNAUTH);
	t1[5] ^= 1;
	/* Revoking st1 leaves st2 alone. */
	assert_int_equal(sessions_revoke(s, "st1"), 1);
	assert_int_equal(sessions_check(s, 1, t1, sizeof(t1), &info),
	    CS_EUNAUTH);
	assert_int_equal(sessions_check(s, 2, t2, sizeof(t2), &info), CS_OK);
	/* A closed connection's token goes with it. */
	sessions_forget_conn(s, 2);
	assert_int_equal(sessions_check(s, 2, t2, sizeof(t2), &info),
	    CS_EUNAUTH);
	/* Expiry. */
	assert_int_equal(sessions_issue(s, 3, "st2", "beta", t2, NULL), CS_OK);
	sleep(4); /* past the 3 s TTL, with room for a slow machine */
	assert_int_equal(sessions_check(s, 3, t2, sizeof(t2), &info),
	    CS_EUNAUTH);
	sessions_close(s);
}

/*
 * One connection asking without end keeps only its own share and never
 * evicts another's -- not even one of the same station (a gang line's
 * parallel processes), nor one it names itself.
 */
static void
test_per_conn_caps(void **state)
{
	sessions           *s;
	struct session_info info;
	uint8_t             other[CS_AUTH_TOKEN_LEN], mine[CS_AUTH_TOKEN_LEN];
	uint8_t             prev[CS_AUTH_TOKEN_LEN];
	uint8_t             och[CS_AUTH_CHALLENGE_LEN];
	uint8_t             ch[SESSIONS_PER_CONN_CHALLENGES + 1]
	                      [CS_AUTH_CHALLENGE_LEN];
	unsigned            i, live = 0;

	(void)state;
	assert_int_equal(sessions_open(&s, 60, 64), CS_OK);
	assert_int_equal(sessions_issue(s, 1, "good", "acme", other, NULL),
	    CS_OK);
	for (i = 0; i < 5000; i++) {
		memcpy(prev, mine, sizeof(prev));
		assert_int_equal(sessions_issue(s, 2, "good", "acme", mine,
		    NULL), CS_OK);
	}
	/* Connection 2 holds one token, its newest; connection 1's lives. */
	assert_int_equal(sessions_check(s, 1, other, sizeof(other), &info),
	    CS_OK);
	assert_int_equal(sessions_check(s, 2, mine, sizeof(mine), &info),
	    CS_OK);
	assert_int_equal(sessions_check(s, 2, prev, sizeof(prev), &info),
	    CS_EUNAUTH);

	/* A Hello flood in the victim's name on another connection. */
	assert_int_equal(sessions_challenge(s, 1, "good", och), CS_OK);
	for (i = 0; i < 30000; i++) {
		assert_int_equal(sessions_challenge(s, 2 + i % 3, "good",
		    ch[i % (SESSIONS_PER_CONN_CHALLENGES + 1)]), CS_OK);
	}
	assert_int_equal(sessions_take_challenge(s, 1, "good", och), CS_OK);
	for (i = 0; i <= SESSIONS_PER_CONN_CHALLENGES; i++) {
		live += sessions_take_challenge(s, 4, "good", ch[i]) == CS_OK;
	}
	assert_true(live <= SESSIONS_PER_CONN_CHALLENGES);
	sessions_close(s);
}

/*
 * As many connections as the port admits, each with its full share: all
 * of them are served, churn (connections ending in any order, the table
 * reorganising itself) loses nobody, and one more is refused rather than
 * served at another's cost.
 */
static void
test_table_full_and_churn(void **state)
{
	enum { N = 300 };
	sessions *s;
	uint8_t   tok[N + 1][CS_AUTH_TOKEN_LEN];
	uint8_t   ch[CS_AUTH_CHALLENGE_LEN];
	uint64_t  next = 1000;
	uint64_t  conn[N + 1];

	(void)state;
	assert_int_equal(sessions_open(&s, 60, N), CS_OK);
	for (unsigned i = 1; i <= N; i++) {
		conn[i] = next++;
		for (unsigned k = 0; k < SESSIONS_PER_CONN_CHALLENGES; k++) {
			assert_int_equal(sessions_challenge(s, conn[i], "st",
			    ch), CS_OK);
		}
		assert_int_equal(sessions_issue(s, conn[i], "st", "acme",
		    tok[i], NULL), CS_OK);
	}
	/* One more connection than the port admits: refused, nobody's
	 * share taken. */
	assert_int_equal(sessions_challenge(s, next, "st", ch), CS_EUNAVAIL);
	assert_int_equal(sessions_issue(s, next, "st", "acme", tok[0], NULL),
	    CS_EUNAVAIL);
	/* Churn: end every third connection in a scattered order, give the
	 * slots to new ones, and check every live token each round. */
	for (unsigned round = 0; round < 20; round++) {
		for (unsigned i = 1 + round % 3; i <= N; i += 3) {
			sessions_forget_conn(s, conn[i]);
			conn[i] = next++;
			assert_int_equal(sessions_issue(s, conn[i], "st", "acme",
			    tok[i], NULL), CS_OK);
		}
		for (unsigned i = 1; i <= N; i++) {
			assert_int_equal(sessions_check(s, conn[i], tok[i],
			    CS_AUTH_TOKEN_LEN, NULL), CS_OK);
			/* A token never works on another connection. */
			assert_int_equal(sessions_check(s, conn[i % N + 1],
			    tok[i], CS_AUTH_TOKEN_LEN, NULL), CS_EUNAUTH);
		}
	}
	/* Ended connections' tokens are gone; forgetting twice is
	 * harmless; connection id 0 is never anyone's. */
	sessions_forget_conn(s, conn[1]);
	sessions_forget_conn(s, conn[1]);
	sessions_forget_conn(s, 0);
	assert_int_equal(sessions_check(s, conn[1], tok[1], CS_AUTH_TOKEN_LEN,
	    NULL), CS_EUNAUTH);
	assert_int_equal(sessions_check(s, 0, tok[2], CS_AUTH_TOKEN_LEN,
	    NULL), CS_EUNAUTH);
	assert_int_equal(sessions_challenge(s, next, "st", ch), CS_OK);
	assert_int_equal(sessions_revoke(s, "st"), N - 1);
	sessions_close(s);
}

/*
 * Entries whose forget never came (a connection id no longer in use)
 * hold their place only as long as what they hold lives: with the table
 * full of expired tokens, a new connection gets a place.
 */
static void
test_dead_entries_swept(void **state)
{
	sessions *s;
	uint8_t   tok[CS_AUTH_TOKEN_LEN], ch[CS_AUTH_CHALLENGE_LEN];

	(void)state;
	assert_int_equal(sessions_open(&s, 1, 8), CS_OK);
	for (uint64_t c = 1; c <= 8; c++) {
		assert_int_equal(sessions_issue(s, c, "st", "acme", tok, NULL),
		    CS_OK);
	}
	assert_int_equal(sessions_challenge(s, 9, "st", ch), CS_EUNAVAIL);
	usleep(1100 * 1000); /* the tokens expire (ttl 1 s) */
	assert_int_equal(sessions_challenge(s, 9, "st", ch), CS_OK);
	assert_int_equal(sessions_held(s), 1);
	assert_int_equal(sessions_take_challenge(s, 9, "st", ch), CS_OK);
	sessions_close(s);
}

/* A fetch lives in its connection's entry: chunks in order, each once,
 * only for the order and version it started, gone with the token. */
static void
test_fetches(void **state)
{
	sessions *s;
	uint8_t   tok[CS_AUTH_TOKEN_LEN];
	unsigned  ttl;

	(void)state;
	assert_int_equal(sessions_open(&s, 60, 8), CS_OK);
	/* No token on the connection: no fetch. */
	assert_int_equal(sessions_fetch_begin(s, 7, "PO-1", 1), CS_EUNAUTH);
	assert_int_equal(sessions_fetch_next(s, 7, "PO-1", 1, 32768),
	    CS_EPRECOND);
	assert_int_equal(sessions_issue(s, 7, "st1", "acme", tok, &ttl),
	    CS_OK);
	assert_int_equal(sessions_fetch_next(s, 7, "PO-1", 1, 32768),
	    CS_EPRECOND);
	assert_int_equal(sessions_fetch_begin(s, 7, "PO-1", 1), CS_OK);
	assert_int_equal(sessions_fetch_next(s, 7, "PO-1", 1, 32768), CS_OK);
	/* Each chunk once, in order. */
	assert_int_equal(sessions_fetch_next(s, 7, "PO-1", 1, 32768),
	    CS_EPRECOND);
	assert_int_equal(sessions_fetch_next(s, 7, "PO-1", 1, 0),
	    CS_EPRECOND);
	assert_int_equal(sessions_fetch_next(s, 7, "PO-1", 1, 98304), CS_OK);
	/* Another order, version or connection: not this fetch. */
	assert_int_equal(sessions_fetch_next(s, 7, "PO-2", 1, 131072),
	    CS_EPRECOND);
	assert_int_equal(sessions_fetch_next(s, 7, "PO-1", 2, 131072),
	    CS_EPRECOND);
	assert_int_equal(sessions_fetch_next(s, 8, "PO-1", 1, 131072),
	    CS_EPRECOND);
	/* A new start replaces it. */
	assert_int_equal(sessions_fetch_begin(s, 7, "PO-2", 3), CS_OK);
	assert_int_equal(sessions_fetch_next(s, 7, "PO-1", 1, 131072),
	    CS_EPRECOND);
	assert_int_equal(sessions_fetch_next(s, 7, "PO-2", 3, 32768), CS_OK);
	/* Revoked: the fetch ends with the token. */
	assert_int_equal(sessions_revoke(s, "st1"), 1);
	assert_int_equal(sessions_fetch_next(s, 7, "PO-2", 3, 65536),
	    CS_EPRECOND);
	sessions_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_challenge_once_and_bound),
	    cmocka_unit_test(test_token_lifecycle),
	    cmocka_unit_test(test_per_conn_caps),
	    cmocka_unit_test(test_table_full_and_churn),
	    cmocka_unit_test(test_dead_entries_swept),
	    cmocka_unit_test(test_fetches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
