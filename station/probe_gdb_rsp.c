/*
 * probe_gdb_rsp.c - the GDB probe's wire: GDB Remote Serial Protocol
 * packets ('$payload#cs', '+'/'-' acks, '}' escapes, '*' run-length
 * encoding) over a TCP or Unix socket, with a deadline on every byte.
 * probe_gdb.c builds the probe operations on it; split from there so the
 * framing, which must not trust the peer, can be read on its own.
 */
#include "probe_gdb_impl.h"

#include "cs_err.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

uint64_t
rsp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
rsp_hexval(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

const char rsp_hexdig[] = "0123456789abcdef";

/* The connection is unusable from now on. */
int
rsp_lost(probe *p, struct gdb_probe *g, int rv, const char *what)
{
	g->dead = true;
	if (rv == CS_ECLOSED) {
		return probe_fail(p, rv, "GDB server closed the connection "
		    "during %s", what);
	}
	return rv;
}

/* One byte from the peer before deadline. */
static int
rsp_getc(probe *p, struct gdb_probe *g, uint64_t deadline,
    const char *what, int *c)
{
	while (g->in_pos == g->in_len) {
		struct pollfd pfd = {.fd = g->fd, .events = POLLIN};
		uint64_t      now = rsp_now_ms();
		ssize_t       n;
		int           r;

		if (now >= deadline) {
			return probe_fail(p, CS_ETIMEDOUT, "GDB server did not "
			    "answer %s in time", what);
		}
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			return rsp_lost(p, g, probe_fail(p, CS_ECLOSED,
			    "poll: %s", strerror(errno)), what);
		}
		if (r == 0) {
			continue;
		}
		n = recv(g->fd, g->in, sizeof(g->in), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			continue;
		}
		if (n <= 0) {
			return rsp_lost(p, g, CS_ECLOSED, what);
		}
		g->in_pos = 0;
		g->in_len = (size_t)n;
	}
	*c = g->in[g->in_pos++];
	return CS_OK;
}

int
rsp_send_raw(probe *p, struct gdb_probe *g, const void *buf, size_t len,
    uint64_t deadline, const char *what)
{
	const char *b = buf;

	while (len > 0) {
		struct pollfd pfd = {.fd = g->fd, .events = POLLOUT};
		uint64_t      now = rsp_now_ms();
		ssize_t       n;

		if (now >= deadline) {
			return probe_fail(p, CS_ETIMEDOUT, "GDB server does not "
			    "take %s in time", what);
		}
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0) {
			continue;
		}
		n = send(g->fd, b, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			continue;
		}
		if (n <= 0) {
			return rsp_lost(p, g, CS_ECLOSED, what);
		}
		b += n;
		len -= (size_t)n;
	}
	return CS_OK;
}

/* Send payload (already escaped where needed) as one packet and wait for
 * its ack, resending on '-'. */
int
rsp_send(probe *p, struct gdb_probe *g, const char *payload, size_t len,
    const char *what)
{
	uint64_t deadline = rsp_now_ms() + p->timeout_ms;
	uint8_t  sum      = 0;
	int      rv, c;

	if (len > g->limit) {
		return probe_fail(p, CS_EINTERNAL, "packet for %s longer than "
		    "PacketSize", what);
	}
	g->out[0] = '$';
	memcpy(g->out + 1, payload, len);
	for (size_t i = 0; i < len; i++) {
		sum = (uint8_t)(sum + (uint8_t)payload[i]);
	}
	g->out[len + 1] = '#';
	g->out[len + 2] = rsp_hexdig[sum >> 4];
	g->out[len + 3] = rsp_hexdig[sum & 15];
	for (int attempt = 0; attempt <= RSP_RETRIES; attempt++) {
		if ((rv = rsp_send_raw(p, g, g->out, len + 4, deadline,
		    what)) != CS_OK) {
			return rv;
		}
		if (g->noack) {
			return CS_OK;
		}
		do {
			if ((rv = rsp_getc(p, g, deadline, what, &c)) !=
			    CS_OK) {
				return rv;
			}
		} while (c != '+' && c != '-');
		if (c == '+') {
			return CS_OK;
		}
	}
	return rsp_lost(p, g, probe_fail(p, CS_EPROTO, "GDB server rejected "
	    "%s %d times (checksum errors on the line)", what,
	    RSP_RETRIES + 1), what);
}

