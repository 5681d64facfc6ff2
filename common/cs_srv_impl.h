/*
 * cs_srv_impl.h - what the pieces of the budgeted req/rep server share:
 * its limits on the wire, the connection, job and frame structs, and the
 * connection functions the event loop calls.  Only cs_srv.c and
 * cs_srv_conn.c include it; cs_srv.h is the module's interface.
 */
#ifndef CS_SRV_IMPL_H
#define CS_SRV_IMPL_H

#include "cs_srv.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SP_HDR_LEN        8
#define SP_PROTO_REQ0     0x30
#define SP_PROTO_REP0     0x31
#define REQID_LEN         4
#define SRC_BUCKETS       1024
#define SWEEP_MS          100
#define LOG_INTERVAL_MS   10000
#define ACCEPT_BURST      64
#define OUT_HIGH          (256u * 1024u) /* unsent reply bytes: pause */
#define DISCARD_MAX_SLACK (1024u * 1024u) /* oversized but answered */
#define FD_RESERVE        128 /* descriptors kept for everything else,
                                 by default */
#define SNDBUF            (128 * 1024) /* kernel send buffer per peer */
#define LINGER_MS         1000
#define HS_LOG_LINES      10  /* handshake failures logged per interval */

#define STAT_ADD(s, f, n) __atomic_add_fetch(&(s)->stats.f, (n), \
	__ATOMIC_RELAXED)

static inline uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* An output frame: bytes to write, and how far writing got. */
struct ofr {
	struct ofr *next;
	size_t      len;
	size_t      off;
	uint8_t     data[];
};

struct conn;

struct job {
	struct job  *next;
	struct conn *c;
	uint32_t     reqid;
	uint8_t     *req;  /* NULL: over the limit, discarded */
	size_t       len;
	struct ofr  *rsp;  /* the reply frame, made by the worker */
};

/* Connections open per source address. */
struct src {
	struct src *next;
	uint8_t     addr[16];
	unsigned    n;
};

/* ST_LINGER: refused after our alert went out; the write side is shut
 * and input is read and dropped until the peer closes or LINGER_MS pass,
 * so that the peer reads the alert instead of a reset. */
enum conn_state { ST_TLS, ST_SPHDR, ST_OPEN, ST_LINGER };

struct conn {
	struct conn    *prev, *next; /* s->conns, or s->zombies once dead */
	struct conn    *hs_prev, *hs_next; /* s->hs_head: still handshaking */
	bool            in_hs;
	uint64_t        tls_gen;   /* s->tls_gen when accepted */
	uint64_t        t_active;  /* last request or reply */
	int             fd;
	enum conn_state state;
	bool            dead;      /* closed; freed when inflight is 0 */
	bool            paused_budget;
	cs_tls_sess    *tls;       /* NULL for ipc */
	struct src     *src;
	uint64_t        t_open;
	uint64_t        t_progress; /* last write progress with output due */
	uint64_t        acked;      /* bytes the peer's TCP acknowledged */
	uint64_t        t_acked;    /* when that last grew (or none was due) */
	bool            outq;       /* the kernel held unacknowledged bytes */
	uint32_t        events;    /* registered with epoll */
	unsigned        inflight;  /* jobs queued or running */
	/* input */
	uint8_t         sp_in[SP_HDR_LEN];
	size_t          sp_got;
	uint8_t         hdr[1 + 8 + REQID_LEN];
	size_t          hdr_got;
	uint8_t        *body;
	size_t          body_len;  /* after the request id */
	size_t          body_got;
	bool            discard;   /* over the limit: read and drop */
	uint32_t        reqid;
	/* output */
	struct ofr     *out_head, *out_tail;
	size_t          out_bytes;
	/* identity */
	struct cs_srv_peer peer;
	char            addr[64];
	char            tls_name[65];
};

struct cs_srv {
	struct cs_srv_limits lim;
	cs_srv_handler  handler;
	void           *arg;
	void          (*on_close)(void *, uint64_t);
	void           *on_close_arg;
	bool            ipc;
	char           *ipc_path;
	int             lfd;
	int             epfd;
	int             evfd;
	int             reserve_fd; /* spent to accept-and-close on EMFILE */
	int             port;
	pthread_t       loop;
	bool            loop_started;
	unsigned        nworkers;
	pthread_t      *workers;
	unsigned        workers_started;
	uint64_t        next_id;

	/* loop-thread state */
	struct conn    *conns;
	struct conn    *zombies;
	unsigned        nconns;
	unsigned        max_conns; /* the cap after the descriptor limit */
	size_t          queued;    /* request bytes in jobs */
	unsigned        npaused_budget;
	struct conn    *hs_head, *hs_tail; /* handshaking, oldest first */
	unsigned        nhs;
	unsigned        max_hs;    /* connections in handshake at once */
	uint64_t        accept_paused_until; /* EMFILE without a reserve */
	bool            listen_on;
	struct src     *srcs[SRC_BUCKETS];
	uint64_t        last_sweep;
	uint64_t        log_at;
	uint64_t        log_total, log_source, log_fd, log_name;
	uint64_t        log_hs;       /* handshake failures not logged */
	unsigned        log_hs_lines; /* logged in this interval */

	/* jobs: loop -> workers */
	pthread_mutex_t qmtx;
	pthread_cond_t  qcv;
	struct job     *qhead, *qtail;
	bool            qstop;

	/* completions, commands, TLS: any thread -> loop */
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	struct job     *done_head, *done_tail;
	cs_tls_server  *tls;
	uint64_t        tls_gen;    /* bumped by cs_srv_set_tls */
	bool            stopping;
	uint64_t        stop_at;
	char            kill_name[128]; /* a close_peer_name request */
	uint64_t        kill_seq;   /* requests made */
	uint64_t        kill_done;  /* requests the loop has carried out */
	unsigned        kill_count;

	struct cs_srv_stats stats;
};


/* Connections (cs_srv_conn.c); all run on the loop thread. */

void srv_list_remove(struct conn **head, struct conn *c);

/* Frees c and what it still holds; c must be closed and idle. */
void srv_conn_free(struct conn *c);

/*
 * End connection c now: its socket, TLS state, buffers and source count
 * go at once; the struct stays on the zombie list until the loop frees
 * it between event batches (events of the batch being handled may still
 * point at it) and no job of it is queued or running.  why, if not NULL,
 * is logged.
 */
void srv_conn_kill(cs_srv *s, struct conn *c, const char *why);

/* Appends reply frame o to c's output; c owns it from here. */
void srv_conn_queue_out(struct conn *c, struct ofr *o);

/* Move c on as far as its socket allows. */
void srv_conn_progress(cs_srv *s, struct conn *c);

/*
 * Logs the interval's summary of refusals and handshake failures when it
 * is due (or at once with force).
 */
void srv_log_refusals(cs_srv *s, uint64_t now, bool force);

/* Accepts what the listening socket holds, a burst at a time. */
void srv_accept_ready(cs_srv *s);

#endif /* CS_SRV_IMPL_H */
