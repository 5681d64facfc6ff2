/*
 * lm3s_sim.h - the simulated LM3S flash controller and its flash
 * protection registers, shared by the two simulated parts (the sim:
 * probe's device, probe_sim.c, and the SWD target behind the simulated
 * CMSIS-DAP probe, dap_sim_target.c), so that one profile locks both the
 * same way.
 *
 * What is modelled, from the Stellaris LM3S6965 data sheet:
 *   0x400FD000 FMA, 0x400FD004 FMD, 0x400FD008 FMC (key 0xA442 in bits
 *   31:16; WRITE, ERASE, MERASE, COMT), 0x400FD00C FCRIS (ARIS, PRIS),
 *   0x400FD010 FCIM, 0x400FD014 FCMISC (write 1 to clear);
 *   0x400FE200..0x400FE20C FMPRE0..3 (read enable, one bit per 2 KiB
 *   block), 0x400FE400..0x400FE40C FMPPE0..3 (program enable).
 * Writing FMPREn/FMPPEn can only clear bits and takes effect at once;
 * FMC COMT with FMA = 2n (FMPREn) or 2n + 1 (FMPPEn) commits the
 * register, and only committed values survive a reset.  A block with its
 * FMPRE bit clear cannot be read as data by the debugger (a bus fault);
 * one with its FMPPE bit clear cannot be written or erased (FCRIS.ARIS).
 * MERASE is refused while any FMPPE bit is clear (the data sheet forbids
 * it then).  The way back is the debug port unlock sequence, which mass
 * erases flash and restores the factory values: lm3s_sim_recover.
 *
 * Not modelled: the legacy FMPRE/FMPPE aliases at 0x400FE130/134,
 * USER_DBG and USER_REGn, timing (every operation is done when FMC is
 * read back).  Not thread-safe: the caller serialises.
 */
#ifndef LM3S_SIM_H
#define LM3S_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LM3S_SIM_FC_BASE   0x400FD000u
#define LM3S_SIM_FMPRE0    0x400FE200u
#define LM3S_SIM_FMPPE0    0x400FE400u
#define LM3S_SIM_BLOCK     0x800u /* protection granule */
#define LM3S_SIM_PAGE      0x400u /* erase page */
#define LM3S_SIM_BANKS     4u     /* FMPRE0..3: 4 x 32 x 2 KiB = 256 KiB */

struct lm3s_sim {
	uint8_t *flash; /* the part's flash at address 0 (caller's) */
	size_t   size;  /* at most LM3S_SIM_BANKS * 32 blocks */
	uint32_t fma, fmd, fcris, fcim;
	uint32_t fmpre[LM3S_SIM_BANKS], fmppe[LM3S_SIM_BANKS];       /* live */
	uint32_t fmpre_nv[LM3S_SIM_BANKS], fmppe_nv[LM3S_SIM_BANKS]; /* kept */
	bool     commit_ignored; /* fault: COMT completes, nothing is kept */
};

/* A factory-fresh controller (nothing protected) over flash[0, size);
 * the flash bytes are left as they are. */
void lm3s_sim_init(struct lm3s_sim *c, uint8_t *flash, size_t size);

/* A system reset: the committed protection comes back into effect. */
void lm3s_sim_reset(struct lm3s_sim *c);

/* The debug port unlock sequence: flash erased to 0xFF, protection and
 * registers back to the factory values. */
void lm3s_sim_recover(struct lm3s_sim *c);

/* A 32-bit register access at addr; false when addr is not one of the
 * modelled registers (the caller answers a bus fault). */
bool lm3s_sim_reg_read(struct lm3s_sim *c, uint32_t addr, uint32_t *v);
bool lm3s_sim_reg_write(struct lm3s_sim *c, uint32_t addr, uint32_t v);

/* May the debugger read flash [addr, addr + len) as data / may the
 * controller program or erase it?  (Inside flash; the caller checks.) */
bool lm3s_sim_readable(const struct lm3s_sim *c, uint32_t addr, size_t len);
bool lm3s_sim_programmable(const struct lm3s_sim *c, uint32_t addr,
    size_t len);

/* Whether any block is read protected now (messages and tests). */
bool lm3s_sim_locked(const struct lm3s_sim *c);

#endif /* LM3S_SIM_H */
