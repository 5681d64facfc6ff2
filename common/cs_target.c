/*
 * cs_target.c - target profiles: load station/targets/NAME.ini through the
 * strict INI loader (cs_config), then check what one key cannot say on its
 * own: alignment to the page size, the record area inside flash, the UID
 * outside it, no address arithmetic that wraps at 4 GiB.  Every complaint
 * is `file:line: message` on the line of the key it is about, because a
 * wrong profile programs the wrong bytes into real parts.
 *
 * [protect] has numbered keys (step1.., monitor1.., expect1..) because the
 * loader refuses a key set twice: the option table is the fixed rows
 * below plus one generated row per numbered key, so that an unknown
 * number (step65) is an unknown key like any other.
 */
#include "cs_target.h"
#include "countersign/record.h"
#include "cs_config.h"
#include "cs_err.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The profile as the INI loader fills it; copied into struct target. */
struct profile {
	char    *name;
	char    *description;
	unsigned uid_addr;
	unsigned uid_len;
	unsigned flash_base;
	unsigned flash_size;
	unsigned page_size;
	unsigned record_addr;
	unsigned record_size;
	char    *program;
	char    *reset;
	char    *boot_check;
	unsigned boot_timeout_ms;
	char    *flash_ctl;
	unsigned flash_ctl_base;
	char    *pr_method;
	char    *pr_reason;
	unsigned pr_timeout_ms;
	char    *pr_check;
	char    *step[TARGET_PROTECT_STEPS_MAX];
	char    *monitor[TARGET_PROTECT_MONITORS_MAX];
	char    *expect[TARGET_PROTECT_MONITORS_MAX];
};

static const char *
check_target_name(const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || len > TARGET_NAME_MAX) {
		return "expected 1 to 64 characters";
	}
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
		    c != '.' && c != '_' && c != '-') {
			return "expected only a-z, 0-9, '.', '_' and '-'";
		}
	}
	return NULL;
}

static const char *
check_description(const char *v)
{
	if (strlen(v) >= sizeof(((struct target *)0)->description)) {
		return "expected at most 127 characters";
	}
	return NULL;
}

static const char *
check_program(const char *v)
{
	if (strcmp(v, "memory") && strcmp(v, "vflash")) {
		return "expected memory or vflash";
	}
	return NULL;
}

static const char *
check_reset(const char *v)
{
	if (strcmp(v, "monitor")) {
		return "expected monitor";
	}
	return NULL;
}

static const char *
check_boot_check(const char *v)
{
	if (strcmp(v, "semihosting") && strcmp(v, "none")) {
		return "expected semihosting or none";
	}
	return NULL;
}

static const char *
check_flash_ctl(const char *v)
{
	if (strcmp(v, "lm3s")) {
		return "expected lm3s";
	}
	return NULL;
}

static const char *
check_pr_method(const char *v)
{
	if (strcmp(v, "none") && strcmp(v, "lock")) {
		return "expected none or lock";
	}
	return NULL;
}

static const char *
check_reason(const char *v)
{
	if (strlen(v) > TARGET_PROTECT_REASON_MAX) {
		return "expected at most 127 characters";
	}
	return NULL;
}

/* One number of a step or check: decimal or 0x hex, up to 0xFFFFFFFF,
 * ending at a blank or the end; *s moves past it and its blanks. */
static bool
next_u32(const char **s, uint32_t *out)
{
	const char        *p = *s;
	unsigned long long v = 0;
	unsigned           base = 10, d, n = 0;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (; *p != '\0' && *p != ' ' && *p != '\t'; p++, n++) {
		if (*p >= '0' && *p <= '9') {
			d = (unsigned)(*p - '0');
		} else if (base == 16 && *p >= 'a' && *p <= 'f') {
			d = (unsigned)(*p - 'a' + 10);
		} else if (base == 16 && *p >= 'A' && *p <= 'F') {
			d = (unsigned)(*p - 'A' + 10);
		} else {
			return false;
		}
		if (d >= base || (v = v * base + d) > 0xFFFFFFFFull) {
			return false;
		}
	}
	if (n == 0) {
		return false;
	}
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	*s   = p;
	*out = (uint32_t)v;
	return true;
}

