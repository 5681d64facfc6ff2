/*
 * authority_bench.c - countersign-authority-bench: how close the whole
 * signing authority comes to the HSM it signs with.
 *
 * In one run it stands up the real system in a temporary directory (test
 * PKI, SoftHSM2 token, OEM key, station CA, countersign-authority on
 * loopback TLS, N enrolled stations) and then measures two things with
 * the same token, the same key and the same number K of HSM sessions:
 *
 *   records   N station clients, each its own station and TLS session,
 *             sign distinct UIDs in a closed loop for S seconds.  A
 *             record counts when Sign returned it, i.e. after the
 *             authority committed it to LMDB with fsync: these are
 *             durable records.  Per-request latency is taken with
 *             CLOCK_MONOTONIC around station_session_call().
 *   raw HSM   the authority is stopped, and K threads call cs_hsm_sign()
 *             on a shim opened with K sessions for S seconds (P-256: over
 *             a 32-byte digest; Ed25519: over a message as long as a
 *             record's signed message).
 *
 * ratio = records/s over raw HSM signatures/s: the share of the HSM's
 * signing rate that reaches stations as durable records.  The admin
 * RPC's Stats counters, read before and after the records phase, give
 * LMDB write transactions per record.  The last line is key=value pairs
 * for scripts.
 *
 * This is a benchmark, not a test: ctest does not run it, and it fails
 * only when the system cannot be set up or a request fails.  It cleans up
 * (authority killed, temporary directory removed unless --keep) on every
 * path; the authority also dies with this process (PR_SET_PDEATHSIG).
 */
#include "countersign/record.h"
#include "countersign/v1/admin.pb-c.h"
#include "countersign/v1/authority.pb-c.h"
#include "cs_crypto.h"
#include "bench_util.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "cs_log.h"
#include "cs_rpc.h"
#include "station_config.h"
#include "station_session.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG        "countersign-authority-bench"
#define TOKEN       "bench"
#define PIN         "123456"
#define KEY         "oem-key"
#define ORDER       "PO-BENCH"
#define PRODUCT     4242u
#define UIDLEN      12u
#define QUOTA       "100000000"
#define CLIENTS_MAX 256u  /* [authority] workers is at most 256 */
#define SESSIONS_MAX 63u  /* the authority opens K + 1, the shim's limit
                             is 64 */
#define SECONDS_MAX 3600u
#define OUT_MAX     16384u
#define PATH_MAX_   700u

/* Everything one run owns; bench_cleanup() releases all of it. */
struct bench {
	unsigned clients, seconds, sessions;
	cs_alg   alg;
	bool     keep;

	char *dir;
	char  authority[PATH_MAX_], admin[PATH_MAX_], station[PATH_MAX_];
	char  keytool[PATH_MAX_], make_pki[PATH_MAX_], make_token[PATH_MAX_];
	char  conf[PATH_MAX_], log[PATH_MAX_], sock[PATH_MAX_];
	char  pin[PATH_MAX_], softhsm_conf[PATH_MAX_];
	char  out[OUT_MAX];
	pid_t pid;
	int   port;
};

/* Holds the workers back until all exist, so that they start together. */
struct gate {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            open;
};

/* One station client of the records phase. */
struct client {
	pthread_t        tid;
	unsigned         id;
	station_session *s;
	struct gate     *go;
	atomic_bool     *stop;
	uint64_t        *lat_ns; /* per-request latency, grown as needed */
	size_t           n, cap;
	unsigned long    errors;
	char             first_error[320];
};

/* One signer of the raw HSM phase. */
struct signer {
	pthread_t     tid;
	unsigned      id;
	cs_hsm       *h;
	cs_alg        alg;
	struct gate  *go;
	atomic_bool  *stop;
	unsigned long count;
	int           err;
};

