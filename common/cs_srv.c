/*
 * cs_srv.c - nng's req/rep wire protocol served with a budget per peer
 * (cs_srv.h says why nng's own listener is not used).
 *
 * Threads: one event loop owns the listening socket, every connection and
 * every byte read or written; N workers run the handler.  They meet in two
 * queues: jobs (a complete request, loop -> workers, mutex + condvar) and
 * completions (the same job with its reply frame, workers -> loop, mutex +
 * an eventfd that wakes the loop).  A connection's memory is freed only by
 * the loop, once it is closed and no job of it is queued or running, so a
 * handler may read its peer fields without a lock.
 *
 * Wire format (what nng 1.5.2's transports speak): after TLS (tls+tcp) or
 * right away (ipc), each side sends an 8-byte SP header "\0SP\0", its
 * protocol as a big-endian 16-bit number (req0 = 0x30, rep0 = 0x31) and two
 * zero bytes.  Then messages: [ipc: one type byte, 1] a 64-bit big-endian
 * length and that many bytes.  A request starts with the 4-byte request id
 * (high bit set) of its req0 context; the reply starts with the same id.
 *
 * Bytes are read exactly as the framing asks (a header, then one body), so
 * a connection that is paused has nothing read ahead: the rest stays in
 * the kernel, or in wolfSSL's record buffer (cs_tls_sess_pending()).
 */
#include "cs_srv.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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
#define FD_RESERVE        128 /* descriptors kept for everything else */
#define SNDBUF            (128 * 1024) /* kernel send buffer per peer */
#define LINGER_MS         1000
#define HS_LOG_LINES      10  /* handshake failures logged per interval */

#define STAT_ADD(s, f, n) __atomic_add_fetch(&(s)->stats.f, (n), \
	__ATOMIC_RELAXED)

static uint64_t
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
	uint64_t        log_total, log_source, log_fd;
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

static void
wake(cs_srv *s)
{
	uint64_t one = 1;
	ssize_t  n   = write(s->evfd, &one, sizeof(one));
	(void)n; /* a full counter already wakes the loop */
}

/* ------------------------------------------------------------------ */
/* Per-source accounting                                              */

static void
src_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		key[10] = 0xff;
		key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		memcpy(key, &in6->sin6_addr, 16);
		/* One host commonly holds a whole /64: count per /64,
		 * except for v4-mapped addresses (one per IPv4 host). */
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0,
		    0, 0xff, 0xff};
		if (memcmp(key, mapped, 12) != 0) {
			memset(key + 8, 0, 8);
		}
	}
}

static unsigned
src_hash(const uint8_t key[16])
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++) {
		h = (h ^ key[i]) * 16777619u;
	}
	return h % SRC_BUCKETS;
}

static struct src *
src_find(cs_srv *s, const uint8_t key[16], bool create)
{
	unsigned    b = src_hash(key);
	struct src *e;

	for (e = s->srcs[b]; e != NULL; e = e->next) {
		if (memcmp(e->addr, key, 16) == 0) {
			return e;
		}
	}
	if (!create || (e = calloc(1, sizeof(*e))) == NULL) {
		return NULL;
	}
	memcpy(e->addr, key, 16);
	e->next    = s->srcs[b];
	s->srcs[b] = e;
	return e;
}

