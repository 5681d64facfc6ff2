/*
 * audit_limit.h - collapsing of repetitive audit events.
 *
 * Refusals, authentications and re-issues are caused by peers, as often
 * as they like; written one by one they would fill the store.  Events of
 * such a type are grouped by (actor, type, reason): the first one of a
 * group is written when it happens and opens an interval; the ones that
 * follow within the interval are only counted, and when it ends one
 * summary event carries their count.  A group thus writes at most two
 * events per interval; groups of the reasons that point at a copied
 * device or a station reaching beyond its CM (clone, cm-not-allowed,
 * report-other-cm) write their first AUDIT_LIMIT_BURST one by one.  One actor has at most AUDIT_LIMIT_PER_ACTOR
 * groups of its own reasons; beyond them its events of a type are
 * counted in one group of it with reason "*" (summaries only), so one
 * actor cannot crowd out the others.  Groups are capped in all
 * (AUDIT_LIMIT_GROUPS): events of new groups beyond the cap fall into one
 * overflow group per type (actor "*"), counted and summarised the same
 * way.  Per interval the collapsed types write at most
 * (AUDIT_LIMIT_BURST + 1) * AUDIT_LIMIT_GROUPS + AUDIT_LIMIT_TYPES events
 * in all, and one actor at most (AUDIT_LIMIT_BURST + 1) *
 * AUDIT_LIMIT_PER_ACTOR + AUDIT_LIMIT_TYPES.  Intervals
 * run on the caller's clock: give a monotonic one.
 *
 * Thread-safe: one mutex; every operation is short.
 */
#ifndef AUDIT_LIMIT_H
#define AUDIT_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define AUDIT_LIMIT_INTERVAL_S 60u
#define AUDIT_LIMIT_GROUPS     1024u
#define AUDIT_LIMIT_PER_ACTOR  16u  /* groups of one actor's own reasons */
#define AUDIT_LIMIT_BURST      8u   /* written one by one: clone & co. */
#define AUDIT_LIMIT_TYPES      12u  /* distinct collapsed types */
#define AUDIT_LIMIT_ACTOR_MAX  128u /* longer actors are cut for grouping */
#define AUDIT_LIMIT_FIELD_MAX  64u  /* type and reason */

typedef struct audit_limit audit_limit;

/* A summary due: count events of (actor, type, reason) were not written
 * one by one in the interval that began at since_s. */
struct audit_limit_sum {
	char     actor[AUDIT_LIMIT_ACTOR_MAX];
	char     type[AUDIT_LIMIT_FIELD_MAX];
	char     reason[AUDIT_LIMIT_FIELD_MAX];
	uint64_t count;
	uint64_t since_s;
};

/* interval_s 0 takes AUDIT_LIMIT_INTERVAL_S.  NULL without memory. */
audit_limit *audit_limit_new(unsigned interval_s);
void         audit_limit_free(audit_limit *l);

/* Whether type is one of the collapsed types. */
bool audit_limit_collapses(const char *type);

/*
 * One event of (actor, type, reason) at now_s: true when it is to be
 * written now, false when it was counted into a summary.  reason may be
 * NULL.  Types that do not collapse are always written.
 */
bool audit_limit_admit(audit_limit *l, const char *actor, const char *type,
    const char *reason, uint64_t now_s);

/*
 * Take the summaries due at now_s (every pending one with all set, at
 * shutdown) into out, at most max; returns how many.  Groups whose
 * interval ended are forgotten.  Call again while it returns max.
 */
unsigned audit_limit_due(audit_limit *l, uint64_t now_s, bool all,
    struct audit_limit_sum *out, unsigned max);

/* The interval, s. */
unsigned audit_limit_interval(const audit_limit *l);

/* Events counted and not written one by one, since the start. */
uint64_t audit_limit_collapsed_total(audit_limit *l);

#endif
