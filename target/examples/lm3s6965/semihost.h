/*
 * semihost.h - the two ARM semihosting calls the example firmware needs
 * (QEMU: -semihosting-config enable=on,target=native).
 */
#ifndef CS_SEMIHOST_H
#define CS_SEMIHOST_H

/* Write a NUL-terminated string to the host's console (SYS_WRITE0). */
void cs_semihost_write(const char *s);

/* Stop the emulator with exit status 0 or 1 (SYS_EXIT with
 * ADP_Stopped_ApplicationExit, or RunTimeErrorUnknown). */
void cs_semihost_exit(int status) __attribute__((noreturn));

#endif /* CS_SEMIHOST_H */
