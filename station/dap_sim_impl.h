/*
 * dap_sim_impl.h - what the simulated probe (dap_sim.c) and its simulated
 * SWD target (dap_sim_target.c) share: the simulated part's constants,
 * the state of both, and the calls from the probe into the target.  Only
 * those two files include it; dap_sim.h is the interface.
 */
#ifndef DAP_SIM_IMPL_H
#define DAP_SIM_IMPL_H

#include "dap_sim.h"
#include "dap.h"
#include "lm3s_sim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

	/* The flash controller and flash protection. */
	struct lm3s_sim fc;
};

/* Little-endian 32-bit values in DAP packets and in target memory. */
static inline void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The SWD target (dap_sim_target.c). */

/* System reset (SYSRESETREQ, nRESET), as the core and flash see it. */
void sim_system_reset(dap_sim *s);

/* One SWD transaction with request req, retried on WAIT as the probe was
 * configured (DAP_TransferConfigure); returns the last ACK. */
uint8_t sim_swd_retry(dap_sim *s, uint8_t req, uint32_t *data);

#endif /* DAP_SIM_IMPL_H */
