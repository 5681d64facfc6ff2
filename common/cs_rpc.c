/*
 * cs_rpc.c - the RPC server of cs_rpc.h, and the helpers its client shares.
 *
 * Server: the transport is cs_srv (nng's req/rep wire protocol with a
 * budget per peer: handshake deadline, connection caps, requests in flight
 * per connection, a send deadline); this file adds the envelope, the
 * dispatch through protobuf-c's service descriptors and the worker-side
 * handling.  Handlers may block (an HSM signature, a grouped durable
 * commit): they run on cs_srv's worker threads, never on its event loop.
 *
 * Client (cs_rpc_client.c): one req0 socket with a dialer that reconnects
 * by itself; every call opens its own nng_ctx so that calls from several
 * threads are in flight at once over one connection.
 *
 * Everything received is untrusted: sizes are checked against named limits
 * before decoding, and a malformed message gets a status reply and a log
 * line while the server goes on serving everyone else.
 */
#include "cs_rpc.h"
#include "cs_err.h"
#include "cs_log.h"
#include "countersign/v1/rpc.pb-c.h"
#include "cs_rpc_impl.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t
rpc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Only authenticated or local transports carry Countersign traffic. */
int
rpc_check_url(const char *url)
{
	if (url == NULL) {
		return CS_EINVAL;
	}
	if (strncmp(url, "tls+tcp://", 10) == 0 ||
	    strncmp(url, "tls+tcp4://", 11) == 0 ||
	    strncmp(url, "tls+tcp6://", 11) == 0) {
		return CS_OK;
	}
	if (strncmp(url, "ipc://", 6) == 0) {
		return CS_OK;
	}
	return CS_EADDR;
}

bool
rpc_is_tls_url(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

#define MAX_SERVICES 8

struct cs_rpc_req {
	const struct cs_srv_peer *peer;
	const uint8_t *token;
	size_t         token_len;
	uint64_t       deadline;  /* monotonic ms */
	int            err;       /* failure set by the handler */
	char           message[256];
	bool           done;      /* closure called */
	const ProtobufCMessageDescriptor *out_desc;
	uint8_t       *out;       /* packed reply body */
	size_t         out_len;
};

struct cs_rpc_server {
	cs_srv               *srv;
	cs_tls_server        *tls;
	char                 *url;
	size_t                max_msg;
	unsigned              nworkers;
	struct cs_srv_limits  limits;
	void                (*on_close)(void *, uint64_t);
	void                 *on_close_arg;
	ProtobufCService     *services[MAX_SERVICES];
	size_t                nservices;
};

int
cs_rpc_server_open(cs_rpc_server **out, const struct cs_rpc_server_opts *o)
{
	cs_rpc_server *s;
	int            rv;

	if (out == NULL || o == NULL || o->url == NULL) {
		return CS_EINVAL;
	}
	if ((rv = rpc_check_url(o->url)) != CS_OK) {
		cs_log_error("rpc", "refusing to listen on url=%s: only "
		    "tls+tcp:// and ipc:// are allowed", o->url);
		return rv;
	}
	if (rpc_is_tls_url(o->url) && o->tls == NULL) {
		return CS_EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return CS_ENOMEM;
	}
	s->max_msg  = o->max_msg ? o->max_msg : CS_RPC_MAX_MSG;
	s->nworkers = o->workers ? o->workers : 8;
	s->limits   = o->limits;
	s->on_close = o->on_close;
	s->on_close_arg = o->on_close_arg;
	/* The transport discards bodies over max_msg plus the envelope and
	 * still answers them (RESOURCE_EXHAUSTED). */
	s->limits.max_msg = s->max_msg + 1024u;
	if ((s->url = strdup(o->url)) == NULL) {
		cs_rpc_server_close(s, 0);
		return CS_ENOMEM;
	}
	s->tls = cs_tls_server_hold(o->tls);
	*out = s;
	return CS_OK;
}

int
cs_rpc_server_add(cs_rpc_server *s, ProtobufCService *svc)
{
	for (size_t i = 0; i < s->nservices; i++) {
		if (s->services[i]->descriptor == svc->descriptor) {
			return CS_EEXIST;
		}
	}
	if (s->nservices == MAX_SERVICES) {
		return CS_ENOMEM;
	}
	s->services[s->nservices++] = svc;
	return CS_OK;
}

void
cs_rpc_req_fail(cs_rpc_req *c, int err, const char *fmt, ...)
{
	va_list ap;

	c->err = err != CS_OK ? err : CS_EINTERNAL;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
}

const uint8_t *
cs_rpc_req_token(const cs_rpc_req *c, size_t *len)
{
	*len = c->token_len;
	return c->token;
}

const struct cs_srv_peer *
cs_rpc_req_peer_info(const cs_rpc_req *c)
{
	return c->peer;
}

const char *
cs_rpc_req_peer(const cs_rpc_req *c)
{
	return c->peer->addr;
}

uint32_t
cs_rpc_req_remaining_ms(const cs_rpc_req *c)
{
	uint64_t now = rpc_now_ms();
	return now >= c->deadline ? 0 : (uint32_t)(c->deadline - now);
}

/* The closure every handler calls: packs the reply into the call. */
static void
call_closure(const ProtobufCMessage *msg, void *data)
{
	cs_rpc_req *c = data;

	if (c->done) {
		cs_log_error("rpc", "handler replied twice peer=%s",
		    c->peer->addr);
		return;
	}
	c->done = true;
	if (msg == NULL) {
		if (c->err == CS_OK) {
			cs_rpc_req_fail(c, CS_EINTERNAL,
			    "the server failed to produce a reply");
		}
		return;
	}
	if (c->err != CS_OK || msg->descriptor != c->out_desc) {
		cs_rpc_req_fail(c, CS_EINTERNAL,
		    "the server produced a reply of the wrong type");
		return;
	}
	c->out_len = protobuf_c_message_get_packed_size(msg);
	if ((c->out = malloc(c->out_len ? c->out_len : 1)) == NULL) {
		cs_rpc_req_fail(c, CS_ENOMEM, "server out of memory");
		return;
	}
	protobuf_c_message_pack(msg, c->out);
}

static ProtobufCService *
find_service(cs_rpc_server *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nservices; i++) {
		const char *n = s->services[i]->descriptor->name;
		if (strlen(n) == len && memcmp(n, name, len) == 0) {
			return s->services[i];
		}
	}
	return NULL;
}

