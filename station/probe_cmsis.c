/*
 * probe_cmsis.c - "cmsis-dap://" probes (see probe_cmsis.h): the probe
 * interface on top of dap.c (CMSIS-DAP commands) and adiv5.c (MEM-AP and
 * Cortex-M debug).
 *
 * Flash is programmed the way the part itself does it, through its flash
 * controller's registers written over the MEM-AP: for the LM3S family
 * (the only type so far), FMA = address, FMD = data, FMC = WRKEY 0xA442 |
 * WRITE (or ERASE for the 1 KiB page at FMA), then FMC is polled until the
 * bit clears and FCRIS.ARIS says whether the access was refused.  Each
 * word costs a few probe round trips; a RAM-resident flash algorithm
 * (load a routine and a buffer into RAM, run the core on it) would be
 * faster and is the way to go for larger parts.
 *
 * Locking (probe_protect) runs the profile's [protect] steps (register
 * writes, polls, resets) through the same MEM-AP calls: a step that
 * faults or a poll that runs out of time fails with the step's number.
 */
#include "probe_cmsis.h"

#include "adiv5.h"
#include "cs_err.h"
#include "dap_usb.h"
#include "probe_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMSIS_CLOCK_DEFAULT 1000000u
#define CMSIS_CLOCK_MAX     100000000u
#define CMSIS_PARAM_MAX     32u
#define CMSIS_FLASH_MS      2000u /* page erase or word write, at most */
#define CMSIS_RUN_POLL_MS   10u

/* LM3S flash controller (offsets from [flash_controller] base). */
#define LM3S_FMA    0x000u
#define LM3S_FMC    0x008u
#define LM3S_FCRIS  0x00Cu
#define LM3S_FCMISC 0x014u
#define LM3S_KEY    0xA4420000u
#define LM3S_WRITE  (1u << 0)
#define LM3S_ERASE  (1u << 1)
#define LM3S_ARIS   (1u << 0)

static probe_cmsis_factory cmsis_factory = dap_usb_open;

void
probe_cmsis_set_transport_factory(probe_cmsis_factory f)
{
	cmsis_factory = f != NULL ? f : dap_usb_open;
}

struct cmsis {
	dap          *d;
	adiv5        *a;
	bool          has_target;
	struct target t;
	char          serial[PROBE_URL_MAX];
};

extern const struct probe_ops probe_cmsis_ops;

int
probe_cmsis_set_target(probe *p, const struct target *t)
{
	struct cmsis *c;

	if (p == NULL || t == NULL) {
		return CS_EINVAL;
	}
	if (p->ops != &probe_cmsis_ops) {
		return CS_OK;
	}
	c             = p->impl;
	c->t          = *t;
	c->has_target = true;
	return CS_OK;
}

/* vid=/pid=: hex, with or without 0x. */
static int
parse_hex16(const char *v, uint16_t *out)
{
	char     buf[CMSIS_PARAM_MAX + 3];
	uint32_t n;

	snprintf(buf, sizeof(buf), "%s%s", strncmp(v, "0x", 2) == 0 ? ""
	                                                            : "0x", v);
	if (probe_parse_u32(buf, 0xFFFFu, &n) != CS_OK) {
		return CS_EINVAL;
	}
	*out = (uint16_t)n;
	return CS_OK;
}

static int
cmsis_open(probe *p, const struct probe_url *u)
{
	static const char *const known[] = {"vid", "pid", "clock", NULL};
	struct cmsis            *c;
	struct dap_transport     t;
	char                     v[CMSIS_PARAM_MAX];
	char                     err[PROBE_ERR_MAX];
	uint16_t                 vid = 0, pid = 0;
	uint32_t                 clock = CMSIS_CLOCK_DEFAULT, dpidr = 0;
	int                      rv;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return probe_fail(p, CS_ENOMEM, "out of memory");
	}
	p->impl = c;
	snprintf(c->serial, sizeof(c->serial), "%s", u->where);
	if ((rv = probe_query_check(p, u->query, known)) != CS_OK) {
		return rv;
	}
	if ((rv = probe_query_get(u->query, "vid", v, sizeof(v))) == 1 &&
	    parse_hex16(v, &vid) != CS_OK) {
		return probe_fail(p, CS_EADDR, "cmsis-dap: vid=%s: expected "
		    "a 16-bit hex number", v);
	}
	if (rv >= 0 && (rv = probe_query_get(u->query, "pid", v,
	    sizeof(v))) == 1 && parse_hex16(v, &pid) != CS_OK) {
		return probe_fail(p, CS_EADDR, "cmsis-dap: pid=%s: expected "
		    "a 16-bit hex number", v);
	}
	if (rv >= 0 && (rv = probe_query_get(u->query, "clock", v,
	    sizeof(v))) == 1 && (probe_parse_u32(v, CMSIS_CLOCK_MAX,
	    &clock) != CS_OK || clock == 0)) {
		return probe_fail(p, CS_EADDR, "cmsis-dap: clock=%s: expected "
		    "1 to %u Hz", v, CMSIS_CLOCK_MAX);
	}
	if (rv < 0) {
		return probe_fail(p, CS_EADDR, "cmsis-dap: URL parameter too "
		    "long");
	}
	err[0] = '\0';
	memset(&t, 0, sizeof(t));
	if ((rv = cmsis_factory(c->serial, vid, pid, &t, err,
	    sizeof(err))) != CS_OK) {
		return probe_fail(p, rv == CS_ENOMEM ? rv : CS_EUNAVAIL,
		    "cmsis-dap://%s: %s", c->serial,
		    err[0] != '\0' ? err : cs_strerror(rv));
	}
	if ((rv = dap_open(&c->d, &t, p->timeout_ms)) != CS_OK) {
		if (t.close != NULL) {
			t.close(t.ctx);
		}
		return probe_fail(p, rv, "out of memory");
	}
	if ((rv = dap_connect_swd(c->d, clock, &dpidr)) != CS_OK) {
		return probe_fail(p, rv == CS_EIO ? CS_EUNAVAIL : rv,
		    "cmsis-dap://%s: %s", c->serial, dap_error(c->d));
	}
	if ((rv = adiv5_open(&c->a, c->d)) != CS_OK ||
	    (rv = adiv5_cm_halt(c->a)) != CS_OK) {
		return probe_fail(p, rv == CS_EIO ? CS_EUNAVAIL : rv,
		    "cmsis-dap://%s (DPIDR 0x%08x): %s", c->serial, dpidr,
		    c->a != NULL ? adiv5_error(c->a) : "out of memory");
	}
	return CS_OK;
}

