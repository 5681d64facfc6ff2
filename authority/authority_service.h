/*
 * authority_service.h - the station-facing countersign.v1.Authority service.
 *
 * Handlers are plugged into protobuf-c's generated service struct; the RPC
 * layer (cs_rpc.h) finds and invokes them.  Methods not implemented yet
 * answer UNIMPLEMENTED through the RPC layer.
 */
#ifndef AUTHORITY_SERVICE_H
#define AUTHORITY_SERVICE_H

#include "countersign/v1/authority.pb-c.h"

struct authority_service {
	Countersign__V1__Authority_Service base; /* must be first */
	const char *authority_id;
};

/* Fill svc for an authority named id (the string must outlive svc). */
void authority_service_init(struct authority_service *svc, const char *id);

/* Longest Ping payload echoed back. */
#define AUTHORITY_MAX_PING_PAYLOAD 1024u

#endif /* AUTHORITY_SERVICE_H */
