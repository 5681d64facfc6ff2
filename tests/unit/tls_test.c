/*
 * tls_test.c - cs_tls: wolfSSL as nng's TLS engine, on real sockets.
 *
 * Every test makes a fresh PKI with tests/pki/make-pki.sh ($CS_MAKE_PKI) in
 * its own temporary directory, runs a bare nng rep0 echo server on
 * tls+tcp://127.0.0.1:<ephemeral> in a thread, and talks to it with req0
 * clients.  Refused clients must get no reply, the server must never see
 * their request, and a good client must still be served by the same
 * listener afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cs_err.h"
#include "cs_log.h"
#include "cs_tls.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TIMEOUT_MS 2000
#define WATCHDOG_S 10
#define MAX_PATHS  64

struct server {
	nng_socket sock;
	pthread_t  thread;
	bool       running;
	int        port;
	atomic_int served;        /* requests echoed */
	atomic_int last_verified; /* NNG_OPT_TLS_VERIFIED: -1 unknown */
};

struct fixture {
	char          dir[PATH_MAX];
	char         *paths[MAX_PATHS]; /* made by pki(), freed at teardown */
	unsigned      npaths;
	struct server srv;
};

/* ------------------------------------------------------------------ */
/* Helpers.                                                           */

/* Path of a file in the test's PKI directory, valid until teardown. */
static const char *
pki(struct fixture *fx, const char *name)
{
	char *p;

	assert_true(fx->npaths < MAX_PATHS);
	assert_true(asprintf(&p, "%s/%s", fx->dir, name) > 0);
	fx->paths[fx->npaths++] = p;
	return p;
}

/* Run argv with stdin from /dev/null and output to outfile (or
 * /dev/null); returns the exit status, or -1. */
static int
run(char *const argv[], const char *outfile)
{
	posix_spawn_file_actions_t fa;
	pid_t                      pid;
	int                        st;
	const char *out = outfile != NULL ? outfile : "/dev/null";

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out,
	                                 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
		return -1;
	}
	return WEXITSTATUS(st);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	struct fixture *fx;
	const char     *make_pki = getenv("CS_MAKE_PKI");
	const char     *tmp      = getenv("TMPDIR");
	char            out[PATH_MAX + 8];

	if (make_pki == NULL) {
		fprintf(stderr, "CS_MAKE_PKI is not set (path of "
		                "tests/pki/make-pki.sh)\n");
		return -1;
	}
	if ((fx = calloc(1, sizeof(*fx))) == NULL) {
		return -1;
	}
	snprintf(fx->dir, sizeof(fx->dir), "%s/cs-tls-test.XXXXXX",
	         tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(out, sizeof(out), "%s.log", fx->dir);
	/* Through bash: the script need not carry an exec bit. */
	char *argv[] = {"/bin/bash", (char *)make_pki, fx->dir, NULL};
	if (run(argv, out) != 0) {
		fprintf(stderr, "make-pki.sh failed, see %s\n", out);
		nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(fx);
		return -1;
	}
	unlink(out);
	atomic_init(&fx->srv.served, 0);
	atomic_init(&fx->srv.last_verified, -1);
	*state = fx;
	return 0;
}

static void
server_stop(struct server *srv)
{
	if (srv->running) {
		nng_close(srv->sock); /* wakes the thread with NNG_ECLOSED */
		pthread_join(srv->thread, NULL);
		srv->running = false;
	}
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	server_stop(&fx->srv);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	for (unsigned i = 0; i < fx->npaths; i++) {
		free(fx->paths[i]);
	}
	free(fx);
	return 0;
}

/* The echo server: every request comes back as its reply. */
static void *
server_main(void *arg)
{
	struct server *srv = arg;
	nng_msg       *msg;
	bool           verified;

	while (nng_recvmsg(srv->sock, &msg, 0) == 0) {
		if (nng_pipe_get_bool(nng_msg_get_pipe(msg),
		                      NNG_OPT_TLS_VERIFIED, &verified) == 0) {
			atomic_store(&srv->last_verified, verified ? 1 : 0);
		}
		atomic_fetch_add(&srv->served, 1);
		if (nng_sendmsg(srv->sock, msg, 0) != 0) {
			nng_msg_free(msg);
		}
	}
	return NULL;
}

