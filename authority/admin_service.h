/*
 * admin_service.h - countersign.v1.Admin: the officer's API (orders,
 * quotas, stations, keys, devices, the audit log), served on the local
 * ipc socket to root and the authority's own user only.
 *
 * Every change commits in one write transaction with the audit event that
 * records it; every refusal of a change says what was wrong and what to do.
 */
#ifndef ADMIN_SERVICE_H
#define ADMIN_SERVICE_H

#include "countersign/v1/admin.pb-c.h"
#include "cs_hsm.h"
#include "firmware.h"
#include "pipeline.h"
#include "revocation.h"
#include "sessions.h"
#include "station_ca.h"
#include "store.h"

struct admin_service {
	Countersign__V1__Admin_Service base; /* must be first */
	store      *st;
	cs_hsm     *hsm;      /* NULL: keys and enrollment refused */
	station_ca *ca;       /* NULL: enrollment refused */
	sessions   *sessions;
	pipeline   *pipeline;
	revocation *rev;      /* NULL: no CRL follows station changes */
	firmware   *fw;       /* NULL: no target profiles, no held images */
	uint64_t    started_ms;
};

/* Replies of ListAudit stop growing past this many bytes (paging). */
#define ADMIN_AUDIT_REPLY_MAX (1024u * 1024u)
/* Largest admin request or reply. */
#define ADMIN_MAX_MSG (16u * 1024u * 1024u)

void admin_service_init(struct admin_service *svc, store *st, cs_hsm *hsm,
    station_ca *ca, sessions *ss, pipeline *pl);

#endif /* ADMIN_SERVICE_H */