struct figures {
	double        records_per_s, raw_per_s, elapsed_s, raw_elapsed_s;
	double        p50_ms, p99_ms, max_ms, mean_ms;
	unsigned long records, raw, errors;
	uint64_t      commits, issued, batch_max;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: " PROG " [--clients N] [--seconds S] [--sessions K]\n"
	    "       [--alg p256|ed25519] [--keep]\n"
	    "\n"
	    "Stands up a complete authority in a temporary directory, has N "
	    "stations\n(default 8) sign distinct UIDs over TLS for S seconds "
	    "(default 5) with\nK HSM sessions (default 4), then measures the "
	    "raw HSM signing rate\nthrough the shim with K threads on the "
	    "same token and key.  --keep\nleaves the temporary directory "
	    "(logs, store, token) in place.\nCS_SOURCE_DIR overrides where "
	    "the test scripts are found.\n");
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Files and processes                                                 */
/* ------------------------------------------------------------------ */

static int
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	int   rv = 0;

	if (fp == NULL) {
		return bench_fail("cannot write %s: %s", path, strerror(errno));
	}
	if (fputs(text, fp) < 0) {
		rv = bench_fail("cannot write %s: %s", path, strerror(errno));
	}
	if (fclose(fp) != 0 && rv == 0) {
		rv = bench_fail("cannot write %s: %s", path, strerror(errno));
	}
	return rv;
}

/* bench_run with the output in b->out. */
static int
run(struct bench *b, char *const argv[])
{
	return bench_run(argv, b->out, sizeof(b->out));
}

/* run() with a NULL-terminated argument list. */
static int
runv(struct bench *b, const char *prog, ...)
{
	char   *argv[32];
	va_list ap;
	size_t  n = 0;

	argv[n++] = (char *)prog;
	va_start(ap, prog);
	while (n < 31 && (argv[n] = va_arg(ap, char *)) != NULL) {
		n++;
	}
	va_end(ap);
	argv[n] = NULL;
	return run(b, argv);
}

#define ADMIN(b, ...) runv(b, (b)->admin, "-c", (b)->conf, __VA_ARGS__, NULL)

/* Start the authority with its log in b->log; b->port from its log. */
static int
start_authority(struct bench *b)
{
	char *argv[] = {b->authority, (char *)"-c", b->conf, NULL};
	char  line[1024];

	if ((b->pid = fork()) < 0) {
		b->pid = 0;
		return bench_fail("fork: %s", strerror(errno));
	}
	if (b->pid == 0) {
		int fd = open(b->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		/* Never outlive the benchmark, whatever kills it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0) {
			_exit(126);
		}
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
		execv(argv[0], argv);
		_exit(127);
	}
	/* Wait up to 20 s for "listening url=tls... port=N". */
	for (unsigned waited = 0; waited < 20000 && !bench_interrupted;
	     waited += 20) {
		FILE *fp = fopen(b->log, "r");
		int   status;

		while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
			char *p = strstr(line, " port=");

			if (strstr(line, "listening url=tls") != NULL &&
			    p != NULL) {
				fclose(fp);
				b->port = atoi(p + 6);
				return b->port > 0 ? 0 :
				                     bench_fail("no port in: %s", line);
			}
		}
		if (fp != NULL) {
			fclose(fp);
		}
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			b->pid = 0;
			return bench_fail("the authority exited at start; see %s "
			    "(--keep keeps it)", b->log);
		}
		bench_sleep_ms(20);
	}
	return bench_fail("the authority did not start listening; see %s", b->log);
}

