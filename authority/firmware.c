/*
 * firmware.c - held firmware images (firmware.h): profiles by name, the
 * check of an officer's image, sealing at rest and the chunks stations
 * fetch.
 */
#include "firmware.h"

#include "cs_auth.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define LOG_MOD "firmware"

#ifndef CS_TARGETS_DIR
#error "CS_TARGETS_DIR (the installed target profiles) must be defined"
#endif

static const char chunk_ctx[] = "countersign-fw-chunk-v1";
static const char key_ctx[]   = "countersign-fw-key-v1";

/* Room for either AAD: context NUL order_id NUL and 12 bytes. */
#define AAD_MAX (32u + STORE_ORDER_ID_MAX + 2u + 12u)

/* One station's budget of fetch starts (a token bucket). */
struct budget {
	char     station[CS_AUTH_NAME_MAX + 1]; /* "": free */
	uint64_t stamp_ms; /* when tokens was last brought up to date */
	uint32_t tokens;   /* in 1/FIRMWARE_FETCH_REFILL_S units of a start */
	bool     warned;   /* the refusal was logged since it last had one */
};

struct firmware {
	cs_hsm         *hsm;
	char           *key_label;
	char           *dir; /* configured targets_dir, or NULL */
	const char     *dirs[3];
	pthread_mutex_t mtx;
	struct budget   budgets[FIRMWARE_BUDGETS];
};

int
firmware_open(firmware **out, const struct firmware_opts *o)
{
	firmware *fw;

	if (out == NULL || o == NULL) {
		return CS_EINVAL;
	}
	*out = NULL;
	if ((fw = calloc(1, sizeof(*fw))) == NULL) {
		return CS_ENOMEM;
	}
	if (pthread_mutex_init(&fw->mtx, NULL) != 0) {
		free(fw);
		return CS_ENOMEM;
	}
	fw->hsm = o->hsm;
	if ((o->key_label != NULL &&
	        (fw->key_label = strdup(o->key_label)) == NULL) ||
	    (o->targets_dir != NULL &&
	        (fw->dir = strdup(o->targets_dir)) == NULL)) {
		firmware_close(fw);
		return CS_ENOMEM;
	}
	if (fw->dir != NULL) {
		fw->dirs[0] = fw->dir;
	} else {
		fw->dirs[0] = FIRMWARE_ETC_TARGETS;
		fw->dirs[1] = CS_TARGETS_DIR;
	}
	*out = fw;
	return CS_OK;
}

void
firmware_close(firmware *fw)
{
	if (fw == NULL) {
		return;
	}
	pthread_mutex_destroy(&fw->mtx);
	free(fw->key_label);
	free(fw->dir);
	free(fw);
}

const char *
firmware_key_label(const firmware *fw)
{
	return fw != NULL ? fw->key_label : NULL;
}

/* ------------------------------------------------------------------ */
/* Profiles and images                                                 */

static bool
profile_name_ok(const char *name)
{
	size_t i, n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > TARGET_NAME_MAX || name[0] == '.') {
		return false;
	}
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		        c == '-')) {
			return false;
		}
	}
	return true;
}

int
firmware_target(const firmware *fw, const char *name, struct target *t,
    char *msg, size_t msglen)
{
	char err[1024];
	int  rv;

	if (fw == NULL || t == NULL) {
		return CS_EINVAL;
	}
	if (!profile_name_ok(name)) {
		return cs_say(CS_EINVAL, msg, msglen, "a target is a profile name "
		    "(1..%u characters of A-Z a-z 0-9 . _ -), not a path",
		    TARGET_NAME_MAX);
	}
	rv = target_load(t, name, fw->dirs, err, sizeof(err));
	if (rv == CS_ENOENT) {
		return cs_say(rv, msg, msglen, "unknown target %s: %s", name, err);
	}
	if (rv != CS_OK) {
		cs_log_error(LOG_MOD, "target profile unusable target=%s "
		    "err=\"%s\"", name, err);
		return cs_say(rv, msg, msglen, "target profile %s cannot be "
		    "used: %s", name, err);
	}
	return CS_OK;
}