/* Index of method name in the descriptor, by binary search over the
 * generated name index; -1 when absent. */
int
rpc_find_method(const ProtobufCServiceDescriptor *d, const char *name)
{
	unsigned lo = 0, hi = d->n_methods;

	while (lo < hi) {
		unsigned    mid = lo + (hi - lo) / 2;
		unsigned    idx = d->method_indices_by_name[mid];
		int         cmp = strcmp(name, d->methods[idx].name);
		if (cmp == 0) {
			return (int)idx;
		}
		if (cmp < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	return -1;
}

/* protobuf-c lays the handler pointers out right after the base struct of
 * a generated service; a NULL one means "not implemented". */
static bool
has_handler(const ProtobufCService *svc, int idx)
{
	typedef void (*handler_fn)(void);
	const handler_fn *h = (const handler_fn *)(const void *)(svc + 1);
	return h[idx] != NULL;
}

/* One varint from *p (at most 10 bytes); false when cut short. */
static bool
pb_varint(const uint8_t **p, size_t *len, uint64_t *v)
{
	*v = 0;
	for (unsigned i = 0; i < 10 && *len > 0; i++) {
		uint8_t b = *(*p)++;
		(*len)--;
		*v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			return true;
		}
	}
	return false;
}

static int
strings_ok_depth(const ProtobufCMessageDescriptor *d,
    const uint8_t *p, size_t len, const char **bad_field, unsigned depth)
{
	uint64_t key, v;

	if (depth > 16) {
		return CS_EPROTO;
	}
	while (len > 0) {
		if (!pb_varint(&p, &len, &key)) {
			return CS_EPROTO;
		}
		switch (key & 7) {
		case 0:
			if (!pb_varint(&p, &len, &v)) {
				return CS_EPROTO;
			}
			break;
		case 1:
		case 5: {
			size_t n = (key & 7) == 1 ? 8 : 4;
			if (len < n) {
				return CS_EPROTO;
			}
			p += n;
			len -= n;
			break;
		}
		case 2: {
			if (!pb_varint(&p, &len, &v) || v > len) {
				return CS_EPROTO;
			}
			const ProtobufCFieldDescriptor *f = key >> 3 > UINT32_MAX
			    ? NULL : protobuf_c_message_descriptor_get_field(d,
			        (unsigned)(key >> 3));
			if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
			    memchr(p, 0, (size_t)v) != NULL) {
				*bad_field = f->name;
				return CS_EINVAL;
			}
			if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				int rv = strings_ok_depth(f->descriptor, p,
				    (size_t)v, bad_field, depth + 1);
				if (rv != CS_OK) {
					return rv;
				}
			}
			p += v;
			len -= (size_t)v;
			break;
		}
		default: /* groups (3, 4) are not proto3; others invalid */
			return CS_EPROTO;
		}
	}
	return CS_OK;
}

