/*
 * measure.c - the example firmware's own digest, computed the way the
 * station and the authority compute it from the ELF (common/cs_image.c,
 * image_digest): SHA-256 over the bytes from the image's first to its
 * last loaded byte, the record area left out.  Gaps inside the span are
 * whatever flash holds there; the station programs them as 0xFF, which is
 * what the other two sides count, and this image's linker script leaves
 * none (lm3s6965.ld).
 *
 * It lives in the example, not in the verifier library: where an image
 * starts and ends is the firmware's own linker script's business, and the
 * verifier only compares 32 bytes (trust->firmware_digest).  A firmware
 * that adopts the scheme copies this file and the four symbols.  In this
 * layout the record page lies above the image; the cut around it is kept
 * so that the file is right for layouts where the record sits between
 * two parts of the image (station/targets/stm32f407.ini).
 *
 * Failing closed: a digest that was not computed (a glitch that skips the
 * call or corrupts the hash) is all 0x00 or wrong, and a record bound to
 * this image then fails with FIRMWARE_MISMATCH; nothing here can turn a
 * mismatch into a match.
 */
#include "measure.h"

#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <stddef.h>
#include <string.h>

/* From the linker script: only their addresses mean anything. */
extern const uint8_t __cs_image_start[], __cs_image_end[];
extern const uint8_t __cs_record_start[], __cs_record_end[];

/* Hash [lo, hi) of flash (nothing when empty). */
static int
hash_range(wc_Sha256 *sha, uintptr_t lo, uintptr_t hi)
{
	uint8_t first;
	int     rc;

	if (lo >= hi) {
		return 0;
	}
	/* The first byte goes through a copy: this part's flash, and the
	 * image, start at address 0, and wolfCrypt refuses a NULL data
	 * pointer (BAD_FUNC_ARG). */
	first = *(const uint8_t *)lo;
	if ((rc = wc_Sha256Update(sha, &first, 1)) != 0) {
		return rc;
	}
	return wc_Sha256Update(sha, (const uint8_t *)(lo + 1),
	    (word32)(hi - lo - 1));
}

int
cs_fw_measure(uint8_t digest[32])
{
	const uintptr_t lo  = (uintptr_t)__cs_image_start;
	const uintptr_t hi  = (uintptr_t)__cs_image_end;
	const uintptr_t rlo = (uintptr_t)__cs_record_start;
	const uintptr_t rhi = (uintptr_t)__cs_record_end;
	wc_Sha256       sha;
	int             rc;

	if (wc_InitSha256(&sha) != 0) {
		memset(digest, 0, 32);
		return -1;
	}
	if (hi <= rlo || lo >= rhi) {
		rc = hash_range(&sha, lo, hi);
	} else {
		/* The record area lies inside the span: measure around it. */
		rc = hash_range(&sha, lo, rlo < lo ? lo : rlo);
		if (rc == 0) {
			rc = hash_range(&sha, rhi > hi ? hi : rhi, hi);
		}
	}
	if (rc == 0) {
		rc = wc_Sha256Final(&sha, digest);
	}
	wc_Sha256Free(&sha);
	if (rc != 0) {
		memset(digest, 0, 32);
		return -1;
	}
	return 0;
}
