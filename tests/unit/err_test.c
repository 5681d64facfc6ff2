/*
 * err_test.c - cs_err: strings, names, and the wire status mapping, which
 * must agree with the StatusCode enum of proto/countersign/v1/rpc.proto.
 */
#include "countersign/v1/rpc.pb-c.h"
#include "cs_err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

static void
test_status_matches_proto(void **state)
{
	const ProtobufCEnumDescriptor *d =
	    &countersign__v1__status_code__descriptor;
	(void)state;
	assert_int_equal(d->n_values, 17);
	for (unsigned i = 0; i < d->n_values; i++) {
		assert_string_equal(cs_status_name(d->values[i].value),
		    d->values[i].name);
	}
}

static void
test_every_error_has_text(void **state)
{
	(void)state;
#define CHECK(name, val, status, msg)                                         \
	assert_string_equal(cs_strerror(val), msg);                           \
	assert_string_equal(cs_errname(val), "CS_" #name);                    \
	assert_int_equal(cs_err_to_status(val), CS_STATUS_##status);
	CS_ERR_LIST(CHECK)
#undef CHECK
	assert_string_equal(cs_strerror(-999), "unknown error");
	assert_int_equal(cs_err_to_status(-999), CS_STATUS_UNKNOWN);
}

static void
test_status_round_trip(void **state)
{
	(void)state;
	/* Errors a client acts on survive the trip over the wire. */
	static const int errs[] = {CS_OK, CS_EINVAL, CS_ENOENT, CS_EEXIST,
	    CS_EPERM, CS_EUNAUTH, CS_ETIMEDOUT, CS_EUNAVAIL, CS_EUNIMPL,
	    CS_EPRECOND, CS_EEXHAUSTED, CS_EINTERNAL, CS_ECANCELED};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		assert_int_equal(
		    cs_err_from_status(cs_err_to_status(errs[i])), errs[i]);
	}
	assert_int_equal(cs_err_from_status(99), CS_EREMOTE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_matches_proto),
	    cmocka_unit_test(test_every_error_has_text),
	    cmocka_unit_test(test_status_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
