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
    "device.reported",
    /* A console token can cause these at will too (a viewer POSTing
     * changes, a script signing in per request). */
    "console.refused",
    "console.signin",
    /* A station may ask for images it is refused.  (firmware.fetch is
     * never collapsed: every fetch is recorded before a byte leaves, and
     * stations get a budget of fetches instead, firmware.c.) */
    "firmware.refused",
};
#define NCOLLAPSED (sizeof(collapsed) / sizeof(collapsed[0]))
_Static_assert(NCOLLAPSED <= AUDIT_LIMIT_TYPES, "AUDIT_LIMIT_TYPES");

struct group {
	bool     used;
	char     actor[AUDIT_LIMIT_ACTOR_MAX];
	char     reason[AUDIT_LIMIT_FIELD_MAX];
	unsigned type; /* index into collapsed[] */
	uint64_t since_s;
	uint64_t count;   /* not written one by one */
	unsigned written; /* written one by one in this interval */
};

/* Reasons that point at a copied or stolen device or a station reaching
 * beyond its CM: the first AUDIT_LIMIT_BURST of an interval are written
 * one by one (with their UIDs), not only the first. */
static const char *const telling[] = {
    "clone",
    "cm-not-allowed",
    "report-other-cm",
};

static unsigned
burst_of(const char *reason)
{
	for (size_t i = 0; i < sizeof(telling) / sizeof(telling[0]); i++) {
		if (strcmp(reason, telling[i]) == 0) {
			return AUDIT_LIMIT_BURST;
		}
	}
	return 1;
}

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

/* Count one event into g, which is not written one by one. */
static bool
count_in(audit_limit *l, struct group *g)
{
	g->count++;
	l->collapsed_total++;
	return false;
}

static void
open_group(struct group *g, unsigned type, const char *actor,
    const char *reason, uint64_t now_s)
{
	g->used = true;
	g->type = type;
	field(g->actor, sizeof(g->actor), actor);
	field(g->reason, sizeof(g->reason), reason);
	g->since_s = now_s;
	g->count   = 0;
	g->written = 1;
}

bool
audit_limit_admit(audit_limit *l, const char *actor, const char *type,
    const char *reason, uint64_t now_s)
{
	int           t = type_index(type);
	struct group *g, *free_slot = NULL, *star = NULL;
	unsigned      mine = 0; /* this actor's groups of its own reasons */
	bool          write;

	if (l == NULL || t < 0) {
		return true;
	}
	actor  = actor != NULL ? actor : "";
	reason = reason != NULL ? reason : "";
	pthread_mutex_lock(&l->mtx);
	for (unsigned i = 0; i < AUDIT_LIMIT_GROUPS; i++) {
		g = &l->groups[i];
		if (!g->used) {
			free_slot = free_slot != NULL ? free_slot : g;
			continue;
		}
		if (strncmp(g->actor, actor, sizeof(g->actor) - 1) != 0) {
			continue;
		}
		if (strcmp(g->reason, "*") == 0) {
			star = g->type == (unsigned)t ? g : star;
			continue;
		}
		mine++;
		if (same(g, (unsigned)t, actor, reason)) {
			if (now_s >= g->since_s + l->interval_s && g->count == 0) {
				/* A quiet group whose interval ended (and was not
				 * swept yet): this event opens a new one. */
				g->since_s = now_s;
				g->written = 1;
				write      = true;
			} else if (g->count == 0 &&
			    g->written < burst_of(reason)) {
				g->written++;
				write = true;
			} else {
				write = count_in(l, g);
			}
			pthread_mutex_unlock(&l->mtx);
			return write;
		}
	}
	if (mine >= AUDIT_LIMIT_PER_ACTOR) {
		/* This actor has its share: the rest of its events of this
		 * type are counted in one group of its own (reason "*"), so
		 * that it cannot crowd out anybody else's. */
		if (star == NULL && free_slot != NULL) {
			open_group(free_slot, (unsigned)t, actor, "*", now_s);
			star = free_slot;
		}
		g = star;
		write = false;
	} else if (free_slot != NULL) {
		open_group(free_slot, (unsigned)t, actor, reason, now_s);
		g     = NULL;
		write = true;
	} else {
		g     = NULL;
		write = false;
	}
	if (!write) {
		if (g == NULL) {
			g = &l->overflow[t];
			if (!g->used) {
				open_group(g, (unsigned)t, "*", "*", now_s);
			}
		}
		(void)count_in(l, g);
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
