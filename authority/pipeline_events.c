/*
 * pipeline_events.c - the audit events the pipeline writes for others
 * (pipeline.h): an event of an officer's change or a console sign-in, a
 * station's authentication, and the collapsing of the events peers cause
 * at will (audit_limit.h) with the summaries it owes when an interval
 * ends.  Kept apart from the sign path in pipeline.c: what goes into the
 * log and how often is one question, answered here.
 */
#include "pipeline_impl.h"

#include "audit_limit.h"
#include "cs_err.h"
#include "cs_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The value of key in kv, or NULL. */
static const char *
kv_get(const char *const *kv, const char *key)
{
	for (size_t i = 0; kv != NULL && kv[i] != NULL && kv[i + 1] != NULL;
	     i += 2) {
		if (strcmp(kv[i], key) == 0) {
			return kv[i + 1];
		}
	}
	return NULL;
}

/*
 * What an event is collapsed by, besides actor and type: its reason, and
 * its action when it names one (a console refusal of order.close is not
 * the same story as one of order.quota).
 */
static const char *
kv_group(const char *const *kv, char *buf, size_t len)
{
	const char *reason = kv_get(kv, "reason"), *action = kv_get(kv,
	    "action");

	if (action == NULL) {
		return reason;
	}
	snprintf(buf, len, "%s %s", reason != NULL ? reason : "", action);
	return buf;
}

int
pipeline_audit(pipeline *p, const char *actor, const char *type,
    const char *const *kv)
{
	struct job j;
	char       group[AUDIT_LIMIT_FIELD_MAX];

	if (p == NULL || actor == NULL || type == NULL) {
		return CS_EINVAL;
	}
	if (!audit_limit_admit(p->limit, actor, type, kv_group(kv, group,
	        sizeof(group)), pipeline_mono_s())) {
		return CS_OK; /* counted into the interval's summary event */
	}
	memset(&j, 0, sizeof(j));
	j.kind  = JOB_AUDIT;
	j.actor = actor;
	j.type  = type;
	j.kv    = kv;
	return pipeline_submit(p, &j);
}

int
pipeline_station_seen(pipeline *p, const char *station)
{
	struct job j;
	char       actor[STORE_AUDIT_ACTOR_MAX];

	if (p == NULL || station == NULL) {
		return CS_EINVAL;
	}
	memset(&j, 0, sizeof(j));
	j.kind    = JOB_SEEN;
	j.station = station;
	snprintf(actor, sizeof(actor), "station:%s", station);
	j.seen_audit = audit_limit_admit(p->limit, actor,
	    "station.authenticated", NULL, pipeline_mono_s());
	return pipeline_submit(p, &j);
}

/* Write the summaries due (all of them with all): one event each. */
void
pipeline_write_summaries(pipeline *p, bool all)
{
	struct audit_limit_sum sums[32];
	unsigned               n;

	do {
		uint64_t mono = pipeline_mono_s(), wall = pipeline_now_s();
		n = audit_limit_due(p->limit, mono, all, sums, 32);
		for (unsigned i = 0; i < n; i++) {
			char        count[24], since[24], interval[16];
			/* The group is "reason" or "reason action"
			 * (kv_group): written back as the two fields. */
			char       *reason = sums[i].reason;
			char       *action = strchr(reason, ' ');
			const char *kv[12], **k = kv;
			struct job  j;

			if (action != NULL) {
				*action++ = '\0';
			}
			if (reason[0] != '\0') {
				*k++ = "reason", *k++ = reason;
			}
			if (action != NULL) {
				*k++ = "action", *k++ = action;
			}
			*k++ = "collapsed", *k++ = count;
			*k++ = "since_unix_s", *k++ = since;
			*k++ = "interval_s", *k++ = interval;
			*k   = NULL;

			snprintf(count, sizeof(count), "%" PRIu64, sums[i].count);
			/* The interval began this long ago, on the wall. */
			snprintf(since, sizeof(since), "%" PRIu64,
			    wall - (mono - sums[i].since_s));
			snprintf(interval, sizeof(interval), "%u",
			    audit_limit_interval(p->limit));
			memset(&j, 0, sizeof(j));
			j.kind  = JOB_AUDIT;
			j.actor = sums[i].actor;
			j.type  = sums[i].type;
			j.kv    = kv;
			if (pipeline_submit(p, &j) != CS_OK) {
				cs_log_warn(LOG_MOD, "audit summary not written "
				    "type=%s actor=%s collapsed=%s (the store is "
				    "full or failing)", sums[i].type,
				    sums[i].actor, count);
			}
		}
	} while (n == 32);
}

int
pipeline_set_collapse(pipeline *p, unsigned interval_s)
{
	audit_limit *l;

	if (p == NULL || (l = audit_limit_new(interval_s)) == NULL) {
		return p == NULL ? CS_EINVAL : CS_ENOMEM;
	}
	audit_limit_free(p->limit);
	p->limit            = l;
	return CS_OK;
}

void
pipeline_tick(pipeline *p)
{
	if (p != NULL) {
		pipeline_write_summaries(p, false);
	}
}
