/*
 * cs_tls_gate.c - the connection budget of nng's own TLS servers (the
 * console's HTTP server): caps, handshake deadline and idle timeout,
 * enforced from inside the engine because nng has none.  Split from
 * cs_tls.c; the engine calls in at conn init, fini and on every byte.
 */
#include "cs_tls_impl.h"
#include "cs_err.h"
#include "cs_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* The gate: budgets for connections that nng's own servers accept.   */

/*
 * nng 1.5.2's HTTP server (the console) has no handshake deadline, no idle
 * timeout and no connection cap, and its TLS stream loses a TCP error
 * that arrives while no read is queued (such a connection is never freed).
 * Its connections all pass through this engine, so the budget is kept
 * here: a connection over the total or per-address cap is refused when
 * nng creates it (conn init fails; nng frees it and accepts the next), and
 * a timer closes those that have not finished their handshake within
 * handshake_ms or that the server has sent nothing on for idle_ms (bytes
 * from the client do not count: one that trickles a byte every few
 * seconds and never completes a request is idle all the same).
 *
 * Closing needs the stream: the `tls` handle nng passes to conn init is
 * its TLS stream, whose first member is the nng_stream that
 * nng_stream_close() takes (nng 1.5.2, src/supplemental/tls/tls_common.c).
 * That is nng's layout, not its documented API; Debian 12 ships exactly
 * this nng, and tests/integration/station_port_test.c checks the
 * behaviour.  Lock order: gate.mtx, then nng's connection lock (inside
 * nng_stream_close); engine operations never take gate.mtx, conn init and
 * fini run without nng's connection lock.
 */
struct gate_ent {
	struct gate_ent *prev, *next;
	void            *tls;     /* nng's TLS stream */
	uint8_t          src[16]; /* peer address, v4-mapped */
	uint64_t         t_open;
	uint64_t         t_last;  /* atomic: last byte the server sent */
	bool             hs_done; /* atomic */
	bool             closing;
};

static struct {
	pthread_mutex_t      mtx;
	bool                 on;
	struct cs_tls_limits lim;
	struct gate_ent     *head;
	unsigned             n;
	bool                 timer_started;
	pthread_t            timer;
	uint64_t             refused, timeouts, idle;
	uint64_t             log_at;
} gate = {.mtx = PTHREAD_MUTEX_INITIALIZER};

static uint64_t
gate_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
tls_gate_touch(nng_tls_engine_conn *ec)
{
	if (ec != NULL && ec->gate != NULL) {
		__atomic_store_n(&ec->gate->t_last, gate_now(),
		                 __ATOMIC_RELAXED);
	}
}

void
tls_gate_handshake_done(nng_tls_engine_conn *ec)
{
	if (ec->gate != NULL) {
		__atomic_store_n(&ec->gate->hs_done, true, __ATOMIC_RELAXED);
	}
}

static void *
gate_timer(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec d = {.tv_nsec = 200 * 1000 * 1000};
		nanosleep(&d, NULL);
		tls_server_log_flush();
		uint64_t now = gate_now();
		pthread_mutex_lock(&gate.mtx);
		for (struct gate_ent *e = gate.head; e != NULL; e = e->next) {
			uint64_t last =
			    __atomic_load_n(&e->t_last, __ATOMIC_RELAXED);
			bool hs = __atomic_load_n(&e->hs_done, __ATOMIC_RELAXED);
			bool late = !hs && now > e->t_open &&
			            now - e->t_open >= gate.lim.handshake_ms;
			bool idle = now > last && now - last >= gate.lim.idle_ms;
			if (e->closing || (!late && !idle)) {
				continue;
			}
			e->closing = true;
			if (late) {
				gate.timeouts++;
			} else {
				gate.idle++;
			}
			nng_stream_close((nng_stream *)e->tls);
		}
		pthread_mutex_unlock(&gate.mtx);
	}
	return NULL;
}

