/*
 * cs_rpc_client.c - the RPC client of cs_rpc.h: one req0 socket with a
 * dialer that reconnects by itself; every call opens its own nng_ctx so
 * that calls from several threads are in flight at once over one
 * connection.  Split from cs_rpc.c (the server), with which it shares the
 * envelope and the URL checks (cs_rpc_impl.h).
 */
#include "cs_rpc.h"
#include "cs_err.h"
#include "cs_log.h"
#include "cs_rpc_impl.h"
#include "countersign/v1/rpc.pb-c.h"

#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (rpc_check_url(o->url) != CS_OK) {
		snprintf(err, errlen, "refusing %s: only tls+tcp:// and "
		    "ipc:// URLs are allowed", o->url);
		return CS_EADDR;
	}
	if (rpc_is_tls_url(o->url) && o->tls == NULL) {
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

/* Wait for aio until deadline (rpc_now_ms() clock) + grace; then cancel it.
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
	uint64_t deadline = rpc_now_ms() + c->timeout_ms;
	nng_aio_set_timeout(aio, (nng_duration)c->timeout_ms);
	nng_aio_set_msg(aio, req);
	nng_ctx_send(ctx, aio);
	if ((rv = aio_wait_until(aio, &w, deadline)) != 0) {
		nng_msg_free(req);
		goto fail;
	}
	uint64_t now = rpc_now_ms();
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
	idx  = rpc_find_method(svc, method);
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
