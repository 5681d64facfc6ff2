/*
 * rsp_bench.c - countersign-rsp-bench: how fast the station's GDB RSP
 * backend writes an image into an emulated device, next to
 * `gdb-multiarch -batch ... -ex load` writing the same image into the same
 * kind of device over the same transport.
 *
 * In one run, in a temporary directory, it makes an image of --size bytes
 * (default 64 KiB) of pseudo-random data for flash address 0 (the device
 * is never started, so it needs no vector table), both raw and as an ELF
 * (arm-none-eabi-objcopy), then repeats --rounds times (default 5),
 * alternating:
 *
 *   station   a fresh QEMU lm3s6965evb, halted (-S), gdbstub on a Unix
 *             socket, started exactly as tests/integration/gdbstub_test.c
 *             does.  Timed: probe_open -> probe_flash_write (the
 *             page-aligned erase range and the data, as station/job.c
 *             does) -> probe_flash_done.  Timed separately as "overhead":
 *             the rest of a device cycle outside the flash write (UID
 *             read of 8 bytes at 0x2000FF00, read-back of the image and
 *             compare, probe_reset_halt).
 *   gdb       a fresh QEMU the same way; timed: the whole gdb-multiarch
 *             process, fork to exit, connecting to the same socket with
 *             `target remote PATH` and running `load`.  gdb must exit 0
 *             and report that it loaded the image at 0 with its size.
 *             Then the probe reads the flash back and compares.
 *
 * Both timings include connecting and the protocol handshake; neither
 * includes QEMU's start (the socket exists before the clock starts).
 * gdb's time also includes starting gdb itself, which is what an operator
 * running gdb per device pays.  The medians of the rounds are reported;
 * the last line is key=value pairs for scripts:
 *   speed_ratio = gdb_s / station_s (goal >= 1.0).
 *
 * This is a benchmark, not a test: ctest does not run it; it fails only
 * when something cannot be set up or a write does not land.  Every QEMU
 * and gdb it starts dies with it (PR_SET_PDEATHSIG) and is killed on every
 * path; the temporary directory is removed unless --keep.
 */
#include "bench_util.h"
#include "cs_err.h"
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG       "countersign-rsp-bench"
#define GDB        "gdb-multiarch"
#define OBJCOPY    "arm-none-eabi-objcopy"
#define FLASH_MAX  (256u * 1024u) /* lm3s6965: 256 KiB of flash at 0 */
#define PAGE       0x400u         /* its erase page */
#define UID_ADDR   0x2000FF00u
#define ROUNDS_MAX 100u
#define OUT_MAX    16384u
#define PATH_MAX_  600u
#define PROBE_MS   5000u

static const uint8_t UID[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
    0xef};

/* Everything one run owns; bench_cleanup() releases all of it. */
struct bench {
	size_t   size;
	unsigned rounds;
	bool     keep;

	char    *dir;
	char     bin[PATH_MAX_], elf[PATH_MAX_], sock[PATH_MAX_];
	char     qemu_log[PATH_MAX_], url[PATH_MAX_ + 32];
	char     out[OUT_MAX];
	uint8_t *img, *back;
	pid_t    qemu;
};

/* One round's figures. */
struct round {
	double open_s, write_s, station_s, overhead_s;
	double gdb_s;
	double gdb_rate_kb; /* gdb's own "Transfer rate" (its KB is 1024
	                       bytes); 0: too quick for its ms clock */
	unsigned long gdb_per_write;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: " PROG " [--rounds R] [--size BYTES] [--keep]\n"
	    "\n"
	    "Writes a BYTES-byte image (default 65536, at most %u) into a "
	    "fresh QEMU\nlm3s6965evb through the station's RSP backend and "
	    "with gdb-multiarch's\n`load`, alternating, R times (default 5), "
	    "and prints the medians.\n--keep leaves the temporary directory "
	    "(image, QEMU logs) in place.\n", FLASH_MAX);
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

/* bench_run with the output in b->out. */
static int
run(struct bench *b, char *const argv[])
{
	return bench_run(argv, b->out, sizeof(b->out));
}

