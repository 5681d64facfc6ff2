/*
 * cs_srv.h - the server side of nng's req/rep wire protocol, with a budget
 * for every peer.
 *
 * Stations and countersign-admin are nng req0 clients (cs_rpc.h); this
 * module is what they talk to.  It speaks exactly what nng's tls+tcp and
 * ipc transports put on the wire (the 8-byte SP header, then length-
 * prefixed messages whose first 4 bytes are the request id), but it owns
 * every connection itself, because nng 1.5.2's listeners cannot say no:
 * they have no handshake deadline, no connection cap, no way to bound what
 * a peer queues, and a worker that sends a reply to a peer that does not
 * read blocks until that peer leaves.  Here:
 *
 *  - one event-loop thread owns every socket (epoll, non-blocking I/O,
 *    TLS through cs_tls_sess); workers never touch a socket: a reply is
 *    handed back to the loop and written when the peer reads;
 *  - a connection that has not finished its TLS handshake and SP header
 *    within handshake_ms is closed; so is one whose replies make no
 *    progress for send_timeout_ms, and one idle for idle_ms; connections
 *    still in their handshake have a cap of their own, and the oldest of
 *    them gives way to a new one (a flood only pushes out its own);
 *  - servers never resume TLS sessions (cs_tls.c), so every connection
 *    passes the certificate and CRL checks of the context in force;
 *  - connections are capped in total, per source address (IPv6: per
 *    /64) and per client certificate name (one station's certificate
 *    cannot hold every slot), and the total cap
 *    is kept below the process's descriptor limit; refused connections
 *    are closed at once, counted, and logged once per interval;
 *  - a connection has at most max_inflight requests queued or running;
 *    beyond that, and while its unsent replies exceed a bound, nothing
 *    more is read from it (TCP pushes back on that peer alone);
 *  - every descriptor, buffer and queued request of a connection is freed
 *    when it ends, whenever and however it ends.
 *
 * Thread-safety: cs_srv_close_peer_name() and cs_srv_stats() may be called
 * from any thread; handlers run on the worker threads.
 */
#ifndef CS_SRV_H
#define CS_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_tls.h"

typedef struct cs_srv cs_srv;

/* Budgets; 0 in any field means its default (in brackets). */
struct cs_srv_limits {
	unsigned handshake_ms;    /* TLS handshake + SP header [10000] */
	unsigned max_conns;       /* connections at once, in total [1024] */
	unsigned max_per_source;  /* connections at once per address [64] */
	unsigned max_per_name;    /* connections at once per client
	                             certificate name (a station) [64] */
	unsigned max_inflight;    /* requests queued or running per conn [8] */
	unsigned send_timeout_ms; /* replies stalled this long: drop [5000] */
	size_t   max_msg;         /* largest request accepted [64 KiB] */
	size_t   max_queued;      /* request bytes queued, all peers [32 MiB] */
	unsigned max_handshaking; /* connections still in their handshake;
	                             when full the oldest is closed [256] */
	unsigned idle_ms;         /* an open connection with nothing in
	                             flight this long is closed [600000] */
	unsigned fd_reserve;      /* descriptors of the process kept for
	                             everything but this server's
	                             connections (other listeners, the
	                             store, the HSM, logs) [128] */
};

/* Who sent a request: fixed for the life of the connection. */
struct cs_srv_peer {
	uint64_t    conn_id;   /* unique in this process, never 0 */
	const char *addr;      /* "127.0.0.1:53122", "[::1]:4433", "ipc" */
	const char *tls_name;  /* CN of the verified client certificate, or
	                          "" (no certificate, or ipc) */
	bool        has_cred;  /* ipc: the peer's credentials below */
	uint32_t    uid, gid;
	int32_t     pid;
};

/*
 * Handle one request (body len bytes, or NULL with len > limit when the
 * request was over max_msg and was discarded unread).  Runs on a worker
 * thread and may block.  Returns a malloc'd reply in *rsp (ownership
 * passes to the server) or leaves it NULL to send nothing.
 */
typedef void (*cs_srv_handler)(void *arg, const struct cs_srv_peer *peer,
    const uint8_t *req, size_t len, uint8_t **rsp, size_t *rsp_len);

struct cs_srv_opts {
	const char           *url;      /* tls+tcp[46]://host:port, ipc:///p */
	cs_tls_server        *tls;      /* required for tls+tcp (held) */
	unsigned              workers;  /* handler threads [8] */
	struct cs_srv_limits  limits;
	cs_srv_handler        handler;
	void                 *arg;
	/* Called on the loop thread when a connection that reached the open
	 * state has ended and no request of it is queued or running any
	 * more (so no handler can act for it afterwards); may be NULL.
	 * Must be quick and must not call back into the server. */
	void                (*on_close)(void *arg, uint64_t conn_id);
	void                 *on_close_arg;
};

/* Counters since start, for /metrics and tests. */
struct cs_srv_stats {
	uint64_t accepted;          /* connections accepted */
	uint64_t refused_total;     /* closed at once: total cap */
	uint64_t refused_source;    /* closed at once: per-source cap */
	uint64_t refused_name;      /* closed after TLS: per-name cap */
	uint64_t refused_fd;        /* closed at once: out of descriptors */
	uint64_t handshake_timeouts;
	uint64_t handshake_failures; /* TLS or SP header refused */
	uint64_t send_timeouts;     /* dropped: replies not read */
	uint64_t protocol_errors;   /* dropped: malformed framing */
	uint64_t idle_timeouts;     /* closed: idle (the client reconnects) */
	uint64_t requests;
	unsigned open;              /* connections open now */
	unsigned max_conns;         /* the cap in force (after the fd limit) */
};

/*
 * Bind, listen and start the loop and the workers.  Errors: CS_EADDR
 * (bad URL, cannot bind, or an ipc path where another server answers:
 * the log says which), CS_EINVAL, CS_ENOMEM, CS_EIO.  For ipc, a stale
 * socket file (nobody answers) is replaced.
 */
int cs_srv_open(cs_srv **out, const struct cs_srv_opts *o);

/* The bound TCP port, or 0 for ipc. */
int cs_srv_port(const cs_srv *s);

/*
 * Use tls for connections accepted from now on (a new CRL, say); those
 * already open keep theirs.  The server takes its own reference.
 * NULL-safe.
 */
void cs_srv_set_tls(cs_srv *s, cs_tls_server *tls);

/*
 * Close every open connection whose client certificate names name (a
 * disabled station).  Requests it has in progress finish, their replies
 * are dropped.  Returns how many were closed.
 */
unsigned cs_srv_close_peer_name(cs_srv *s, const char *name);

void cs_srv_stats(cs_srv *s, struct cs_srv_stats *out);

/*
 * Stop accepting, let requests in progress finish and their replies go
 * out (waiting at most drain_ms), then close everything.  NULL-safe.
 */
void cs_srv_close(cs_srv *s, unsigned drain_ms);

#endif /* CS_SRV_H */
