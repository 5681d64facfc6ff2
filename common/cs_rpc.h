/*
 * cs_rpc.h - gRPC-style RPC over nng req/rep sockets.
 *
 * Every call is one Request envelope (countersign.v1.Request: method name,
 * session token, deadline, encoded body) answered by one Response (status
 * code and message, encoded body).  Methods are named as gRPC names them,
 * "countersign.v1.Authority/Ping", and dispatched through the service
 * descriptors protoc-c generates: a program registers its generated
 * ProtobufCService and the server finds the method, decodes the body with
 * the method's input descriptor and invokes the handler.  There is no
 * hand-written switch to keep in step with the .proto files.
 *
 * Transports: tls+tcp:// (wolfSSL, see cs_tls.h) and ipc://.  Plain tcp://
 * is refused: nothing in Countersign travels unauthenticated over a network.
 */
#ifndef CS_RPC_H
#define CS_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <protobuf-c/protobuf-c.h>

#include "cs_srv.h"
#include "cs_tls.h"

/* Largest request or response body accepted by default (64 KiB).  Device
 * records are under 160 bytes; nothing legitimate comes near it. */
#define CS_RPC_MAX_MSG (64u * 1024u)

/* Bytes allowed on a socket above the body limit before nng itself drops
 * the connection: messages between the limits get a clear
 * RESOURCE_EXHAUSTED reply instead of a silent disconnect. */
#define CS_RPC_TRANSPORT_SLACK (1024u * 1024u)

/* Deadline used when a request carries none, and the most it may ask. */
#define CS_RPC_DEFAULT_DEADLINE_MS 30000u
#define CS_RPC_MAX_DEADLINE_MS     600000u

/* Longest method name, "package.Service/Method". */
#define CS_RPC_MAX_METHOD 128u

/* Longest session token. */
#define CS_RPC_MAX_TOKEN 64u

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

typedef struct cs_rpc_server cs_rpc_server;

/* The per-request context handed to handlers as closure_data. */
typedef struct cs_rpc_req cs_rpc_req;

struct cs_rpc_server_opts {
	const char          *url;     /* tls+tcp://host:port or ipc:///path */
	cs_tls_server       *tls;     /* required for tls+tcp (held) */
	unsigned             workers; /* requests served at once; 0 = 8 */
	size_t               max_msg; /* largest request; 0 = CS_RPC_MAX_MSG */
	struct cs_srv_limits limits;  /* per-peer budgets (cs_srv.h); its
	                                 max_msg is set from max_msg */
	void (*on_close)(void *arg, uint64_t conn_id); /* cs_srv.h; or NULL */
	void *on_close_arg;
};

/*
 * Create a server (not yet listening).  Errors: CS_EINVAL (bad options),
 * CS_EADDR (URL scheme not tls+tcp:// or ipc://), CS_ENOMEM.  The server
 * holds a reference to o->tls until closed.  Wire-compatible with nng
 * req0 clients over tls+tcp and ipc (cs_rpc_client below).
 */
int cs_rpc_server_open(cs_rpc_server **out,
    const struct cs_rpc_server_opts *o);

/*
 * Register a service before cs_rpc_server_start().  svc is the generated
 * service struct (its base), filled with handler functions; a NULL
 * handler answers UNIMPLEMENTED.  The service must outlive the server.
 * Handlers run on the server's worker threads, may block, and must call
 * the closure exactly once: with the reply, or with NULL after
 * cs_rpc_req_fail().  Errors: CS_EEXIST (same service twice), CS_ENOMEM.
 */
int cs_rpc_server_add(cs_rpc_server *s, ProtobufCService *svc);

/*
 * Bind and start serving.  Errors: CS_EADDR (cannot bind: the log says
 * why), CS_ENOMEM, CS_EIO.  With tls+tcp://host:0 the port is chosen by
 * the system; cs_rpc_server_port() tells which.
 */
int cs_rpc_server_start(cs_rpc_server *s);

/* The bound TCP port, or 0 when not listening on TCP. */
int cs_rpc_server_port(const cs_rpc_server *s);

/* The transport under a started server (for cs_srv_set_tls,
 * cs_srv_close_peer_name, cs_srv_stats); NULL before start. */
cs_srv *cs_rpc_server_transport(cs_rpc_server *s);

/*
 * Stop accepting connections, let requests in progress finish (waiting at
 * most drain_ms), then close everything.  NULL-safe.
 */
void cs_rpc_server_close(cs_rpc_server *s, unsigned drain_ms);

