/*
 * bench_util.c - helpers shared by the benchmark programs (bench_util.h).
 */
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char           *bench_prog = "bench";
volatile sig_atomic_t bench_interrupted;

void
bench_on_signal(int sig)
{
	(void)sig;
	bench_interrupted = 1;
}

int
bench_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: error: ", bench_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

double
bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
bench_sleep_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR &&
	    !bench_interrupted) {
	}
}

int
bench_run(char *const argv[], char *out, size_t len)
{
	int    fds[2], status;
	size_t n = 0;
	pid_t  pid;

	if (bench_interrupted) {
		return bench_fail("interrupted");
	}
	if (pipe(fds) != 0) {
		return bench_fail("pipe: %s", strerror(errno));
	}
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return bench_fail("fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
		}
		close(fds[0]);
		close(fds[1]);
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
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s", out);
		return bench_fail("%s %s failed (%s %d)", argv[0],
		    argv[1] != NULL ? argv[1] : "",
		    WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	return 0;
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
bench_rmtree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