/* Undo '}' escapes and '*' run-length encoding of raw[0..n) into pkt. */
static int
rsp_decode(probe *p, struct gdb_probe *g, size_t n, const char *what)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = g->raw[i];

		if (c == '}') {
			if (++i == n) {
				goto bad;
			}
			c = (char)(g->raw[i] ^ 0x20);
		} else if (c == '*') {
			size_t rep;

			/* "x*N": N - 29 more copies of x; N is printable. */
			if (o == 0 || ++i == n || g->raw[i] < 29 + 3 ||
			    g->raw[i] > 126) {
				goto bad;
			}
			rep = (size_t)(g->raw[i] - 29);
			if (rep > g->limit - o) {
				goto big;
			}
			memset(g->pkt + o, g->pkt[o - 1], rep);
			o += rep;
			continue;
		}
		if (o == g->limit) {
			goto big;
		}
		g->pkt[o++] = c;
	}
	g->pkt[o]  = '\0';
	g->pkt_len = o;
	return CS_OK;
bad:
	return rsp_lost(p, g, probe_fail(p, CS_EPROTO, "GDB server's reply "
	    "to %s has a broken escape or repeat count", what), what);
big:
	return rsp_lost(p, g, probe_fail(p, CS_EPROTO, "GDB server's reply "
	    "to %s expands beyond PacketSize (%zu)", what, g->limit), what);
}

/* Receive one packet into pkt (NAK and retry on a bad checksum). */
int
rsp_recv_until(probe *p, struct gdb_probe *g, uint64_t deadline,
    const char *what)
{
	size_t n;
	int    rv, c, h, l;

	for (int attempt = 0;; attempt++) {
		uint8_t sum = 0;

		n = 0;
		do {
			if ((rv = rsp_getc(p, g, deadline, what, &c)) !=
			    CS_OK) {
				return rv;
			}
		} while (c != '$');
		for (;;) {
			if ((rv = rsp_getc(p, g, deadline, what, &c)) !=
			    CS_OK) {
				return rv;
			}
			if (c == '#') {
				break;
			}
			if (n == g->limit) {
				return rsp_lost(p, g, probe_fail(p, CS_EPROTO,
				    "GDB server's reply to %s is longer than "
				    "PacketSize (%zu)", what, g->limit), what);
			}
			sum        = (uint8_t)(sum + c);
			g->raw[n++] = (char)c;
		}
		if ((rv = rsp_getc(p, g, deadline, what, &h)) != CS_OK ||
		    (rv = rsp_getc(p, g, deadline, what, &l)) != CS_OK) {
			return rv;
		}
		if (rsp_hexval(h) < 0 || rsp_hexval(l) < 0) {
			return rsp_lost(p, g, probe_fail(p, CS_EPROTO,
			    "GDB server's reply to %s has a malformed "
			    "checksum", what), what);
		}
		if ((uint8_t)(rsp_hexval(h) << 4 | rsp_hexval(l)) == sum) {
			break;
		}
		if (g->noack || attempt == RSP_RETRIES) {
			return rsp_lost(p, g, probe_fail(p, CS_EPROTO,
			    "GDB server's reply to %s has a bad checksum%s",
			    what, g->noack ? " (no-ack mode)" : " again"),
			    what);
		}
		if ((rv = rsp_send_raw(p, g, "-", 1, deadline, what)) !=
		    CS_OK) {
			return rv;
		}
	}
	/* The packet is good even if its ack cannot be sent: QEMU sends
	 * W (semihosting exit) and closes at once.  A lost connection shows
	 * up as CS_ECLOSED on the next call (dead is set). */
	if (!g->noack &&
	    (rv = rsp_send_raw(p, g, "+", 1, deadline, what)) != CS_OK &&
	    rv != CS_ECLOSED) {
		return rv;
	}
	p->err[0] = '\0';
	return rsp_decode(p, g, n, what);
}

int
rsp_recv(probe *p, struct gdb_probe *g, const char *what)
{
	return rsp_recv_until(p, g, rsp_now_ms() + p->timeout_ms, what);
}

/* Send a NUL-terminated command and receive its reply. */
int
rsp_cmd(probe *p, struct gdb_probe *g, const char *cmd, const char *what)
{
	int rv;

	if ((rv = rsp_send(p, g, cmd, strlen(cmd), what)) != CS_OK) {
		return rv;
	}
	return rsp_recv(p, g, what);
}

/* pkt is "Exx": the target refused. */
bool
rsp_is_error(const struct gdb_probe *g)
{
	return g->pkt_len == 3 && g->pkt[0] == 'E' &&
	    rsp_hexval(g->pkt[1]) >= 0 && rsp_hexval(g->pkt[2]) >= 0;
}

/* The reply must be "OK". */
int
rsp_want_ok(probe *p, struct gdb_probe *g, const char *what, uint32_t addr)
{
	if (g->pkt_len == 2 && memcmp(g->pkt, "OK", 2) == 0) {
		return CS_OK;
	}
	if (rsp_is_error(g)) {
		return probe_fail(p, CS_EIO, "%s at 0x%08x failed: GDB server "
		    "answered %s", what, addr, g->pkt);
	}
	if (g->pkt_len == 0) {
		return probe_fail(p, CS_EPROTO, "GDB server does not support "
		    "%s", what);
	}
	return probe_fail(p, CS_EPROTO, "GDB server answered %s with "
	    "'%.32s' instead of OK", what, g->pkt);
}