/* The word after "op " in v, or NULL when v does not start with op. */
static const char *
after_op(const char *v, const char *op)
{
	size_t n = strlen(op);

	if (strncmp(v, op, n) != 0 || (v[n] != '\0' && v[n] != ' ' &&
	    v[n] != '\t')) {
		return NULL;
	}
	v += n;
	while (*v == ' ' || *v == '\t') {
		v++;
	}
	return v;
}

static const char *
parse_step(const char *v, struct target_step *st)
{
	const char *a;

	memset(st, 0, sizeof(*st));
	if ((a = after_op(v, "reset")) != NULL) {
		st->op = TARGET_STEP_RESET;
		return *a == '\0' ? NULL : "expected nothing after reset";
	}
	if ((a = after_op(v, "write")) != NULL) {
		st->op = TARGET_STEP_WRITE;
		if (!next_u32(&a, &st->addr) || !next_u32(&a, &st->value) ||
		    *a != '\0') {
			return "expected write ADDR VALUE (numbers up to "
			       "0xFFFFFFFF)";
		}
	} else if ((a = after_op(v, "poll")) != NULL) {
		st->op = TARGET_STEP_POLL;
		if (!next_u32(&a, &st->addr) || !next_u32(&a, &st->mask) ||
		    !next_u32(&a, &st->value) ||
		    !next_u32(&a, &st->timeout_ms) || *a != '\0') {
			return "expected poll ADDR MASK VALUE TIMEOUT_MS";
		}
		if (st->timeout_ms < 1 ||
		    st->timeout_ms > TARGET_PROTECT_POLL_MAX_MS) {
			return "poll timeout must be 1 to 600000 ms";
		}
		if ((st->value & ~st->mask) != 0) {
			return "poll VALUE has bits outside MASK: it can never "
			       "match";
		}
	} else {
		return "expected write ADDR VALUE, poll ADDR MASK VALUE "
		       "TIMEOUT_MS or reset";
	}
	if (st->addr % 4 != 0) {
		return "the address must be word aligned (registers are "
		       "written and read as 32-bit words)";
	}
	return NULL;
}

static const char *
check_step(const char *v)
{
	struct target_step st;

	return parse_step(v, &st);
}

static const char *
parse_check(const char *v, struct target_protect *pr)
{
	const char *a;

	if ((a = after_op(v, "read-fails")) != NULL) {
		pr->check      = TARGET_CHECK_READ_FAILS;
		pr->check_mask = pr->check_value = 0;
		if (!next_u32(&a, &pr->check_addr) || *a != '\0') {
			return "expected read-fails ADDR";
		}
	} else if ((a = after_op(v, "reg")) != NULL) {
		pr->check = TARGET_CHECK_REG;
		if (!next_u32(&a, &pr->check_addr) ||
		    !next_u32(&a, &pr->check_mask) ||
		    !next_u32(&a, &pr->check_value) || *a != '\0') {
			return "expected reg ADDR MASK VALUE";
		}
		if (pr->check_mask == 0) {
			return "a MASK of 0 checks nothing";
		}
		if ((pr->check_value & ~pr->check_mask) != 0) {
			return "VALUE has bits outside MASK: it can never match";
		}
	} else {
		return "expected read-fails ADDR or reg ADDR MASK VALUE";
	}
	if (pr->check_addr % 4 != 0) {
		return "the address must be word aligned";
	}
	return NULL;
}

static const char *
check_check(const char *v)
{
	struct target_protect pr;

	return parse_check(v, &pr);
}

