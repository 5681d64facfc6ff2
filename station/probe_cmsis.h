/*
 * probe_cmsis.h - the "cmsis-dap:" probe backend (probe.h):
 *
 *   cmsis-dap://[serial][?vid=HEX&pid=HEX&clock=HZ]
 *
 * A CMSIS-DAP v2 probe (dap.h) in SWD mode with an ADIv5 MEM-AP onto a
 * Cortex-M (adiv5.h).  Opening connects, powers the debug domain up and
 * halts the core.  Memory is read and written through the MEM-AP; flash is
 * programmed through the part's own flash controller, which the target
 * profile names ([flash_controller], target.h): hand the profile over with
 * probe_cmsis_set_target() after probe_open, or flash writes are refused.
 * Reset: DEMCR VC_CORERESET + AIRCR SYSRESETREQ, stopping at the reset
 * vector.  Run: there is no semihosting over SWD, so probe_run resumes the
 * core, waits timeout_ms and reports timed_out (then halts it again), or
 * signal 5 when the core halted by itself (a breakpoint); target profiles
 * for real parts use boot_check = none.
 *
 * The transport comes from a factory: by default dap_usb_open (dap_usb.h,
 * libusb); tests inject dap_sim transports.
 */
#ifndef PROBE_CMSIS_H
#define PROBE_CMSIS_H

#include "dap.h"
#include "probe.h"
#include "cs_target.h"

#include <stddef.h>
#include <stdint.h>

/* Open the probe with serial ("" = the only one) and vid/pid (0 = any)
 * into *t; CS_OK or a cs_err with err set. */
typedef int (*probe_cmsis_factory)(const char *serial, uint16_t vid,
    uint16_t pid, struct dap_transport *t, char *err, size_t errlen);

/* Process-wide; NULL restores the default (dap_usb_open).  For tests: set
 * it before opening probes, not while any is being opened. */
void probe_cmsis_set_transport_factory(probe_cmsis_factory f);

/* Give a cmsis-dap probe its target profile (copied).  A no-op CS_OK for
 * probes of other schemes, so the job runner may call it for every probe.
 * Errors: CS_EINVAL. */
int probe_cmsis_set_target(probe *p, const struct target *t);

#endif /* PROBE_CMSIS_H */
