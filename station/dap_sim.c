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
 *                FMD, FMC with key 0xA442, FCRIS, FCIM, FCMISC).  There is
 *                no CPU: a "running" core just does not execute.
 *
 * Not thread-safe: one caller at a time (a test, or the umockdev handler).
 */
#include "dap_sim.h"

#include "cs_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_PKT        512u
#define SIM_FLASH_SIZE 0x40000u
#define SIM_PAGE_SIZE  0x400u
#define SIM_RAM_BASE   0x20000000u
#define SIM_RAM_SIZE   0x10000u
#define SIM_UID_ADDR   0x2000FF00u
#define SIM_UID_MAX    32u
#define SIM_SERIAL_MAX 63u

#define SIM_DPIDR      0x2BA01477u
#define SIM_AP_IDR     0x24770011u
#define SIM_AP_BASE    0xE00FF003u
#define SIM_CPUID      0x412FC230u

/* CTRL/STAT */
#define CS_STICKYORUN  (1u << 1)
#define CS_STICKYCMP   (1u << 4)
#define CS_STICKYERR   (1u << 5)
#define CS_WDATAERR    (1u << 7)
#define CS_STICKY      (CS_STICKYORUN | CS_STICKYCMP | CS_STICKYERR | \
                        CS_WDATAERR)
#define CS_CDBGPWRUPREQ (1u << 28)
#define CS_CDBGPWRUPACK (1u << 29)
#define CS_CSYSPWRUPREQ (1u << 30)
#define CS_CSYSPWRUPACK (1u << 31)
#define CS_WRITABLE    (CS_CDBGPWRUPREQ | CS_CSYSPWRUPREQ | 0x0F000F0Du)

/* Cortex-M debug */
#define SCS_CPUID  0xE000ED00u
#define SCS_AIRCR  0xE000ED0Cu
#define SCS_DHCSR  0xE000EDF0u
#define SCS_DCRSR  0xE000EDF4u
#define SCS_DCRDR  0xE000EDF8u
#define SCS_DEMCR  0xE000EDFCu
#define DHCSR_C_DEBUGEN (1u << 0)
#define DHCSR_C_HALT    (1u << 1)
#define DHCSR_S_REGRDY  (1u << 16)
#define DHCSR_S_HALT    (1u << 17)
#define DHCSR_S_RESET   (1u << 25)
#define DEMCR_VC_CORERESET (1u << 0)
#define SIM_NREGS  21u

/* LM3S flash controller */
#define FC_BASE    0x400FD000u
#define FC_FMA     0x000u
#define FC_FMD     0x004u
#define FC_FMC     0x008u
#define FC_FCRIS   0x00Cu
#define FC_FCIM    0x010u
#define FC_FCMISC  0x014u
#define FMC_WRKEY  0xA442u
#define FMC_WRITE  (1u << 0)
#define FMC_ERASE  (1u << 1)
#define FMC_MERASE (1u << 2)
#define FCRIS_ARIS (1u << 0)
#define FCRIS_PRIS (1u << 1)

#define ACK_OK    DAP_ACK_OK
#define ACK_WAIT  DAP_ACK_WAIT
#define ACK_FAULT DAP_ACK_FAULT
#define ACK_NONE  0x07u /* nobody drove the line */
#define XFER_MATCH_VALUE 0x10u
#define XFER_MATCH_MASK  0x20u
#define XFER_MISMATCH    0x10u

struct dap_sim {
	char    serial[SIM_SERIAL_MAX + 1];
	uint8_t uid[SIM_UID_MAX];
	size_t  uid_len;
	uint8_t flash[SIM_FLASH_SIZE];
	uint8_t ram[SIM_RAM_SIZE];

	struct dap_sim_faults f;
	unsigned long         commands;
	unsigned long         unplug_at; /* commands; 0 = never */
	bool                  unplugged;

	/* The probe. */
	bool     connected;
	uint16_t wait_retry, match_retry;
	uint32_t match_mask;

	/* The SWD line and the DP. */
	unsigned ones;
	bool     capturing;
	unsigned cap_bits;
	uint32_t cap;
	bool     swd, dp_reset_state;
	uint32_t ctrlstat, select, rdbuff, last_read;

	/* The MEM-AP. */
	uint32_t csw, tar;

	/* The core. */
	uint32_t dhcsr;  /* C_* bits as written */
	bool     halted, reset_st, regrdy;
	uint32_t dcrdr, demcr;
	uint32_t regs[SIM_NREGS];

	/* The flash controller. */
	uint32_t fma, fmd, fcris, fcim;
};

static const uint8_t sim_default_uid[8] = {0x01, 0x23, 0x45, 0x67, 0x89,
    0xab, 0xcd, 0xef};

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