static void
src_put(cs_srv *s, struct src *e)
{
	struct src **pp;

	if (e == NULL || --e->n > 0) {
		return;
	}
	for (pp = &s->srcs[src_hash(e->addr)]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */

static void
list_remove(struct conn **head, struct conn *c)
{
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		*head = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	c->prev = c->next = NULL;
}

static void
list_push(struct conn **head, struct conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head != NULL) {
		(*head)->prev = c;
	}
	*head = c;
}

static void
hs_add(cs_srv *s, struct conn *c)
{
	c->in_hs   = true;
	c->hs_next = NULL;
	c->hs_prev = s->hs_tail;
	if (s->hs_tail != NULL) {
		s->hs_tail->hs_next = c;
	} else {
		s->hs_head = c;
	}
	s->hs_tail = c;
	s->nhs++;
}

static void
hs_remove(cs_srv *s, struct conn *c)
{
	if (!c->in_hs) {
		return;
	}
	if (c->hs_prev != NULL) {
		c->hs_prev->hs_next = c->hs_next;
	} else {
		s->hs_head = c->hs_next;
	}
	if (c->hs_next != NULL) {
		c->hs_next->hs_prev = c->hs_prev;
	} else {
		s->hs_tail = c->hs_prev;
	}
	c->hs_prev = c->hs_next = NULL;
	c->in_hs   = false;
	s->nhs--;
}

static void
conn_free(struct conn *c)
{
	struct ofr *o, *next;

	for (o = c->out_head; o != NULL; o = next) {
		next = o->next;
		free(o);
	}
	free(c->body);
	free(c);
}

/*
 * End connection c now: its socket, TLS state, buffers and source count
 * go at once; the struct stays (on the zombie list) while jobs of it are
 * queued or running.
 */
static void
conn_kill(cs_srv *s, struct conn *c, const char *why)
{
	struct ofr *o, *next;

	if (c->dead) {
		return;
	}
	if (why != NULL) {
		cs_log_info("srv", "connection closed peer=%s name=%s "
		    "reason=\"%s\"", c->addr, c->tls_name[0] ? c->tls_name :
		    "-", why);
	}
	__atomic_store_n(&c->dead, true, __ATOMIC_RELEASE);
	if (c->state == ST_OPEN && s->on_close != NULL) {
		s->on_close(s->on_close_arg, c->peer.conn_id);
	}
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	cs_tls_sess_free(c->tls);
	c->tls = NULL;
	close(c->fd);
	c->fd = -1;
	for (o = c->out_head; o != NULL; o = next) {
		next = o->next;
		free(o);
	}
	c->out_head = c->out_tail = NULL;
	c->out_bytes              = 0;
	free(c->body);
	c->body = NULL;
	if (c->paused_budget) {
		c->paused_budget = false;
		s->npaused_budget--;
	}
	src_put(s, c->src);
	c->src = NULL;
	hs_remove(s, c);
	list_remove(&s->conns, c);
	s->nconns--;
	if (c->inflight == 0) {
		conn_free(c);
	} else {
		list_push(&s->zombies, c);
	}
}

static void
conn_queue_out(struct conn *c, struct ofr *o)
{
	o->next = NULL;
	if (c->out_tail != NULL) {
		c->out_tail->next = o;
	} else {
		c->out_head   = o;
		c->t_progress = now_ms();
	}
	c->out_tail = o;
	c->out_bytes += o->len;
}

/* Write what can be written.  CS_OK (all out or waiting), or fatal. */
static int
conn_flush(struct conn *c)
{
	struct ofr *o;
	int         rv;

	while ((o = c->out_head) != NULL) {
		if (c->tls != NULL) {
			rv = cs_tls_sess_write(c->tls, o->data + o->off,
			    o->len - o->off);
			if (rv == CS_EAGAIN) {
				return CS_OK;
			}
			if (rv != CS_OK) {
				return rv;
			}
			o->off = o->len;
		} else {
			ssize_t n = send(c->fd, o->data + o->off,
			    o->len - o->off, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				return CS_OK;
			}
			if (n < 0) {
				return CS_ECLOSED;
			}
			o->off += (size_t)n;
			c->t_progress = now_ms();
			if (o->off < o->len) {
				continue;
			}
		}
		c->t_progress = now_ms();
		c->out_bytes -= o->len;
		c->out_head = o->next;
		if (c->out_head == NULL) {
			c->out_tail = NULL;
		}
		free(o);
	}
	return CS_OK;
}

/* Read up to len bytes: CS_OK with *n > 0, CS_EAGAIN, or fatal. */
static int
conn_read(struct conn *c, void *buf, size_t len, size_t *n)
{
	ssize_t r;

	if (c->tls != NULL) {
		return cs_tls_sess_read(c->tls, buf, len, n);
	}
	*n = 0;
	do {
		r = recv(c->fd, buf, len, 0);
	} while (r < 0 && errno == EINTR);
	if (r > 0) {
		*n = (size_t)r;
		return CS_OK;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		return CS_EAGAIN;
	}
	return CS_ECLOSED;
}

static bool
conn_may_read(const cs_srv *s, const struct conn *c)
{
	return c->inflight < s->lim.max_inflight && c->out_bytes < OUT_HIGH &&
	    !c->paused_budget && !s->stopping;
}

static void
conn_update_events(cs_srv *s, struct conn *c)
{
	uint32_t ev = 0;

	if (c->dead) {
		return;
	}
	if (c->state == ST_LINGER) {
		ev = EPOLLIN;
	} else if (c->state == ST_TLS) {
		ev = cs_tls_sess_wants_write(c->tls) ? EPOLLOUT : EPOLLIN;
	} else {
		if (conn_may_read(s, c)) {
			ev |= EPOLLIN;
		}
		/* EPOLLOUT only with output queued, or when a read that
		 * may go on waits for the socket to take wolfSSL's bytes:
		 * a paused connection must not be woken for nothing. */
		if (c->out_head != NULL ||
		    (c->tls != NULL && cs_tls_sess_wants_write(c->tls) &&
		     conn_may_read(s, c))) {
			ev |= EPOLLOUT;
		}
	}
	if (ev != c->events) {
		struct epoll_event e = {.events = ev, .data.ptr = c};
		if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &e) == 0) {
			c->events = ev;
		}
	}
}

/* Hand a complete request to the workers. */
static void
conn_dispatch(cs_srv *s, struct conn *c)
{
	struct job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		cs_log_error("srv", "out of memory queueing a request");
		free(c->body);
		c->body = NULL;
		return;
	}
	c->t_active = now_ms();
	j->c     = c;
	j->reqid = c->reqid;
	j->req   = c->discard ? NULL : c->body;
	j->len   = c->body_len;
	c->body  = NULL;
	c->inflight++;
	if (j->req != NULL) {
		s->queued += j->len;
	}
	STAT_ADD(s, requests, 1);
	pthread_mutex_lock(&s->qmtx);
	if (s->qtail != NULL) {
		s->qtail->next = j;
	} else {
		s->qhead = j;
	}
	s->qtail = j;
	pthread_cond_signal(&s->qcv);
	pthread_mutex_unlock(&s->qmtx);
}

/*
 * A message header is complete: check it and set up its body.  Returns
 * false (after killing c) when the framing is not nng's.
 */
static bool
conn_start_body(cs_srv *s, struct conn *c)
{
	const uint8_t *p   = s->ipc ? c->hdr + 1 : c->hdr;
	uint64_t       len = 0;
	uint32_t       id;

	if (s->ipc && c->hdr[0] != 1) {
		STAT_ADD(s, protocol_errors, 1);
		conn_kill(s, c, "bad message type");
		return false;
	}
	for (int i = 0; i < 8; i++) {
		len = len << 8 | p[i];
	}
	id = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 |
	    (uint32_t)p[10] << 8 | p[11];
	if (len < REQID_LEN || (id & 0x80000000u) == 0 ||
	    len - REQID_LEN > s->lim.max_msg + DISCARD_MAX_SLACK) {
		STAT_ADD(s, protocol_errors, 1);
		conn_kill(s, c, len - REQID_LEN > s->lim.max_msg +
		    DISCARD_MAX_SLACK ? "message far over the size limit" :
		    "malformed request framing");
		return false;
	}
	c->reqid    = id;
	c->body_len = (size_t)(len - REQID_LEN);
	c->body_got = 0;
	c->discard  = c->body_len > s->lim.max_msg;
	if (!c->discard &&
	    (c->body = malloc(c->body_len ? c->body_len : 1)) == NULL) {
		c->discard = true; /* answered like an oversized one */
	}
	return true;
}

