/*
 * firmware.h - the firmware an order holds: target profiles by name, the
 * check of an image the officer sends, its encryption at rest, and the
 * chunks a station fetches (GetFirmware).
 *
 * At rest (store.proto StoredFirmware): each version of an order's image
 * has a fresh random 256-bit data key; the flat image (cs_image.h
 * image_flatten) is cut into FIRMWARE_CHUNK-byte chunks, each sealed with
 * AES-256-GCM under the data key (wolfCrypt) with
 *
 *   nonce = version (4 BE) || 0 (4) || index (4 BE)
 *   AAD   = "countersign-fw-chunk-v1" NUL order_id NUL version (4 BE)
 *           index (4 BE) count (4 BE)
 *
 * and the data key itself is sealed by the HSM's firmware key ([hsm]
 * firmware_key, cs_hsm_seal) with AAD "countersign-fw-key-v1" NUL order_id
 * NUL version (4 BE).  So the store and its backups hold no plaintext and
 * no usable key; a chunk moved to another index, version or order, or a
 * wrapped key moved to another order, fails its tag.  Plaintext images and
 * data keys are wiped after use.
 *
 * The data key is unwrapped by the HSM for every chunk a station asks for,
 * never cached: one HSM call per 32 KiB is cheap next to programming a
 * device, no secret stays in the daemon's memory between requests, and a
 * replace or withdraw takes effect with the very next request.
 *
 * Fetches are tied to connections: a station starts a fetch at offset 0
 * (which is audited, "firmware.fetch", every time, durably, before a byte
 * leaves) and may ask for further chunks only on the connection that
 * started it, each once, in order (sessions.h keeps that per
 * connection).  Each station has a budget of fetch starts
 * (FIRMWARE_FETCH_BURST at once, one more every FIRMWARE_FETCH_REFILL_S
 * seconds), so that no station can fill the audit log or the HSM with
 * fetches.
 *
 * Thread-safe.
 */
#ifndef FIRMWARE_H
#define FIRMWARE_H

#include "countersign/v1/admin.pb-c.h"
#include "cs_hsm.h"
#include "cs_image.h"
#include "cs_target.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of plaintext per chunk (and per GetFirmware reply). */
#define FIRMWARE_CHUNK STORE_FW_CHUNK
/* Largest flat image the authority holds. */
#define FIRMWARE_MAX_BYTES (16u * 1024u * 1024u)
/* Fetch starts per station: a burst, then one per refill period. */
#define FIRMWARE_FETCH_BURST    16u
#define FIRMWARE_FETCH_REFILL_S 60u
/* Stations whose budget is remembered at once (the one idle longest is
 * forgotten, which only gives it a full budget again). */
#define FIRMWARE_BUDGETS 4096u
/* Where profiles are looked up when [firmware] targets_dir is not set:
 * /etc/countersign/targets, then the installed ones. */
#define FIRMWARE_ETC_TARGETS "/etc/countersign/targets"

typedef struct firmware firmware;

struct firmware_opts {
	cs_hsm     *hsm;         /* NULL: images cannot be held */
	const char *key_label;   /* [hsm] firmware_key; NULL: not held */
	const char *targets_dir; /* [firmware] targets_dir; NULL: defaults */
};

/* Errors: CS_EINVAL, CS_ENOMEM. */
int  firmware_open(firmware **out, const struct firmware_opts *o);
void firmware_close(firmware *fw);

/* The configured firmware key's label, or NULL. */
const char *firmware_key_label(const firmware *fw);

/*
 * Load the profile called name (a name, never a path: 1..64 characters of
 * [A-Za-z0-9._-], not starting with '.').  Errors: CS_EINVAL, CS_ENOENT
 * (msg lists the profiles there are), CS_ECONFIG (a broken profile file).
 */
int firmware_target(const firmware *fw, const char *name, struct target *t,
    char *msg, size_t msglen);

/*
 * An image from the segments of a request (copied): 1..IMAGE_MAX_SEGMENTS
 * segments, each non-empty, ascending and not overlapping, at most
 * FIRMWARE_MAX_BYTES in all.  Free with firmware_image_free.  Errors:
 * CS_EINVAL, CS_ETOOBIG, CS_ENOMEM (msg says which).
 */
int firmware_image(struct image *img,
    Countersign__V1__FirmwareSegment *const *segs, size_t n, char *msg,
    size_t msglen);

/* Wipe and free an image's bytes. */
void firmware_image_free(struct image *img);

/*
 * Check img against t (image_check) and compute its digest (image_digest);
 * when want (32 bytes) is given it must equal the digest.  Errors:
 * CS_EINVAL with msg.
 */
int firmware_check(const struct target *t, const struct image *img,
    const ProtobufCBinaryData *want, uint8_t digest[32], char *msg,
    size_t msglen);

/*
 * Seal img as version `version` of order_id's held image and write it in
 * txn: the chunks, then *row (filled here: the caller adds nothing) with
 * store_firmware_put.  Chunks of earlier versions must have been deleted
 * by the caller.  Errors: CS_EPRECOND (no firmware key configured or it
 * is not on the token), CS_ETOOBIG, CS_EHSM, CS_ECRYPTO, store errors; msg
 * says what happened.  row's strings point to order_id, t->name and the
 * key label; row->wrapped_key and row->sha256 point into *keep, which the
 * caller frees (free()) after use of row.
 */
int firmware_seal(firmware *fw, store_txn *txn, const char *order_id,
    uint32_t version, const struct target *t, const struct image *img,
    const uint8_t digest[32], StoredFirmware *row, uint8_t **keep,
    char *msg, size_t msglen);

/*
 * Decrypt chunk index of f (the current row of its order) into out
 * (FIRMWARE_CHUNK bytes), *len its length.  Errors: CS_ECRYPTO (a chunk or
 * the wrapped key failed its tag: the store was changed), CS_ESTORE (a
 * chunk missing or of the wrong size), CS_EHSM, CS_EPRECOND (no key).
 * Logged with the order.
 */
int firmware_chunk(firmware *fw, store_txn *txn, const StoredFirmware *f,
    uint32_t index, uint8_t out[FIRMWARE_CHUNK], size_t *len);

/*
 * May station start another fetch now?  Takes one start from its budget.
 * *log is set on the first refusal since it last had one (log that one,
 * not every refusal).
 */
bool firmware_fetch_admit(firmware *fw, const char *station, bool *log);

#endif /* FIRMWARE_H */
