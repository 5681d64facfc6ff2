/*
 * audit_limit_test.c - collapsing of repetitive audit events: the first
 * of a group is written, the rest counted into one summary per interval;
 * groups are capped and the overflow is summarised per type; nothing is
 * lost at shutdown.
 */
#include "audit_limit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void
test_first_written_rest_counted(void **state)
{
	audit_limit           *l = audit_limit_new(60);
	struct audit_limit_sum s[4];

	(void)state;
	assert_non_null(l);
	assert_true(audit_limit_admit(l, "station:a", "auth.refused",
	    "bad-signature", 1000));
	for (int i = 0; i < 99999; i++) {
		assert_false(audit_limit_admit(l, "station:a", "auth.refused",
		    "bad-signature", 1000 + (uint64_t)i / 2000));
	}
	/* Another reason, another actor: groups of their own. */
	assert_true(audit_limit_admit(l, "station:a", "auth.refused",
	    "unknown", 1010));
	assert_true(audit_limit_admit(l, "station:b", "auth.refused",
	    "bad-signature", 1010));
	/* Types that do not collapse are always written. */
	assert_true(audit_limit_admit(l, "station:a", "sign.issued", NULL,
	    1010));
	assert_true(audit_limit_admit(l, "station:a", "sign.issued", NULL,
	    1010));
	assert_int_equal(audit_limit_collapsed_total(l), 99999);

	/* Not due before the interval ended. */
	assert_int_equal(audit_limit_due(l, 1059, false, s, 4), 0);
	assert_int_equal(audit_limit_due(l, 1060, false, s, 4), 1);
	assert_string_equal(s[0].actor, "station:a");
	assert_string_equal(s[0].type, "auth.refused");
	assert_string_equal(s[0].reason, "bad-signature");
	assert_int_equal(s[0].count, 99999);
	assert_int_equal(s[0].since_s, 1000);
	/* The two quiet groups end without a summary. */
	assert_int_equal(audit_limit_due(l, 1070, false, s, 4), 0);
	/* A new interval: the next event is written again. */
	assert_true(audit_limit_admit(l, "station:a", "auth.refused",
	    "bad-signature", 1071));
	audit_limit_free(l);
}

static void
test_groups_capped(void **state)
{
	audit_limit           *l = audit_limit_new(60);
	struct audit_limit_sum s[AUDIT_LIMIT_GROUPS + AUDIT_LIMIT_TYPES];
	unsigned               written = 0, n, total = 0;
	char                   actor[32];

	(void)state;
	/* 10 000 distinct actors, twice each, of two types. */
	for (unsigned i = 0; i < 20000; i++) {
		snprintf(actor, sizeof(actor), "peer:%u", i % 10000);
		written += audit_limit_admit(l, actor,
		    i % 2 ? "sign.refused" : "station.authenticated", "r", 5);
	}
	assert_int_equal(written, AUDIT_LIMIT_GROUPS);
	n = audit_limit_due(l, 65, false, s, sizeof(s) / sizeof(s[0]));
	/* At most one summary per group plus one overflow per type. */
	assert_true(n <= AUDIT_LIMIT_GROUPS + AUDIT_LIMIT_TYPES);
	for (unsigned i = 0; i < n; i++) {
		total += (unsigned)s[i].count;
	}
	assert_int_equal(written + total, 20000);
	int overflow = 0;
	for (unsigned i = 0; i < n; i++) {
		overflow += strcmp(s[i].actor, "*") == 0;
	}
	assert_int_equal(overflow, 2);
	audit_limit_free(l);
}

/* One actor with many reasons cannot crowd out another. */
static void
test_one_actor_share(void **state)
{
	audit_limit           *l = audit_limit_new(60);
	struct audit_limit_sum s[64];
	unsigned               written = 0, n;
	uint64_t               total   = 0;
	char                   reason[32];

	(void)state;
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(reason, sizeof(reason), "r%u", i);
		written += audit_limit_admit(l, "station:mallory",
		    "sign.refused", reason, 1);
	}
	assert_int_equal(written, AUDIT_LIMIT_PER_ACTOR);
	assert_true(audit_limit_admit(l, "station:honest", "sign.refused",
	    "clone", 2));
	n = audit_limit_due(l, 100, false, s, 64);
	for (unsigned i = 0; i < n; i++) {
		assert_string_equal(s[i].actor, "station:mallory");
		assert_string_equal(s[i].reason, "*");
		total += s[i].count;
	}
	assert_int_equal(n, 1);
	assert_int_equal(written + total, 5000);
	audit_limit_free(l);
}

/* Clone attempts: the first few of an interval with their UIDs. */
static void
test_telling_reasons_burst(void **state)
{
	audit_limit           *l = audit_limit_new(60);
	struct audit_limit_sum s[2];
	unsigned               written = 0;

	(void)state;
	for (int i = 0; i < 100; i++) {
		written += audit_limit_admit(l, "station:a", "sign.refused",
		    "clone", 5);
	}
	assert_int_equal(written, AUDIT_LIMIT_BURST);
	assert_int_equal(audit_limit_due(l, 65, false, s, 2), 1);
	assert_int_equal(s[0].count, 100 - AUDIT_LIMIT_BURST);
	audit_limit_free(l);
}

static void
test_shutdown_takes_all(void **state)
{
	audit_limit           *l = audit_limit_new(60);
	struct audit_limit_sum s[2];

	(void)state;
	assert_true(audit_limit_admit(l, "station:a", "sign.reissued", NULL,
	    7));
	assert_false(audit_limit_admit(l, "station:a", "sign.reissued", NULL,
	    8));
	assert_int_equal(audit_limit_due(l, 9, false, s, 2), 0);
	assert_int_equal(audit_limit_due(l, 9, true, s, 2), 1);
	assert_int_equal(s[0].count, 1);
	assert_string_equal(s[0].reason, "");
	/* Output bounded by max: call again while it returns max. */
	for (int i = 0; i < 3; i++) {
		char actor[16];
		snprintf(actor, sizeof(actor), "a%d", i);
		audit_limit_admit(l, actor, "sign.refused", "x", 10);
		audit_limit_admit(l, actor, "sign.refused", "x", 10);
	}
	assert_int_equal(audit_limit_due(l, 10, true, s, 2), 2);
	assert_int_equal(audit_limit_due(l, 10, true, s, 2), 1);
	assert_int_equal(audit_limit_due(l, 10, true, s, 2), 0);
	audit_limit_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_written_rest_counted),
	    cmocka_unit_test(test_groups_capped),
	    cmocka_unit_test(test_one_actor_share),
	    cmocka_unit_test(test_telling_reasons_burst),
	    cmocka_unit_test(test_shutdown_takes_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