/* Read and dispatch requests while c may read.  False when c died. */
static bool
conn_read_requests(cs_srv *s, struct conn *c)
{
	size_t hdr_len = (s->ipc ? 1 : 0) + 8 + REQID_LEN;
	uint8_t scratch[4096];
	size_t n;
	int    rv;

	while (!c->dead && conn_may_read(s, c)) {
		if (c->body == NULL && !c->discard) {
			/* A header; the budget is checked before a body. */
			rv = conn_read(c, c->hdr + c->hdr_got,
			    hdr_len - c->hdr_got, &n);
			if (rv == CS_OK && (c->hdr_got += n) == hdr_len) {
				c->hdr_got = 0;
				if (!conn_start_body(s, c)) {
					return false;
				}
				if (!c->discard && s->queued + c->body_len >
				    s->lim.max_queued && s->queued > 0) {
					c->paused_budget = true;
					s->npaused_budget++;
				}
				if (c->body_len == 0) {
					conn_dispatch(s, c);
				}
				continue;
			}
		} else if (c->discard) {
			size_t want = c->body_len - c->body_got;
			rv = conn_read(c, scratch, want < sizeof(scratch) ?
			    want : sizeof(scratch), &n);
			if (rv == CS_OK && (c->body_got += n) == c->body_len) {
				conn_dispatch(s, c);
				c->discard = false;
			}
		} else {
			rv = conn_read(c, c->body + c->body_got,
			    c->body_len - c->body_got, &n);
			if (rv == CS_OK && (c->body_got += n) == c->body_len) {
				conn_dispatch(s, c);
			}
		}
		if (rv == CS_EAGAIN) {
			return true;
		}
		if (rv != CS_OK) {
			conn_kill(s, c, rv == CS_ECLOSED ? NULL :
			    "receive failed");
			return false;
		}
	}
	return !c->dead;
}

/* After TLS: exchange SP headers.  False when c died. */
static bool
conn_read_sp(cs_srv *s, struct conn *c)
{
	size_t n;
	int    rv;

	while (c->sp_got < SP_HDR_LEN) {
		rv = conn_read(c, c->sp_in + c->sp_got, SP_HDR_LEN - c->sp_got,
		    &n);
		if (rv == CS_EAGAIN) {
			return true;
		}
		if (rv != CS_OK) {
			STAT_ADD(s, handshake_failures, 1);
			conn_kill(s, c, NULL);
			return false;
		}
		c->sp_got += n;
	}
	if (c->sp_in[0] != 0 || c->sp_in[1] != 'S' || c->sp_in[2] != 'P' ||
	    c->sp_in[3] != 0 || c->sp_in[4] != 0 ||
	    c->sp_in[5] != SP_PROTO_REQ0 || c->sp_in[6] != 0 ||
	    c->sp_in[7] != 0) {
		STAT_ADD(s, handshake_failures, 1);
		conn_kill(s, c, "not an nng req0 peer (bad SP header)");
		return false;
	}
	c->state    = ST_OPEN;
	c->t_active = now_ms();
	hs_remove(s, c);
	return true;
}

static void
conn_start_sp(cs_srv *s, struct conn *c)
{
	static const uint8_t hdr[SP_HDR_LEN] = {0, 'S', 'P', 0, 0,
	    SP_PROTO_REP0, 0, 0};
	struct ofr *o;

	c->state = ST_SPHDR;
	if ((o = malloc(sizeof(*o) + SP_HDR_LEN)) == NULL) {
		conn_kill(s, c, "out of memory");
		return;
	}
	o->len = SP_HDR_LEN;
	o->off = 0;
	memcpy(o->data, hdr, SP_HDR_LEN);
	conn_queue_out(c, o);
}

/*
 * A TLS handshake failed.  A peer that hangs up is ordinary (debug); other
 * failures are logged, HS_LOG_LINES per interval, the rest counted into
 * the interval's summary line: a flood of bad handshakes cannot flood the
 * journal.
 */
static void
hs_failed(cs_srv *s, struct conn *c, int rv)
{
	const char *why = cs_tls_sess_error(c->tls);

	STAT_ADD(s, handshake_failures, 1);
	if (rv == CS_ECLOSED) {
		cs_log_debug("srv", "peer hung up during the TLS handshake "
		    "peer=%s", c->addr);
	} else if (s->log_hs_lines < HS_LOG_LINES) {
		s->log_hs_lines++;
		if (s->log_at == 0) {
			s->log_at = now_ms() + LOG_INTERVAL_MS;
		}
		cs_log_warn("srv", "TLS handshake failed peer=%s reason=\"%s\" "
		    "(%s)", c->addr, why, rv == CS_EPEERAUTH ? "the client "
		    "certificate was missing, not from the station CA, "
		    "expired or revoked" : "no common protocol or suite, or "
		    "not TLS");
	} else {
		s->log_hs++;
	}
	if (rv == CS_ECLOSED) {
		conn_kill(s, c, NULL);
		return;
	}
	/* The alert is with the kernel: let the peer read it. */
	cs_tls_sess_free(c->tls);
	c->tls    = NULL;
	c->state  = ST_LINGER;
	c->t_open = now_ms();
	(void)shutdown(c->fd, SHUT_WR);
	conn_update_events(s, c);
}

/* Read and drop what a refused peer still sends, until it hangs up. */
static void
conn_linger(cs_srv *s, struct conn *c)
{
	uint8_t buf[4096];

	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			return;
		}
		break;
	}
	conn_kill(s, c, NULL);
}

