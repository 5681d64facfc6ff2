/*
 * lm3s_sim.c - the simulated LM3S flash controller and flash protection
 * (see lm3s_sim.h): the rules of the LM3S6965 data sheet's "Flash Memory
 * Protection" and "Nonvolatile Register Programming", as far as a
 * debugger can observe them.
 */
#include "lm3s_sim.h"

#include <string.h>

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
#define FMC_COMT   (1u << 3)
#define FCRIS_ARIS (1u << 0)
#define FCRIS_PRIS (1u << 1)

void
lm3s_sim_init(struct lm3s_sim *c, uint8_t *flash, size_t size)
{
	memset(c, 0, sizeof(*c));
	c->flash = flash;
	c->size  = size;
	for (unsigned i = 0; i < LM3S_SIM_BANKS; i++) {
		c->fmpre[i] = c->fmppe[i] = 0xFFFFFFFFu;
		c->fmpre_nv[i] = c->fmppe_nv[i] = 0xFFFFFFFFu;
	}
}

void
lm3s_sim_reset(struct lm3s_sim *c)
{
	c->fma = c->fmd = c->fcris = c->fcim = 0;
	memcpy(c->fmpre, c->fmpre_nv, sizeof(c->fmpre));
	memcpy(c->fmppe, c->fmppe_nv, sizeof(c->fmppe));
}

void
lm3s_sim_recover(struct lm3s_sim *c)
{
	bool ignored = c->commit_ignored;

	memset(c->flash, 0xFF, c->size);
	lm3s_sim_init(c, c->flash, c->size);
	c->commit_ignored = ignored;
}

/* Every 2 KiB block of [addr, addr + len) has its bit set in bits. */
static bool
all_set(const uint32_t *bits, uint32_t addr, size_t len)
{
	if (len == 0) {
		return true;
	}
	for (uint64_t b = addr / LM3S_SIM_BLOCK;
	     b <= ((uint64_t)addr + len - 1) / LM3S_SIM_BLOCK; b++) {
		if (b >= 32u * LM3S_SIM_BANKS ||
		    (bits[b / 32] & (1u << (b % 32))) == 0) {
			return false;
		}
	}
	return true;
}

bool
lm3s_sim_readable(const struct lm3s_sim *c, uint32_t addr, size_t len)
{
	return all_set(c->fmpre, addr, len);
}

bool
lm3s_sim_programmable(const struct lm3s_sim *c, uint32_t addr, size_t len)
{
	return all_set(c->fmppe, addr, len);
}

bool
lm3s_sim_locked(const struct lm3s_sim *c)
{
	for (unsigned i = 0; i < LM3S_SIM_BANKS; i++) {
		if (c->fmpre[i] != 0xFFFFFFFFu) {
			return true;
		}
	}
	return false;
}

/* FMC with the key: one operation. */
static void
fmc_op(struct lm3s_sim *c, uint32_t v)
{
	uint32_t a;

	if ((v & FMC_WRITE) != 0) {
		a = c->fma & ~3u;
		if (a >= c->size || !lm3s_sim_programmable(c, a, 4)) {
			c->fcris |= FCRIS_ARIS;
			return;
		}
		/* NOR: programming can only clear bits (little-endian). */
		for (unsigned i = 0; i < 4; i++) {
			c->flash[a + i] &= (uint8_t)(c->fmd >> (8 * i));
		}
		c->fcris |= FCRIS_PRIS;
	} else if ((v & FMC_ERASE) != 0) {
		a = c->fma & ~(LM3S_SIM_PAGE - 1);
		if (a >= c->size ||
		    !lm3s_sim_programmable(c, a, LM3S_SIM_PAGE)) {
			c->fcris |= FCRIS_ARIS;
			return;
		}
		memset(c->flash + a, 0xFF, LM3S_SIM_PAGE);
		c->fcris |= FCRIS_PRIS;
	} else if ((v & FMC_MERASE) != 0) {
		if (!lm3s_sim_programmable(c, 0, c->size)) {
			c->fcris |= FCRIS_ARIS;
			return;
		}
		memset(c->flash, 0xFF, c->size);
		c->fcris |= FCRIS_PRIS;
	} else if ((v & FMC_COMT) != 0) {
		/* FMA names the register: 2n = FMPREn, 2n + 1 = FMPPEn. */
		if (c->fma >= 2u * LM3S_SIM_BANKS) {
			c->fcris |= FCRIS_ARIS;
			return;
		}
		if (!c->commit_ignored) {
			unsigned n = c->fma / 2;

			if (c->fma % 2 == 0) {
				c->fmpre_nv[n] &= c->fmpre[n];
			} else {
				c->fmppe_nv[n] &= c->fmppe[n];
			}
		}
		c->fcris |= FCRIS_PRIS;
	}
}

bool
lm3s_sim_reg_write(struct lm3s_sim *c, uint32_t addr, uint32_t v)
{
	if (addr - LM3S_SIM_FMPRE0 < 4u * LM3S_SIM_BANKS && addr % 4 == 0) {
		c->fmpre[(addr - LM3S_SIM_FMPRE0) / 4] &= v; /* 1 -> 0 only */
		return true;
	}
	if (addr - LM3S_SIM_FMPPE0 < 4u * LM3S_SIM_BANKS && addr % 4 == 0) {
		c->fmppe[(addr - LM3S_SIM_FMPPE0) / 4] &= v;
		return true;
	}
	if (addr - LM3S_SIM_FC_BASE >= 0x1000u) {
		return false;
	}
	switch (addr - LM3S_SIM_FC_BASE) {
	case FC_FMA:
		/* Flash addresses use bits 17:0, a commit's register index
		 * bits 2:0.  (The part takes more for USER_REG/USER_DBG.) */
		c->fma = v & 0x3FFFFu;
		return true;
	case FC_FMD:
		c->fmd = v;
		return true;
	case FC_FMC:
		if (v >> 16 == FMC_WRKEY) {
			fmc_op(c, v);
		}
		return true; /* without the key: ignored, as on the part */
	case FC_FCRIS:
		return true;
	case FC_FCIM:
		c->fcim = v & 3u;
		return true;
	case FC_FCMISC:
		c->fcris &= ~(v & 3u);
		return true;
	default:
		return false;
	}
}

bool
lm3s_sim_reg_read(struct lm3s_sim *c, uint32_t addr, uint32_t *v)
{
	if (addr - LM3S_SIM_FMPRE0 < 4u * LM3S_SIM_BANKS && addr % 4 == 0) {
		*v = c->fmpre[(addr - LM3S_SIM_FMPRE0) / 4];
		return true;
	}
	if (addr - LM3S_SIM_FMPPE0 < 4u * LM3S_SIM_BANKS && addr % 4 == 0) {
		*v = c->fmppe[(addr - LM3S_SIM_FMPPE0) / 4];
		return true;
	}
	if (addr - LM3S_SIM_FC_BASE >= 0x1000u) {
		return false;
	}
	switch (addr - LM3S_SIM_FC_BASE) {
	case FC_FMA:
		*v = c->fma;
		return true;
	case FC_FMD:
		*v = c->fmd;
		return true;
	case FC_FMC:
		*v = 0; /* every operation has completed */
		return true;
	case FC_FCRIS:
		*v = c->fcris;
		return true;
	case FC_FCIM:
		*v = c->fcim;
		return true;
	case FC_FCMISC:
		*v = c->fcris & c->fcim;
		return true;
	default:
		return false;
	}
}