/* SIGTERM, reap within 15 s, SIGKILL after that.  Returns its status. */
static int
stop_authority(struct bench *b)
{
	int status = 0;

	if (b->pid <= 0) {
		return 0;
	}
	kill(b->pid, SIGTERM);
	for (unsigned waited = 0; waited < 15000; waited += 10) {
		pid_t r = waitpid(b->pid, &status, WNOHANG);

		if (r == b->pid || (r < 0 && errno != EINTR)) {
			b->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		bench_sleep_ms(10);
	}
	kill(b->pid, SIGKILL);
	waitpid(b->pid, &status, 0);
	b->pid = 0;
	return -1;
}

static void
bench_cleanup(struct bench *b)
{
	stop_authority(b);
	if (b->dir == NULL) {
		return;
	}
	if (b->keep) {
		fprintf(stderr, PROG ": kept %s\n", b->dir);
	} else {
		bench_rmtree(b->dir);
	}
	free(b->dir);
	b->dir = NULL;
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

static int
write_authority_conf(struct bench *b)
{
	char text[4096];

	/* Workers: one per client plus room for re-authentication. */
	snprintf(text, sizeof(text),
	    "[authority]\n"
	    "id = bench-authority\n"
	    "data_dir = %s/data\n"
	    "station_listen = tls+tcp://127.0.0.1:0\n"
	    "admin_listen = ipc://%s\n"
	    "workers = %u\n"
	    "map_size_mb = 4096\n"
	    "[tls]\n"
	    "cert = %s/server.pem\n"
	    "key = %s/server.key\n"
	    "station_ca = %s/station-ca.pem\n"
	    "[hsm]\n"
	    "module = " CS_SOFTHSM_MODULE "\n"
	    "token = " TOKEN "\n"
	    "pin_file = %s\n"
	    "sessions = %u\n",
	    b->dir, b->sock,
	    b->clients + 2 > CLIENTS_MAX ? CLIENTS_MAX : b->clients + 2,
	    b->dir, b->dir, b->dir, b->pin, b->sessions);
	return write_file(b->conf, text);
}

static void
station_paths(const struct bench *b, unsigned i, char *conf, char *cert,
    char *key)
{
	snprintf(conf, PATH_MAX_, "%s/st%u.conf", b->dir, i);
	snprintf(cert, PATH_MAX_, "%s/st%u.pem", b->dir, i);
	snprintf(key, PATH_MAX_, "%s/st%u.key", b->dir, i);
}

/* station init, then enrollment by the officer. */
static int
enroll(struct bench *b, unsigned i)
{
	char conf[PATH_MAX_], cert[PATH_MAX_], key[PATH_MAX_], csr[PATH_MAX_];
	char name[16], text[2048];
	int  rv;

	station_paths(b, i, conf, cert, key);
	snprintf(name, sizeof(name), "st%u", i);
	snprintf(csr, sizeof(csr), "%s/st%u.csr", b->dir, i);
	snprintf(text, sizeof(text),
	    "[station]\n"
	    "name = %s\n"
	    "authority_url = tls+tcp://127.0.0.1:%d\n"
	    "ca = %s/ca.pem\n"
	    "cert = %s\n"
	    "key = %s\n"
	    "timeout_ms = 30000\n",
	    name, b->port, b->dir, cert, key);
	if ((rv = write_file(conf, text)) != 0 ||
	    (rv = runv(b, b->station, "-c", conf, "init", NULL)) != 0) {
		return rv;
	}
	return ADMIN(b, "station", "enroll", "--csr", csr, "--name", name,
	    "--cm", "acme", "-o", cert);
}

/* Everything up to a running authority with an order and N stations. */
static int
setup(struct bench *b)
{
	const char *base = getenv("TMPDIR");
	char        tmpl[PATH_MAX_], product[16], uidlen[8];
	int         rv;

	snprintf(tmpl, sizeof(tmpl), "%s/cs-bench-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(tmpl) == NULL || (b->dir = strdup(tmpl)) == NULL) {
		return bench_fail("cannot make a temporary directory: %s",
		    strerror(errno));
	}
	snprintf(b->conf, sizeof(b->conf), "%s/authority.conf", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/authority.log", b->dir);
	snprintf(b->sock, sizeof(b->sock), "%s/admin.sock", b->dir);
	snprintf(b->pin, sizeof(b->pin), "%s/pin", b->dir);
	snprintf(b->softhsm_conf, sizeof(b->softhsm_conf), "%s/softhsm2.conf",
	    b->dir);

	printf("setting up in %s: PKI, token, key, authority, %u stations\n",
	    b->dir, b->clients);
	fflush(stdout);
	if ((rv = runv(b, "bash", b->make_pki, b->dir, NULL)) != 0 ||
	    (rv = runv(b, "bash", b->make_token, b->dir, TOKEN, PIN, NULL)) !=
	        0) {
		return rv;
	}
	/* The authority, the tools and the raw phase all use this token. */
	if (setenv("SOFTHSM2_CONF", b->softhsm_conf, 1) != 0 ||
	    setenv("COUNTERSIGN_HSM_MODULE", CS_SOFTHSM_MODULE, 1) != 0 ||
	    setenv("COUNTERSIGN_HSM_TOKEN", TOKEN, 1) != 0 ||
	    setenv("COUNTERSIGN_HSM_PIN_FILE", b->pin, 1) != 0) {
		return bench_fail("setenv: %s", strerror(errno));
	}
	if ((rv = runv(b, b->keytool, "keygen", "--label", KEY, "--alg",
	         cs_alg_name(b->alg), NULL)) != 0 ||
	    (rv = write_authority_conf(b)) != 0 ||
	    (rv = ADMIN(b, "ca", "init")) != 0 ||
	    (rv = start_authority(b)) != 0 ||
	    (rv = ADMIN(b, "key", "add", "--label", KEY)) != 0) {
		return rv;
	}
	snprintf(product, sizeof(product), "%u", PRODUCT);
	snprintf(uidlen, sizeof(uidlen), "%u", UIDLEN);
	if ((rv = ADMIN(b, "order", "create", "--id", ORDER, "--product",
	         product, "--key", KEY, "--quota", QUOTA, "--uid-len",
	         uidlen)) != 0) {
		return rv;
	}
	for (unsigned i = 0; i < b->clients; i++) {
		if ((rv = enroll(b, i)) != 0) {
			return rv;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The records phase                                                   */
/* ------------------------------------------------------------------ */

static int
admin_stats(struct bench *b, uint64_t *commits, uint64_t *issued,
    uint64_t *batch_max)
{
	cs_rpc_client                    *c = NULL;
	Countersign__V1__StatsRequest     in = COUNTERSIGN__V1__STATS_REQUEST__INIT;
	Countersign__V1__StatsReply      *out = NULL;
	struct cs_rpc_result              res;
	char                              url[PATH_MAX_ + 8], err[256];
	int                               rv;

	snprintf(url, sizeof(url), "ipc://%s", b->sock);
	struct cs_rpc_client_opts o = {
	    .url = url, .timeout_ms = 30000, .wait = true};
	if ((rv = cs_rpc_client_open(&c, &o, err, sizeof(err))) != CS_OK) {
		return bench_fail("admin socket: %s", err);
	}
	rv = cs_rpc_call(c, &countersign__v1__admin__descriptor, "Stats",
	    &in.base, (ProtobufCMessage **)&out, &res);
	cs_rpc_client_close(c);
	if (rv != CS_OK) {
		return bench_fail("Stats: %s (%s)", cs_strerror(rv), res.message);
	}
	*commits   = out->commits;
	*issued    = out->records_issued;
	*batch_max = out->commit_batch_max;
	protobuf_c_message_free_unpacked(&out->base, NULL);
	return 0;
}

static int
open_session(struct bench *b, unsigned i, station_session **s)
{
	struct station_config cfg;
	char conf[PATH_MAX_], cert[PATH_MAX_], key[PATH_MAX_], ca[PATH_MAX_];
	char name[16], url[64], err[512];
	int  rv;

	station_paths(b, i, conf, cert, key);
	snprintf(name, sizeof(name), "st%u", i);
	snprintf(ca, sizeof(ca), "%s/ca.pem", b->dir);
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", b->port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.name          = name;
	cfg.authority_url = url;
	cfg.ca            = ca;
	cfg.cert          = cert;
	cfg.key           = key;
	cfg.timeout_ms    = 30000;
	cfg.log_level     = (char *)"warn";
	if ((rv = station_session_open(s, &cfg, err, sizeof(err))) != CS_OK) {
		return bench_fail("session of %s: %s", name, err);
	}
	return 0;
}

/* UIDs of client id: distinct across clients and requests. */
static void
make_uid(uint8_t uid[UIDLEN], unsigned id, uint32_t n)
{
	memset(uid, 0, UIDLEN);
	uid[0]  = 0xb5;
	uid[1]  = (uint8_t)(id >> 8);
	uid[2]  = (uint8_t)id;
	uid[8]  = (uint8_t)(n >> 24);
	uid[9]  = (uint8_t)(n >> 16);
	uid[10] = (uint8_t)(n >> 8);
	uid[11] = (uint8_t)n;
}

static int
sign_one(struct client *c, uint32_t n, struct cs_rpc_result *res)
{
	Countersign__V1__SignRequest   in = COUNTERSIGN__V1__SIGN_REQUEST__INIT;
	Countersign__V1__SignResponse *out = NULL;
	uint8_t                        uid[UIDLEN];
	int                            rv;

	make_uid(uid, c->id, n);
	in.order_id = (char *)ORDER;
	in.uid.data = uid;
	in.uid.len  = UIDLEN;
	rv = station_session_call(c->s, "Sign", &in.base,
	    (ProtobufCMessage **)&out, res);
	if (rv == CS_OK) {
		if (out->reissued || out->record.len < CS_RECORD_MIN_LEN) {
			rv = CS_EPROTO;
			snprintf(res->message, sizeof(res->message),
			    "a reissued or short record for a fresh UID");
		}
		protobuf_c_message_free_unpacked(&out->base, NULL);
	}
	return rv;
}

static void
gate_wait(struct gate *g)
{
	pthread_mutex_lock(&g->mtx);
	while (!g->open) {
		pthread_cond_wait(&g->cv, &g->mtx);
	}
	pthread_mutex_unlock(&g->mtx);
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mtx);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mtx);
}

static void *
client_main(void *arg)
{
	struct client       *c = arg;
	struct cs_rpc_result res;
	uint32_t             n = 1; /* 0 was the warm-up */

	gate_wait(c->go);
	while (!atomic_load_explicit(c->stop, memory_order_relaxed)) {
		uint64_t t0 = now_ns();
		int      rv = sign_one(c, n++, &res);
		uint64_t dt = now_ns() - t0;

		if (rv != CS_OK) {
			if (c->errors++ == 0) {
				snprintf(c->first_error, sizeof(c->first_error),
				    "%s: %s", cs_strerror(rv), res.message);
			}
			continue;
		}
		if (c->n == c->cap) {
			size_t    cap = c->cap != 0 ? 2 * c->cap : 4096;
			uint64_t *p   = realloc(c->lat_ns, cap * sizeof(*p));

			if (p == NULL) {
				c->errors++;
				snprintf(c->first_error, sizeof(c->first_error),
				    "out of memory for latencies");
				break;
			}
			c->lat_ns = p;
			c->cap    = cap;
		}
		c->lat_ns[c->n++] = dt;
	}
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[n], in ms. */
static double
pct_ms(const uint64_t *v, size_t n, double pct)
{
	size_t rank = (size_t)(pct / 100.0 * (double)n + 0.999999);

	if (n == 0) {
		return 0;
	}
	rank = rank == 0 ? 1 : rank > n ? n : rank;
	return (double)v[rank - 1] / 1e6;
}

/* Run the run loop for S seconds, or until bench_interrupted. */
static void
wait_seconds(unsigned seconds, atomic_bool *stop)
{
	for (unsigned ms = 0; ms < seconds * 1000u && !bench_interrupted; ms += 50) {
		bench_sleep_ms(50);
	}
	atomic_store(stop, true);
}

static int
records_phase(struct bench *b, struct figures *fig)
{
	struct client *c = calloc(b->clients, sizeof(*c));
	struct gate    go = {.mtx = PTHREAD_MUTEX_INITIALIZER,
	    .cv = PTHREAD_COND_INITIALIZER};
	atomic_bool    stop = false;
	uint64_t       commits0, issued0, commits1, issued1, *all = NULL;
	unsigned       started = 0;
	size_t         total = 0, k = 0;
	double         t0;
	int            rv = 0;

	if (c == NULL) {
		return bench_fail("out of memory");
	}
	/* Sessions (TLS handshake, proof of possession) and one warm-up
	 * Sign each, outside the measured time. */
	for (unsigned i = 0; i < b->clients && rv == 0; i++) {
		struct cs_rpc_result res;

		c[i].id   = i;
		c[i].go   = &go;
		c[i].stop = &stop;
		if ((rv = open_session(b, i, &c[i].s)) == 0 &&
		    (rv = sign_one(&c[i], 0, &res)) != CS_OK) {
			rv = bench_fail("warm-up Sign of st%u: %s: %s", i,
			    cs_strerror(rv), res.message);
		}
	}
	if (rv == 0) {
		rv = admin_stats(b, &commits0, &issued0, &fig->batch_max);
	}
	for (unsigned i = 0; i < b->clients && rv == 0; i++, started++) {
		if (pthread_create(&c[i].tid, NULL, client_main, &c[i]) != 0) {
			rv = bench_fail("cannot start client threads");
		}
	}
	if (rv != 0) {
		atomic_store(&stop, true);
	}
	printf("records: %u clients signing for %u s\n", b->clients,
	    b->seconds);
	fflush(stdout);
	t0 = bench_now_s();
	gate_open(&go);
	if (rv == 0) {
		wait_seconds(b->seconds, &stop);
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(c[i].tid, NULL);
	}
	fig->elapsed_s = bench_now_s() - t0;
	if (bench_interrupted && rv == 0) {
		rv = bench_fail("bench_interrupted");
	}
	for (unsigned i = 0; i < b->clients; i++) {
		total += c[i].n;
		fig->errors += c[i].errors;
		if (c[i].errors != 0) {
			fprintf(stderr, PROG ": st%u: %lu failed requests, the "
			    "first: %s\n", i, c[i].errors, c[i].first_error);
		}
	}
	if (rv == 0 && fig->errors != 0) {
		rv = bench_fail("%lu Sign requests failed", fig->errors);
	}
	if (rv == 0) {
		rv = admin_stats(b, &commits1, &issued1, &fig->batch_max);
	}
	if (rv == 0 && total > 0 && (all = malloc(total * sizeof(*all))) ==
	        NULL) {
		rv = bench_fail("out of memory");
	}
	if (rv == 0) {
		double sum = 0;

		for (unsigned i = 0; i < b->clients; i++) {
			memcpy(all + k, c[i].lat_ns, c[i].n * sizeof(*all));
			k += c[i].n;
		}
		qsort(all, total, sizeof(*all), cmp_u64);
		for (k = 0; k < total; k++) {
			sum += (double)all[k];
		}
		fig->records       = total;
		fig->records_per_s = (double)total / fig->elapsed_s;
		fig->p50_ms        = pct_ms(all, total, 50);
		fig->p99_ms        = pct_ms(all, total, 99);
		fig->max_ms        = total > 0 ? (double)all[total - 1] / 1e6 : 0;
		fig->mean_ms       = total > 0 ? sum / (double)total / 1e6 : 0;
		fig->commits       = commits1 - commits0;
		fig->issued        = issued1 - issued0;
		if (total == 0) {
			rv = bench_fail("no record was signed");
		}
	}
	free(all);
	for (unsigned i = 0; i < b->clients; i++) {
		station_session_close(c[i].s);
		free(c[i].lat_ns);
	}
	free(c);
	return rv;
}

/* ------------------------------------------------------------------ */
/* The raw HSM phase                                                   */
/* ------------------------------------------------------------------ */

static void *
signer_main(void *arg)
{
	struct signer *w = arg;
	/* P-256: a SHA-256 digest; Ed25519: as long as a record's signed
	 * message (domain, header, UID). */
	uint8_t msg[CS_RECORD_DOMAIN_LEN + CS_RECORD_HEADER_LEN + UIDLEN];
	uint8_t sig[CS_SIG_LEN];
	size_t  len = w->alg == CS_ALG_P256 ? CS_SHA256_LEN : sizeof(msg);

	memset(msg, 0x5a + (int)w->id, sizeof(msg));
	gate_wait(w->go);
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		int rv = cs_hsm_sign(w->h, KEY, w->alg, msg, len, sig);

		if (rv != CS_OK) {
			w->err = rv;
			break;
		}
		w->count++;
	}
	return NULL;
}

static int
raw_phase(struct bench *b, struct figures *fig)
{
	struct signer *w = calloc(b->sessions, sizeof(*w));
	struct gate    go = {.mtx = PTHREAD_MUTEX_INITIALIZER,
	    .cv = PTHREAD_COND_INITIALIZER};
	atomic_bool    stop = false;
	cs_hsm        *h    = NULL;
	unsigned       started = 0;
	char           err[1024];
	double         t0;
	int            rv = 0;

	if (w == NULL) {
		return bench_fail("out of memory");
	}
	struct cs_hsm_opts o = {
	    .module   = CS_SOFTHSM_MODULE,
	    .token    = TOKEN,
	    .pin_file = b->pin,
	    .sessions = b->sessions,
	};
	if (cs_hsm_open(&h, &o, err, sizeof(err)) != CS_OK) {
		rv = bench_fail("%s", err);
		goto out;
	}
	for (unsigned i = 0; i < b->sessions && rv == 0; i++, started++) {
		w[i] = (struct signer){.id = i, .h = h, .alg = b->alg,
		    .go = &go, .stop = &stop};
		if (pthread_create(&w[i].tid, NULL, signer_main, &w[i]) != 0) {
			rv = bench_fail("cannot start signer threads");
		}
	}
	printf("raw HSM: %u threads on %u sessions for %u s\n", b->sessions,
	    b->sessions, b->seconds);
	fflush(stdout);
	if (rv != 0) {
		atomic_store(&stop, true);
	}
	t0 = bench_now_s();
	gate_open(&go);
	if (rv == 0) {
		wait_seconds(b->seconds, &stop);
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		fig->raw += w[i].count;
		if (w[i].err != CS_OK && rv == 0) {
			rv = bench_fail("cs_hsm_sign: %s", cs_strerror(w[i].err));
		}
	}
	fig->raw_elapsed_s = bench_now_s() - t0;
	fig->raw_per_s     = (double)fig->raw / fig->raw_elapsed_s;
	if (bench_interrupted && rv == 0) {
		rv = bench_fail("bench_interrupted");
	}
out:
	cs_hsm_close(h);
	free(w);
	return rv;
}

/* ------------------------------------------------------------------ */

static bool
parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char         *end;
	unsigned long v;

	errno = 0;
	v     = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		return false;
	}
	*out = (unsigned)v;
	return true;
}

static void
report(const struct bench *b, const struct figures *f)
{
	double ratio = f->raw_per_s > 0 ? f->records_per_s / f->raw_per_s : 0;
	double txn   = f->issued > 0 ? (double)f->commits / (double)f->issued :
	                               0;

	printf("\n");
	printf("durable records   %10.1f /s  (%lu in %.2f s, %u clients)\n",
	    f->records_per_s, f->records, f->elapsed_s, b->clients);
	printf("latency           p50 %.2f ms  p99 %.2f ms  max %.2f ms  "
	    "mean %.2f ms\n", f->p50_ms, f->p99_ms, f->max_ms, f->mean_ms);
	printf("LMDB transactions %10" PRIu64 " for %" PRIu64 " records "
	    "(%.3f per record; largest batch so far %" PRIu64 ")\n",
	    f->commits, f->issued, txn, f->batch_max);
	printf("raw HSM           %10.1f sig/s  (%lu in %.2f s, %u "
	    "sessions)\n", f->raw_per_s, f->raw, f->raw_elapsed_s,
	    b->sessions);
	printf("ratio             %10.3f  (goal >= 0.7)\n", ratio);
	printf("records_per_s=%.1f raw_hsm_per_s=%.1f ratio=%.3f p50_ms=%.2f "
	    "p99_ms=%.2f txn_per_record=%.3f clients=%u sessions=%u "
	    "seconds=%u alg=%s\n", f->records_per_s, f->raw_per_s, ratio,
	    f->p50_ms, f->p99_ms, txn, b->clients, b->sessions, b->seconds,
	    cs_alg_name(b->alg));
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"clients", required_argument, NULL, 'n'},
	    {"seconds", required_argument, NULL, 's'},
	    {"sessions", required_argument, NULL, 'k'},
	    {"alg", required_argument, NULL, 'a'},
	    {"keep", no_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench     b = {.clients = 8, .seconds = 5, .sessions = 4,
	    .alg = CS_ALG_P256};
	struct figures   fig;
	struct sigaction sa;
	const char      *src = getenv("CS_SOURCE_DIR");
	int              opt, rv;

	bench_prog = PROG;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!parse_uint(optarg, 1, CLIENTS_MAX, &b.clients)) {
				return bench_fail("--clients takes 1 to %u",
				    CLIENTS_MAX);
			}
			break;
		case 's':
			if (!parse_uint(optarg, 1, SECONDS_MAX, &b.seconds)) {
				return bench_fail("--seconds takes 1 to %u",
				    SECONDS_MAX);
			}
			break;
		case 'k':
			if (!parse_uint(optarg, 1, SESSIONS_MAX, &b.sessions)) {
				return bench_fail("--sessions takes 1 to %u",
				    SESSIONS_MAX);
			}
			break;
		case 'a':
			if (cs_alg_parse(optarg, &b.alg) != CS_OK ||
			    b.alg == CS_ALG_NONE) {
				return bench_fail("--alg takes p256 or ed25519");
			}
			break;
		case 'K':
			b.keep = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	src = src != NULL && src[0] != '\0' ? src : CS_SOURCE_DIR_DEFAULT;
	snprintf(b.authority, sizeof(b.authority), "%s", CS_AUTHORITY_BIN);
	snprintf(b.admin, sizeof(b.admin), "%s", CS_ADMIN_BIN);
	snprintf(b.station, sizeof(b.station), "%s", CS_STATION_BIN);
	snprintf(b.keytool, sizeof(b.keytool), "%s", CS_KEYTOOL_BIN);
	snprintf(b.make_pki, sizeof(b.make_pki), "%s/tests/pki/make-pki.sh",
	    src);
	snprintf(b.make_token, sizeof(b.make_token),
	    "%s/tests/hsm/make-token.sh", src);

	/* Ctrl-C stops the run and still cleans up. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bench_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	cs_log_open(PROG, CS_LOG_WARN, false);

	memset(&fig, 0, sizeof(fig));
	if ((rv = setup(&b)) == 0 && (rv = records_phase(&b, &fig)) == 0) {
		/* The same token, now with nobody else signing on it. */
		if (stop_authority(&b) != 0) {
			fprintf(stderr, PROG ": warning: the authority did not "
			    "stop cleanly; see %s\n", b.log);
		}
		rv = raw_phase(&b, &fig);
	}
	if (rv == 0) {
		report(&b, &fig);
	}
	bench_cleanup(&b);
	return rv;
}
