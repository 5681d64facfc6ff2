/*
 * main.c - example boot check for QEMU's lm3s6965evb: is this device
 * authorized to run this firmware?
 *
 * Reads the device UID from the UID mailbox in RAM (0x2000FF00, 8 bytes;
 * each emulated device gets its own with -device loader), the device
 * record from its flash page (0x0003F000), verifies it against the public
 * key compiled in (trust_key.h, from countersign-keytool export --format
 * c-header) and this firmware's product id, prints the verdict through
 * semihosting and exits 0 (authorized) or 1.
 *
 * Before that it measures itself (measure.c): a record that binds a
 * firmware digest is accepted only by the image it was issued for.
 * Records without a digest are still accepted (require_firmware_digest
 * is 0); a product that wants every record bound sets it to 1.
 *
 * It also reports the stack high-water mark of the whole run.  The
 * measuring and the verify call are each bracketed by two empty marker
 * functions so that target/cortex-m/count-insns.sh can count the
 * instructions they execute from QEMU's execution trace.
 */
#include "countersign/verify.h"
#include "measure.h"
#include "semihost.h"
#include "trust_key.h"

#include <stdint.h>

#define CS_UID_ADDR    0x2000FF00u
#define CS_UID_LEN     8u
#define CS_RECORD_ADDR 0x0003F000u

#ifndef CS_FW_PRODUCT_ID
#error "build with -DCS_FW_PRODUCT_ID=<this firmware's product id>"
#endif

extern uint32_t __stack_limit, __stack_top;

/* Markers around the measuring and the verify for instruction counting
 * (count-insns.sh). */
void cs_mark_measure_start(void) __attribute__((noinline));
void cs_mark_measure_end(void) __attribute__((noinline));
void cs_mark_verify_start(void) __attribute__((noinline));
void cs_mark_verify_end(void) __attribute__((noinline));

void
cs_mark_measure_start(void)
{
	__asm__ volatile("" ::: "memory");
}

void
cs_mark_measure_end(void)
{
	__asm__ volatile("" ::: "memory");
}

void
cs_mark_verify_start(void)
{
	__asm__ volatile("" ::: "memory");
}

void
cs_mark_verify_end(void)
{
	__asm__ volatile("" ::: "memory");
}

static const struct cs_trust_key trust_keys[1] = {
	{CS_TRUST_KEY_ALG, cs_trust_key_id, cs_trust_public_key,
	    CS_TRUST_KEY_LEN},
};

/* This image's digest, filled by cs_fw_measure before the verify (in
 * .bss, so that main's frame stays as small as it was). */
static uint8_t firmware_digest[32];

static const struct cs_verify_trust trust = {
	.keys                    = trust_keys,
	.n_keys                  = 1,
	.product_id              = CS_FW_PRODUCT_ID,
	.firmware_digest         = firmware_digest,
	.require_firmware_digest = 0,
};

static void
put_u32(char *buf, uint32_t v)
{
	char   tmp[11];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v != 0);
	while (n > 0) {
		*buf++ = tmp[--n];
	}
	*buf = '\0';
}

static void
say(const char *a, uint32_t v)
{
	char num[11];

	cs_semihost_write(a);
	put_u32(num, v);
	cs_semihost_write(num);
}

/* How much of the painted stack was overwritten (bytes). */
static uint32_t
stack_high_water(void)
{
	const uint32_t *p = &__stack_limit;

	while (p < &__stack_top && *p == 0xC5C5C5C5u) {
		p++;
	}
	return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}

int
main(void)
{
	const uint8_t    *record = (const uint8_t *)CS_RECORD_ADDR;
	uint8_t           uid[CS_UID_LEN];
	size_t            len;
	cs_verify_result  r;

	for (size_t i = 0; i < CS_UID_LEN; i++) {
		uid[i] = ((const volatile uint8_t *)CS_UID_ADDR)[i];
	}
	/* The header says how long the record is; an empty or foreign page
	 * is checked as a 32-byte header and fails with its reason. */
	len = cs_record_size(record, CS_RECORD_HEADER_LEN);
	if (len == 0) {
		len = CS_RECORD_HEADER_LEN;
	}

	cs_mark_measure_start();
	if (cs_fw_measure(firmware_digest) != 0) {
		/* Fail closed: never verify against a digest not computed. */
		cs_semihost_write("countersign: UNAUTHORIZED DEVICE "
		    "(measuring failed)\n");
		return 1;
	}
	cs_mark_measure_end();

	cs_mark_verify_start();
	r = cs_verify_record(record, len, uid, sizeof(uid), &trust, 0);
	cs_mark_verify_end();

	say("countersign: stack high-water mark ", stack_high_water());
	cs_semihost_write(" bytes\n");

	if (CS_VERIFY_AUTHORIZED(r)) {
		/* Decide twice: a glitch that skipped the first test does
		 * not skip this one as well. */
		if (r != CS_VERIFY_OK) {
			cs_semihost_write("countersign: UNAUTHORIZED DEVICE "
			    "(FAULT)\n");
			return 1;
		}
		cs_semihost_write("countersign: device authorized\n");
		return 0;
	}
	cs_semihost_write("countersign: UNAUTHORIZED DEVICE (");
	cs_semihost_write(cs_verify_name(r));
	cs_semihost_write(")\n");
	return 1;
}
