/*
 * station_cli.h - private to countersign-station: what main.c (the command
 * table, global options, exit codes) shares with the files that hold the
 * commands (station_cmd_sign.c: init, ping, sign, report, order;
 * station_cmd_run.c: run, read-uid, probes).
 *
 * Every command starts the same way, with station_cli_begin(): its
 * options parsed into one struct station_args, --help answered, the
 * positional arguments counted, and the configuration loaded if the
 * command needs one.  Errors go through cs_cli (station_cli.cli), so that
 * `run --json` and `probes --json` also give them as a JSON object on
 * stdout.
 *
 * Not a library: for the main thread of the one program.
 */
#ifndef STATION_CLI_H
#define STATION_CLI_H

#include "countersign/v1/authority.pb-c.h"
#include "cs_cli.h"
#include "cs_rpc.h"
#include "cs_image.h"
#include "job.h"
#include "station_config.h"
#include "station_session.h"
#include "cs_target.h"

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The exit codes: name, value, text for --help.  sign, report, order and
 * run exit with a code that says why they failed, so that a programming
 * script can tell "stop the line" (quota exhausted, a clone) from "retry"
 * (authority unreachable) without parsing messages.  The wire statuses
 * behind each are in station_cli_exit_for_status().
 */
#define STATION_EXIT_LIST(X)                                                  \
	X(EXIT_OK, 0, "ok")                                                   \
	X(EXIT_ERROR, 1, "any other error")                                   \
	X(EXIT_USAGE, 2, "usage or configuration error")                      \
	X(EXIT_UNREACHABLE, 3, "authority unreachable or timed out")          \
	X(EXIT_DENIED, 4, "station not authenticated or not allowed")         \
	X(EXIT_QUOTA, 5, "the order's quota is exhausted")                    \
	X(EXIT_ORDER, 6, "order unknown, closed or expired (run: or its "      \
	    "firmware withdrawn or replaced)")                                \
	X(EXIT_UID, 7, "bad UID")                                             \
	X(EXIT_CLONE, 8, "UID already signed under another order or CM "      \
	    "(cloning signal)")                                               \
	X(EXIT_INCOMPLETE, 9, "run: fewer devices than --count (none came "   \
	    "on a probe in time, or the run was stopped)")                     \
	X(EXIT_FIRMWARE, 10, "run: the image or the target is not the one "   \
	    "the order was made for (nothing signed, nothing written)")

enum station_exit {
#define STATION_EXIT_ENUM(name, val, text) name = val,
	STATION_EXIT_LIST(STATION_EXIT_ENUM)
#undef STATION_EXIT_ENUM
};

/* The program: cs_cli's view of it, the global options, the
 * configuration once a command loaded it. */
struct station_cli {
	struct cs_cli         cli;
	const char           *config_path; /* -c, or the default */
	struct station_config cfg;
	bool                  cfg_loaded;
};

/*
 * What a command's options said.  Each command lists the options it takes
 * in its own getopt table; the values land here as given (NULL or 0 when
 * absent) and each command checks the ones it needs.  Numbers stay text
 * until then, because their ranges differ between commands.
 */
struct station_args {
	const char *order, *uid, *out, *outcome, *detail;
	const char *image, *format, *base, *target;
	const char *count, *retry_s, *next_device_s;
	const char *fw_sha256; /* sign --firmware-sha256 */
	bool        locked;    /* report --locked */
	const char *probes[JOB_MAX_PROBES];
	size_t      nprobes;
	bool        json;
	bool        help; /* --help was printed: the command is done */
};

/* Whether station_cli_begin() loads station.conf for the command. */
enum station_needs { STATION_NO_CONFIG, STATION_CONFIG };

/*
 * The set-up every command shares: parse argv with longopts (each entry's
 * val is the letter station_cli_begin() knows the option by: o u f r d i
 * F b t p n j R w h S L), answer --help (a->help), demand exactly npos
 * positional arguments (from optind on), then load the configuration for
 * STATION_CONFIG and open the log.  --json is honoured wherever it stands
 * among the options, so even a bad option is reported as JSON.  Returns 0
 * or the exit code, the error already printed.
 */
int station_cli_begin(struct station_cli *st, const struct cs_cli_cmd *cmd,
    int argc, char **argv, const struct option *longopts, int npos,
    enum station_needs needs, struct station_args *a);

/* Parse text as a number in [min, max] for option opt; a usage error
 * naming the range if it is not one. */
int station_cli_number(struct station_cli *st,
    const struct cs_cli_cmd *cmd, const char *opt, const char *text,
    unsigned long min, unsigned long max, unsigned long *out);

/* --order: 1..ORDER_ID_MAX bytes, or a usage error. */
int station_cli_order_id(struct station_cli *st,
    const struct cs_cli_cmd *cmd, const char *id);

/* --order (as station_cli_order_id) and --uid into uid/len, as sign and
 * report take them; or a usage error that says what a UID looks like. */
int station_cli_order_uid(struct station_cli *st,
    const struct cs_cli_cmd *cmd, const struct station_args *a,
    uint8_t uid[STATION_UID_MAX], size_t *len);

/* Open the session with the authority; prints why not and returns the
 * exit code (a refusal here is about the station: EXIT_DENIED). */
int station_cli_session(struct station_cli *st, station_session **s);

/* Exit code for the wire status of a failed call (the table in main.c). */
int station_cli_exit_for_status(int status);

/* Print the error of a failed station_session_call() and return its exit
 * code. */
int station_cli_call_failed(struct station_cli *st, int rv,
    const struct cs_rpc_result *res);

/* Lower-case hex of b into out (2 * len + 1 bytes); returns out. */
const char *station_cli_hex(const uint8_t *b, size_t len, char *out);

/* Print an order's counters as one key=value line on stdout. */
void station_cli_print_order(const Countersign__V1__OrderStatus *o);

/* The commands, in station_cmd_sign.c and station_cmd_run.c. */
int station_cmd_init(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int station_cmd_ping(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int station_cmd_sign(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int station_cmd_report(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int station_cmd_order(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int station_cmd_run(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int station_cmd_read_uid(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);
int station_cmd_probes(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);

#endif /* STATION_CLI_H */