/* System reset (SYSRESETREQ, nRESET): the core restarts from the vector
 * table; the debug registers (DHCSR's C_DEBUGEN, DEMCR) survive, as they
 * only reset at power-on; a set VC_CORERESET halts at the reset vector. */
static void
sim_system_reset(dap_sim *s)
{
	memset(s->regs, 0, sizeof(s->regs));
	s->regs[13] = get32(s->flash);
	s->regs[17] = s->regs[13];
	s->regs[15] = get32(s->flash + 4) & ~1u;
	s->regs[14] = 0xFFFFFFFFu;
	s->regs[16] = 1u << 24; /* Thumb */
	s->reset_st = true;
	s->halted   = (s->demcr & DEMCR_VC_CORERESET) != 0 &&
	            (s->dhcsr & DHCSR_C_DEBUGEN) != 0;
	s->dhcsr    = s->halted ? s->dhcsr | DHCSR_C_HALT
	                        : s->dhcsr & ~DHCSR_C_HALT;
	s->regrdy   = false;
	s->fma = s->fmd = s->fcris = s->fcim = 0;
}

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
	s->f         = *f;
	s->unplug_at = f->unplug_after != 0 ? s->commands + f->unplug_after
	                                    : 0;
	if (f->fault_next) {
		/* A FAULT answer is the DP reporting a sticky error: as if
		 * the previous access had failed on the bus. */
		s->ctrlstat |= CS_STICKYERR;
		s->f.fault_next = false;
	}
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

/* ---- the target's bus (what the MEM-AP reaches) ---- */

static bool
sim_scs_read(dap_sim *s, uint32_t addr, uint32_t *v)
{
	switch (addr) {
	case SCS_CPUID:
		*v = SIM_CPUID;
		return true;
	case SCS_AIRCR:
		*v = 0xFA050000u;
		return true;
	case SCS_DHCSR:
		*v = (s->dhcsr & 0x2Fu) | (s->regrdy ? DHCSR_S_REGRDY : 0) |
		     (s->halted ? DHCSR_S_HALT : 0) |
		     (s->reset_st ? DHCSR_S_RESET : 0);
		s->reset_st = false; /* sticky until read */
		return true;
	case SCS_DCRSR:
		*v = 0;
		return true;
	case SCS_DCRDR:
		*v = s->dcrdr;
		return true;
	case SCS_DEMCR:
		*v = s->demcr;
		return true;
	default:
		return false;
	}
}

static bool
sim_scs_write(dap_sim *s, uint32_t addr, uint32_t v)
{
	unsigned sel;

	switch (addr) {
	case SCS_AIRCR:
		if (v >> 16 == 0x05FAu && (v & 0x5u) != 0) {
			sim_system_reset(s);
		}
		return true;
	case SCS_DHCSR:
		if (v >> 16 != 0xA05Fu) {
			return true; /* writes without DBGKEY are ignored */
		}
		s->dhcsr  = v & 0x2Fu;
		s->halted = (v & DHCSR_C_DEBUGEN) != 0 &&
		            (v & DHCSR_C_HALT) != 0;
		return true;
	case SCS_DCRSR:
		sel       = v & 0x7Fu;
		s->regrdy = false;
		if (!s->halted) {
			return true; /* never ready: the host times out */
		}
		if (sel < SIM_NREGS && sel != 19) {
			if ((v & (1u << 16)) != 0) {
				s->regs[sel] = s->dcrdr;
			} else {
				s->dcrdr = s->regs[sel];
			}
		}
		s->regrdy = true;
		return true;
	case SCS_DCRDR:
		s->dcrdr = v;
		return true;
	case SCS_DEMCR:
		s->demcr = v & 0x010F07F1u;
		return true;
	case SCS_CPUID:
		return true;
	default:
		return false;
	}
}

