/*
 * dap_sim.c - a simulated CMSIS-DAP v2 probe and the SWD target behind it
 * (see dap_sim.h), so that the DAP, ADIv5 and cmsis-dap probe layers are
 * tested byte for byte without hardware, in-process or behind umockdev.
 *
 * Three layers, each behaving as the real part does:
 *
 *   the probe    DAP command interpreter.  DAP_Transfer hides ADIv5's
 *                posted AP reads the way the CMSIS-DAP specification
 *                requires: the first AP read of a run is posted and its
 *                value collected by the next AP read or by a DP RDBUFF
 *                read the probe adds itself; after writes it reads RDBUFF
 *                so that a write's FAULT is reported in the same command.
 *                WAIT is retried as configured by DAP_TransferConfigure.
 *   the SW-DP    JTAG at power-up; a line reset (>= 50 ones), 0xE79E and
 *                a line reset switch it to SWD, where it stays in the
 *                reset state (only a DPIDR read answered) until DPIDR is
 *                read.  CTRL/STAT power-up requests are acknowledged at
 *                once; a bus error sets STICKYERR, after which every
 *                access but DPIDR, CTRL/STAT and ABORT answers FAULT until
 *                ABORT clears it.  An AP read returns the previous AP
 *                read's value; its own lands in RDBUFF.
 *   the target   AP 0 is an AHB-AP (IDR 0x24770011): CSW (8/16/32-bit,
 *                auto-increment single; packed increment is not modelled
 *                and behaves as no increment), TAR (incrementing within
 *                its 1 KiB block, wrapping there as real MEM-APs may), DRW
 *                with byte lanes, BD0-3.  Behind it the lm3s6965 map of
 *                probe_sim.c: flash 0x0 256 KiB (bus writes fault; only
 *                the flash controller programs it, clearing bits only),
 *                RAM 0x20000000 64 KiB, a read-only UID at 0x2000FF00,
 *                the Cortex-M3 debug registers (DHCSR, DCRSR, DCRDR,
 *                DEMCR, AIRCR, CPUID) and the LM3S flash controller (FMA,
 *                FMD, FMC with key 0xA442, FCRIS, FCIM, FCMISC) with its
 *                flash protection (FMPRE0-3, FMPPE0-3, COMT; lm3s_sim.h):
 *                read-protected flash faults on the bus.  There is
 *                no CPU: a "running" core just does not execute.
 *
 *
 * Not thread-safe: one caller at a time (a test, or the umockdev handler).
 *
 * This file holds the probe and the public API; the SW-DP, the MEM-AP and
 * the target's bus are in dap_sim_target.c.
 */
#include "dap_sim.h"
#include "dap_sim_impl.h"

#include "cs_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t sim_default_uid[8] = {0x01, 0x23, 0x45, 0x67, 0x89,
    0xab, 0xcd, 0xef};

int
dap_sim_new(dap_sim **out, const char *serial, const uint8_t *uid,
    size_t uid_len)
{
	dap_sim *s;

	if (out == NULL || serial == NULL || strlen(serial) > SIM_SERIAL_MAX ||
	    uid_len > SIM_UID_MAX || (uid == NULL && uid_len != 0)) {
		return CS_EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return CS_ENOMEM;
	}
	snprintf(s->serial, sizeof(s->serial), "%s", serial);
	if (uid_len == 0) {
		uid     = sim_default_uid;
		uid_len = sizeof(sim_default_uid);
	}
	memcpy(s->uid, uid, uid_len);
	s->uid_len = uid_len;
	memset(s->flash, 0xFF, sizeof(s->flash));
	lm3s_sim_init(&s->fc, s->flash, sizeof(s->flash));
	s->wait_retry = 100; /* CMSIS-DAP firmware's default */
	s->csw        = 0x03000040u; /* DeviceEn, 8-bit, no increment */
	sim_system_reset(s);
	s->reset_st = false;
	*out        = s;
	return CS_OK;
}

void
dap_sim_free(dap_sim *s)
{
	free(s);
}

