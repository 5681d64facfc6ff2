/*
 * ping_test.c - the real binaries against each other: countersign-authority
 * started from an INI file on an ephemeral loopback port, and
 * countersign-station pinging it over mutual TLS; --check-config; and the
 * stock openssl s_client as an independent TLS peer.
 */
#include "test_util.h"

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct fx {
	char *dir;
	char  authority[512], station[512];
	char  conf[512], log[512];
	pid_t pid;
	int   port;
};

static void
write_authority_conf_cert(struct fx *f, const char *path, const char *extra,
    const char *cert)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "[authority]\n"
	    "id = test-authority\n"
	    "data_dir = %s.data\n" /* one authority per store */
	    "station_listen = tls+tcp://127.0.0.1:0\n"
	    "admin_listen = ipc://%s.sock\n"
	    "%s"
	    "[tls]\n"
	    "cert = %s/%s.pem\n"
	    "key = %s/%s.key\n"
	    "station_ca = %s/ca.pem\n",
	    path, path, extra, f->dir, cert, f->dir, cert, f->dir);
	tu_write_file(path, text);
}

static void
write_authority_conf(struct fx *f, const char *path, const char *extra)
{
	write_authority_conf_cert(f, path, extra, "server");
}

/* Start countersign-authority on conf; returns its pid, sets *port. */
static pid_t
start_authority(struct fx *f, const char *conf, const char *log, int *port)
{
	char *argv[] = {f->authority, (char *)"-c", (char *)conf, NULL};
	pid_t pid    = tu_spawn(argv, log);

	*port = tu_wait_port(log, "tls");
	return pid;
}

static void
write_station_conf(struct fx *f, const char *path, const char *host,
    const char *who)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "[station]\n"
	    "name = %s\n"
	    "authority_url = tls+tcp://%s:%d\n"
	    "ca = %s/ca.pem\n"
	    "cert = %s/%s.pem\n"
	    "key = %s/%s.key\n"
	    "timeout_ms = 10000\n",
	    who, host, f->port, f->dir, f->dir, who, f->dir, who);
	tu_write_file(path, text);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_make_pki(f->dir);
	tu_program(f->authority, sizeof(f->authority), "authority",
	    "countersign-authority");
	tu_program(f->station, sizeof(f->station), "station",
	    "countersign-station");
	tu_path(f->conf, sizeof(f->conf), f->dir, "authority.conf");
	tu_path(f->log, sizeof(f->log), f->dir, "authority.log");
	write_authority_conf(f, f->conf, "");
	f->pid = start_authority(f, f->conf, f->log, &f->port);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char       line[1024];

	if (f->pid > 0) {
		/* SIGTERM is a clean stop: exit 0 with a "stopped" line */
		assert_int_equal(tu_stop(f->pid, SIGTERM, 15000), 0);
		assert_true(tu_wait_for_line(f->log, "authority: stopped",
		    line, sizeof(line), 1000));
	}
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

static int
station(struct fx *f, const char *host, const char *who, char *out,
    size_t len)
{
	char conf[512], name[64];

	snprintf(name, sizeof(name), "station-%s.conf", who);
	tu_path(conf, sizeof(conf), f->dir, name);
	write_station_conf(f, conf, host, who);
	char *argv[] = {f->station, (char *)"-c", conf, (char *)"ping",
	    (char *)"--count", (char *)"2", NULL};
	return tu_run(argv, out, len);
}

static void
test_ping(void **state)
{
	struct fx *f = *state;
	char       out[8192];

	/* by name and by address: the certificate carries both */
	assert_int_equal(station(f, "localhost", "station1", out,
	    sizeof(out)), 0);
	assert_non_null(strstr(out, "authority=test-authority"));
	assert_non_null(strstr(out, "tls=TLSv1.3"));
	assert_non_null(strstr(out, "rtt_ms="));
	assert_int_equal(station(f, "127.0.0.1", "station2", out,
	    sizeof(out)), 0);
	assert_non_null(strstr(out, "authority=test-authority"));
}