int
rsp_alive(probe *p, struct gdb_probe *g)
{
	if (g->dead) {
		return probe_fail(p, CS_ECLOSED, "the connection to the GDB "
		    "server is gone (%s)", p->err[0] != '\0' ? "see the earlier "
		    "error" : "the program exited");
	}
	return CS_OK;
}

/* ---------------------------------------------------------------- */
/* Connecting. */

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

/* Wait for a non-blocking connect to finish; 0 or an errno value. */
static int
wait_connect(int fd, unsigned timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int           e   = 0;
	socklen_t     el  = sizeof(e);
	int           r;

	do {
		r = poll(&pfd, 1, (int)timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0) {
		return ETIMEDOUT;
	}
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0) {
		return errno;
	}
	return e;
}

int
rsp_connect_tcp(probe *p, struct gdb_probe *g, const char *where)
{
	char             host[256], *port;
	struct addrinfo  hints, *res = NULL, *ai;
	int              e = 0, one = 1;

	if (snprintf(host, sizeof(host), "%s", where) >= (int)sizeof(host) ||
	    (port = strrchr(host, ':')) == NULL || port == host ||
	    port[1] == '\0') {
		return probe_fail(p, CS_EADDR, "gdb://%s: expected host:port",
		    where);
	}
	*port++ = '\0';
	if (host[0] == '[' && port[-2] == ']') {
		port[-2] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family   = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		return probe_fail(p, CS_EADDR, "gdb://%s: %s", where,
		    gai_strerror(e));
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		g->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (g->fd < 0) {
			e = errno;
			continue;
		}
		if (set_nonblock(g->fd) == 0 &&
		    (connect(g->fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS &&
		    (e = wait_connect(g->fd, p->timeout_ms)) == 0))) {
			break;
		}
		if (e == 0) {
			e = errno;
		}
		close(g->fd);
		g->fd = -1;
	}
	freeaddrinfo(res);
	if (g->fd < 0) {
		return probe_fail(p, e == ETIMEDOUT ? CS_ETIMEDOUT : CS_EUNAVAIL,
		    "cannot connect to the GDB server at %s: %s", where,
		    strerror(e));
	}
	/* Every exchange is a small request and a small answer: without
	 * this, Nagle + delayed ACK cost ~40 ms per round trip. */
	setsockopt(g->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return CS_OK;
}

int
rsp_connect_unix(probe *p, struct gdb_probe *g, const char *path)
{
	struct sockaddr_un sa;
	int                e;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (path[0] != '/' || strlen(path) >= sizeof(sa.sun_path)) {
		return probe_fail(p, CS_EADDR, "gdb+unix://%s: expected an "
		    "absolute socket path shorter than %zu bytes", path,
		    sizeof(sa.sun_path));
	}
	memcpy(sa.sun_path, path, strlen(path));
	/* Non-blocking before connect: a listener with a full backlog must
	 * not hold us past the probe's timeout. */
	g->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g->fd >= 0 && set_nonblock(g->fd) == 0) {
		/* A Unix listener with a full backlog answers EAGAIN at
		 * once (nothing is in progress), and a server that bound
		 * its socket but does not listen yet (QEMU starting)
		 * ECONNREFUSED: try again until the timeout. */
		for (unsigned waited = 0;; waited += 10) {
			if (connect(g->fd, (struct sockaddr *)&sa,
			        sizeof(sa)) == 0) {
				return CS_OK;
			}
			e = errno;
			if (e == EINPROGRESS) {
				if ((e = wait_connect(g->fd, p->timeout_ms)) ==
				    0) {
					return CS_OK;
				}
				break;
			}
			if ((e != EAGAIN && e != ECONNREFUSED) ||
			    waited >= p->timeout_ms) {
				e = e == EAGAIN ? ETIMEDOUT : e;
				break;
			}
			usleep(10000);
			if (e == ECONNREFUSED) {
				/* A fresh socket for the next try. */
				close(g->fd);
				g->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
				    0);
				if (g->fd < 0 || set_nonblock(g->fd) != 0) {
					e = errno;
					break;
				}
			}
		}
	} else {
		e = errno;
	}
	if (g->fd >= 0) {
		close(g->fd);
		g->fd = -1;
	}
	return probe_fail(p, CS_EUNAVAIL, "cannot connect to the GDB server "
	    "at %s: %s", path, strerror(e));
}

/* ---------------------------------------------------------------- */
