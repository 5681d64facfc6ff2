/*
 * probe_gdb.c - "gdb://host:port" and "gdb+unix:///path" probes: a client
 * of the GDB Remote Serial Protocol, written from GDB's manual ("Remote
 * Protocol"), the way production tools talk to OpenOCD, SEGGER's J-Link
 * GDB Server, pyOCD, Black Magic Probe and QEMU's gdbstub.
 *
 * What it speaks: '$payload#cs' packets with '+'/'-' acks (resend on '-'
 * up to RSP_RETRIES times; QStartNoAckMode when offered), '}' escapes and
 * '*' run-length encoding in replies, qSupported (PacketSize, no-ack,
 * qXfer:memory-map:read), m/M memory access chunked to PacketSize, X
 * binary writes when a zero-length X probe says OK, vFlashErase/Write/Done
 * when the memory map names flash, qRcmd monitor commands for reset, and
 * c + stop replies (S, T, W, X) with a 0x03 interrupt on timeout.  Per
 * server notes: docs/probes.md.
 *
 * The peer is not trusted: every reply is bounded by PacketSize before it
 * is stored, hex is checked digit by digit, and a peer that breaks the
 * framing mid-packet loses the connection (we cannot resynchronise
 * safely in the middle of a flash write).
 */
#include "probe_impl.h"

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

#define RSP_PKT_DEFAULT 4096u  /* payload limit before qSupported */
#define RSP_PKT_MIN     64u
#define RSP_PKT_MAX     65536u /* largest PacketSize we accept */
#define RSP_RETRIES     3      /* resends after a '-' */
#define RSP_MAP_MAX     65536u /* memory-map XML */
#define RSP_REGIONS     16u
#define RSP_OUTPUT_MAX  1024   /* 'O' console packets per command */
#define RSP_CMD_OVERHEAD 32u   /* "M" / "X" / "vFlashWrite:" + addr, len */

enum rsp_server { SRV_QEMU, SRV_OPENOCD, SRV_JLINK, SRV_PYOCD, SRV_BMP };

static const char *const server_names[] = {"qemu", "openocd", "jlink",
    "pyocd", "bmp"};

/* The monitor command that resets and halts, per server (NULL: bmp has
 * none; it restarts with vRun, see docs/probes.md). */
static const char *const server_reset[] = {"system_reset", "reset halt",
    "reset", "reset halt", NULL};

struct rsp_region {
	uint32_t start, len, blocksize;
};

