/*
 * cs_rpc.c - the RPC server and client of cs_rpc.h.
 *
 * Server: the transport is cs_srv (nng's req/rep wire protocol with a
 * budget per peer: handshake deadline, connection caps, requests in flight
 * per connection, a send deadline); this file adds the envelope, the
 * dispatch through protobuf-c's service descriptors and the worker-side
 * handling.  Handlers may block (an HSM signature, a grouped durable
 * commit): they run on cs_srv's worker threads, never on its event loop.
 *
 * Client: one req0 socket with a dialer that reconnects by itself; every
 * call opens its own nng_ctx so that calls from several threads are in
 * flight at once over one connection.
 *
 * Everything received is untrusted: sizes are checked against named limits
 * before decoding, and a malformed message gets a status reply and a log
 * line while the server goes on serving everyone else.
 */
#include "cs_rpc.h"
#include "cs_err.h"
#include "cs_log.h"
#include "countersign/v1/rpc.pb-c.h"

#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Only authenticated or local transports carry Countersign traffic. */
static int
check_url(const char *url)
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

static bool
is_tls_url(const char *url)
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
	if ((rv = check_url(o->url)) != CS_OK) {
		cs_log_error("rpc", "refusing to listen on url=%s: only "
		    "tls+tcp:// and ipc:// are allowed", o->url);
		return rv;
	}
	if (is_tls_url(o->url) && o->tls == NULL) {
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
	uint64_t now = now_ms();
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
static int
find_method(const ProtobufCServiceDescriptor *d, const char *name)
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
	c->deadline  = now_ms() +
	    (env->deadline_ms == 0 ? CS_RPC_DEFAULT_DEADLINE_MS
	        : env->deadline_ms > CS_RPC_MAX_DEADLINE_MS
	        ? CS_RPC_MAX_DEADLINE_MS : env->deadline_ms);

	svc = find_service(s, env->method, (size_t)(slash - env->method));
	if (svc == NULL) {
		cs_rpc_req_fail(c, CS_EUNIMPL, "unknown service in method "
		    "'%s'", env->method);
		goto out;
	}
	idx = find_method(svc->descriptor, slash + 1);
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
	if (c->err == CS_OK && now_ms() > c->deadline) {
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
	uint64_t       t0 = now_ms();

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
		    method, peer->addr, (unsigned long long)(now_ms() - t0));
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
/* Client                                                              */
/* ------------------------------------------------------------------ */

struct cs_rpc_client {
	nng_socket      sock;
	nng_dialer      dialer;
	char           *url;
	uint32_t        timeout_ms;
	size_t          max_msg;
	pthread_mutex_t mtx;
	uint8_t         token[CS_RPC_MAX_TOKEN];
	size_t          token_len;
	unsigned        pipes;  /* connections up now */
	unsigned        drops;  /* connections closed so far */
	nng_pipe        pipe;   /* the newest of them */
	nng_tls_config *tls;    /* held for redials; NULL for ipc */
	pthread_mutex_t dial_mtx; /* one redial at a time */
};

static void
on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	cs_rpc_client *c = arg;

	pthread_mutex_lock(&c->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		c->pipes++;
		c->pipe = p;
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		if (c->pipes > 0) {
			c->pipes--;
		}
		c->drops++;
		if (nng_pipe_id(c->pipe) == nng_pipe_id(p)) {
			c->pipe = (nng_pipe)NNG_PIPE_INITIALIZER;
		}
	}
	pthread_mutex_unlock(&c->mtx);
}

static void
dial_error(const char *url, int rv, char *err, size_t errlen)
{
	switch (rv) {
	case NNG_ECONNREFUSED:
		snprintf(err, errlen, "connection to %s refused: is the "
		    "authority running and listening there?", url);
		break;
	case NNG_EPEERAUTH:
		snprintf(err, errlen, "TLS authentication with %s failed: "
		    "either the server refused this client's certificate "
		    "(not issued by its CA, expired or revoked), or the "
		    "server's certificate was not accepted (check the CA "
		    "file and that the certificate names this host)", url);
		break;
	case NNG_ECRYPTO:
	case NNG_EPROTO:
		snprintf(err, errlen, "TLS handshake with %s failed: the "
		    "server may not speak TLS there, or refused this "
		    "client's certificate", url);
		break;
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_ECLOSED:
		/* A refused certificate normally arrives as an alert
		 * (NNG_EPEERAUTH above); a bare hang-up is what the
		 * authority does over its connection limits. */
		snprintf(err, errlen, "the server at %s closed the connection "
		    "during the TLS handshake: it is over a connection limit "
		    "(too many connections from this address or in total: "
		    "the authority logs \"connections refused\"), or it "
		    "refused this client's certificate (not issued by its CA, "
		    "expired or revoked)", url);
		break;
	case NNG_ETIMEDOUT:
		snprintf(err, errlen, "connecting to %s timed out", url);
		break;
	case NNG_EADDRINVAL:
		snprintf(err, errlen, "cannot resolve or use address %s",
		    url);
		break;
	default:
		snprintf(err, errlen, "cannot connect to %s: %s", url,
		    nng_strerror(rv));
		break;
	}
}

