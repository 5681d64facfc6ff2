/*
 * hsm_bench_loop.h - the signing loop that `countersign-keytool bench` and
 * countersign-hsm-bench both time: N threads sign as fast as they can for
 * a while, then the signatures are counted.  One loop, so that the two
 * programs measure the same thing.
 *
 * What one signature is comes from the caller (hsm_bench_sign_fn): the
 * shim (hsm_bench_shim_sign below) or, in countersign-hsm-bench, bare
 * PKCS#11 calls.  Each thread signs a 32-byte message of its own (every
 * byte 0x5a + the thread's index), the size of a SHA-256 digest.
 *
 * Thread-safety: hsm_bench_measure() is called from one thread; the sign
 * function is called from all the workers at once.
 */
#ifndef HSM_BENCH_LOOP_H
#define HSM_BENCH_LOOP_H

#include "cs_crypto.h"
#include "cs_hsm.h"

#include <stddef.h>
#include <stdint.h>

/* Most threads one measurement starts. */
#define HSM_BENCH_THREADS_MAX 64u

/*
 * One signature of msg (len bytes) into sig by worker thread (0 to
 * threads - 1), with arg as given to hsm_bench_measure().  Returns CS_OK
 * or a cs_err code, which ends that worker's loop.
 */
typedef int (*hsm_bench_sign_fn)(void *arg, unsigned thread,
    const uint8_t *msg, size_t len, uint8_t sig[CS_SIG_LEN]);

/* The argument of hsm_bench_shim_sign: one key through the shim. */
struct hsm_bench_shim {
	cs_hsm     *h;
	const char *label;
	cs_alg      alg;
};

/* An hsm_bench_sign_fn: cs_hsm_sign() with the key arg (a struct
 * hsm_bench_shim) names; the shim lends each call a pooled session. */
int hsm_bench_shim_sign(void *arg, unsigned thread, const uint8_t *msg,
    size_t len, uint8_t sig[CS_SIG_LEN]);

/*
 * Start threads workers (1 to HSM_BENCH_THREADS_MAX) that loop on sign,
 * let them go together, stop them after ms milliseconds and wait for
 * them.  Adds the signatures made to *count and the seconds that passed
 * from the start to the last join to *secs, so that rounds accumulate.
 * Returns CS_OK, CS_EINVAL (threads out of range), CS_ENOMEM (a thread
 * could not start: the ones that did are stopped and joined) or the
 * first error a sign call returned.
 */
int hsm_bench_measure(unsigned threads, unsigned ms, hsm_bench_sign_fn sign,
    void *arg, unsigned long *count, double *secs);

#endif /* HSM_BENCH_LOOP_H */
