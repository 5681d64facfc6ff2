/*
 * authority_service.c - handlers of countersign.v1.Authority.
 */
#include "authority_service.h"
#include "cs_err.h"
#include "cs_rpc.h"

#include <time.h>

static void
on_ping(Countersign__V1__Authority_Service *base,
    const Countersign__V1__PingRequest *in,
    Countersign__V1__PingResponse_Closure closure, void *data)
{
	struct authority_service     *svc = (struct authority_service *)base;
	Countersign__V1__PingResponse out =
	    COUNTERSIGN__V1__PING_RESPONSE__INIT;
	struct timespec               ts;

	if (in->payload.len > AUTHORITY_MAX_PING_PAYLOAD) {
		cs_rpc_req_fail(data, CS_EINVAL, "ping payload of %zu bytes "
		    "exceeds %u bytes", in->payload.len,
		    AUTHORITY_MAX_PING_PAYLOAD);
		closure(NULL, data);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	out.authority_id = (char *)svc->authority_id;
	out.version      = (char *)CS_VERSION;
	out.time_unix_ms =
	    (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	out.payload = in->payload;
	closure(&out, data);
}

void
authority_service_init(struct authority_service *svc, const char *id)
{
	countersign__v1__authority__init(&svc->base, NULL);
	svc->base.ping   = on_ping;
	svc->authority_id = id;
}