/*
 * A synchronous dial, bounded by the client's timeout.  nng 1.5.2 can leave
 * a synchronous dial blocked for good when the server hangs up in the
 * middle of the negotiation (a refused client certificate under TLS 1.3,
 * in rare timings), so the dial runs on its own thread and closing the
 * socket aborts it when the deadline passes.
 */
struct dial_job {
	nng_dialer      dialer;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	int             rv;
};

static void *
dial_main(void *arg)
{
	struct dial_job *j  = arg;
	int              rv = nng_dialer_start(j->dialer, 0);

	pthread_mutex_lock(&j->mtx);
	j->rv   = rv;
	j->done = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mtx);
	return NULL;
}

static int
dial_bounded(cs_rpc_client *c)
{
	struct dial_job j = {.dialer = c->dialer};
	struct timespec until;
	pthread_t       th;
	int             rv;

	pthread_mutex_init(&j.mtx, NULL);
	pthread_cond_init(&j.cv, NULL);
	if (pthread_create(&th, NULL, dial_main, &j) != 0) {
		rv = NNG_ENOMEM;
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += c->timeout_ms / 1000u;
	until.tv_nsec += (long)(c->timeout_ms % 1000u) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&j.mtx);
	while (!j.done) {
		if (pthread_cond_timedwait(&j.cv, &j.mtx, &until) != 0) {
			break;
		}
	}
	bool done = j.done;
	pthread_mutex_unlock(&j.mtx);
	if (!done) {
		/* Closing the dialer aborts its pending connect. */
		nng_dialer_close(c->dialer);
	}
	pthread_join(th, NULL);
	rv = done ? j.rv : NNG_ETIMEDOUT;
out:
	pthread_cond_destroy(&j.cv);
	pthread_mutex_destroy(&j.mtx);
	return rv;
}

int
cs_rpc_client_open(cs_rpc_client **out, const struct cs_rpc_client_opts *o,
    char *err, size_t errlen)
{
	cs_rpc_client *c;
	int            rv;
	char           dummy[8];

	if (err == NULL) {
		err    = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (out == NULL || o == NULL || o->url == NULL) {
		snprintf(err, errlen, "no URL given");
		return CS_EINVAL;
	}
	if (check_url(o->url) != CS_OK) {
		snprintf(err, errlen, "refusing %s: only tls+tcp:// and "
		    "ipc:// URLs are allowed", o->url);
		return CS_EADDR;
	}
	if (is_tls_url(o->url) && o->tls == NULL) {
		snprintf(err, errlen, "tls+tcp:// needs a TLS configuration");
		return CS_EINVAL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->url = strdup(o->url)) == NULL) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return CS_ENOMEM;
	}
	pthread_mutex_init(&c->mtx, NULL);
	pthread_mutex_init(&c->dial_mtx, NULL);
	if (o->tls != NULL) {
		nng_tls_config_hold(o->tls);
		c->tls = o->tls;
	}
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
	c->max_msg    = o->max_msg ? o->max_msg : CS_RPC_MAX_MSG;

	if ((rv = nng_req0_open(&c->sock)) != 0) {
		snprintf(err, errlen, "cannot open socket: %s",
		    nng_strerror(rv));
		pthread_mutex_destroy(&c->mtx);
		pthread_mutex_destroy(&c->dial_mtx);
		if (c->tls != NULL) {
			nng_tls_config_free(c->tls);
		}
		free(c->url);
		free(c);
		return CS_EIO;
	}
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ,
	    c->max_msg + CS_RPC_TRANSPORT_SLACK);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 5000);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, on_pipe, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, on_pipe, c);

	if ((rv = nng_dialer_create(&c->dialer, c->sock, c->url)) != 0) {
		dial_error(c->url, rv, err, errlen);
		cs_rpc_client_close(c);
		return CS_EADDR;
	}
	if (o->tls != NULL && (rv = nng_dialer_set_ptr(c->dialer,
	    NNG_OPT_TLS_CONFIG, o->tls)) != 0) {
		snprintf(err, errlen, "cannot use TLS config: %s",
		    nng_strerror(rv));
		cs_rpc_client_close(c);
		return CS_ETLS;
	}
	rv = o->wait ? dial_bounded(c) : nng_dialer_start(c->dialer,
	    NNG_FLAG_NONBLOCK);
	if (rv == NNG_ETIMEDOUT && o->wait) {
		snprintf(err, errlen, "connecting to %s did not complete "
		    "within %u ms: the server accepted the connection but "
		    "the TLS or protocol negotiation stalled (if the server "
		    "refused this client's certificate, it may have hung up "
		    "before its alert arrived)", c->url, c->timeout_ms);
		cs_rpc_client_close(c);
		return CS_EUNAVAIL;
	}
	if (rv != 0) {
		dial_error(c->url, rv, err, errlen);
		cs_rpc_client_close(c);
		return rv == NNG_EPEERAUTH ? CS_EPEERAUTH
		    : (rv == NNG_ECRYPTO || rv == NNG_EPROTO) ? CS_ETLS
		    : CS_EUNAVAIL;
	}
	*out = c;
	return CS_OK;
}