/* Move c on as far as its socket allows. */
static void
conn_progress(cs_srv *s, struct conn *c)
{
	int rv;

	if (c->state == ST_LINGER) {
		conn_linger(s, c);
		return;
	}
	if (c->state == ST_TLS) {
		rv = cs_tls_sess_handshake(c->tls);
		if (rv == CS_EAGAIN) {
			conn_update_events(s, c);
			return;
		}
		if (rv != CS_OK) {
			hs_failed(s, c, rv);
			return;
		}
		/*
		 * A new context (a CRL re-issued for a disabled station)
		 * came in while this handshake ran on the old one: its
		 * verdict is stale, and the name-based close could not see
		 * it yet.  The peer connects again and meets the new one.
		 */
		pthread_mutex_lock(&s->mtx);
		uint64_t gen = s->tls_gen;
		pthread_mutex_unlock(&s->mtx);
		if (gen != c->tls_gen) {
			conn_kill(s, c, NULL);
			return;
		}
		snprintf(c->tls_name, sizeof(c->tls_name), "%s",
		    cs_tls_sess_peer_name(c->tls));
		cs_log_debug("srv", "TLS up peer=%s name=%s version=%s "
		    "cipher=%s", c->addr, c->tls_name[0] ? c->tls_name : "-",
		    cs_tls_sess_version(c->tls), cs_tls_sess_cipher(c->tls));
		conn_start_sp(s, c);
		if (c->dead) {
			return;
		}
	}
	if ((rv = conn_flush(c)) != CS_OK) {
		conn_kill(s, c, rv == CS_ECLOSED ? NULL : "send failed");
		return;
	}
	if (c->state == ST_SPHDR && !conn_read_sp(s, c)) {
		return;
	}
	if (c->state == ST_OPEN && !conn_read_requests(s, c)) {
		return;
	}
	conn_update_events(s, c);
}

/* ------------------------------------------------------------------ */
/* Accepting                                                          */

/*
 * The interval's summary: refusals by cause and handshake failures that
 * were not logged one by one.  log_at is 0 while nothing is pending (the
 * next refusal is logged at once), else when the summary is due.
 */
static void
log_refusals(cs_srv *s, uint64_t now, bool force)
{
	bool said = false;

	if (!force && (s->log_at == 0 || now < s->log_at)) {
		return;
	}
	if (s->log_hs > 0) {
		cs_log_warn("srv", "TLS handshakes failed and not logged one by "
		    "one in the last %us: %llu", LOG_INTERVAL_MS / 1000,
		    (unsigned long long)s->log_hs);
		said = true;
	}
	s->log_hs       = 0;
	s->log_hs_lines = 0;
	if (s->log_total + s->log_source + s->log_fd > 0) {
		cs_log_warn("srv", "connections refused in the last %us: "
		    "total_cap=%llu (max_conns=%u) per_source_cap=%llu "
		    "(max_per_source=%u) out_of_descriptors=%llu open=%u",
		    LOG_INTERVAL_MS / 1000, (unsigned long long)s->log_total,
		    s->max_conns, (unsigned long long)s->log_source,
		    s->lim.max_per_source, (unsigned long long)s->log_fd,
		    s->nconns);
		said = true;
	}
	s->log_total = s->log_source = s->log_fd = 0;
	s->log_at = said ? now + LOG_INTERVAL_MS : 0;
}

static void
refuse(cs_srv *s, uint64_t *interval, uint64_t now)
{
	(*interval)++;
	if (s->log_at == 0) {
		/* The first refusal of a quiet spell is logged at once. */
		log_refusals(s, now, true);
	}
}

static void
accept_one(cs_srv *s, int fd, const struct sockaddr_storage *ss,
    uint64_t now)
{
	struct conn   *c;
	struct src    *e = NULL;
	cs_tls_server *tls;
	uint8_t        key[16];
	int            one    = 1;
	int            sndbuf = SNDBUF;

	if (s->nconns >= s->max_conns || s->stopping) {
		STAT_ADD(s, refused_total, 1);
		refuse(s, &s->log_total, now);
		close(fd);
		return;
	}
	if (!s->ipc) {
		src_key(ss, key);
		if ((e = src_find(s, key, true)) == NULL) {
			close(fd);
			return;
		}
		if (e->n >= s->lim.max_per_source) {
			STAT_ADD(s, refused_source, 1);
			refuse(s, &s->log_source, now);
			close(fd);
			return;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		/* A fixed send buffer (no autotuning to megabytes): what a
		 * peer that does not read holds in the kernel is bounded
		 * too, and its stall shows within send_timeout. */
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		    sizeof(sndbuf));
		/* A peer that vanishes (power, NAT) is noticed by TCP. */
		int idle = 60, intvl = 10, cnt = 3, uto = 30000;
		(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one,
		    sizeof(one));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle,
		    sizeof(idle));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
		    sizeof(intvl));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt,
		    sizeof(cnt));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto,
		    sizeof(uto));
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		if (e != NULL && e->n == 0) {
			e->n = 1;
			src_put(s, e);
		}
		close(fd);
		return;
	}
	c->fd = fd;
	c->t_open = now;
	c->peer.conn_id = ++s->next_id;
	c->peer.addr = c->addr;
	c->peer.tls_name = c->tls_name;
	if (s->ipc) {
		struct ucred cr;
		socklen_t    crlen = sizeof(cr);
		snprintf(c->addr, sizeof(c->addr), "ipc");
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0) {
			c->peer.has_cred = true;
			c->peer.uid = cr.uid;
			c->peer.gid = cr.gid;
			c->peer.pid = cr.pid;
		}
		c->state = ST_SPHDR;
	} else {
		char ip[INET6_ADDRSTRLEN] = "?";
		if (ss->ss_family == AF_INET) {
			const struct sockaddr_in *in = (const void *)ss;
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			snprintf(c->addr, sizeof(c->addr), "%s:%u", ip,
			    ntohs(in->sin_port));
		} else {
			const struct sockaddr_in6 *in6 = (const void *)ss;
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			snprintf(c->addr, sizeof(c->addr), "[%s]:%u", ip,
			    ntohs(in6->sin6_port));
		}
		pthread_mutex_lock(&s->mtx);
		tls        = cs_tls_server_hold(s->tls);
		c->tls_gen = s->tls_gen;
		pthread_mutex_unlock(&s->mtx);
		int rv = cs_tls_sess_new(&c->tls, tls, fd);
		cs_tls_server_release(tls);
		if (rv != CS_OK) {
			if (e->n == 0) {
				e->n = 1;
				src_put(s, e);
			}
			close(fd);
			free(c);
			return;
		}
		c->state = ST_TLS;
		c->src   = e;
		e->n++;
	}
	/*
	 * Connections still in their handshake have a cap of their own;
	 * when it is full the oldest of them makes room.  A real handshake
	 * takes milliseconds, so a flood of idle or slow ones cannot hold
	 * the port: it only pushes out its own.
	 */
	if (s->nhs >= s->max_hs && s->hs_head != NULL) {
		STAT_ADD(s, handshake_timeouts, 1);
		conn_kill(s, s->hs_head, NULL);
	}
	list_push(&s->conns, c);
	s->nconns++;
	hs_add(s, c);
	c->t_active = now;
	STAT_ADD(s, accepted, 1);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	c->events = EPOLLIN;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		conn_kill(s, c, "cannot watch the socket");
		return;
	}
	if (s->ipc) {
		conn_start_sp(s, c);
		if (!c->dead) {
			conn_progress(s, c);
		}
	}
}

