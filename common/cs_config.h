/*
 * cs_config.h - table-driven INI configuration on inih.
 *
 * A program describes its configuration once: a struct with one field per
 * option and a table of cs_conf_opt rows (section, key, type, where the
 * field is, default, limits, help).  That table is the single place for
 * defaults and the source of the documented example configs.  Loading is
 * strict: an unknown section or key, a repeated key, a value of the wrong
 * type or out of range, or a missing required key is an error reported as
 * `file:line: message` (or `file: message` where no line applies), in the
 * way LMDB and Unbound report theirs.
 */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum cs_conf_type {
	CS_CONF_STRING, /* char * field, heap copy; NULL when unset */
	CS_CONF_UINT,   /* unsigned field, decimal, within [min, max] */
	CS_CONF_BOOL,   /* bool field: true/false, yes/no, on/off, 1/0 */
	CS_CONF_ADDR,   /* unsigned field, decimal or 0x hex (addresses and
	                 * sizes), within [min, max]; at most 0xFFFFFFFF */
};

enum cs_conf_flags {
	CS_CONF_OPTIONAL  = 0,
	CS_CONF_REQUIRED  = 1 << 0, /* must be present */
	CS_CONF_IF_SECTION = 1 << 1, /* must be present if its section is */
};

/*
 * Validator for a value (after type conversion for strings).  Returns NULL
 * when the value is acceptable, otherwise a static message saying what is
 * expected ("expected tls+tcp://host:port").
 */
typedef const char *(*cs_conf_check_fn)(const char *value);

struct cs_conf_opt {
	const char      *section;
	const char      *key;
	enum cs_conf_type type;
	size_t           offset; /* offsetof(struct ..., field) */
	int              flags;  /* enum cs_conf_flags */
	const char      *def;    /* default as it would be written, or NULL */
	unsigned         min, max;
	cs_conf_check_fn check;  /* optional */
	const char      *help;   /* one line: what the option does */
};

/*
 * One row of an option table of struct type: field is the member that
 * holds the option, the other arguments are the cs_conf_opt fields in
 * their order.  A program usually wraps it as
 * #define OPT(...) CS_CONF_OPT(struct my_config, __VA_ARGS__).
 */
#define CS_CONF_OPT(type, sec, key, t, field, flags, def, lo, hi, chk,      \
    help)                                                                   \
	{sec, key, t, offsetof(type, field), flags, def, lo, hi, chk, help}

/* The number of rows of an option table (an array, not a pointer). */
#define CS_CONF_NOPTS(opts) (sizeof(opts) / sizeof((opts)[0]))

/*
 * Load path into cfg (which the caller zeroed) following opts[0..n).
 * Defaults are applied first.  Returns CS_OK, CS_ENOENT (file cannot be
 * opened), or CS_ECONFIG; on error err holds the `file:line: message` text.
 * On error the strings already stored are freed again (cs_conf_free).
 */
int cs_conf_load(const char *path, const struct cs_conf_opt *opts, size_t n,
    void *cfg, char *err, size_t errlen);

/* Free the strings cs_conf_load stored in cfg; NULL-safe, idempotent. */
void cs_conf_free(const struct cs_conf_opt *opts, size_t n, void *cfg);

/*
 * cs_conf_load, and also report where each option was set: lines[i] (n
 * entries) is the line opts[i] was set on, 0 when it was not (a default).
 * For checks across options, which the caller then reports as
 * `file:line: message` itself.  lines may be NULL.
 */
int cs_conf_load_lines(const char *path, const struct cs_conf_opt *opts,
    size_t n, void *cfg, int *lines, char *err, size_t errlen);

/* Common validators. */
const char *cs_conf_check_tls_url(const char *v);  /* tls+tcp://host:port */
const char *cs_conf_check_ipc_url(const char *v);  /* ipc:///path */
const char *cs_conf_check_name(const char *v);     /* [A-Za-z0-9._-]{1,64} */
const char *cs_conf_check_log_level(const char *v); /* error..debug */

#endif /* CS_CONFIG_H */
