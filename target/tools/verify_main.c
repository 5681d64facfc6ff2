/*
 * verify_main.c - countersign-verify: check a device record on a PC with
 * the same verifier the firmware runs (cs_verify_record), and print what
 * the record says.
 *
 *   countersign-verify --key PUB.pem|PUB.der|HEADER.h --uid HEX
 *       [--product N] [--firmware-digest HEX] [--require-firmware] RECORD
 *
 * The key is what the officer exported with countersign-keytool: a
 * SubjectPublicKeyInfo (PEM or DER) or the C header firmware compiles in
 * (its byte arrays are parsed, nothing is compiled).  --key may be given up
 * to 8 times (key rotation).  Without --product the product check uses the
 * record's own product id and says so.  Exit status: 0 authorized, 1 not
 * authorized or unreadable input, 2 usage error.
 */
#include "countersign/verify.h"

#include "cs_crypto.h"
#include "cs_err.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG      "countersign-verify"
#define MAX_KEYS  8
#define FILE_MAX  65536

struct key_slot {
	uint8_t pub[CS_P256_POINT_LEN];
	uint8_t key_id[CS_KEY_ID_LEN];
	char    path[256];
};

static int
usage(FILE *fp, int status)
{
	fprintf(fp,
	    "usage: " PROG " --key PUB.pem|PUB.der|HEADER.h --uid HEX "
	    "[--product N]\n"
	    "       [--firmware-digest HEX] [--require-firmware] RECORD.bin\n"
	    "\n"
	    "Decodes a Countersign device record, prints its fields and "
	    "whether the\n"
	    "device with UID HEX is authorized by it (exit 0) or not (exit "
	    "1).\n"
	    "  --key FILE            trusted public key: SubjectPublicKeyInfo "
	    "PEM or DER,\n"
	    "                        or countersign-keytool's c-header "
	    "(repeatable)\n"
	    "  --uid HEX             the device's UID as read from the chip\n"
	    "  --product N           this firmware's product id (default: "
	    "not checked)\n"
	    "  --firmware-digest HEX SHA-256 of the firmware the device "
	    "runs\n"
	    "  --require-firmware    refuse records that bind no firmware\n");
	return status;
}

static int fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Print "countersign-verify: error: <message>"; returns 1. */
static int
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Read a whole (small) file; returns its length or -1 (errno set;
 * EFBIG when over max). */
static long
read_all(const char *path, uint8_t *buf, size_t max)
{
	FILE  *fp = fopen(path, "rb");
	size_t n;

	if (fp == NULL) {
		return -1;
	}
	n = fread(buf, 1, max, fp);
	if (ferror(fp)) {
		fclose(fp);
		errno = EIO;
		return -1;
	}
	if (n == max && fgetc(fp) != EOF) {
		fclose(fp);
		errno = EFBIG;
		return -1;
	}
	fclose(fp);
	return (long)n;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Parse an even-length hex string (an optional "0x" prefix, no spaces)
 * into out; returns the byte count or -1. */
static long
parse_hex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
	}
	if (strlen(s) % 2 != 0 || strlen(s) / 2 > max) {
		return -1;
	}
	for (; s[0] != '\0'; s += 2) {
		int hi = hexval(s[0]), lo = hexval(s[1]);
		if (hi < 0 || lo < 0) {
			return -1;
		}
		out[n++] = (uint8_t)(hi << 4 | lo);
	}
	return (long)n;
}

/* The bytes of "static const unsigned char NAME[N] = { 0x.., ... };" in
 * text; returns the count or -1 when missing or malformed. */
static long
header_array(const char *text, const char *name, uint8_t *out, size_t max)
{
	const char *p = strstr(text, name), *end;
	size_t      n = 0;

	if (p == NULL || (p = strchr(p, '{')) == NULL ||
	    (end = strchr(p, '}')) == NULL) {
		return -1;
	}
	for (p++; p < end;) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',' ||
		    *p == '\r') {
			p++;
			continue;
		}
		if (end - p < 4 || p[0] != '0' ||
		    (p[1] != 'x' && p[1] != 'X') ||
		    hexval(p[2]) < 0 || hexval(p[3]) < 0 || n == max) {
			return -1;
		}
		out[n++] = (uint8_t)(hexval(p[2]) << 4 | hexval(p[3]));
		p += 4;
	}
	return (long)n;
}

