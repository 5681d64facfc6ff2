/*
 * cs_cli.h - what the programs share on their command line: one command
 * table that drives dispatch, the command list of --help and each
 * command's own help; and one way to say that something went wrong.
 *
 * Errors: "error: TEXT" on stderr, always; with --json (cli->json) also
 * one object {"error":"TEXT","exit":N} on its own line on stdout, so that
 * a script reading stdout sees the failure in the same stream as the
 * results.  Usage errors add a pointer to the right --help.
 *
 * Exit codes stay each program's own (documented in its --help); this
 * module only carries them.  Nothing here exits: every function returns
 * the code for main() to return, so cleanup always runs.
 *
 * Thread-safety: for the main thread of a command-line program.
 */
#ifndef CS_CLI_H
#define CS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The program: its name, and whether --json was asked for. */
struct cs_cli {
	const char *prog; /* "countersign-admin" */
	bool        json;
	int         usage_code; /* the program's exit code for usage errors */
};

struct cs_cli_cmd;

/*
 * A command's handler: ctx is the program's own context; argv[0] is the
 * command's full name ("countersign-admin order create"), so getopt_long
 * names it in its messages; optind is reset before the call.
 */
typedef int (*cs_cli_fn)(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv);

/*
 * One command.  name is one or two words ("sign", "order create");
 * synopsis its arguments ("--order ID --uid HEX [--out FILE]", or ""),
 * summary one line for the command list, help the rest of its --help
 * (may be NULL).
 */
struct cs_cli_cmd {
	const char *name;
	const char *synopsis;
	const char *summary;
	const char *help;
	cs_cli_fn   fn;
};

/* Print the error as the header says and return code. */
int cs_cli_error(const struct cs_cli *cli, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A usage error (cli->usage_code): the text, then "(see PROG [CMD]
 * --help)"; cmd may be NULL. */
int cs_cli_usage(const struct cs_cli *cli, const struct cs_cli_cmd *cmd,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "warning: TEXT" on stderr (never JSON: a warning is not a result). */
void cs_cli_warn(const struct cs_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The end of a command's getopt loop: 'h' prints the command's help and
 * returns 0; anything else (getopt already said what) is a usage error.
 * Handlers return this when it is non-zero or when opt was 'h'.
 */
int cs_cli_other_opt(const struct cs_cli *cli, const struct cs_cli_cmd *cmd,
    int opt);

/* Exactly want positional arguments from optind on, or a usage error. */
int cs_cli_positional(const struct cs_cli *cli, const struct cs_cli_cmd *cmd,
    int argc, char **argv, int want);

/* The command's help on fp: "usage: PROG [GLOBAL OPTIONS] NAME SYNOPSIS",
 * the summary and the help text. */
void cs_cli_cmd_help(FILE *fp, const struct cs_cli *cli,
    const struct cs_cli_cmd *cmd);

/* The command list for the program's --help: one line a command,
 * "  NAME SYNOPSIS" then the summary indented below it. */
void cs_cli_list(FILE *fp, const struct cs_cli_cmd *cmds, size_t n);

/*
 * Find the command named by argv[0] (and argv[1] for two-word names) and
 * run it with the rest.  "GROUP" alone or "GROUP --help" lists the
 * commands of a group.  An unknown command is a usage error that lists
 * what there is.  Returns the handler's exit code.
 */
int cs_cli_dispatch(const struct cs_cli *cli, const struct cs_cli_cmd *cmds,
    size_t n, void *ctx, int argc, char **argv);

#endif /* CS_CLI_H */
