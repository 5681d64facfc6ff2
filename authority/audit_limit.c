/*
 * audit_limit.c - collapsing of repetitive audit events (audit_limit.h).
 *
 * A fixed table of groups, scanned linearly: it is small (256), an event
 * costs a few hundred short compares, and nothing here allocates after
 * audit_limit_new.
 */
#include "audit_limit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const collapsed[] = {
    "auth.refused",
    "sign.refused",
    "sign.reissued",
    "station.authenticated",
};
#define NCOLLAPSED (sizeof(collapsed) / sizeof(collapsed[0]))
_Static_assert(NCOLLAPSED <= AUDIT_LIMIT_TYPES, "AUDIT_LIMIT_TYPES");

struct group {
	bool     used;
	char     actor[AUDIT_LIMIT_ACTOR_MAX];
	char     reason[AUDIT_LIMIT_FIELD_MAX];
	unsigned type; /* index into collapsed[] */
	uint64_t since_s;
	uint64_t count; /* not written one by one */
};

struct audit_limit {
	pthread_mutex_t mtx;
	unsigned        interval_s;
	struct group    groups[AUDIT_LIMIT_GROUPS];
	struct group    overflow[NCOLLAPSED];
	uint64_t        collapsed_total;
};

static int
type_index(const char *type)
{
	for (unsigned i = 0; type != NULL && i < NCOLLAPSED; i++) {
		if (strcmp(type, collapsed[i]) == 0) {
			return (int)i;
		}
	}
	return -1;
}

bool
audit_limit_collapses(const char *type)
{
	return type_index(type) >= 0;
}

audit_limit *
audit_limit_new(unsigned interval_s)
{
	audit_limit *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		return NULL;
	}
	if (pthread_mutex_init(&l->mtx, NULL) != 0) {
		free(l);
		return NULL;
	}
	l->interval_s = interval_s != 0 ? interval_s : AUDIT_LIMIT_INTERVAL_S;
	return l;
}

void
audit_limit_free(audit_limit *l)
{
	if (l != NULL) {
		pthread_mutex_destroy(&l->mtx);
		free(l);
	}
}

/* Copy s into a field of len bytes, cut (grouping only needs a prefix). */
static void
field(char *dst, size_t len, const char *s)
{
	snprintf(dst, len, "%s", s != NULL ? s : "");
}

static bool
same(const struct group *g, unsigned type, const char *actor,
    const char *reason)
{
	return g->used && g->type == type &&
	    strncmp(g->actor, actor, sizeof(g->actor) - 1) == 0 &&
	    strncmp(g->reason, reason, sizeof(g->reason) - 1) == 0;
}

bool
audit_limit_admit(audit_limit *l, const char *actor, const char *type,
    const char *reason, uint64_t now_s)
{
	int           t = type_index(type);
	struct group *g, *free_slot = NULL;
	bool          write;

	if (l == NULL || t < 0) {
		return true;
	}
	actor  = actor != NULL ? actor : "";
	reason = reason != NULL ? reason : "";
	pthread_mutex_lock(&l->mtx);
	for (unsigned i = 0; i < AUDIT_LIMIT_GROUPS; i++) {
		g = &l->groups[i];
		if (same(g, (unsigned)t, actor, reason)) {
			if (now_s >= g->since_s + l->interval_s && g->count == 0) {
				/* A quiet group whose interval ended (and was not
				 * swept yet): this event opens a new one. */
				g->since_s = now_s;
				write      = true;
			} else {
				g->count++;
				l->collapsed_total++;
				write = false;
			}
			pthread_mutex_unlock(&l->mtx);
			return write;
		}
		if (!g->used && free_slot == NULL) {
			free_slot = g;
		}
	}
	if (free_slot != NULL) {
		free_slot->used = true;
		free_slot->type = (unsigned)t;
		field(free_slot->actor, sizeof(free_slot->actor), actor);
		field(free_slot->reason, sizeof(free_slot->reason), reason);
		free_slot->since_s = now_s;
		free_slot->count   = 0;
		write              = true;
	} else {
		g = &l->overflow[t];
		if (!g->used) {
			g->used = true;
			g->type = (unsigned)t;
			field(g->actor, sizeof(g->actor), "*");
			field(g->reason, sizeof(g->reason), "*");
			g->since_s = now_s;
		}
		g->count++;
		l->collapsed_total++;
		write = false;
	}
	pthread_mutex_unlock(&l->mtx);
	return write;
}

/* Move g into out if its interval ended (or all); forget it. */
static bool
take(const audit_limit *l, struct group *g, uint64_t now_s, bool all,
    struct audit_limit_sum *out)
{
	if (!g->used || (!all && now_s < g->since_s + l->interval_s)) {
		return false;
	}
	bool due = g->count > 0;
	if (due) {
		field(out->actor, sizeof(out->actor), g->actor);
		field(out->type, sizeof(out->type), collapsed[g->type]);
		field(out->reason, sizeof(out->reason), g->reason);
		out->count   = g->count;
		out->since_s = g->since_s;
	}
	memset(g, 0, sizeof(*g));
	return due;
}

unsigned
audit_limit_due(audit_limit *l, uint64_t now_s, bool all,
    struct audit_limit_sum *out, unsigned max)
{
	unsigned n = 0;

	if (l == NULL) {
		return 0;
	}
	pthread_mutex_lock(&l->mtx);
	for (unsigned i = 0; i < AUDIT_LIMIT_GROUPS && n < max; i++) {
		n += take(l, &l->groups[i], now_s, all, &out[n]);
	}
	for (unsigned i = 0; i < NCOLLAPSED && n < max; i++) {
		n += take(l, &l->overflow[i], now_s, all, &out[n]);
	}
	pthread_mutex_unlock(&l->mtx);
	return n;
}

uint64_t
audit_limit_collapsed_total(audit_limit *l)
{
	uint64_t n;

	if (l == NULL) {
		return 0;
	}
	pthread_mutex_lock(&l->mtx);
	n = l->collapsed_total;
	pthread_mutex_unlock(&l->mtx);
	return n;
}

unsigned
audit_limit_interval(const audit_limit *l)
{
	return l != NULL ? l->interval_s : 0;
}
