/*
 * cs_srv_conn.c - the server's connections, from accept to close: the
 * per-source counts, reading requests, writing replies, the SP header,
 * TLS handshakes and refusals (cs_srv.c holds the loop that drives them,
 * the workers and the set-up; split out of it to keep each file one
 * concern).  Everything here runs on the loop thread.
 */
#include "cs_srv_impl.h"
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

void
srv_list_remove(struct conn **head, struct conn *c)
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

void
srv_conn_free(struct conn *c)
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
 * go at once; the struct stays on the zombie list until the loop reaps it
 * (srv_reap): events of the batch being handled may still point at it,
 * and jobs of it may be queued or running.
 */
void
srv_conn_kill(cs_srv *s, struct conn *c, const char *why)
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
	srv_list_remove(&s->conns, c);
	s->nconns--;
	list_push(&s->zombies, c);
}

void
srv_conn_queue_out(struct conn *c, struct ofr *o)
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
		srv_conn_kill(s, c, "bad message type");
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
		srv_conn_kill(s, c, len - REQID_LEN > s->lim.max_msg +
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
			srv_conn_kill(s, c, rv == CS_ECLOSED ? NULL :
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
			srv_conn_kill(s, c, NULL);
			return false;
		}
		c->sp_got += n;
	}
	if (c->sp_in[0] != 0 || c->sp_in[1] != 'S' || c->sp_in[2] != 'P' ||
	    c->sp_in[3] != 0 || c->sp_in[4] != 0 ||
	    c->sp_in[5] != SP_PROTO_REQ0 || c->sp_in[6] != 0 ||
	    c->sp_in[7] != 0) {
		STAT_ADD(s, handshake_failures, 1);
		srv_conn_kill(s, c, "not an nng req0 peer (bad SP header)");
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
		srv_conn_kill(s, c, "out of memory");
		return;
	}
	o->len = SP_HDR_LEN;
	o->off = 0;
	memcpy(o->data, hdr, SP_HDR_LEN);
	srv_conn_queue_out(c, o);
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
		srv_conn_kill(s, c, NULL);
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

static void refuse(cs_srv *s, uint64_t *interval, uint64_t now);

/*
 * Whether c, just past TLS, makes its certificate's name hold more than
 * max_per_name connections: one station (whose certificate is valid, or
 * one stolen from it) must not take every slot.  A scan of the open
 * connections, once per handshake: cheap next to the handshake itself.
 */
static bool
over_name_cap(cs_srv *s, const struct conn *c)
{
	unsigned n = 0;

	if (c->tls_name[0] == '\0') {
		return false;
	}
	for (const struct conn *o = s->conns; o != NULL; o = o->next) {
		if (strcmp(o->tls_name, c->tls_name) == 0 &&
		    ++n > s->lim.max_per_name) {
			return true;
		}
	}
	return false;
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
	srv_conn_kill(s, c, NULL);
}

/* Move c on as far as its socket allows. */
void
srv_conn_progress(cs_srv *s, struct conn *c)
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
			srv_conn_kill(s, c, NULL);
			return;
		}
		snprintf(c->tls_name, sizeof(c->tls_name), "%s",
		    cs_tls_sess_peer_name(c->tls));
		if (over_name_cap(s, c)) {
			STAT_ADD(s, refused_name, 1);
			refuse(s, &s->log_name, now_ms());
			srv_conn_kill(s, c, NULL);
			return;
		}
		cs_log_debug("srv", "TLS up peer=%s name=%s version=%s "
		    "cipher=%s", c->addr, c->tls_name[0] ? c->tls_name : "-",
		    cs_tls_sess_version(c->tls), cs_tls_sess_cipher(c->tls));
		conn_start_sp(s, c);
		if (c->dead) {
			return;
		}
	}
	if ((rv = conn_flush(c)) != CS_OK) {
		srv_conn_kill(s, c, rv == CS_ECLOSED ? NULL : "send failed");
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
void
srv_log_refusals(cs_srv *s, uint64_t now, bool force)
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
	if (s->log_total + s->log_source + s->log_fd + s->log_name > 0) {
		cs_log_warn("srv", "connections refused in the last %us: "
		    "total_cap=%llu (max_conns=%u) per_source_cap=%llu "
		    "(max_per_source=%u) per_station_cap=%llu "
		    "(max_per_name=%u) out_of_descriptors=%llu open=%u",
		    LOG_INTERVAL_MS / 1000, (unsigned long long)s->log_total,
		    s->max_conns, (unsigned long long)s->log_source,
		    s->lim.max_per_source, (unsigned long long)s->log_name,
		    s->lim.max_per_name, (unsigned long long)s->log_fd,
		    s->nconns);
		said = true;
	}
	s->log_total = s->log_source = s->log_fd = s->log_name = 0;
	s->log_at = said ? now + LOG_INTERVAL_MS : 0;
}

static void
refuse(cs_srv *s, uint64_t *interval, uint64_t now)
{
	(*interval)++;
	if (s->log_at == 0) {
		/* The first refusal of a quiet spell is logged at once. */
		srv_log_refusals(s, now, true);
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
		srv_conn_kill(s, s->hs_head, NULL);
	}
	list_push(&s->conns, c);
	s->nconns++;
	hs_add(s, c);
	c->t_active = now;
	STAT_ADD(s, accepted, 1);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	c->events = EPOLLIN;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		srv_conn_kill(s, c, "cannot watch the socket");
		return;
	}
	if (s->ipc) {
		conn_start_sp(s, c);
		if (!c->dead) {
			srv_conn_progress(s, c);
		}
	}
}

void
srv_accept_ready(cs_srv *s)
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
