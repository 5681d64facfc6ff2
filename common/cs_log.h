/*
 * cs_log.h - structured logging: one line per event, key=value pairs, to
 * stderr (what systemd's journal captures) or syslog.
 *
 * A line reads: `2026-11-26T22:10:00.123Z warn tls: handshake failed
 * peer=127.0.0.1:4242 err=-313`.  The sink is process-wide and set once at
 * start-up by the program's main(); libraries only write to it.  All
 * functions are thread-safe: one line is written with one write(2) (or one
 * syslog(3) call), so lines from different threads never interleave.
 */
#ifndef CS_LOG_H
#define CS_LOG_H

#include <stdbool.h>

typedef enum cs_log_level {
	CS_LOG_ERROR = 0,
	CS_LOG_WARN  = 1,
	CS_LOG_INFO  = 2,
	CS_LOG_DEBUG = 3,
} cs_log_level;

/*
 * Configure the sink.  ident names the program (syslog ident and line
 * prefix); level is the most verbose level written; use_syslog sends lines
 * to syslog(3) instead of stderr.  May be called again (SIGHUP reopens).
 */
void cs_log_open(const char *ident, cs_log_level level, bool use_syslog);

/* Parse "error", "warn", "info" or "debug"; returns 0 or CS_EINVAL. */
int cs_log_level_parse(const char *s, cs_log_level *out);

/* True when lines of this level are written (skip costly formatting). */
bool cs_log_enabled(cs_log_level level);

/*
 * Write one line: module names the component ("tls", "rpc"), fmt is the
 * message followed by key=value pairs.  Newlines in the result are replaced
 * so that one event is always one line (log injection).
 */
void cs_log(cs_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cs_log_error(mod, ...) cs_log(CS_LOG_ERROR, mod, __VA_ARGS__)
#define cs_log_warn(mod, ...) cs_log(CS_LOG_WARN, mod, __VA_ARGS__)
#define cs_log_info(mod, ...) cs_log(CS_LOG_INFO, mod, __VA_ARGS__)
#define cs_log_debug(mod, ...) cs_log(CS_LOG_DEBUG, mod, __VA_ARGS__)

#endif /* CS_LOG_H */
