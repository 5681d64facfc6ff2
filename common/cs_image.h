/*
 * cs_image.h - firmware images: ELF (PT_LOAD segments, at their physical
 * addresses), Intel HEX, and raw binary with a base address; checked
 * against a target profile before anything touches a device.
 */
#ifndef CS_IMAGE_H
#define CS_IMAGE_H

#include "cs_target.h"

#include <stddef.h>
#include <stdint.h>

#define IMAGE_MAX_SEGMENTS 64u
#define IMAGE_MAX_BYTES    (64u * 1024u * 1024u)

struct image_segment {
	uint32_t addr;
	uint32_t len;
	uint8_t *data; /* owned by the image */
};

struct image {
	struct image_segment seg[IMAGE_MAX_SEGMENTS];
	size_t               nseg;  /* sorted by address, never overlapping */
	uint64_t             bytes; /* sum of lengths */
};

enum image_format { IMAGE_AUTO, IMAGE_ELF, IMAGE_IHEX, IMAGE_BIN };

/*
 * Load path.  IMAGE_AUTO: ELF by its magic, Intel HEX when the file
 * starts with ':', else refused (a raw binary needs IMAGE_BIN and
 * base).  Adjacent pieces are merged; overlapping pieces are refused.
 * Errors: CS_ENOENT, CS_EIO, CS_EINVAL (malformed: err says where, e.g.
 * "app.hex:12: bad checksum"), CS_ETOOBIG, CS_ENOMEM.  img is overwritten
 * (free a previous image first) and left empty on error.
 */
int image_load(struct image *img, const char *path, enum image_format fmt,
    uint32_t base, char *err, size_t errlen);

/* Free the segments; NULL-safe. */
void image_free(struct image *img);

/*
 * Check img against t: every byte inside flash, none in the record area.
 * Errors: CS_EINVAL with err naming the first offending range.
 */
int image_check(const struct image *img, const struct target *t, char *err,
    size_t errlen);

/*
 * The firmware digest (docs/record-format.md, "Firmware digest"): what a
 * record binds, computed identically by the station, the authority and
 * the device.  The measured span runs from the image's first byte to the
 * end of its last byte; every address in it that the image does not
 * cover counts (and is programmed) as 0xFF; the target's record area is
 * left out.  For an image that does not straddle the record area this is
 * SHA-256 of `objcopy -O binary --gap-fill=0xff`.
 */
#define IMAGE_FILL 0xFFu

/*
 * The measured form of img: the span described above as at most two
 * segments (below and above the record area), gaps filled with 0xFF.
 * This is what the station programs, so that flash holds exactly the
 * bytes that were measured.  img must have passed image_check against t.
 * out is overwritten (free it with image_free).  Errors: CS_EINVAL (empty
 * image), CS_ENOMEM.
 */
int image_measured(const struct image *img, const struct target *t,
    struct image *out);

/* SHA-256 over the measured form of img (see above).  Errors as
 * image_measured. */
int image_digest(const struct image *img, const struct target *t,
    uint8_t digest[32]);

/*
 * The flat form the authority stores and streams to stations: the span
 * from *base, len bytes, gaps and any record-area bytes inside it as
 * 0xFF.  *buf is malloc'd (free it).  img must have passed image_check.
 */
int image_flatten(const struct image *img, const struct target *t,
    uint32_t *base, uint8_t **buf, size_t *len);

/*
 * Back from the flat form: an image whose segments are the flat bytes
 * outside t's record area (a station rebuilds what the authority sent).
 * Checked against t like a loaded image (CS_EINVAL with err).  out is
 * overwritten; free it with image_free.
 */
int image_from_flat(struct image *out, const struct target *t,
    uint32_t base, const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif /* CS_IMAGE_H */