/* Start the echo server with cert_name.pem/.key, verifying clients
 * against ca.pem with the given mode and optional CRL. */
static void
server_start(struct fixture *fx, const char *cert_name, nng_tls_auth_mode auth,
             const char *crl_name)
{
	struct server  *srv = &fx->srv;
	nng_tls_config *cfg;
	nng_listener    l;
	char            cert[32], key[32];

	snprintf(cert, sizeof(cert), "%s.pem", cert_name);
	snprintf(key, sizeof(key), "%s.key", cert_name);
	struct cs_tls_files f = {
	    .cert = pki(fx, cert),
	    .key  = pki(fx, key),
	    .ca   = pki(fx, "ca.pem"),
	    .crl  = crl_name != NULL ? pki(fx, crl_name) : NULL,
	};
	assert_int_equal(
	    cs_tls_config_make(&cfg, NNG_TLS_MODE_SERVER, auth, &f), CS_OK);
	assert_int_equal(nng_rep0_open(&srv->sock), 0);
	assert_int_equal(
	    nng_listener_create(&l, srv->sock, "tls+tcp://127.0.0.1:0"), 0);
	assert_int_equal(nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg), 0);
	nng_tls_config_free(cfg); /* the listener holds it */
	assert_int_equal(nng_listener_start(l, 0), 0);
	assert_int_equal(
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &srv->port), 0);
	assert_true(srv->port > 0);
	assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv),
	                 0);
	srv->running = true;
}

/*
 * Closes a client socket whose synchronous dial is still blocked after
 * WATCHDOG_S.  nng 1.5.2 can leave such a dial waiting forever: when the
 * server's hang-up reaches a TLS stream between the SP header's send and
 * its receive, the stream's TCP read is never restarted (see cs_tls.c).
 * cs_tls makes a refusing server's alert arrive first, which closes the
 * common path, but a reset can still overtake it.  Closing the socket
 * ends the dial; request() then reports NNG_ETIMEDOUT.
 */
struct watchdog {
	pthread_mutex_t lock;
	pthread_cond_t  cond;
	bool            done;
	bool            fired;
	nng_socket      sock;
	pthread_t       thread;
};

static void *
watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct timespec  deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WATCHDOG_S;
	pthread_mutex_lock(&w->lock);
	while (!w->done &&
	       pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == 0) {
	}
	if (!w->done) {
		w->fired = true;
		fprintf(stderr,
		        "tls_test: dial still blocked after %d s "
		        "(nng 1.5.2 hang), closing its socket\n",
		        WATCHDOG_S);
		nng_close(w->sock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void
watchdog_start(struct watchdog *w, nng_socket s)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->sock = s;
	assert_int_equal(pthread_create(&w->thread, NULL, watchdog_main, w),
	                 0);
}

static bool
watchdog_stop(struct watchdog *w)
{
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	return w->fired;
}

/*
 * One request over url with client config cfg (NULL: plain dialer).
 * Returns 0 when the echo came back, else the nng error of the dial, the
 * send or the receive.  The dial is synchronous, so a refused handshake
 * shows up as its error.  *verified (if not NULL) gets the client side's
 * NNG_OPT_TLS_VERIFIED for the reply's pipe.
 */
static int
request_ex(const char *url, nng_tls_config *cfg, bool *verified)
{
	static const char text[] = "countersign ping";
	nng_socket        s;
	nng_dialer        d;
	nng_msg          *msg = NULL;
	struct watchdog   w;
	int               rv;

	assert_int_equal(nng_req0_open(&s), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TIMEOUT_MS),
	                 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, TIMEOUT_MS),
	                 0);
	assert_int_equal(nng_dialer_create(&d, s, url), 0);
	if (cfg != NULL) {
		assert_int_equal(
		    nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg), 0);
	}
	watchdog_start(&w, s);
	rv = nng_dialer_start(d, 0);
	if (watchdog_stop(&w)) {
		return NNG_ETIMEDOUT; /* the watchdog closed the socket */
	}
	if (rv == 0 &&
	    (rv = nng_send(s, (void *)text, sizeof(text), 0)) == 0 &&
	    (rv = nng_recvmsg(s, &msg, 0)) == 0) {
		if (nng_msg_len(msg) != sizeof(text) ||
		    memcmp(nng_msg_body(msg), text, sizeof(text)) != 0) {
			rv = NNG_EINTERNAL;
		}
		if (verified != NULL) {
			assert_int_equal(
			    nng_pipe_get_bool(nng_msg_get_pipe(msg),
			                      NNG_OPT_TLS_VERIFIED, verified),
			    0);
		}
		nng_msg_free(msg);
	}
	nng_close(s);
	return rv;
}