/*
 * Within a handler: set the failure status of this call.  fmt is the
 * message for the caller: what was wrong and what to do.  The handler then
 * calls its closure with NULL.
 */
void cs_rpc_req_fail(cs_rpc_req *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The session token the request carried (len 0 when none). */
const uint8_t *cs_rpc_req_token(const cs_rpc_req *c, size_t *len);

/* The connection the request came in on: its id, address, the verified
 * client certificate's CN (tls) or the peer's credentials (ipc). */
const struct cs_srv_peer *cs_rpc_req_peer_info(const cs_rpc_req *c);

/* The peer's address as text ("127.0.0.1:53122", "ipc"), for logs. */
const char *cs_rpc_req_peer(const cs_rpc_req *c);

/* Milliseconds left until the caller's deadline (0 when passed). */
uint32_t cs_rpc_req_remaining_ms(const cs_rpc_req *c);

/*
 * Check protobuf wire bytes of a message of descriptor d before decoding:
 * CS_OK when no string field (at any depth) holds a NUL byte; CS_EINVAL
 * with *bad_field naming the field when one does (protobuf-c would hand
 * the string on cut at the NUL); CS_EPROTO when the bytes are not wire
 * format.  The server applies it to every envelope and request body.
 */
int cs_rpc_strings_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p,
    size_t len, const char **bad_field);

/* ------------------------------------------------------------------ */
/* Client                                                              */
/* ------------------------------------------------------------------ */

typedef struct cs_rpc_client cs_rpc_client;

struct cs_rpc_client_opts {
	const char     *url;        /* tls+tcp://host:port or ipc:///path */
	nng_tls_config *tls;        /* client config; required for tls+tcp */
	uint32_t        timeout_ms; /* per call; 0 = 10000 */
	size_t          max_msg;    /* largest reply; 0 = CS_RPC_MAX_MSG */
	bool            wait;       /* true: the first connection must succeed
	                               before open returns (clear errors for
	                               one-shot commands); false: connect and
	                               reconnect in the background */
};

/* What a call learnt besides its result. */
struct cs_rpc_result {
	int  status;       /* wire status (cs_status); UNKNOWN if no reply */
	char message[256]; /* server's message, or the local reason */
	/* No reply came in time and the client closed that connection (it
	 * may have been dead unnoticed): the next call dials afresh, and a
	 * call that is safe to repeat may be retried at once. */
	bool redial;
};

/*
 * Create a client.  With o->wait the first connection is made now, and a
 * failure returns CS_EUNAVAIL (refused, unreachable), CS_EPEERAUTH (the
 * server's certificate was not accepted) or CS_ETLS, with the reason in
 * err.  Afterwards the client reconnects by itself whenever the connection
 * drops.  Errors also: CS_EADDR, CS_EINVAL, CS_ENOMEM.
 */
int cs_rpc_client_open(cs_rpc_client **out,
    const struct cs_rpc_client_opts *o, char *err, size_t errlen);

/* Close the client; calls in progress fail with CS_ECLOSED.  NULL-safe. */
void cs_rpc_client_close(cs_rpc_client *c);

/* Set the session token later calls carry (copied; len 0 clears). */
int cs_rpc_client_set_token(cs_rpc_client *c, const uint8_t *tok,
    size_t len);

/*
 * Call svc/method with in; on CS_OK *out holds the reply (free it with
 * protobuf_c_message_free_unpacked(*out, NULL)).  Thread-safe: calls from
 * several threads are in flight at once on one client (one nng context
 * each).  Blocks up to the client's timeout.  Errors: the server's status
 * mapped by cs_err_from_status(), or locally CS_ETOOBIG (request over the
 * limit, nothing sent), CS_ETIMEDOUT, CS_EUNAVAIL (no connection),
 * CS_EPROTO (malformed reply), CS_EUNIMPL (svc has no such method),
 * CS_ECLOSED.  res (optional) receives the status and a message saying
 * what went wrong.
 */
int cs_rpc_call(cs_rpc_client *c, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *in, ProtobufCMessage **out,
    struct cs_rpc_result *res);

/*
 * Send raw bytes as a request message and receive the raw reply: for
 * tests of malformed input and for tools; *reply is freed with
 * nng_msg_free().  Same errors as cs_rpc_call() for transport failures.
 */
int cs_rpc_call_raw(cs_rpc_client *c, const void *req, size_t len,
    nng_msg **reply, struct cs_rpc_result *res);

#endif /* CS_RPC_H */
