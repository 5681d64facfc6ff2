/*
 * probe_sim.h - test hooks of the simulated MCU behind "sim:" probes
 * (probe_sim.c).  The simulated devices live in one process-wide table,
 * keyed by name, so that a test can reopen "sim:dev1" and see what was
 * written.  Thread-safe.
 */
#ifndef PROBE_SIM_H
#define PROBE_SIM_H

/*
 * Copy the whole flash of the sim device from to the device to (created,
 * erased, with the default UID, if it does not exist): a cloned device.
 * Errors: CS_ENOENT (no device from), CS_EINVAL (NULL or from == to),
 * CS_ENOMEM.
 */
int probe_sim_copy_flash(const char *from, const char *to);

/*
 * The debug port unlock of a locked LM3S on the sim device name: its
 * flash is mass erased (all 0xFF) and its flash protection goes back to
 * the factory values, so it can be read and programmed again.  The only
 * way back from probe_protect.  Errors: CS_ENOENT (no such device),
 * CS_EINVAL.
 */
int probe_sim_recover(const char *name);

/* 1 when some flash of the sim device name is read protected now, 0 when
 * none is; CS_ENOENT, CS_EINVAL. */
int probe_sim_locked(const char *name);

/* Forget every sim device (tests start from erased devices).  Must not
 * run while a sim probe is open. */
void probe_sim_reset_all(void);

#endif /* PROBE_SIM_H */
