/*
 * dap.c - CMSIS-DAP v2 commands (see dap.h) over a struct dap_transport.
 *
 * Every response is checked before use: the first byte must echo the
 * command, and the length must cover what the command promises (a probe
 * that answers short is a protocol error, never a buffer over-read).
 *
 * WAIT: the probe itself retries WAIT answers DAP_WAIT_RETRY times (set
 * with DAP_TransferConfigure); when a WAIT still reaches us, single
 * register accesses are sent again, up to DAP_HOST_RETRIES times, since an
 * access answered WAIT did not happen.  Block transfers are not resumed
 * here: after a WAIT in the middle of a posted-read pipeline the AP's TAR
 * has moved by an amount this layer cannot know, so they fail with
 * CS_ETIMEDOUT and the caller (adiv5.c) redoes the whole block after
 * rewriting TAR.
 *
 * FAULT: a sticky error flag is set in the DP (a bus error behind the
 * MEM-AP, an overrun); every later AP access would FAULT too.  We read
 * CTRL/STAT for the message, write ABORT with all sticky-clear bits and
 * fail the call with CS_EIO, so that the next call works again.
 */
#include "dap.h"

#include "cs_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAP_PKT_MIN      64u   /* full-speed USB */
#define DAP_PKT_MAX      1024u /* largest packet we use */
#define DAP_ERR_MAX      256u
#define DAP_WAIT_RETRY   64u   /* the probe's own WAIT retries */
#define DAP_HOST_RETRIES 8u    /* our retries of a WAITed access */
#define DAP_OK_STATUS    0x00u
#define DAP_ABORT_CLEAR  0x1Eu /* STKCMPCLR|STKERRCLR|WDERRCLR|ORUNERRCLR */
#define DAP_DP_ABORT     0x0u
#define DAP_DP_CTRLSTAT  0x4u
#define DAP_DP_RDBUFF    0xCu
#define DAP_ACK_MASK     0x07u
#define DAP_SWD_PERR     0x08u /* SWD protocol (parity) error */
#define DAP_PORT_SWD     1u

struct dap {
	struct dap_transport t;
	unsigned             timeout_ms;
	size_t               pkt; /* packet size in use */
	bool                 closed;
	uint8_t              cmd[DAP_PKT_MAX];
	uint8_t              rsp[DAP_PKT_MAX];
	char                 err[DAP_ERR_MAX];
};

