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
 * when the memory map names flash, qRcmd monitor commands for reset and
 * for locking the part (the profile's [protect] monitorN, output checked
 * against expectN), and c + stop replies (S, T, W, X) with a 0x03
 * interrupt on timeout.  Per
 * server notes: docs/probes.md.
 *
 * The peer is not trusted: every reply is bounded by PacketSize before it
 * is stored, hex is checked digit by digit, and a peer that breaks the
 * framing mid-packet loses the connection (we cannot resynchronise
 * safely in the middle of a flash write).
 *
 * This file holds the handshake and the probe operations; the packet layer
 * and connecting are in probe_gdb_rsp.c.
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

static const char *const server_names[] = {"qemu", "openocd", "jlink",
    "pyocd", "bmp"};

/* The monitor command that resets and halts, per server (NULL: bmp has
 * none; it restarts with vRun, see docs/probes.md). */
static const char *const server_reset[] = {"system_reset", "reset halt",
    "reset", "reset halt", NULL};

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
	    rsp_hexval(g->pkt[1]) >= 0 && rsp_hexval(g->pkt[2]) >= 0) {
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
	rv = is_unix ? rsp_connect_unix(p, g, u->where)
	             : rsp_connect_tcp(p, g, u->where);
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
			(void)rsp_recv_until(p, g, rsp_now_ms() + 1000,
			    "detach");
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
			int h = rsp_hexval(g->pkt[2 * i]);
			int l = rsp_hexval(g->pkt[2 * i + 1]);

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
				g->cmd[hdr + 2 * (int)i] =
				    rsp_hexdig[b[i] >> 4];
				g->cmd[hdr + 2 * (int)i + 1] =
				    rsp_hexdig[b[i] & 15];
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

/*
 * qRcmd: the monitor command, hex encoded.  The server's console output
 * ('O' + hex packets, or a final hex reply instead of OK) is decoded into
 * out (NUL-terminated, cut at outlen - 1 bytes; out may be NULL to skip
 * it).  At most RSP_OUTPUT_MAX packets, all before deadline: a server
 * that talks forever does not hold the station.
 */
static int
monitor_until(probe *p, struct gdb_probe *g, const char *cmd, char *out,
    size_t outlen, uint64_t deadline)
{
	size_t clen = strlen(cmd);
	size_t n    = (size_t)snprintf(g->cmd, sizeof(g->cmd), "qRcmd,");
	size_t o    = 0;
	bool   done = false;
	int    rv;

	if (out != NULL && outlen > 0) {
		out[0] = '\0';
	}
	if (n + 2 * clen > g->limit) {
		return probe_fail(p, CS_EINVAL, "monitor command '%.64s' is too "
		    "long for the GDB server's PacketSize (%zu)", cmd,
		    g->limit);
	}
	for (const char *s = cmd; *s != '\0'; s++) {
		g->cmd[n++] = rsp_hexdig[(uint8_t)*s >> 4];
		g->cmd[n++] = rsp_hexdig[(uint8_t)*s & 15];
	}
	if ((rv = rsp_send(p, g, g->cmd, n, "monitor command")) != CS_OK) {
		return rv;
	}
	for (int i = 0; i < RSP_OUTPUT_MAX && !done; i++) {
		const char *hex;
		size_t      hl;

		if ((rv = rsp_recv_until(p, g, deadline, "monitor command")) !=
		    CS_OK) {
			return rv;
		}
		if (g->pkt_len == 0 || strcmp(g->pkt, "OK") == 0 ||
		    rsp_is_error(g)) {
			break;
		}
		/* 'O' + hex is output that more packets follow; bare hex is
		 * the final answer carrying output (GDB's "OUTPUT" reply). */
		hex  = g->pkt[0] == 'O' ? g->pkt + 1 : g->pkt;
		hl   = g->pkt_len - (size_t)(hex - g->pkt);
		done = hex == g->pkt;
		if (hl % 2 != 0) {
			return probe_fail(p, CS_EPROTO, "GDB server answered "
			    "monitor '%.64s' with '%.32s'", cmd, g->pkt);
		}
		for (size_t k = 0; k < hl; k += 2) {
			int h = rsp_hexval(hex[k]), l = rsp_hexval(hex[k + 1]);

			if (h < 0 || l < 0) {
				return probe_fail(p, CS_EPROTO, "GDB server "
				    "sent malformed hex output for monitor "
				    "'%.64s'", cmd);
			}
			if (out != NULL && o + 1 < outlen) {
				out[o++] = (char)(h << 4 | l);
				out[o]   = '\0';
			}
		}
		if (!done && i + 1 == RSP_OUTPUT_MAX) {
			return rsp_lost(p, g, probe_fail(p, CS_EPROTO, "GDB "
			    "server sent more than %d output packets for "
			    "monitor '%.64s'", RSP_OUTPUT_MAX, cmd),
			    "monitor command");
		}
	}
	if (done) {
		return CS_OK;
	}
	if (g->pkt_len == 0) {
		return probe_fail(p, CS_EPROTO, "GDB server does not know the "
		    "monitor command '%.64s'", cmd);
	}
	if (strcmp(g->pkt, "OK") != 0) {
		return probe_fail(p, CS_EIO, "monitor '%.64s' failed: GDB "
		    "server answered '%.32s'", cmd, g->pkt);
	}
	return CS_OK;
}

static int
monitor(probe *p, struct gdb_probe *g, const char *cmd)
{
	return monitor_until(p, g, cmd, NULL, 0,
	    rsp_now_ms() + p->timeout_ms);
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
			int h = rsp_hexval(g->pkt[15 * 8 + 2 * k]);
			int l = rsp_hexval(g->pkt[15 * 8 + 2 * k + 1]);

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
		if (g->pkt_len < 3 || rsp_hexval(g->pkt[1]) < 0 ||
		    rsp_hexval(g->pkt[2]) < 0) {
			break;
		}
		code = rsp_hexval(g->pkt[1]) << 4 | rsp_hexval(g->pkt[2]);
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
	rv = wait_stop(p, g, rsp_now_ms() + timeout_ms, stop);
	if (rv != CS_ETIMEDOUT) {
		return rv;
	}
	/* Still running: interrupt (a bare 0x03, not a packet). */
	stop->timed_out = true;
	p->err[0]       = '\0';
	if ((rv = rsp_send_raw(p, g, "\003", 1, rsp_now_ms() + p->timeout_ms,
	    "interrupt")) != CS_OK) {
		return rv;
	}
	return wait_stop(p, g, rsp_now_ms() + p->timeout_ms, stop);
}

/* Printable ASCII only, for messages (the output is the server's). */
static void
printable(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s < 0x20 || *s > 0x7E) {
			*s = *s == '\n' || *s == '\r' ? ' ' : '.';
		}
	}
}