int
cs_rpc_strings_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p,
    size_t len, const char **bad_field)
{
	return strings_ok_depth(d, p, len, bad_field, 0);
}

/* Refuse a message whose string field holds a NUL byte: protobuf-c would
 * hand it on cut at the NUL ("ORDER\0x" read as "ORDER"). */
static bool
strings_whole(cs_rpc_req *c, const ProtobufCMessageDescriptor *d,
    const uint8_t *p, size_t len)
{
	const char *field = "?";
	int         rv    = cs_rpc_strings_ok(d, p, len, &field);

	if (rv == CS_EINVAL) {
		cs_rpc_req_fail(c, CS_EPROTO, "field %s of %s holds a NUL byte: "
		    "strings are refused whole, never cut", field, d->name);
		return false;
	}
	/* Not wire format: protobuf-c refuses it next, with its message. */
	return true;
}

/* Decode, dispatch and run one request; fills c with the outcome.  req is
 * NULL when the transport discarded a message of len bytes unread. */
static void
dispatch(cs_rpc_server *s, const uint8_t *req, size_t len, cs_rpc_req *c,
    char *method, size_t method_len)
{
	Countersign__V1__Request *env = NULL;
	ProtobufCMessage         *in  = NULL;
	ProtobufCService         *svc;
	const char               *slash;
	int                       idx;

	snprintf(method, method_len, "-");
	if (req == NULL || len > s->max_msg + 1024u) {
		cs_rpc_req_fail(c, CS_ETOOBIG, "request of %zu bytes exceeds "
		    "the limit of %zu bytes", len, s->max_msg);
		return;
	}
	if (!strings_whole(c, &countersign__v1__request__descriptor, req,
	        len)) {
		return;
	}
	env = countersign__v1__request__unpack(NULL, len, req);
	if (env == NULL) {
		cs_rpc_req_fail(c, CS_EPROTO, "malformed request envelope: "
		    "expected a countersign.v1.Request message");
		return;
	}
	if (strlen(env->method) > CS_RPC_MAX_METHOD ||
	    (slash = strchr(env->method, '/')) == NULL) {
		cs_rpc_req_fail(c, CS_EUNIMPL, "malformed method name: "
		    "expected package.Service/Method");
		goto out;
	}
	snprintf(method, method_len, "%s", env->method);
	if (env->token.len > CS_RPC_MAX_TOKEN) {
		cs_rpc_req_fail(c, CS_EUNAUTH, "session token too long");
		goto out;
	}
	if (env->body.len > s->max_msg) {
		cs_rpc_req_fail(c, CS_ETOOBIG, "request body of %zu bytes "
		    "exceeds the limit of %zu bytes", env->body.len,
		    s->max_msg);
		goto out;
	}
	c->token     = env->token.data;
	c->token_len = env->token.len;
	c->deadline  = rpc_now_ms() +
	    (env->deadline_ms == 0 ? CS_RPC_DEFAULT_DEADLINE_MS
	        : env->deadline_ms > CS_RPC_MAX_DEADLINE_MS
	        ? CS_RPC_MAX_DEADLINE_MS : env->deadline_ms);

	svc = find_service(s, env->method, (size_t)(slash - env->method));
	if (svc == NULL) {
		cs_rpc_req_fail(c, CS_EUNIMPL, "unknown service in method "
		    "'%s'", env->method);
		goto out;
	}
	idx = rpc_find_method(svc->descriptor, slash + 1);
	if (idx < 0 || !has_handler(svc, idx)) {
		cs_rpc_req_fail(c, CS_EUNIMPL, "unknown method '%s'",
		    env->method);
		goto out;
	}
	const ProtobufCMethodDescriptor *md = &svc->descriptor->methods[idx];
	if (!strings_whole(c, md->input, env->body.data, env->body.len)) {
		goto out;
	}
	in = protobuf_c_message_unpack(md->input, NULL, env->body.len,
	    env->body.data);
	if (in == NULL) {
		cs_rpc_req_fail(c, CS_EPROTO, "malformed %s body: expected "
		    "a %s message", env->method, md->input->name);
		goto out;
	}
	c->out_desc = md->output;
	svc->invoke(svc, (unsigned)idx, in, call_closure, c);
	if (!c->done) {
		/* Handlers must reply before returning; treat a missing reply
		 * as the server's fault, never as success. */
		c->done = true;
		cs_rpc_req_fail(c, CS_EINTERNAL,
		    "the server failed to produce a reply");
	}
	if (c->err == CS_OK && rpc_now_ms() > c->deadline) {
		free(c->out);
		c->out = NULL;
		cs_rpc_req_fail(c, CS_ETIMEDOUT, "deadline exceeded while "
		    "handling %s", env->method);
	}
out:
	c->token     = NULL;
	c->token_len = 0;
	protobuf_c_message_free_unpacked(in, NULL);
	countersign__v1__request__free_unpacked(env, NULL);
}

