/*
 * fuzz_record.c - libFuzzer target for the device record parser and
 * verifier (cs_record_size, cs_verify_record), built with clang and
 * -fsanitize=fuzzer,address,undefined by tests/fuzz/run-fuzz.sh.
 *
 * The input is the record, in a buffer of exactly its size (libFuzzer's),
 * so ASan reports any read at or beyond len.  The trust table holds the
 * two keys of docs/record-format.md's worked examples and the seed corpus
 * their records, so mutations reach the signature and claim checks too.
 */
#include "countersign/verify.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Key ids and keys of the worked examples (docs/record-format.md). */
static const uint8_t p256_id[8] = {0x73, 0x75, 0x61, 0x92, 0xb0, 0xa3,
    0xf1, 0x79};
static const uint8_t ed_id[8] = {0x20, 0x46, 0xec, 0xee, 0xfa, 0x28, 0xc9,
    0xd6};
static const uint8_t p256_pub[65] = {0x04, 0x78, 0x04, 0xa7, 0x3e, 0x4a,
    0x82, 0x0f, 0x9b, 0x84, 0x4b, 0x24, 0x1f, 0x91, 0xfc, 0xe3, 0x4d,
    0x92, 0xcc, 0x83, 0x77, 0xc3, 0x92, 0xba, 0x2e, 0x4c, 0x27, 0x17,
    0xe4, 0xa1, 0xa7, 0xff, 0x54, 0x01, 0xe6, 0x17, 0x0b, 0x8c, 0x3f,
    0x2b, 0xb9, 0x68, 0xa0, 0x46, 0x55, 0x09, 0xe5, 0x00, 0x1a, 0x73,
    0xc1, 0x45, 0x78, 0x2a, 0xae, 0x33, 0xd1, 0x2a, 0x56, 0x1d, 0x48,
    0x42, 0x26, 0x93, 0x3b};
static const uint8_t ed_pub[32] = {0xfb, 0x64, 0x31, 0xdd, 0x20, 0x6b,
    0x7e, 0x67, 0x63, 0xd9, 0xa5, 0x61, 0x1b, 0x9c, 0xac, 0xd1, 0xc4,
    0xe3, 0xee, 0xdb, 0x87, 0x4d, 0xe2, 0x80, 0xde, 0xd2, 0x05, 0xaa,
    0x88, 0xcc, 0xb4, 0x59};

static const struct cs_trust_key keys[2] = {
	{CS_RECORD_ALG_P256, p256_id, p256_pub, sizeof(p256_pub)},
	{CS_RECORD_ALG_ED25519, ed_id, ed_pub, sizeof(ed_pub)},
};

static const uint8_t uid[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
    0xef};
static const uint8_t fw[32] = {0};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cs_verify_trust t = {keys, 2, 0x1234, NULL, 0};
	struct cs_record_info  info;
	cs_verify_result       r;
	size_t                 n;

	n = cs_record_size(data, size);
	if (n != 0 && (n < CS_RECORD_MIN_LEN || n > CS_RECORD_MAX_LEN)) {
		abort();
	}
	r = cs_verify_record(data, size, uid, sizeof(uid), &t, &info);
	if (r == CS_VERIFY_OK && (n != size || !info.signature_valid)) {
		abort();
	}
	/* The same bytes under the other policies. */
	t.firmware_digest         = fw;
	t.require_firmware_digest = 1;
	(void)cs_verify_record(data, size, uid, sizeof(uid), &t, NULL);
	(void)cs_verify_record(data, size, uid, size % 9, &t, NULL);
	(void)cs_verify_strerror(r);
	return 0;
}
