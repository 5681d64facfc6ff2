/*
 * authority_service.h - the station-facing countersign.v1.Authority service.
 *
 * Handlers are plugged into protobuf-c's generated service struct; the RPC
 * layer (cs_rpc.h) finds and invokes them.  This file parses and checks
 * what came off the network and hands fixed-size, validated requests to
 * the sign pipeline (pipeline.h).
 */
#ifndef AUTHORITY_SERVICE_H
#define AUTHORITY_SERVICE_H

#include "countersign/v1/authority.pb-c.h"
#include "firmware.h"
#include "pipeline.h"
#include "sessions.h"
#include "store.h"

struct authority_service {
	Countersign__V1__Authority_Service base; /* must be first */
	const char *authority_id;
	store      *st;       /* NULL: only Ping is served */
	sessions   *sessions;
	pipeline   *pipeline;
	firmware   *fw;       /* NULL: GetFirmware refused */
};

/*
 * Fill svc for an authority named id (the string must outlive svc).  st,
 * ss and pl may be NULL (a Ping-only service, for tests of the transport).
 */
void authority_service_init(struct authority_service *svc, const char *id,
    store *st, sessions *ss, pipeline *pl);

/* Longest Ping payload echoed back. */
#define AUTHORITY_MAX_PING_PAYLOAD 1024u
/* Longest Report detail kept. */
#define AUTHORITY_MAX_DETAIL 255u

#endif /* AUTHORITY_SERVICE_H */