static void
accept_ready(cs_srv *s)
{
	uint64_t now = now_ms();

	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t               sl = sizeof(ss);
		int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			accept_one(s, fd, &ss, now);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED) {
			continue;
		}
		if ((errno == EMFILE || errno == ENFILE) &&
		    s->reserve_fd >= 0) {
			/* Take the waiting connection off the queue with the
			 * reserve descriptor and close it: refused, not left
			 * to spin the loop. */
			close(s->reserve_fd);
			fd = accept(s->lfd, NULL, NULL);
			if (fd >= 0) {
				close(fd);
			}
			s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			STAT_ADD(s, refused_fd, 1);
			refuse(s, &s->log_fd, now);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* No reserve to spend: stop watching the listener a
			 * moment instead of spinning on it (sweep resumes). */
			STAT_ADD(s, refused_fd, 1);
			refuse(s, &s->log_fd, now);
			(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
			s->listen_on           = false;
			s->accept_paused_until = now + 100;
		}
		break; /* EAGAIN, or nothing better to do */
	}
}

/* ------------------------------------------------------------------ */
/* The loop                                                           */

/* ms from t to now, 0 when t is later (stamped after now was read). */
static uint64_t
since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

/*
 * Whether c's peer has acknowledged nothing of what its kernel holds for
 * it for send_timeout.  Replies that are small go into the socket buffer
 * for a long while before anything queues up here, so a peer that reads
 * nothing is seen in the kernel: the bytes handed to the socket less
 * those still in its send queue (SIOCOUTQ) are what the peer's TCP took.
 * One ioctl per connection and sweep, only for connections with bytes
 * out there.
 */
static bool
peer_stalled(const cs_srv *s, struct conn *c, uint64_t now)
{
	int      q = 0;
	uint64_t out;

	if (c->state != ST_OPEN || c->tls == NULL) {
		return false;
	}
	if (c->t_acked == 0) {
		c->t_acked = now; /* first look */
	}
	out = cs_tls_sess_bytes_out(c->tls);
	if (!c->outq && out == c->acked) {
		c->t_acked = now; /* nothing out, nothing due */
		return false;
	}
	if (ioctl(c->fd, SIOCOUTQ, &q) != 0 || q < 0 ||
	    (uint64_t)q > out) {
		return false;
	}
	c->outq = q > 0;
	if (out - (uint64_t)q != c->acked || q == 0) {
		c->acked   = out - (uint64_t)q;
		c->t_acked = now;
		return false;
	}
	return since(now, c->t_acked) >= s->lim.send_timeout_ms;
}

static void
sweep(cs_srv *s, uint64_t now)
{
	struct conn *c, *next;

	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == ST_LINGER) {
			if (since(now, c->t_open) >= LINGER_MS) {
				conn_kill(s, c, NULL);
			}
		} else if (c->state != ST_OPEN &&
		    since(now, c->t_open) >= s->lim.handshake_ms) {
			STAT_ADD(s, handshake_timeouts, 1);
			if (c->state == ST_SPHDR) {
				/* Past TLS (a certificate of ours) yet no
				 * protocol header: rare, and worth a line. */
				conn_kill(s, c, "TLS done but no SP header "
				    "within handshake_timeout");
			} else {
				cs_log_debug("srv", "handshake deadline passed "
				    "peer=%s after_ms=%u", c->addr,
				    s->lim.handshake_ms);
				conn_kill(s, c, NULL);
			}
		} else if ((c->out_head != NULL &&
		               since(now, c->t_progress) >=
		                   s->lim.send_timeout_ms) ||
		    peer_stalled(s, c, now)) {
			STAT_ADD(s, send_timeouts, 1);
			conn_kill(s, c, "replies not read within "
			    "send_timeout: a slow peer loses its connection");
		} else if (c->state == ST_OPEN && c->inflight == 0 &&
		    c->out_head == NULL &&
		    since(now, c->t_active) >= s->lim.idle_ms) {
			STAT_ADD(s, idle_timeouts, 1);
			conn_kill(s, c, NULL); /* the client reconnects */
		}
	}
	if (s->reserve_fd < 0) {
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	if (!s->listen_on && !s->stopping && now >= s->accept_paused_until) {
		struct epoll_event le = {.events = EPOLLIN, .data.ptr = &s->lfd};
		s->listen_on = epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &le) ==
		    0;
	}
	log_refusals(s, now, false);
}

