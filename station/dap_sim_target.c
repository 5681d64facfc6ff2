/*
 * dap_sim_target.c - the SWD target behind the simulated CMSIS-DAP probe:
 * the SW-DP (line reset, JTAG-to-SWD, sticky errors, posted AP reads),
 * the AHB-AP and the lm3s6965 bus behind it (memory, Cortex-M3 debug
 * registers, the flash controller and its protection, lm3s_sim.c: a
 * read of read-protected flash is a bus fault, as on the part).  dap_sim.c's file comment describes
 * the behaviour; split from it so the probe's command interpreter and the
 * part it talks to are read apart.
 */
#include "dap_sim_impl.h"

#include "cs_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* System reset (SYSRESETREQ, nRESET): the core restarts from the vector
 * table; the debug registers (DHCSR's C_DEBUGEN, DEMCR) survive, as they
 * only reset at power-on; a set VC_CORERESET halts at the reset vector. */
void
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
	lm3s_sim_reset(&s->fc);
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

/* n (1, 2, 4) bytes at addr (aligned); false = bus error. */
static bool
sim_bus_read(dap_sim *s, uint32_t addr, unsigned n, uint32_t *v)
{
	uint8_t b[4] = {0};

	if (addr < SIM_FLASH_SIZE && !lm3s_sim_readable(&s->fc, addr, n)) {
		return false; /* read protected (FMPRE): a bus fault */
	}
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
	return lm3s_sim_reg_read(&s->fc, addr, v);
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
	/* The flash controller and protection registers; flash among
	 * others faults: only the controller writes it. */
	return lm3s_sim_reg_write(&s->fc, addr, v);
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
uint8_t
sim_swd_retry(dap_sim *s, uint8_t req, uint32_t *data)
{
	uint8_t  ack;
	unsigned n = 0;

	while ((ack = sim_swd(s, req, data)) == ACK_WAIT &&
	    n++ < s->wait_retry) {
	}
	return ack;
}

