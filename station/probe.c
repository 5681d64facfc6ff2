/*
 * probe.c - the probe interface: splits the URL, picks the backend by its
 * scheme and forwards each verb through the backend's ops table
 * (probe_impl.h), checking arguments and counting bytes in one place so
 * that the backends (probe_sim.c, probe_gdb.c) only talk to their device.
 */
#include "probe_impl.h"

#include "cs_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROBE_DEFAULT_TIMEOUT_MS 5000u

/* probe_cmsis.c: CMSIS-DAP probes (its header is probe_cmsis.h). */
extern const struct probe_ops probe_cmsis_ops;

static const struct probe_ops *const backends[] = {
	&probe_sim_ops,
	&probe_gdb_ops,
	&probe_gdb_unix_ops,
	&probe_cmsis_ops,
};

int
probe_fail(probe *p, int rv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	return rv;
}

int
probe_query_get(const char *query, const char *key, char *val, size_t len)
{
	size_t      klen = strlen(key);
	const char *s    = query;

	while (s != NULL && *s != '\0') {
		const char *end = strchr(s, '&');
		size_t      n   = end != NULL ? (size_t)(end - s) : strlen(s);

		if (n >= klen && strncmp(s, key, klen) == 0 &&
		    (n == klen || s[klen] == '=')) {
			const char *v  = n == klen ? s + n : s + klen + 1;
			size_t      vn = (size_t)(s + n - v);

			if (vn >= len) {
				return CS_ETOOBIG;
			}
			memcpy(val, v, vn);
			val[vn] = '\0';
			return 1;
		}
		s = end != NULL ? end + 1 : NULL;
	}
	return 0;
}

int
probe_query_check(probe *p, const char *query, const char *const *known)
{
	const char *s = query;

	while (s != NULL && *s != '\0') {
		const char *end = strchr(s, '&');
		size_t      n   = end != NULL ? (size_t)(end - s) : strlen(s);
		size_t      k   = strcspn(s, "=&");
		bool        ok  = false;

		if (k > n) {
			k = n;
		}
		for (size_t i = 0; known[i] != NULL; i++) {
			if (strlen(known[i]) == k &&
			    strncmp(known[i], s, k) == 0) {
				ok = true;
			}
		}
		if (!ok) {
			return probe_fail(p, CS_EADDR,
			    "unknown URL parameter '%.*s'", (int)k, s);
		}
		s = end != NULL ? end + 1 : NULL;
	}
	return CS_OK;
}

int
probe_parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char              *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ') {
		return CS_EINVAL;
	}
	errno = 0;
	v     = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || v > max) {
		return CS_EINVAL;
	}
	*out = (uint32_t)v;
	return CS_OK;
}

/* Split url into u; CS_OK or CS_EADDR with the reason in err. */
static int
split_url(const char *url, struct probe_url *u,
    const struct probe_ops **ops, char *err, size_t errlen)
{
	const char *colon, *rest, *q;
	size_t      n;

	if (strlen(url) >= PROBE_URL_MAX) {
		snprintf(err, errlen, "probe URL longer than %u bytes",
		    PROBE_URL_MAX - 1);
		return CS_EADDR;
	}
	colon = strchr(url, ':');
	if (colon == NULL) {
		snprintf(err, errlen, "probe URL '%s' has no scheme (sim:, "
		    "gdb://, gdb+unix://, cmsis-dap://)", url);
		return CS_EADDR;
	}
	*ops = NULL;
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		const char *s = backends[i]->scheme;

		if (strlen(s) == (size_t)(colon - url) &&
		    strncmp(s, url, (size_t)(colon - url)) == 0) {
			*ops = backends[i];
		}
	}
	if (*ops == NULL) {
		snprintf(err, errlen, "probe URL '%s': unknown scheme '%.*s' "
		    "(sim, gdb, gdb+unix, cmsis-dap)", url, (int)(colon - url),
		    url);
		return CS_EADDR;
	}
	u->scheme = (*ops)->scheme;
	rest      = colon + 1;
	if (*ops != &probe_sim_ops) {
		if (strncmp(rest, "//", 2) != 0) {
			snprintf(err, errlen, "probe URL '%s': expected "
			    "%s://...", url, u->scheme);
			return CS_EADDR;
		}
		rest += 2;
	}
	q = strchr(rest, '?');
	n = q != NULL ? (size_t)(q - rest) : strlen(rest);
	memcpy(u->where, rest, n);
	u->where[n] = '\0';
	snprintf(u->query, sizeof(u->query), "%s", q != NULL ? q + 1 : "");
	return CS_OK;
}