/* Take finished jobs back: queue their replies, free what they held. */
static void
collect_done(cs_srv *s)
{
	struct job *j, *next;

	pthread_mutex_lock(&s->mtx);
	j = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->mtx);
	for (; j != NULL; j = next) {
		struct conn *c = j->c;
		next = j->next;
		if (j->req != NULL) {
			s->queued -= j->len;
			free(j->req);
		}
		c->inflight--;
		if (c->dead) {
			free(j->rsp);
			if (c->inflight == 0) {
				list_remove(&s->zombies, c);
				conn_free(c);
			}
		} else {
			if (j->rsp != NULL) {
				conn_queue_out(c, j->rsp);
			}
			conn_progress(s, c);
		}
		free(j);
	}
	/* Budget freed: let paused connections read again, oldest first
	 * would need a queue; all of them is fair enough and rare. */
	if (s->npaused_budget > 0 && s->queued < s->lim.max_queued / 2) {
		struct conn *c, *cn;
		for (c = s->conns; c != NULL; c = cn) {
			cn = c->next;
			if (c->paused_budget) {
				c->paused_budget = false;
				s->npaused_budget--;
				conn_progress(s, c);
			}
		}
	}
}

static void
do_commands(cs_srv *s)
{
	char     name[sizeof(s->kill_name)];
	uint64_t seq;

	pthread_mutex_lock(&s->mtx);
	seq = s->kill_seq;
	memcpy(name, s->kill_name, sizeof(name));
	pthread_mutex_unlock(&s->mtx);
	if (seq == s->kill_done) {
		return;
	}
	unsigned     n = 0;
	struct conn *c, *next;
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->tls_name[0] != '\0' && strcmp(c->tls_name, name) == 0) {
			conn_kill(s, c, "its certificate's holder was disabled");
			n++;
		}
	}
	pthread_mutex_lock(&s->mtx);
	s->kill_count = n;
	s->kill_done  = seq;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
}

static bool
drained(const cs_srv *s)
{
	for (const struct conn *c = s->conns; c != NULL; c = c->next) {
		if (c->inflight > 0 || c->out_head != NULL) {
			return false;
		}
	}
	return true;
}

static void *
loop_main(void *arg)
{
	cs_srv            *s = arg;
	struct epoll_event evs[64];

	for (;;) {
		int n = epoll_wait(s->epfd, evs, 64, SWEEP_MS);
		uint64_t now = now_ms();
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &s->lfd) {
				accept_ready(s);
			} else if (p == &s->evfd) {
				uint64_t v;
				ssize_t  r = read(s->evfd, &v, sizeof(v));
				(void)r;
			} else {
				struct conn *c = p;
				if (!c->dead) {
					/* Both directions gone (or an
					 * error): nothing can be delivered,
					 * in any state; epoll would report
					 * it again and again. */
					if (evs[i].events & (EPOLLERR |
					    EPOLLHUP)) {
						conn_kill(s, c, NULL);
						continue;
					}
					conn_progress(s, c);
				}
			}
		}
		collect_done(s);
		do_commands(s);
		now = now_ms();
		if (since(now, s->last_sweep) >= SWEEP_MS) {
			s->last_sweep = now;
			sweep(s, now);
		}
		pthread_mutex_lock(&s->mtx);
		bool     stopping = s->stopping;
		uint64_t stop_at  = s->stop_at;
		pthread_mutex_unlock(&s->mtx);
		if (stopping) {
			if (s->listen_on) {
				(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd,
				    NULL);
				s->listen_on = false;
			}
			if (drained(s) || now >= stop_at) {
				break;
			}
		}
	}
	while (s->conns != NULL) {
		conn_kill(s, s->conns, NULL);
	}
	cs_crypto_thread_end(); /* handshakes verified on this thread */
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Workers                                                            */

static struct ofr *
make_frame(const cs_srv *s, uint32_t reqid, const uint8_t *rsp, size_t len)
{
	size_t      hdr = (s->ipc ? 1 : 0) + 8;
	uint64_t    wire = (uint64_t)len + REQID_LEN;
	struct ofr *o;
	uint8_t    *p;

	if ((o = malloc(sizeof(*o) + hdr + REQID_LEN + len)) == NULL) {
		return NULL;
	}
	o->next = NULL;
	o->off  = 0;
	o->len  = hdr + REQID_LEN + len;
	p       = o->data;
	if (s->ipc) {
		*p++ = 1;
	}
	for (int i = 7; i >= 0; i--) {
		*p++ = (uint8_t)(wire >> (8 * i));
	}
	*p++ = (uint8_t)(reqid >> 24);
	*p++ = (uint8_t)(reqid >> 16);
	*p++ = (uint8_t)(reqid >> 8);
	*p++ = (uint8_t)reqid;
	if (len > 0) {
		memcpy(p, rsp, len);
	}
	return o;
}

static void *
worker_main(void *arg)
{
	cs_srv *s = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&s->qmtx);
		while (s->qhead == NULL && !s->qstop) {
			pthread_cond_wait(&s->qcv, &s->qmtx);
		}
		if ((j = s->qhead) == NULL) {
			pthread_mutex_unlock(&s->qmtx);
			break;
		}
		if ((s->qhead = j->next) == NULL) {
			s->qtail = NULL;
		}
		pthread_mutex_unlock(&s->qmtx);
		j->next = NULL;

		/* A connection that died while this waited has nobody to
		 * answer: skip the work. */
		if (!__atomic_load_n(&j->c->dead, __ATOMIC_ACQUIRE)) {
			uint8_t *rsp     = NULL;
			size_t   rsp_len = 0;
			s->handler(s->arg, &j->c->peer, j->req, j->len, &rsp,
			    &rsp_len);
			if (rsp != NULL) {
				j->rsp = make_frame(s, j->reqid, rsp, rsp_len);
				free(rsp);
			}
		}
		pthread_mutex_lock(&s->mtx);
		if (s->done_tail != NULL) {
			s->done_tail->next = j;
		} else {
			s->done_head = j;
		}
		s->done_tail = j;
		pthread_mutex_unlock(&s->mtx);
		wake(s);
	}
	cs_crypto_thread_end();
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