/* Printable ASCII, 1..TARGET_PROTECT_CMD_MAX: it goes to a GDB server. */
static const char *
check_text(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > TARGET_PROTECT_CMD_MAX) {
		return "expected 1 to 127 characters";
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i] < 0x20 || v[i] > 0x7E) {
			return "expected printable ASCII only";
		}
	}
	return NULL;
}

static const char *const monitor_servers[] = {"openocd", "jlink", "pyocd",
    "bmp", NULL};

static const char *
parse_monitor(const char *v, struct target_monitor *m)
{
	const char *colon = strchr(v, ':');
	const char *cmd;
	const char *why;
	size_t      n;
	bool        known = false;

	memset(m, 0, sizeof(*m));
	if (colon == NULL) {
		return "expected SERVER: COMMAND (SERVER openocd, jlink, "
		       "pyocd or bmp)";
	}
	n = (size_t)(colon - v);
	for (size_t i = 0; monitor_servers[i] != NULL; i++) {
		if (strlen(monitor_servers[i]) == n &&
		    strncmp(monitor_servers[i], v, n) == 0) {
			known = true;
		}
	}
	if (!known) {
		return "expected SERVER: COMMAND with SERVER openocd, jlink, "
		       "pyocd or bmp";
	}
	memcpy(m->server, v, n);
	for (cmd = colon + 1; *cmd == ' ' || *cmd == '\t'; cmd++) {
	}
	if ((why = check_text(cmd)) != NULL) {
		return *cmd == '\0' ? "no command after SERVER:" : why;
	}
	snprintf(m->cmd, sizeof(m->cmd), "%s", cmd);
	return NULL;
}

static const char *
check_monitor(const char *v)
{
	struct target_monitor m;

	return parse_monitor(v, &m);
}

#define OPT(sec, k, t, fld, fl, def, lo, hi, chk, help)                       \
	{sec, k, t, offsetof(struct profile, fld), fl, def, lo, hi, chk, help}
#define REQ CS_CONF_REQUIRED

/* Indices into opts, for the line of a key in cross-key checks. */
enum {
	O_NAME, O_DESC, O_UID_ADDR, O_UID_LEN, O_FLASH_BASE, O_FLASH_SIZE,
	O_PAGE, O_REC_ADDR, O_REC_SIZE, O_PROGRAM, O_RESET, O_BOOT_CHECK,
	O_BOOT_TIMEOUT, O_FC_TYPE, O_FC_BASE, O_PR_METHOD, O_PR_REASON,
	O_PR_TIMEOUT, O_PR_CHECK, O_COUNT,
	/* The generated rows follow: step1.., monitor1.., expect1.. */
	O_STEP    = O_COUNT,
	O_MONITOR = O_STEP + TARGET_PROTECT_STEPS_MAX,
	O_EXPECT  = O_MONITOR + TARGET_PROTECT_MONITORS_MAX,
	O_ALL     = O_EXPECT + TARGET_PROTECT_MONITORS_MAX
};

