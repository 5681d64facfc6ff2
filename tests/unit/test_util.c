/*
 * test_util.c - see test_util.h.
 */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

char *
tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char        tmpl[512];
	char       *dir;

	snprintf(tmpl, sizeof(tmpl), "%s/cs-test-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	dir = strdup(dir);
	assert_non_null(dir);
	return dir;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
tu_rmtree_free(char *dir)
{
	if (dir == NULL) {
		return;
	}
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

const char *
tu_path(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
	return buf;
}

void
tu_make_pki(const char *dir)
{
	const char *script = getenv("CS_MAKE_PKI");
	char        out[4096];
	int         rv;

	assert_non_null(script);
	char *argv[] = {(char *)"bash", (char *)script, (char *)dir, NULL};
	rv = tu_run(argv, out, sizeof(out));
	if (rv != 0) {
		fprintf(stderr, "make-pki.sh failed (%d): %s\n", rv, out);
	}
	assert_int_equal(rv, 0);
}

void
tu_make_token(const char *dir, const char *label, const char *pin)
{
	const char *script = getenv("CS_MAKE_TOKEN");
	char        out[4096], conf[512];
	int         rv;

	assert_non_null(script);
	char *argv[] = {(char *)"bash", (char *)script, (char *)dir,
	    (char *)label, (char *)pin, NULL};
	rv = tu_run(argv, out, sizeof(out));
	if (rv != 0) {
		fprintf(stderr, "make-token.sh failed (%d): %s\n", rv, out);
	}
	assert_int_equal(rv, 0);
	tu_path(conf, sizeof(conf), dir, "softhsm2.conf");
	assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
}

void
tu_write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

const char *
tu_program(char *buf, size_t len, const char *subdir, const char *name)
{
	const char *bin = getenv("CS_BINARY_DIR");
	assert_non_null(bin);
	snprintf(buf, len, "%s/%s/%s", bin, subdir, name);
	return buf;
}

bool
tu_listed(const char *list, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = list; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t      n   = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == len && strncmp(p, name, n) == 0) {
			return true;
		}
		p += n + (end != NULL);
	}
	return false;
}

void
tu_programs(char *authority, char *admin, char *station, char *keytool,
    size_t len)
{
	tu_program(authority, len, "authority", "countersign-authority");
	tu_program(admin, len, "authority", "countersign-admin");
	tu_program(station, len, "station", "countersign-station");
	tu_program(keytool, len, "hsm-shim", "countersign-keytool");
}

int
tu_run(char *const argv[], char *out, size_t len)
{
	int   fds[2];
	pid_t pid;
	int   status;
	size_t n = 0;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		char    sink[512];
		char   *dst  = n + 1 < len ? out + n : sink;
		size_t  room = n + 1 < len ? len - n - 1 : sizeof(sink);
		ssize_t r    = read(fds[0], dst, room);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			break;
		}
		if (dst != sink) {
			n += (size_t)r;
		}
	}
	out[n] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

pid_t
tu_spawn(char *const argv[], const char *logpath)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) {
			_exit(126);
		}
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

bool
tu_wait_for_line(const char *path, const char *needle, char *line,
    size_t len, unsigned timeout_ms)
{
	for (unsigned waited = 0; waited <= timeout_ms; waited += 20) {
		FILE *fp = fopen(path, "r");
		char  buf[2048];
		if (fp != NULL) {
			while (fgets(buf, sizeof(buf), fp) != NULL) {
				if (strstr(buf, needle) != NULL) {
					snprintf(line, len, "%s", buf);
					fclose(fp);
					return true;
				}
			}
			fclose(fp);
		}
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return false;
}

int
tu_stop(pid_t pid, int sig, unsigned timeout_ms)
{
	int status;

	/* kill() of 0 or -1 would hit the test's whole process group (ctest
	 * with it) or every process: never. */
	if (pid <= 0) {
		fail_msg("tu_stop: no child to stop (pid %d)", (int)pid);
	}
	kill(pid, sig);
	for (unsigned waited = 0; waited < timeout_ms; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

int
tu_runl(char *out, size_t len, const char *prog, ...)
{
	char   *argv[64];
	va_list ap;
	int     n = 0;

	argv[n++] = (char *)prog;
	va_start(ap, prog);
	while ((argv[n] = va_arg(ap, char *)) != NULL) {
		assert_true(++n < 63);
	}
	va_end(ap);
	return tu_run(argv, out, len);
}

void
tu_expect(const char *out, int got, int want, const char *needle)
{
	if (got != want || (needle != NULL && strstr(out, needle) == NULL)) {
		fprintf(stderr, "exit %d (want %d), output:\n%s\nwanted: %s\n",
		    got, want, out, needle != NULL ? needle : "");
		fail();
	}
}

int
tu_wait_port(const char *logpath, const char *url_prefix)
{
	char        needle[128], line[1024];
	const char *p;
	int         port;

	snprintf(needle, sizeof(needle), "listening url=%s", url_prefix);
	if (!tu_wait_for_line(logpath, needle, line, sizeof(line), 20000)) {
		fail_msg("no '%s' line in %s", needle, logpath);
	}
	p = strstr(line, " port=");
	assert_non_null(p);
	port = atoi(p + 6);
	assert_true(port > 0);
	return port;
}
