/*
 * cs_err.c - strings and wire mapping for cs_err, generated from the one
 * list in cs_err.h.
 */
#include "cs_err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

const char *
cs_strerror(int err)
{
	switch (err) {
#define CS_ERR_STR(name, val, status, msg)                                    \
	case val:                                                             \
		return msg;
		CS_ERR_LIST(CS_ERR_STR)
#undef CS_ERR_STR
	}
	return "unknown error";
}

const char *
cs_errname(int err)
{
	switch (err) {
#define CS_ERR_NAME(name, val, status, msg)                                   \
	case val:                                                             \
		return "CS_" #name;
		CS_ERR_LIST(CS_ERR_NAME)
#undef CS_ERR_NAME
	}
	return "CS_E?";
}

cs_status
cs_err_to_status(int err)
{
	switch (err) {
#define CS_ERR_STATUS(name, val, status, msg)                                 \
	case val:                                                             \
		return CS_STATUS_##status;
		CS_ERR_LIST(CS_ERR_STATUS)
#undef CS_ERR_STATUS
	}
	return CS_STATUS_UNKNOWN;
}

int
cs_err_from_status(int status)
{
	/*
	 * Several errors share a status; the reverse map picks the one a
	 * caller can act on.  Anything else stays "remote error" so that a
	 * client never mistakes a server's failure for a local one.
	 */
	switch (status) {
	case CS_STATUS_OK:
		return CS_OK;
	case CS_STATUS_CANCELLED:
		return CS_ECANCELED;
	case CS_STATUS_INVALID_ARGUMENT:
	case CS_STATUS_OUT_OF_RANGE:
		return CS_EINVAL;
	case CS_STATUS_DEADLINE_EXCEEDED:
		return CS_ETIMEDOUT;
	case CS_STATUS_NOT_FOUND:
		return CS_ENOENT;
	case CS_STATUS_ALREADY_EXISTS:
		return CS_EEXIST;
	case CS_STATUS_PERMISSION_DENIED:
		return CS_EPERM;
	case CS_STATUS_RESOURCE_EXHAUSTED:
		return CS_EEXHAUSTED;
	case CS_STATUS_FAILED_PRECONDITION:
	case CS_STATUS_ABORTED:
		return CS_EPRECOND;
	case CS_STATUS_UNIMPLEMENTED:
		return CS_EUNIMPL;
	case CS_STATUS_INTERNAL:
	case CS_STATUS_DATA_LOSS:
		return CS_EINTERNAL;
	case CS_STATUS_UNAVAILABLE:
		return CS_EUNAVAIL;
	case CS_STATUS_UNAUTHENTICATED:
		return CS_EUNAUTH;
	}
	return CS_EREMOTE;
}

const char *
cs_status_name(int status)
{
	switch (status) {
#define CS_STATUS_NAME(name, val)                                             \
	case val:                                                             \
		return #name;
		CS_STATUS_LIST(CS_STATUS_NAME)
#undef CS_STATUS_NAME
	}
	return "UNKNOWN";
}

int
cs_say(int rv, char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (msg != NULL && msglen > 0) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return rv;
}

uint64_t
cs_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