static const struct cs_conf_opt opts[O_COUNT] = {
	[O_NAME] = OPT("target", "name", CS_CONF_STRING, name, REQ, NULL, 0,
	    0, check_target_name, "the profile's name, as in NAME.ini"),
	[O_DESC] = OPT("target", "description", CS_CONF_STRING, description,
	    CS_CONF_OPTIONAL, NULL, 0, 0, check_description,
	    "one line for operators"),
	[O_UID_ADDR] = OPT("uid", "address", CS_CONF_ADDR, uid_addr, REQ,
	    NULL, 0, 0xFFFFFFFFu, NULL, "where the device's UID is read"),
	[O_UID_LEN] = OPT("uid", "length", CS_CONF_UINT, uid_len, REQ, NULL,
	    1, 32, NULL, "UID length in bytes"),
	[O_FLASH_BASE] = OPT("flash", "base", CS_CONF_ADDR, flash_base, REQ,
	    NULL, 0, 0xFFFFFFFFu, NULL, "first address of flash"),
	[O_FLASH_SIZE] = OPT("flash", "size", CS_CONF_ADDR, flash_size, REQ,
	    NULL, 1, 0xFFFFFFFFu, NULL, "flash size in bytes"),
	[O_PAGE] = OPT("flash", "page_size", CS_CONF_ADDR, page_size, REQ,
	    NULL, 4, 0x80000000u, NULL,
	    "erase unit in bytes, a power of two"),
	[O_REC_ADDR] = OPT("record", "address", CS_CONF_ADDR, record_addr,
	    REQ, NULL, 0, 0xFFFFFFFFu, NULL,
	    "where the device record is written (page aligned)"),
	[O_REC_SIZE] = OPT("record", "size", CS_CONF_ADDR, record_size, REQ,
	    NULL, CS_RECORD_MAX_LEN, 0xFFFFFFFFu, NULL,
	    "bytes reserved for the record (whole pages)"),
	[O_PROGRAM] = OPT("program", "method", CS_CONF_STRING, program, REQ,
	    NULL, 0, 0, check_program, "memory or vflash"),
	[O_RESET] = OPT("reset", "method", CS_CONF_STRING, reset, REQ, NULL, 0,
	    0, check_reset, "monitor"),
	[O_BOOT_CHECK] = OPT("reset", "boot_check", CS_CONF_STRING,
	    boot_check, REQ, NULL, 0, 0, check_boot_check,
	    "semihosting or none"),
	[O_BOOT_TIMEOUT] = OPT("reset", "boot_timeout_ms", CS_CONF_UINT,
	    boot_timeout_ms, CS_CONF_OPTIONAL, "10000", 100, 600000, NULL,
	    "how long the boot check may take"),
	[O_FC_TYPE] = OPT("flash_controller", "type", CS_CONF_STRING, flash_ctl,
	    CS_CONF_IF_SECTION, NULL, 0, 0, check_flash_ctl,
	    "the part's flash controller, for probes that drive it: lm3s"),
	[O_FC_BASE] = OPT("flash_controller", "base", CS_CONF_ADDR,
	    flash_ctl_base, CS_CONF_IF_SECTION, NULL, 0, 0xFFFFFFFCu, NULL,
	    "address of the flash controller's registers"),
	[O_PR_METHOD] = OPT("protect", "method", CS_CONF_STRING, pr_method,
	    CS_CONF_IF_SECTION, NULL, 0, 0, check_pr_method,
	    "none (the part cannot be locked) or lock"),
	[O_PR_REASON] = OPT("protect", "reason", CS_CONF_STRING, pr_reason,
	    CS_CONF_OPTIONAL, NULL, 0, 0, check_reason,
	    "method = none: why the part cannot be locked"),
	[O_PR_TIMEOUT] = OPT("protect", "timeout_ms", CS_CONF_UINT,
	    pr_timeout_ms, CS_CONF_OPTIONAL, "10000", 100, 600000, NULL,
	    "how long each monitor command may take"),
	[O_PR_CHECK] = OPT("protect", "check", CS_CONF_STRING, pr_check,
	    CS_CONF_OPTIONAL, NULL, 0, 0, check_check,
	    "read-fails ADDR or reg ADDR MASK VALUE"),
};

/* The whole option table: the rows above and the numbered ones. */
struct table {
	struct cs_conf_opt o[O_ALL];
	char               key[O_ALL - O_COUNT][16];
	struct target_protect pr; /* [protect], before it goes into t */
};

