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
 */
#ifndef CS_TARGET_H
#define CS_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TARGET_NAME_MAX 64u

enum target_program { TARGET_PROGRAM_MEMORY, TARGET_PROGRAM_VFLASH };
enum target_boot_check { TARGET_BOOT_NONE, TARGET_BOOT_SEMIHOSTING };
/* The flash controller a debug probe drives ([flash_controller] type). */
enum target_flash_ctl { TARGET_FLASH_CTL_NONE, TARGET_FLASH_CTL_LM3S };

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
	 * protection / debug lock) and how to check that it took.  False
	 * for parts that cannot be locked (QEMU): an order cannot require
	 * the lock there. */
	bool                   can_lock;
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
