/*
 * semihost.c - ARM semihosting through BKPT 0xAB (Thumb): r0 is the
 * operation, r1 its argument.
 */
#include "semihost.h"

#define SYS_WRITE0 0x04
#define SYS_EXIT   0x18

#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR    0x20023

static int
semihost(int op, const void *arg)
{
	register int         r0 __asm__("r0") = op;
	register const void *r1 __asm__("r1") = arg;

	__asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
	return r0;
}

void
cs_semihost_write(const char *s)
{
	(void)semihost(SYS_WRITE0, s);
}

void
cs_semihost_exit(int status)
{
	(void)semihost(SYS_EXIT, (const void *)(status == 0
	    ? ADP_STOPPED_APPLICATION_EXIT
	    : ADP_STOPPED_RUNTIME_ERROR));
	for (;;) {
	}
}

