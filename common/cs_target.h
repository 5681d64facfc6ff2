/*
 * cs_target.h - target profiles: what the station must know about a part,
 * as data files (station/targets/NAME.ini), so that a new part needs no
 * code:
 *
 *   [target]
 *   name = lm3s6965
 *   description = TI Stellaris LM3S6965 (QEMU lm3s6965evb)
 *   [uid]
 *   address = 0x2000FF00
 *   length = 8
 *   [flash]
 *   base = 0x00000000
 *   size = 0x40000
 *   page_size = 0x400
 *   [record]
 *   address = 0x0003F000      ; page aligned, inside flash
 *   size = 0x400              ; bytes reserved (at least 160)
 *   [program]
 *   method = memory           ; memory | vflash
 *   [reset]
 *   method = monitor          ; monitor (the server's reset command)
 *   boot_check = semihosting  ; semihosting (emulated: the exit code) | none
 *   boot_timeout_ms = 10000
 *   [flash_controller]        ; optional: for probes that program flash
 *   type = lm3s               ; through the part's controller (cmsis-dap)
 *   base = 0x400FD000
 *   [protect]                 ; optional: how to lock the part (below)
 *   method = none             ; none (cannot be locked) | lock
 *   reason = QEMU models no flash protection
 *
 * A lockable part's [protect] (docs/targets.md, "Locking"):
 *
 *   method = lock
 *   step1 = write 0x400FE200 0x00000000   ; sim: and cmsis-dap:// probes
 *   step2 = poll 0x400FD008 0x8 0x0 500   ; addr mask value timeout_ms
 *   step3 = reset                         ; reset and halt
 *   monitor1 = openocd: stm32f2x lock 0   ; GDB servers: SERVER: command
 *   expect1 = locked                      ; optional: in monitor1's output
 *   timeout_ms = 10000                    ; each monitor command, at most
 *   check = read-fails 0x00000000         ; or: reg 0xADDR 0xMASK 0xVALUE
 */
#ifndef CS_TARGET_H
#define CS_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TARGET_NAME_MAX 64u

/* [protect] limits: stepN (N = 1..), monitorN and expectN (N = 1..). */
#define TARGET_PROTECT_STEPS_MAX    64u
#define TARGET_PROTECT_MONITORS_MAX 16u
#define TARGET_PROTECT_CMD_MAX      127u    /* a monitor command's chars */
#define TARGET_PROTECT_POLL_MAX_MS  600000u /* a poll step's timeout */
#define TARGET_PROTECT_REASON_MAX   127u

enum target_program { TARGET_PROGRAM_MEMORY, TARGET_PROGRAM_VFLASH };
enum target_boot_check { TARGET_BOOT_NONE, TARGET_BOOT_SEMIHOSTING };
/* The flash controller a debug probe drives ([flash_controller] type). */
enum target_flash_ctl { TARGET_FLASH_CTL_NONE, TARGET_FLASH_CTL_LM3S };

/* One step of a lock sequence, run by probes that drive the part's
 * registers themselves (sim:, cmsis-dap://). */
enum target_step_op {
	TARGET_STEP_WRITE, /* write the 32-bit value at addr */
	TARGET_STEP_POLL,  /* until (word at addr & mask) == value, at most
	                      timeout_ms */
	TARGET_STEP_RESET, /* reset the part and halt it (probe_reset_halt) */
};

struct target_step {
	enum target_step_op op;
	uint32_t            addr, mask, value, timeout_ms;
};

/* A monitor command for one kind of GDB server (its server= name). */
struct target_monitor {
	char server[8];                          /* openocd, jlink, pyocd, bmp */
	char cmd[TARGET_PROTECT_CMD_MAX + 1];
	char expect[TARGET_PROTECT_CMD_MAX + 1]; /* "" = any output */
};

/* How the station checks that the lock took (after the steps or the
 * monitor commands). */
enum target_check_op {
	TARGET_CHECK_READ_FAILS, /* a read of the word at addr must fail */
	TARGET_CHECK_REG,        /* (word at addr & mask) must equal value */
};

struct target_protect {
	/* method = none: why the part cannot be locked ("" otherwise). */
	char                  reason[TARGET_PROTECT_REASON_MAX + 1];
	struct target_step    step[TARGET_PROTECT_STEPS_MAX];
	size_t                n_steps;
	struct target_monitor monitor[TARGET_PROTECT_MONITORS_MAX];
	size_t                n_monitors;
	uint32_t              monitor_timeout_ms; /* each monitor command */
	enum target_check_op  check;
	uint32_t              check_addr, check_mask, check_value;
};

struct target {
	char     name[TARGET_NAME_MAX + 1];
	char     description[128];
	uint32_t uid_addr;
	uint32_t uid_len;     /* 1..32 */
	uint32_t flash_base;
	uint32_t flash_size;
	uint32_t page_size;   /* power of two */
	uint32_t record_addr; /* page aligned, inside flash */
	uint32_t record_size; /* >= 160, whole pages */
	enum target_program    program;
	enum target_boot_check boot_check;
	uint32_t               boot_timeout_ms;
	enum target_flash_ctl  flash_ctl;      /* NONE without the section */
	uint32_t               flash_ctl_base; /* its registers */
	/* [protect]: the profile says how to lock the part (readout
	 * protection / debug lock) and how to check that it took
	 * (method = lock).  False for parts that cannot be locked (QEMU;
	 * method = none, or no section): an order cannot require the lock
	 * there. */
	bool                   can_lock;
	struct target_protect  protect;
};

/*
 * Load a profile: name is either a path to an .ini file or a profile name
 * looked up as DIR/NAME.ini in dirs (a NULL-terminated list; the station
 * passes its configured directory and the installed one).  Every value is
 * checked (alignment, ranges, the record page inside flash; [target] name
 * must be the file's name without .ini).  Errors:
 * CS_ENOENT (no such profile: err lists the names available), CS_ECONFIG
 * (file:line: message).
 */
int target_load(struct target *t, const char *name, const char *const *dirs,
    char *err, size_t errlen);

#endif /* CS_TARGET_H */