static int
request(const char *url, nng_tls_config *cfg)
{
	return request_ex(url, cfg, NULL);
}

/* A request with a client config made from the test's PKI. */
static int
tls_request(struct fixture *fx, const char *station, const char *ca_name,
            const char *server_name)
{
	nng_tls_config *cfg;
	char            url[64], cert[32], key[32];
	int             rv;

	snprintf(cert, sizeof(cert), "%s.pem", station != NULL ? station : "");
	snprintf(key, sizeof(key), "%s.key", station != NULL ? station : "");
	struct cs_tls_files f = {
	    .cert        = station != NULL ? pki(fx, cert) : NULL,
	    .key         = station != NULL ? pki(fx, key) : NULL,
	    .ca          = pki(fx, ca_name),
	    .server_name = server_name,
	};
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED, &f),
	                 CS_OK);
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", fx->srv.port);
	rv = request(url, cfg);
	nng_tls_config_free(cfg);
	return rv;
}

/* The good client: station1, verifying the server as 127.0.0.1. */
static void
assert_served(struct fixture *fx)
{
	int before = atomic_load(&fx->srv.served);

	assert_int_equal(tls_request(fx, "station1", "ca.pem", "127.0.0.1"),
	                 0);
	assert_int_equal(atomic_load(&fx->srv.served), before + 1);
	assert_int_equal(atomic_load(&fx->srv.last_verified), 1);
}

/* A refused client gets no reply and its request never reaches the server;
 * then the good client is still served by the same listener. */
static void
assert_refused(struct fixture *fx, int rv, int served_before)
{
	assert_int_not_equal(rv, 0);
	assert_int_equal(atomic_load(&fx->srv.served), served_before);
	assert_served(fx);
}

/* As assert_refused, for a client that refused the server's certificate:
 * its own check fails the dial with NNG_EPEERAUTH. */
static void
assert_client_refused(struct fixture *fx, int rv, int served_before)
{
	assert_int_equal(rv, NNG_EPEERAUTH);
	assert_refused(fx, rv, served_before);
}

/*
 * As assert_refused, for a server that refused the client's certificate.
 * Under TLS 1.3 the client learns it on its first read after the
 * handshake: NNG_EPEERAUTH from the server's alert.  nng 1.5.2 may instead
 * report the server's hang-up (NNG_ECONNSHUT): its poller acts on a reset
 * before reading the data that came with it, alert included.  NNG_ETIMEDOUT
 * means the watchdog had to end an nng 1.5.2 dial hang.
 */
static void
assert_server_refused(struct fixture *fx, int rv, int served_before)
{
	if (rv != NNG_EPEERAUTH && rv != NNG_ECONNSHUT &&
	    rv != NNG_ETIMEDOUT) {
		fail_msg("expected NNG_EPEERAUTH, got %d (%s)", rv,
		         nng_strerror(rv));
	}
	assert_refused(fx, rv, served_before);
}

/* ------------------------------------------------------------------ */
/* Tests.                                                             */

static void
test_engine_name(void **state)
{
	(void)state;
	assert_int_equal(cs_tls_init(), CS_OK);
	assert_int_equal(cs_tls_init(), CS_OK); /* idempotent */
	assert_string_equal(nng_tls_engine_name(), CS_TLS_ENGINE_NAME);
	assert_string_equal(nng_tls_engine_name(), "wolfSSL");
}

static void
test_mutual_tls(void **state)
{
	struct fixture *fx          = *state;
	char            version[16] = "", cipher[64] = "";

	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);

	/* The server's certificate carries IP:127.0.0.1 and DNS:localhost. */
	assert_int_equal(tls_request(fx, "station1", "ca.pem", "127.0.0.1"),
	                 0);
	assert_int_equal(atomic_load(&fx->srv.served), 1);
	assert_int_equal(atomic_load(&fx->srv.last_verified), 1);
	assert_int_equal(tls_request(fx, "station2", "ca.pem", "localhost"),
	                 0);
	assert_int_equal(atomic_load(&fx->srv.served), 2);
	assert_int_equal(atomic_load(&fx->srv.last_verified), 1);

	assert_true(cs_tls_last_handshake(version, sizeof(version), cipher,
	                                  sizeof(cipher)));
	assert_string_equal(version, "TLSv1.3");
	assert_true(strncmp(cipher, "TLS_", 4) == 0);
	/* NULL buffers are allowed. */
	assert_true(cs_tls_last_handshake(NULL, 0, NULL, 0));
}