int
probe_open(probe **out, const char *url, unsigned timeout_ms, char *err,
    size_t errlen)
{
	const struct probe_ops *ops = NULL;
	struct probe_url       *u   = NULL;
	probe                  *p   = NULL;
	int                     rv;

	if (out == NULL || url == NULL || (err == NULL && errlen != 0)) {
		return CS_EINVAL;
	}
	*out = NULL;
	if (errlen > 0) {
		err[0] = '\0';
	}
	/* Big enough to keep off small worker stacks. */
	if ((u = calloc(1, sizeof(*u))) == NULL ||
	    (p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		rv = CS_ENOMEM;
		goto out;
	}
	if ((rv = split_url(url, u, &ops, err, errlen)) != CS_OK) {
		goto out;
	}
	p->ops        = ops;
	p->timeout_ms = timeout_ms != 0 ? timeout_ms
	                                : PROBE_DEFAULT_TIMEOUT_MS;
	if ((rv = ops->open(p, u)) != CS_OK) {
		snprintf(err, errlen, "%s", p->err[0] != '\0' ? p->err
		                                                : cs_strerror(rv));
		goto out;
	}
	p->err[0] = '\0';
	*out      = p;
	p         = NULL;
out:
	if (p != NULL) {
		if (p->ops != NULL) {
			p->ops->close(p);
		}
		free(p);
	}
	free(u);
	return rv;
}

void
probe_close(probe *p)
{
	if (p == NULL) {
		return;
	}
	p->ops->close(p);
	free(p);
}

const char *
probe_error(const probe *p)
{
	return p != NULL ? p->err : "no probe";
}

/* The checks every memory verb shares. */
static int
check_range(probe *p, uint32_t addr, const void *buf, size_t len)
{
	if (buf == NULL && len != 0) {
		return probe_fail(p, CS_EINVAL, "no buffer");
	}
	if (len > (size_t)UINT32_MAX + 1u - addr) {
		return probe_fail(p, CS_EINVAL, "range 0x%08x + %zu bytes "
		    "runs past the 32-bit address space", addr, len);
	}
	return CS_OK;
}

int
probe_read(probe *p, uint32_t addr, void *buf, size_t len)
{
	int rv;

	if (p == NULL) {
		return CS_EINVAL;
	}
	if ((rv = check_range(p, addr, buf, len)) != CS_OK) {
		return rv;
	}
	if (len == 0) {
		return CS_OK;
	}
	if ((rv = p->ops->read(p, addr, buf, len)) == CS_OK) {
		p->bytes += len;
	}
	return rv;
}

int
probe_write(probe *p, uint32_t addr, const void *buf, size_t len)
{
	int rv;

	if (p == NULL) {
		return CS_EINVAL;
	}
	if ((rv = check_range(p, addr, buf, len)) != CS_OK) {
		return rv;
	}
	if (len == 0) {
		return CS_OK;
	}
	if ((rv = p->ops->write(p, addr, buf, len)) == CS_OK) {
		p->bytes += len;
	}
	return rv;
}

int
probe_flash_write(probe *p, uint32_t erase_addr, size_t erase_len,
    uint32_t addr, const void *buf, size_t len)
{
	int rv;

	if (p == NULL) {
		return CS_EINVAL;
	}
	if ((rv = check_range(p, addr, buf, len)) != CS_OK ||
	    (rv = check_range(p, erase_addr, p, erase_len)) != CS_OK) {
		return rv;
	}
	if (erase_len != 0 && (addr < erase_addr ||
	    addr - erase_addr > erase_len ||
	    len > erase_len - (addr - erase_addr))) {
		return probe_fail(p, CS_EINVAL, "flash write 0x%08x + %zu "
		    "lies outside the erased range 0x%08x + %zu", addr, len,
		    erase_addr, erase_len);
	}
	if ((rv = p->ops->flash_write(p, erase_addr, erase_len, addr, buf,
	    len)) == CS_OK) {
		p->bytes += len;
	}
	return rv;
}

int
probe_flash_done(probe *p)
{
	if (p == NULL) {
		return CS_EINVAL;
	}
	return p->ops->flash_done(p);
}

int
probe_reset_halt(probe *p)
{
	if (p == NULL) {
		return CS_EINVAL;
	}
	return p->ops->reset_halt(p);
}

int
probe_run(probe *p, unsigned timeout_ms, struct probe_stop *stop)
{
	if (p == NULL || stop == NULL) {
		return CS_EINVAL;
	}
	memset(stop, 0, sizeof(*stop));
	return p->ops->run(p, timeout_ms != 0 ? timeout_ms : p->timeout_ms,
	    stop);
}

int
probe_set_target(probe *p, const struct target *t)
{
	if (p == NULL || t == NULL) {
		return CS_EINVAL;
	}
	return p->ops->set_target != NULL ? p->ops->set_target(p, t) : CS_OK;
}

uint64_t
probe_bytes(const probe *p)
{
	return p != NULL ? p->bytes : 0;
}

static uint32_t
le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

/* "lock sequence step N: " + what + ": " + the backend's error. */
static int
step_fail(probe *p, int rv, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
step_fail(probe *p, int rv, size_t i, const char *fmt, ...)
{
	char    why[PROBE_ERR_MAX], what[PROBE_ERR_MAX];
	va_list ap;

	snprintf(why, sizeof(why), "%s", p->err[0] != '\0' ? p->err
	                                                     : cs_strerror(rv));
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return probe_fail(p, rv, "lock sequence step %zu: %s: %s", i + 1, what,
	    why);
}

int
probe_protect_steps(probe *p, const struct target *t)
{
	const struct target_protect *pr = &t->protect;

	if (pr->n_steps == 0) {
		return probe_fail(p, CS_EUNIMPL, "target %s has no lock steps "
		    "for %s probes (only GDB server commands)", t->name,
		    p->ops->scheme);
	}
	for (size_t i = 0; i < pr->n_steps; i++) {
		const struct target_step *st = &pr->step[i];
		uint8_t                   b[4];
		uint64_t                  deadline;
		uint32_t                  v = 0;
		int                       rv;

		p->err[0] = '\0';
		switch (st->op) {
		case TARGET_STEP_WRITE:
			b[0] = (uint8_t)st->value;
			b[1] = (uint8_t)(st->value >> 8);
			b[2] = (uint8_t)(st->value >> 16);
			b[3] = (uint8_t)(st->value >> 24);
			if ((rv = probe_write(p, st->addr, b, 4)) != CS_OK) {
				return step_fail(p, rv, i, "write 0x%08X to "
				    "0x%08X", st->value, st->addr);
			}
			break;
		case TARGET_STEP_POLL:
			deadline = cs_mono_ms() + st->timeout_ms;
			for (;;) {
				if ((rv = probe_read(p, st->addr, b, 4)) !=
				    CS_OK) {
					return step_fail(p, rv, i, "poll "
					    "0x%08X", st->addr);
				}
				v = le32(b);
				if ((v & st->mask) == st->value) {
					break;
				}
				if (cs_mono_ms() > deadline) {
					return probe_fail(p, CS_ETIMEDOUT,
					    "lock sequence step %zu: poll "
					    "0x%08X timed out after %u ms (it "
					    "reads 0x%08X; want 0x%08X under "
					    "mask 0x%08X)", i + 1, st->addr,
					    st->timeout_ms, v, st->value,
					    st->mask);
				}
				nanosleep(&(struct timespec){.tv_nsec =
				    1000000}, NULL);
			}
			break;
		case TARGET_STEP_RESET:
			if ((rv = probe_reset_halt(p)) != CS_OK) {
				return step_fail(p, rv, i, "reset");
			}
			break;
		}
	}
	p->err[0] = '\0';
	return CS_OK;
}

/* The profile's check, after the lock: the same for every backend. */
static int
protect_check(probe *p, const struct target *t)
{
	const struct target_protect *pr = &t->protect;
	uint8_t                      b[4];
	uint32_t                     v;
	char                         why[PROBE_ERR_MAX];
	bool                         in_flash;
	int                          rv;

	p->err[0] = '\0';
	rv        = probe_read(p, pr->check_addr, b, sizeof(b));
	snprintf(why, sizeof(why), "%s", p->err[0] != '\0' ? p->err
	                                                   : cs_strerror(rv));
	if (pr->check == TARGET_CHECK_READ_FAILS) {
		in_flash = pr->check_addr - t->flash_base < t->flash_size;
		if (rv == CS_OK) {
			return probe_fail(p, CS_EIO, "lock did not take: %s at "
			    "0x%08X is still readable", in_flash ? "flash"
			    : "memory", pr->check_addr);
		}
		/* Only the target refusing the read shows the lock; a lost
		 * or confused probe says nothing about it. */
		if (rv != CS_EIO) {
			return probe_fail(p, rv, "lock check: reading 0x%08X: "
			    "%s", pr->check_addr, why);
		}
		p->err[0] = '\0';
		return CS_OK;
	}
	if (rv != CS_OK) {
		return probe_fail(p, rv, "lock check: cannot read 0x%08X: %s",
		    pr->check_addr, why);
	}
	v = le32(b);
	if ((v & pr->check_mask) != pr->check_value) {
		return probe_fail(p, CS_EIO, "lock did not take: 0x%08X reads "
		    "0x%08X, want 0x%08X under mask 0x%08X", pr->check_addr, v,
		    pr->check_value, pr->check_mask);
	}
	p->err[0] = '\0';
	return CS_OK;
}

int
probe_protect(probe *p, const struct target *t)
{
	int rv;

	if (p == NULL || t == NULL) {
		return CS_EINVAL;
	}
	if (!t->can_lock) {
		if (t->protect.reason[0] != '\0') {
			return probe_fail(p, CS_EUNIMPL, "target %s cannot be "
			    "locked: %s", t->name, t->protect.reason);
		}
		return probe_fail(p, CS_EUNIMPL, "target %s has no [protect] "
		    "section: it cannot be locked", t->name);
	}
	if (p->ops->protect == NULL) {
		return probe_fail(p, CS_EUNIMPL, "%s probes cannot lock a part",
		    p->ops->scheme);
	}
	if ((rv = p->ops->protect(p, t)) != CS_OK) {
		return rv;
	}
	return protect_check(p, t);
}
