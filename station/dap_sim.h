/*
 * dap_sim.h - a simulated CMSIS-DAP v2 probe with an SWD target behind
 * it: the command interpreter answers DAP commands exactly as a probe
 * would, and the target is an ADIv5 DP with one MEM-AP onto a Cortex-M
 * memory map (the same as the sim: probe: flash with NOR rules, RAM, a
 * UID) and its core debug registers (DHCSR, DCRSR, DCRDR, DEMCR, AIRCR).
 *
 * Used in-process by tests of the DAP/ADIv5 layer (dap_sim_transport) and,
 * behind umockdev, as the USB device libusb talks to (tests/usb).
 */
#ifndef DAP_SIM_H
#define DAP_SIM_H

#include "dap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dap_sim dap_sim;

/* Faults a test can inject. */
struct dap_sim_faults {
	unsigned wait_count;   /* answer WAIT this many times first */
	bool     fault_next;   /* answer FAULT to the next transfer */
	unsigned unplug_after; /* answer this many more commands, then
	                          nothing (unplugged); 0 = never */
	bool     lock_ignored; /* the flash controller's COMT completes but
	                          keeps nothing: a lock that does not take */
};

/* A probe with serial (e.g. "CSIM0001") and a target whose UID is uid
 * (uid_len bytes at 0x2000FF00). */
int  dap_sim_new(dap_sim **out, const char *serial, const uint8_t *uid,
    size_t uid_len);
void dap_sim_free(dap_sim *s);

/* Answer one DAP command (cmd, len) into rsp; returns the response length,
 * 0 when unplugged (no answer). */
size_t dap_sim_command(dap_sim *s, const uint8_t *cmd, size_t len,
    uint8_t *rsp, size_t rsp_size);

void dap_sim_set_faults(dap_sim *s, const struct dap_sim_faults *f);

/* The debug port unlock sequence of a locked LM3S: flash mass erased
 * (0xFF) and its protection back to the factory values (lm3s_sim.h). */
void dap_sim_recover(dap_sim *s);

/* The target's memory, for checks (flash 0x0 256 KiB, RAM 0x20000000). */
int dap_sim_peek(dap_sim *s, uint32_t addr, void *buf, size_t len);

/* An in-process transport onto s (packet size 512). */
void dap_sim_transport(dap_sim *s, struct dap_transport *t);

#endif /* DAP_SIM_H */
