/*
 * rsp_test.c - the GDB Remote Serial Protocol client (probe_gdb.c)
 * against a small RSP server in a thread on a Unix socket that misbehaves
 * on command: a bad checksum once, E01 replies, a disconnect in the middle
 * of a write, a reply longer than PacketSize, run-length-encoded replies,
 * malformed hex, no-ack mode, X with escapes, and stop replies; and
 * locking through monitor commands (expected output, a lock that does not
 * take, a server that floods, stays silent or answers in bare hex).
 */
#include "cs_err.h"
#include "probe.h"
#include "cs_target.h"
#include "test_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#define RAM      0x20000000u
#define RAM_SIZE 4096u

struct srv {
	char      dir_path[512], path[600];
	int       lfd, fd;
	pthread_t th;
	/* behaviour */
	unsigned  pktsize;
	bool      offer_noack, x_ok, rle, e01, long_reply, bad_hex;
	int       bad_cksum_once;
	bool      always_bad;          /* every frame's checksum is wrong */
	int       disconnect_at_write; /* close during write number N */
	bool      run_hangs;           /* 'c' answers only after 0x03 */
	bool      flash_map;           /* offer a memory map: RAM is flash */
	/* monitor commands: "lock" answers per these */
	bool      lock_ok;       /* "... locked" output, and RAM locks */
	bool      lock_says_ok;  /* "... locked" output, RAM stays open */
	bool      lock_bad_text; /* "failed to lock device", OK anyway */
	bool      mon_flood;     /* endless 'O' packets */
	bool      mon_silent;    /* no answer at all */
	bool      mon_bare_hex;  /* the final reply is hex output */
	bool      locked;        /* 'm' of RAM answers E01 */
	bool      gone;          /* the client stopped listening */
	char      mon_log[512];  /* the commands, '|' separated */
	/* observed */
	bool      noack;
	int       naks, writes, x_writes, acks_after_noack;
	int       erases, flash_writes, flash_done;
	unsigned  erase_addr, erase_len;
	uint8_t   mem[RAM_SIZE];
	char     *dir;
};

static int
hv(int c)
{
	return c >= '0' && c <= '9' ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int
getch(struct srv *s)
{
	unsigned char c;

	return read(s->fd, &c, 1) == 1 ? c : -1;
}

static void
put_frame(struct srv *s, const char *payload, size_t n, bool corrupt)
{
	char    buf[70000];
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		sum = (uint8_t)(sum + (uint8_t)payload[i]);
	}
	buf[0] = '$';
	memcpy(buf + 1, payload, n);
	snprintf(buf + 1 + n, 4, "#%02x", (uint8_t)(sum + (corrupt ? 1 : 0)));
	(void)!send(s->fd, buf, n + 4, MSG_NOSIGNAL);
}

/* Send a reply; in ack mode wait for '+', resending on '-'. */
static void
reply(struct srv *s, const char *payload, size_t n)
{
	bool corrupt = s->bad_cksum_once > 0 || s->always_bad;

	if (corrupt) {
		s->bad_cksum_once--;
	}
	put_frame(s, payload, n, corrupt);
	while (!s->noack) {
		int c = getch(s);

		if (c < 0) {
			s->gone = true;
		}
		if (c == '+' || c < 0) {
			return;
		}
		if (c == '-') {
			s->naks++;
			put_frame(s, payload, n, s->always_bad);
		}
	}
}

static void
replys(struct srv *s, const char *payload)
{
	reply(s, payload, strlen(payload));
}

