/*
 * admin_cli.h - what the files of countersign-admin share: the context
 * every command is handed (global options, the configuration once loaded,
 * the connection to the authority once made), the helpers that parse,
 * call the authority, write files and print, and the command handlers
 * that the table in admin_main.c names.  Private to the tool.
 *
 * Every helper that can fail has already said why (through cs_cli, so
 * with --json also as the error object on stdout) and returns the exit
 * status for main() to return: ADMIN_EXIT_OK or one of the others below.
 * Nothing here exits, so every reply and file is released on the way out.
 */
#ifndef ADMIN_CLI_H
#define ADMIN_CLI_H

#include "admin_format.h"
#include "authority_config.h"
#include "cs_cli.h"
#include "cs_json.h"
#include "cs_rpc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ADMIN_PROG "countersign-admin"

/* The exit statuses, as --help documents them. */
enum {
	ADMIN_EXIT_OK          = 0,
	ADMIN_EXIT_FAIL        = 1, /* refused by the authority, or I/O */
	ADMIN_EXIT_USAGE       = 2,
	ADMIN_EXIT_BROKEN      = 3, /* audit chain broken */
	ADMIN_EXIT_UNREACHABLE = 4,
};

/* Bounds of what the officer types, checked before anything is sent. */
#define ADMIN_UID_MAX   32u
#define ADMIN_QUOTA_MAX ((uint64_t)1 << 32)

/* What every command shares. */
struct admin {
	struct cs_cli           cli; /* program name, --json, usage status */
	const char             *config_path;
	const char             *url; /* --url, or the config's admin_listen */
	uint32_t                timeout_ms;
	struct authority_config cfg;
	bool                    cfg_loaded;
	cs_rpc_client          *c; /* NULL until the first call */
};

/* ------------------------------------------------------------------ */
/* Messages and arguments (admin_main.c)                               */

/* "error: ..." (and the JSON object with --json); returns
 * ADMIN_EXIT_FAIL. */
int admin_cli_fail(struct admin *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The number s given for option opt, lo <= n <= hi, or a usage error. */
int admin_cli_num(struct admin *a, const struct cs_cli_cmd *cmd,
    const char *opt, const char *s, uint64_t lo, uint64_t hi,
    uint64_t *out);

/*
 * The arguments of a command whose only option is --help: optstring is
 * "h", or "+h" to stop at the first argument (so that "-5" after it is an
 * argument, not an option); then exactly want positional arguments.
 * Returns true when the handler is done: *rv is then its exit status
 * (ADMIN_EXIT_OK after --help).  On false, argv[optind] is the first
 * positional argument.
 */
bool admin_cli_args_done(struct admin *a, const struct cs_cli_cmd *cmd,
    int argc, char **argv, const char *optstring, int want, int *rv);

/*
 * The same for a command with one option besides --help, required and
 * not empty: --NAME VALUE (also -SHORT VALUE when short_name is not 0),
 * and no positional arguments.  *value is left as it was unless the
 * option is given.
 */
bool admin_cli_one_opt_done(struct admin *a, const struct cs_cli_cmd *cmd,
    int argc, char **argv, const char *name, char short_name, char **value,
    int *rv);

/* ------------------------------------------------------------------ */
/* Configuration and the authority (admin_main.c)                      */

/* Load the configuration once (-c, or the default path). */
int admin_cli_config(struct admin *a);

/*
 * Connect once, waiting for the connection so that a stopped authority
 * is reported as such, with ADMIN_EXIT_UNREACHABLE.  A later failure is
 * reported with the message the RPC layer or the authority gave
 * (ADMIN_EXIT_FAIL): the RPC client does not tell a lost connection from
 * an authority answering UNAVAILABLE, and after a successful connect the
 * message is the better guide.
 */
int admin_cli_connect(struct admin *a);

/* One call of the Admin service; *reply is the caller's to free with
 * admin_cli_free, also on failure. */
int admin_cli_call(struct admin *a, const char *method, const void *req,
    void *reply);

/* Free a reply of admin_cli_call (NULL-safe). */
void admin_cli_free(void *reply);

/* ------------------------------------------------------------------ */
/* Files and output (admin_main.c)                                     */

/* Create path for writing, mode 0644, refusing to replace anything. */
int admin_cli_create(struct admin *a, const char *path, int *fd);

/* Write all n bytes of p to fd (path names it in messages). */
int admin_cli_write(struct admin *a, int fd, const char *path,
    const void *p, size_t n);

/* Lower-case hex of p[0..n) on fp. */
void admin_cli_hex(FILE *fp, const uint8_t *p, size_t n);

/* Seconds since the epoch as ISO-8601 UTC, "never" for 0. */
const char *admin_cli_time(uint64_t unix_s, char out[ADMIN_TIME_LEN]);

/*
 * The JSON document of a list command: admin_cli_list_begin starts
 * {"key":[ on stdout, the caller adds one value a row, and
 * admin_cli_list_end closes it and ends the line.
 */
void admin_cli_list_begin(struct cs_json *j, const char *key);
void admin_cli_list_end(struct cs_json *j);

/* ------------------------------------------------------------------ */
/* The commands: struct cs_cli_cmd handlers, ctx is the struct admin.  */

/* admin_cmd_stations.c: the station CA and the stations. */
int admin_cmd_ca_init(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int admin_cmd_ca_crl(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int admin_cmd_station_enroll(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);
int admin_cmd_station_list(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);
int admin_cmd_station_disable(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);
int admin_cmd_station_enable(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);

/* admin_cmd_keys.c: signing keys and admin tokens. */
int admin_cmd_key_add(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int admin_cmd_key_list(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int admin_cmd_token_create(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);
int admin_cmd_token_list(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int admin_cmd_token_disable(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);

/* admin_cmd_orders.c: orders and the devices signed for them. */
int admin_cmd_order_create(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);
int admin_cmd_order_firmware(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);
int admin_cmd_order_list(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int admin_cmd_order_show(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int admin_cmd_order_quota(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);
int admin_cmd_order_close(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);
int admin_cmd_device_show(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);

/* admin_cmd_audit.c: the audit log. */
int admin_cmd_audit_list(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int admin_cmd_audit_verify(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);
int admin_cmd_audit_export(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv);

#endif /* ADMIN_CLI_H */
