/*
 * cs_image.c - firmware images (station and authority): ELF32 (ARM, little-endian),
 * Intel HEX and raw binary, read into sorted, non-overlapping segments.
 *
 * The file is untrusted (a corrupted download, or someone's attempt to get
 * the station to write where it should not): it is read whole, up to a
 * named maximum, and every header field, offset and size is checked
 * against what was read, in 64-bit arithmetic so that nothing wraps.
 * Fields are decoded byte by byte rather than by casting to <elf.h>
 * structs, so the code does not depend on the host's byte order or on
 * alignment.
 *
 * Loading first collects "pieces" (an ELF segment, a run of HEX records)
 * whose bytes go into one arena in file order; at the end the pieces are
 * sorted, checked for overlap, and adjacent ones are merged into the
 * image's segments.
 */
#include "cs_image.h"
#include "cs_err.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <elf.h>
#include <inttypes.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest file read: an ELF carries symbols and debug information besides
 * its loadable bytes, and HEX text is about 2.8 times its data. */
#define IMAGE_MAX_FILE (4ull * IMAGE_MAX_BYTES)

/* Pieces before merging: HEX records that are not in address order each
 * start one; objcopy's output is one piece per segment. */
#define IMAGE_MAX_PIECES 65536u

#define ADDR_SPACE 0x100000000ull

struct piece {
	uint32_t addr;
	uint32_t len;
	size_t   off;   /* into the arena */
	int      where; /* HEX line or ELF program header index */
};

struct loader {
	const char   *path;
	char         *err;
	size_t        errlen;
	struct piece *pc;
	size_t        npc, cap;
	uint8_t      *arena;
	size_t        used, arena_cap;
};

static int
fail(struct loader *l, int rv, int line, const char *fmt, ...)
{
	va_list ap;
	int     m;

	if (line > 0) {
		m = snprintf(l->err, l->errlen, "%s:%d: ", l->path, line);
	} else {
		m = snprintf(l->err, l->errlen, "%s: ", l->path);
	}
	if (m >= 0 && (size_t)m < l->errlen) {
		va_start(ap, fmt);
		vsnprintf(l->err + m, l->errlen - (size_t)m, fmt, ap);
		va_end(ap);
	}
	return rv;
}

/*
 * Add len bytes at addr (where: line or segment for messages).  A piece
 * that continues the last one in both address and arena is merged into
 * it, which keeps a HEX file in address order at one piece per run.
 */
static int
add_piece(struct loader *l, uint32_t addr, const uint8_t *data, size_t len,
    int where)
{
	struct piece *last = l->npc > 0 ? &l->pc[l->npc - 1] : NULL;

	if (len == 0) {
		return CS_OK;
	}
	if ((uint64_t)addr + len > ADDR_SPACE) {
		return fail(l, CS_EINVAL, where, "data at 0x%08X (%zu bytes) "
		    "runs past the 32-bit address space", addr, len);
	}
	if (len > IMAGE_MAX_BYTES - l->used) {
		return fail(l, CS_ETOOBIG, where, "image larger than %u bytes",
		    IMAGE_MAX_BYTES);
	}
	if (l->used + len > l->arena_cap) {
		size_t   cap = l->arena_cap ? l->arena_cap : 65536;
		uint8_t *a;
		while (cap < l->used + len) {
			cap *= 2;
		}
		if ((a = realloc(l->arena, cap)) == NULL) {
			return fail(l, CS_ENOMEM, 0, "out of memory");
		}
		l->arena     = a;
		l->arena_cap = cap;
	}
	memcpy(l->arena + l->used, data, len);
	if (last != NULL && (uint64_t)last->addr + last->len == addr &&
	    last->off + last->len == l->used) {
		last->len += (uint32_t)len;
		l->used += len;
		return CS_OK;
	}
	if (l->npc == l->cap) {
		size_t        cap = l->cap ? l->cap * 2 : 16;
		struct piece *p;
		if (l->npc >= IMAGE_MAX_PIECES) {
			return fail(l, CS_ETOOBIG, where, "more than %u "
			    "discontiguous pieces of data", IMAGE_MAX_PIECES);
		}
		if ((p = realloc(l->pc, cap * sizeof(*p))) == NULL) {
			return fail(l, CS_ENOMEM, 0, "out of memory");
		}
		l->pc  = p;
		l->cap = cap;
	}
	l->pc[l->npc++] = (struct piece){.addr = addr, .len = (uint32_t)len,
	    .off = l->used, .where = where};
	l->used += len;
	return CS_OK;
}