void
firmware_image_free(struct image *img)
{
	if (img == NULL) {
		return;
	}
	for (size_t i = 0; i < img->nseg; i++) {
		cs_wipe(img->seg[i].data, img->seg[i].len);
	}
	image_free(img);
}

int
firmware_image(struct image *img,
    Countersign__V1__FirmwareSegment *const *segs, size_t n, char *msg,
    size_t msglen)
{
	uint64_t total = 0, end = 0;
	size_t   i;

	memset(img, 0, sizeof(*img));
	if (n == 0 || n > IMAGE_MAX_SEGMENTS) {
		return cs_say(CS_EINVAL, msg, msglen, "an image has 1..%u "
		    "segments, this one %zu", IMAGE_MAX_SEGMENTS, n);
	}
	for (i = 0; i < n; i++) {
		const Countersign__V1__FirmwareSegment *s = segs[i];

		if (s == NULL || s->data.len == 0 ||
		    (uint64_t)s->addr + s->data.len > (1ull << 32)) {
			return cs_say(CS_EINVAL, msg, msglen, "segment %zu is empty "
			    "or runs past the 4 GiB address space", i);
		}
		if (i > 0 && s->addr < end) {
			return cs_say(CS_EINVAL, msg, msglen, "segment %zu at "
			    "0x%08x overlaps or precedes the one before it "
			    "(segments must ascend)", i, s->addr);
		}
		end = (uint64_t)s->addr + s->data.len;
		total += s->data.len;
		if (total > FIRMWARE_MAX_BYTES) {
			return cs_say(CS_ETOOBIG, msg, msglen, "the image has more "
			    "than %u bytes (the most an order holds)",
			    FIRMWARE_MAX_BYTES);
		}
	}
	for (i = 0; i < n; i++) {
		struct image_segment *d = &img->seg[i];

		if ((d->data = malloc(segs[i]->data.len)) == NULL) {
			firmware_image_free(img);
			return cs_say(CS_ENOMEM, msg, msglen, "out of memory");
		}
		memcpy(d->data, segs[i]->data.data, segs[i]->data.len);
		d->addr = segs[i]->addr;
		d->len  = (uint32_t)segs[i]->data.len;
		img->nseg++;
	}
	img->bytes = total;
	return CS_OK;
}

