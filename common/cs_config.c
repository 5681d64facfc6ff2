/*
 * cs_config.c - the strict INI loader behind every Countersign config file.
 *
 * inih does the lexing; this file does the rest: it counts lines itself
 * (inih's handler gets none) so that every complaint names its line, looks
 * each key up in the program's option table, converts and range-checks
 * values, and refuses anything it does not know, because a typo in a
 * security product's config must not silently fall back to a default.
 */
#include "cs_config.h"
#include "cs_err.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parse {
	const struct cs_conf_opt *opts;
	size_t                    n;
	void                     *cfg;
	const char               *path;
	FILE                     *fp;
	int                       line;  /* line last handed to inih */
	int                      *seen;  /* line each option was set on */
	char                     *err;
	size_t                    errlen;
	bool                      failed;
};

static void
fail(struct parse *p, int line, const char *fmt, ...)
{
	va_list ap;
	int     m;

	if (p->failed) {
		return; /* report the first error only */
	}
	p->failed = true;
	if (line > 0) {
		m = snprintf(p->err, p->errlen, "%s:%d: ", p->path, line);
	} else {
		m = snprintf(p->err, p->errlen, "%s: ", p->path);
	}
	if (m < 0 || (size_t)m >= p->errlen) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(p->err + m, p->errlen - (size_t)m, fmt, ap);
	va_end(ap);
}

static void *
field(const struct parse *p, const struct cs_conf_opt *o)
{
	return (char *)p->cfg + o->offset;
}

/*
 * Store value into o's field; returns NULL or what was wrong (a static
 * string, or msg when the message needs the option's limits).
 */
static const char *
store(struct parse *p, const struct cs_conf_opt *o, const char *value,
    char *msg, size_t msglen)
{
	const char *why;

	switch (o->type) {
	case CS_CONF_STRING: {
		char **dst = field(p, o);
		char  *copy;
		if (value[0] == '\0') {
			return "empty value";
		}
		if (o->check != NULL && (why = o->check(value)) != NULL) {
			return why;
		}
		if ((copy = strdup(value)) == NULL) {
			return "out of memory";
		}
		free(*dst);
		*dst = copy;
		return NULL;
	}
	case CS_CONF_UINT: {
		unsigned     *dst = field(p, o);
		char         *end;
		unsigned long v;
		if (!isdigit((unsigned char)value[0])) {
			return "expected a whole number";
		}
		errno = 0;
		v     = strtoul(value, &end, 10);
		if (errno != 0 || *end != '\0') {
			return "expected a whole number";
		}
		if (v < o->min || v > o->max) {
			snprintf(msg, msglen, "expected a number from %u to %u",
			    o->min, o->max);
			return msg;
		}
		*dst = (unsigned)v;
		return NULL;
	}
	case CS_CONF_ADDR: {
		unsigned     *dst = field(p, o);
		char         *end;
		unsigned long v;
		int           b = 10;
		const char   *digits = value;
		/* isxdigit/isdigit first: strtoul would take a sign or
		 * leading blanks. */
		if (value[0] == '0' && (value[1] == 'x' || value[1] == 'X')) {
			b      = 16;
			digits = value + 2;
		}
		if (b == 16 ? !isxdigit((unsigned char)digits[0])
			    : !isdigit((unsigned char)digits[0])) {
			return "expected a number (decimal or 0x hex)";
		}
		errno = 0;
		v     = strtoul(digits, &end, b);
		if (errno != 0 || *end != '\0' || v > 0xFFFFFFFFul) {
			return "expected a number (decimal or 0x hex) up to "
			       "0xFFFFFFFF";
		}
		if (v < o->min || v > o->max) {
			snprintf(msg, msglen, "expected a number from 0x%X to "
			    "0x%X", o->min, o->max);
			return msg;
		}
		*dst = (unsigned)v;
		return NULL;
	}
	case CS_CONF_BOOL: {
		bool *dst = field(p, o);
		if (!strcmp(value, "true") || !strcmp(value, "yes") ||
		    !strcmp(value, "on") || !strcmp(value, "1")) {
			*dst = true;
		} else if (!strcmp(value, "false") || !strcmp(value, "no") ||
		    !strcmp(value, "off") || !strcmp(value, "0")) {
			*dst = false;
		} else {
			return "expected true or false";
		}
		return NULL;
	}
	}
	return "unsupported option type";
}

static bool
section_known(const struct parse *p, const char *section)
{
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->opts[i].section, section) == 0) {
			return true;
		}
	}
	return false;
}

static int
on_value(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	const char   *why;
	char          msg[96];

	if (p->failed) {
		return 1;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct cs_conf_opt *o = &p->opts[i];
		if (strcmp(o->section, section) != 0 || strcmp(o->key, key)) {
			continue;
		}
		if (p->seen[i] != 0) {
			fail(p, p->line, "'%s' in [%s] is set twice (first on "
			    "line %d)", key, section, p->seen[i]);
			return 1;
		}
		p->seen[i] = p->line;
		if ((why = store(p, o, value, msg, sizeof(msg))) != NULL) {
			fail(p, p->line, "bad value '%s' for '%s' in [%s]: %s",
			    value, key, section, why);
		}
		return 1;
	}
	if (section[0] == '\0') {
		fail(p, p->line, "'%s' is outside any [section]", key);
	} else if (!section_known(p, section)) {
		fail(p, p->line, "unknown section [%s]", section);
	} else {
		fail(p, p->line, "unknown key '%s' in [%s]", key, section);
	}
	return 1;
}