static void
table_init(struct table *tb)
{
	memcpy(tb->o, opts, sizeof(opts));
	for (size_t i = 0; i < O_ALL - O_COUNT; i++) {
		struct cs_conf_opt *o = &tb->o[O_COUNT + i];
		size_t              k = O_COUNT + i;

		memset(o, 0, sizeof(*o));
		o->section = "protect";
		o->type    = CS_CONF_STRING;
		o->flags   = CS_CONF_OPTIONAL;
		o->key     = tb->key[i];
		if (k < O_MONITOR) {
			snprintf(tb->key[i], sizeof(tb->key[i]), "step%zu",
			    k - O_STEP + 1);
			o->offset = offsetof(struct profile, step) +
			            (k - O_STEP) * sizeof(char *);
			o->check  = check_step;
			o->help   = "a lock step: write, poll or reset";
		} else if (k < O_EXPECT) {
			snprintf(tb->key[i], sizeof(tb->key[i]), "monitor%zu",
			    k - O_MONITOR + 1);
			o->offset = offsetof(struct profile, monitor) +
			            (k - O_MONITOR) * sizeof(char *);
			o->check  = check_monitor;
			o->help   = "a GDB server's lock command";
		} else {
			snprintf(tb->key[i], sizeof(tb->key[i]), "expect%zu",
			    k - O_EXPECT + 1);
			o->offset = offsetof(struct profile, expect) +
			            (k - O_EXPECT) * sizeof(char *);
			o->check  = check_text;
			o->help   = "text the monitor command's output must hold";
		}
	}
}

static int
fail_at(char *err, size_t errlen, const char *path, int line,
    const char *fmt, ...)
{
	va_list ap;
	int     m;

	m = snprintf(err, errlen, "%s:%d: ", path, line);
	if (m >= 0 && (size_t)m < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + m, errlen - (size_t)m, fmt, ap);
		va_end(ap);
	}
	return CS_ECONFIG;
}

/* The profile's file name without directory and ".ini". */
static void
file_stem(const char *path, char *buf, size_t len)
{
	const char *base = strrchr(path, '/');
	size_t      n;

	base = base != NULL ? base + 1 : path;
	n    = strlen(base);
	if (n >= 4 && strcmp(base + n - 4, ".ini") == 0) {
		n -= 4;
	}
	snprintf(buf, len, "%.*s", (int)n, base);
}

/* Cross-key checks; returns CS_OK or CS_ECONFIG with err set. */
static int
validate(const struct profile *p, const int *line, const char *path,
    char *err, size_t errlen)
{
	const uint64_t flash_end = (uint64_t)p->flash_base + p->flash_size;
	const uint64_t rec_end   = (uint64_t)p->record_addr + p->record_size;
	const uint64_t uid_end   = (uint64_t)p->uid_addr + p->uid_len;
	const unsigned page      = p->page_size;
	char           stem[256];

	file_stem(path, stem, sizeof(stem));
	if (strcmp(stem, p->name) != 0) {
		return fail_at(err, errlen, path, line[O_NAME],
		    "name '%s' does not match the file name '%s.ini'",
		    p->name, stem);
	}
	if ((page & (page - 1)) != 0) {
		return fail_at(err, errlen, path, line[O_PAGE],
		    "page_size 0x%X is not a power of two", page);
	}
	if (p->flash_base % page != 0) {
		return fail_at(err, errlen, path, line[O_FLASH_BASE],
		    "flash base 0x%08X is not aligned to the page size 0x%X",
		    p->flash_base, page);
	}
	if (p->flash_size % page != 0) {
		return fail_at(err, errlen, path, line[O_FLASH_SIZE],
		    "flash size 0x%X is not a whole number of pages (0x%X)",
		    p->flash_size, page);
	}
	/* The end must itself be an address, so that code computing
	 * base + size in 32 bits never wraps to 0. */
	if (flash_end > 0xFFFFFFFFu) {
		return fail_at(err, errlen, path, line[O_FLASH_SIZE],
		    "flash 0x%08X + 0x%X runs past the 32-bit address space",
		    p->flash_base, p->flash_size);
	}
	if (p->record_addr % page != 0) {
		return fail_at(err, errlen, path, line[O_REC_ADDR],
		    "record address 0x%08X is not aligned to the page size "
		    "0x%X", p->record_addr, page);
	}
	if (p->record_size % page != 0) {
		return fail_at(err, errlen, path, line[O_REC_SIZE],
		    "record size 0x%X is not a whole number of pages (0x%X)",
		    p->record_size, page);
	}
	if (p->record_addr < p->flash_base || rec_end > flash_end) {
		return fail_at(err, errlen, path, line[O_REC_ADDR],
		    "record area 0x%08X-0x%08llX is not inside flash "
		    "0x%08X-0x%08llX", p->record_addr,
		    (unsigned long long)(rec_end - 1), p->flash_base,
		    (unsigned long long)(flash_end - 1));
	}
	if (p->flash_ctl != NULL && p->flash_ctl_base % 4 != 0) {
		return fail_at(err, errlen, path, line[O_FC_BASE],
		    "flash controller base 0x%08X is not word aligned",
		    p->flash_ctl_base);
	}
	if (uid_end > 0x100000000ull) {
		return fail_at(err, errlen, path, line[O_UID_ADDR],
		    "UID 0x%08X + %u runs past the 32-bit address space",
		    p->uid_addr, p->uid_len);
	}
	if (p->uid_addr < flash_end && uid_end > p->flash_base) {
		return fail_at(err, errlen, path, line[O_UID_ADDR],
		    "UID 0x%08X-0x%08llX overlaps flash 0x%08X-0x%08llX",
		    p->uid_addr, (unsigned long long)(uid_end - 1),
		    p->flash_base, (unsigned long long)(flash_end - 1));
	}
	return CS_OK;
}