static bool
sim_fc_write(dap_sim *s, uint32_t off, uint32_t v)
{
	uint32_t a;

	switch (off) {
	case FC_FMA:
		s->fma = v & 0x3FFFFu;
		return true;
	case FC_FMD:
		s->fmd = v;
		return true;
	case FC_FMC:
		if (v >> 16 != FMC_WRKEY) {
			return true; /* no key: ignored, as on the part */
		}
		if ((v & FMC_WRITE) != 0) {
			a = s->fma & ~3u;
			if (a >= SIM_FLASH_SIZE) {
				s->fcris |= FCRIS_ARIS;
				return true;
			}
			/* NOR: programming can only clear bits. */
			put32(s->flash + a, get32(s->flash + a) & s->fmd);
			s->fcris |= FCRIS_PRIS;
		} else if ((v & FMC_ERASE) != 0) {
			a = s->fma & ~(SIM_PAGE_SIZE - 1);
			if (a >= SIM_FLASH_SIZE) {
				s->fcris |= FCRIS_ARIS;
				return true;
			}
			memset(s->flash + a, 0xFF, SIM_PAGE_SIZE);
			s->fcris |= FCRIS_PRIS;
		} else if ((v & FMC_MERASE) != 0) {
			memset(s->flash, 0xFF, sizeof(s->flash));
			s->fcris |= FCRIS_PRIS;
		}
		return true;
	case FC_FCRIS:
		return true;
	case FC_FCIM:
		s->fcim = v & 3u;
		return true;
	case FC_FCMISC:
		s->fcris &= ~(v & 3u);
		return true;
	default:
		return false;
	}
}

static bool
sim_fc_read(dap_sim *s, uint32_t off, uint32_t *v)
{
	switch (off) {
	case FC_FMA:
		*v = s->fma;
		return true;
	case FC_FMD:
		*v = s->fmd;
		return true;
	case FC_FMC:
		*v = 0; /* every operation has completed */
		return true;
	case FC_FCRIS:
		*v = s->fcris;
		return true;
	case FC_FCIM:
		*v = s->fcim;
		return true;
	case FC_FCMISC:
		*v = s->fcris & s->fcim;
		return true;
	default:
		return false;
	}
}

/* n (1, 2, 4) bytes at addr (aligned); false = bus error. */
static bool
sim_bus_read(dap_sim *s, uint32_t addr, unsigned n, uint32_t *v)
{
	uint8_t b[4] = {0};

	if (addr < SIM_FLASH_SIZE ||
	    addr - SIM_RAM_BASE < SIM_RAM_SIZE) {
		dap_sim_peek(s, addr, b, n);
		*v = get32(b);
		return true;
	}
	if (n != 4) {
		return false; /* registers: word access only */
	}
	if (addr >= 0xE000E000u && addr < 0xE000F000u) {
		return sim_scs_read(s, addr, v);
	}
	if (addr >= FC_BASE && addr < FC_BASE + 0x1000u) {
		return sim_fc_read(s, addr - FC_BASE, v);
	}
	return false;
}

static bool
sim_bus_write(dap_sim *s, uint32_t addr, unsigned n, uint32_t v)
{
	uint8_t b[4];

	if (addr - SIM_RAM_BASE < SIM_RAM_SIZE) {
		if (addr < SIM_UID_ADDR + s->uid_len &&
		    SIM_UID_ADDR < addr + n) {
			return false; /* the UID is read-only */
		}
		put32(b, v);
		memcpy(s->ram + (addr - SIM_RAM_BASE), b, n);
		return true;
	}
	if (n != 4) {
		return false;
	}
	if (addr >= 0xE000E000u && addr < 0xE000F000u) {
		return sim_scs_write(s, addr, v);
	}
	if (addr >= FC_BASE && addr < FC_BASE + 0x1000u) {
		return sim_fc_write(s, addr - FC_BASE, v);
	}
	return false; /* flash among others: only the controller writes it */
}

/* ---- the MEM-AP ---- */

/* A DRW or BDn access at addr; *v is the DRW value (byte lanes). */
static void
sim_mem(dap_sim *s, uint32_t addr, bool wr, uint32_t *v)
{
	unsigned size  = s->csw & 7u;
	unsigned n     = 1u << size;
	unsigned lane  = (addr & 3u) * 8u;
	uint32_t mask  = n == 4 ? 0xFFFFFFFFu : (1u << (n * 8u)) - 1u;
	uint32_t val   = 0;
	bool     ok;

	if (size > 2 || addr % n != 0) {
		ok = false;
	} else if (wr) {
		ok = sim_bus_write(s, addr, n, (*v >> lane) & mask);
	} else {
		ok = sim_bus_read(s, addr, n, &val);
		val = (val & mask) << lane;
	}
	if (!wr) {
		*v = ok ? val : 0;
	}
	if (!ok) {
		s->ctrlstat |= CS_STICKYERR;
	}
}

static void
sim_drw(dap_sim *s, bool wr, uint32_t *v)
{
	unsigned n = 1u << (s->csw & 7u);

	sim_mem(s, s->tar, wr, v);
	if ((s->csw & 0x30u) == 0x10u) {
		/* Only TAR[9:0] increments: the 1 KiB block wraps. */
		s->tar = (s->tar & ~0x3FFu) | ((s->tar + n) & 0x3FFu);
	}
}

