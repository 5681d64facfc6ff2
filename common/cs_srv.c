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
 *
 * This file holds the event loop, the workers and the set-up; the
 * connections themselves (accepting, reading, writing, refusing) are in
 * cs_srv_conn.c, and what both share in cs_srv_impl.h.
 */
#include "cs_srv.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_log.h"
#include "cs_srv_impl.h"

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

static void
wake(cs_srv *s)
{
	uint64_t one = 1;
	ssize_t  n   = write(s->evfd, &one, sizeof(one));
	(void)n; /* a full counter already wakes the loop */
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
				srv_conn_kill(s, c, NULL);
			}
		} else if (c->state != ST_OPEN &&
		    since(now, c->t_open) >= s->lim.handshake_ms) {
			STAT_ADD(s, handshake_timeouts, 1);
			if (c->state == ST_SPHDR) {
				/* Past TLS (a certificate of ours) yet no
				 * protocol header: rare, and worth a line. */
				srv_conn_kill(s, c, "TLS done but no SP "
				    "header within handshake_timeout");
			} else {
				cs_log_debug("srv", "handshake deadline passed "
				    "peer=%s after_ms=%u", c->addr,
				    s->lim.handshake_ms);
				srv_conn_kill(s, c, NULL);
			}
		} else if ((c->out_head != NULL &&
		               since(now, c->t_progress) >=
		                   s->lim.send_timeout_ms) ||
		    peer_stalled(s, c, now)) {
			STAT_ADD(s, send_timeouts, 1);
			srv_conn_kill(s, c, "replies not read within "
			    "send_timeout: a slow peer loses its connection");
		} else if (c->state == ST_OPEN && c->inflight == 0 &&
		    c->out_head == NULL &&
		    since(now, c->t_active) >= s->lim.idle_ms) {
			STAT_ADD(s, idle_timeouts, 1);
			srv_conn_kill(s, c, NULL); /* the client reconnects */
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
	srv_log_refusals(s, now, false);
}

/*
 * Free the connections killed since the last call that no job holds.
 * Called only between epoll batches: a batch may hold events of a
 * connection killed while the batch was handled (the oldest handshake
 * evicted by an accept, say), and those must still find its struct.
 *
 * on_close is called here too, once the connection's last request has
 * finished, never while a handler may still run for it: a handler that
 * was already past its check of c->dead (a Hello, say) would otherwise
 * store state for a connection that the callback had just forgotten, and
 * nothing would ever forget it again.
 */
static void
reap(cs_srv *s)
{
	struct conn *c, *next;

	for (c = s->zombies; c != NULL; c = next) {
		next = c->next;
		if (c->inflight == 0) {
			if (c->state == ST_OPEN && s->on_close != NULL) {
				s->on_close(s->on_close_arg,
				    c->peer.conn_id);
			}
			srv_list_remove(&s->zombies, c);
			srv_conn_free(c);
		}
	}
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
			free(j->rsp); /* c itself goes in reap() */
		} else {
			if (j->rsp != NULL) {
				srv_conn_queue_out(c, j->rsp);
			}
			srv_conn_progress(s, c);
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
				srv_conn_progress(s, c);
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
			srv_conn_kill(s, c, "its certificate's holder was disabled");
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
				srv_accept_ready(s);
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
						srv_conn_kill(s, c, NULL);
						continue;
					}
					srv_conn_progress(s, c);
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
		reap(s);
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
		srv_conn_kill(s, s->conns, NULL);
	}
	reap(s);
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
	if (l->max_per_name == 0) {
		l->max_per_name = 64;
	}
	if (l->fd_reserve == 0) {
		l->fd_reserve = FD_RESERVE;
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
		rlim_t keep = s->lim.fd_reserve;
		rlim_t room = rl.rlim_cur > 2 * keep ? rl.rlim_cur - keep
		                                      : rl.rlim_cur / 2;
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
	out->refused_name =
	    __atomic_load_n(&s->stats.refused_name, __ATOMIC_RELAXED);
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
	reap(s);
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
