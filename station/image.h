/*
 * image.h - firmware images: ELF (PT_LOAD segments, at their physical
 * addresses), Intel HEX, and raw binary with a base address; checked
 * against a target profile before anything touches a device.
 */
#ifndef IMAGE_H
#define IMAGE_H

#include "target.h"

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

#endif /* IMAGE_H */