/* Hex of mem, run-length encoded when s->rle. */
static size_t
encode_mem(struct srv *s, const uint8_t *m, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		out[o++] = "0123456789abcdef"[m[i] >> 4];
		out[o++] = "0123456789abcdef"[m[i] & 15];
	}
	if (!s->rle) {
		return o;
	}
	/* Runs of one character: "c*N" with N - 29 repeats (3..97 and never
	 * '#' (35 -> 6) or '$' (36 -> 7)). */
	char   *rle = malloc(o + 1);
	size_t  r = 0;

	for (size_t i = 0; i < o;) {
		size_t run = 1;

		while (i + run < o && out[i + run] == out[i] && run < 98) {
			run++;
		}
		rle[r++] = out[i];
		if (run - 1 >= 3 && run - 1 != 6 && run - 1 != 7) {
			rle[r++] = '*';
			rle[r++] = (char)(run - 1 + 29);
			i += run;
		} else {
			i++;
		}
	}
	memcpy(out, rle, r);
	free(rle);
	return r;
}

static void
handle(struct srv *s, char *pkt, size_t n)
{
	static char  out[140000];
	unsigned     addr, len;
	int          off;

	pkt[n] = '\0';
	if (strncmp(pkt, "qSupported", 10) == 0) {
		snprintf(out, sizeof(out), "PacketSize=%x%s%s", s->pktsize,
		    s->offer_noack ? ";QStartNoAckMode+" : "",
		    s->flash_map ? ";qXfer:memory-map:read+" : "");
		replys(s, out);
	} else if (strncmp(pkt, "qXfer:memory-map:read::", 23) == 0 &&
	    s->flash_map) {
		/* All of it in one answer ('l': last part). */
		snprintf(out, sizeof(out), "l<memory-map><memory type=\"flash\" "
		    "start=\"0x%x\" length=\"0x%x\"><property "
		    "name=\"blocksize\">0x400</property></memory>"
		    "</memory-map>", RAM, RAM_SIZE);
		if (sscanf(pkt + 23, "%x,", &addr) == 1 && addr > 0) {
			replys(s, "l"); /* asked past the end */
		} else {
			replys(s, out);
		}
	} else if (sscanf(pkt, "vFlashErase:%x,%x", &addr, &len) == 2) {
		s->erases++;
		s->erase_addr = addr;
		s->erase_len  = len;
		if (addr < RAM || addr - RAM + len > RAM_SIZE) {
			replys(s, "E03");
			return;
		}
		memset(s->mem + addr - RAM, 0xff, len);
		replys(s, "OK");
	} else if (sscanf(pkt, "vFlashWrite:%x:%n", &addr, &off) == 1) {
		size_t   j = (size_t)off;
		unsigned i = 0;

		s->flash_writes++;
		while (j < n) {
			uint8_t c = (uint8_t)pkt[j++];

			if (c == '}' && j < n) {
				c = (uint8_t)(pkt[j++] ^ 0x20);
			}
			if (addr < RAM || addr - RAM + i >= RAM_SIZE) {
				replys(s, "E03");
				return;
			}
			s->mem[addr - RAM + i++] &= c; /* NOR: clears bits */
		}
		replys(s, "OK");
	} else if (strcmp(pkt, "vFlashDone") == 0) {
		s->flash_done++;
		replys(s, "OK");
	} else if (strcmp(pkt, "QStartNoAckMode") == 0) {
		replys(s, "OK");
		s->noack = true;
	} else if (strcmp(pkt, "?") == 0) {
		replys(s, "S05");
	} else if (pkt[0] == 'm' && sscanf(pkt, "m%x,%x", &addr, &len) == 2) {
		if (s->e01 || s->locked) {
			replys(s, "E01");
		} else if (s->long_reply) {
			memset(out, '0', s->pktsize + 16);
			reply(s, out, s->pktsize + 16);
		} else if (s->bad_hex) {
			replys(s, "zz");
		} else if (addr < RAM || addr - RAM + len > RAM_SIZE) {
			replys(s, "E14");
		} else {
			reply(s, out, encode_mem(s, s->mem + addr - RAM, len,
			    out));
		}
	} else if (pkt[0] == 'M' &&
	    sscanf(pkt, "M%x,%x:%n", &addr, &len, &off) == 2) {
		if (++s->writes == s->disconnect_at_write) {
			(void)!write(s->fd, "$O", 2); /* half a reply */
			shutdown(s->fd, SHUT_RDWR);
			return;
		}
		if (s->e01 || addr < RAM || addr - RAM + len > RAM_SIZE ||
		    n - (size_t)off != 2 * len) {
			replys(s, "E01");
			return;
		}
		for (unsigned i = 0; i < len; i++) {
			s->mem[addr - RAM + i] = (uint8_t)(hv(pkt[off + 2 * i])
			    << 4 | hv(pkt[off + 2 * i + 1]));
		}
		replys(s, "OK");
	} else if (pkt[0] == 'X' &&
	    sscanf(pkt, "X%x,%x:%n", &addr, &len, &off) == 2) {
		size_t j = (size_t)off;

		if (!s->x_ok) {
			replys(s, "");
			return;
		}
		if (len > 0) {
			s->x_writes++;
		}
		for (unsigned i = 0; i < len && j < n; i++) {
			uint8_t c = (uint8_t)pkt[j++];

			if (c == '}') {
				c = (uint8_t)(pkt[j++] ^ 0x20);
			}
			if (addr - RAM + i < RAM_SIZE) {
				s->mem[addr - RAM + i] = c;
			}
		}
		replys(s, "OK");
	} else if (strncmp(pkt, "qRcmd,", 6) == 0) {
		char   cmd[256];
		size_t k = 0;

		for (size_t j = 6; j + 1 < n && k + 1 < sizeof(cmd); j += 2) {
			cmd[k++] = (char)(hv(pkt[j]) << 4 | hv(pkt[j + 1]));
		}
		cmd[k] = '\0';
		snprintf(s->mon_log + strlen(s->mon_log),
		    sizeof(s->mon_log) - strlen(s->mon_log), "%s|", cmd);
		if (s->mon_silent) {
			return;
		}
		if (s->mon_flood) {
			for (int i = 0; i < 5000 && !s->gone; i++) {
				replys(s, "O6f6b0a");
			}
			return;
		}
		if (s->mon_bare_hex) {
			replys(s, "646f6e650a"); /* "done\n" */
			return;
		}
		if (strstr(cmd, "lock") != NULL &&
		    (s->lock_ok || s->lock_says_ok)) {
			/* "stm32f2x locked\n" in two pieces */
			replys(s, "O73746d3332663278");
			replys(s, "O206c6f636b65640a");
			s->locked = s->lock_ok;
			replys(s, "OK");
			return;
		}
		if (strstr(cmd, "lock") != NULL && s->lock_bad_text) {
			/* "failed to lock device\n", and OK all the same */
			replys(s, "O6661696c656420746f206c6f636b206465766963650a");
			replys(s, "OK");
			return;
		}
		replys(s, "O6f6b0a"); /* console output "ok\n" first */
		replys(s, "OK");
	} else if (strcmp(pkt, "c") == 0) {
		if (!s->run_hangs) {
			replys(s, "W01");
		}
	} else if (strcmp(pkt, "D") == 0) {
		replys(s, "OK");
	} else {
		replys(s, "");
	}
}

