/*
 * cs_log.c - the log sink.  Settings are process-wide by design (the sink is
 * the process's stderr or syslog connection); they are read atomically so
 * that a SIGHUP-driven reopen never tears a line.
 */
#include "cs_log.h"
#include "cs_err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define CS_LOG_LINE 1024 /* longest line written, newline included */

static _Atomic int  log_level  = CS_LOG_INFO;
static _Atomic bool log_syslog = false;
static char         log_ident[32] = "countersign";

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

void
cs_log_open(const char *ident, cs_log_level level, bool use_syslog)
{
	if (ident != NULL) {
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	}
	atomic_store(&log_level, (int)level);
	if (use_syslog) {
		openlog(log_ident, LOG_PID, LOG_DAEMON);
	}
	atomic_store(&log_syslog, use_syslog);
}

int
cs_log_level_parse(const char *s, cs_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (cs_log_level)i;
			return CS_OK;
		}
	}
	return CS_EINVAL;
}

bool
cs_log_enabled(cs_log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

/* snprintf at offset n of a CS_LOG_LINE buffer; returns the new offset,
 * never past the end (a truncated line stays a line). */
static size_t
append(char *line, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t
append(char *line, size_t n, const char *fmt, ...)
{
	va_list ap;
	int     m;

	if (n >= CS_LOG_LINE - 1) {
		return CS_LOG_LINE - 1;
	}
	va_start(ap, fmt);
	m = vsnprintf(line + n, CS_LOG_LINE - n, fmt, ap);
	va_end(ap);
	if (m > 0) {
		n += (size_t)m;
	}
	return n < CS_LOG_LINE - 1 ? n : CS_LOG_LINE - 1;
}

void
cs_log(cs_log_level level, const char *module, const char *fmt, ...)
{
	char    line[CS_LOG_LINE];
	size_t  n = 0;
	va_list ap;

	if (!cs_log_enabled(level) || level < CS_LOG_ERROR ||
	    level > CS_LOG_DEBUG) {
		return;
	}
	if (!atomic_load(&log_syslog)) {
		struct timespec ts;
		struct tm       tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n = append(line, n, ".%03ldZ %s[%d] ", ts.tv_nsec / 1000000L,
		    log_ident, (int)getpid());
	}
	n = append(line, n, "%s %s: ", level_names[level],
	    module != NULL ? module : "-");
	if (n < sizeof(line) - 1) {
		int m;
		va_start(ap, fmt);
		m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		if (m > 0) {
			n += (size_t)m;
		}
	}
	if (n > sizeof(line) - 2) {
		n = sizeof(line) - 2; /* truncated: keep room for "\n" */
	}
	for (size_t i = 0; i < n; i++) {
		if (line[i] == '\n' || line[i] == '\r') {
			line[i] = ' ';
		}
	}
	if (atomic_load(&log_syslog)) {
		line[n] = '\0';
		syslog(syslog_prio[level], "%s", line);
		return;
	}
	line[n++] = '\n';
	/* One write(2) per line: lines from threads never interleave. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
