/*
 * sessions_test.c - challenges and session tokens (authority/sessions.h):
 * single use, bound to one station, expiry, revocation, and the
 * per-station caps that keep one station from crowding out the others.
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
	assert_int_equal(sessions_open(&s, 60), CS_OK);
	assert_int_equal(sessions_challenge(s, "st1", a), CS_OK);
	assert_int_equal(sessions_challenge(s, "st1", b), CS_OK);
	assert_memory_not_equal(a, b, sizeof(a));
	/* Issued to st1: st2 cannot use it, and trying burns it. */
	assert_int_equal(sessions_take_challenge(s, "st2", a), CS_EUNAUTH);
	assert_int_equal(sessions_take_challenge(s, "st1", a), CS_EUNAUTH);
	/* Good once. */
	assert_int_equal(sessions_take_challenge(s, "st1", b), CS_OK);
	assert_int_equal(sessions_take_challenge(s, "st1", b), CS_EUNAUTH);
	/* Never issued. */
	memset(a, 0, sizeof(a));
	assert_int_equal(sessions_take_challenge(s, "st1", a), CS_EUNAUTH);
	assert_int_equal(sessions_challenge(s, "", a), CS_EINVAL);
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
	assert_int_equal(sessions_open(&s, 3), CS_OK);
	assert_int_equal(sessions_issue(s, "st1", "acme", t1, &ttl), CS_OK);
	assert_int_equal(ttl, 3);
	assert_int_equal(sessions_issue(s, "st2", "beta", t2, NULL), CS_OK);
	assert_int_equal(sessions_check(s, t1, sizeof(t1), &info), CS_OK);
	assert_string_equal(info.station, "st1");
	assert_string_equal(info.cm, "acme");
	/* Wrong length, one bit off. */
	assert_int_equal(sessions_check(s, t1, 31, &info), CS_EUNAUTH);
	t1[5] ^= 1;
	assert_int_equal(sessions_check(s, t1, sizeof(t1), &info), CS_EUNAUTH);
	t1[5] ^= 1;
	/* Revoking st1 leaves st2 alone. */
	assert_int_equal(sessions_revoke(s, "st1"), 1);
	assert_int_equal(sessions_check(s, t1, sizeof(t1), &info), CS_EUNAUTH);
	assert_int_equal(sessions_check(s, t2, sizeof(t2), &info), CS_OK);
	/* Expiry. */
	sleep(4); /* past the 3 s TTL, with room for a slow machine */
	assert_int_equal(sessions_check(s, t2, sizeof(t2), &info), CS_EUNAUTH);
	sessions_close(s);
}

/* One station making tokens without end keeps only its share. */
static void
test_per_station_caps(void **state)
{
	sessions           *s;
	struct session_info info;
	uint8_t             other[CS_AUTH_TOKEN_LEN];
	uint8_t             mine[SESSIONS_PER_STATION_TOKENS + 1]
	                        [CS_AUTH_TOKEN_LEN];
	uint8_t             ch[SESSIONS_PER_STATION_CHALLENGES + 1]
	                      [CS_AUTH_CHALLENGE_LEN];
	uint8_t             och[CS_AUTH_CHALLENGE_LEN];
	unsigned            i, live = 0;

	(void)state;
	assert_int_equal(sessions_open(&s, 60), CS_OK);
	assert_int_equal(sessions_issue(s, "good", "acme", other, NULL), CS_OK);
	for (i = 0; i < 5000; i++) {
		assert_int_equal(sessions_issue(s, "noisy", "acme",
		    mine[i % (SESSIONS_PER_STATION_TOKENS + 1)], NULL), CS_OK);
	}
	assert_int_equal(sessions_check(s, other, sizeof(other), &info),
	    CS_OK);
	for (i = 0; i <= SESSIONS_PER_STATION_TOKENS; i++) {
		live += sessions_check(s, mine[i], CS_AUTH_TOKEN_LEN, &info) ==
		    CS_OK;
	}
	assert_int_equal(live, SESSIONS_PER_STATION_TOKENS);

	assert_int_equal(sessions_challenge(s, "good", och), CS_OK);
	for (i = 0; i < 3000; i++) {
		assert_int_equal(sessions_challenge(s, "noisy",
		    ch[i % (SESSIONS_PER_STATION_CHALLENGES + 1)]), CS_OK);
	}
	assert_int_equal(sessions_take_challenge(s, "good", och), CS_OK);
	sessions_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_challenge_once_and_bound),
	    cmocka_unit_test(test_token_lifecycle),
	    cmocka_unit_test(test_per_station_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
