/*
 * cs_err.h - the one error convention of Countersign.
 *
 * Every function in the project that can fail returns a cs_err: CS_OK (0) on
 * success, a negative code otherwise.  One X-macro list generates the enum,
 * cs_strerror() and cs_errname(), and the mapping to the gRPC-named status
 * codes that travel on the wire (countersign.v1.StatusCode), so the three
 * can never drift apart.  Errors of external libraries (nng, wolfSSL,
 * PKCS#11, LMDB, libusb) are translated inside the one module that talks to
 * that library, which logs the original code beside the translation.
 */
#ifndef CS_ERR_H
#define CS_ERR_H

#include <stddef.h>
#include <stdint.h>

/*
 * Wire status codes.  Values are gRPC's, so that anyone who knows gRPC
 * reads a Countersign status without a table.  Kept in step with
 * StatusCode in proto/countersign/v1/rpc.proto (checked by a unit test).
 */
#define CS_STATUS_LIST(X)                                                     \
	X(OK, 0)                                                              \
	X(CANCELLED, 1)                                                       \
	X(UNKNOWN, 2)                                                         \
	X(INVALID_ARGUMENT, 3)                                                \
	X(DEADLINE_EXCEEDED, 4)                                               \
	X(NOT_FOUND, 5)                                                       \
	X(ALREADY_EXISTS, 6)                                                  \
	X(PERMISSION_DENIED, 7)                                               \
	X(RESOURCE_EXHAUSTED, 8)                                              \
	X(FAILED_PRECONDITION, 9)                                             \
	X(ABORTED, 10)                                                        \
	X(OUT_OF_RANGE, 11)                                                   \
	X(UNIMPLEMENTED, 12)                                                  \
	X(INTERNAL, 13)                                                       \
	X(UNAVAILABLE, 14)                                                    \
	X(DATA_LOSS, 15)                                                      \
	X(UNAUTHENTICATED, 16)

typedef enum cs_status {
#define CS_STATUS_ENUM(name, val) CS_STATUS_##name = val,
	CS_STATUS_LIST(CS_STATUS_ENUM)
#undef CS_STATUS_ENUM
} cs_status;

/*
 * The error list: name, value, wire status, message.  The message says what
 * went wrong in words an operator understands; callers add the specifics
 * (which file, which key, which peer) in their own log line or message.
 */
#define CS_ERR_LIST(X)                                                        \
	X(OK, 0, OK, "success")                                               \
	X(EINVAL, -1, INVALID_ARGUMENT, "invalid argument")                   \
	X(ENOMEM, -2, RESOURCE_EXHAUSTED, "out of memory")                    \
	X(EIO, -3, INTERNAL, "input/output error")                            \
	X(ECONFIG, -4, INVALID_ARGUMENT, "configuration error")               \
	X(ENOENT, -5, NOT_FOUND, "no such file or object")                    \
	X(EEXIST, -6, ALREADY_EXISTS, "already exists")                       \
	X(EPERM, -7, PERMISSION_DENIED, "permission denied")                  \
	X(EUNAUTH, -8, UNAUTHENTICATED, "not authenticated")                  \
	X(EPEERAUTH, -9, UNAUTHENTICATED, "peer certificate not accepted")    \
	X(ETLS, -10, UNAVAILABLE, "TLS failure")                              \
	X(ETIMEDOUT, -11, DEADLINE_EXCEEDED, "deadline exceeded")             \
	X(EUNAVAIL, -12, UNAVAILABLE, "service unavailable")                  \
	X(ECLOSED, -13, UNAVAILABLE, "connection closed")                     \
	X(EPROTO, -14, INVALID_ARGUMENT, "malformed message")                 \
	X(ETOOBIG, -15, RESOURCE_EXHAUSTED, "message too large")              \
	X(EUNIMPL, -16, UNIMPLEMENTED, "unknown method")                      \
	X(EPRECOND, -17, FAILED_PRECONDITION, "precondition failed")          \
	X(EEXHAUSTED, -18, RESOURCE_EXHAUSTED, "resource exhausted")          \
	X(ECRYPTO, -19, INTERNAL, "cryptographic failure")                    \
	X(EHSM, -20, UNAVAILABLE, "HSM failure")                              \
	X(ESTORE, -21, INTERNAL, "store failure")                             \
	X(EADDR, -22, INVALID_ARGUMENT, "bad address or URL")                 \
	X(ECANCELED, -23, CANCELLED, "operation canceled")                    \
	X(EINTERNAL, -24, INTERNAL, "internal error")                         \
	X(EREMOTE, -25, UNKNOWN, "remote error")                              \
	X(EAGAIN, -26, UNAVAILABLE, "not ready yet; try again")

typedef enum cs_err {
#define CS_ERR_ENUM(name, val, status, msg) CS_##name = val,
	CS_ERR_LIST(CS_ERR_ENUM)
#undef CS_ERR_ENUM
} cs_err;

/* Human-readable message for err; never NULL ("unknown error" if unknown). */
const char *cs_strerror(int err);

/* Symbolic name ("CS_EINVAL") for err; never NULL. */
const char *cs_errname(int err);

/* The wire status that err is reported as. */
cs_status cs_err_to_status(int err);

/*
 * The error a client reports for a wire status it received.  OK maps to
 * CS_OK; codes with no closer match map to CS_EREMOTE.
 */
int cs_err_from_status(int status);

/* gRPC-style name of a wire status ("RESOURCE_EXHAUSTED"); never NULL. */
const char *cs_status_name(int status);

/*
 * Write the message for the caller (msg may be NULL or msglen 0: then
 * nothing) and return rv: `return cs_say(CS_EINVAL, msg, msglen, ...)`.
 */
int cs_say(int rv, char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* CLOCK_MONOTONIC in milliseconds: for deadlines and rates, never dates. */
uint64_t cs_mono_ms(void);

#endif /* CS_ERR_H */