static int
cmp_piece(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	if (x->addr != y->addr) {
		return x->addr < y->addr ? -1 : 1;
	}
	return x->where < y->where ? -1 : x->where > y->where;
}

static unsigned long long
last_byte(uint32_t addr, uint32_t len)
{
	return (unsigned long long)addr + len - 1;
}

/* Sort, refuse overlaps, merge adjacent pieces into img's segments. */
static int
finish(struct loader *l, struct image *img, enum image_format fmt)
{
	struct piece *p = l->pc;
	size_t        nseg = 0;

	if (l->npc == 0) {
		return fail(l, CS_EINVAL, 0, "no loadable data");
	}
	qsort(p, l->npc, sizeof(*p), cmp_piece);
	for (size_t i = 1; i < l->npc; i++) {
		const struct piece *a = &p[i - 1], *b = &p[i];
		if ((uint64_t)a->addr + a->len <= b->addr) {
			continue;
		}
		if (fmt == IMAGE_ELF) {
			return fail(l, CS_EINVAL, 0, "segment %d "
			    "(0x%08X-0x%08llX) overlaps segment %d "
			    "(0x%08X-0x%08llX)", a->where, a->addr,
			    last_byte(a->addr, a->len), b->where, b->addr,
			    last_byte(b->addr, b->len));
		}
		return fail(l, CS_EINVAL, a->where > b->where ? a->where :
		    b->where, "data 0x%08X-0x%08llX (from line %d) overlaps "
		    "0x%08X-0x%08llX (from line %d)", a->addr,
		    last_byte(a->addr, a->len), a->where, b->addr,
		    last_byte(b->addr, b->len), b->where);
	}
	for (size_t i = 0; i < l->npc; i++) {
		if (i == 0 ||
		    (uint64_t)p[i - 1].addr + p[i - 1].len != p[i].addr) {
			nseg++;
		}
	}
	if (nseg > IMAGE_MAX_SEGMENTS) {
		return fail(l, CS_ETOOBIG, 0, "%zu separate address ranges "
		    "(at most %u)", nseg, IMAGE_MAX_SEGMENTS);
	}
	for (size_t i = 0, j; i < l->npc; i = j) {
		struct image_segment *s = &img->seg[img->nseg];
		uint64_t              len = p[i].len;
		for (j = i + 1; j < l->npc &&
		     (uint64_t)p[j - 1].addr + p[j - 1].len == p[j].addr;
		     j++) {
			len += p[j].len;
		}
		if ((s->data = malloc((size_t)len)) == NULL) {
			image_free(img);
			return fail(l, CS_ENOMEM, 0, "out of memory");
		}
		s->addr = p[i].addr;
		s->len  = (uint32_t)len;
		for (size_t k = i, at = 0; k < j; at += p[k].len, k++) {
			memcpy(s->data + at, l->arena + p[k].off, p[k].len);
		}
		img->nseg++;
		img->bytes += len;
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* ELF32, little-endian, ARM. */

#define EHDR_SIZE 52u
#define PHDR_SIZE 32u

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int
load_elf(struct loader *l, const uint8_t *f, size_t size)
{
	uint32_t phoff;
	uint16_t phentsize, phnum;
	int      rv;

	if (size < EHDR_SIZE) {
		return fail(l, CS_EINVAL, 0, "truncated ELF header (%zu of %u "
		    "bytes)", size, EHDR_SIZE);
	}
	if (memcmp(f, ELFMAG, SELFMAG) != 0) {
		return fail(l, CS_EINVAL, 0, "not an ELF file");
	}
	if (f[EI_CLASS] != ELFCLASS32) {
		return fail(l, CS_EINVAL, 0, "not a 32-bit ELF file (class "
		    "%u)", f[EI_CLASS]);
	}
	if (f[EI_DATA] != ELFDATA2LSB) {
		return fail(l, CS_EINVAL, 0, "not a little-endian ELF file");
	}
	if (f[EI_VERSION] != EV_CURRENT || le32(f + 20) != EV_CURRENT) {
		return fail(l, CS_EINVAL, 0, "unknown ELF version");
	}
	if (le16(f + 18) != EM_ARM) {
		return fail(l, CS_EINVAL, 0, "ELF machine %u is not ARM (40)",
		    le16(f + 18));
	}
	if (le16(f + 16) != ET_EXEC) {
		return fail(l, CS_EINVAL, 0, "ELF type %u is not a linked "
		    "executable", le16(f + 16));
	}
	phoff     = le32(f + 28);
	phentsize = le16(f + 42);
	phnum     = le16(f + 44);
	if (phnum == 0 || phnum == PN_XNUM) {
		return fail(l, CS_EINVAL, 0, "no program headers");
	}
	if (phentsize < PHDR_SIZE) {
		return fail(l, CS_EINVAL, 0, "program header size %u is "
		    "smaller than %u", phentsize, PHDR_SIZE);
	}
	if ((uint64_t)phoff + (uint64_t)phnum * phentsize > size) {
		return fail(l, CS_EINVAL, 0, "program headers (%u at offset "
		    "%u) run past the end of the file (%zu bytes)", phnum,
		    phoff, size);
	}
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = f + phoff + (size_t)i * phentsize;
		uint32_t       off = le32(ph + 4), paddr = le32(ph + 12);
		uint32_t       filesz = le32(ph + 16), memsz = le32(ph + 20);
		if (le32(ph) != PT_LOAD || filesz == 0) {
			continue;
		}
		if (filesz > memsz) {
			return fail(l, CS_EINVAL, 0, "segment %u: file size "
			    "%u exceeds memory size %u", i, filesz, memsz);
		}
		if ((uint64_t)off + filesz > size) {
			return fail(l, CS_EINVAL, 0, "segment %u: bytes %u+%u "
			    "run past the end of the file (%zu bytes)", i,
			    off, filesz, size);
		}
		/* p_paddr: the load address (LMA), where .data's initial
		 * values sit in flash; p_memsz beyond p_filesz is .bss,
		 * zeroed by the firmware, never programmed. */
		if ((rv = add_piece(l, paddr, f + off, filesz, (int)i)) !=
		    CS_OK) {
			return rv;
		}
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* Intel HEX. */

/* The longest record: 255 data bytes plus 5 of framing. */
#define IHEX_MAX_BYTES (255u + 5u)

static int
hexval(char c)
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

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* One record (s[0..n), without line end or trailing blanks). */
static int
ihex_record(struct loader *l, const char *s, size_t n, int line,
    uint32_t *base, bool *eof)
{
	uint8_t  b[IHEX_MAX_BYTES];
	size_t   nb;
	uint8_t  sum = 0;
	uint32_t off;

	if (s[0] != ':') {
		return fail(l, CS_EINVAL, line, "expected ':' to start a "
		    "record");
	}
	s++;
	n--;
	for (size_t i = 0; i < n; i++) {
		if (hexval(s[i]) < 0) {
			return fail(l, CS_EINVAL, line, "bad hex digit "
			    "'%c' in column %zu", is_blank(s[i]) ? ' ' : s[i],
			    i + 2);
		}
	}
	if (n % 2 != 0) {
		return fail(l, CS_EINVAL, line, "odd number of hex digits");
	}
	nb = n / 2;
	if (nb < 5 || nb > IHEX_MAX_BYTES) {
		return fail(l, CS_EINVAL, line, "record of %zu bytes (5 to "
		    "%u)", nb, IHEX_MAX_BYTES);
	}
	for (size_t i = 0; i < nb; i++) {
		b[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
		sum  = (uint8_t)(sum + b[i]);
	}
	if (b[0] != nb - 5) {
		return fail(l, CS_EINVAL, line, "byte count %u does not match "
		    "the %zu data bytes of the record", b[0], nb - 5);
	}
	if (sum != 0) {
		return fail(l, CS_EINVAL, line, "bad checksum 0x%02X "
		    "(expected 0x%02X)", b[nb - 1],
		    (uint8_t)(b[nb - 1] - sum));
	}
	off = (uint32_t)b[1] << 8 | b[2];
	switch (b[3]) {
	case 0x00:
		/* The spec wraps an offset past 0xFFFF to the start of the
		 * same 64 KiB window; no tool writes that, and programming
		 * bytes somewhere other than where they appear to go is
		 * worse than refusing. */
		if (off + b[0] > 0x10000u) {
			return fail(l, CS_EINVAL, line, "data record crosses "
			    "a 64 KiB boundary (its address would wrap)");
		}
		return add_piece(l, *base + off, b + 4, b[0], line);
	case 0x01:
		if (b[0] != 0) {
			return fail(l, CS_EINVAL, line, "end-of-file record "
			    "with data");
		}
		*eof = true;
		return CS_OK;
	case 0x02:
	case 0x04:
		if (b[0] != 2) {
			return fail(l, CS_EINVAL, line, "address record of "
			    "%u bytes (expected 2)", b[0]);
		}
		/* 02: segment base * 16, at most 0xFFFF0; 04: the upper
		 * 16 bits of a 32-bit address. */
		*base = b[3] == 0x02 ? ((uint32_t)b[4] << 8 | b[5]) << 4 :
				       ((uint32_t)b[4] << 8 | b[5]) << 16;
		return CS_OK;
	case 0x03:
	case 0x05:
		if (b[0] != 4) {
			return fail(l, CS_EINVAL, line, "start address record "
			    "of %u bytes (expected 4)", b[0]);
		}
		return CS_OK; /* the entry point: the vector table decides */
	default:
		return fail(l, CS_EINVAL, line, "unknown record type 0x%02X",
		    b[3]);
	}
}

static int
load_ihex(struct loader *l, const char *f, size_t size)
{
	uint32_t base = 0;
	bool     eof  = false;
	int      line = 0, rv;
	size_t   pos  = 0;

	while (pos < size) {
		const char *nl = memchr(f + pos, '\n', size - pos);
		size_t      end = nl != NULL ? (size_t)(nl - f) : size;
		size_t      n = end - pos;
		line++;
		while (n > 0 && is_blank(f[pos + n - 1])) {
			n--; /* CRLF, trailing blanks */
		}
		if (eof) {
			for (size_t i = 0; i < n; i++) {
				if (!is_blank(f[pos + i])) {
					return fail(l, CS_EINVAL, line,
					    "data after the end-of-file "
					    "record");
				}
			}
		} else if (n > 0 &&
		    (rv = ihex_record(l, f + pos, n, line, &base, &eof)) !=
			CS_OK) {
			return rv;
		}
		pos = end + 1;
	}
	if (!eof) {
		return fail(l, CS_EINVAL, 0, "no end-of-file record "
		    "(:00000001FF)");
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */

/* Read the whole file into *buf (NUL terminated, for the HEX parser). */
static int
read_file(struct loader *l, uint8_t **buf, size_t *size)
{
	FILE    *fp;
	uint8_t *b = NULL;
	size_t   n = 0, cap = 0, got;
	int      rv = CS_OK;

	if ((fp = fopen(l->path, "rb")) == NULL) {
		return fail(l, errno == ENOENT ? CS_ENOENT : CS_EIO, 0,
		    "cannot open: %s", strerror(errno));
	}
	do {
		if (cap - n < 65536) {
			uint8_t *nb;
			cap = cap ? cap * 2 : 1 << 20;
			if (cap > IMAGE_MAX_FILE + 1) {
				cap = IMAGE_MAX_FILE + 1;
			}
			if ((nb = realloc(b, cap + 1)) == NULL) {
				rv = fail(l, CS_ENOMEM, 0, "out of memory");
				goto out;
			}
			b = nb;
		}
		got = fread(b + n, 1, cap - n, fp);
		n += got;
		if (n > IMAGE_MAX_FILE) {
			rv = fail(l, CS_ETOOBIG, 0, "file larger than %llu "
			    "bytes", (unsigned long long)IMAGE_MAX_FILE);
			goto out;
		}
	} while (got > 0);
	if (ferror(fp)) {
		rv = fail(l, CS_EIO, 0, "read error");
		goto out;
	}
	b[n]  = 0;
	*buf  = b;
	*size = n;
	b     = NULL;
out:
	fclose(fp);
	free(b);
	return rv;
}

int
image_load(struct image *img, const char *path, enum image_format fmt,
    uint32_t base, char *err, size_t errlen)
{
	struct loader l = {.path = path, .err = err, .errlen = errlen};
	uint8_t      *f = NULL;
	size_t        size = 0;
	int           rv;

	memset(img, 0, sizeof(*img));
	if (errlen > 0) {
		err[0] = '\0';
	}
	if ((rv = read_file(&l, &f, &size)) != CS_OK) {
		goto out;
	}
	if (fmt == IMAGE_AUTO) {
		if (size >= SELFMAG && memcmp(f, ELFMAG, SELFMAG) == 0) {
			fmt = IMAGE_ELF;
		} else if (size > 0 && f[0] == ':') {
			fmt = IMAGE_IHEX;
		} else {
			rv = fail(&l, CS_EINVAL, 0, "neither ELF nor Intel "
			    "HEX (a raw binary needs the bin format and a "
			    "base address)");
			goto out;
		}
	}
	switch (fmt) {
	case IMAGE_ELF:
		rv = load_elf(&l, f, size);
		break;
	case IMAGE_IHEX:
		rv = load_ihex(&l, (const char *)f, size);
		break;
	case IMAGE_BIN:
		if (size > IMAGE_MAX_BYTES) {
			rv = fail(&l, CS_ETOOBIG, 0, "image larger than %u "
			    "bytes", IMAGE_MAX_BYTES);
			break;
		}
		rv = add_piece(&l, base, f, size, 0);
		break;
	default:
		rv = fail(&l, CS_EINVAL, 0, "unknown image format %d",
		    (int)fmt);
		break;
	}
	if (rv == CS_OK) {
		rv = finish(&l, img, fmt);
	}
out:
	if (rv != CS_OK) {
		image_free(img);
	}
	free(f);
	free(l.pc);
	free(l.arena);
	return rv;
}

void
image_free(struct image *img)
{
	if (img == NULL) {
		return;
	}
	for (size_t i = 0; i < img->nseg; i++) {
		free(img->seg[i].data);
	}
	memset(img, 0, sizeof(*img));
}

int
image_check(const struct image *img, const struct target *t, char *err,
    size_t errlen)
{
	const uint64_t fbeg = t->flash_base;
	const uint64_t fend = fbeg + t->flash_size;
	const uint64_t rbeg = t->record_addr;
	const uint64_t rend = rbeg + t->record_size;

	for (size_t i = 0; i < img->nseg; i++) {
		const uint64_t a = img->seg[i].addr;
		const uint64_t b = a + img->seg[i].len;
		uint64_t       lo, hi;
		if (a < fbeg || b > fend) {
			/* the first part outside */
			lo = a < fbeg ? a : (fend > a ? fend : a);
			hi = a < fbeg ? (b < fbeg ? b : fbeg) : b;
			snprintf(err, errlen, "0x%08llX-0x%08llX is outside "
			    "the flash of %s (0x%08llX-0x%08llX)",
			    (unsigned long long)lo,
			    (unsigned long long)(hi - 1), t->name,
			    (unsigned long long)fbeg,
			    (unsigned long long)(fend - 1));
			return CS_EINVAL;
		}
		if (a < rend && b > rbeg) {
			lo = a > rbeg ? a : rbeg;
			hi = b < rend ? b : rend;
			snprintf(err, errlen, "0x%08llX-0x%08llX is in the "
			    "record area of %s (0x%08llX-0x%08llX), which "
			    "only the station writes",
			    (unsigned long long)lo,
			    (unsigned long long)(hi - 1), t->name,
			    (unsigned long long)rbeg,
			    (unsigned long long)(rend - 1));
			return CS_EINVAL;
		}
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* The measured form and the firmware digest                           */
/* ------------------------------------------------------------------ */

/* First and one-past-last byte of img (nseg >= 1, sorted). */
static void
image_span(const struct image *img, uint64_t *lo, uint64_t *hi)
{
	const struct image_segment *last = &img->seg[img->nseg - 1];

	*lo = img->seg[0].addr;
	*hi = (uint64_t)last->addr + last->len;
}

/* Copy into dst (covering [base, base+len)) the bytes of img there. */
static void
image_paint(const struct image *img, uint64_t base, uint8_t *dst, size_t len)
{
	const uint64_t end = base + len;

	memset(dst, IMAGE_FILL, len);
	for (size_t i = 0; i < img->nseg; i++) {
		uint64_t a = img->seg[i].addr;
		uint64_t b = a + img->seg[i].len;
		uint64_t lo = a > base ? a : base;
		uint64_t hi = b < end ? b : end;

		if (lo < hi) {
			memcpy(dst + (lo - base), img->seg[i].data + (lo - a),
			    (size_t)(hi - lo));
		}
	}
}

/* Add [lo, hi) of img to out as one filled segment (nothing if empty). */
static int
measured_add(struct image *out, const struct image *img, uint64_t lo,
    uint64_t hi)
{
	struct image_segment *s;

	if (lo >= hi) {
		return CS_OK;
	}
	s = &out->seg[out->nseg];
	if ((s->data = malloc((size_t)(hi - lo))) == NULL) {
		return CS_ENOMEM;
	}
	s->addr = (uint32_t)lo;
	s->len  = (uint32_t)(hi - lo);
	image_paint(img, lo, s->data, s->len);
	out->nseg++;
	out->bytes += s->len;
	return CS_OK;
}

int
image_measured(const struct image *img, const struct target *t,
    struct image *out)
{
	uint64_t lo, hi;
	uint64_t rbeg = t->record_addr;
	uint64_t rend = rbeg + t->record_size;
	int      rv;

	memset(out, 0, sizeof(*out));
	if (img->nseg == 0) {
		return CS_EINVAL;
	}
	image_span(img, &lo, &hi);
	if (hi <= rbeg || lo >= rend) {
		rv = measured_add(out, img, lo, hi);
	} else {
		/* The record area sits inside the span: measure around it. */
		if ((rv = measured_add(out, img, lo, rbeg < lo ? lo : rbeg)) ==
		    CS_OK) {
			rv = measured_add(out, img, rend > hi ? hi : rend, hi);
		}
	}
	if (rv != CS_OK) {
		image_free(out);
	}
	return rv;
}

int
image_digest(const struct image *img, const struct target *t,
    uint8_t digest[32])
{
	struct image m;
	wc_Sha256    sha;
	int          rv;

	if ((rv = image_measured(img, t, &m)) != CS_OK) {
		return rv;
	}
	rv = CS_ECRYPTO;
	if (wc_InitSha256(&sha) == 0) {
		size_t i;

		for (i = 0; i < m.nseg; i++) {
			if (wc_Sha256Update(&sha, m.seg[i].data,
			        m.seg[i].len) != 0) {
				break;
			}
		}
		if (i == m.nseg && wc_Sha256Final(&sha, digest) == 0) {
			rv = CS_OK;
		}
		wc_Sha256Free(&sha);
	}
	image_free(&m);
	return rv;
}

int
image_flatten(const struct image *img, const struct target *t,
    uint32_t *base, uint8_t **buf, size_t *len)
{
	uint64_t lo, hi;

	(void)t; /* record-area bytes inside the span are 0xFF already */
	*buf = NULL;
	*len = 0;
	if (img->nseg == 0) {
		return CS_EINVAL;
	}
	image_span(img, &lo, &hi);
	if (hi - lo > IMAGE_MAX_BYTES) {
		return CS_ETOOBIG;
	}
	if ((*buf = malloc((size_t)(hi - lo))) == NULL) {
		return CS_ENOMEM;
	}
	image_paint(img, lo, *buf, (size_t)(hi - lo));
	*base = (uint32_t)lo;
	*len  = (size_t)(hi - lo);
	return CS_OK;
}

int
image_from_flat(struct image *out, const struct target *t, uint32_t base,
    const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	struct image whole;
	int          rv;

	memset(out, 0, sizeof(*out));
	memset(&whole, 0, sizeof(whole));
	if (len == 0 || len > IMAGE_MAX_BYTES ||
	    (uint64_t)base + len > ADDR_SPACE) {
		snprintf(err, errlen, "a flat image of %zu bytes at 0x%08" PRIX32
		    " is empty, too big or runs past 4 GiB", len, base);
		return CS_EINVAL;
	}
	/* As one segment, then cut around the record area: the cut pieces
	 * are exactly the measured form (image_measured). */
	whole.seg[0].addr = base;
	whole.seg[0].len  = (uint32_t)len;
	whole.seg[0].data = (uint8_t *)buf;
	whole.nseg        = 1;
	whole.bytes       = len;
	if ((rv = image_measured(&whole, t, out)) != CS_OK) {
		snprintf(err, errlen, "out of memory");
		return rv;
	}
	if ((rv = image_check(out, t, err, errlen)) != CS_OK) {
		image_free(out);
	}
	return rv;
}