static void
cmsis_close(probe *p)
{
	struct cmsis *c = p->impl;

	if (c != NULL) {
		adiv5_close(c->a);
		dap_close(c->d);
		free(c);
	}
	p->impl = NULL;
}

static int
cmsis_err(probe *p, int rv)
{
	struct cmsis *c = p->impl;

	return probe_fail(p, rv, "cmsis-dap://%s: %s", c->serial,
	    adiv5_error(c->a));
}

static int
cmsis_read(probe *p, uint32_t addr, void *buf, size_t len)
{
	struct cmsis *c = p->impl;
	int           rv;

	if ((rv = adiv5_mem_read(c->a, addr, buf, len)) != CS_OK) {
		return cmsis_err(p, rv);
	}
	return CS_OK;
}

static int
cmsis_write(probe *p, uint32_t addr, const void *buf, size_t len)
{
	struct cmsis *c = p->impl;
	int           rv;

	if ((rv = adiv5_mem_write(c->a, addr, buf, len)) != CS_OK) {
		return cmsis_err(p, rv);
	}
	return CS_OK;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One LM3S controller operation: FMA, FMD, FMC in one run, then poll FMC
 * until the operation bit clears and check FCRIS.ARIS. */
static int
lm3s_op(probe *p, uint32_t addr, uint32_t data, uint32_t op)
{
	struct cmsis  *c     = p->impl;
	uint32_t       base  = c->t.flash_ctl_base;
	uint32_t       regs[3] = {addr, data, LM3S_KEY | op};
	uint32_t       fmc = op, fcris = 0;
	uint64_t       deadline;
	const char    *what = op == LM3S_ERASE ? "erasing the page at"
	                                       : "programming the word at";
	int            rv;

	if ((rv = adiv5_mem_write(c->a, base + LM3S_FMA, regs,
	    sizeof(regs))) != CS_OK) {
		return cmsis_err(p, rv);
	}
	deadline = now_ms() + CMSIS_FLASH_MS;
	while ((fmc & op) != 0) {
		if ((rv = adiv5_mem_read32(c->a, base + LM3S_FMC, &fmc)) !=
		    CS_OK) {
			return cmsis_err(p, rv);
		}
		if ((fmc & op) != 0 && now_ms() > deadline) {
			return probe_fail(p, CS_ETIMEDOUT, "cmsis-dap://%s: "
			    "flash controller still busy %s 0x%08x after %u "
			    "ms", c->serial, what, addr, CMSIS_FLASH_MS);
		}
	}
	if ((rv = adiv5_mem_read32(c->a, base + LM3S_FCRIS, &fcris)) !=
	    CS_OK) {
		return cmsis_err(p, rv);
	}
	if ((fcris & LM3S_ARIS) != 0) {
		adiv5_mem_write32(c->a, base + LM3S_FCMISC, LM3S_ARIS);
		return probe_fail(p, CS_EIO, "cmsis-dap://%s: flash controller "
		    "refused %s 0x%08x (access error: protected flash or a bad "
		    "address)", c->serial, what, addr);
	}
	return CS_OK;
}

static int
cmsis_flash_write(probe *p, uint32_t erase_addr, size_t erase_len,
    uint32_t addr, const void *buf, size_t len)
{
	struct cmsis        *c = p->impl;
	const struct target *t = &c->t;
	const uint8_t       *b = buf;
	uint64_t             fend;
	uint8_t              back[256];
	int                  rv;

	if (!c->has_target || t->flash_ctl == TARGET_FLASH_CTL_NONE) {
		return probe_fail(p, CS_EPRECOND, "cmsis-dap://%s: cannot "
		    "program flash: the target profile%s%s has no "
		    "[flash_controller] section", c->serial,
		    c->has_target ? " " : "", c->has_target ? t->name : "");
	}
	fend = (uint64_t)t->flash_base + t->flash_size;
	if (erase_len != 0 &&
	    (erase_addr % t->page_size != 0 || erase_len % t->page_size != 0 ||
	    erase_addr < t->flash_base || erase_addr + (uint64_t)erase_len >
	    fend)) {
		return probe_fail(p, CS_EINVAL, "cmsis-dap://%s: erase 0x%08x "
		    "+ %zu is not whole %u-byte pages inside flash", c->serial,
		    erase_addr, erase_len, t->page_size);
	}
	if (addr < t->flash_base || addr + (uint64_t)len > fend) {
		return probe_fail(p, CS_EINVAL, "cmsis-dap://%s: 0x%08x + %zu "
		    "is not inside flash 0x%08x + 0x%x", c->serial, addr, len,
		    t->flash_base, t->flash_size);
	}
	for (size_t off = 0; off < erase_len; off += t->page_size) {
		if ((rv = lm3s_op(p, erase_addr + (uint32_t)off, 0,
		    LM3S_ERASE)) != CS_OK) {
			return rv;
		}
	}
	/* Word by word; a partial word at either end keeps the bytes flash
	 * already holds (programming them again changes nothing). */
	for (uint64_t w = addr & ~3u; w < (uint64_t)addr + len; w += 4) {
		uint8_t  q[4];
		uint32_t val;

		if (w < addr || w + 4 > (uint64_t)addr + len) {
			if ((rv = cmsis_read(p, (uint32_t)w, q, 4)) != CS_OK) {
				return rv;
			}
		}
		for (unsigned i = 0; i < 4; i++) {
			if (w + i >= addr && w + i < (uint64_t)addr + len) {
				q[i] = b[w + i - addr];
			}
		}
		val = (uint32_t)q[0] | (uint32_t)q[1] << 8 |
		      (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
		if (val != 0xFFFFFFFFu &&
		    (rv = lm3s_op(p, (uint32_t)w, val, LM3S_WRITE)) != CS_OK) {
			return rv;
		}
	}
	/* Read back: NOR programming only clears bits, so a word that was
	 * not erased shows here. */
	for (size_t off = 0; off < len; off += sizeof(back)) {
		size_t n = len - off < sizeof(back) ? len - off : sizeof(back);

		if ((rv = cmsis_read(p, addr + (uint32_t)off, back, n)) !=
		    CS_OK) {
			return rv;
		}
		for (size_t i = 0; i < n; i++) {
			if (back[i] != b[off + i]) {
				return probe_fail(p, CS_EIO, "cmsis-dap://%s: "
				    "flash at 0x%08zx reads 0x%02x after "
				    "programming 0x%02x: NOR flash only clears "
				    "bits (was the page erased?)", c->serial,
				    (size_t)addr + off + i, back[i],
				    b[off + i]);
			}
		}
	}
	return CS_OK;
}

static int
cmsis_flash_done(probe *p)
{
	(void)p; /* every word is programmed and checked as it goes */
	return CS_OK;
}

static int
cmsis_reset_halt(probe *p)
{
	struct cmsis *c = p->impl;
	int           rv;

	if ((rv = adiv5_cm_reset_halt(c->a, false)) != CS_OK) {
		return cmsis_err(p, rv);
	}
	return CS_OK;
}

static int
cmsis_run(probe *p, unsigned timeout_ms, struct probe_stop *stop)
{
	struct cmsis         *c        = p->impl;
	uint64_t              deadline = now_ms() + timeout_ms;
	const struct timespec tick     = {0, CMSIS_RUN_POLL_MS * 1000000L};
	bool                  halted   = false;
	int                   rv;

	if ((rv = adiv5_cm_resume(c->a)) != CS_OK) {
		return cmsis_err(p, rv);
	}
	while (now_ms() < deadline) {
		nanosleep(&tick, NULL);
		if ((rv = adiv5_cm_halted(c->a, &halted)) != CS_OK) {
			return cmsis_err(p, rv);
		}
		if (halted) {
			stop->signal = 5; /* halted itself: a breakpoint */
			return CS_OK;
		}
	}
	stop->timed_out = true;
	if ((rv = adiv5_cm_halt(c->a)) != CS_OK) {
		return cmsis_err(p, rv);
	}
	return CS_OK;
}

const struct probe_ops probe_cmsis_ops = {
	.scheme      = "cmsis-dap",
	.open        = cmsis_open,
	.close       = cmsis_close,
	.read        = cmsis_read,
	.write       = cmsis_write,
	.flash_write = cmsis_flash_write,
	.flash_done  = cmsis_flash_done,
	.reset_halt  = cmsis_reset_halt,
	.run         = cmsis_run,
	.set_target  = probe_cmsis_set_target,
	.protect     = probe_protect_steps,
};