/* Kill this round's QEMU (if any) and reap it. */
static void
stop_qemu(struct bench *b)
{
	if (b->qemu <= 0) {
		return;
	}
	kill(b->qemu, SIGKILL);
	while (waitpid(b->qemu, NULL, 0) < 0 && errno == EINTR) {
	}
	b->qemu = 0;
}

/*
 * Is a Unix socket listening at path?  QEMU binds (the file appears)
 * before it listens, and a connect in between is refused; a trial
 * connect would be a gdb session of its own, so look in /proc/net/unix
 * instead (Flags 00010000: accepting connections).
 */
static bool
listening(const char *path)
{
	FILE  *fp = fopen("/proc/net/unix", "r");
	char   line[PATH_MAX_ + 128];
	size_t n  = strlen(path);
	bool   yes = false;

	if (fp == NULL) {
		return true; /* cannot tell: let probe_open find out */
	}
	while (!yes && fgets(line, sizeof(line), fp) != NULL) {
		unsigned long flags;
		size_t        len = strcspn(line, "\n");

		line[len] = '\0';
		if (len > n && strcmp(line + len - n, path) == 0 &&
		    line[len - n - 1] == ' ' &&
		    sscanf(line, "%*s %*s %*s %lx", &flags) == 1 &&
		    (flags & 0x10000u) != 0) {
			yes = true;
		}
	}
	fclose(fp);
	return yes;
}

/*
 * A fresh QEMU, halted, its gdbstub on b->sock and the UID in its
 * mailbox: the flags of tests/integration/gdbstub_test.c.  Returns once
 * the socket exists.
 */
static int
start_qemu(struct bench *b)
{
	char        gdb[PATH_MAX_ + 32];
	struct stat st;
	char       *argv[] = {(char *)CS_QEMU, "-M", "lm3s6965evb",
	    "-nographic", "-monitor", "none", "-serial", "none",
	    "-semihosting-config", "enable=on,target=native", "-S", "-gdb",
	    gdb, "-device",
	    "loader,addr=0x2000FF00,data=0xefcdab8967452301,data-len=8",
	    NULL};

	if (bench_interrupted) {
		return bench_fail("bench_interrupted");
	}
	unlink(b->sock);
	snprintf(gdb, sizeof(gdb), "unix:%s,server=on,wait=off", b->sock);
	if ((b->qemu = fork()) < 0) {
		b->qemu = 0;
		return bench_fail("fork: %s", strerror(errno));
	}
	if (b->qemu == 0) {
		int fd = open(b->qemu_log, O_WRONLY | O_CREAT | O_APPEND,
		    0600);
		int devnull = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0) {
			_exit(126);
		}
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	for (unsigned waited = 0; waited < 10000 && !bench_interrupted;
	     waited += 5) {
		if (stat(b->sock, &st) == 0 && listening(b->sock)) {
			return 0;
		}
		if (waitpid(b->qemu, NULL, WNOHANG) == b->qemu) {
			b->qemu = 0;
			return bench_fail("QEMU exited at start; see %s (--keep "
			    "keeps it)", b->qemu_log);
		}
		bench_sleep_ms(5);
	}
	stop_qemu(b);
	return bench_interrupted ? bench_fail("bench_interrupted") :
	                     bench_fail("QEMU did not listen on %s", b->sock);
}