static int
listen_tcp(cs_srv *s, const char *hostport, int family)
{
	char             host[256];
	const char      *port;
	struct addrinfo  hints = {0}, *ai = NULL;
	int              one = 1;
	int              rc;

	/* host:port, [v6]:port, :port or *:port */
	if (hostport[0] == '[') {
		const char *end = strchr(hostport, ']');
		if (end == NULL || end[1] != ':' ||
		    (size_t)(end - hostport - 1) >= sizeof(host)) {
			return CS_EADDR;
		}
		memcpy(host, hostport + 1, (size_t)(end - hostport - 1));
		host[end - hostport - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(hostport, ':');
		if (colon == NULL ||
		    (size_t)(colon - hostport) >= sizeof(host)) {
			return CS_EADDR;
		}
		memcpy(host, hostport, (size_t)(colon - hostport));
		host[colon - hostport] = '\0';
		port = colon + 1;
	}
	if (*port == '\0' || strspn(port, "0123456789") != strlen(port)) {
		return CS_EADDR;
	}
	hints.ai_family   = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
	bool any = host[0] == '\0' || strcmp(host, "*") == 0;
	if ((rc = getaddrinfo(any ? NULL : host, port, &hints, &ai)) != 0) {
		cs_log_error("srv", "cannot resolve listen address host=%s "
		    "err=\"%s\"", host, gai_strerror(rc));
		return CS_EADDR;
	}
	s->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		freeaddrinfo(ai);
		return CS_EIO;
	}
	(void)setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(s->lfd, 512) != 0) {
		cs_log_error("srv", "cannot listen on %s err=\"%s\"", hostport,
		    strerror(errno));
		freeaddrinfo(ai);
		return CS_EADDR;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t               sl = sizeof(ss);
	if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) == 0) {
		s->port = ntohs(ss.ss_family == AF_INET
		    ? ((struct sockaddr_in *)&ss)->sin_port
		    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return CS_OK;
}

static int
listen_ipc(cs_srv *s, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int                fd;

	if (strlen(path) >= sizeof(sun.sun_path) || path[0] != '/') {
		cs_log_error("srv", "ipc path must be absolute and shorter "
		    "than %zu bytes path=%s", sizeof(sun.sun_path), path);
		return CS_EADDR;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/*
	 * A socket file left behind is replaced only when nobody answers on
	 * it: a running server's socket is never taken over.
	 */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0) {
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(fd);
			cs_log_error("srv", "another server answers on "
			    "path=%s", path);
			return CS_EADDR;
		}
		if (errno == ECONNREFUSED) {
			(void)unlink(path);
		}
		close(fd);
	}
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (s->lfd < 0) {
		return CS_EIO;
	}
	if (bind(s->lfd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(s->lfd, 64) != 0) {
		cs_log_error("srv", "cannot listen on path=%s err=\"%s\"", path,
		    strerror(errno));
		return CS_EADDR;
	}
	if ((s->ipc_path = strdup(path)) == NULL) {
		return CS_ENOMEM;
	}
	return CS_OK;
}

static void
limits_defaults(struct cs_srv_limits *l)
{
	if (l->handshake_ms == 0) {
		l->handshake_ms = 10000;
	}
	if (l->max_conns == 0) {
		l->max_conns = 1024;
	}
	if (l->max_per_source == 0) {
		l->max_per_source = 64;
	}
	if (l->max_inflight == 0) {
		l->max_inflight = 8;
	}
	if (l->send_timeout_ms == 0) {
		l->send_timeout_ms = 5000;
	}
	if (l->max_msg == 0) {
		l->max_msg = 64u * 1024u;
	}
	if (l->max_queued == 0) {
		l->max_queued = 32u * 1024u * 1024u;
	}
	if (l->max_handshaking == 0) {
		l->max_handshaking = 256;
	}
	if (l->idle_ms == 0) {
		l->idle_ms = 600000;
	}
}

int
cs_srv_open(cs_srv **out, const struct cs_srv_opts *o)
{
	cs_srv       *s;
	struct rlimit rl;
	int           rv;

	*out = NULL;
	if (o == NULL || o->url == NULL || o->handler == NULL) {
		return CS_EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return CS_ENOMEM;
	}
	s->lfd = s->epfd = s->evfd = s->reserve_fd = -1;
	s->handler      = o->handler;
	s->arg          = o->arg;
	s->on_close     = o->on_close;
	s->on_close_arg = o->on_close_arg;
	s->lim     = o->limits;
	limits_defaults(&s->lim);
	s->nworkers = o->workers ? o->workers : 8;
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_mutex_init(&s->qmtx, NULL);
	pthread_cond_init(&s->qcv, NULL);

	if (strncmp(o->url, "ipc://", 6) == 0) {
		s->ipc = true;
		rv = listen_ipc(s, o->url + 6);
	} else if (o->tls == NULL) {
		rv = CS_EINVAL;
	} else if (strncmp(o->url, "tls+tcp://", 10) == 0) {
		rv = listen_tcp(s, o->url + 10, AF_UNSPEC);
	} else if (strncmp(o->url, "tls+tcp4://", 11) == 0) {
		rv = listen_tcp(s, o->url + 11, AF_INET);
	} else if (strncmp(o->url, "tls+tcp6://", 11) == 0) {
		rv = listen_tcp(s, o->url + 11, AF_INET6);
	} else {
		rv = CS_EADDR;
	}
	if (rv != CS_OK) {
		goto fail;
	}
	s->tls = cs_tls_server_hold(o->tls);

	/* Connections never take the descriptors everything else needs. */
	s->max_conns = s->lim.max_conns;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t room = rl.rlim_cur > 2 * FD_RESERVE
		    ? rl.rlim_cur - FD_RESERVE : rl.rlim_cur / 2;
		if (room < s->max_conns) {
			cs_log_warn("srv", "connection cap lowered to fit the "
			    "descriptor limit max_conns=%u nofile=%llu "
			    "(raise LimitNOFILE= to allow more)",
			    (unsigned)room, (unsigned long long)rl.rlim_cur);
			s->max_conns = (unsigned)room;
		}
	}
	s->stats.max_conns = s->max_conns;
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rv = CS_EIO;
		goto fail;
	}
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = &s->lfd};
	struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &s->evfd};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &le) != 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ee) != 0) {
		rv = CS_EIO;
		goto fail;
	}
	s->listen_on = true;
	s->max_hs    = s->lim.max_handshaking < s->max_conns
	    ? s->lim.max_handshaking : s->max_conns;
	if ((s->workers = calloc(s->nworkers, sizeof(*s->workers))) == NULL) {
		rv = CS_ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < s->nworkers; i++) {
		if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) {
			rv = CS_ENOMEM;
			goto fail;
		}
		s->workers_started++;
	}
	if (pthread_create(&s->loop, NULL, loop_main, s) != 0) {
		rv = CS_ENOMEM;
		goto fail;
	}
	s->loop_started = true;
	*out = s;
	return CS_OK;