static void
test_tls12_only_client(void **state)
{
	struct fixture     *fx = *state;
	nng_tls_config     *cfg;
	char                url[64], version[16] = "";
	struct cs_tls_files f = {
	    .cert        = pki(fx, "station1.pem"),
	    .key         = pki(fx, "station1.key"),
	    .ca          = pki(fx, "ca.pem"),
	    .server_name = "localhost",
	};

	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED, &f),
	                 CS_OK);
	/* TLS 1.0/1.1 cannot be had at all; 1.2 alone can. */
	assert_int_equal(nng_tls_config_version(cfg, NNG_TLS_1_0, NNG_TLS_1_1),
	                 NNG_ENOTSUP);
	assert_int_equal(nng_tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_2),
	                 0);
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", fx->srv.port);
	assert_int_equal(request(url, cfg), 0);
	nng_tls_config_free(cfg);
	assert_int_equal(atomic_load(&fx->srv.last_verified), 1);
	assert_true(cs_tls_last_handshake(version, sizeof(version), NULL, 0));
	assert_string_equal(version, "TLSv1.2");
}

static void
test_refused_no_client_cert(void **state)
{
	struct fixture *fx = *state;

	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);
	int n = atomic_load(&fx->srv.served);
	assert_server_refused(fx, tls_request(fx, NULL, "ca.pem", "127.0.0.1"),
	                      n);
}

static void
test_refused_other_ca(void **state)
{
	struct fixture *fx = *state;

	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);
	int n = atomic_load(&fx->srv.served);
	assert_server_refused(
	    fx, tls_request(fx, "other-station", "ca.pem", "127.0.0.1"), n);
	/* And a client that trusts only the other CA refuses our server. */
	n = atomic_load(&fx->srv.served);
	assert_client_refused(
	    fx, tls_request(fx, "station1", "other-ca.pem", "127.0.0.1"), n);
}

static void
test_refused_expired(void **state)
{
	struct fixture *fx = *state;

	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);
	int n = atomic_load(&fx->srv.served);
	assert_server_refused(
	    fx, tls_request(fx, "expired-station", "ca.pem", "127.0.0.1"), n);
}

static void
test_refused_wrong_server_name(void **state)
{
	struct fixture *fx = *state;

	/* Our server's certificate, but the client expects another name. */
	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);
	int n = atomic_load(&fx->srv.served);
	assert_client_refused(
	    fx, tls_request(fx, "station1", "ca.pem", "wrong.example"), n);
	n = atomic_load(&fx->srv.served);
	assert_client_refused(
	    fx, tls_request(fx, "station1", "ca.pem", "10.0.0.1"), n);
	n = atomic_load(&fx->srv.served);
	assert_client_refused(fx, tls_request(fx, "station1", "ca.pem", "::1"),
	                      n);
}

static void
test_refused_wrongname_server(void **state)
{
	struct fixture *fx = *state;

	/* A server whose certificate (same CA) only names wrong.example. */
	server_start(fx, "wrongname-server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);
	int n = atomic_load(&fx->srv.served);
	assert_int_equal(tls_request(fx, "station1", "ca.pem", "localhost"),
	                 NNG_EPEERAUTH);
	assert_int_equal(tls_request(fx, "station1", "ca.pem", "127.0.0.1"),
	                 NNG_EPEERAUTH);
	assert_int_equal(atomic_load(&fx->srv.served), n);
	/* The listener still serves a client that expects its name. */
	assert_int_equal(
	    tls_request(fx, "station1", "ca.pem", "wrong.example"), 0);
	assert_int_equal(atomic_load(&fx->srv.served), n + 1);
}

static void
test_refused_plain_tcp(void **state)
{
	struct fixture *fx = *state;
	char            url[64];

	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);
	int n = atomic_load(&fx->srv.served);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", fx->srv.port);
	assert_refused(fx, request(url, NULL), n);
}