static void *
serve(void *arg)
{
	static char pkt[140000];
	struct srv *s = arg;

	s->fd = accept(s->lfd, NULL, NULL);
	if (s->fd < 0) {
		return NULL;
	}
	for (;;) {
		int    c = getch(s);
		size_t n = 0;

		if (c < 0) {
			break;
		}
		if (c == 3) {
			replys(s, "T02thread:01;");
			continue;
		}
		if (c == '+' && s->noack) {
			s->acks_after_noack++;
		}
		if (c != '$') {
			continue;
		}
		while ((c = getch(s)) >= 0 && c != '#' && n < sizeof(pkt) - 1) {
			pkt[n++] = (char)c;
		}
		if (getch(s) < 0 || getch(s) < 0) {
			break;
		}
		if (!s->noack) {
			(void)!write(s->fd, "+", 1);
		}
		handle(s, pkt, n);
	}
	close(s->fd);
	return NULL;
}

static struct srv *
srv_start(void)
{
	struct srv        *s = calloc(1, sizeof(*s));
	struct sockaddr_un sa;

	assert_non_null(s);
	s->pktsize = 0x100;
	s->dir     = tu_tmpdir();
	snprintf(s->path, sizeof(s->path), "%s/gdb.sock", s->dir);
	s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true(strlen(s->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, s->path, strlen(s->path));
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 1), 0);
	for (unsigned i = 0; i < RAM_SIZE; i++) {
		s->mem[i] = (uint8_t)(i / 16);
	}
	return s;
}

