/*
 * probe.h - one debug probe attached to one device: the small interface
 * the station's job runner drives, with one backend per URL scheme.
 *
 *   sim:[name][?uid=HEX&fail=WHAT...]  an in-process simulated MCU (unit
 *                      tests, fault injection); see probe_sim.c
 *   gdb://host:port[?server=S]        a GDB remote-serial-protocol server
 *   gdb+unix:///path[?server=S]       the same over a Unix socket
 *                      S: qemu (default), openocd, jlink, pyocd, bmp: how
 *                      that server resets, and whether it offers vFlash
 *
 * Every call returns a cs_err code; on failure probe_error() says what
 * went wrong in words for the shift lead.  A probe is used by one thread
 * at a time (the job runner has one worker per probe).
 */
#ifndef PROBE_H
#define PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct probe probe;

/* How a device's run ended (probe_run). */
struct probe_stop {
	bool exited;    /* the program exited (semihosting SYS_EXIT on an
	                   emulated device): exit_code is valid */
	int  exit_code;
	bool timed_out; /* still running after timeout_ms (then halted) */
	int  signal;    /* stopped with this signal (e.g. 5 SIGTRAP, 11) */
};

/*
 * Connect to the probe at url and halt the device.  timeout_ms bounds
 * every later exchange with the probe (0 = 5000).  Errors: CS_EADDR (bad
 * URL or scheme), CS_EUNAVAIL (cannot connect), CS_EPROTO (the peer does
 * not speak the protocol), CS_ETIMEDOUT.
 */
int probe_open(probe **out, const char *url, unsigned timeout_ms,
    char *err, size_t errlen);

/* Detach (the device keeps running if it was resumed) and free.  NULL-safe. */
void probe_close(probe *p);

/* The last error's text ("" when none). */
const char *probe_error(const probe *p);

/* Read len bytes at addr (halted device).  Errors: CS_EIO (the target
 * refused: bad address), CS_ECLOSED (connection lost), CS_ETIMEDOUT,
 * CS_EPROTO. */
int probe_read(probe *p, uint32_t addr, void *buf, size_t len);

/* Write RAM (or anything the probe writes as plain memory).  Errors as
 * probe_read. */
int probe_write(probe *p, uint32_t addr, const void *buf, size_t len);

/*
 * Program flash: erase [erase_addr, erase_addr + erase_len) (page
 * aligned, per the target profile) and write len bytes at addr inside it.
 * Uses the server's flash commands (vFlashErase/vFlashWrite/vFlashDone)
 * when it offers them, plain memory writes otherwise (QEMU, where flash
 * is writable memory to the debugger).  erase_len 0: no erase (the bytes
 * must already be erased).  Several calls may be made before
 * probe_flash_done().  Errors as probe_read.
 */
int probe_flash_write(probe *p, uint32_t erase_addr, size_t erase_len,
    uint32_t addr, const void *buf, size_t len);
int probe_flash_done(probe *p);

/* Reset the device and leave it halted at its reset vector. */
int probe_reset_halt(probe *p);

/*
 * Let the device run (from reset: call probe_reset_halt first) for at most
 * timeout_ms and report how it stopped.  An emulated device whose firmware
 * exits (QEMU semihosting) reports exited + exit_code; the connection is
 * then gone and only probe_close may follow.
 */
int probe_run(probe *p, unsigned timeout_ms, struct probe_stop *stop);

struct target;

/*
 * Tell the probe which part is on it (copied).  Backends that drive the
 * part's flash themselves (cmsis-dap: its flash controller) need it before
 * probe_flash_write; for the others it is a no-op.  Errors: CS_EINVAL.
 */
int probe_set_target(probe *p, const struct target *t);

/* Bytes moved by this probe so far (benchmarks, progress). */
uint64_t probe_bytes(const probe *p);

/*
 * Lock the part as t's [protect] section says (readout protection /
 * debug lock) and verify that it took.  sim: and cmsis-dap:// probes run
 * the profile's steps (write, poll, reset); gdb probes run its monitor
 * commands for their server= kind.  Then the profile's check: a read
 * that must now fail (read-fails; only the target refusing it counts,
 * CS_EIO) or a register that must hold a value (reg).
 *
 * CS_OK: locked and verified.  CS_EUNIMPL: t cannot be locked (the
 * profile's reason is in probe_error()) or this probe cannot lock it.
 * CS_EIO: a step failed or the lock did not take ("lock did not take:
 * flash at 0x00000000 is still readable"); CS_ETIMEDOUT: a poll step or
 * a monitor command ran out of time; CS_ECLOSED, CS_EPROTO as for
 * probe_read.  probe_error() names the step or command.  After CS_OK the
 * device's flash can no longer be read through the probe.  A probe path
 * the contract manufacturer controls (a GDB server) could fake the
 * answer; see docs/targets.md, "Locking".
 */
int probe_protect(probe *p, const struct target *t);

#endif /* PROBE_H */