/* Read a small file into buf (NUL-terminated); returns its length. */
static size_t
slurp(const char *path, char *buf, size_t size)
{
	FILE  *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n      = fread(buf, 1, size - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return n;
}

/* Connect to the server over plain TCP, send len bytes, hang up. */
static void
tcp_hangup(struct fixture *fx, const void *data, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int                fd;

	sa.sin_port        = htons((uint16_t)fx->srv.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (len > 0) {
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	}
	close(fd);
}

/* openssl s_client with station1: handshake, then close_notify and hang
 * up (its stdin is empty).  Returns its exit status; output in log. */
static int
s_client(struct fixture *fx, const char *version, const char *log)
{
	char connect[32];

	snprintf(connect, sizeof(connect), "127.0.0.1:%d", fx->srv.port);
	char *argv[] = {"/usr/bin/openssl",
	                "s_client",
	                "-connect",
	                connect,
	                (char *)version,
	                "-cipher",
	                "DEFAULT@SECLEVEL=0",
	                "-cert",
	                (char *)pki(fx, "station1.pem"),
	                "-key",
	                (char *)pki(fx, "station1.key"),
	                "-CAfile",
	                (char *)pki(fx, "ca.pem"),
	                "-verify_return_error",
	                NULL};
	return run(argv, log);
}

static void
test_refused_tls11_client(void **state)
{
	struct fixture *fx = *state;
	char            out[8192];
	const char     *log = pki(fx, "s_client.log");

	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);
	int n = atomic_load(&fx->srv.served);

	/* Control: the same openssl client speaking TLS 1.2 gets through
	 * the handshake, so a failure below is the server's refusal. */
	assert_int_equal(s_client(fx, "-tls1_2", log), 0);
	slurp(log, out, sizeof(out));
	assert_non_null(strstr(out, "Protocol  : TLSv1.2"));
	assert_served(fx);
	n = atomic_load(&fx->srv.served);

	assert_int_not_equal(s_client(fx, "-tls1_1", log), 0);
	slurp(log, out, sizeof(out));
	/* The server answered the TLS 1.1 ClientHello with an alert. */
	if (strstr(out, "alert protocol version") == NULL) {
		fprintf(stderr, "openssl s_client said:\n%s\n", out);
		fail_msg("no protocol_version alert from the server");
	}
	assert_refused(fx, 1, n);
}

/*
 * Peers that hang up before, during or after the handshake must not stop
 * the listener (nng 1.5.2 stops a listener whose accept fails with
 * NNG_ECLOSED, so the engine must not report a peer's close as that).
 */
static void
test_peer_hangup_keeps_listener(void **state)
{
	struct fixture   *fx      = *state;
	static const char hello[] = {0x16, 0x03, 0x01, 0x00, 0x40, 0x01};
	const char       *log     = pki(fx, "s_client.log");

	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, NULL);
	tcp_hangup(fx, NULL, 0);
	assert_served(fx);
	tcp_hangup(fx, hello, sizeof(hello)); /* half a ClientHello */
	assert_served(fx);
	assert_int_equal(s_client(fx, "-tls1_3", log), 0);
	assert_served(fx);
	assert_int_equal(s_client(fx, "-tls1_2", log), 0);
	assert_served(fx);
}

static void
test_refused_revoked(void **state)
{
	struct fixture *fx = *state;

	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED,
	             "crl-revoked.pem");
	int n = atomic_load(&fx->srv.served);
	assert_server_refused(
	    fx, tls_request(fx, "revoked-station", "ca.pem", "127.0.0.1"), n);
}

static void
test_empty_crl_accepts(void **state)
{
	struct fixture *fx = *state;

	/* CRL checking is on, and a certificate not on the CRL passes. */
	server_start(fx, "server", NNG_TLS_AUTH_MODE_REQUIRED, "crl.pem");
	assert_int_equal(
	    tls_request(fx, "revoked-station", "ca.pem", "localhost"), 0);
	assert_served(fx);
}