struct gdb_probe {
	int               fd;
	enum rsp_server   server;
	bool              noack;
	bool              dead;     /* connection gone: every call fails */
	size_t            limit;    /* payload limit (PacketSize) */
	bool              map_offered;
	struct rsp_region flash[RSP_REGIONS];
	size_t            n_flash;
	int               x_ok;     /* X writes: 0 unknown, 1 yes, -1 no */
	bool              flash_open;
	bool              has_method; /* the target profile said how */
	bool              use_vflash; /* then: its [program] method */
	uint8_t           in[4096];
	size_t            in_pos, in_len;
	char              pkt[RSP_PKT_MAX + 1]; /* decoded reply, NUL ended */
	size_t            pkt_len;
	char              raw[RSP_PKT_MAX + 1]; /* received payload */
	char              out[RSP_PKT_MAX + 8]; /* framed outgoing packet */
	char              cmd[RSP_PKT_MAX + 1]; /* payload being built */
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
hexval(int c)
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

static const char hexdig[] = "0123456789abcdef";

/* The connection is unusable from now on. */
static int
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
		uint64_t      now = now_ms();
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

static int
rsp_send_raw(probe *p, struct gdb_probe *g, const void *buf, size_t len,
    uint64_t deadline, const char *what)
{
	const char *b = buf;

	while (len > 0) {
		struct pollfd pfd = {.fd = g->fd, .events = POLLOUT};
		uint64_t      now = now_ms();
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
static int
rsp_send(probe *p, struct gdb_probe *g, const char *payload, size_t len,
    const char *what)
{
	uint64_t deadline = now_ms() + p->timeout_ms;
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
	g->out[len + 2] = hexdig[sum >> 4];
	g->out[len + 3] = hexdig[sum & 15];
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
static int
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
		if (hexval(h) < 0 || hexval(l) < 0) {
			return rsp_lost(p, g, probe_fail(p, CS_EPROTO,
			    "GDB server's reply to %s has a malformed "
			    "checksum", what), what);
		}
		if ((uint8_t)(hexval(h) << 4 | hexval(l)) == sum) {
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

static int
rsp_recv(probe *p, struct gdb_probe *g, const char *what)
{
	return rsp_recv_until(p, g, now_ms() + p->timeout_ms, what);
}

/* Send a NUL-terminated command and receive its reply. */
static int
rsp_cmd(probe *p, struct gdb_probe *g, const char *cmd, const char *what)
{
	int rv;

	if ((rv = rsp_send(p, g, cmd, strlen(cmd), what)) != CS_OK) {
		return rv;
	}
	return rsp_recv(p, g, what);
}

/* pkt is "Exx": the target refused. */
static bool
rsp_is_error(const struct gdb_probe *g)
{
	return g->pkt_len == 3 && g->pkt[0] == 'E' && hexval(g->pkt[1]) >= 0 &&
	    hexval(g->pkt[2]) >= 0;
}

/* The reply must be "OK". */
static int
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

static int
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

static int
connect_tcp(probe *p, struct gdb_probe *g, const char *where)
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

static int
connect_unix(probe *p, struct gdb_probe *g, const char *path)
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
/* Handshake. */

/* Parse the value "0x..." of attr="..." inside tag; false if absent. */
static bool
xml_attr(const char *tag, const char *end, const char *attr, uint32_t *v)
{
	char        key[32];
	const char *s;
	char        num[16];
	size_t      n;

	snprintf(key, sizeof(key), "%s=\"", attr);
	s = strstr(tag, key);
	if (s == NULL || s >= end) {
		return false;
	}
	s += strlen(key);
	n = strcspn(s, "\"");
	if (n == 0 || n >= sizeof(num) || s + n >= end) {
		return false;
	}
	memcpy(num, s, n);
	num[n] = '\0';
	return probe_parse_u32(num, UINT32_MAX, v) == CS_OK;
}

/* The flash regions of a memory-map document (GDB's memory-map.dtd):
 * <memory type="flash" start=".." length=".."><property
 * name="blocksize">..</property></memory>. */
static void
parse_memory_map(struct gdb_probe *g, const char *xml)
{
	const char *s = xml;

	while ((s = strstr(s, "<memory")) != NULL && g->n_flash < RSP_REGIONS) {
		const char        *tag_end = strchr(s, '>');
		const char        *end     = strstr(s, "</memory>");
		const char        *bs;
		struct rsp_region *r = &g->flash[g->n_flash];
		char               num[16];
		size_t             n;

		if (tag_end == NULL) {
			return;
		}
		if (strstr(s, "type=\"flash\"") == NULL ||
		    strstr(s, "type=\"flash\"") > tag_end ||
		    !xml_attr(s, tag_end, "start", &r->start) ||
		    !xml_attr(s, tag_end, "length", &r->len) || end == NULL) {
			s = tag_end;
			continue;
		}
		r->blocksize = 0;
		bs = strstr(s, "name=\"blocksize\">");
		if (bs != NULL && bs < end) {
			bs += strlen("name=\"blocksize\">");
			n = strcspn(bs, "<");
			if (n > 0 && n < sizeof(num)) {
				memcpy(num, bs, n);
				num[n] = '\0';
				(void)probe_parse_u32(num, UINT32_MAX,
				    &r->blocksize);
			}
		}
		g->n_flash++;
		s = end;
	}
}

static int
read_memory_map(probe *p, struct gdb_probe *g)
{
	char  *xml;
	size_t have = 0;
	int    rv   = CS_OK;

	if ((xml = malloc(RSP_MAP_MAX + 1)) == NULL) {
		return probe_fail(p, CS_ENOMEM, "out of memory");
	}
	for (;;) {
		snprintf(g->cmd, sizeof(g->cmd),
		    "qXfer:memory-map:read::%zx,%zx", have, g->limit - 1);
		if ((rv = rsp_cmd(p, g, g->cmd, "qXfer:memory-map")) !=
		    CS_OK) {
			goto out;
		}
		if (g->pkt_len == 0 || (g->pkt[0] != 'm' && g->pkt[0] != 'l')) {
			rv = probe_fail(p, CS_EPROTO, "GDB server offered a "
			    "memory map but answered '%.32s' for it", g->pkt);
			goto out;
		}
		if (g->pkt_len - 1 > RSP_MAP_MAX - have) {
			rv = probe_fail(p, CS_EPROTO, "GDB server's memory map "
			    "is longer than %u bytes", RSP_MAP_MAX);
			goto out;
		}
		memcpy(xml + have, g->pkt + 1, g->pkt_len - 1);
		have += g->pkt_len - 1;
		if (g->pkt[0] == 'l' || g->pkt_len == 1) {
			break;
		}
	}
	xml[have] = '\0';
	parse_memory_map(g, xml);
out:
	free(xml);
	return rv;
}

/* The reply in pkt must be a stop reply (the target is halted). */
static int
want_stop(probe *p, struct gdb_probe *g, const char *what)
{
	if (g->pkt_len >= 3 && (g->pkt[0] == 'S' || g->pkt[0] == 'T') &&
	    hexval(g->pkt[1]) >= 0 && hexval(g->pkt[2]) >= 0) {
		return CS_OK;
	}
	return probe_fail(p, CS_EPROTO, "GDB server answered %s with '%.32s', "
	    "not a stop reply: is the target halted?", what, g->pkt);
}

static int
handshake(probe *p, struct gdb_probe *g)
{
	int rv;

	if ((rv = rsp_cmd(p, g, "qSupported:swbreak+;hwbreak+",
	    "qSupported")) != CS_OK) {
		return rv;
	}
	bool  noack = false;
	char *save  = NULL;

	for (char *f = strtok_r(g->pkt, ";", &save); f != NULL;
	     f = strtok_r(NULL, ";", &save)) {
		if (strncmp(f, "PacketSize=", 11) == 0) {
			char         *end;
			unsigned long v = strtoul(f + 11, &end, 16);

			if (*end != '\0' || end == f + 11 || v < RSP_PKT_MIN) {
				return probe_fail(p, CS_EPROTO, "GDB server "
				    "sent a bad %s", f);
			}
			/* The payload limit: PacketSize counts the frame. */
			g->limit = (v > RSP_PKT_MAX ? RSP_PKT_MAX : v) - 4;
		} else if (strcmp(f, "QStartNoAckMode+") == 0) {
			noack = true;
		} else if (strcmp(f, "qXfer:memory-map:read+") == 0) {
			g->map_offered = true;
		}
	}
	if (noack) {
		if ((rv = rsp_cmd(p, g, "QStartNoAckMode", "QStartNoAckMode"))
		    != CS_OK) {
			return rv;
		}
		if (strcmp(g->pkt, "OK") == 0) {
			g->noack = true;
		}
	}
	if (g->map_offered && (rv = read_memory_map(p, g)) != CS_OK) {
		return rv;
	}
	if ((rv = rsp_cmd(p, g, "?", "'?'")) != CS_OK) {
		return rv;
	}
	return want_stop(p, g, "'?'");
}

static int
gdb_open_common(probe *p, const struct probe_url *u, bool is_unix)
{
	static const char *const known[] = {"server", NULL};
	struct gdb_probe        *g;
	char                     v[32];
	int                      rv, i;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		return probe_fail(p, CS_ENOMEM, "out of memory");
	}
	p->impl  = g;
	g->fd    = -1;
	g->limit = RSP_PKT_DEFAULT;
	if ((rv = probe_query_check(p, u->query, known)) != CS_OK) {
		return rv;
	}
	g->server = SRV_QEMU;
	if ((rv = probe_query_get(u->query, "server", v, sizeof(v))) != 0) {
		for (i = 0; rv == 1 && i < 5; i++) {
			if (strcmp(v, server_names[i]) == 0) {
				g->server = (enum rsp_server)i;
				break;
			}
		}
		if (rv != 1 || i == 5) {
			return probe_fail(p, CS_EADDR, "unknown server= (qemu, "
			    "openocd, jlink, pyocd, bmp)");
		}
	}
	rv = is_unix ? connect_unix(p, g, u->where)
	             : connect_tcp(p, g, u->where);
	if (rv != CS_OK) {
		return rv;
	}
	if ((rv = handshake(p, g)) != CS_OK) {
		return rv == CS_ECLOSED || rv == CS_ETIMEDOUT ? rv : CS_EPROTO;
	}
	return CS_OK;
}

static int
gdb_open(probe *p, const struct probe_url *u)
{
	return gdb_open_common(p, u, false);
}

static int
gdb_open_unix(probe *p, const struct probe_url *u)
{
	return gdb_open_common(p, u, true);
}

static void
gdb_close(probe *p)
{
	struct gdb_probe *g = p->impl;

	if (g == NULL) {
		return;
	}
	if (g->fd >= 0) {
		/* Detach: the server lets the device go (QEMU and OpenOCD
		 * resume it).  Best effort: we are leaving anyway. */
		if (!g->dead && rsp_send(p, g, "D", 1, "detach") == CS_OK) {
			(void)rsp_recv_until(p, g, now_ms() + 1000, "detach");
		}
		close(g->fd);
	}
	free(g);
	p->impl = NULL;
}

/* ---------------------------------------------------------------- */
/* Memory. */

static int
gdb_read(probe *p, uint32_t addr, void *buf, size_t len)
{
	struct gdb_probe *g   = p->impl;
	uint8_t          *b   = buf;
	size_t            max = g->limit / 2;
	int               rv;

	if ((rv = rsp_alive(p, g)) != CS_OK) {
		return rv;
	}
	while (len > 0) {
		size_t n = len < max ? len : max;
		size_t got;

		snprintf(g->cmd, sizeof(g->cmd), "m%x,%zx", addr, n);
		if ((rv = rsp_cmd(p, g, g->cmd, "memory read")) != CS_OK) {
			return rv;
		}
		if (rsp_is_error(g)) {
			return probe_fail(p, CS_EIO, "reading %zu bytes at "
			    "0x%08x failed: GDB server answered %s", n, addr,
			    g->pkt);
		}
		got = g->pkt_len / 2;
		if (g->pkt_len == 0 || g->pkt_len % 2 != 0 || got > n) {
			return probe_fail(p, CS_EPROTO, "GDB server answered "
			    "a read of %zu bytes at 0x%08x with %zu characters",
			    n, addr, g->pkt_len);
		}
		for (size_t i = 0; i < got; i++) {
			int h = hexval(g->pkt[2 * i]);
			int l = hexval(g->pkt[2 * i + 1]);

			if (h < 0 || l < 0) {
				return probe_fail(p, CS_EPROTO, "GDB server "
				    "sent malformed hex reading 0x%08x",
				    addr);
			}
			b[i] = (uint8_t)(h << 4 | l);
		}
		/* A short answer is allowed: the rest may be unreadable,
		 * which the next request finds out. */
		b += got;
		addr += (uint32_t)got;
		len -= got;
	}
	return CS_OK;
}

/* Encode bytes into g->cmd after hdr with '}' escapes, as many as fit;
 * returns how many were taken and the payload length in *plen. */
static size_t
escape_into(struct gdb_probe *g, size_t hdr, const uint8_t *b, size_t len,
    size_t *plen)
{
	size_t o = hdr, i;

	for (i = 0; i < len; i++) {
		uint8_t c   = b[i];
		bool    esc = c == '#' || c == '$' || c == '}' || c == '*';

		if (o + (esc ? 2u : 1u) > g->limit) {
			break;
		}
		if (esc) {
			g->cmd[o++] = '}';
			c ^= 0x20;
		}
		g->cmd[o++] = (char)c;
	}
	*plen = o;
	return i;
}

/* Does the server take X?  Asked once, with a zero-length write. */
static int
probe_x(probe *p, struct gdb_probe *g, uint32_t addr)
{
	int rv;

	if (g->x_ok != 0) {
		return CS_OK;
	}
	snprintf(g->cmd, sizeof(g->cmd), "X%x,0:", addr);
	if ((rv = rsp_cmd(p, g, g->cmd, "X probe")) != CS_OK) {
		return rv;
	}
	g->x_ok = strcmp(g->pkt, "OK") == 0 ? 1 : -1;
	return CS_OK;
}

/* Plain memory writes: X when the server takes it, else M. */
static int
write_mem(probe *p, struct gdb_probe *g, uint32_t addr, const uint8_t *b,
    size_t len)
{
	int rv;

	if ((rv = probe_x(p, g, addr)) != CS_OK) {
		return rv;
	}
	while (len > 0) {
		size_t n, plen;
		int    hdr;

		if (g->x_ok > 0) {
			hdr = snprintf(g->cmd, sizeof(g->cmd), "X%x,%zx:", addr,
			    len);
			n = escape_into(g, (size_t)hdr, b, len, &plen);
			/* The length field must match what fitted. */
			hdr = snprintf(g->cmd, sizeof(g->cmd), "X%x,%zx:",
			    addr, n);
			n = escape_into(g, (size_t)hdr, b, n, &plen);
		} else {
			n = (g->limit - RSP_CMD_OVERHEAD) / 2;
			n = len < n ? len : n;
			hdr = snprintf(g->cmd, sizeof(g->cmd), "M%x,%zx:", addr,
			    n);
			for (size_t i = 0; i < n; i++) {
				g->cmd[hdr + 2 * (int)i]     = hexdig[b[i] >> 4];
				g->cmd[hdr + 2 * (int)i + 1] = hexdig[b[i] & 15];
			}
			plen = (size_t)hdr + 2 * n;
		}
		if ((rv = rsp_send(p, g, g->cmd, plen, "memory write")) !=
		    CS_OK || (rv = rsp_recv(p, g, "memory write")) != CS_OK ||
		    (rv = rsp_want_ok(p, g, "memory write", addr)) != CS_OK) {
			return rv;
		}
		b += n;
		addr += (uint32_t)n;
		len -= n;
	}
	return CS_OK;
}

static int
gdb_write(probe *p, uint32_t addr, const void *buf, size_t len)
{
	struct gdb_probe *g = p->impl;
	int               rv;

	if ((rv = rsp_alive(p, g)) != CS_OK) {
		return rv;
	}
	return write_mem(p, g, addr, buf, len);
}

static int
gdb_flash_write(probe *p, uint32_t erase_addr, size_t erase_len,
    uint32_t addr, const void *buf, size_t len)
{
	struct gdb_probe *g = p->impl;
	const uint8_t    *b = buf;
	int               rv;

	if ((rv = rsp_alive(p, g)) != CS_OK) {
		return rv;
	}
	if (g->has_method && g->use_vflash && g->n_flash == 0) {
		return probe_fail(p, CS_EPRECOND, "the target profile programs "
		    "flash with vflash, but this GDB server offers no flash "
		    "memory map (is it the right server, and is the part's "
		    "flash driver configured?)");
	}
	if (g->has_method ? !g->use_vflash : g->n_flash == 0) {
		/* Flash as memory to the debugger (QEMU; or the profile says
		 * so).  "Erase" by writing 0xFF around the data. */
		uint8_t  ff[256];
		uint32_t a   = erase_addr;
		uint64_t end = (uint64_t)erase_addr + erase_len;

		memset(ff, 0xFF, sizeof(ff));

		while (erase_len != 0 && a < end) {
			size_t n;

			if (a >= addr && a < addr + len) {
				a = addr + (uint32_t)len;
				continue;
			}
			n = end - a < sizeof(ff) ? (size_t)(end - a) : sizeof(ff);
			if (a < addr && a + n > addr) {
				n = addr - a;
			}
			if ((rv = write_mem(p, g, a, ff, n)) != CS_OK) {
				return rv;
			}
			a += (uint32_t)n;
		}
		return write_mem(p, g, addr, b, len);
	}
	if (erase_len != 0) {
		/* The server erases whole blocks: a range that is not made of
		 * them would take neighbouring bytes with it. */
		for (size_t i = 0; i < g->n_flash; i++) {
			const struct rsp_region *r  = &g->flash[i];
			uint64_t                 bs = r->blocksize;

			if (bs == 0 || erase_addr < r->start ||
			    (uint64_t)erase_addr >= (uint64_t)r->start + r->len) {
				continue;
			}
			if ((erase_addr - r->start) % bs != 0 ||
			    erase_len % bs != 0) {
				return probe_fail(p, CS_EINVAL, "erase range "
				    "0x%08x+0x%zx is not made of the server's "
				    "0x%llx-byte flash blocks; set the target "
				    "profile's page_size to the block size",
				    erase_addr, erase_len, (unsigned long long)bs);
			}
		}
		snprintf(g->cmd, sizeof(g->cmd), "vFlashErase:%x,%zx",
		    erase_addr, erase_len);
		g->flash_open = true;
		if ((rv = rsp_cmd(p, g, g->cmd, "vFlashErase")) != CS_OK ||
		    (rv = rsp_want_ok(p, g, "vFlashErase", erase_addr)) !=
		    CS_OK) {
			return rv;
		}
	}
	while (len > 0) {
		size_t n, plen;
		int    hdr = snprintf(g->cmd, sizeof(g->cmd), "vFlashWrite:%x:",
		    addr);

		n = escape_into(g, (size_t)hdr, b, len, &plen);
		g->flash_open = true;
		if ((rv = rsp_send(p, g, g->cmd, plen, "vFlashWrite")) !=
		    CS_OK || (rv = rsp_recv(p, g, "vFlashWrite")) != CS_OK ||
		    (rv = rsp_want_ok(p, g, "vFlashWrite", addr)) != CS_OK) {
			return rv;
		}
		b += n;
		addr += (uint32_t)n;
		len -= n;
	}
	return CS_OK;
}

static int
gdb_flash_done(probe *p)
{
	struct gdb_probe *g = p->impl;
	int               rv;

	if ((rv = rsp_alive(p, g)) != CS_OK || !g->flash_open) {
		return rv;
	}
	g->flash_open = false;
	if ((rv = rsp_cmd(p, g, "vFlashDone", "vFlashDone")) != CS_OK) {
		return rv;
	}
	return rsp_want_ok(p, g, "vFlashDone", 0);
}

/* ---------------------------------------------------------------- */
/* Reset and run. */

/* qRcmd: the monitor command, hex encoded; skips console output. */
static int
monitor(probe *p, struct gdb_probe *g, const char *cmd)
{
	size_t n = (size_t)snprintf(g->cmd, sizeof(g->cmd), "qRcmd,");
	int    rv;

	for (const char *s = cmd; *s != '\0'; s++) {
		g->cmd[n++] = hexdig[(uint8_t)*s >> 4];
		g->cmd[n++] = hexdig[(uint8_t)*s & 15];
	}
	if ((rv = rsp_send(p, g, g->cmd, n, "monitor command")) != CS_OK) {
		return rv;
	}
	for (int i = 0; i < RSP_OUTPUT_MAX; i++) {
		if ((rv = rsp_recv(p, g, "monitor command")) != CS_OK) {
			return rv;
		}
		if (g->pkt[0] != 'O' || strcmp(g->pkt, "OK") == 0) {
			break;
		}
	}
	if (g->pkt_len == 0) {
		return probe_fail(p, CS_EPROTO, "GDB server does not know the "
		    "monitor command '%s'", cmd);
	}
	if (strcmp(g->pkt, "OK") != 0) {
		return probe_fail(p, CS_EIO, "monitor '%s' failed: GDB server "
		    "answered '%.32s'", cmd, g->pkt);
	}
	return CS_OK;
}

/* QEMU: after system_reset the CPU must sit at its reset vector (the
 * word at 4), halted.  The reset runs in QEMU's main loop after the
 * qRcmd reply, so look a few times. */
static int
qemu_check_reset(probe *p, struct gdb_probe *g)
{
	uint8_t  v[4];
	uint32_t vec, pc = 0;
	int      rv;

	if ((rv = gdb_read(p, 4, v, sizeof(v))) != CS_OK) {
		return rv;
	}
	vec = ((uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 |
	          (uint32_t)v[3] << 24) & ~1u;
	for (int i = 0; i < 50; i++) {
		if ((rv = rsp_cmd(p, g, "g", "'g'")) != CS_OK) {
			return rv;
		}
		/* r0..r15, 8 hex digits each, target (little-endian) order. */
		if (g->pkt_len < 16 * 8) {
			return probe_fail(p, CS_EPROTO, "GDB server's register "
			    "block is too short (%zu)", g->pkt_len);
		}
		pc = 0;
		for (int k = 3; k >= 0; k--) {
			int h = hexval(g->pkt[15 * 8 + 2 * k]);
			int l = hexval(g->pkt[15 * 8 + 2 * k + 1]);

			if (h < 0 || l < 0) {
				return probe_fail(p, CS_EPROTO, "GDB server "
				    "sent a malformed register block");
			}
			pc = pc << 8 | (uint32_t)(h << 4 | l);
		}
		if (pc == vec) {
			return CS_OK;
		}
		nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
	}
	return probe_fail(p, CS_EIO, "after reset the PC is 0x%08x, not the "
	    "reset vector 0x%08x", pc, vec);
}

static int
gdb_reset_halt(probe *p)
{
	struct gdb_probe *g = p->impl;
	int               rv;

	if ((rv = rsp_alive(p, g)) != CS_OK) {
		return rv;
	}
	if (g->server == SRV_BMP) {
		/* BMP has no reset-and-halt monitor command; vRun restarts
		 * the target and answers with a stop reply. */
		if ((rv = rsp_cmd(p, g, "vRun;", "vRun")) != CS_OK) {
			return rv;
		}
		return want_stop(p, g, "vRun");
	}
	if ((rv = monitor(p, g, server_reset[g->server])) != CS_OK ||
	    (rv = rsp_cmd(p, g, "?", "'?'")) != CS_OK ||
	    (rv = want_stop(p, g, "'?' after reset")) != CS_OK) {
		return rv;
	}
	return g->server == SRV_QEMU ? qemu_check_reset(p, g) : CS_OK;
}

/* Wait for the stop reply until deadline; fills stop. */
static int
wait_stop(probe *p, struct gdb_probe *g, uint64_t deadline,
    struct probe_stop *stop)
{
	int rv, code;

	for (int i = 0; i < RSP_OUTPUT_MAX; i++) {
		if ((rv = rsp_recv_until(p, g, deadline, "run")) != CS_OK) {
			return rv;
		}
		if (g->pkt[0] == 'O' && g->pkt_len > 1) {
			continue; /* console output */
		}
		if (g->pkt_len < 3 || hexval(g->pkt[1]) < 0 ||
		    hexval(g->pkt[2]) < 0) {
			break;
		}
		code = hexval(g->pkt[1]) << 4 | hexval(g->pkt[2]);
		switch (g->pkt[0]) {
		case 'S':
		case 'T':
			stop->signal = code;
			return CS_OK;
		case 'W':
			stop->exited    = true;
			stop->exit_code = code;
			g->dead         = true;
			return CS_OK;
		case 'X':
			stop->signal = code;
			g->dead      = true;
			return CS_OK;
		default:
			break;
		}
		break;
	}
	return rsp_lost(p, g, probe_fail(p, CS_EPROTO, "GDB server answered "
	    "'continue' with '%.32s', not a stop reply", g->pkt), "run");
}

static int
gdb_run(probe *p, unsigned timeout_ms, struct probe_stop *stop)
{
	struct gdb_probe *g = p->impl;
	int               rv;

	if ((rv = rsp_alive(p, g)) != CS_OK) {
		return rv;
	}
	/* 'c' rather than vCont;c: every server takes it, and one thread
	 * is all a microcontroller has. */
	if ((rv = rsp_send(p, g, "c", 1, "continue")) != CS_OK) {
		return rv;
	}
	rv = wait_stop(p, g, now_ms() + timeout_ms, stop);
	if (rv != CS_ETIMEDOUT) {
		return rv;
	}
	/* Still running: interrupt (a bare 0x03, not a packet). */
	stop->timed_out = true;
	p->err[0]       = '\0';
	if ((rv = rsp_send_raw(p, g, "\003", 1, now_ms() + p->timeout_ms,
	    "interrupt")) != CS_OK) {
		return rv;
	}
	return wait_stop(p, g, now_ms() + p->timeout_ms, stop);
}

/* The profile's [program] method decides between vFlash and plain
 * writes; without a profile, the server's memory map does. */
static int
gdb_set_target(probe *p, const struct target *t)
{
	struct gdb_probe *g = p->impl;

	g->has_method = true;
	g->use_vflash = t->program == TARGET_PROGRAM_VFLASH;
	return CS_OK;
}

const struct probe_ops probe_gdb_ops = {
	.scheme      = "gdb",
	.open        = gdb_open,
	.close       = gdb_close,
	.read        = gdb_read,
	.write       = gdb_write,
	.flash_write = gdb_flash_write,
	.flash_done  = gdb_flash_done,
	.reset_halt  = gdb_reset_halt,
	.run         = gdb_run,
	.set_target  = gdb_set_target,
};

const struct probe_ops probe_gdb_unix_ops = {
	.scheme      = "gdb+unix",
	.open        = gdb_open_unix,
	.close       = gdb_close,
	.read        = gdb_read,
	.write       = gdb_write,
	.flash_write = gdb_flash_write,
	.flash_done  = gdb_flash_done,
	.reset_halt  = gdb_reset_halt,
	.run         = gdb_run,
	.set_target  = gdb_set_target,
};