static void
bench_cleanup(struct bench *b)
{
	stop_qemu(b);
	free(b->img);
	free(b->back);
	b->img  = NULL;
	b->back = NULL;
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
/* The image                                                           */
/* ------------------------------------------------------------------ */

static int
setup(struct bench *b)
{
	const char *base = getenv("TMPDIR");
	char        tmpl[PATH_MAX_];
	uint64_t    x = 0x9e3779b97f4a7c15u; /* xorshift64: the same image
	                                        every run */
	FILE       *fp;
	char       *objcopy[] = {(char *)OBJCOPY, "-I", "binary", "-O",
	    "elf32-littlearm", "-B", "arm", "--change-section-address",
	    ".data=0", "--set-section-flags", ".data=alloc,load,contents",
	    b->bin, b->elf, NULL};

	/* A short base: the socket path must fit sun_path (108 bytes). */
	snprintf(tmpl, sizeof(tmpl), "%s/cs-rsp-bench-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(tmpl) == NULL || (b->dir = strdup(tmpl)) == NULL) {
		return bench_fail("cannot make a temporary directory in %s: %s",
		    base != NULL && base[0] != '\0' ? base : "/tmp",
		    strerror(errno));
	}
	snprintf(b->bin, sizeof(b->bin), "%s/image.bin", b->dir);
	snprintf(b->elf, sizeof(b->elf), "%s/image.elf", b->dir);
	snprintf(b->sock, sizeof(b->sock), "%s/gdb.sock", b->dir);
	snprintf(b->qemu_log, sizeof(b->qemu_log), "%s/qemu.log", b->dir);
	snprintf(b->url, sizeof(b->url), "gdb+unix://%s?server=qemu",
	    b->sock);
	if (strlen(b->sock) >= 100) {
		return bench_fail("socket path %s too long; set TMPDIR shorter",
		    b->sock);
	}
	if ((b->img = malloc(b->size)) == NULL ||
	    (b->back = malloc(b->size)) == NULL) {
		return bench_fail("out of memory");
	}
	for (size_t i = 0; i < b->size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b->img[i] = (uint8_t)(x >> 32);
	}
	if ((fp = fopen(b->bin, "wb")) == NULL) {
		return bench_fail("cannot write %s: %s", b->bin, strerror(errno));
	}
	if (fwrite(b->img, 1, b->size, fp) != b->size) {
		fclose(fp);
		return bench_fail("cannot write %s: %s", b->bin, strerror(errno));
	}
	if (fclose(fp) != 0) {
		return bench_fail("cannot write %s: %s", b->bin, strerror(errno));
	}
	return run(b, objcopy);
}

/* ------------------------------------------------------------------ */
/* Rounds                                                              */
/* ------------------------------------------------------------------ */

static int
probe_fail_msg(probe *p, const char *what)
{
	return bench_fail("%s: %s", what, probe_error(p));
}

/* Read the whole image back through a probe already open and compare. */
static int
read_back(struct bench *b, probe *p, const char *who)
{
	if (probe_read(p, 0, b->back, b->size) != CS_OK) {
		return probe_fail_msg(p, "reading back");
	}
	if (memcmp(b->back, b->img, b->size) != 0) {
		for (size_t i = 0; i < b->size; i++) {
			if (b->back[i] != b->img[i]) {
				return bench_fail("after %s's write, flash byte "
				    "0x%zx is 0x%02x, not 0x%02x", who, i,
				    b->back[i], b->img[i]);
			}
		}
	}
	return 0;
}

static int
station_round(struct bench *b, struct round *r)
{
	size_t  erase = (b->size + PAGE - 1) & ~(size_t)(PAGE - 1);
	uint8_t uid[sizeof(UID)];
	char    err[256];
	probe  *p = NULL;
	double  t0, t1, t2, t3;
	int     rv = 1;

	if (start_qemu(b) != 0) {
		return 1;
	}
	t0 = bench_now_s();
	if (probe_open(&p, b->url, PROBE_MS, err, sizeof(err)) != CS_OK) {
		bench_fail("probe_open %s: %s", b->url, err);
		goto out;
	}
	t1 = bench_now_s();
	if (probe_flash_write(p, 0, erase, 0, b->img, b->size) != CS_OK ||
	    probe_flash_done(p) != CS_OK) {
		probe_fail_msg(p, "flash write");
		goto out;
	}
	t2 = bench_now_s();
	/* The rest of a device cycle (station/job.c) but for running it. */
	if (probe_read(p, UID_ADDR, uid, sizeof(uid)) != CS_OK) {
		probe_fail_msg(p, "UID read");
		goto out;
	}
	if (memcmp(uid, UID, sizeof(UID)) != 0) {
		bench_fail("the UID read back is not the one QEMU was given");
		goto out;
	}
	if (read_back(b, p, "the station") != 0) {
		goto out;
	}
	if (probe_reset_halt(p) != CS_OK) {
		probe_fail_msg(p, "reset");
		goto out;
	}
	t3 = bench_now_s();
	r->open_s     = t1 - t0;
	r->write_s    = t2 - t1;
	r->station_s  = t2 - t0;
	r->overhead_s = t3 - t2;
	rv            = 0;
out:
	probe_close(p);
	stop_qemu(b);
	return rv;
}

/*
 * gdb's own account of the load: "Loading section .data, size 0x10000 lma
 * 0x0", "Start address 0x00000000, load size 65536", "Transfer rate: N
 * KB/sec, M bytes/write.".  The image must have gone to 0, whole.
 */
static int
parse_gdb(struct bench *b, struct round *r)
{
	const char   *s;
	unsigned long size = 0, lma = 1, load = 0;

	if ((s = strstr(b->out, "Loading section .data, size ")) == NULL ||
	    sscanf(s, "Loading section .data, size %lx lma %lx", &size,
	    &lma) != 2 ||
	    (s = strstr(b->out, "load size ")) == NULL ||
	    sscanf(s, "load size %lu", &load) != 1 ||
	    (s = strstr(b->out, "Transfer rate: ")) == NULL ||
	    (s = strstr(s, ", ")) == NULL ||
	    sscanf(s, ", %lu bytes/write", &r->gdb_per_write) != 1) {
		fprintf(stderr, "%s", b->out);
		return bench_fail("gdb did not report a load of the image (above)");
	}
	/* "N KB/sec" ("N bits/sec" when slow, "N bits in <1 sec" when
	 * too quick for its millisecond clock: then 0, shown as such). */
	s = strstr(b->out, "Transfer rate: ");
	if (sscanf(s, "Transfer rate: %lf KB/sec", &r->gdb_rate_kb) != 1) {
		double bits;

		r->gdb_rate_kb = sscanf(s, "Transfer rate: %lf bits/sec",
		    &bits) == 1 ? bits / 8 / 1024 : 0;
	}
	if (size != b->size || lma != 0 || load != b->size) {
		fprintf(stderr, "%s", b->out);
		return bench_fail("gdb loaded %lu bytes at 0x%lx (load size %lu), "
		    "not %zu at 0", size, lma, load, b->size);
	}
	return 0;
}

static int
gdb_round(struct bench *b, struct round *r)
{
	char   target[PATH_MAX_ + 32];
	char   err[256];
	probe *p = NULL;
	double t0;
	int    rv = 1;
	/* `disconnect` rather than gdb's detach on exit: QEMU resumes on
	 * detach and would run the random image into a lockup before the
	 * read-back; disconnect leaves it halted.  It costs the same (one
	 * packet or none). */
	char  *argv[] = {(char *)GDB, "-batch", "-nx", "-ex",
	    "set confirm off", "-ex", target, "-ex", "load", "-ex",
	    "disconnect", b->elf, NULL};

	snprintf(target, sizeof(target), "target remote %s", b->sock);
	if (start_qemu(b) != 0) {
		return 1;
	}
	t0 = bench_now_s();
	if (run(b, argv) != 0) {
		goto out;
	}
	r->gdb_s = bench_now_s() - t0;
	if (parse_gdb(b, r) != 0) {
		goto out;
	}
	if (probe_open(&p, b->url, PROBE_MS, err, sizeof(err)) != CS_OK) {
		bench_fail("probe_open after gdb: %s", err);
		goto out;
	}
	rv = read_back(b, p, "gdb");
out:
	probe_close(p);
	stop_qemu(b);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Figures                                                             */
/* ------------------------------------------------------------------ */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of the field at byte offset off of each round. */
static double
median(const struct round *r, unsigned n, size_t off)
{
	double v[ROUNDS_MAX];

	for (unsigned i = 0; i < n; i++) {
		memcpy(&v[i], (const char *)&r[i] + off, sizeof(double));
	}
	qsort(v, n, sizeof(v[0]), cmp_double);
	return n % 2 != 0 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MEDIAN(r, n, field) median(r, n, offsetof(struct round, field))

static void
report(const struct bench *b, const struct round *r)
{
	double kib     = (double)b->size / 1024.0;
	double st      = MEDIAN(r, b->rounds, station_s);
	double gd      = MEDIAN(r, b->rounds, gdb_s);
	double ovh     = MEDIAN(r, b->rounds, overhead_s);
	double gdbrate = MEDIAN(r, b->rounds, gdb_rate_kb);
	double wr      = MEDIAN(r, b->rounds, write_s);

	printf("image %zu bytes at 0, QEMU lm3s6965evb, gdbstub on a Unix "
	    "socket\n\n", b->size);
	printf("       %-47s | %s\n", "station", "gdb load");
	printf("%5s  %13s %11s %10s %10s | %12s %12s %8s\n", "round", "open",
	    "write+done", "total", "overhead", "process", "its rate",
	    "B/write");
	for (unsigned i = 0; i < b->rounds; i++) {
		printf("%5u  %10.2f ms %8.2f ms %7.2f ms %7.2f ms | %9.2f ms "
		    "%6.0f KiB/s %8lu\n", i + 1, r[i].open_s * 1e3,
		    r[i].write_s * 1e3, r[i].station_s * 1e3,
		    r[i].overhead_s * 1e3, r[i].gdb_s * 1e3, r[i].gdb_rate_kb,
		    r[i].gdb_per_write);
	}
	printf("median %10.2f ms %8.2f ms %7.2f ms %7.2f ms | %9.2f ms %6.0f "
	    "KiB/s\n\n", MEDIAN(r, b->rounds, open_s) * 1e3, wr * 1e3,
	    st * 1e3, ovh * 1e3, gd * 1e3, gdbrate);
	printf("station, open to flash done  %8.2f ms  %8.0f KiB/s\n",
	    st * 1e3, kib / st);
	printf("station, write+done alone    %8.2f ms  %8.0f KiB/s\n",
	    wr * 1e3, kib / wr);
	printf("gdb load, whole process      %8.2f ms  %8.0f KiB/s\n",
	    gd * 1e3, kib / gd);
	printf("gdb load, its own rate (ms clock)        %8.0f KiB/s\n",
	    gdbrate);
	printf("per-device overhead outside the write (UID, read-back, "
	    "reset) %.2f ms\n", ovh * 1e3);
	printf("speed_ratio (gdb / station)  %8.3f  (goal >= 1.0)\n", gd / st);
	printf("station_s=%.4f gdb_s=%.4f speed_ratio=%.3f station_kib_s=%.0f "
	    "gdb_kib_s=%.0f overhead_ms=%.2f size=%zu rounds=%u\n", st, gd,
	    gd / st, kib / st, kib / gd, ovh * 1e3, b->size, b->rounds);
}

static bool
parse_ulong(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	char         *end;
	unsigned long v;

	errno = 0;
	v     = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		return false;
	}
	*out = v;
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"rounds", required_argument, NULL, 'r'},
	    {"size", required_argument, NULL, 's'},
	    {"keep", no_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench     b = {.size = 65536, .rounds = 5};
	struct round     r[ROUNDS_MAX];
	struct sigaction sa;
	unsigned long    v;
	int              opt, rv;

	bench_prog = PROG;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			if (!parse_ulong(optarg, 1, ROUNDS_MAX, &v)) {
				return bench_fail("--rounds takes 1 to %u",
				    ROUNDS_MAX);
			}
			b.rounds = (unsigned)v;
			break;
		case 's':
			if (!parse_ulong(optarg, 1, FLASH_MAX, &v)) {
				return bench_fail("--size takes 1 to %u (the "
				    "device's flash)", FLASH_MAX);
			}
			b.size = v;
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
	/* Ctrl-C stops the run and still cleans up. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bench_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	memset(r, 0, sizeof(r));
	rv = setup(&b);
	for (unsigned i = 0; rv == 0 && i < b.rounds; i++) {
		if ((rv = station_round(&b, &r[i])) == 0) {
			rv = gdb_round(&b, &r[i]);
		}
	}
	if (rv == 0) {
		report(&b, r);
	}
	bench_cleanup(&b);
	return rv;
}