static void
test_refused_stations(void **state)
{
	struct fx *f = *state;
	char       out[8192];

	/* a certificate from another CA, and an expired one */
	assert_int_equal(station(f, "localhost", "other-station", out,
	    sizeof(out)), 1);
	if (strstr(out, "error: ") == NULL ||
	    strstr(out, "certificate") == NULL) {
		fail_msg("foreign station: %s", out);
	}
	assert_int_equal(station(f, "localhost", "expired-station", out,
	    sizeof(out)), 1);
	if (strstr(out, "certificate") == NULL) {
		fail_msg("expired station: %s", out);
	}
	/* the authority logged why, and still serves good stations */
	char line[1024];
	assert_true(tu_wait_for_line(f->log, "handshake failed", line,
	    sizeof(line), 5000));
	assert_int_equal(station(f, "localhost", "station1", out,
	    sizeof(out)), 0);
}

static void
test_wrong_server_name(void **state)
{
	struct fx *f = *state;
	char       out[8192], conf[512], log[512];
	int        port, good_port = f->port;

	/* a second authority whose certificate names wrong.example only */
	tu_path(conf, sizeof(conf), f->dir, "wrongname.conf");
	tu_path(log, sizeof(log), f->dir, "wrongname.log");
	write_authority_conf_cert(f, conf, "", "wrongname-server");
	pid_t pid = start_authority(f, conf, log, &port);
	f->port   = port;
	int rv    = station(f, "localhost", "station1", out, sizeof(out));
	f->port   = good_port;
	assert_int_equal(tu_stop(pid, SIGTERM, 15000), 0);
	assert_int_equal(rv, 1);
	assert_non_null(strstr(out, "certificate"));
}

/* bash -c script, with PORT and DIR in the environment. */
static int
shell(struct fx *f, const char *script, char *out, size_t len)
{
	char port[16];

	snprintf(port, sizeof(port), "%d", f->port);
	setenv("PORT", port, 1);
	setenv("DIR", f->dir, 1);
	char *argv[] = {(char *)"bash", (char *)"-c", (char *)script, NULL};
	return tu_run(argv, out, len);
}

static void
test_openssl_s_client(void **state)
{
	struct fx *f = *state;
	char       out[16384];

	/* with a station certificate: TLS 1.3, verified both ways */
	shell(f, "sleep 3 | openssl s_client -connect 127.0.0.1:$PORT "
	    "-servername localhost -verify_hostname localhost "
	    "-CAfile $DIR/ca.pem -cert $DIR/station1.pem "
	    "-key $DIR/station1.key 2>&1", out, sizeof(out));
	assert_non_null(strstr(out, "New, TLSv1.3"));
	assert_non_null(strstr(out, "Verify return code: 0 (ok)"));
	assert_null(strstr(out, "alert"));

	/* without one: the server demands it (alert 116) */
	shell(f, "sleep 3 | openssl s_client -connect 127.0.0.1:$PORT "
	    "-CAfile $DIR/ca.pem 2>&1", out, sizeof(out));
	assert_non_null(strstr(out, "alert certificate required"));

	/* a TLS 1.1-only client: refused (alert protocol version) */
	shell(f, "sleep 3 | openssl s_client -connect 127.0.0.1:$PORT "
	    "-tls1_1 -cipher 'DEFAULT@SECLEVEL=0' -CAfile $DIR/ca.pem 2>&1",
	    out, sizeof(out));
	assert_non_null(strstr(out, "alert protocol version"));
	assert_null(strstr(out, "New, TLSv1.1"));

	/* plain TCP bytes instead of TLS: the connection is dropped */
	shell(f, "exec 3<>/dev/tcp/127.0.0.1/$PORT && printf 'hello\\r\\n' >&3 "
	    "&& timeout 5 cat <&3 >/dev/null; echo closed", out, sizeof(out));
	assert_non_null(strstr(out, "closed"));

	/* and the listener still serves a good station */
	if (station(f, "localhost", "station1", out, sizeof(out)) != 0) {
		fail_msg("station ping failed after bad clients: %s", out);
	}
}

/* init makes a key and CSR; a certificate issued for that CSR by the
 * station CA lets the station ping; init never replaces the key. */