/* The numbered keys [first, first + n) must run from 1 without gaps:
 * returns the count, or -1 with err set. */
static int
numbered(char *const *v, const int *line, size_t n, const char *what,
    const char *path, char *err, size_t errlen)
{
	size_t count = 0;

	while (count < n && v[count] != NULL) {
		count++;
	}
	for (size_t i = count; i < n; i++) {
		if (v[i] != NULL) {
			fail_at(err, errlen, path, line[i], "%s%zu is set but "
			    "%s%zu is missing (they are numbered from 1 without "
			    "gaps)", what, i + 1, what, count + 1);
			return -1;
		}
	}
	return (int)count;
}

/* [protect]: what the keys say together, into pr; sets *can_lock. */
static int
validate_protect(const struct profile *p, const int *line, const char *path,
    struct target_protect *pr, bool *can_lock, char *err, size_t errlen)
{
	int n_steps, n_mon;

	memset(pr, 0, sizeof(*pr));
	*can_lock              = false;
	pr->monitor_timeout_ms = p->pr_timeout_ms;
	if (p->pr_method == NULL) {
		return CS_OK; /* no section: the part cannot be locked */
	}
	n_steps = numbered(p->step, line + O_STEP, TARGET_PROTECT_STEPS_MAX,
	    "step", path, err, errlen);
	if (n_steps < 0) {
		return CS_ECONFIG;
	}
	n_mon = numbered(p->monitor, line + O_MONITOR,
	    TARGET_PROTECT_MONITORS_MAX, "monitor", path, err, errlen);
	if (n_mon < 0) {
		return CS_ECONFIG;
	}
	if (strcmp(p->pr_method, "none") == 0) {
		int other = n_steps > 0 ? line[O_STEP] :
		            n_mon > 0   ? line[O_MONITOR] :
		            p->pr_check != NULL ? line[O_PR_CHECK] :
		            line[O_PR_TIMEOUT] != 0 ? line[O_PR_TIMEOUT] : 0;
		for (size_t i = 0; other == 0 &&
		     i < TARGET_PROTECT_MONITORS_MAX; i++) {
			other = line[O_EXPECT + i];
		}
		if (other != 0) {
			return fail_at(err, errlen, path, other, "[protect] "
			    "method = none (line %d) takes no steps, monitor "
			    "commands or check", line[O_PR_METHOD]);
		}
		if (p->pr_reason == NULL) {
			return fail_at(err, errlen, path, line[O_PR_METHOD],
			    "method = none needs a reason: why this part "
			    "cannot be locked");
		}
		snprintf(pr->reason, sizeof(pr->reason), "%s", p->pr_reason);
		return CS_OK;
	}
	if (p->pr_reason != NULL) {
		return fail_at(err, errlen, path, line[O_PR_REASON], "reason "
		    "is only for method = none");
	}
	if (n_steps == 0 && n_mon == 0) {
		return fail_at(err, errlen, path, line[O_PR_METHOD], "method "
		    "= lock needs lock steps (step1 = ...) or GDB server "
		    "commands (monitor1 = ...)");
	}
	if (p->pr_check == NULL) {
		return fail_at(err, errlen, path, line[O_PR_METHOD], "method "
		    "= lock needs a check that the lock took: check = "
		    "read-fails ADDR or check = reg ADDR MASK VALUE");
	}
	for (size_t i = 0; i < TARGET_PROTECT_MONITORS_MAX; i++) {
		if (p->expect[i] != NULL && p->monitor[i] == NULL) {
			return fail_at(err, errlen, path, line[O_EXPECT + i],
			    "expect%zu without monitor%zu", i + 1, i + 1);
		}
	}
	/* The values were checked as they were read: these succeed. */
	for (int i = 0; i < n_steps; i++) {
		(void)parse_step(p->step[i], &pr->step[i]);
	}
	for (int i = 0; i < n_mon; i++) {
		(void)parse_monitor(p->monitor[i], &pr->monitor[i]);
		if (p->expect[i] != NULL) {
			snprintf(pr->monitor[i].expect,
			    sizeof(pr->monitor[i].expect), "%s", p->expect[i]);
		}
	}
	(void)parse_check(p->pr_check, pr);
	pr->n_steps    = (size_t)n_steps;
	pr->n_monitors = (size_t)n_mon;
	*can_lock      = true;
	return CS_OK;
}