int
firmware_check(const struct target *t, const struct image *img,
    const ProtobufCBinaryData *want, uint8_t digest[32], char *msg,
    size_t msglen)
{
	char err[512], a[65], b[65];
	int  rv;

	if (image_check(img, t, err, sizeof(err)) != CS_OK) {
		return cs_say(CS_EINVAL, msg, msglen, "the image does not fit "
		    "target %s: %s", t->name, err);
	}
	if ((rv = image_digest(img, t, digest)) != CS_OK) {
		return cs_say(rv, msg, msglen, "cannot compute the image's "
		    "digest (%s)", cs_strerror(rv));
	}
	if (want != NULL && want->len != 0 &&
	    (want->len != 32 || memcmp(want->data, digest, 32) != 0)) {
		cs_hex_encode(digest, 32, a, sizeof(a));
		cs_hex_encode(want->data, want->len > 32 ? 32 : want->len, b,
		    sizeof(b));
		return cs_say(CS_EINVAL, msg, msglen, "the image's digest on "
		    "target %s is %s, not the firmware_sha256 given (%s): "
		    "nothing was changed", t->name, a, b);
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* Sealing                                                             */

static size_t
aad_build(uint8_t *out, const char *ctx, const char *order_id,
    const uint32_t *nums, size_t n)
{
	size_t o = 0, l;

	l = strlen(ctx) + 1;
	memcpy(out + o, ctx, l);
	o += l;
	l = strlen(order_id) + 1;
	memcpy(out + o, order_id, l);
	o += l;
	for (size_t i = 0; i < n; i++) {
		out[o++] = (uint8_t)(nums[i] >> 24);
		out[o++] = (uint8_t)(nums[i] >> 16);
		out[o++] = (uint8_t)(nums[i] >> 8);
		out[o++] = (uint8_t)nums[i];
	}
	return o;
}

static void
chunk_nonce(uint8_t nonce[CS_GCM_NONCE_LEN], uint32_t version,
    uint32_t index)
{
	memset(nonce, 0, CS_GCM_NONCE_LEN);
	nonce[0]  = (uint8_t)(version >> 24);
	nonce[1]  = (uint8_t)(version >> 16);
	nonce[2]  = (uint8_t)(version >> 8);
	nonce[3]  = (uint8_t)version;
	nonce[8]  = (uint8_t)(index >> 24);
	nonce[9]  = (uint8_t)(index >> 16);
	nonce[10] = (uint8_t)(index >> 8);
	nonce[11] = (uint8_t)index;
}

static int
key_missing(const firmware *fw, char *msg, size_t msglen)
{
	return cs_say(CS_EPRECOND, msg, msglen, "no firmware key is configured: "
	    "an order cannot hold its image.  The officer makes one "
	    "(countersign-keytool keygen --label fw-key --alg aes256) and "
	    "names it in [hsm] firmware_key; or create the order with "
	    "--digest-only%s", fw != NULL && fw->hsm == NULL
	        ? " (this authority has no [hsm] section)" : "");
}

int
firmware_seal(firmware *fw, store_txn *txn, const char *order_id,
    uint32_t version, const struct target *t, const struct image *img,
    const uint8_t digest[32], StoredFirmware *row, uint8_t **keep,
    char *msg, size_t msglen)
{
	uint8_t  dkey[CS_AES256_KEY_LEN], nonce[CS_GCM_NONCE_LEN];
	uint8_t  aad[AAD_MAX];
	uint8_t *flat = NULL, *sealed = NULL, *mem = NULL;
	uint32_t base = 0, chunks, nums[3];
	size_t   flen = 0, alen, wlen = 0;
	int      rv;

	*keep = NULL;
	if (fw == NULL || fw->hsm == NULL || fw->key_label == NULL) {
		return key_missing(fw, msg, msglen);
	}
	if ((rv = image_flatten(img, t, &base, &flat, &flen)) != CS_OK) {
		return cs_say(rv, msg, msglen, "cannot lay out the image (%s)",
		    cs_strerror(rv));
	}
	if (flen == 0 || flen > FIRMWARE_MAX_BYTES) {
		rv = cs_say(CS_ETOOBIG, msg, msglen, "the image spans %zu bytes; "
		    "an order holds at most %u", flen, FIRMWARE_MAX_BYTES);
		goto out;
	}
	chunks = (uint32_t)((flen + FIRMWARE_CHUNK - 1) / FIRMWARE_CHUNK);
	/* mem: wrapped key, then the digest, kept for the row. */
	if ((mem = malloc(CS_HSM_SEALED_MAX + 32)) == NULL ||
	    (sealed = malloc(FIRMWARE_CHUNK + CS_GCM_TAG_LEN)) == NULL) {
		rv = cs_say(CS_ENOMEM, msg, msglen, "out of memory");
		goto out;
	}
	if (getrandom(dkey, sizeof(dkey), 0) != (ssize_t)sizeof(dkey)) {
		rv = cs_say(CS_ECRYPTO, msg, msglen, "no random bytes for the "
		    "image's key");
		goto out;
	}
	{
		/* A key the token would hand out protects nothing. */
		struct cs_hsm_secret info;

		if (cs_hsm_secret_info(fw->hsm, fw->key_label, &info) == CS_OK &&
		    (!info.sensitive || info.extractable ||
		        info.value_readable)) {
			rv = cs_say(CS_EPRECOND, msg, msglen, "the firmware key "
			    "\"%s\" is not protected by the token (it can be "
			    "read out): make a new one with countersign-keytool "
			    "keygen --alg aes256 and name it in [hsm] "
			    "firmware_key", fw->key_label);
			goto out;
		}
	}
	nums[0] = version;
	alen    = aad_build(aad, key_ctx, order_id, nums, 1);
	rv = cs_hsm_seal(fw->hsm, fw->key_label, aad, alen, dkey, sizeof(dkey),
	    mem, &wlen);
	if (rv != CS_OK) {
		cs_log_error(LOG_MOD, "cannot seal the data key order=%s "
		    "key=%s err=%s", order_id, fw->key_label, cs_strerror(rv));
		if (rv == CS_ENOENT) {
			rv = cs_say(CS_EPRECOND, msg, msglen, "the firmware key "
			    "\"%s\" ([hsm] firmware_key) is not on the token: "
			    "make it with countersign-keytool keygen --label %s "
			    "--alg aes256", fw->key_label, fw->key_label);
		} else {
			rv = cs_say(rv, msg, msglen, "the HSM could not seal the "
			    "image's key (%s): nothing was changed",
			    cs_strerror(rv));
		}
		goto out;
	}
	for (uint32_t i = 0; i < chunks; i++) {
		size_t off = (size_t)i * FIRMWARE_CHUNK;
		size_t n   = flen - off < FIRMWARE_CHUNK ? flen - off
		                                         : FIRMWARE_CHUNK;

		nums[0] = version;
		nums[1] = i;
		nums[2] = chunks;
		alen    = aad_build(aad, chunk_ctx, order_id, nums, 3);
		chunk_nonce(nonce, version, i);
		if ((rv = cs_aes_gcm_seal(dkey, nonce, aad, alen, flat + off, n,
		         sealed)) != CS_OK) {
			rv = cs_say(rv, msg, msglen, "cannot encrypt the image");
			goto out;
		}
		if ((rv = store_fwchunk_put(txn, order_id, version, i, sealed,
		         n + CS_GCM_TAG_LEN)) != CS_OK) {
			goto out; /* the caller words store errors */
		}
	}
	memcpy(mem + CS_HSM_SEALED_MAX, digest, 32);
	countersign__v1__stored_firmware__init(row);
	row->order_id         = (char *)order_id;
	row->version          = version;
	row->base_addr        = base;
	row->size             = flen;
	row->sha256.data      = mem + CS_HSM_SEALED_MAX;
	row->sha256.len       = 32;
	row->key_label        = fw->key_label;
	row->wrapped_key.data = mem;
	row->wrapped_key.len  = wlen;
	row->chunk_size       = FIRMWARE_CHUNK;
	row->chunks           = chunks;
	row->withdrawn        = false;
	row->created_unix_s   = (uint64_t)time(NULL);
	row->target           = (char *)t->name;
	if ((rv = store_firmware_put(txn, row)) != CS_OK) {
		goto out;
	}
	*keep = mem;
	mem   = NULL;
	rv    = CS_OK;
out:
	cs_wipe(dkey, sizeof(dkey));
	if (flat != NULL) {
		cs_wipe(flat, flen);
		free(flat);
	}
	free(sealed); /* ciphertext: nothing secret */
	free(mem);
	return rv;
}

int
firmware_chunk(firmware *fw, store_txn *txn, const StoredFirmware *f,
    uint32_t index, uint8_t out[FIRMWARE_CHUNK], size_t *len)
{
	uint8_t  dkey[CS_HSM_SEAL_MAX], nonce[CS_GCM_NONCE_LEN];
	uint8_t  aad[AAD_MAX];
	uint8_t *sealed = NULL;
	uint32_t nums[3];
	size_t   alen, klen = 0, slen = 0, want;
	int      rv;

	*len = 0;
	if (fw == NULL || fw->hsm == NULL) {
		return CS_EPRECOND;
	}
	if (f->chunks == 0 || index >= f->chunks ||
	    f->chunk_size != FIRMWARE_CHUNK ||
	    f->size > (uint64_t)f->chunks * FIRMWARE_CHUNK ||
	    f->size <= (uint64_t)(f->chunks - 1) * FIRMWARE_CHUNK) {
		cs_log_error(LOG_MOD, "stored firmware row is inconsistent "
		    "order=%s version=%u chunks=%u size=%llu", f->order_id,
		    f->version, f->chunks, (unsigned long long)f->size);
		return CS_ESTORE;
	}
	want = index + 1 < f->chunks
	    ? FIRMWARE_CHUNK
	    : (size_t)(f->size - (uint64_t)index * FIRMWARE_CHUNK);
	if ((sealed = malloc(FIRMWARE_CHUNK + CS_GCM_TAG_LEN)) == NULL) {
		return CS_ENOMEM;
	}
	rv = store_fwchunk_get(txn, f->order_id, f->version, index, sealed,
	    FIRMWARE_CHUNK + CS_GCM_TAG_LEN, &slen);
	if (rv != CS_OK || slen != want + CS_GCM_TAG_LEN) {
		cs_log_error(LOG_MOD, "stored firmware chunk missing or of the "
		    "wrong size order=%s version=%u index=%u len=%zu err=%s",
		    f->order_id, f->version, index, slen, cs_strerror(rv));
		rv = rv == CS_OK || rv == CS_ENOENT || rv == CS_ETOOBIG
		    ? CS_ESTORE : rv;
		goto out;
	}
	/* The row names the key that sealed it: a key relabelled or the
	 * config changed later still opens what is stored. */
	nums[0] = f->version;
	alen    = aad_build(aad, key_ctx, f->order_id, nums, 1);
	rv = cs_hsm_unseal(fw->hsm, f->key_label, aad, alen,
	    f->wrapped_key.data, f->wrapped_key.len, dkey, &klen);
	if (rv == CS_OK && klen != CS_AES256_KEY_LEN) {
		rv = CS_ECRYPTO;
	}
	if (rv != CS_OK) {
		cs_log_error(LOG_MOD, "cannot unseal the image's key order=%s "
		    "version=%u key=%s err=%s", f->order_id, f->version,
		    f->key_label, cs_strerror(rv));
		goto out;
	}
	nums[0] = f->version;
	nums[1] = index;
	nums[2] = f->chunks;
	alen    = aad_build(aad, chunk_ctx, f->order_id, nums, 3);
	chunk_nonce(nonce, f->version, index);
	rv = cs_aes_gcm_open(dkey, nonce, aad, alen, sealed, slen, out);
	if (rv != CS_OK) {
		cs_log_error(LOG_MOD, "stored firmware chunk failed its "
		    "integrity check (the store was changed) order=%s "
		    "version=%u index=%u", f->order_id, f->version, index);
		goto out;
	}
	*len = want;
out:
	cs_wipe(dkey, sizeof(dkey));
	free(sealed);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Fetch starts per station                                            */

bool
firmware_fetch_admit(firmware *fw, const char *station, bool *log)
{
	const uint32_t full = FIRMWARE_FETCH_BURST * FIRMWARE_FETCH_REFILL_S;
	struct budget *b = NULL, *oldest = NULL;
	uint64_t       now = cs_mono_ms(), secs;
	bool           ok;

	*log = false;
	if (fw == NULL || station == NULL ||
	    strnlen(station, CS_AUTH_NAME_MAX + 1) > CS_AUTH_NAME_MAX) {
		return false;
	}
	pthread_mutex_lock(&fw->mtx);
	/* The station's bucket; else a free one; else the one idle longest
	 * (forgetting a bucket only gives its station a full one again). */
	for (size_t i = 0; i < FIRMWARE_BUDGETS; i++) {
		struct budget *e = &fw->budgets[i];

		if (strcmp(e->station, station) == 0) {
			b = e;
			break;
		}
		if (oldest == NULL || (oldest->station[0] != '\0' &&
		        (e->station[0] == '\0' || e->stamp_ms <
		            oldest->stamp_ms))) {
			oldest = e;
		}
	}
	if (b == NULL) {
		b = oldest;
		snprintf(b->station, sizeof(b->station), "%s", station);
		b->tokens   = full;
		b->stamp_ms = now;
		b->warned   = false;
	}
	/* One start comes back every FIRMWARE_FETCH_REFILL_S seconds. */
	secs = (now - b->stamp_ms) / 1000u;
	if (secs > 0) {
		b->tokens = secs >= full - b->tokens ? full
		                                    : b->tokens + (uint32_t)secs;
		b->stamp_ms += secs * 1000u;
	}
	ok = b->tokens >= FIRMWARE_FETCH_REFILL_S;
	if (ok) {
		b->tokens -= FIRMWARE_FETCH_REFILL_S;
		b->warned = false;
	} else if (!b->warned) {
		b->warned = true;
		*log      = true;
	}
	pthread_mutex_unlock(&fw->mtx);
	return ok;
}