static void
test_station_init(void **state)
{
	struct fx *f = *state;
	char       out[8192], conf[512], text[4096];

	tu_path(conf, sizeof(conf), f->dir, "station-new.conf");
	snprintf(text, sizeof(text),
	    "[station]\n"
	    "name = station-new\n"
	    "authority_url = tls+tcp://localhost:%d\n"
	    "ca = %s/ca.pem\n"
	    "cert = %s/station-new.pem\n"
	    "key = %s/station-new.key\n"
	    "timeout_ms = 10000\n",
	    f->port, f->dir, f->dir, f->dir);
	tu_write_file(conf, text);

	char *init[] = {f->station, (char *)"-c", conf, (char *)"init", NULL};
	assert_int_equal(tu_run(init, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "station-new.csr"));

	/* the CSR is well-formed and self-signed, the key is private;
	 * the test CA issues a client certificate for it */
	assert_int_equal(shell(f, "set -e; cd $DIR; "
	    "openssl req -in station-new.csr -verify -noout -subject; "
	    "test \"$(stat -c %a station-new.key)\" = 600; "
	    "printf 'extendedKeyUsage=clientAuth\\n' > ext.cnf; "
	    "openssl x509 -req -in station-new.csr -CA ca.pem -CAkey ca.key "
	    "-CAcreateserial -days 1 -extfile ext.cnf -out station-new.pem "
	    "2>&1", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "CN = station-new"));

	char *ping[] = {f->station, (char *)"-c", conf, (char *)"ping", NULL};
	if (tu_run(ping, out, sizeof(out)) != 0) {
		fail_msg("ping with the enrolled key failed: %s", out);
	}
	assert_non_null(strstr(out, "authority=test-authority"));

	/* a second init refuses to replace the key */
	assert_int_equal(tu_run(init, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "already exists"));
}

static void
test_check_config(void **state)
{
	struct fx *f = *state;
	char       out[4096], path[512];

	char *good[] = {f->authority, (char *)"-c", f->conf,
	    (char *)"--check-config", NULL};
	assert_int_equal(tu_run(good, out, sizeof(out)), 0);
	assert_string_equal(out, "configuration OK\n");

	/* a bad value: file:line: message, non-zero */
	tu_path(path, sizeof(path), f->dir, "bad.conf");
	write_authority_conf(f, path, "workers = none\n");
	char *bad[] = {f->authority, (char *)"-c", path,
	    (char *)"--check-config", NULL};
	assert_int_equal(tu_run(bad, out, sizeof(out)), 1);
	char want[600];
	snprintf(want, sizeof(want), "%s:6: bad value 'none' for 'workers'",
	    path);
	assert_non_null(strstr(out, want));

	/* a TLS file that does not exist */
	tu_write_file(path, "[authority]\nid = a\ndata_dir = /tmp\n"
	    "station_listen = tls+tcp://127.0.0.1:0\n[tls]\n"
	    "cert = /nonexistent/cert.pem\nkey = /nonexistent/key.pem\n"
	    "station_ca = /nonexistent/ca.pem\n");
	assert_int_equal(tu_run(bad, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "/nonexistent/"));
	assert_null(strstr(out, "configuration OK"));
}

static void
test_help_and_version(void **state)
{
	struct fx *f = *state;
	char       out[4096];

	char *a[] = {f->authority, (char *)"--version", NULL};
	assert_int_equal(tu_run(a, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "countersign-authority "));
	char *b[] = {f->authority, (char *)"--help", NULL};
	assert_int_equal(tu_run(b, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "--check-config"));
	char *c[] = {f->station, (char *)"--version", NULL};
	assert_int_equal(tu_run(c, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "countersign-station "));
	char *d[] = {f->station, (char *)"--help", NULL};
	assert_int_equal(tu_run(d, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "ping"));
	char *e[] = {f->station, (char *)"frobnicate", NULL};
	assert_int_equal(tu_run(e, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "unknown command \"frobnicate\""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_stations, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_server_name, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_openssl_s_client, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_station_init, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_check_config, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_help_and_version, setup,
	        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