void
dap_sim_set_faults(dap_sim *s, const struct dap_sim_faults *f)
{
	s->f                 = *f;
	s->fc.commit_ignored = f->lock_ignored;
	s->unplug_at = f->unplug_after != 0 ? s->commands + f->unplug_after
	                                    : 0;
	if (f->fault_next) {
		/* A FAULT answer is the DP reporting a sticky error: as if
		 * the previous access had failed on the bus. */
		s->ctrlstat |= CS_STICKYERR;
		s->f.fault_next = false;
	}
}

void
dap_sim_recover(dap_sim *s)
{
	lm3s_sim_recover(&s->fc);
}

int
dap_sim_peek(dap_sim *s, uint32_t addr, void *buf, size_t len)
{
	uint8_t *b = buf;

	if (s == NULL || (buf == NULL && len != 0)) {
		return CS_EINVAL;
	}
	if (addr < SIM_FLASH_SIZE && len <= SIM_FLASH_SIZE - addr) {
		memcpy(b, s->flash + addr, len);
		return CS_OK;
	}
	if (addr - SIM_RAM_BASE < SIM_RAM_SIZE &&
	    len <= SIM_RAM_SIZE - (addr - SIM_RAM_BASE)) {
		memcpy(b, s->ram + (addr - SIM_RAM_BASE), len);
		for (size_t i = 0; i < s->uid_len; i++) {
			uint32_t a = SIM_UID_ADDR + (uint32_t)i;

			if (a >= addr && a - addr < len) {
				b[a - addr] = s->uid[i];
			}
		}
		return CS_OK;
	}
	return CS_EINVAL;
}

#define RDBUFF_READ (DAP_XFER_RnW | 0x0Cu)

/* A read with value match: repeat until (value & mask) == want. */
static uint8_t
sim_match_read(dap_sim *s, uint8_t req, uint32_t want)
{
	uint32_t v = 0;
	uint8_t  ack;
	unsigned n = 0;

	for (;;) {
		if ((ack = sim_swd_retry(s, req & 0x0Fu, &v)) != ACK_OK) {
			return ack;
		}
		if ((req & DAP_XFER_APnDP) != 0 &&
		    (ack = sim_swd_retry(s, RDBUFF_READ, &v)) != ACK_OK) {
			return ack;
		}
		if ((v & s->match_mask) == want) {
			return ACK_OK;
		}
		if (n++ >= s->match_retry) {
			return ACK_OK | XFER_MISMATCH;
		}
	}
}

/* DAP_Transfer. */
static size_t
sim_transfer(dap_sim *s, const uint8_t *cmd, size_t len, uint8_t *r)
{
	size_t   p = 3, out = 3, done = 0, count;
	uint8_t  ack = ACK_OK;
	bool     posted = false, wrote = false;
	uint32_t v;

	if (len < 3) {
		r[1] = 0;
		r[2] = 0;
		return 3;
	}
	count = cmd[2];
	for (size_t i = 0; i < count; i++) {
		uint8_t req;

		if (p >= len || out + 12 > SIM_PKT) {
			ack = 0; /* truncated command or too many reads */
			break;
		}
		req = cmd[p++];
		if ((req & DAP_XFER_RnW) != 0) {
			bool match = (req & XFER_MATCH_VALUE) != 0;

			if (match && p + 4 > len) {
				ack = 0;
				break;
			}
			if (posted) {
				if ((req & (DAP_XFER_APnDP | XFER_MATCH_VALUE)) ==
				    DAP_XFER_APnDP) {
					/* Collect the last, post the next. */
					if ((ack = sim_swd_retry(s, req & 0x0Fu,
					    &v)) != ACK_OK) {
						break;
					}
					put32(r + out, v);
					out += 4;
					done++;
					continue;
				}
				if ((ack = sim_swd_retry(s, RDBUFF_READ, &v)) !=
				    ACK_OK) {
					break;
				}
				put32(r + out, v);
				out += 4;
				posted = false;
			}
			if (match) {
				ack = sim_match_read(s, req, get32(cmd + p));
				p += 4;
				if (ack != ACK_OK) {
					break;
				}
			} else if ((req & DAP_XFER_APnDP) != 0) {
				if ((ack = sim_swd_retry(s, req & 0x0Fu, &v)) !=
				    ACK_OK) {
					break;
				}
				posted = true;
			} else {
				if ((ack = sim_swd_retry(s, req & 0x0Fu, &v)) !=
				    ACK_OK) {
					break;
				}
				put32(r + out, v);
				out += 4;
			}
			wrote = false;
		} else {
			if (p + 4 > len) {
				ack = 0;
				break;
			}
			v = get32(cmd + p);
			p += 4;
			if (posted) {
				uint32_t last;

				if ((ack = sim_swd_retry(s, RDBUFF_READ,
				    &last)) != ACK_OK) {
					break;
				}
				put32(r + out, last);
				out += 4;
				posted = false;
			}
			if ((req & XFER_MATCH_MASK) != 0) {
				s->match_mask = v;
			} else {
				if ((ack = sim_swd_retry(s, req & 0x0Fu, &v)) !=
				    ACK_OK) {
					break;
				}
				wrote = true;
			}
		}
		done++;
	}
	if (ack == ACK_OK && posted) {
		if ((ack = sim_swd_retry(s, RDBUFF_READ, &v)) == ACK_OK) {
			put32(r + out, v);
			out += 4;
		}
	} else if (ack == ACK_OK && wrote) {
		/* Check the last write: a bus error shows up as FAULT. */
		ack = sim_swd_retry(s, RDBUFF_READ, &v);
	}
	r[1] = (uint8_t)done;
	r[2] = ack;
	return out;
}