/* Start serving and connect a probe ("" or "?server=..." appended). */
static probe *
srv_open(struct srv *s, const char *query)
{
	char   url[700], err[256];
	probe *p = NULL;
	int    rv;

	assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
	snprintf(url, sizeof(url), "gdb+unix://%s%s", s->path, query);
	rv = probe_open(&p, url, 2000, err, sizeof(err));
	if (rv != CS_OK) {
		fprintf(stderr, "probe_open: %s\n", err);
	}
	assert_int_equal(rv, CS_OK);
	return p;
}

static void
srv_stop(struct srv *s, probe *p)
{
	probe_close(p);
	pthread_join(s->th, NULL);
	close(s->lfd);
	tu_rmtree_free(s->dir);
	free(s);
}

static void
test_read_write_acks(void **state)
{
	struct srv *s = srv_start();
	uint8_t     w[1000], r[1000];
	probe      *p;

	(void)state;
	p = srv_open(s, "");
	for (size_t i = 0; i < sizeof(w); i++) {
		w[i] = (uint8_t)(i * 13);
	}
	assert_int_equal(probe_write(p, RAM + 10, w, sizeof(w)), CS_OK);
	/* PacketSize 0x100: M carries at most ~110 bytes a packet. */
	assert_true(s->writes >= 9);
	assert_memory_equal(s->mem + 10, w, sizeof(w));
	assert_int_equal(probe_read(p, RAM + 10, r, sizeof(r)), CS_OK);
	assert_memory_equal(r, w, sizeof(w));
	assert_int_equal(probe_bytes(p), 2 * sizeof(w));
	/* A bad address: E14 with the address in the message. */
	assert_int_equal(probe_read(p, 0x10, r, 4), CS_EIO);
	assert_non_null(strstr(probe_error(p), "0x00000010"));
	assert_non_null(strstr(probe_error(p), "E14"));
	assert_false(s->noack);
	srv_stop(s, p);
}

static void
test_noack_and_x(void **state)
{
	struct srv *s = srv_start();
	uint8_t     w[600], r[600];
	probe      *p;

	(void)state;
	s->offer_noack = true;
	s->x_ok        = true;
	p              = srv_open(s, "?server=openocd");
	for (size_t i = 0; i < sizeof(w); i++) {
		w[i] = "#$}*ab"[i % 6]; /* every byte that needs escaping */
	}
	assert_int_equal(probe_write(p, RAM, w, sizeof(w)), CS_OK);
	assert_true(s->x_writes >= 3);
	assert_int_equal(s->writes, 0);
	assert_memory_equal(s->mem, w, sizeof(w));
	assert_int_equal(probe_read(p, RAM, r, sizeof(r)), CS_OK);
	assert_memory_equal(r, w, sizeof(w));
	assert_int_equal(probe_reset_halt(p), CS_OK); /* qRcmd + output */
	assert_true(s->noack);
	assert_int_equal(s->acks_after_noack, 0);
	srv_stop(s, p);
}