static uint32_t
sim_ap_read(dap_sim *s, unsigned apsel, unsigned reg)
{
	uint32_t v = 0;

	if (apsel != 0) {
		return 0; /* no such AP: reads as zero */
	}
	switch (reg) {
	case 0x00:
		return s->csw;
	case 0x04:
		return s->tar;
	case 0x0C:
		sim_drw(s, false, &v);
		return v;
	case 0x10: case 0x14: case 0x18: case 0x1C:
		sim_mem(s, (s->tar & ~0xFu) | (reg & 0xCu), false, &v);
		return v;
	case 0xF8:
		return SIM_AP_BASE;
	case 0xFC:
		return SIM_AP_IDR;
	default:
		return 0;
	}
}

static void
sim_ap_write(dap_sim *s, unsigned apsel, unsigned reg, uint32_t v)
{
	if (apsel != 0) {
		return;
	}
	switch (reg) {
	case 0x00:
		s->csw = (v & 0xFF00FF37u) | 0x40u; /* DeviceEn reads 1 */
		break;
	case 0x04:
		s->tar = v;
		break;
	case 0x0C:
		sim_drw(s, true, &v);
		break;
	case 0x10: case 0x14: case 0x18: case 0x1C:
		sim_mem(s, (s->tar & ~0xFu) | (reg & 0xCu), true, &v);
		break;
	default:
		break;
	}
}

/* ---- the SW-DP: one SWD transaction ---- */

static uint8_t
sim_swd(dap_sim *s, uint8_t req, uint32_t *data)
{
	bool     ap = (req & DAP_XFER_APnDP) != 0;
	bool     rd = (req & DAP_XFER_RnW) != 0;
	unsigned a  = req & 0x0Cu;
	uint32_t v;

	if (!s->connected || !s->swd) {
		return ACK_NONE;
	}
	if (s->dp_reset_state && (ap || !rd || a != 0)) {
		return ACK_NONE; /* only a DPIDR read leaves reset */
	}
	if (ap && s->f.wait_count > 0) {
		s->f.wait_count--;
		return ACK_WAIT;
	}
	if ((s->ctrlstat & CS_STICKY) != 0 &&
	    (ap || (a == 0x8) || (a == 0xC))) {
		return ACK_FAULT;
	}
	if (!ap) {
		switch (a) {
		case 0x0:
			if (rd) {
				*data             = SIM_DPIDR;
				s->dp_reset_state = false;
			} else {
				s->ctrlstat &= ~(((*data & 2u) ? CS_STICKYCMP : 0) |
				    ((*data & 4u) ? CS_STICKYERR : 0) |
				    ((*data & 8u) ? CS_WDATAERR : 0) |
				    ((*data & 16u) ? CS_STICKYORUN : 0));
			}
			break;
		case 0x4:
			if ((s->select & 0xFu) != 0) {
				if (rd) {
					*data = 0; /* DPv0 has no banks */
				}
			} else if (rd) {
				v = s->ctrlstat;
				if (v & CS_CDBGPWRUPREQ) {
					v |= CS_CDBGPWRUPACK;
				}
				if (v & CS_CSYSPWRUPREQ) {
					v |= CS_CSYSPWRUPACK;
				}
				*data = v;
			} else {
				s->ctrlstat = (s->ctrlstat & CS_STICKY) |
				              (*data & CS_WRITABLE);
			}
			break;
		case 0x8:
			if (rd) {
				*data = s->last_read; /* RESEND */
			} else {
				s->select = *data;
			}
			break;
		default:
			if (rd) {
				*data = s->rdbuff;
			}
			break;
		}
		if (rd) {
			s->last_read = *data;
		}
		return ACK_OK;
	}
	if ((s->ctrlstat & CS_CDBGPWRUPREQ) == 0) {
		/* The debug domain is off: the access fails. */
		s->ctrlstat |= CS_STICKYERR;
		if (rd) {
			*data = s->rdbuff;
		}
		return ACK_OK;
	}
	if (rd) {
		/* Posted: this read returns the previous one's value. */
		*data        = s->rdbuff;
		s->rdbuff    = sim_ap_read(s, s->select >> 24,
		       (s->select & 0xF0u) | a);
		s->last_read = *data;
	} else {
		sim_ap_write(s, s->select >> 24, (s->select & 0xF0u) | a,
		    *data);
	}
	return ACK_OK;
}

/* The probe's retries of WAIT (DAP_TransferConfigure). */
static uint8_t
sim_swd_retry(dap_sim *s, uint8_t req, uint32_t *data)
{
	uint8_t  ack;
	unsigned n = 0;

	while ((ack = sim_swd(s, req, data)) == ACK_WAIT &&
	    n++ < s->wait_retry) {
	}
	return ack;
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