static void
test_verified_is_honest(void **state)
{
	struct fixture *fx = *state;

	/* OPTIONAL: a client without a certificate is served, unverified. */
	server_start(fx, "server", NNG_TLS_AUTH_MODE_OPTIONAL, NULL);
	assert_int_equal(tls_request(fx, NULL, "ca.pem", "localhost"), 0);
	assert_int_equal(atomic_load(&fx->srv.served), 1);
	assert_int_equal(atomic_load(&fx->srv.last_verified), 0);
	/* ... one with a bad certificate is refused ... */
	assert_int_not_equal(
	    tls_request(fx, "other-station", "ca.pem", "localhost"), 0);
	assert_int_equal(atomic_load(&fx->srv.served), 1);
	/* ... and one with a good certificate is verified. */
	assert_served(fx);

	/* On the client side: verified only when it verified the server. */
	nng_tls_config     *cfg;
	char                url[64];
	bool                verified = true;
	struct cs_tls_files trusting = {.server_name = "localhost"};
	struct cs_tls_files checking = {.ca          = pki(fx, "ca.pem"),
	                                .server_name = "localhost"};

	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", fx->srv.port);
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_NONE, &trusting),
	                 CS_OK);
	assert_int_equal(request_ex(url, cfg, &verified), 0);
	assert_false(verified);
	nng_tls_config_free(cfg);
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED,
	                                    &checking),
	                 CS_OK);
	assert_int_equal(request_ex(url, cfg, &verified), 0);
	assert_true(verified);
	nng_tls_config_free(cfg);
}

static void
test_config_errors(void **state)
{
	struct fixture *fx      = *state;
	nng_tls_config *cfg     = (void *)1;
	const char     *garbage = pki(fx, "garbage.key");
	FILE           *fp;

	struct cs_tls_files missing = {
	    .cert = pki(fx, "station1.pem"),
	    .key  = pki(fx, "no-such.key"),
	    .ca   = pki(fx, "ca.pem"),
	};
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED,
	                                    &missing),
	                 CS_ENOENT);
	assert_null(cfg);

	struct cs_tls_files missing_ca = {.ca = pki(fx, "no-such-ca.pem")};
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED,
	                                    &missing_ca),
	                 CS_ENOENT);

	assert_non_null(fp = fopen(garbage, "w"));
	fputs("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n"
	      "-----END PRIVATE KEY-----\n",
	      fp);
	fclose(fp);
	struct cs_tls_files bad_key = {
	    .cert = pki(fx, "station1.pem"),
	    .key  = garbage,
	};
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED,
	                                    &bad_key),
	                 CS_ETLS);
	assert_null(cfg);

	/* A valid key that is not the certificate's. */
	struct cs_tls_files wrong_key = {
	    .cert = pki(fx, "station1.pem"),
	    .key  = pki(fx, "station2.key"),
	};
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED,
	                                    &wrong_key),
	                 CS_ETLS);

	/* A key where the CA certificates should be. */
	struct cs_tls_files key_as_ca = {.ca = pki(fx, "ca.key")};
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED,
	                                    &key_as_ca),
	                 CS_ETLS);

	/* A certificate without its key. */
	struct cs_tls_files no_key = {.cert = pki(fx, "station1.pem")};
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED,
	                                    &no_key),
	                 CS_EINVAL);

	/* And the good files make a config. */
	struct cs_tls_files good = {
	    .cert = pki(fx, "station1.pem"),
	    .key  = pki(fx, "station1.key"),
	    .ca   = pki(fx, "ca.pem"),
	    .crl  = pki(fx, "crl.pem"),
	};
	assert_int_equal(cs_tls_config_make(&cfg, NNG_TLS_MODE_CLIENT,
	                                    NNG_TLS_AUTH_MODE_REQUIRED, &good),
	                 CS_OK);
	assert_non_null(cfg);
	nng_tls_config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_engine_name),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_mutual_tls),
	    T(test_tls12_only_client),
	    T(test_refused_no_client_cert),
	    T(test_refused_other_ca),
	    T(test_refused_expired),
	    T(test_refused_wrong_server_name),
	    T(test_refused_wrongname_server),
	    T(test_refused_plain_tcp),
	    T(test_refused_tls11_client),
	    T(test_peer_hangup_keeps_listener),
	    T(test_refused_revoked),
	    T(test_empty_crl_accepts),
	    T(test_verified_is_honest),
	    T(test_config_errors),
#undef T
	};

	cs_log_open("tls_test", CS_LOG_WARN, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