static void
test_bad_checksum_once(void **state)
{
	struct srv *s = srv_start();
	uint8_t     r[16];
	probe      *p;

	(void)state;
	p                 = srv_open(s, "");
	s->bad_cksum_once = 1;
	assert_int_equal(probe_read(p, RAM + 32, r, sizeof(r)), CS_OK);
	assert_int_equal(s->naks, 1);
	assert_int_equal(r[0], 2);
	/* Always bad: the client gives up after its retries. */
	s->always_bad = true;
	assert_int_equal(probe_read(p, RAM, r, sizeof(r)), CS_EPROTO);
	assert_non_null(strstr(probe_error(p), "checksum"));
	assert_int_equal(s->naks, 4);
	srv_stop(s, p);
}

static void
test_e01(void **state)
{
	struct srv *s = srv_start();
	uint8_t     b[8] = {0};
	probe      *p;

	(void)state;
	p      = srv_open(s, "");
	s->e01 = true;
	assert_int_equal(probe_read(p, RAM + 0x10, b, 8), CS_EIO);
	assert_non_null(strstr(probe_error(p), "0x20000010"));
	assert_int_equal(probe_write(p, RAM + 0x20, b, 8), CS_EIO);
	assert_non_null(strstr(probe_error(p), "0x20000020"));
	assert_non_null(strstr(probe_error(p), "E01"));
	assert_int_equal(probe_flash_write(p, RAM, 0, RAM, b, 8), CS_EIO);
	srv_stop(s, p);
}

static void
test_disconnect_mid_write(void **state)
{
	struct srv *s = srv_start();
	uint8_t     w[1000];
	probe      *p;

	(void)state;
	p                      = srv_open(s, "");
	s->disconnect_at_write = 3;
	memset(w, 0xab, sizeof(w));
	assert_int_equal(probe_write(p, RAM, w, sizeof(w)), CS_ECLOSED);
	assert_non_null(strstr(probe_error(p), "closed"));
	assert_int_equal(probe_read(p, RAM, w, 4), CS_ECLOSED);
	assert_int_equal(probe_reset_halt(p), CS_ECLOSED);
	srv_stop(s, p);
}

static void
test_long_reply(void **state)
{
	struct srv *s = srv_start();
	uint8_t     b[8];
	probe      *p;

	(void)state;
	p             = srv_open(s, "");
	s->long_reply = true;
	assert_int_equal(probe_read(p, RAM, b, 8), CS_EPROTO);
	if (strstr(probe_error(p), "PacketSize") == NULL) {
		fail_msg("%s", probe_error(p));
	}
	srv_stop(s, p);
}

static void
test_bad_hex(void **state)
{
	struct srv *s = srv_start();
	uint8_t     b[1];
	probe      *p;

	(void)state;
	p          = srv_open(s, "");
	s->bad_hex = true;
	assert_int_equal(probe_read(p, RAM, b, 1), CS_EPROTO);
	assert_non_null(strstr(probe_error(p), "hex"));
	srv_stop(s, p);
}

static void
test_rle(void **state)
{
	struct srv *s = srv_start();
	uint8_t     r[RAM_SIZE];
	probe      *p;

	(void)state;
	s->rle = true;
	memset(s->mem + 100, 0, 200);
	memset(s->mem + 400, 0xEE, 3);
	p = srv_open(s, "");
	assert_int_equal(probe_read(p, RAM, r, sizeof(r)), CS_OK);
	assert_memory_equal(r, s->mem, sizeof(r));
	srv_stop(s, p);
}

static void
test_run(void **state)
{
	struct srv       *s = srv_start();
	struct probe_stop st;
	probe            *p;

	(void)state;
	p = srv_open(s, "");
	assert_int_equal(probe_run(p, 1000, &st), CS_OK);
	assert_true(st.exited);
	assert_int_equal(st.exit_code, 1);
	/* The program is gone, and so is the connection. */
	assert_int_equal(probe_run(p, 1000, &st), CS_ECLOSED);
	srv_stop(s, p);

	s            = srv_start();
	s->run_hangs = true;
	p            = srv_open(s, "");
	assert_int_equal(probe_run(p, 200, &st), CS_OK);
	assert_true(st.timed_out);
	assert_false(st.exited);
	assert_int_equal(st.signal, 2);
	srv_stop(s, p);
}

