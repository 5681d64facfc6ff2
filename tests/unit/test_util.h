/*
 * test_util.h - helpers shared by the test programs: temporary
 * directories, the test PKI, and child processes.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Make a fresh temporary directory; returns its path (free with
 * tu_rmtree_free).  Fails the test on error. */
char *tu_tmpdir(void);

/* Remove dir recursively and free the path; NULL-safe. */
void tu_rmtree_free(char *dir);

/* Run tests/pki/make-pki.sh into dir (fails the test on error). */
void tu_make_pki(const char *dir);

/*
 * Make a SoftHSM2 token labelled label with user PIN pin in dir
 * (tests/hsm/make-token.sh: dir/softhsm2.conf, dir/tokens, dir/pin) and
 * point SOFTHSM2_CONF at it.  Fails the test on error.
 */
void tu_make_token(const char *dir, const char *label, const char *pin);

/* Join dir and name into buf; returns buf. */
const char *tu_path(char *buf, size_t len, const char *dir,
    const char *name);

/* Write text to path (fails the test on error). */
void tu_write_file(const char *path, const char *text);

/* Path of a built program ($CS_BINARY_DIR/<subdir>/<name>) in buf. */
const char *tu_program(char *buf, size_t len, const char *subdir,
    const char *name);

/*
 * The paths of countersign-authority, countersign-admin, countersign-station
 * and countersign-keytool, each into a buffer of len bytes.
 */
void tu_programs(char *authority, char *admin, char *station, char *keytool,
    size_t len);

/*
 * Whether name is one of the comma-separated names in list (a test
 * program's CS_TESTS selection, to run some of its cases while debugging).
 */
bool tu_listed(const char *list, const char *name);

/* cmocka_run_group_tests over the cases of tests (an array) that
 * CS_TESTS names, or all of them without it. */
#define tu_run_tests(group, tests, setup, teardown)                        \
	__extension__({                                                    \
		struct CMUnitTest picked_[sizeof(tests) / sizeof(tests[0])]; \
		size_t            n_    = 0;                               \
		const char       *only_ = getenv("CS_TESTS");              \
		for (size_t i_ = 0; i_ < sizeof(tests) / sizeof(tests[0]);  \
		     i_++) {                                               \
			if (only_ == NULL ||                               \
			    tu_listed(only_, tests[i_].name)) {            \
				picked_[n_++] = tests[i_];                 \
			}                                                  \
		}                                                          \
		_cmocka_run_group_tests(group, picked_, n_, setup,         \
		    teardown);                                             \
	})

/*
 * Run argv to completion with stdout and stderr captured into out (NUL
 * terminated, truncated to len).  Returns the exit status, or -1 if the
 * child was killed by a signal.
 */
int tu_run(char *const argv[], char *out, size_t len);

/*
 * tu_run for prog and the NULL-terminated argument list that follows (at
 * most 62 arguments).
 */
int tu_runl(char *out, size_t len, const char *prog, ...);

/*
 * Fail the test unless got == want and out contains needle (NULL: any
 * output); prints the output and what was wanted when it fails.
 */
void tu_expect(const char *out, int got, int want, const char *needle);

/*
 * Start argv in the background with stderr (and stdout) going to
 * logpath; returns the pid.
 */
pid_t tu_spawn(char *const argv[], const char *logpath);

/*
 * Wait up to timeout_ms for a line containing needle in the file at path;
 * copies that line to line.  Returns true if found.
 */
bool tu_wait_for_line(const char *path, const char *needle, char *line,
    size_t len, unsigned timeout_ms);

/*
 * Wait (up to 20 s) for the log line of a listener whose URL starts with
 * url_prefix ("listening url=<prefix>... port=N", as cs_rpc and the
 * console write them) and return N; fails the test otherwise.
 */
int tu_wait_port(const char *logpath, const char *url_prefix);

/* Send sig to pid and reap it within timeout_ms (SIGKILL after that);
 * returns the exit status, or -1 if it died of a signal. */
int tu_stop(pid_t pid, int sig, unsigned timeout_ms);

#endif /* TEST_UTIL_H */
