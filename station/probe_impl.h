/*
 * probe_impl.h - private to the probe module: the ops table a backend
 * fills, the shared struct probe, and the helpers probe.c offers the
 * backends (error text, URL query parameters).  Not for the job runner:
 * it uses probe.h only.
 */
#ifndef PROBE_IMPL_H
#define PROBE_IMPL_H

#include "probe.h"
#include "cs_target.h"

#include <stdarg.h>

#define PROBE_ERR_MAX 256u
#define PROBE_URL_MAX 1024u /* longest URL accepted */

/* A URL split by probe.c: "scheme:where?query". */
struct probe_url {
	const char *scheme; /* "sim", "gdb", "gdb+unix" */
	char where[PROBE_URL_MAX];  /* sim: name; gdb: host:port; unix: path */
	char query[PROBE_URL_MAX];  /* after '?' ("" if none) */
};

/*
 * One backend.  Every function gets a probe whose ops and timeout_ms are
 * set; the backend keeps its state in p->impl and reports failures with
 * probe_fail().  probe.c has already checked the arguments (non-NULL
 * buffers, addr + len within 32 bits) and counts bytes on success.
 */
struct probe_ops {
	const char *scheme;
	int  (*open)(probe *p, const struct probe_url *u);
	void (*close)(probe *p); /* frees p->impl; p->impl may be NULL */
	int  (*read)(probe *p, uint32_t addr, void *buf, size_t len);
	int  (*write)(probe *p, uint32_t addr, const void *buf, size_t len);
	int  (*flash_write)(probe *p, uint32_t erase_addr, size_t erase_len,
	    uint32_t addr, const void *buf, size_t len);
	int  (*flash_done)(probe *p);
	int  (*reset_halt)(probe *p);
	int  (*run)(probe *p, unsigned timeout_ms, struct probe_stop *stop);
	/* Optional: backends that need the target profile (cmsis-dap). */
	int  (*set_target)(probe *p, const struct target *t);
	/* Optional: lock the part per t's [protect] (probe_protect). */
	int  (*protect)(probe *p, const struct target *t);
};

struct probe {
	const struct probe_ops *ops;
	void                   *impl;
	char                    err[PROBE_ERR_MAX];
	uint64_t                bytes;
	unsigned                timeout_ms;
};

extern const struct probe_ops probe_sim_ops;
extern const struct probe_ops probe_gdb_ops;
extern const struct probe_ops probe_gdb_unix_ops;

/* Set p's error text (printf style) and return rv, so that backends can
 * write "return probe_fail(p, CS_EIO, ...)". */
int probe_fail(probe *p, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The value of key in a query "a=1&b=2" into val (NUL-terminated).
 * Returns 1 when found, 0 when absent, CS_ETOOBIG when it does not fit.
 * A key without '=' has the value "".
 */
int probe_query_get(const char *query, const char *key, char *val,
    size_t len);

/* Check that every key of query is one of the NULL-terminated known list;
 * CS_OK, or CS_EADDR with p's error naming the stranger. */
int probe_query_check(probe *p, const char *query,
    const char *const *known);

/*
 * The [protect] steps of t (write, poll, reset) through p's own write,
 * read and reset_halt: the protect op of backends that drive the part's
 * registers themselves (sim:, cmsis-dap://).  probe_protect then runs
 * the profile's check.  CS_EUNIMPL when t has no steps; otherwise the
 * first failing step's error, its text naming the step ("lock sequence
 * step 3: poll 0x400FD008 timed out after 500 ms ...").
 */
int probe_protect_steps(probe *p, const struct target *t);

/* Parse an unsigned number (decimal or 0x hex) up to max; CS_OK or
 * CS_EINVAL. */
int probe_parse_u32(const char *s, uint32_t max, uint32_t *out);

#endif /* PROBE_IMPL_H */