/* A server with flash in its memory map: vFlashErase/Write/Done. */
static void
test_vflash(void **state)
{
	struct srv *s = srv_start();
	uint8_t     w[1500], r[1500];
	probe      *p;

	(void)state;
	s->flash_map = true;
	for (size_t i = 0; i < sizeof(w); i++) {
		w[i] = (uint8_t)(i * 7 + 1); /* includes '#', '$', '}' */
	}
	p = srv_open(s, "?server=openocd");
	assert_int_equal(probe_flash_write(p, RAM + 0x400, 0x800, RAM + 0x400,
	    w, sizeof(w)), CS_OK);
	assert_int_equal(probe_flash_done(p), CS_OK);
	assert_int_equal(probe_read(p, RAM + 0x400, r, sizeof(r)), CS_OK);
	assert_memory_equal(w, r, sizeof(w));
	/* The server's flash commands did it, not plain writes. */
	assert_int_equal(s->erases, 1);
	assert_int_equal(s->erase_addr, RAM + 0x400);
	assert_int_equal(s->erase_len, 0x800);
	assert_true(s->flash_writes >= 1);
	assert_int_equal(s->flash_done, 1);
	assert_int_equal(s->writes, 0);
	assert_int_equal(s->x_writes, 0);
	/* The erase covers what was not written, too. */
	assert_int_equal(probe_read(p, RAM + 0x400 + sizeof(w), r, 16), CS_OK);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(r[i], 0xff);
	}
	srv_stop(s, p);
}

/* The target profile's [program] method, and the server's block size. */
static void
test_vflash_profile(void **state)
{
	struct srv   *s = srv_start();
	struct target t;
	uint8_t       w[64];
	probe        *p;

	(void)state;
	memset(&t, 0, sizeof(t));
	memset(w, 0x5a, sizeof(w));
	s->flash_map = true;
	p = srv_open(s, "?server=openocd");
	t.program = TARGET_PROGRAM_VFLASH;
	assert_int_equal(probe_set_target(p, &t), CS_OK);
	/* Half a 0x400 block would take the other half with it. */
	assert_int_equal(probe_flash_write(p, RAM, 0x200, RAM, w, sizeof(w)),
	    CS_EINVAL);
	assert_non_null(strstr(probe_error(p), "flash blocks"));
	assert_int_equal(s->erases, 0);
	assert_int_equal(probe_flash_write(p, RAM, 0x400, RAM, w, sizeof(w)),
	    CS_OK);
	assert_int_equal(s->erases, 1);
	srv_stop(s, p);

	/* vflash wanted, but the server has no flash map. */
	s = srv_start();
	p = srv_open(s, "");
	assert_int_equal(probe_set_target(p, &t), CS_OK);
	assert_int_equal(probe_flash_write(p, RAM, 0x400, RAM, w, sizeof(w)),
	    CS_EPRECOND);
	assert_non_null(strstr(probe_error(p), "no flash"));
	srv_stop(s, p);
}

/* The server binds its socket, then listens a moment later. */
static void *
listen_late(void *arg)
{
	struct srv *s = arg;

	usleep(300 * 1000);
	if (listen(s->lfd, 1) != 0) {
		return NULL;
	}
	return serve(s);
}

/* A GDB server that bound its socket but does not listen yet (QEMU
 * starting) is waited for within the probe's timeout; a bound socket
 * nobody ever listens on fails with the reason once it passed. */
