/*
 * order_fw.h - what an order says about the firmware and the part, and
 * the image an order holds, fetched from the authority into memory.
 *
 * Before a run the station asks for the order (GetOrder).  An order may
 *   - bind nothing: the station programs the --image it is given;
 *   - bind a firmware digest: the station programs a local --image only
 *     if its digest (cs_image.h) is that digest, and names it in Sign;
 *   - hold its image: the station fetches it (GetFirmware) into locked
 *     memory (secmem.h), never onto disk, checks it against the profile
 *     and the order's digest, and programs that;
 *   - name the target profile it was made for, and require the lock.
 */
#ifndef ORDER_FW_H
#define ORDER_FW_H

#include "countersign/v1/authority.pb-c.h"
#include "cs_image.h"
#include "cs_target.h"
#include "station_session.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDER_FW_DIGEST_LEN 32u
/* Longest chunk GetFirmware sends (authority.proto). */
#define ORDER_FW_CHUNK_MAX (32u * 1024u)

/* The firmware side of an OrderStatus. */
struct order_fw {
	char     target[TARGET_NAME_MAX + 1]; /* "": not bound to a part */
	bool     binds_digest;
	uint8_t  digest[ORDER_FW_DIGEST_LEN];
	bool     held;         /* the authority holds the image */
	bool     withdrawn;    /* the officer withdrew it */
	uint64_t size;         /* flat image bytes (held) */
	uint32_t version;
	bool     require_lock;
};

/*
 * Take the firmware fields of os.  CS_EPROTO (err says) when they make
 * no sense: a digest that is not 32 bytes, a target name too long, an
 * image held without a digest or of no size or over IMAGE_MAX_BYTES.
 */
int order_fw_from_status(struct order_fw *of,
    const Countersign__V1__OrderStatus *os, char *err, size_t errlen);

/* The first 8 bytes of d as hex and "...", for messages (out 20). */
const char *order_fw_short(const uint8_t d[ORDER_FW_DIGEST_LEN],
    char out[20]);

/*
 * The measured form (cs_image.h) of a flat image without copying it: the
 * segments of *out point into flat (at most two, around t's record area),
 * so out must never go to image_free and lives as long as flat.  Checked
 * against t as image_from_flat() does (CS_EINVAL with err).
 */
int order_fw_view(struct image *out, const struct target *t, uint32_t base,
    const uint8_t *flat, size_t len, char *err, size_t errlen);

/* SHA-256 over the segments of a measured form in order: the firmware
 * digest of out from order_fw_view().  CS_OK or CS_ECRYPTO. */
int order_fw_digest(const struct image *measured,
    uint8_t digest[ORDER_FW_DIGEST_LEN]);

/* An order's held image in locked memory. */
struct held_image {
	uint8_t     *flat; /* secmem; flat_len bytes from base */
	size_t       flat_len;
	uint32_t     base;
	uint32_t     version;
	struct image img;  /* the measured form, pointing into flat */
};

struct fetch_opts {
	station_session       *session;
	const char            *order_id;
	const struct target   *target; /* the station's profile */
	const struct order_fw *of;     /* the order, as GetOrder said */
	unsigned               retry_max_s;
	volatile sig_atomic_t *stop;   /* may be NULL */
	station_wait_note     *note;   /* may be NULL: waiting, back */
	void                  *note_ctx;
	/* May be NULL: called after each chunk with the bytes in hand. */
	void (*progress)(void *ctx, uint64_t got, uint64_t size);
	void                  *progress_ctx;
};

/*
 * Fetch the held image of o->order_id in chunks (GetFirmware) into locked
 * memory and check it: the profile's name is the order's target, the
 * image fits the profile (order_fw_view), its digest is the order's.
 * While the authority is unreachable, or the connection drops halfway,
 * asks again with back-off for at most o->retry_max_s and goes on from
 * the offset reached (a new connection restarts the fetch at offset 0
 * for the same version, as the authority requires, then skips ahead).
 * Nothing of a partial image is ever used.
 *
 * CS_OK: h holds the image (free with held_image_free).  Otherwise h is
 * empty and wiped, and:
 *   *mismatch true: what came is not the order's firmware for this
 *     profile (err says which, with both digests in short);
 *   CS_ENOMEM: the memory could not be locked (err says how to raise
 *     RLIMIT_MEMLOCK) or none left;
 *   CS_ECANCELED: *o->stop was set;
 *   else the authority's refusal or the lasting failure of the call, in
 *     res (FAILED_PRECONDITION: withdrawn or replaced; PERMISSION_DENIED:
 *     another CM's order), err a copy of its message.
 */
int held_image_fetch(const struct fetch_opts *o, struct held_image *h,
    struct cs_rpc_result *res, bool *mismatch, char *err, size_t errlen);

/* Wipe and free the image; NULL-safe, and safe on an emptied h. */
void held_image_free(struct held_image *h);

#endif /* ORDER_FW_H */