void
cs_rpc_client_close(cs_rpc_client *c)
{
	if (c == NULL) {
		return;
	}
	nng_close(c->sock);
	explicit_bzero(c->token, sizeof(c->token));
	pthread_mutex_destroy(&c->mtx);
	pthread_mutex_destroy(&c->dial_mtx);
	if (c->tls != NULL) {
		nng_tls_config_free(c->tls);
	}
	free(c->url);
	free(c);
}

int
cs_rpc_client_set_token(cs_rpc_client *c, const uint8_t *tok, size_t len)
{
	if (len > CS_RPC_MAX_TOKEN) {
		return CS_EINVAL;
	}
	pthread_mutex_lock(&c->mtx);
	explicit_bzero(c->token, sizeof(c->token));
	if (len > 0) {
		memcpy(c->token, tok, len);
	}
	c->token_len = len;
	pthread_mutex_unlock(&c->mtx);
	return CS_OK;
}

static int
result(struct cs_rpc_result *res, int status, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
result(struct cs_rpc_result *res, int status, int err, const char *fmt, ...)
{
	va_list ap;

	if (res != NULL) {
		res->status = status;
		va_start(ap, fmt);
		vsnprintf(res->message, sizeof(res->message), fmt, ap);
		va_end(ap);
	}
	return err;
}

/*
 * The deadline of one aio, kept here as well as in nng: nng 1.5.x's aio
 * expiry can miss an entry (nanomsg/nng#1486; seen here as a call blocked
 * for good after its connection was closed, its expire thread asleep with
 * the aio in its queue).  Past the deadline (and a grace that lets nng's
 * own timeout answer first) the aio is cancelled.
 */
#define AIO_GRACE_MS 200u

struct aio_waiter {
	pthread_mutex_t mtx;
	pthread_cond_t  cv; /* on CLOCK_MONOTONIC */
	bool            done;
};

static void
aio_done(void *arg)
{
	struct aio_waiter *w = arg;

	pthread_mutex_lock(&w->mtx);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

static int
aio_waiter_init(struct aio_waiter *w)
{
	pthread_condattr_t a;
	int                rv;

	w->done = false;
	if (pthread_condattr_init(&a) != 0) {
		return NNG_ENOMEM;
	}
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	rv = pthread_cond_init(&w->cv, &a);
	pthread_condattr_destroy(&a);
	if (rv != 0) {
		return NNG_ENOMEM;
	}
	if (pthread_mutex_init(&w->mtx, NULL) != 0) {
		pthread_cond_destroy(&w->cv);
		return NNG_ENOMEM;
	}
	return 0;
}

static void
aio_waiter_fini(struct aio_waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mtx);
}

/* Wait for aio until deadline (now_ms() clock) + grace; then cancel it.
 * Returns the aio's result, NNG_ETIMEDOUT when it was cancelled here. */
static int
aio_wait_until(nng_aio *aio, struct aio_waiter *w, uint64_t deadline)
{
	uint64_t        until = deadline + AIO_GRACE_MS;
	struct timespec ts = {.tv_sec = (time_t)(until / 1000u),
	    .tv_nsec = (long)(until % 1000u) * 1000000L};
	bool            done;
	int             rv;

	pthread_mutex_lock(&w->mtx);
	while (!w->done &&
	    pthread_cond_timedwait(&w->cv, &w->mtx, &ts) == 0) {
	}
	done = w->done;
	pthread_mutex_unlock(&w->mtx);
	if (!done) {
		nng_aio_cancel(aio);
	}
	nng_aio_wait(aio);
	rv = nng_aio_result(aio);
	pthread_mutex_lock(&w->mtx);
	w->done = false; /* for the aio's next operation */
	pthread_mutex_unlock(&w->mtx);
	return !done && rv == NNG_ECANCELED ? NNG_ETIMEDOUT : rv;
}

/* One round trip of raw bytes on a fresh context. */
static int
round_trip(cs_rpc_client *c, nng_msg *req, nng_msg **reply,
    struct cs_rpc_result *res)
{
	nng_ctx           ctx;
	nng_aio          *aio = NULL;
	struct aio_waiter w;
	int               rv;

	*reply = NULL;
	if ((rv = nng_ctx_open(&ctx, c->sock)) != 0) {
		nng_msg_free(req);
		return result(res, CS_STATUS_UNKNOWN, CS_ECLOSED,
		    "client closed: %s", nng_strerror(rv));
	}
	if (aio_waiter_init(&w) != 0) {
		nng_msg_free(req);
		nng_ctx_close(ctx);
		return result(res, CS_STATUS_UNKNOWN, CS_ENOMEM,
		    "out of memory");
	}
	if ((rv = nng_aio_alloc(&aio, aio_done, &w)) != 0) {
		nng_msg_free(req);
		nng_ctx_close(ctx);
		aio_waiter_fini(&w);
		return result(res, CS_STATUS_UNKNOWN, CS_ENOMEM,
		    "out of memory");
	}
	/* One budget for send and receive together. */
	uint64_t deadline = now_ms() + c->timeout_ms;
	nng_aio_set_timeout(aio, (nng_duration)c->timeout_ms);
	nng_aio_set_msg(aio, req);
	nng_ctx_send(ctx, aio);
	if ((rv = aio_wait_until(aio, &w, deadline)) != 0) {
		nng_msg_free(req);
		goto fail;
	}
	uint64_t now = now_ms();
	nng_aio_set_timeout(aio,
	    (nng_duration)(now < deadline ? deadline - now : 1));
	nng_ctx_recv(ctx, aio);
	if ((rv = aio_wait_until(aio, &w, deadline)) != 0) {
		goto fail;
	}
	*reply = nng_aio_get_msg(aio);
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	aio_waiter_fini(&w);
	return CS_OK;

fail:
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	aio_waiter_fini(&w);
	if (rv == NNG_ETIMEDOUT) {
		unsigned pipes, drops;
		nng_pipe p;
		pthread_mutex_lock(&c->mtx);
		pipes = c->pipes;
		drops = c->drops;
		p     = c->pipe;
		pthread_mutex_unlock(&c->mtx);
		/*
		 * No reply on a connection that nng still holds: it may be
		 * dead without nng having noticed (nng 1.5.2's TLS stream can
		 * miss a peer's close when no receive was queued at that
		 * moment, and the request then waits forever).  Drop it, so
		 * that the next call dials afresh instead of timing out on it
		 * again.
		 */
		if (pipes > 0 && nng_pipe_id(p) > 0) {
			cs_log_info("rpc", "no reply from %s within %u ms: "
			    "closing that connection; the next call dials "
			    "again", c->url, c->timeout_ms);
			nng_pipe_close(p);
			if (res != NULL) {
				res->redial = true;
			}
		}
		/* A connection that the server keeps closing right after the
		 * handshake is how a TLS 1.3 server refuses a client
		 * certificate: say so rather than "no reply". */
		if (pipes == 0 && drops > 0) {
			return result(res, CS_STATUS_UNAVAILABLE, CS_EUNAVAIL,
			    "the server at %s closed the connection: if this "
			    "repeats, check that this client's certificate "
			    "is issued by the server's CA, is not expired "
			    "and is not revoked", c->url);
		}
		if (pipes == 0) {
			return result(res, CS_STATUS_UNAVAILABLE, CS_EUNAVAIL,
			    "no connection to %s within %u ms: is the "
			    "authority running and reachable?", c->url,
			    c->timeout_ms);
		}
		return result(res, CS_STATUS_DEADLINE_EXCEEDED, CS_ETIMEDOUT,
		    "no reply from %s within %u ms", c->url, c->timeout_ms);
	}
	if (rv == NNG_ECLOSED) {
		return result(res, CS_STATUS_CANCELLED, CS_ECLOSED,
		    "client closed");
	}
	return result(res, CS_STATUS_UNAVAILABLE, CS_EUNAVAIL,
	    "call to %s failed: %s", c->url, nng_strerror(rv));
}

int
cs_rpc_call_raw(cs_rpc_client *c, const void *req, size_t len,
    nng_msg **reply, struct cs_rpc_result *res)
{
	nng_msg *m;

	if (res != NULL) {
		res->redial = false;
	}
	if (nng_msg_alloc(&m, len) != 0) {
		return result(res, CS_STATUS_UNKNOWN, CS_ENOMEM,
		    "out of memory");
	}
	memcpy(nng_msg_body(m), req, len);
	return round_trip(c, m, reply, res);
}

int
cs_rpc_call(cs_rpc_client *c, const ProtobufCServiceDescriptor *svc,
    const char *method, const ProtobufCMessage *in, ProtobufCMessage **out,
    struct cs_rpc_result *res)
{
	Countersign__V1__Request   env = COUNTERSIGN__V1__REQUEST__INIT;
	Countersign__V1__Response *rsp = NULL;
	uint8_t                    token[CS_RPC_MAX_TOKEN];
	char                       name[CS_RPC_MAX_METHOD + 1];
	uint8_t                   *body = NULL;
	nng_msg                   *m = NULL, *reply = NULL;
	int                        idx, rv;

	*out = NULL;
	if (res != NULL) {
		res->redial = false;
	}
	idx  = find_method(svc, method);
	if (idx < 0) {
		return result(res, CS_STATUS_UNIMPLEMENTED, CS_EUNIMPL,
		    "%s has no method %s", svc->name, method);
	}
	const ProtobufCMethodDescriptor *md = &svc->methods[idx];
	if (in->descriptor != md->input) {
		return result(res, CS_STATUS_INVALID_ARGUMENT, CS_EINVAL,
		    "%s/%s takes %s, not %s", svc->name, method,
		    md->input->name, in->descriptor->name);
	}
	size_t body_len = protobuf_c_message_get_packed_size(in);
	if (body_len > c->max_msg) {
		return result(res, CS_STATUS_RESOURCE_EXHAUSTED, CS_ETOOBIG,
		    "request of %zu bytes exceeds the limit of %zu bytes; "
		    "nothing was sent", body_len, c->max_msg);
	}
	if ((body = malloc(body_len ? body_len : 1)) == NULL) {
		return result(res, CS_STATUS_UNKNOWN, CS_ENOMEM,
		    "out of memory");
	}
	protobuf_c_message_pack(in, body);
	snprintf(name, sizeof(name), "%s/%s", svc->name, method);

	pthread_mutex_lock(&c->mtx);
	memcpy(token, c->token, c->token_len);
	env.token.len = c->token_len;
	pthread_mutex_unlock(&c->mtx);
	env.token.data  = token;
	env.method      = name;
	env.deadline_ms = c->timeout_ms;
	env.body.data   = body;
	env.body.len    = body_len;

	size_t len = countersign__v1__request__get_packed_size(&env);
	if (nng_msg_alloc(&m, len) != 0) {
		rv = result(res, CS_STATUS_UNKNOWN, CS_ENOMEM, "out of memory");
		goto out;
	}
	countersign__v1__request__pack(&env, nng_msg_body(m));
	if ((rv = round_trip(c, m, &reply, res)) != CS_OK) {
		goto out;
	}
	rsp = countersign__v1__response__unpack(NULL, nng_msg_len(reply),
	    nng_msg_body(reply));
	if (rsp == NULL) {
		rv = result(res, CS_STATUS_UNKNOWN, CS_EPROTO,
		    "malformed reply from %s", c->url);
		goto out;
	}
	int status = rsp->status != NULL ? (int)rsp->status->code
	                                 : CS_STATUS_UNKNOWN;
	if (status != CS_STATUS_OK) {
		rv = result(res, status, cs_err_from_status(status), "%s",
		    rsp->status != NULL && rsp->status->message[0] != '\0'
		        ? rsp->status->message
		        : cs_status_name(status));
		goto out;
	}
	*out = protobuf_c_message_unpack(md->output, NULL, rsp->body.len,
	    rsp->body.data);
	if (*out == NULL) {
		rv = result(res, CS_STATUS_UNKNOWN, CS_EPROTO,
		    "malformed %s reply from %s", md->output->name, c->url);
		goto out;
	}
	rv = result(res, CS_STATUS_OK, CS_OK, "OK");
out:
	explicit_bzero(token, sizeof(token));
	countersign__v1__response__free_unpacked(rsp, NULL);
	nng_msg_free(reply);
	free(body);
	return rv;
}
