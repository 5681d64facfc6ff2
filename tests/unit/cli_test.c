/*
 * cli_test.c - the shared command-line helper (cs_cli.h): dispatch of one-
 * and two-word commands, group listings, unknown commands, usage errors
 * that point at the right --help, and the JSON error object of --json.
 */
#include "cs_cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* What a call printed on stdout and stderr. */
struct out {
	char o[4096];
	char e[4096];
};

static int saved_o, saved_e;
static FILE *tmp_o, *tmp_e;

static void
capture_begin(void)
{
	fflush(stdout);
	fflush(stderr);
	tmp_o = tmpfile();
	tmp_e = tmpfile();
	assert_non_null(tmp_o);
	assert_non_null(tmp_e);
	saved_o = dup(STDOUT_FILENO);
	saved_e = dup(STDERR_FILENO);
	dup2(fileno(tmp_o), STDOUT_FILENO);
	dup2(fileno(tmp_e), STDERR_FILENO);
}

static void
slurp(FILE *fp, char *buf, size_t len)
{
	size_t n;

	rewind(fp);
	n      = fread(buf, 1, len - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

static void
capture_end(struct out *out)
{
	fflush(stdout);
	fflush(stderr);
	dup2(saved_o, STDOUT_FILENO);
	dup2(saved_e, STDERR_FILENO);
	close(saved_o);
	close(saved_e);
	slurp(tmp_o, out->o, sizeof(out->o));
	slurp(tmp_e, out->e, sizeof(out->e));
}

static char ran[64];

static int
run_cmd(void *ctx, const struct cs_cli_cmd *cmd, int argc, char **argv)
{
	(void)ctx;
	snprintf(ran, sizeof(ran), "%s|%d|%s|%s", cmd->name, argc, argv[0],
	    argc > 1 ? argv[1] : "");
	return 7;
}

static const struct cs_cli_cmd cmds[] = {
    {"ping", "[--count N]", "ask the server", NULL, run_cmd},
    {"order create", "ID", "make an order", "More text.\n", run_cmd},
    {"order show", "ID", "show an order", NULL, run_cmd},
};
static const struct cs_cli cli = {.prog = "prog", .usage_code = 2};

static int
dispatch(struct out *out, const struct cs_cli *c, int argc, ...)
{
	char   *argv[8];
	va_list ap;
	int     rv;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++) {
		argv[i] = va_arg(ap, char *);
	}
	va_end(ap);
	ran[0] = '\0';
	capture_begin();
	rv = cs_cli_dispatch(c, cmds, 3, NULL, argc, argv);
	capture_end(out);
	return rv;
}

static void
test_dispatch(void **state)
{
	struct out out;

	(void)state;
	assert_int_equal(dispatch(&out, &cli, 2, "ping", "--count"), 7);
	assert_string_equal(ran, "ping|2|prog ping|--count");
	assert_int_equal(dispatch(&out, &cli, 3, "order", "show", "X"), 7);
	assert_string_equal(ran, "order show|2|prog order show|X");
	/* A group alone, a bad verb, a group's --help. */
	assert_int_equal(dispatch(&out, &cli, 1, "order"), 2);
	assert_string_equal(ran, "");
	assert_non_null(strstr(out.e, "error: order needs a subcommand"));
	assert_non_null(strstr(out.e, "prog order create ID\n"));
	assert_int_equal(dispatch(&out, &cli, 2, "order", "drop"), 2);
	assert_non_null(strstr(out.e, "\"drop\" is not a command"));
	assert_int_equal(dispatch(&out, &cli, 2, "order", "--help"), 0);
	assert_non_null(strstr(out.o, "prog order show ID\n"));
	assert_string_equal(out.e, "");
	/* Unknown: a usage error pointing at --help. */
	assert_int_equal(dispatch(&out, &cli, 1, "pong"), 2);
	assert_string_equal(out.e, "error: unknown command \"pong\"\n"
	                           "(see prog --help)\n");
	assert_string_equal(out.o, "");
}

static void
test_errors_and_json(void **state)
{
	const struct cs_cli js = {.prog = "prog", .json = true,
	    .usage_code = 2};
	struct out          out;

	(void)state;
	capture_begin();
	assert_int_equal(cs_cli_error(&cli, 5, "no %s left", "quota"), 5);
	capture_end(&out);
	assert_string_equal(out.e, "error: no quota left\n");
	assert_string_equal(out.o, "");

	capture_begin();
	assert_int_equal(cs_cli_error(&js, 5, "bad \"x\"\n\x1b"), 5);
	capture_end(&out);
	assert_string_equal(out.o,
	    "{\"error\":\"bad \\\"x\\\"\\n\\u001B\",\"exit\":5}\n");

	capture_begin();
	assert_int_equal(cs_cli_usage(&js, &cmds[1], "missing argument"), 2);
	capture_end(&out);
	assert_string_equal(out.e, "error: missing argument\n"
	                           "(see prog order create --help)\n");
	assert_non_null(strstr(out.o, "\"exit\":2}"));

	/* --help of a command, and the list. */
	capture_begin();
	assert_int_equal(cs_cli_other_opt(&cli, &cmds[1], 'h'), 0);
	cs_cli_list(stdout, cmds, 1);
	capture_end(&out);
	assert_string_equal(out.o, "usage: prog [GLOBAL OPTIONS] order create "
	                           "ID\n\nmake an order\n\nMore text.\n"
	                           "  ping [--count N]\n      ask the server\n");
}

static void
test_positional(void **state)
{
	char      *argv[] = {(char *)"prog x", (char *)"a", (char *)"b"};
	struct out out;

	(void)state;
	optind = 1;
	capture_begin();
	assert_int_equal(cs_cli_positional(&cli, &cmds[0], 3, argv, 2), 0);
	assert_int_equal(cs_cli_positional(&cli, &cmds[0], 3, argv, 1), 2);
	assert_int_equal(cs_cli_positional(&cli, &cmds[0], 3, argv, 3), 2);
	capture_end(&out);
	assert_non_null(strstr(out.e, "unexpected argument \"b\""));
	assert_non_null(strstr(out.e, "missing argument"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dispatch),
	    cmocka_unit_test(test_errors_and_json),
	    cmocka_unit_test(test_positional),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