/* DAP_TransferBlock. */
static size_t
sim_transfer_block(dap_sim *s, const uint8_t *cmd, size_t len, uint8_t *r)
{
	size_t   out = 4, done = 0, count;
	uint8_t  req, ack = ACK_OK;
	uint32_t v;

	r[1] = r[2] = r[3] = 0;
	if (len < 5) {
		return 4;
	}
	count = (size_t)cmd[2] | (size_t)cmd[3] << 8;
	req   = cmd[4] & 0x0Fu;
	if ((req & DAP_XFER_RnW) != 0) {
		if (4 + count * 4 > SIM_PKT) {
			return 4;
		}
		if ((req & DAP_XFER_APnDP) != 0 && count > 0 &&
		    (ack = sim_swd_retry(s, req, &v)) != ACK_OK) {
			count = 0; /* the posting read failed */
		}
		for (size_t i = 0; i < count; i++) {
			uint8_t q = (req & DAP_XFER_APnDP) == 0 ? req
			            : i + 1 == count              ? RDBUFF_READ
			                                          : req;

			if ((ack = sim_swd_retry(s, q, &v)) != ACK_OK) {
				break;
			}
			put32(r + out, v);
			out += 4;
			done++;
		}
	} else {
		if (5 + count * 4 > len) {
			return 4;
		}
		for (size_t i = 0; i < count; i++) {
			v = get32(cmd + 5 + i * 4);
			if ((ack = sim_swd_retry(s, req, &v)) != ACK_OK) {
				break;
			}
			done++;
		}
		if (ack == ACK_OK && count > 0) {
			ack = sim_swd_retry(s, RDBUFF_READ, &v);
		}
	}
	r[1] = (uint8_t)done;
	r[2] = (uint8_t)(done >> 8);
	r[3] = ack;
	return out;
}

/* Feed SWJ_Sequence bits to the line (see the file comment). */
static void
sim_line_bit(dap_sim *s, unsigned b)
{
	if (b == 0 && s->ones >= 50) {
		/* A line reset ended: the next 16 bits may switch to SWD. */
		if (s->swd) {
			s->dp_reset_state = true;
		}
		s->capturing = true;
		s->cap       = 0;
		s->cap_bits  = 1;
		s->ones      = 0;
		return;
	}
	s->ones = b != 0 ? s->ones + 1 : 0;
	if (s->capturing) {
		s->cap |= (uint32_t)b << s->cap_bits;
		if (++s->cap_bits == 16) {
			s->capturing = false;
			if (s->cap == 0xE79Eu) {
				s->swd = true;
			}
		}
	}
}