/* inih reader: fgets that counts lines and refuses overlong ones. */
static char *
read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t        len;

	if (p->failed || fgets(str, num, p->fp) == NULL) {
		return NULL;
	}
	p->line++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && !feof(p->fp)) {
		fail(p, p->line, "line too long (at most %d characters)",
		    num - 2);
		return NULL;
	}
	return str;
}

void
cs_conf_free(const struct cs_conf_opt *opts, size_t n, void *cfg)
{
	if (cfg == NULL) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (opts[i].type == CS_CONF_STRING) {
			char **dst = (char **)((char *)cfg + opts[i].offset);
			free(*dst);
			*dst = NULL;
		}
	}
}

/* CS_CONF_ADDR stores up to 0xFFFFFFFF in an unsigned. */
_Static_assert(UINT_MAX >= 0xFFFFFFFFu, "unsigned must hold 32 bits");

int
cs_conf_load(const char *path, const struct cs_conf_opt *opts, size_t n,
    void *cfg, char *err, size_t errlen)
{
	return cs_conf_load_lines(path, opts, n, cfg, NULL, err, errlen);
}

int
cs_conf_load_lines(const char *path, const struct cs_conf_opt *opts,
    size_t n, void *cfg, int *lines, char *err, size_t errlen)
{
	struct parse p = {.opts = opts, .n = n, .cfg = cfg, .path = path,
	    .err = err, .errlen = errlen};
	int          rv = CS_ECONFIG;
	int          ini_rv;

	if (errlen > 0) {
		err[0] = '\0';
	}
	for (size_t i = 0; i < n; i++) {
		const char *why;
		char        msg[96];
		if (opts[i].def != NULL &&
		    (why = store(&p, &opts[i], opts[i].def, msg,
			 sizeof(msg))) != NULL) {
			fail(&p, 0, "built-in default of [%s] %s: %s",
			    opts[i].section, opts[i].key, why);
			goto out;
		}
	}
	if ((p.fp = fopen(path, "r")) == NULL) {
		fail(&p, 0, "cannot open: %s", strerror(errno));
		rv = CS_ENOENT;
		goto out;
	}
	if ((p.seen = calloc(n ? n : 1, sizeof(*p.seen))) == NULL) {
		fail(&p, 0, "out of memory");
		rv = CS_ENOMEM;
		goto out;
	}
	ini_rv = ini_parse_stream(read_line, &p, on_value, &p);
	if (p.failed) {
		goto out;
	}
	if (ferror(p.fp)) {
		fail(&p, 0, "read error");
		goto out;
	}
	if (ini_rv > 0) {
		fail(&p, ini_rv, "syntax error: expected [section] or "
		    "key = value");
		goto out;
	}
	if (ini_rv < 0) {
		fail(&p, 0, "cannot parse (out of memory)");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct cs_conf_opt *o = &opts[i];
		bool section_present = false;
		if (p.seen[i] != 0) {
			continue;
		}
		if (o->flags & CS_CONF_IF_SECTION) {
			for (size_t j = 0; j < n; j++) {
				if (p.seen[j] &&
				    !strcmp(opts[j].section, o->section)) {
					section_present = true;
				}
			}
		}
		if ((o->flags & CS_CONF_REQUIRED) || section_present) {
			fail(&p, 0, "missing required key '%s' in [%s] (%s)",
			    o->key, o->section, o->help);
			goto out;
		}
	}
	if (lines != NULL) {
		memcpy(lines, p.seen, n * sizeof(*lines));
	}
	rv = CS_OK;
out:
	if (p.fp != NULL) {
		fclose(p.fp);
	}
	free(p.seen);
	if (rv != CS_OK) {
		cs_conf_free(opts, n, cfg);
	}
	return rv;
}

static const char *
check_hostport(const char *hp)
{
	const char   *colon = strrchr(hp, ':');
	char         *end;
	unsigned long port;

	if (colon == NULL || colon == hp) {
		return "expected host:port after the scheme";
	}
	errno = 0;
	port  = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535) {
		return "expected a port number from 0 to 65535";
	}
	return NULL;
}

const char *
cs_conf_check_tls_url(const char *v)
{
	if (strncmp(v, "tls+tcp://", 10) == 0) {
		return check_hostport(v + 10);
	}
	if (strncmp(v, "tcp://", 6) == 0) {
		return "plain tcp:// is refused: use tls+tcp://host:port";
	}
	return "expected tls+tcp://host:port";
}

const char *
cs_conf_check_ipc_url(const char *v)
{
	if (strncmp(v, "ipc:///", 7) != 0 || v[7] == '\0') {
		return "expected ipc:///absolute/path";
	}
	return NULL;
}

const char *
cs_conf_check_name(const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || len > 64) {
		return "expected 1 to 64 characters";
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
			return "expected only letters, digits, '.', '_' and '-'";
		}
	}
	return NULL;
}

const char *
cs_conf_check_log_level(const char *v)
{
	if (strcmp(v, "error") && strcmp(v, "warn") && strcmp(v, "info") &&
	    strcmp(v, "debug")) {
		return "expected error, warn, info or debug";
	}
	return NULL;
}