static void
test_listen_late(void **state)
{
	struct srv        *s = srv_start();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char               url[700], err[256];
	probe             *p = NULL;

	(void)state;
	close(s->lfd);
	unlink(s->path);
	memcpy(sa.sun_path, s->path, strlen(s->path));
	s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(url, sizeof(url), "gdb+unix://%s", s->path);
	assert_int_equal(probe_open(&p, url, 100, err, sizeof(err)),
	    CS_EUNAVAIL);
	assert_non_null(strstr(err, "refused"));
	assert_int_equal(pthread_create(&s->th, NULL, listen_late, s), 0);
	if (probe_open(&p, url, 2000, err, sizeof(err)) != CS_OK) {
		fail_msg("probe_open: %s", err);
	}
	srv_stop(s, p);
}

static void
test_connect_errors(void **state)
{
	probe *p = NULL;
	char   err[256];

	(void)state;
	assert_int_equal(probe_open(&p, "gdb+unix:///nonexistent/sock", 500,
	    err, sizeof(err)), CS_EUNAVAIL);
	assert_non_null(strstr(err, "/nonexistent/sock"));
	assert_int_equal(probe_open(&p, "gdb+unix://relative", 500, err,
	    sizeof(err)), CS_EADDR);
	assert_int_equal(probe_open(&p, "gdb://localhost", 500, err,
	    sizeof(err)), CS_EADDR);
	assert_int_equal(probe_open(&p, "gdb://127.0.0.1:1", 500, err,
	    sizeof(err)), CS_EUNAVAIL);
	assert_int_equal(probe_open(&p, "gdb://127.0.0.1:1?server=stlink",
	    500, err, sizeof(err)), CS_EADDR);
	assert_null(p);
}

/* A profile that locks through OpenOCD's monitor commands and checks
 * that RAM (the server's only memory) can no longer be read. */
static void
lock_target(struct target *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "part");
	t->can_lock                   = true;
	t->uid_addr                   = RAM + 0x100;
	t->uid_len                    = 8;
	t->flash_base                 = RAM;
	t->flash_size                 = RAM_SIZE;
	t->protect.n_monitors         = 3;
	t->protect.monitor_timeout_ms = 300;
	snprintf(t->protect.monitor[0].server, 8, "openocd");
	snprintf(t->protect.monitor[0].cmd, 32, "reset halt");
	snprintf(t->protect.monitor[1].server, 8, "openocd");
	snprintf(t->protect.monitor[1].cmd, 32, "stm32f2x lock 0");
	snprintf(t->protect.monitor[1].expect, 32, "locked");
	snprintf(t->protect.monitor[2].server, 8, "jlink");
	snprintf(t->protect.monitor[2].cmd, 32, "not for openocd");
	t->protect.check      = TARGET_CHECK_READ_FAILS;
	t->protect.check_addr = RAM;
}