static size_t
sim_info(dap_sim *s, uint8_t id, uint8_t *r)
{
	const char *str = NULL;
	size_t      n;

	switch (id) {
	case 0x01:
		str = "Countersign";
		break;
	case 0x02:
		str = "CMSIS-DAP sim";
		break;
	case 0x03:
		str = s->serial;
		break;
	case 0x04:
		str = "2.1.0";
		break;
	case 0xF0: /* capabilities: SWD only */
		r[1] = 1;
		r[2] = 0x01;
		return 3;
	case 0xFE: /* packet count */
		r[1] = 1;
		r[2] = 1;
		return 3;
	case 0xFF: /* packet size */
		r[1] = 2;
		r[2] = (uint8_t)SIM_PKT;
		r[3] = (uint8_t)(SIM_PKT >> 8);
		return 4;
	default:
		r[1] = 0;
		return 2;
	}
	n    = strlen(str) + 1;
	r[1] = (uint8_t)n;
	memcpy(r + 2, str, n);
	return 2 + n;
}

size_t
dap_sim_command(dap_sim *s, const uint8_t *cmd, size_t len, uint8_t *rsp,
    size_t rsp_size)
{
	uint8_t  r[SIM_PKT];
	size_t   n = 2;
	unsigned bits;

	if (s == NULL || s->unplugged || cmd == NULL || len == 0) {
		return 0;
	}
	if (s->unplug_at != 0 && s->commands >= s->unplug_at) {
		s->unplugged = true;
		return 0;
	}
	s->commands++;
	r[0] = cmd[0];
	r[1] = 0x00; /* DAP_OK */
	switch (cmd[0]) {
	case DAP_CMD_INFO:
		n = len < 2 ? (r[1] = 0, 2) : sim_info(s, cmd[1], r);
		break;
	case DAP_CMD_CONNECT:
		/* Port 0 is the default, SWD; JTAG is not offered. */
		r[1] = len >= 2 && cmd[1] <= 1 ? 1 : 0;
		s->connected = r[1] == 1;
		break;
	case DAP_CMD_DISCONNECT:
		s->connected = false;
		break;
	case DAP_CMD_TRANSFER_CONFIGURE:
		if (len < 6) {
			r[1] = 0xFF;
			break;
		}
		s->wait_retry  = (uint16_t)(cmd[2] | cmd[3] << 8);
		s->match_retry = (uint16_t)(cmd[4] | cmd[5] << 8);
		break;
	case DAP_CMD_TRANSFER:
		n = sim_transfer(s, cmd, len, r);
		break;
	case DAP_CMD_TRANSFER_BLOCK:
		n = sim_transfer_block(s, cmd, len, r);
		break;
	case DAP_CMD_RESET_TARGET:
		sim_system_reset(s);
		r[2] = 1; /* a reset sequence is implemented */
		n    = 3;
		break;
	case DAP_CMD_SWJ_CLOCK:
		r[1] = len >= 5 && get32(cmd + 1) != 0 ? 0x00 : 0xFF;
		break;
	case DAP_CMD_SWJ_SEQUENCE:
		bits = len >= 2 ? (cmd[1] != 0 ? cmd[1] : 256u) : 0;
		if (bits == 0 || len < 2 + (bits + 7) / 8) {
			r[1] = 0xFF;
			break;
		}
		for (unsigned i = 0; i < bits; i++) {
			sim_line_bit(s, (cmd[2 + i / 8] >> (i % 8)) & 1u);
		}
		break;
	case DAP_CMD_SWD_CONFIGURE:
		r[1] = len >= 2 ? 0x00 : 0xFF;
		break;
	default:
		r[0] = 0xFF; /* ID_DAP_Invalid */
		n    = 1;
		break;
	}
	if (n > rsp_size) {
		n = rsp_size;
	}
	memcpy(rsp, r, n);
	return n;
}

static int
sim_xfer(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp,
    size_t rsp_size, size_t *rsp_len, unsigned timeout_ms)
{
	(void)timeout_ms;
	*rsp_len = dap_sim_command(ctx, cmd, len, rsp, rsp_size);
	return *rsp_len == 0 ? CS_ECLOSED : CS_OK;
}

static void
sim_close(void *ctx)
{
	(void)ctx; /* the test owns the sim */
}

void
dap_sim_transport(dap_sim *s, struct dap_transport *t)
{
	t->ctx         = s;
	t->packet_size = SIM_PKT;
	t->xfer        = sim_xfer;
	t->close       = sim_close;
}