/* Load one trusted key from path into k (and its slot). */
static int
load_key(const char *path, struct cs_trust_key *k, struct key_slot *slot)
{
	static uint8_t buf[FILE_MAX + 1];
	uint8_t        der[512];
	const char    *s;
	size_t         pub_len = 0;
	long           n, m;
	cs_alg         alg = CS_ALG_NONE;
	int            rv;

	if ((n = read_all(path, buf, FILE_MAX)) < 0) {
		return fail("cannot read key file %s: %s", path,
		    strerror(errno));
	}
	buf[n] = '\0';
	snprintf(slot->path, sizeof(slot->path), "%s", path);
	if ((s = strstr((char *)buf, "CS_TRUST_KEY_ALG")) != NULL) {
		/* countersign-keytool export --format c-header */
		long a = strtol(s + strlen("CS_TRUST_KEY_ALG"), NULL, 10);
		uint8_t id[CS_KEY_ID_LEN];

		m = header_array((char *)buf, "cs_trust_public_key", slot->pub,
		    sizeof(slot->pub));
		if ((a != CS_ALG_P256 && a != CS_ALG_ED25519) || m < 0 ||
		    header_array((char *)buf, "cs_trust_key_id", id,
			sizeof(id)) != (long)sizeof(id)) {
			return fail("%s is not a countersign-keytool c-header "
			    "key", path);
		}
		/* Recompute the key id: the header's must be the key's. */
		alg     = (cs_alg)a;
		pub_len = (size_t)m;
		size_t dlen;
		if (cs_spki_encode(alg, slot->pub, pub_len, der, sizeof(der),
			&dlen) != CS_OK ||
		    cs_key_id(der, dlen, slot->key_id) != CS_OK) {
			return fail("%s: the public key is malformed", path);
		}
		if (memcmp(id, slot->key_id, sizeof(id)) != 0) {
			return fail("%s: cs_trust_key_id is not the key id of "
			    "cs_trust_public_key", path);
		}
	} else {
		long dlen = n;

		if (strstr((char *)buf, "-----BEGIN PUBLIC KEY-----") !=
		    NULL) {
			dlen = wc_PubKeyPemToDer(buf, (int)n, der,
			    sizeof(der));
			if (dlen <= 0) {
				return fail("%s: bad PEM public key", path);
			}
		} else if ((size_t)n <= sizeof(der)) {
			memcpy(der, buf, (size_t)n);
		} else {
			return fail("%s: not a public key", path);
		}
		rv = cs_spki_decode(der, (size_t)dlen, &alg, slot->pub,
		    &pub_len);
		if (rv != CS_OK ||
		    cs_key_id(der, (size_t)dlen, slot->key_id) != CS_OK) {
			return fail("%s is not a P-256 or Ed25519 public key "
			    "(SubjectPublicKeyInfo PEM/DER or c-header)",
			    path);
		}
	}
	k->alg     = (uint8_t)alg;
	k->key_id  = slot->key_id;
	k->pub     = slot->pub;
	k->pub_len = pub_len;
	return 0;
}