/* Pack the Response envelope for call c into a new buffer; false only
 * when out of memory. */
static bool
make_response(const cs_rpc_req *c, uint8_t **out, size_t *out_len)
{
	Countersign__V1__Response rsp = COUNTERSIGN__V1__RESPONSE__INIT;
	Countersign__V1__Status   st  = COUNTERSIGN__V1__STATUS__INIT;
	size_t                    len;

	st.code    = (Countersign__V1__StatusCode)cs_err_to_status(c->err);
	st.message = (char *)(c->err == CS_OK ? "" : c->message);
	rsp.status = &st;
	if (c->err == CS_OK) {
		rsp.body.data = c->out;
		rsp.body.len  = c->out_len;
	}
	len = countersign__v1__response__get_packed_size(&rsp);
	if ((*out = malloc(len ? len : 1)) == NULL) {
		return false;
	}
	*out_len = countersign__v1__response__pack(&rsp, *out);
	return true;
}

/* cs_srv's handler: one request in, one Response envelope out. */
static void
handle(void *arg, const struct cs_srv_peer *peer, const uint8_t *req,
    size_t len, uint8_t **rsp, size_t *rsp_len)
{
	cs_rpc_server *s = arg;
	cs_rpc_req     c;
	char           method[CS_RPC_MAX_METHOD + 1];
	uint64_t       t0 = rpc_now_ms();

	memset(&c, 0, sizeof(c));
	c.peer = peer;
	dispatch(s, req, len, &c, method, sizeof(method));
	if (!make_response(&c, rsp, rsp_len)) {
		cs_log_error("rpc", "out of memory building a reply");
	}
	if (c.err != CS_OK) {
		cs_log_warn("rpc", "request refused method=%s peer=%s "
		    "status=%s reason=\"%s\"", method, peer->addr,
		    cs_status_name(cs_err_to_status(c.err)), c.message);
	} else {
		cs_log_debug("rpc", "request method=%s peer=%s ms=%llu",
		    method, peer->addr,
		    (unsigned long long)(rpc_now_ms() - t0));
	}
	free(c.out);
}

int
cs_rpc_server_start(cs_rpc_server *s)
{
	struct cs_srv_opts o = {
	    .url     = s->url,
	    .tls     = s->tls,
	    .workers = s->nworkers,
	    .limits  = s->limits,
	    .handler = handle,
	    .arg     = s,
	    .on_close     = s->on_close,
	    .on_close_arg = s->on_close_arg,
	};
	int rv;

	if ((rv = cs_srv_open(&s->srv, &o)) != CS_OK) {
		return rv;
	}
	struct cs_srv_stats st;
	cs_srv_stats(s->srv, &st);
	cs_log_info("rpc", "listening url=%s port=%d workers=%u "
	    "max_conns=%u", s->url, cs_rpc_server_port(s), s->nworkers,
	    st.max_conns);
	return CS_OK;
}

int
cs_rpc_server_port(const cs_rpc_server *s)
{
	return s->srv != NULL ? cs_srv_port(s->srv) : 0;
}

cs_srv *
cs_rpc_server_transport(cs_rpc_server *s)
{
	return s->srv;
}

void
cs_rpc_server_close(cs_rpc_server *s, unsigned drain_ms)
{
	if (s == NULL) {
		return;
	}
	cs_srv_close(s->srv, drain_ms);
	cs_tls_server_release(s->tls);
	free(s->url);
	free(s);
}
/* ------------------------------------------------------------------ */
