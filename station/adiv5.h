/*
 * adiv5.h - ARM Debug Interface v5 over a CMSIS-DAP probe (dap.h): the
 * DP's power-up, memory access through MEM-AP 0 (an AHB-AP on Cortex-M),
 * and Cortex-M debug (halt, resume, core registers, reset to the reset
 * vector).
 *
 * Every call returns a cs_err code; adiv5_error() then says what failed,
 * with the address where there is one.  Errors common to all: CS_EIO (the
 * target answered FAULT, e.g. a bus error at a bad address: the sticky
 * flags are cleared again, so the next call works), CS_ETIMEDOUT (the
 * target kept answering WAIT, or a poll did not finish), CS_ECLOSED (the
 * probe is gone), CS_EPROTO (the probe answered nonsense).  One thread at a
 * time.
 */
#ifndef ADIV5_H
#define ADIV5_H

#include "dap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct adiv5 adiv5;

/* Cortex-M core register numbers (DCRSR REGSEL). */
#define ADIV5_REG_SP   13u
#define ADIV5_REG_LR   14u
#define ADIV5_REG_PC   15u
#define ADIV5_REG_XPSR 16u
#define ADIV5_REG_MSP  17u
#define ADIV5_REG_PSP  18u

/*
 * Use d (connected with dap_connect_swd; not taken: the caller closes it
 * after adiv5_close) and power up the debug and system domains (CTRL/STAT
 * CDBGPWRUPREQ | CSYSPWRUPREQ, waiting for both ACKs), then check that
 * AP 0 is a MEM-AP.  Errors: as above, CS_ENOMEM, CS_EUNAVAIL (no power-up
 * acknowledge, or AP 0 is not a MEM-AP: the error says).
 */
int  adiv5_open(adiv5 **out, dap *d);
void adiv5_close(adiv5 *a);

const char *adiv5_error(const adiv5 *a);

/* A register of AP 0 (reg 0x00..0xFC, SELECT handled here). */
int adiv5_ap_read(adiv5 *a, uint8_t reg, uint32_t *val);
int adiv5_ap_write(adiv5 *a, uint8_t reg, uint32_t val);

/*
 * Target memory through the MEM-AP, any address and length: aligned words
 * go in DAP_TransferBlock runs (TAR rewritten at every 1 KiB boundary,
 * where auto-increment stops being defined); partial words at the edges
 * are read as words and written as bytes (CSW size 8), so no neighbouring
 * byte is rewritten.
 */
int adiv5_mem_read(adiv5 *a, uint32_t addr, void *buf, size_t len);
int adiv5_mem_write(adiv5 *a, uint32_t addr, const void *buf, size_t len);
int adiv5_mem_read32(adiv5 *a, uint32_t addr, uint32_t *val);
int adiv5_mem_write32(adiv5 *a, uint32_t addr, uint32_t val);

/* Cortex-M: halt (DHCSR C_HALT, waits for S_HALT), resume, ask. */
int adiv5_cm_halt(adiv5 *a);
int adiv5_cm_resume(adiv5 *a);
int adiv5_cm_halted(adiv5 *a, bool *halted);

/* A core register (halted core; waits for S_REGRDY). */
int adiv5_cm_reg_read(adiv5 *a, unsigned reg, uint32_t *val);
int adiv5_cm_reg_write(adiv5 *a, unsigned reg, uint32_t val);

/*
 * Reset the device and stop at the reset vector: DEMCR VC_CORERESET, then
 * AIRCR SYSRESETREQ (nreset false) or the probe's DAP_ResetTarget (nreset
 * true), then wait for S_HALT; DEMCR is restored afterwards.
 */
int adiv5_cm_reset_halt(adiv5 *a, bool nreset);

#endif /* ADIV5_H */