static int
dap_fail(dap *d, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
dap_fail(dap *d, int rv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	return rv;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int
dap_open(dap **out, const struct dap_transport *t, unsigned timeout_ms)
{
	dap *d;

	if (out == NULL || t == NULL || t->xfer == NULL) {
		return CS_EINVAL;
	}
	*out = NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		return CS_ENOMEM;
	}
	d->t          = *t;
	d->timeout_ms = timeout_ms != 0 ? timeout_ms : 5000u;
	d->pkt        = t->packet_size;
	if (d->pkt < DAP_PKT_MIN) {
		d->pkt = DAP_PKT_MIN;
	}
	if (d->pkt > DAP_PKT_MAX) {
		d->pkt = DAP_PKT_MAX;
	}
	*out = d;
	return CS_OK;
}

void
dap_close(dap *d)
{
	if (d == NULL) {
		return;
	}
	if (d->t.close != NULL) {
		d->t.close(d->t.ctx);
	}
	free(d);
}

const char *
dap_error(const dap *d)
{
	return d != NULL ? d->err : "no probe";
}

/* Send d->cmd (len bytes); the response (echo checked, at least min
 * bytes) is in d->rsp, its length in *got. */
static int
dap_exchange(dap *d, size_t len, size_t min, size_t *got)
{
	int rv;

	if (d->closed) {
		return dap_fail(d, CS_ECLOSED, "probe disconnected");
	}
	rv = d->t.xfer(d->t.ctx, d->cmd, len, d->rsp, d->pkt, got,
	    d->timeout_ms);
	if (rv == CS_ECLOSED) {
		d->closed = true;
		return dap_fail(d, rv, "probe disconnected (command 0x%02x)",
		    d->cmd[0]);
	}
	if (rv == CS_ETIMEDOUT) {
		return dap_fail(d, rv, "probe did not answer command 0x%02x "
		    "within %u ms", d->cmd[0], d->timeout_ms);
	}
	if (rv != CS_OK) {
		return dap_fail(d, rv, "command 0x%02x to the probe failed: "
		    "%s", d->cmd[0], cs_strerror(rv));
	}
	if (*got == 0 || d->rsp[0] != d->cmd[0]) {
		return dap_fail(d, CS_EPROTO, "probe answered command 0x%02x "
		    "with %s0x%02x", d->cmd[0], *got == 0 ? "nothing; " : "",
		    *got == 0 ? 0 : d->rsp[0]);
	}
	if (*got < min) {
		return dap_fail(d, CS_EPROTO, "probe's answer to command "
		    "0x%02x is %zu bytes, expected at least %zu", d->cmd[0],
		    *got, min);
	}
	return CS_OK;
}

/* A command whose answer is one status byte (DAP_OK or DAP_ERROR). */
static int
dap_simple(dap *d, size_t len, const char *what)
{
	size_t got;
	int    rv;

	if ((rv = dap_exchange(d, len, 2, &got)) != CS_OK) {
		return rv;
	}
	if (d->rsp[1] != DAP_OK_STATUS) {
		return dap_fail(d, CS_EIO, "probe refused %s (status 0x%02x)",
		    what, d->rsp[1]);
	}
	return CS_OK;
}

static const char *
ack_name(uint8_t ack)
{
	switch (ack & DAP_ACK_MASK) {
	case DAP_ACK_WAIT:
		return "WAIT";
	case DAP_ACK_FAULT:
		return "FAULT";
	case 0:
	case DAP_ACK_MASK:
		return "no ACK (target not connected or not powered?)";
	default:
		return "an invalid ACK";
	}
}

/* One DAP_Transfer with a single request; no retries, no FAULT handling.
 * *ack gets the transfer response. */
static int
dap_transfer1(dap *d, uint8_t req, uint32_t wval, uint32_t *rval,
    uint8_t *ack)
{
	bool   rd = (req & DAP_XFER_RnW) != 0;
	size_t len = 4, got;
	int    rv;

	d->cmd[0] = DAP_CMD_TRANSFER;
	d->cmd[1] = 0; /* DAP index: ignored on SWD */
	d->cmd[2] = 1;
	d->cmd[3] = req;
	if (!rd) {
		put32(d->cmd + 4, wval);
		len += 4;
	}
	if ((rv = dap_exchange(d, len, 3, &got)) != CS_OK) {
		return rv;
	}
	*ack = d->rsp[2];
	if (d->rsp[1] > 1 || (d->rsp[1] == 1) != (*ack == DAP_ACK_OK)) {
		return dap_fail(d, CS_EPROTO, "probe reports %u of 1 transfer "
		    "done with response 0x%02x", d->rsp[1], *ack);
	}
	if (*ack == DAP_ACK_OK && rd) {
		if (got < 7) {
			return dap_fail(d, CS_EPROTO, "probe's read answer is "
			    "%zu bytes, expected 7", got);
		}
		*rval = get32(d->rsp + 3);
	}
	return CS_OK;
}

/* After a FAULT: say what CTRL/STAT holds, clear the sticky flags. */
static int
dap_fault(dap *d, const char *what)
{
	uint32_t cs  = 0;
	uint8_t  ack = 0;
	char     msg[DAP_ERR_MAX];
	int      rv;

	snprintf(msg, sizeof(msg), "%s", what);
	if (dap_transfer1(d, DAP_XFER_RnW | DAP_DP_CTRLSTAT, 0, &cs, &ack) !=
	        CS_OK ||
	    ack != DAP_ACK_OK) {
		cs = 0;
	}
	rv = dap_transfer1(d, DAP_DP_ABORT, DAP_ABORT_CLEAR, NULL, &ack);
	if (rv == CS_ECLOSED) {
		return rv;
	}
	return dap_fail(d, CS_EIO, "target answered FAULT to %s (CTRL/STAT "
	    "0x%08x%s%s); sticky errors %s", msg, cs,
	    (cs & 0x20u) != 0 ? ": STICKYERR, a bus error behind the AP" : "",
	    (cs & 0x02u) != 0 ? ": STICKYORUN" : "",
	    rv == CS_OK && ack == DAP_ACK_OK ? "cleared through ABORT"
	                                     : "could not be cleared");
}

/* Turn a transfer response other than OK into an error. */
static int
dap_ack_fail(dap *d, uint8_t ack, const char *what)
{
	if ((ack & DAP_ACK_MASK) == DAP_ACK_FAULT) {
		return dap_fault(d, what);
	}
	if ((ack & DAP_ACK_MASK) == DAP_ACK_WAIT) {
		return dap_fail(d, CS_ETIMEDOUT, "target still answers WAIT "
		    "to %s after %u retries", what, DAP_WAIT_RETRY);
	}
	if ((ack & DAP_SWD_PERR) != 0) {
		return dap_fail(d, CS_EIO, "SWD parity error in %s (wiring, "
		    "clock too fast?)", what);
	}
	return dap_fail(d, CS_EIO, "target gave %s to %s", ack_name(ack),
	    what);
}

static int
dap_reg(dap *d, bool ap, uint8_t addr, bool rd, uint32_t wval,
    uint32_t *rval)
{
	uint8_t req = (uint8_t)((ap ? DAP_XFER_APnDP : 0) |
	                        (rd ? DAP_XFER_RnW : 0) | DAP_XFER_A23(addr));
	uint8_t ack = 0;
	char    what[64];
	int     rv;

	if (addr > 0xC || (addr & 3) != 0) {
		return dap_fail(d, CS_EINVAL, "no %s register 0x%x",
		    ap ? "AP" : "DP", addr);
	}
	for (unsigned i = 0; i < DAP_HOST_RETRIES; i++) {
		if ((rv = dap_transfer1(d, req, wval, rval, &ack)) != CS_OK) {
			return rv;
		}
		if (ack != DAP_ACK_WAIT) {
			break;
		}
	}
	if (ack == DAP_ACK_OK) {
		return CS_OK;
	}
	snprintf(what, sizeof(what), "a %s of %s register 0x%x",
	    rd ? "read" : "write", ap ? "AP" : "DP", addr);
	return dap_ack_fail(d, ack, what);
}

int
dap_reg_read(dap *d, bool ap, uint8_t addr, uint32_t *val)
{
	if (d == NULL || val == NULL) {
		return CS_EINVAL;
	}
	return dap_reg(d, ap, addr, true, 0, val);
}

int
dap_reg_write(dap *d, bool ap, uint8_t addr, uint32_t val)
{
	if (d == NULL) {
		return CS_EINVAL;
	}
	return dap_reg(d, ap, addr, false, val, NULL);
}

/* One DAP_TransferBlock of n (fits one packet) accesses. */
static int
dap_block1(dap *d, uint8_t addr, bool rd, uint32_t *vals, size_t n)
{
	size_t  len = 5, got, done;
	uint8_t ack;
	char    what[64];
	int     rv;

	d->cmd[0] = DAP_CMD_TRANSFER_BLOCK;
	d->cmd[1] = 0;
	d->cmd[2] = (uint8_t)n;
	d->cmd[3] = (uint8_t)(n >> 8);
	d->cmd[4] = (uint8_t)(DAP_XFER_APnDP | (rd ? DAP_XFER_RnW : 0) |
	                      DAP_XFER_A23(addr));
	if (!rd) {
		for (size_t i = 0; i < n; i++) {
			put32(d->cmd + len, vals[i]);
			len += 4;
		}
	}
	if ((rv = dap_exchange(d, len, 4, &got)) != CS_OK) {
		return rv;
	}
	done = (size_t)d->rsp[1] | (size_t)d->rsp[2] << 8;
	ack  = d->rsp[3];
	if (done > n || (ack == DAP_ACK_OK && done != n)) {
		return dap_fail(d, CS_EPROTO, "probe reports %zu of %zu block "
		    "transfers done with response 0x%02x", done, n, ack);
	}
	if (rd) {
		if (got < 4 + done * 4) {
			return dap_fail(d, CS_EPROTO, "probe's block read "
			    "answer is %zu bytes for %zu words", got, done);
		}
		for (size_t i = 0; i < done; i++) {
			vals[i] = get32(d->rsp + 4 + i * 4);
		}
	}
	if (ack == DAP_ACK_OK) {
		return CS_OK;
	}
	snprintf(what, sizeof(what), "block %s %zu of %zu of AP register "
	    "0x%x", rd ? "read" : "write", done + 1, n, addr);
	return dap_ack_fail(d, ack, what);
}

static int
dap_block(dap *d, uint8_t addr, bool rd, uint32_t *vals, size_t n)
{
	/* Command 5 bytes + words; response 4 bytes + words. */
	size_t max = (d->pkt - 5) / 4;
	int    rv;

	if (addr > 0xC || (addr & 3) != 0) {
		return dap_fail(d, CS_EINVAL, "no AP register 0x%x", addr);
	}
	while (n > 0) {
		size_t k = n < max ? n : max;

		if ((rv = dap_block1(d, addr, rd, vals, k)) != CS_OK) {
			return rv;
		}
		vals += k;
		n -= k;
	}
	return CS_OK;
}

int
dap_ap_read_block(dap *d, uint8_t addr, uint32_t *vals, size_t n)
{
	if (d == NULL || (vals == NULL && n != 0)) {
		return CS_EINVAL;
	}
	return dap_block(d, addr, true, vals, n);
}

int
dap_ap_write_block(dap *d, uint8_t addr, const uint32_t *vals, size_t n)
{
	if (d == NULL || (vals == NULL && n != 0)) {
		return CS_EINVAL;
	}
	/* dap_block only reads vals when writing. */
	return dap_block(d, addr, false, (uint32_t *)(uintptr_t)vals, n);
}

int
dap_info_string(dap *d, uint8_t id, char *out, size_t len)
{
	size_t got, n;
	int    rv;

	if (d == NULL || out == NULL || len == 0 || id < 1 || id > 4) {
		return CS_EINVAL;
	}
	d->cmd[0] = DAP_CMD_INFO;
	d->cmd[1] = id;
	if ((rv = dap_exchange(d, 2, 2, &got)) != CS_OK) {
		return rv;
	}
	n = d->rsp[1];
	if (n > got - 2) {
		return dap_fail(d, CS_EPROTO, "probe's DAP_Info %u answer "
		    "claims %zu bytes but has %zu", id, n, got - 2);
	}
	/* The string's length counts its NUL; be lenient if it is missing. */
	while (n > 0 && d->rsp[2 + n - 1] == '\0') {
		n--;
	}
	if (n == 0) {
		return dap_fail(d, CS_ENOENT, "probe does not say DAP_Info "
		    "%u", id);
	}
	if (n >= len) {
		return dap_fail(d, CS_ETOOBIG, "probe's DAP_Info %u string "
		    "is %zu bytes, room for %zu", id, n, len - 1);
	}
	memcpy(out, d->rsp + 2, n);
	out[n] = '\0';
	return CS_OK;
}

/* DAP_Info 0xFF: the probe's packet size; use the smaller one. */
static int
dap_query_packet(dap *d)
{
	size_t got, n;
	int    rv;

	d->cmd[0] = DAP_CMD_INFO;
	d->cmd[1] = 0xFF;
	if ((rv = dap_exchange(d, 2, 2, &got)) != CS_OK) {
		return rv;
	}
	if (d->rsp[1] != 2 || got < 4) {
		return CS_OK; /* not said: keep the transport's */
	}
	n = (size_t)d->rsp[2] | (size_t)d->rsp[3] << 8;
	if (n >= DAP_PKT_MIN && n < d->pkt) {
		d->pkt = n;
	}
	return CS_OK;
}

int
dap_connect_swd(dap *d, uint32_t clock_hz, uint32_t *dpidr)
{
	/* >= 50 ones (line reset), 0xE79E LSB first (JTAG-to-SWD), line
	 * reset again, then 8 idle cycles: 56 + 16 + 56 + 8 = 136 bits. */
	static const uint8_t seq[17] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	    0xFF, 0x9E, 0xE7, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00};
	size_t               got;
	uint32_t             id = 0;
	int                  rv;

	if (d == NULL || clock_hz == 0) {
		return CS_EINVAL;
	}
	if ((rv = dap_query_packet(d)) != CS_OK) {
		return rv;
	}
	d->cmd[0] = DAP_CMD_CONNECT;
	d->cmd[1] = DAP_PORT_SWD;
	if ((rv = dap_exchange(d, 2, 2, &got)) != CS_OK) {
		return rv;
	}
	if (d->rsp[1] != DAP_PORT_SWD) {
		return dap_fail(d, CS_EIO, "probe cannot connect in SWD mode "
		    "(answered port %u)", d->rsp[1]);
	}
	d->cmd[0] = DAP_CMD_SWJ_CLOCK;
	put32(d->cmd + 1, clock_hz);
	if ((rv = dap_simple(d, 5, "the SWD clock")) != CS_OK) {
		return rv;
	}
	d->cmd[0] = DAP_CMD_TRANSFER_CONFIGURE;
	d->cmd[1] = 0; /* idle cycles after a transfer */
	d->cmd[2] = (uint8_t)DAP_WAIT_RETRY;
	d->cmd[3] = (uint8_t)(DAP_WAIT_RETRY >> 8);
	d->cmd[4] = 0; /* match retries: value match is not used */
	d->cmd[5] = 0;
	if ((rv = dap_simple(d, 6, "DAP_TransferConfigure")) != CS_OK) {
		return rv;
	}
	d->cmd[0] = DAP_CMD_SWD_CONFIGURE;
	d->cmd[1] = 0; /* 1-cycle turnaround, no data phase on WAIT/FAULT */
	if ((rv = dap_simple(d, 2, "DAP_SWD_Configure")) != CS_OK) {
		return rv;
	}
	d->cmd[0] = DAP_CMD_SWJ_SEQUENCE;
	d->cmd[1] = (uint8_t)(sizeof(seq) * 8);
	memcpy(d->cmd + 2, seq, sizeof(seq));
	if ((rv = dap_simple(d, 2 + sizeof(seq), "the JTAG-to-SWD sequence")) !=
	    CS_OK) {
		return rv;
	}
	/* Reading DPIDR is what takes the DP out of its reset state. */
	if ((rv = dap_reg_read(d, false, 0x0, &id)) != CS_OK) {
		char why[DAP_ERR_MAX];

		snprintf(why, sizeof(why), "%s", d->err);
		return dap_fail(d, rv, "no SWD target answers (reading "
		    "DPIDR: %s)", why);
	}
	if ((rv = dap_reg_write(d, false, DAP_DP_ABORT, DAP_ABORT_CLEAR)) !=
	    CS_OK) {
		return rv;
	}
	if (dpidr != NULL) {
		*dpidr = id;
	}
	return CS_OK;
}

int
dap_reset_target(dap *d)
{
	size_t got;
	int    rv;

	if (d == NULL) {
		return CS_EINVAL;
	}
	d->cmd[0] = DAP_CMD_RESET_TARGET;
	if ((rv = dap_exchange(d, 1, 3, &got)) != CS_OK) {
		return rv;
	}
	if (d->rsp[1] != DAP_OK_STATUS) {
		return dap_fail(d, CS_EIO, "probe could not reset the target "
		    "(status 0x%02x)", d->rsp[1]);
	}
	if (d->rsp[2] == 0) {
		return dap_fail(d, CS_EUNAVAIL, "probe has no target reset "
		    "sequence (DAP_ResetTarget execute = 0)");
	}
	return CS_OK;
}
