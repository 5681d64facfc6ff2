/*
 * cs_rpc_impl.h - the helpers the RPC server (cs_rpc.c) and client
 * (cs_rpc_client.c) share.  Only those two files include it; cs_rpc.h is
 * the module's interface.
 */
#ifndef CS_RPC_IMPL_H
#define CS_RPC_IMPL_H

#include "cs_rpc.h"

#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t rpc_now_ms(void);

/* CS_OK for the transports Countersign traffic may use (tls+tcp, ipc),
 * else CS_EADDR (CS_EINVAL for NULL). */
int rpc_check_url(const char *url);

bool rpc_is_tls_url(const char *url);

/* Index of method name in the descriptor, by binary search over the
 * generated name index; -1 when absent. */
int rpc_find_method(const ProtobufCServiceDescriptor *d, const char *name);

#endif /* CS_RPC_IMPL_H */