static void
print_hex(const char *label, const uint8_t *p, size_t n)
{
	printf("%-14s ", label);
	for (size_t i = 0; i < n; i++) {
		printf("%02x", p[i]);
	}
	printf("\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"uid", required_argument, NULL, 'u'},
	    {"product", required_argument, NULL, 'p'},
	    {"firmware-digest", required_argument, NULL, 'f'},
	    {"require-firmware", no_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static uint8_t         rec[FILE_MAX];
	static struct key_slot slots[MAX_KEYS];
	struct cs_trust_key    keys[MAX_KEYS];
	struct cs_verify_trust trust;
	struct cs_record_info  info;
	const char            *key_paths[MAX_KEYS], *uid_hex = NULL;
	const char            *product = NULL, *fw_hex = NULL;
	uint8_t                uid[CS_RECORD_UID_MAX];
	uint8_t                fw[CS_RECORD_FW_DIGEST_LEN];
	size_t                 n_keys = 0;
	long                   uid_len, n;
	int                    c, require_fw = 0;
	cs_verify_result       r;

	while ((c = getopt_long(argc, argv, "k:u:p:f:rh", longopts, NULL)) !=
	    -1) {
		switch (c) {
		case 'k':
			if (n_keys == MAX_KEYS) {
				fprintf(stderr, PROG ": error: at most %d "
				    "--key options\n", MAX_KEYS);
				return 2;
			}
			key_paths[n_keys++] = optarg;
			break;
		case 'u':
			uid_hex = optarg;
			break;
		case 'p':
			product = optarg;
			break;
		case 'f':
			fw_hex = optarg;
			break;
		case 'r':
			require_fw = 1;
			break;
		case 'h':
			return usage(stdout, 0);
		default:
			return usage(stderr, 2);
		}
	}
	if (n_keys == 0 || uid_hex == NULL || optind != argc - 1) {
		fprintf(stderr, PROG ": error: %s\n",
		    n_keys == 0		 ? "--key is required"
			: uid_hex == NULL ? "--uid is required"
					  : "give exactly one RECORD file");
		return usage(stderr, 2);
	}
	uid_len = parse_hex(uid_hex, uid, sizeof(uid));
	if (uid_len < 1) {
		fprintf(stderr, PROG ": error: --uid: 1 to 32 bytes as hex "
		    "digits, e.g. 0011223344556677\n");
		return 2;
	}
	memset(&trust, 0, sizeof(trust));
	if (fw_hex != NULL) {
		if (parse_hex(fw_hex, fw, sizeof(fw)) != (long)sizeof(fw)) {
			fprintf(stderr, PROG ": error: --firmware-digest: 64 "
			    "hex digits (SHA-256)\n");
			return 2;
		}
		trust.firmware_digest = fw;
	}
	for (size_t i = 0; i < n_keys; i++) {
		if (load_key(key_paths[i], &keys[i], &slots[i]) != 0) {
			return 1;
		}
	}
	if ((n = read_all(argv[optind], rec, sizeof(rec))) < 0) {
		return fail("cannot read record %s: %s", argv[optind],
		    errno == EFBIG ? "larger than 64 KiB" : strerror(errno));
	}
	trust.keys                    = keys;
	trust.n_keys                  = n_keys;
	trust.require_firmware_digest = require_fw;
	if (product != NULL) {
		char         *end;
		unsigned long v;

		errno = 0;
		v     = strtoul(product, &end, 0);
		if (errno != 0 || *end != '\0' || end == product ||
		    product[0] == '-' || v > 0xFFFFFFFFul) {
			fprintf(stderr, PROG ": error: --product: a number "
			    "0..4294967295\n");
			return 2;
		}
		trust.product_id = (uint32_t)v;
	} else if (n >= (long)CS_RECORD_HEADER_LEN) {
		/* Not checked: take the record's own value. */
		const uint8_t *p = rec + CS_RECORD_OFF_PRODUCT;
		trust.product_id = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	}

	r = cs_verify_record(rec, (size_t)n, uid, (size_t)uid_len, &trust,
	    &info);

	printf("%-14s %s (%ld bytes)\n", "record:", argv[optind], n);
	if (info.parsed) {
		printf("%-14s %u\n", "version:", info.version);
		printf("%-14s %u (%s)\n", "algorithm:", info.alg,
		    info.alg == CS_RECORD_ALG_P256      ? "ECDSA P-256/SHA-256"
			: info.alg == CS_RECORD_ALG_ED25519 ? "Ed25519"
							    : "unknown");
		printf("%-14s 0x%02x\n", "flags:", info.flags);
		print_hex("key id:", info.key_id, sizeof(info.key_id));
		printf("%-14s %lu%s\n", "product:",
		    (unsigned long)info.product_id,
		    product == NULL ? " (not checked: no --product)" : "");
		printf("%-14s %lu\n", "serial:", (unsigned long)info.serial);
		print_hex("order hash:", info.order_hash,
		    sizeof(info.order_hash));
		print_hex("uid:", info.uid, info.uid_len);
		if (info.flags & CS_RECORD_FLAG_FIRMWARE) {
			print_hex("firmware:", info.firmware_digest,
			    sizeof(info.firmware_digest));
		} else {
			printf("%-14s not bound\n", "firmware:");
		}
		print_hex("signature:", info.signature,
		    sizeof(info.signature));
	}
	if (CS_VERIFY_AUTHORIZED(r)) {
		printf("%-14s authorized (key %s)\n", "verdict:",
		    slots[info.key_index].path);
		return 0;
	}
	printf("%-14s UNAUTHORIZED (%s: %s)\n", "verdict:", cs_verify_name(r),
	    cs_verify_strerror(r));
	return 1;
}
