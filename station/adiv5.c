/*
 * adiv5.c - ADIv5 DP/MEM-AP access and Cortex-M debug over dap.h (see
 * adiv5.h).
 *
 * SELECT and CSW are cached (they are written often and change rarely);
 * TAR is written before every run because auto-increment is only defined
 * within a 1 KiB block.  A run that failed with CS_ETIMEDOUT (WAIT after
 * all retries) is redone whole after rewriting TAR: dap.c cannot resume a
 * block in the middle of the probe's posted-read pipeline, and memory
 * reads and writes may be repeated.
 */
#include "adiv5.h"

#include "cs_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADIV5_ERR_MAX      320u
#define ADIV5_POLL_MS      1000u /* power-up, halt, register, reset */
#define ADIV5_RUN_RETRIES  3u
#define ADIV5_BLOCK        0x400u /* TAR auto-increment block */

#define DP_ABORT    0x0u
#define DP_CTRLSTAT 0x4u
#define DP_SELECT   0x8u
#define CTRL_CDBGPWRUPREQ (1u << 28)
#define CTRL_CDBGPWRUPACK (1u << 29)
#define CTRL_CSYSPWRUPREQ (1u << 30)
#define CTRL_CSYSPWRUPACK (1u << 31)

#define AP_CSW 0x00u
#define AP_TAR 0x04u
#define AP_DRW 0x0Cu
#define AP_IDR 0xFCu
/* Debug master, privileged data access, auto-increment single. */
#define CSW_BASE    0x23000010u
#define CSW_SIZE8   0u
#define CSW_SIZE32  2u

#define DHCSR 0xE000EDF0u
#define DCRSR 0xE000EDF4u
#define DCRDR 0xE000EDF8u
#define DEMCR 0xE000EDFCu
#define AIRCR 0xE000ED0Cu
#define DBGKEY        0xA05F0000u
#define C_DEBUGEN     (1u << 0)
#define C_HALT        (1u << 1)
#define S_REGRDY      (1u << 16)
#define S_HALT        (1u << 17)
#define S_RESET_ST    (1u << 25)
#define DCRSR_WRITE   (1u << 16)
#define VC_CORERESET  (1u << 0)
#define AIRCR_SYSRESETREQ 0x05FA0004u

struct adiv5 {
	dap     *d;
	uint32_t select;
	bool     select_ok;
	uint32_t csw;
	bool     csw_ok;
	char     err[ADIV5_ERR_MAX];
};

