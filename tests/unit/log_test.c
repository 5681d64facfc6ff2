/*
 * log_test.c - cs_log writes one line per event: level filtering, newlines
 * in messages neutralised (log injection), overlong messages truncated to
 * one line.
 */
#include "cs_log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Run fn with stderr sent to a temporary file; returns what it wrote. */
static char *
capture(void (*fn)(void))
{
	char  path[] = "/tmp/cs-log-test-XXXXXX";
	int   fd     = mkstemp(path);
	int   saved  = dup(STDERR_FILENO);
	char *buf    = calloc(1, 65536);

	assert_true(fd >= 0 && saved >= 0 && buf != NULL);
	unlink(path);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, buf, 65535);
	assert_true(n >= 0);
	close(fd);
	return buf;
}

static void
log_levels(void)
{
	cs_log_open("t", CS_LOG_WARN, false);
	cs_log_info("mod", "hidden=1");
	cs_log_warn("mod", "shown=%d", 2);
}

static void
log_injection(void)
{
	cs_log_open("t", CS_LOG_DEBUG, false);
	cs_log_warn("rpc", "peer said \"%s\"", "x\nfake error line\r");
}

static void
log_long(void)
{
	static char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	cs_log_open("t", CS_LOG_DEBUG, false);
	cs_log_error("mod", "v=%s", big);
	cs_log_error("mod", "after=1");
}

static void
test_levels(void **state)
{
	(void)state;
	char *out = capture(log_levels);
	assert_null(strstr(out, "hidden=1"));
	assert_non_null(strstr(out, " warn mod: shown=2\n"));
	free(out);
}

static void
test_one_line_per_event(void **state)
{
	(void)state;
	char *out = capture(log_injection);
	assert_non_null(strstr(out, "x fake error line "));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
	free(out);

	out = capture(log_long);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_true(nl - out + 1 <= 1024);
	assert_non_null(strstr(nl + 1, "error mod: after=1\n"));
	free(out);
}

static void
test_level_parse(void **state)
{
	cs_log_level l;
	(void)state;
	assert_int_equal(cs_log_level_parse("debug", &l), 0);
	assert_int_equal(l, CS_LOG_DEBUG);
	assert_true(cs_log_level_parse("loud", &l) < 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels),
	    cmocka_unit_test(test_one_line_per_event),
	    cmocka_unit_test(test_level_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