static void
test_lock_monitor(void **state)
{
	struct target t;
	struct srv   *s;
	probe        *p;

	(void)state;
	lock_target(&t);
	/* Locked: the server's commands ran in order, its own only, and the
	 * read of RAM now fails. */
	s          = srv_start();
	s->lock_ok = true;
	p          = srv_open(s, "?server=openocd");
	if (probe_protect(p, &t) != CS_OK) {
		fail_msg("probe_protect: %s", probe_error(p));
	}
	assert_string_equal(s->mon_log, "reset halt|stm32f2x lock 0|");
	assert_string_equal(probe_error(p), "");
	srv_stop(s, p);

	/* The server says "locked" but RAM still reads: did not take. */
	s               = srv_start();
	s->lock_says_ok = true;
	p               = srv_open(s, "?server=openocd");
	assert_int_equal(probe_protect(p, &t), CS_EIO);
	assert_string_equal(probe_error(p), "lock did not take: flash at "
	    "0x20000000 is still readable");
	srv_stop(s, p);

	/* OpenOCD answers OK even when the lock failed: the text tells. */
	s                = srv_start();
	s->lock_bad_text = true;
	p                = srv_open(s, "?server=openocd");
	assert_int_equal(probe_protect(p, &t), CS_EIO);
	assert_string_equal(probe_error(p), "lock command 2 ('stm32f2x lock "
	    "0'): the output does not contain 'locked' (it was: 'failed to "
	    "lock device ')");
	srv_stop(s, p);

	/* No commands for this kind of server; and QEMU has none at all. */
	s = srv_start();
	p = srv_open(s, "?server=pyocd");
	assert_int_equal(probe_protect(p, &t), CS_EUNIMPL);
	assert_non_null(strstr(probe_error(p), "no lock commands for pyocd"));
	assert_string_equal(s->mon_log, "");
	srv_stop(s, p);

	/* The final reply may carry the output itself (hex, no 'O'). */
	s               = srv_start();
	s->mon_bare_hex = true;
	p               = srv_open(s, "?server=openocd");
	t.protect.monitor[1].expect[0] = '\0';
	assert_int_equal(probe_protect(p, &t), CS_EIO); /* RAM still open */
	assert_non_null(strstr(probe_error(p), "lock did not take"));
	snprintf(t.protect.monitor[1].expect, 32, "done");
	assert_int_equal(probe_protect(p, &t), CS_EIO);
	assert_non_null(strstr(probe_error(p), "lock did not take"));
	snprintf(t.protect.monitor[1].expect, 32, "nope");
	assert_int_equal(probe_protect(p, &t), CS_EIO);
	assert_non_null(strstr(probe_error(p), "(it was: 'done ')"));
	srv_stop(s, p);
}

/* A server that floods output or says nothing does not hold the station:
 * bounded packets, bounded time. */
static void
test_lock_monitor_hostile(void **state)
{
	struct target t;
	struct srv   *s;
	probe        *p;

	(void)state;
	lock_target(&t);
	s            = srv_start();
	s->mon_flood = true;
	p            = srv_open(s, "?server=openocd");
	assert_int_equal(probe_protect(p, &t), CS_EPROTO);
	assert_non_null(strstr(probe_error(p), "lock command 1 ('reset "
	    "halt'): GDB server sent more than 1024 output packets"));
	srv_stop(s, p);

	s             = srv_start();
	s->mon_silent = true;
	p             = srv_open(s, "?server=openocd");
	assert_int_equal(probe_protect(p, &t), CS_ETIMEDOUT);
	assert_non_null(strstr(probe_error(p), "lock command 1 ('reset "
	    "halt')"));
	srv_stop(s, p);

	/* A command too long for the server's packets is refused before
	 * anything is sent. */
	s = srv_start();
	p = srv_open(s, "?server=openocd");
	memset(t.protect.monitor[0].cmd, 'x', TARGET_PROTECT_CMD_MAX);
	t.protect.monitor[0].cmd[TARGET_PROTECT_CMD_MAX] = '\0';
	assert_int_equal(probe_protect(p, &t), CS_EINVAL);
	if (strstr(probe_error(p), "PacketSize") == NULL) {
		fail_msg("%s", probe_error(p));
	}
	assert_string_equal(s->mon_log, "");
	srv_stop(s, p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_write_acks),
	    cmocka_unit_test(test_noack_and_x),
	    cmocka_unit_test(test_bad_checksum_once),
	    cmocka_unit_test(test_e01),
	    cmocka_unit_test(test_disconnect_mid_write),
	    cmocka_unit_test(test_long_reply),
	    cmocka_unit_test(test_bad_hex),
	    cmocka_unit_test(test_rle),
	    cmocka_unit_test(test_run),
	    cmocka_unit_test(test_vflash),
	    cmocka_unit_test(test_vflash_profile),
	    cmocka_unit_test(test_connect_errors),
	    cmocka_unit_test(test_listen_late),
	    cmocka_unit_test(test_lock_monitor),
	    cmocka_unit_test(test_lock_monitor_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