fail:
	cs_srv_close(s, 0);
	return rv;
}

int
cs_srv_port(const cs_srv *s)
{
	return s->ipc ? 0 : s->port;
}

void
cs_srv_set_tls(cs_srv *s, cs_tls_server *tls)
{
	cs_tls_server *old;

	if (s == NULL || s->ipc || tls == NULL) {
		return;
	}
	pthread_mutex_lock(&s->mtx);
	old    = s->tls;
	s->tls = cs_tls_server_hold(tls);
	s->tls_gen++;
	pthread_mutex_unlock(&s->mtx);
	cs_tls_server_release(old);
}

unsigned
cs_srv_close_peer_name(cs_srv *s, const char *name)
{
	struct timespec until;
	unsigned        n = 0;
	uint64_t        seq;

	if (s == NULL || name == NULL || name[0] == '\0' ||
	    strlen(name) >= sizeof(s->kill_name)) {
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&s->mtx);
	/* One request at a time: wait for the loop to take the last one. */
	while (s->kill_done != s->kill_seq) {
		if (pthread_cond_timedwait(&s->cv, &s->mtx, &until) != 0) {
			pthread_mutex_unlock(&s->mtx);
			return 0;
		}
	}
	snprintf(s->kill_name, sizeof(s->kill_name), "%s", name);
	seq = ++s->kill_seq;
	pthread_mutex_unlock(&s->mtx);
	wake(s);
	pthread_mutex_lock(&s->mtx);
	while (s->kill_done < seq) {
		if (pthread_cond_timedwait(&s->cv, &s->mtx, &until) != 0) {
			break;
		}
	}
	if (s->kill_done >= seq) {
		n = s->kill_count;
	}
	pthread_mutex_unlock(&s->mtx);
	return n;
}

void
cs_srv_stats(cs_srv *s, struct cs_srv_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (s == NULL) {
		return;
	}
	out->accepted = __atomic_load_n(&s->stats.accepted, __ATOMIC_RELAXED);
	out->refused_total =
	    __atomic_load_n(&s->stats.refused_total, __ATOMIC_RELAXED);
	out->refused_source =
	    __atomic_load_n(&s->stats.refused_source, __ATOMIC_RELAXED);
	out->refused_fd =
	    __atomic_load_n(&s->stats.refused_fd, __ATOMIC_RELAXED);
	out->handshake_timeouts =
	    __atomic_load_n(&s->stats.handshake_timeouts, __ATOMIC_RELAXED);
	out->handshake_failures =
	    __atomic_load_n(&s->stats.handshake_failures, __ATOMIC_RELAXED);
	out->send_timeouts =
	    __atomic_load_n(&s->stats.send_timeouts, __ATOMIC_RELAXED);
	out->protocol_errors =
	    __atomic_load_n(&s->stats.protocol_errors, __ATOMIC_RELAXED);
	out->requests = __atomic_load_n(&s->stats.requests, __ATOMIC_RELAXED);
	out->idle_timeouts =
	    __atomic_load_n(&s->stats.idle_timeouts, __ATOMIC_RELAXED);
	/* Read without the loop's help: a snapshot, exact enough. */
	out->open      = __atomic_load_n(&s->nconns, __ATOMIC_RELAXED);
	out->max_conns = s->max_conns;
}

void
cs_srv_close(cs_srv *s, unsigned drain_ms)
{
	if (s == NULL) {
		return;
	}
	if (s->loop_started) {
		pthread_mutex_lock(&s->mtx);
		s->stopping = true;
		s->stop_at  = now_ms() + drain_ms;
		pthread_mutex_unlock(&s->mtx);
		wake(s);
		pthread_join(s->loop, NULL);
	}
	pthread_mutex_lock(&s->qmtx);
	s->qstop = true;
	pthread_cond_broadcast(&s->qcv);
	pthread_mutex_unlock(&s->qmtx);
	for (unsigned i = 0; i < s->workers_started; i++) {
		pthread_join(s->workers[i], NULL);
	}
	/* Every job is in the done list now (workers drained the queue,
	 * skipping dead connections' work): release them and the zombies. */
	collect_done(s);
	if (s->lfd >= 0) {
		close(s->lfd);
	}
	if (s->ipc_path != NULL) {
		(void)unlink(s->ipc_path);
		free(s->ipc_path);
	}
	for (unsigned b = 0; b < SRC_BUCKETS; b++) {
		while (s->srcs[b] != NULL) {
			struct src *e = s->srcs[b];
			s->srcs[b]    = e->next;
			free(e);
		}
	}
	if (s->epfd >= 0) {
		close(s->epfd);
	}
	if (s->evfd >= 0) {
		close(s->evfd);
	}
	if (s->reserve_fd >= 0) {
		close(s->reserve_fd);
	}
	cs_tls_server_release(s->tls);
	pthread_mutex_destroy(&s->mtx);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->qmtx);
	pthread_cond_destroy(&s->qcv);
	free(s->workers);
	free(s);
}
