/*
 * startup.c - reset handler and vector table for the lm3s6965evb example:
 * copy .data, clear .bss, paint the stack (for the high-water mark main
 * reports), call main, exit through semihosting with main's status.
 */
#include "semihost.h"

#include <stdint.h>

extern uint8_t       __data_start[], __data_end[];
extern const uint8_t __data_load[];
extern uint32_t      __bss_start, __bss_end, __stack_top, __stack_limit;

int  main(void);
void cs_reset_handler(void);

/* The stack paint pattern; main measures how much of it survived. */
#define CS_STACK_PAINT 0xC5C5C5C5u

static void
fault_handler(void)
{
	cs_semihost_write("countersign: UNAUTHORIZED DEVICE (CPU fault)\n");
	cs_semihost_exit(1);
}

void
cs_reset_handler(void)
{
	const uint8_t *src = __data_load;
	uint32_t      *dst;
	uint32_t       sp;

	/* Byte by byte: .data's image ends exactly where the measured
	 * image ends (lm3s6965.ld), not on a word boundary. */
	for (uint8_t *d = __data_start; d < __data_end;) {
		*d++ = *src++;
	}
	for (dst = &__bss_start; dst < &__bss_end;) {
		*dst++ = 0;
	}
	/* Paint from the end of bss up to just below the current frame. */
	__asm__ volatile("mov %0, sp" : "=r"(sp));
	for (dst = &__stack_limit; (uint32_t)dst < sp - 64;) {
		*dst++ = CS_STACK_PAINT;
	}
	cs_semihost_exit(main() == 0 ? 0 : 1);
}

/* Cortex-M3 vector table: initial SP, reset, then the fault handlers. */
__attribute__((section(".vectors"), used))
static void (*const vectors[16])(void) = {
	(void (*)(void))(uintptr_t)&__stack_top,
	cs_reset_handler,
	fault_handler, /* NMI */
	fault_handler, /* HardFault */
	fault_handler, /* MemManage */
	fault_handler, /* BusFault */
	fault_handler, /* UsageFault */
};
