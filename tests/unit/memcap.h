/*
 * memcap.h - for the unit tests of text formatters: capture what a
 * function writes to a FILE in memory and compare it with what is
 * expected.  Header-only (static functions) so that tests linking only
 * cs_common can use it; include it after <cmocka.h>.
 */
#ifndef MEMCAP_H
#define MEMCAP_H

#include <stdio.h>
#include <stdlib.h>

/* Captures what a formatter writes, NUL-terminated. */
struct cap {
	char  *buf;
	size_t len;
	FILE  *fp;
};

static void
cap_open(struct cap *c)
{
	c->buf = NULL;
	c->len = 0;
	c->fp  = open_memstream(&c->buf, &c->len);
	assert_non_null(c->fp);
}

/* Close and compare with want; frees the buffer. */
static void
cap_check(struct cap *c, const char *want)
{
	assert_int_equal(fclose(c->fp), 0);
	assert_string_equal(c->buf, want);
	free(c->buf);
}

#endif /* MEMCAP_H */