static int
load_file(struct target *t, const char *path, char *err, size_t errlen)
{
	struct profile p;
	struct table  *tb;
	int           *line;
	bool           can_lock;
	int            rv;

	memset(&p, 0, sizeof(p));
	tb   = malloc(sizeof(*tb));
	line = calloc(O_ALL, sizeof(*line));
	if (tb == NULL || line == NULL) {
		free(tb);
		free(line);
		snprintf(err, errlen, "%s: out of memory", path);
		return CS_ENOMEM;
	}
	table_init(tb);
	if ((rv = cs_conf_load_lines(path, tb->o, O_ALL, &p, line, err,
		 errlen)) != CS_OK) {
		goto out;
	}
	if ((rv = validate(&p, line, path, err, errlen)) != CS_OK) {
		goto out;
	}
	if ((rv = validate_protect(&p, line, path, &tb->pr, &can_lock, err,
	    errlen)) != CS_OK) {
		goto out;
	}
	memset(t, 0, sizeof(*t));
	t->protect  = tb->pr;
	t->can_lock = can_lock;
	snprintf(t->name, sizeof(t->name), "%s", p.name);
	snprintf(t->description, sizeof(t->description), "%s",
	    p.description != NULL ? p.description : "");
	t->uid_addr        = p.uid_addr;
	t->uid_len         = p.uid_len;
	t->flash_base      = p.flash_base;
	t->flash_size      = p.flash_size;
	t->page_size       = p.page_size;
	t->record_addr     = p.record_addr;
	t->record_size     = p.record_size;
	t->program         = strcmp(p.program, "vflash") == 0 ?
				 TARGET_PROGRAM_VFLASH :
				 TARGET_PROGRAM_MEMORY;
	t->boot_check      = strcmp(p.boot_check, "semihosting") == 0 ?
				 TARGET_BOOT_SEMIHOSTING :
				 TARGET_BOOT_NONE;
	t->boot_timeout_ms = p.boot_timeout_ms;
	t->flash_ctl       = p.flash_ctl != NULL ? TARGET_FLASH_CTL_LM3S
	                                         : TARGET_FLASH_CTL_NONE;
	t->flash_ctl_base  = p.flash_ctl_base;
out:
	cs_conf_free(tb->o, O_ALL, &p);
	free(tb);
	free(line);
	return rv;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * err = "unknown target 'name': available: a, b (in d1, d2)".  The list
 * is best effort (unreadable directories are skipped, and it is cut at
 * errlen); the lookup's answer is CS_ENOENT either way.
 */
static int
not_found(const char *name, const char *const *dirs, char *err,
    size_t errlen)
{
	enum { MAX_LISTED = 256 };
	char  *names[MAX_LISTED];
	size_t n = 0, len;
	int    m;

	for (size_t d = 0; dirs != NULL && dirs[d] != NULL; d++) {
		DIR           *dp = opendir(dirs[d]);
		struct dirent *de;
		if (dp == NULL) {
			continue;
		}
		while ((de = readdir(dp)) != NULL && n < MAX_LISTED) {
			char stem[TARGET_NAME_MAX + 8];
			len = strlen(de->d_name);
			if (len <= 4 || len - 4 > TARGET_NAME_MAX ||
			    strcmp(de->d_name + len - 4, ".ini") != 0) {
				continue;
			}
			snprintf(stem, sizeof(stem), "%.*s", (int)(len - 4),
			    de->d_name);
			if (check_target_name(stem) != NULL ||
			    (names[n] = strdup(stem)) == NULL) {
				continue;
			}
			n++;
		}
		closedir(dp);
	}
	qsort(names, n, sizeof(names[0]), cmp_str);
	m = snprintf(err, errlen, "unknown target '%s': %s", name,
	    n > 0 ? "available:" : "no profiles");
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0) {
			continue; /* the same name in two directories */
		}
		if (m >= 0 && (size_t)m < errlen) {
			m += snprintf(err + m, errlen - (size_t)m, "%s %s",
			    i > 0 ? "," : "", names[i]);
		}
	}
	for (size_t d = 0; dirs != NULL && dirs[d] != NULL; d++) {
		if (m >= 0 && (size_t)m < errlen) {
			m += snprintf(err + m, errlen - (size_t)m, "%s%s",
			    d == 0 ? " (in " : ", ", dirs[d]);
		}
		if (dirs[d + 1] == NULL && m >= 0 && (size_t)m < errlen) {
			snprintf(err + m, errlen - (size_t)m, ")");
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
	}
	return CS_ENOENT;
}

int
target_load(struct target *t, const char *name, const char *const *dirs,
    char *err, size_t errlen)
{
	size_t      len = strlen(name);
	const char *why;
	char        path[4096];
	struct stat st;

	if (errlen > 0) {
		err[0] = '\0';
	}
	if (strchr(name, '/') != NULL ||
	    (len >= 4 && strcmp(name + len - 4, ".ini") == 0)) {
		return load_file(t, name, err, errlen);
	}
	if ((why = check_target_name(name)) != NULL) {
		snprintf(err, errlen, "bad target name '%s': %s", name, why);
		return CS_ENOENT;
	}
	/* The first directory that has NAME.ini decides: a broken profile
	 * there is an error, not a reason to try the next directory. */
	for (size_t d = 0; dirs != NULL && dirs[d] != NULL; d++) {
		int m = snprintf(path, sizeof(path), "%s/%s.ini", dirs[d],
		    name);
		if (m < 0 || (size_t)m >= sizeof(path)) {
			continue;
		}
		if (stat(path, &st) == 0) {
			return load_file(t, path, err, errlen);
		}
	}
	return not_found(name, dirs, err, errlen);
}