/*
 * Lock: the profile's monitor commands for this kind of server, in
 * order, each within [protect] timeout_ms, its output checked against
 * expectN when given (OpenOCD answers OK even when a lock command failed,
 * so the text is often the only sign).  probe_protect runs the check.
 */
static int
gdb_protect(probe *p, const struct target *t)
{
	const struct target_protect *pr = &t->protect;
	struct gdb_probe            *g  = p->impl;
	const char *name = server_names[g->server];
	char         out[RSP_MONITOR_OUT_MAX];
	size_t       ran = 0;
	int          rv;

	if ((rv = rsp_alive(p, g)) != CS_OK) {
		return rv;
	}
	for (size_t i = 0; i < pr->n_monitors; i++) {
		const struct target_monitor *m = &pr->monitor[i];

		if (strcmp(m->server, name) != 0) {
			continue;
		}
		ran++;
		rv = monitor_until(p, g, m->cmd, out, sizeof(out),
		    rsp_now_ms() + pr->monitor_timeout_ms);
		if (rv != CS_OK) {
			char why[PROBE_ERR_MAX];

			snprintf(why, sizeof(why), "%s", p->err);
			return probe_fail(p, rv, "lock command %zu ('%.64s'): "
			    "%s", i + 1, m->cmd, why);
		}
		printable(out);
		if (m->expect[0] != '\0' && strstr(out, m->expect) == NULL) {
			return probe_fail(p, CS_EIO, "lock command %zu ('%.64s'): "
			    "the output does not contain '%.64s' (it was: "
			    "'%.80s')", i + 1, m->cmd, m->expect, out);
		}
	}
	if (ran == 0) {
		return probe_fail(p, CS_EUNIMPL, "target %s has no lock "
		    "commands for %s GDB servers ([protect] monitorN = %s: "
		    "...)", t->name, name, name);
	}
	p->err[0] = '\0';
	return CS_OK;
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
	.protect     = gdb_protect,
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
	.protect     = gdb_protect,
};