static int
a_fail(adiv5 *a, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
a_fail(adiv5 *a, int rv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
	return rv;
}

/* A dap.h failure: keep its text, and forget cached AP state (after a
 * FAULT or WAIT we cannot be sure a write landed). */
static int
a_dap(adiv5 *a, int rv)
{
	if (rv != CS_OK) {
		a->select_ok = false;
		a->csw_ok    = false;
		a_fail(a, rv, "%s", dap_error(a->d));
	}
	return rv;
}

/* Add context in front of the current error text. */
static int
a_ctx(adiv5 *a, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
a_ctx(adiv5 *a, int rv, const char *fmt, ...)
{
	char    why[ADIV5_ERR_MAX];
	char    ctx[128];
	va_list ap;
	int     m;

	snprintf(why, sizeof(why), "%s", a->err);
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	m = snprintf(a->err, sizeof(a->err), "%s: ", ctx);
	if (m > 0 && (size_t)m < sizeof(a->err)) {
		size_t n    = strlen(why);
		size_t room = sizeof(a->err) - (size_t)m - 1;

		n = n < room ? n : room;
		memcpy(a->err + m, why, n);
		a->err[(size_t)m + n] = '\0';
	}
	return rv;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *
adiv5_error(const adiv5 *a)
{
	return a != NULL ? a->err : "no debug port";
}

static int
a_select(adiv5 *a, uint8_t reg)
{
	uint32_t sel = (uint32_t)(reg & 0xF0u); /* APSEL 0, APBANKSEL */
	int      rv;

	if (a->select_ok && a->select == sel) {
		return CS_OK;
	}
	if ((rv = a_dap(a, dap_reg_write(a->d, false, DP_SELECT, sel))) !=
	    CS_OK) {
		return rv;
	}
	a->select    = sel;
	a->select_ok = true;
	return CS_OK;
}

int
adiv5_ap_read(adiv5 *a, uint8_t reg, uint32_t *val)
{
	int rv;

	if (a == NULL || val == NULL || (reg & 3) != 0) {
		return CS_EINVAL;
	}
	if ((rv = a_select(a, reg)) != CS_OK) {
		return rv;
	}
	return a_dap(a, dap_reg_read(a->d, true, reg & 0x0Cu, val));
}

int
adiv5_ap_write(adiv5 *a, uint8_t reg, uint32_t val)
{
	int rv;

	if (a == NULL || (reg & 3) != 0) {
		return CS_EINVAL;
	}
	if ((rv = a_select(a, reg)) != CS_OK) {
		return rv;
	}
	return a_dap(a, dap_reg_write(a->d, true, reg & 0x0Cu, val));
}

static int
a_csw(adiv5 *a, uint32_t size)
{
	uint32_t v = CSW_BASE | size;
	int      rv;

	if (a->csw_ok && a->csw == v) {
		return CS_OK;
	}
	if ((rv = adiv5_ap_write(a, AP_CSW, v)) != CS_OK) {
		return rv;
	}
	a->csw    = v;
	a->csw_ok = true;
	return CS_OK;
}

int
adiv5_open(adiv5 **out, dap *d)
{
	adiv5   *a;
	uint32_t cs = 0, idr = 0;
	uint64_t deadline;
	int      rv;

	if (out == NULL || d == NULL) {
		return CS_EINVAL;
	}
	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		return CS_ENOMEM;
	}
	a->d = d;
	*out = a;
	/* SELECT first: CTRL/STAT is DP bank 0. */
	if ((rv = a_select(a, 0)) != CS_OK ||
	    (rv = a_dap(a, dap_reg_write(d, false, DP_CTRLSTAT,
	    CTRL_CDBGPWRUPREQ | CTRL_CSYSPWRUPREQ))) != CS_OK) {
		return a_ctx(a, rv, "debug power-up");
	}
	deadline = now_ms() + ADIV5_POLL_MS;
	for (;;) {
		if ((rv = a_dap(a, dap_reg_read(d, false, DP_CTRLSTAT,
		    &cs))) != CS_OK) {
			return a_ctx(a, rv, "debug power-up");
		}
		if ((cs & (CTRL_CDBGPWRUPACK | CTRL_CSYSPWRUPACK)) ==
		    (CTRL_CDBGPWRUPACK | CTRL_CSYSPWRUPACK)) {
			break;
		}
		if (now_ms() > deadline) {
			return a_fail(a, CS_EUNAVAIL, "debug power-up: no "
			    "acknowledge within %u ms (CTRL/STAT 0x%08x)",
			    ADIV5_POLL_MS, cs);
		}
	}
	if ((rv = adiv5_ap_read(a, AP_IDR, &idr)) != CS_OK) {
		return a_ctx(a, rv, "reading AP 0's IDR");
	}
	/* IDR class 0x8: MEM-AP. */
	if (((idr >> 13) & 0xFu) != 0x8u) {
		return a_fail(a, CS_EUNAVAIL, "AP 0 is not a MEM-AP (IDR "
		    "0x%08x)", idr);
	}
	return CS_OK;
}

void
adiv5_close(adiv5 *a)
{
	free(a);
}

/* Words at addr (aligned, inside one 1 KiB block): TAR, then a block. */
static int
a_run(adiv5 *a, uint32_t addr, uint32_t *w, size_t n, bool rd)
{
	int rv = CS_OK;

	for (unsigned i = 0; i < ADIV5_RUN_RETRIES; i++) {
		if ((rv = a_csw(a, CSW_SIZE32)) != CS_OK ||
		    (rv = adiv5_ap_write(a, AP_TAR, addr)) != CS_OK) {
			break;
		}
		rv = a_dap(a, rd ? dap_ap_read_block(a->d, AP_DRW, w, n)
		                 : dap_ap_write_block(a->d, AP_DRW, w, n));
		if (rv != CS_ETIMEDOUT) {
			break;
		}
	}
	return rv;
}

int
adiv5_mem_read(adiv5 *a, uint32_t addr, void *buf, size_t len)
{
	uint32_t w[ADIV5_BLOCK / 4];
	uint8_t *b    = buf;
	uint64_t end  = (uint64_t)addr + len;
	uint64_t p    = addr & ~3u;
	int      rv;

	if (a == NULL || (buf == NULL && len != 0) ||
	    end > 0x100000000ull) {
		return CS_EINVAL;
	}
	while (p < end) {
		uint64_t blk  = (p | (ADIV5_BLOCK - 1)) + 1;
		uint64_t stop = ((end + 3) & ~3ull) < blk ? ((end + 3) & ~3ull)
		                                          : blk;
		size_t   n    = (size_t)(stop - p) / 4;

		if ((rv = a_run(a, (uint32_t)p, w, n, true)) != CS_OK) {
			return a_ctx(a, rv, "reading 0x%08x + %zu",
			    (unsigned)p, n * 4);
		}
		for (size_t i = 0; i < n * 4; i++) {
			uint64_t at = p + i;

			if (at >= addr && at < end) {
				b[at - addr] = (uint8_t)(w[i / 4] >> (i % 4 * 8));
			}
		}
		p = stop;
	}
	return CS_OK;
}

/* Bytes (n < 4, not crossing a word) with CSW size 8, lanes by address. */
static int
a_write_bytes(adiv5 *a, uint32_t addr, const uint8_t *b, size_t n)
{
	uint32_t w[3];
	int      rv;

	for (size_t i = 0; i < n; i++) {
		w[i] = (uint32_t)b[i] << ((addr + i) % 4 * 8);
	}
	for (unsigned i = 0; i < ADIV5_RUN_RETRIES; i++) {
		if ((rv = a_csw(a, CSW_SIZE8)) != CS_OK ||
		    (rv = adiv5_ap_write(a, AP_TAR, addr)) != CS_OK) {
			break;
		}
		if ((rv = a_dap(a, dap_ap_write_block(a->d, AP_DRW, w, n))) !=
		    CS_ETIMEDOUT) {
			break;
		}
	}
	return rv != CS_OK ? a_ctx(a, rv, "writing %zu byte(s) at 0x%08x",
	                         n, addr)
	                   : CS_OK;
}

int
adiv5_mem_write(adiv5 *a, uint32_t addr, const void *buf, size_t len)
{
	uint32_t       w[ADIV5_BLOCK / 4];
	const uint8_t *b   = buf;
	uint64_t       end = (uint64_t)addr + len;
	uint64_t       p   = addr;
	int            rv;

	if (a == NULL || (buf == NULL && len != 0) ||
	    end > 0x100000000ull) {
		return CS_EINVAL;
	}
	if ((p & 3) != 0 && p < end) {
		size_t n = 4 - (size_t)(p & 3);

		n = n < end - p ? n : (size_t)(end - p);
		if ((rv = a_write_bytes(a, (uint32_t)p, b, n)) != CS_OK) {
			return rv;
		}
		p += n;
	}
	while (end - p >= 4) {
		uint64_t blk  = (p | (ADIV5_BLOCK - 1)) + 1;
		uint64_t stop = (end & ~3ull) < blk ? (end & ~3ull) : blk;
		size_t   n    = (size_t)(stop - p) / 4;

		for (size_t i = 0; i < n; i++) {
			const uint8_t *q = b + (p - addr) + i * 4;

			w[i] = (uint32_t)q[0] | (uint32_t)q[1] << 8 |
			       (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
		}
		if ((rv = a_run(a, (uint32_t)p, w, n, false)) != CS_OK) {
			return a_ctx(a, rv, "writing 0x%08x + %zu",
			    (unsigned)p, n * 4);
		}
		p = stop;
	}
	if (p < end) {
		return a_write_bytes(a, (uint32_t)p, b + (p - addr),
		    (size_t)(end - p));
	}
	return CS_OK;
}

int
adiv5_mem_read32(adiv5 *a, uint32_t addr, uint32_t *val)
{
	int rv;

	if (a == NULL || val == NULL || (addr & 3) != 0) {
		return CS_EINVAL;
	}
	if ((rv = a_run(a, addr, val, 1, true)) != CS_OK) {
		return a_ctx(a, rv, "reading 0x%08x", addr);
	}
	return CS_OK;
}

int
adiv5_mem_write32(adiv5 *a, uint32_t addr, uint32_t val)
{
	int rv;

	if (a == NULL || (addr & 3) != 0) {
		return CS_EINVAL;
	}
	if ((rv = a_run(a, addr, &val, 1, false)) != CS_OK) {
		return a_ctx(a, rv, "writing 0x%08x", addr);
	}
	return CS_OK;
}

/* Poll DHCSR until (v & mask) == mask and, with reset, S_RESET_ST was
 * seen in some read (it clears on read); FAULTs (a core in reset) are
 * tolerated until the deadline when reset is set. */
static int
a_wait_dhcsr(adiv5 *a, uint32_t mask, bool reset, const char *what)
{
	uint64_t deadline = now_ms() + ADIV5_POLL_MS;
	uint32_t v = 0, all = 0;
	int      rv;

	for (;;) {
		rv = adiv5_mem_read32(a, DHCSR, &v);
		if (rv == CS_OK) {
			all |= v;
			if ((v & mask) == mask &&
			    (!reset || (all & S_RESET_ST) != 0)) {
				break;
			}
		} else if (!reset || rv == CS_ECLOSED) {
			return rv;
		}
		if (now_ms() > deadline) {
			return a_fail(a, CS_ETIMEDOUT, "%s: not done within "
			    "%u ms (DHCSR 0x%08x)", what, ADIV5_POLL_MS, v);
		}
	}
	return CS_OK;
}

int
adiv5_cm_halt(adiv5 *a)
{
	int rv;

	if (a == NULL) {
		return CS_EINVAL;
	}
	if ((rv = adiv5_mem_write32(a, DHCSR, DBGKEY | C_DEBUGEN | C_HALT)) !=
	    CS_OK) {
		return a_ctx(a, rv, "halting the core");
	}
	return a_wait_dhcsr(a, S_HALT, false, "halting the core");
}

int
adiv5_cm_resume(adiv5 *a)
{
	int rv;

	if (a == NULL) {
		return CS_EINVAL;
	}
	if ((rv = adiv5_mem_write32(a, DHCSR, DBGKEY | C_DEBUGEN)) != CS_OK) {
		return a_ctx(a, rv, "resuming the core");
	}
	return CS_OK;
}

int
adiv5_cm_halted(adiv5 *a, bool *halted)
{
	uint32_t v;
	int      rv;

	if (a == NULL || halted == NULL) {
		return CS_EINVAL;
	}
	if ((rv = adiv5_mem_read32(a, DHCSR, &v)) != CS_OK) {
		return rv;
	}
	*halted = (v & S_HALT) != 0;
	return CS_OK;
}

int
adiv5_cm_reg_read(adiv5 *a, unsigned reg, uint32_t *val)
{
	int rv;

	if (a == NULL || val == NULL || reg > 0x7Fu) {
		return CS_EINVAL;
	}
	if ((rv = adiv5_mem_write32(a, DCRSR, reg)) != CS_OK ||
	    (rv = a_wait_dhcsr(a, S_REGRDY, false, "reading a core "
	    "register (is the core halted?)")) != CS_OK ||
	    (rv = adiv5_mem_read32(a, DCRDR, val)) != CS_OK) {
		return a_ctx(a, rv, "core register %u", reg);
	}
	return CS_OK;
}

int
adiv5_cm_reg_write(adiv5 *a, unsigned reg, uint32_t val)
{
	int rv;

	if (a == NULL || reg > 0x7Fu) {
		return CS_EINVAL;
	}
	if ((rv = adiv5_mem_write32(a, DCRDR, val)) != CS_OK ||
	    (rv = adiv5_mem_write32(a, DCRSR, reg | DCRSR_WRITE)) != CS_OK ||
	    (rv = a_wait_dhcsr(a, S_REGRDY, false, "writing a core "
	    "register (is the core halted?)")) != CS_OK) {
		return a_ctx(a, rv, "core register %u", reg);
	}
	return CS_OK;
}

int
adiv5_cm_reset_halt(adiv5 *a, bool nreset)
{
	uint32_t demcr = 0, dummy;
	int      rv;

	if (a == NULL) {
		return CS_EINVAL;
	}
	if ((rv = adiv5_mem_write32(a, DHCSR, DBGKEY | C_DEBUGEN | C_HALT)) !=
	        CS_OK ||
	    (rv = adiv5_mem_read32(a, DEMCR, &demcr)) != CS_OK ||
	    (rv = adiv5_mem_write32(a, DEMCR, demcr | VC_CORERESET)) !=
	        CS_OK ||
	    /* Reading DHCSR clears a stale S_RESET_ST. */
	    (rv = adiv5_mem_read32(a, DHCSR, &dummy)) != CS_OK) {
		return a_ctx(a, rv, "preparing the reset");
	}
	if (nreset) {
		if ((rv = a_dap(a, dap_reset_target(a->d))) != CS_OK) {
			return a_ctx(a, rv, "resetting through the probe");
		}
	} else {
		/* The system may reset before the write's check is answered:
		 * only a lost probe counts here; the wait below decides. */
		rv = adiv5_mem_write32(a, AIRCR, AIRCR_SYSRESETREQ);
		if (rv == CS_ECLOSED) {
			return rv;
		}
	}
	if ((rv = a_wait_dhcsr(a, S_HALT, true,
	    "stopping at the reset vector")) != CS_OK) {
		return rv;
	}
	if ((rv = adiv5_mem_write32(a, DEMCR, demcr & ~VC_CORERESET)) !=
	    CS_OK) {
		return a_ctx(a, rv, "restoring DEMCR after the reset");
	}
	return CS_OK;
}
