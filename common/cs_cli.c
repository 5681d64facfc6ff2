/*
 * cs_cli.c - command tables and error printing shared by the programs
 * (cs_cli.h).  JSON error objects go through cs_json, like every other
 * JSON of the project.
 */
#include "cs_cli.h"
#include "cs_json.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#define NAME_MAX_ 160

static void
verror(const struct cs_cli *cli, int code, const char *fmt, va_list ap)
{
	char text[2048];

	vsnprintf(text, sizeof(text), fmt, ap);
	fprintf(stderr, "error: %s\n", text);
	if (cli != NULL && cli->json) {
		struct cs_json j;

		fflush(stdout); /* results first, then the error */
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "error", text);
		cs_json_i64(&j, "exit", code);
		cs_json_close(&j);
		putchar('\n');
	}
}

int
cs_cli_error(const struct cs_cli *cli, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(cli, code, fmt, ap);
	va_end(ap);
	return code;
}

int
cs_cli_usage(const struct cs_cli *cli, const struct cs_cli_cmd *cmd,
    const char *fmt, ...)
{
	char    text[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (cmd != NULL) {
		return cs_cli_error(cli, cli->usage_code, "%s\n(see %s %s "
		    "--help)", text, cli->prog, cmd->name);
	}
	return cs_cli_error(cli, cli->usage_code, "%s\n(see %s --help)", text,
	    cli->prog);
}

void
cs_cli_warn(const struct cs_cli *cli, const char *fmt, ...)
{
	va_list ap;

	(void)cli;
	fputs("warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
cs_cli_cmd_help(FILE *fp, const struct cs_cli *cli,
    const struct cs_cli_cmd *cmd)
{
	fprintf(fp, "usage: %s [GLOBAL OPTIONS] %s%s%s\n\n%s\n", cli->prog,
	    cmd->name, cmd->synopsis[0] != '\0' ? " " : "", cmd->synopsis,
	    cmd->summary);
	if (cmd->help != NULL) {
		fprintf(fp, "\n%s", cmd->help);
	}
}

int
cs_cli_other_opt(const struct cs_cli *cli, const struct cs_cli_cmd *cmd,
    int opt)
{
	if (opt == 'h') {
		cs_cli_cmd_help(stdout, cli, cmd);
		return 0;
	}
	return cs_cli_usage(cli, cmd, "bad option");
}

int
cs_cli_positional(const struct cs_cli *cli, const struct cs_cli_cmd *cmd,
    int argc, char **argv, int want)
{
	if (argc - optind > want) {
		return cs_cli_usage(cli, cmd, "unexpected argument \"%s\"",
		    argv[optind + want]);
	}
	if (argc - optind < want) {
		return cs_cli_usage(cli, cmd, "missing argument");
	}
	return 0;
}

void
cs_cli_list(FILE *fp, const struct cs_cli_cmd *cmds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(fp, "  %s%s%s\n      %s\n", cmds[i].name,
		    cmds[i].synopsis[0] != '\0' ? " " : "", cmds[i].synopsis,
		    cmds[i].summary);
	}
}

/* The number of words of name that argv starts with (0: no match). */
static int
words_match(const char *name, int argc, char **argv)
{
	const char *sp = strchr(name, ' ');

	if (sp == NULL) {
		return strcmp(name, argv[0]) == 0 ? 1 : 0;
	}
	if ((size_t)(sp - name) != strlen(argv[0]) ||
	    strncmp(name, argv[0], (size_t)(sp - name)) != 0) {
		return 0;
	}
	return argc > 1 && strcmp(sp + 1, argv[1]) == 0 ? 2 : -1;
}

int
cs_cli_dispatch(const struct cs_cli *cli, const struct cs_cli_cmd *cmds,
    size_t n, void *ctx, int argc, char **argv)
{
	static char name[NAME_MAX_];
	bool        group = false, help;
	FILE       *fp;

	if (argc < 1) {
		return cs_cli_usage(cli, NULL, "no command given");
	}
	for (size_t i = 0; i < n; i++) {
		int w = words_match(cmds[i].name, argc, argv);

		if (w < 0) {
			group = true; /* the first word names a group */
		}
		if (w <= 0) {
			continue;
		}
		/* getopt names argv[0] in its messages. */
		snprintf(name, sizeof(name), "%s %s", cli->prog,
		    cmds[i].name);
		argv[w - 1] = name;
		optind      = 0; /* fresh getopt state for the command */
		return cmds[i].fn(ctx, &cmds[i], argc - (w - 1),
		    argv + (w - 1));
	}
	help = argc > 1 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0);
	fp   = help ? stdout : stderr;
	if (!group) {
		cs_cli_usage(cli, NULL, "unknown command \"%s\"", argv[0]);
		return cli->usage_code;
	}
	if (!help) {
		if (argc == 1) {
			cs_cli_error(cli, cli->usage_code, "%s needs a "
			    "subcommand, one of:", argv[0]);
		} else {
			cs_cli_error(cli, cli->usage_code, "%s \"%s\" is not a "
			    "command; one of:", argv[0], argv[1]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (words_match(cmds[i].name, 1, argv) < 0) {
			fprintf(fp, "  %s %s%s%s\n", cli->prog, cmds[i].name,
			    cmds[i].synopsis[0] != '\0' ? " " : "",
			    cmds[i].synopsis);
		}
	}
	return help ? 0 : cli->usage_code;
}
