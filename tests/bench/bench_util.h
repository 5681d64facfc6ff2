/*
 * bench_util.h - what the benchmark programs share: error messages, the
 * clock, interruptible sleeps, running a helper program with its output
 * captured, and removing a scratch directory.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <signal.h>
#include <stddef.h>

/* The program's name in messages; set by main. */
extern const char *bench_prog;

/* Set by bench_on_signal (install it for SIGINT/SIGTERM). */
extern volatile sig_atomic_t bench_interrupted;
void bench_on_signal(int sig);

/* "PROG: error: ..." on stderr; returns 1. */
int bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic seconds. */
double bench_now_s(void);

/* Sleep ms, cut short when interrupted. */
void bench_sleep_ms(unsigned ms);

/*
 * Run argv to completion with stdout and stderr captured in out (NUL
 * terminated, cut to len); the child dies with us.  Returns 0 on exit
 * status 0; otherwise prints what it said and returns 1.
 */
int bench_run(char *const argv[], char *out, size_t len);

/* Remove dir and everything below it. */
void bench_rmtree(const char *dir);

#endif /* BENCH_UTIL_H */
