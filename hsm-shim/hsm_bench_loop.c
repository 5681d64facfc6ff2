/*
 * hsm_bench_loop.c - the timed signing loop shared by
 * `countersign-keytool bench` and countersign-hsm-bench
 * (hsm_bench_loop.h).
 *
 * The workers wait at a gate until all of them exist, so that the first
 * one does not sign alone while the others are still being created; the
 * clock starts when the gate opens.
 */
#include "hsm_bench_loop.h"
#include "cs_err.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

/* Holds the workers back until all exist. */
struct gate {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            open;
};

struct worker {
	pthread_t         tid;
	unsigned          index;
	hsm_bench_sign_fn sign;
	void             *arg;
	atomic_bool      *stop;
	struct gate      *go;
	unsigned long     count;
	int               err;
};

static void *
work(void *p)
{
	struct worker *w = p;
	uint8_t        msg[CS_SHA256_LEN], sig[CS_SIG_LEN];

	memset(msg, 0x5a + (int)w->index, sizeof(msg));
	pthread_mutex_lock(&w->go->mtx);
	while (!w->go->open) {
		pthread_cond_wait(&w->go->cv, &w->go->mtx);
	}
	pthread_mutex_unlock(&w->go->mtx);
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		int rv = w->sign(w->arg, w->index, msg, sizeof(msg), sig);
		if (rv != CS_OK) {
			w->err = rv;
			break;
		}
		w->count++;
	}
	return NULL;
}

/* Monotonic seconds. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
hsm_bench_shim_sign(void *arg, unsigned thread, const uint8_t *msg,
    size_t len, uint8_t sig[CS_SIG_LEN])
{
	const struct hsm_bench_shim *s = arg;

	(void)thread; /* the shim picks the session */
	return cs_hsm_sign(s->h, s->label, s->alg, msg, len, sig);
}

int
hsm_bench_measure(unsigned threads, unsigned ms, hsm_bench_sign_fn sign,
    void *arg, unsigned long *count, double *secs)
{
	struct worker   w[HSM_BENCH_THREADS_MAX];
	struct gate     go = {.mtx = PTHREAD_MUTEX_INITIALIZER,
            .cv = PTHREAD_COND_INITIALIZER};
	atomic_bool     stop = false;
	struct timespec ts   = {(time_t)(ms / 1000),
            (long)(ms % 1000) * 1000000L};
	unsigned        started = 0;
	int             err     = CS_OK;
	double          t0;

	if (threads < 1 || threads > HSM_BENCH_THREADS_MAX) {
		return CS_EINVAL;
	}
	for (; started < threads; started++) {
		w[started] = (struct worker){.index = started, .sign = sign,
		    .arg = arg, .stop = &stop, .go = &go};
		if (pthread_create(&w[started].tid, NULL, work, &w[started]) !=
		    0) {
			err = CS_ENOMEM;
			atomic_store(&stop, true);
			break;
		}
	}
	pthread_mutex_lock(&go.mtx);
	go.open = true;
	pthread_cond_broadcast(&go.cv);
	pthread_mutex_unlock(&go.mtx);
	t0 = now_s();
	while (err == CS_OK && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		*count += w[i].count;
		err = err != CS_OK ? err : w[i].err;
	}
	*secs += now_s() - t0;
	return err;
}