/* At conn init (server side): admit the connection, or refuse it. */
int
tls_gate_admit(nng_tls_engine_conn *ec, void *tls)
{
	nng_sockaddr     sa;
	uint8_t          key[16] = {0};
	unsigned         same    = 0;
	struct gate_ent *e;
	int              rv = 0;

	pthread_mutex_lock(&gate.mtx);
	if (!gate.on) {
		pthread_mutex_unlock(&gate.mtx);
		return 0;
	}
	if (nng_stream_get_addr((nng_stream *)tls, NNG_OPT_REMADDR, &sa) ==
	    0) {
		if (sa.s_family == NNG_AF_INET) {
			key[10] = key[11] = 0xff;
			memcpy(key + 12, &sa.s_in.sa_addr, 4);
		} else if (sa.s_family == NNG_AF_INET6) {
			memcpy(key, sa.s_in6.sa_addr, 16);
		}
	}
	for (e = gate.head; e != NULL; e = e->next) {
		same += memcmp(e->src, key, 16) == 0 ? 1u : 0u;
	}
	if (gate.n >= gate.lim.max_conns || same >= gate.lim.max_per_source) {
		uint64_t now = gate_now();
		gate.refused++;
		if (now >= gate.log_at) {
			cs_log_warn("tls", "connection refused: %s open=%u "
			                   "refused_total=%llu",
			            gate.n >= gate.lim.max_conns
			                ? "max_connections reached"
			                : "max_connections_per_source reached",
			            gate.n, (unsigned long long)gate.refused);
			gate.log_at = now + 10000;
		}
		rv = NNG_ECONNREFUSED;
	} else if ((e = calloc(1, sizeof(*e))) == NULL) {
		rv = NNG_ENOMEM;
	} else {
		e->tls    = tls;
		e->t_open = e->t_last = gate_now();
		memcpy(e->src, key, 16);
		e->next = gate.head;
		if (gate.head != NULL) {
			gate.head->prev = e;
		}
		gate.head = e;
		gate.n++;
		ec->gate = e;
	}
	pthread_mutex_unlock(&gate.mtx);
	return rv;
}

void
tls_gate_leave(nng_tls_engine_conn *ec)
{
	struct gate_ent *e = ec->gate;

	if (e == NULL) {
		return;
	}
	pthread_mutex_lock(&gate.mtx);
	if (e->prev != NULL) {
		e->prev->next = e->next;
	} else {
		gate.head = e->next;
	}
	if (e->next != NULL) {
		e->next->prev = e->prev;
	}
	gate.n--;
	pthread_mutex_unlock(&gate.mtx);
	free(e);
	ec->gate = NULL;
}

int
cs_tls_server_limits(const struct cs_tls_limits *lim)
{
	int rv = CS_OK;

	pthread_mutex_lock(&gate.mtx);
	gate.lim = *lim;
	if (gate.lim.handshake_ms == 0) {
		gate.lim.handshake_ms = 10000;
	}
	if (gate.lim.idle_ms == 0) {
		gate.lim.idle_ms = 60000;
	}
	if (gate.lim.max_conns == 0) {
		gate.lim.max_conns = 256;
	}
	if (gate.lim.max_per_source == 0) {
		gate.lim.max_per_source = 32;
	}
	if (!gate.timer_started) {
		if (pthread_create(&gate.timer, NULL, gate_timer, NULL) != 0) {
			rv = CS_ENOMEM;
		} else {
			pthread_detach(gate.timer);
			gate.timer_started = true;
		}
	}
	gate.on = rv == CS_OK;
	pthread_mutex_unlock(&gate.mtx);
	return rv;
}

void
cs_tls_server_limits_stats(struct cs_tls_gate_stats *st)
{
	pthread_mutex_lock(&gate.mtx);
	st->open      = gate.n;
	st->refused   = gate.refused;
	st->timeouts  = gate.timeouts;
	st->idle      = gate.idle;
	pthread_mutex_unlock(&gate.mtx);
}

