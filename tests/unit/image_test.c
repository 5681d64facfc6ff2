/*
 * image_test.c - firmware images: the example firmware against objcopy's
 * own reading of it, hand-made ELF and Intel HEX files that are broken in
 * every way the parser checks, the size caps, image_check against the
 * shipped target profiles, and the firmware digest (measured form, flat
 * form and back) against objcopy + SHA-256 and against hand-computed
 * digests.
 */
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_image.h"
#include "cs_target.h"
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef CS_TARGETS_DIR
#error "build with -DCS_TARGETS_DIR=<source>/station/targets"
#endif

struct fx {
	char        *dir;
	char         path[512];
	char         err[1024];
	struct image img;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_path(f->path, sizeof(f->path), f->dir, "fw");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	image_free(&f->img);
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

static void
write_bytes(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* Both used only with the example firmware (CS_FW_ELF). */
static uint8_t *read_bytes(const char *path, size_t *len)
    __attribute__((unused));
static uint8_t *flatten(const struct image *img, size_t *len)
    __attribute__((unused));

static uint8_t *
read_bytes(const char *path, size_t *len)
{
	FILE    *fp = fopen(path, "rb");
	uint8_t *buf;
	long     n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

/* Load f->path; on failure expect rv and needle in the message. */
static void
expect_load_error(struct fx *f, enum image_format fmt, uint32_t base,
    int rv, const char *needle)
{
	int got = image_load(&f->img, f->path, fmt, base, f->err,
	    sizeof(f->err));
	if (got != rv || strstr(f->err, needle) == NULL) {
		fail_msg("got %d \"%s\", want %d and \"%s\"", got, f->err, rv,
		    needle);
	}
	assert_int_equal(f->img.nseg, 0); /* nothing left behind */
}

/* The segments laid out from the first address with zero-filled gaps,
 * which is what objcopy -O binary writes. */
static uint8_t *
flatten(const struct image *img, size_t *len)
{
	uint32_t lo  = img->seg[0].addr;
	uint32_t hi  = img->seg[img->nseg - 1].addr +
		       img->seg[img->nseg - 1].len;
	uint8_t *buf = calloc(1, hi - lo);

	assert_non_null(buf);
	for (size_t i = 0; i < img->nseg; i++) {
		memcpy(buf + (img->seg[i].addr - lo), img->seg[i].data,
		    img->seg[i].len);
	}
	*len = hi - lo;
	return buf;
}

/* ------------------------------------------------------------------ */

static void
test_firmware(void **state)
{
#if defined(CS_FW_ELF) && defined(CS_ARM_OBJCOPY)
	struct fx    *f = *state;
	const char   *dirs[] = {CS_TARGETS_DIR, NULL};
	char          bin[600], hex[600], out[4096];
	struct image  h;
	struct target t;
	uint8_t      *want, *got;
	size_t        wlen, glen;

	tu_path(bin, sizeof(bin), f->dir, "fw.bin");
	tu_path(hex, sizeof(hex), f->dir, "fw.hex");
	{
		char *const a1[] = {CS_ARM_OBJCOPY, "-O", "binary", CS_FW_ELF,
		    bin, NULL};
		char *const a2[] = {CS_ARM_OBJCOPY, "-O", "ihex", CS_FW_ELF,
		    hex, NULL};
		assert_int_equal(tu_run(a1, out, sizeof(out)), 0);
		assert_int_equal(tu_run(a2, out, sizeof(out)), 0);
	}

	assert_int_equal(image_load(&f->img, CS_FW_ELF, IMAGE_AUTO, 0, f->err,
	    sizeof(f->err)), CS_OK);
	assert_true(f->img.nseg >= 1);
	assert_int_equal(f->img.seg[0].addr, 0); /* the vector table */
	want = read_bytes(bin, &wlen);
	got  = flatten(&f->img, &glen);
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	free(got);
	free(want);

	/* the same bytes from objcopy's Intel HEX */
	assert_int_equal(image_load(&h, hex, IMAGE_AUTO, 0, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(h.nseg, f->img.nseg);
	assert_int_equal(h.bytes, f->img.bytes);
	for (size_t i = 0; i < h.nseg; i++) {
		assert_int_equal(h.seg[i].addr, f->img.seg[i].addr);
		assert_int_equal(h.seg[i].len, f->img.seg[i].len);
		assert_memory_equal(h.seg[i].data, f->img.seg[i].data,
		    h.seg[i].len);
	}
	image_free(&h);

	/* and it fits the profile made for it */
	assert_int_equal(target_load(&t, "lm3s6965", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(image_check(&f->img, &t, f->err, sizeof(f->err)),
	    CS_OK);

	/* The firmware digest is SHA-256 of objcopy's gap-filled binary
	 * (docs/record-format.md, "Firmware digest": the stock-tools
	 * check), and so are the measured and the flat form. */
	{
		char *const a3[] = {CS_ARM_OBJCOPY, "-O", "binary",
		    "--gap-fill=0xff", CS_FW_ELF, bin, NULL};
		uint8_t      d_tool[32], d_img[32];
		struct image m;
		uint32_t     base;
		uint8_t     *flat;
		size_t       flen;

		assert_int_equal(tu_run(a3, out, sizeof(out)), 0);
		want = read_bytes(bin, &wlen);
		assert_int_equal(cs_sha256(want, wlen, d_tool), CS_OK);
		assert_int_equal(image_digest(&f->img, &t, d_img), CS_OK);
		assert_memory_equal(d_img, d_tool, 32);

		assert_int_equal(image_measured(&f->img, &t, &m), CS_OK);
		assert_int_equal(m.nseg, 1);
		assert_int_equal(m.seg[0].addr, 0);
		assert_int_equal(m.seg[0].len, wlen);
		assert_memory_equal(m.seg[0].data, want, wlen);
		image_free(&m);

		assert_int_equal(image_flatten(&f->img, &t, &base, &flat,
		    &flen), CS_OK);
		assert_int_equal(base, 0);
		assert_int_equal(flen, wlen);
		assert_memory_equal(flat, want, wlen);
		free(flat);
		free(want);
	}
#else
	(void)state;
	skip(); /* no cross-built firmware (CS_FIRMWARE=OFF) */
#endif
}

static void
test_bin(void **state)
{
	struct fx *f = *state;
	uint8_t    data[300];

	for (size_t i = 0; i < sizeof(data); i++) {
		data[i] = (uint8_t)(i * 7);
	}
	write_bytes(f->path, data, sizeof(data));
	assert_int_equal(image_load(&f->img, f->path, IMAGE_BIN, 0x08000000u,
	    f->err, sizeof(f->err)), CS_OK);
	assert_int_equal(f->img.nseg, 1);
	assert_int_equal(f->img.seg[0].addr, 0x08000000u);
	assert_int_equal(f->img.seg[0].len, sizeof(data));
	assert_int_equal(f->img.bytes, sizeof(data));
	assert_memory_equal(f->img.seg[0].data, data, sizeof(data));
	image_free(&f->img);
	image_free(&f->img); /* idempotent */
	image_free(NULL);

	/* the last byte of the address space is fine, one past is not */
	assert_int_equal(image_load(&f->img, f->path, IMAGE_BIN,
	    0xFFFFFFFFu - sizeof(data) + 1, f->err, sizeof(f->err)), CS_OK);
	image_free(&f->img);
	expect_load_error(f, IMAGE_BIN, 0xFFFFFFFFu - sizeof(data) + 2,
	    CS_EINVAL, "runs past the 32-bit address space");

	/* a raw binary is never guessed */
	expect_load_error(f, IMAGE_AUTO, 0, CS_EINVAL,
	    "neither ELF nor Intel HEX");
	write_bytes(f->path, data, 0);
	expect_load_error(f, IMAGE_BIN, 0, CS_EINVAL, "no loadable data");
	expect_load_error(f, IMAGE_AUTO, 0, CS_EINVAL, "neither ELF");

	tu_path(f->path, sizeof(f->path), f->dir, "missing.bin");
	expect_load_error(f, IMAGE_BIN, 0, CS_ENOENT, "cannot open");
}

static void
test_max_bytes(void **state)
{
	struct fx *f = *state;
	FILE      *fp = fopen(f->path, "wb");

	/* sparse: IMAGE_MAX_BYTES + 1 without writing them */
	assert_non_null(fp);
	assert_int_equal(ftruncate(fileno(fp), IMAGE_MAX_BYTES + 1), 0);
	fclose(fp);
	expect_load_error(f, IMAGE_BIN, 0, CS_ETOOBIG, "image larger than");
}

/* ------------------------------------------------------------------ */
/* Hand-made ELF files. */

struct ph {
	uint32_t type, off, vaddr, paddr, filesz, memsz;
};

static void
put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

/* An ELF32 LE ARM executable: header, n program headers at 52, then
 * body bytes (data at offsets 52 + 32 n on). */
static size_t
make_elf(uint8_t *buf, size_t cap, const struct ph *ph, size_t n,
    size_t body)
{
	size_t size = 52 + 32 * n + body;

	assert_true(size <= cap);
	memset(buf, 0, size);
	memcpy(buf, "\177ELF\1\1\1", 7);
	put16(buf + 16, 2);  /* ET_EXEC */
	put16(buf + 18, 40); /* EM_ARM */
	put32(buf + 20, 1);
	put32(buf + 28, 52); /* e_phoff */
	put16(buf + 40, 52);
	put16(buf + 42, 32);
	put16(buf + 44, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = buf + 52 + 32 * i;
		put32(p, ph[i].type);
		put32(p + 4, ph[i].off);
		put32(p + 8, ph[i].vaddr);
		put32(p + 12, ph[i].paddr);
		put32(p + 16, ph[i].filesz);
		put32(p + 20, ph[i].memsz);
	}
	for (size_t i = 0; i < body; i++) {
		buf[52 + 32 * n + i] = (uint8_t)(i + 1);
	}
	return size;
}

#define D0 (52 + 32 * 4) /* body offset with four program headers */

static const struct ph good_ph[4] = {
    /* .text at 0x1000, 0x40 bytes */
    {1, D0, 0x1000, 0x1000, 0x40, 0x40},
    /* .data: runs at 0x20000000, loaded right after .text */
    {1, D0 + 0x40, 0x20000000, 0x1040, 0x10, 0x10},
    /* .bss: nothing in the file */
    {1, D0 + 0x50, 0x20000010, 0x20000010, 0, 0x100},
    /* not loadable (PT_ARM_EXIDX) */
    {0x70000001, D0, 0x1000, 0x1000, 0x40, 0x40},
};

static void
test_elf_good(void **state)
{
	struct fx *f = *state;
	uint8_t    buf[1024];
	size_t     n = make_elf(buf, sizeof(buf), good_ph, 4, 0x50);
	struct ph  ph[4];

	write_bytes(f->path, buf, n);
	assert_int_equal(image_load(&f->img, f->path, IMAGE_AUTO, 0, f->err,
	    sizeof(f->err)), CS_OK);
	/* at the load addresses (LMA), .text and .data merged */
	assert_int_equal(f->img.nseg, 1);
	assert_int_equal(f->img.seg[0].addr, 0x1000);
	assert_int_equal(f->img.seg[0].len, 0x50);
	assert_memory_equal(f->img.seg[0].data, buf + D0, 0x50);
	image_free(&f->img);

	/* segments out of order come out sorted, apart */
	memcpy(ph, good_ph, sizeof(ph));
	ph[0].paddr = 0x2000;
	n = make_elf(buf, sizeof(buf), ph, 4, 0x50);
	write_bytes(f->path, buf, n);
	assert_int_equal(image_load(&f->img, f->path, IMAGE_ELF, 0, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(f->img.nseg, 2);
	assert_int_equal(f->img.seg[0].addr, 0x1040);
	assert_int_equal(f->img.seg[0].len, 0x10);
	assert_int_equal(f->img.seg[1].addr, 0x2000);
	assert_int_equal(f->img.bytes, 0x50);
}

static void
test_elf_malformed(void **state)
{
	struct fx *f = *state;
	uint8_t    buf[1024];
	size_t     n;
	struct ph  ph[4];

#define RESET() (memcpy(ph, good_ph, sizeof(ph)), \
		 n = make_elf(buf, sizeof(buf), ph, 4, 0x50))
#define EXPECT(needle)                                                        \
	do {                                                                  \
		write_bytes(f->path, buf, n);                                 \
		expect_load_error(f, IMAGE_AUTO, 0, CS_EINVAL, needle);       \
	} while (0)

	/* truncated headers */
	RESET();
	n = 51;
	EXPECT("truncated ELF header (51 of 52 bytes)");
	n = 4;
	EXPECT("truncated ELF header");
	/* the program header table past the end */
	RESET();
	n = 52 + 32 * 3 + 8;
	EXPECT("program headers (4 at offset 52) run past the end");
	RESET();
	put32(buf + 28, 0xFFFFFFF0u); /* e_phoff: would wrap in 32 bits */
	EXPECT("run past the end of the file");
	RESET();
	put16(buf + 44, 0);
	EXPECT("no program headers");
	RESET();
	put16(buf + 42, 16);
	EXPECT("program header size 16 is smaller than 32");
	/* wrong kind of file */
	RESET();
	buf[4] = 2;
	EXPECT("not a 32-bit ELF file");
	RESET();
	buf[5] = 2;
	EXPECT("not a little-endian ELF file");
	RESET();
	put16(buf + 18, 3);
	EXPECT("ELF machine 3 is not ARM (40)");
	RESET();
	put16(buf + 16, 1);
	EXPECT("ELF type 1 is not a linked executable");
	RESET();
	put32(buf + 20, 2);
	EXPECT("unknown ELF version");
	/* segments */
	memcpy(ph, good_ph, sizeof(ph));
	ph[1].off = 0xFFFFFFF0u; /* offset + size wraps in 32 bits */
	n         = make_elf(buf, sizeof(buf), ph, 4, 0x50);
	EXPECT("segment 1: bytes 4294967280+16 run past the end of the file");
	memcpy(ph, good_ph, sizeof(ph));
	ph[1].filesz = ph[1].memsz = 0x11; /* one byte past the file */
	n = make_elf(buf, sizeof(buf), ph, 4, 0x50);
	EXPECT("segment 1: bytes");
	memcpy(ph, good_ph, sizeof(ph));
	ph[0].memsz = 0x3F;
	n           = make_elf(buf, sizeof(buf), ph, 4, 0x50);
	EXPECT("segment 0: file size 64 exceeds memory size 63");
	memcpy(ph, good_ph, sizeof(ph));
	ph[1].paddr = 0xFFFFFFF8u;
	n           = make_elf(buf, sizeof(buf), ph, 4, 0x50);
	EXPECT("runs past the 32-bit address space");
	memcpy(ph, good_ph, sizeof(ph));
	ph[1].paddr = 0x103F; /* one byte into .text */
	n           = make_elf(buf, sizeof(buf), ph, 4, 0x50);
	EXPECT("segment 0 (0x00001000-0x0000103F) overlaps segment 1 "
	       "(0x0000103F-0x0000104E)");
	/* only a .bss: nothing to program */
	memcpy(ph, good_ph, sizeof(ph));
	ph[0].filesz = ph[1].filesz = 0;
	n = make_elf(buf, sizeof(buf), ph, 4, 0x50);
	EXPECT("no loadable data");
	/* an explicit format is not second-guessed */
	RESET();
	write_bytes(f->path, buf, n);
	expect_load_error(f, IMAGE_IHEX, 0, CS_EINVAL,
	    ":1: expected ':' to start a record");
	tu_write_file(f->path, ":00000001FF\n");
	expect_load_error(f, IMAGE_ELF, 0, CS_EINVAL, "truncated ELF header");
#undef RESET
#undef EXPECT
}

/* ------------------------------------------------------------------ */
/* Hand-made Intel HEX. */

/* Append one record with a correct checksum. */
static void
rec(char *buf, size_t cap, unsigned addr, unsigned type, const uint8_t *d,
    size_t n, const char *eol)
{
	size_t  m   = strlen(buf);
	uint8_t sum = (uint8_t)(n + (addr >> 8) + addr + type);

	m += (size_t)snprintf(buf + m, cap - m, ":%02zX%04X%02X", n,
	    addr & 0xFFFF, type);
	for (size_t i = 0; i < n; i++) {
		m += (size_t)snprintf(buf + m, cap - m, "%02X", d[i]);
		sum = (uint8_t)(sum + d[i]);
	}
	snprintf(buf + m, cap - m, "%02X%s", (uint8_t)-sum, eol);
	assert_true(strlen(buf) < cap - 1);
}

static const uint8_t ela_0800[2] = {0x08, 0x00};
static const uint8_t bytes16[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    12, 13, 14, 15};

static void
test_ihex_good(void **state)
{
	struct fx    *f = *state;
	char          text[4096] = "";
	const uint8_t seg_1000[2] = {0x10, 0x00}, start[4] = {0, 0, 1, 0x49};

	rec(text, sizeof(text), 0, 4, ela_0800, 2, "\r\n");
	rec(text, sizeof(text), 0x0000, 0, bytes16, 16, "\r\n");
	rec(text, sizeof(text), 0x0010, 0, bytes16, 8, "\r\n");
	rec(text, sizeof(text), 0, 5, start, 4, "\r\n");
	rec(text, sizeof(text), 0, 3, start, 4, "\r\n");
	/* 02: segment 0x1000 = linear 0x10000 */
	rec(text, sizeof(text), 0, 2, seg_1000, 2, "  \n");
	rec(text, sizeof(text), 0xFFF0, 0, bytes16, 16, "\n");
	/* a record may end exactly at a 64 KiB boundary */
	rec(text, sizeof(text), 0, 1, NULL, 0, "\r\n");
	strcat(text, "\n  \r\n\t\n");
	tu_write_file(f->path, text);
	assert_int_equal(image_load(&f->img, f->path, IMAGE_AUTO, 0, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(f->img.nseg, 2);
	assert_int_equal(f->img.seg[0].addr, 0x1FFF0);
	assert_int_equal(f->img.seg[0].len, 16);
	assert_int_equal(f->img.seg[1].addr, 0x08000000u);
	assert_int_equal(f->img.seg[1].len, 24);
	assert_memory_equal(f->img.seg[1].data + 16, bytes16, 8);
	assert_int_equal(f->img.bytes, 40);
	image_free(&f->img);

	/* records out of order, adjacent: merged */
	text[0] = '\0';
	rec(text, sizeof(text), 0x0110, 0, bytes16, 16, "\n");
	rec(text, sizeof(text), 0x0100, 0, bytes16, 16, "\n");
	rec(text, sizeof(text), 0x0120, 0, bytes16, 16, "\n");
	rec(text, sizeof(text), 0, 1, NULL, 0, "");
	tu_write_file(f->path, text);
	assert_int_equal(image_load(&f->img, f->path, IMAGE_IHEX, 0, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(f->img.nseg, 1);
	assert_int_equal(f->img.seg[0].addr, 0x100);
	assert_int_equal(f->img.seg[0].len, 48);
}

static void
test_ihex_malformed(void **state)
{
	struct fx *f = *state;
	char       text[4096];
	char       bad[4096 + 64]; /* text and a few more lines */

	/* line 1: ELA, line 2: 16 bytes at 0, line 3: 8 bytes at 0x10,
	 * line 4: EOF */
	text[0] = '\0';
	rec(text, sizeof(text), 0, 4, ela_0800, 2, "\n");
	rec(text, sizeof(text), 0x0000, 0, bytes16, 16, "\n");
	rec(text, sizeof(text), 0x0010, 0, bytes16, 8, "\n");
	rec(text, sizeof(text), 0, 1, NULL, 0, "\n");

#define EXPECT(s, needle)                                                     \
	do {                                                                  \
		tu_write_file(f->path, s);                                    \
		expect_load_error(f, IMAGE_AUTO, 0, CS_EINVAL, needle);       \
	} while (0)

	/* bad checksum on line 3: its last digit changed */
	strcpy(bad, text);
	{
		char *l3 = strchr(strchr(bad, '\n') + 1, '\n') + 1;
		char *nl = strchr(l3, '\n');
		nl[-1]   = nl[-1] == '0' ? '1' : '0';
	}
	{
		char want[700];
		snprintf(want, sizeof(want), "%s:3: bad checksum", f->path);
		EXPECT(bad, want);
	}
	/* a bad hex digit (line 2, column 12) */
	strcpy(bad, text);
	strchr(bad, '\n')[12] = 'G';
	EXPECT(bad, ":2: bad hex digit 'G' in column 12");
	/* odd length: one digit dropped from line 2 */
	strcpy(bad, text);
	{
		char *l2 = strchr(bad, '\n') + 1;
		memmove(l2 + 9, l2 + 10, strlen(l2 + 10) + 1);
	}
	EXPECT(bad, ":2: odd number of hex digits");
	/* byte count that does not match */
	EXPECT(":0200000000FE\n:00000001FF\n",
	    ":1: byte count 2 does not match the 1 data bytes");
	EXPECT(":00000001\n", ":1: record of 4 bytes (5 to 260)");
	EXPECT(":\n", ":1: record of 0 bytes");
	tu_write_file(f->path, "  :00000001FF\n");
	expect_load_error(f, IMAGE_IHEX, 0, CS_EINVAL,
	    ":1: expected ':' to start a record");
	EXPECT(":00000006FA\n:00000001FF\n", ":1: unknown record type 0x06");
	EXPECT(":0100000101FD\n", ":1: end-of-file record with data");
	EXPECT(":0100000400FB\n:00000001FF\n",
	    ":1: address record of 1 bytes (expected 2)");
	EXPECT(":020000030000FB\n:00000001FF\n",
	    ":1: start address record of 2 bytes (expected 4)");
	/* a data record that would wrap inside its 64 KiB window */
	EXPECT(":02FFFF000102FD\n:00000001FF\n",
	    ":1: data record crosses a 64 KiB boundary");
	/* the last byte of the address space (04 FFFF, offset FFFF) is
	 * reachable, and nothing past it; line 4 comes after EOF */
	EXPECT(":02000004FFFFFC\n:01FFFF0042BF\n:00000001FF\n:00",
	    ":4: data after the end-of-file record");
	/* missing EOF */
	strcpy(bad, text);
	*strrchr(bad, ':') = '\0';
	EXPECT(bad, "no end-of-file record");
	EXPECT("", "neither ELF nor Intel HEX");
	/* data after EOF (line 7); blank lines alone are fine */
	snprintf(bad, sizeof(bad), "%s \n\n%s", text, ":00000001FF\n");
	EXPECT(bad, ":7: data after the end-of-file record");
	/* overlapping records (lines 2 and 3: 8 bytes at 0x0008) */
	bad[0] = '\0';
	rec(bad, sizeof(bad), 0, 4, ela_0800, 2, "\n");
	rec(bad, sizeof(bad), 0x0000, 0, bytes16, 16, "\n");
	rec(bad, sizeof(bad), 0x0008, 0, bytes16, 8, "\n");
	rec(bad, sizeof(bad), 0, 1, NULL, 0, "\n");
	EXPECT(bad, ":3: data 0x08000000-0x0800000F (from line 2) overlaps "
	    "0x08000008-0x0800000F (from line 3)");
#undef EXPECT
}

/* IMAGE_MAX_SEGMENTS separate ranges load; one more does not. */
static void
test_max_segments(void **state)
{
	struct fx *f = *state;
	char      *text = calloc(1, 64 * 1024);

	assert_non_null(text);
	for (unsigned i = 0; i < IMAGE_MAX_SEGMENTS; i++) {
		rec(text, 64 * 1024, i * 0x100, 0, bytes16, 16, "\n");
	}
	strcat(text, ":00000001FF\n");
	tu_write_file(f->path, text);
	assert_int_equal(image_load(&f->img, f->path, IMAGE_AUTO, 0, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(f->img.nseg, IMAGE_MAX_SEGMENTS);
	image_free(&f->img);

	*strrchr(text, ':') = '\0';
	rec(text, 64 * 1024, 0xF000, 0, bytes16, 16, "\n");
	strcat(text, ":00000001FF\n");
	tu_write_file(f->path, text);
	expect_load_error(f, IMAGE_AUTO, 0, CS_ETOOBIG,
	    "65 separate address ranges (at most 64)");
	free(text);
}

/* ------------------------------------------------------------------ */

/* An image of len bytes at addr (through a raw binary). */
static void
load_at(struct fx *f, uint32_t addr, size_t len)
{
	uint8_t *d = calloc(1, len);

	assert_non_null(d);
	image_free(&f->img);
	write_bytes(f->path, d, len);
	free(d);
	assert_int_equal(image_load(&f->img, f->path, IMAGE_BIN, addr, f->err,
	    sizeof(f->err)), CS_OK);
}

static void
check_against(struct fx *f, const struct target *t, const char *needle)
{
	int rv = image_check(&f->img, t, f->err, sizeof(f->err));
	if (needle == NULL) {
		if (rv != CS_OK) {
			fail_msg("refused: %s", f->err);
		}
		return;
	}
	if (rv != CS_EINVAL || strcmp(f->err, needle) != 0) {
		fail_msg("got %d \"%s\", want \"%s\"", rv, f->err, needle);
	}
}

static void
test_check(void **state)
{
	struct fx        *f = *state;
	const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	struct target     lm, st;

	assert_int_equal(target_load(&lm, "lm3s6965", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(target_load(&st, "stm32f407", dirs, f->err,
	    sizeof(f->err)), CS_OK);

	/* all of flash below the record area (it runs to the end) */
	load_at(f, 0, 0x3F000);
	check_against(f, &lm, NULL);
	load_at(f, 0x3F400, 0xC00);
	check_against(f, &lm, "0x0003F400-0x0003FFFF is in the record area "
	    "of lm3s6965 (0x0003F000-0x0003FFFF), which only the station "
	    "writes");
	/* one byte into the record page, from either side */
	load_at(f, 0x3EF00, 0x101);
	check_against(f, &lm, "0x0003F000-0x0003F000 is in the record area "
	    "of lm3s6965 (0x0003F000-0x0003FFFF), which only the station "
	    "writes");
	load_at(f, 0x3F3FF, 0x10);
	check_against(f, &lm, "0x0003F3FF-0x0003F40E is in the record area "
	    "of lm3s6965 (0x0003F000-0x0003FFFF), which only the station "
	    "writes");
	/* past the end of flash, before its start */
	load_at(f, 0x40000, 0x200);
	check_against(f, &lm, "0x00040000-0x000401FF is outside the flash of "
	    "lm3s6965 (0x00000000-0x0003FFFF)");
	load_at(f, 0x07FFFF00, 0x200);
	check_against(f, &st, "0x07FFFF00-0x07FFFFFF is outside the flash of "
	    "stm32f407 (0x08000000-0x080FFFFF)");
	load_at(f, 0x20000000, 0x10);
	check_against(f, &st, "0x20000000-0x2000000F is outside the flash of "
	    "stm32f407 (0x08000000-0x080FFFFF)");
	/* the STM32's record sits in sector 1 */
	load_at(f, 0x08000000, 0x4000);
	check_against(f, &st, NULL);
	load_at(f, 0x08000000, 0x4001);
	check_against(f, &st, "0x08004000-0x08004000 is in the record area "
	    "of stm32f407 (0x08004000-0x08007FFF), which only the station "
	    "writes");
	load_at(f, 0x08008000, 0xF8000);
	check_against(f, &st, NULL);
}

/* ------------------------------------------------------------------ */
/* The firmware digest on hand-made images. */

/* Segment i of img: len bytes at addr, each byte (i + 1) * 16 + offset. */
static void
add_seg(struct image *img, uint32_t addr, uint32_t len)
{
	struct image_segment *sg = &img->seg[img->nseg];

	sg->addr = addr;
	sg->len  = len;
	sg->data = malloc(len);
	assert_non_null(sg->data);
	for (uint32_t k = 0; k < len; k++) {
		sg->data[k] = (uint8_t)((img->nseg + 1) * 16 + k);
	}
	img->nseg++;
	img->bytes += len;
}

/* Copy segment bytes of img that fall in [base, base + len) into buf. */
static void
paint(const struct image *img, uint32_t base, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < img->nseg; i++) {
		for (uint32_t k = 0; k < img->seg[i].len; k++) {
			uint32_t a = img->seg[i].addr + k;
			if (a >= base && a - base < len) {
				buf[a - base] = img->seg[i].data[k];
			}
		}
	}
}

static void
test_digest_gap(void **state)
{
	struct fx        *f = *state;
	const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	struct target     lm;
	uint8_t           want[0x300], d[32], dw[32];
	struct image      m;

	assert_int_equal(target_load(&lm, "lm3s6965", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	/* 0x100 bytes at 0x1000, a gap of 0x100, 0x100 bytes at 0x1200 */
	add_seg(&f->img, 0x1000, 0x100);
	add_seg(&f->img, 0x1200, 0x100);
	assert_int_equal(image_check(&f->img, &lm, f->err, sizeof(f->err)),
	    CS_OK);
	/* by hand: the span 0x1000-0x12FF, the gap 0xFF */
	memset(want, 0xFF, sizeof(want));
	paint(&f->img, 0x1000, want, sizeof(want));
	assert_int_equal(want[0x100], 0xFF);
	assert_int_equal(want[0x1FF], 0xFF);
	assert_int_equal(want[0x200], 0x20);
	assert_int_equal(cs_sha256(want, sizeof(want), dw), CS_OK);
	assert_int_equal(image_digest(&f->img, &lm, d), CS_OK);
	assert_memory_equal(d, dw, 32);
	/* the measured form is that span in one piece */
	assert_int_equal(image_measured(&f->img, &lm, &m), CS_OK);
	assert_int_equal(m.nseg, 1);
	assert_int_equal(m.seg[0].addr, 0x1000);
	assert_int_equal(m.seg[0].len, sizeof(want));
	assert_memory_equal(m.seg[0].data, want, sizeof(want));
	image_free(&m);
	/* a gap of 0x00 bytes is another firmware (what QEMU's -kernel
	 * would load there) */
	memset(want + 0x100, 0x00, 0x100);
	assert_int_equal(cs_sha256(want, sizeof(want), dw), CS_OK);
	assert_memory_not_equal(d, dw, 32);
	/* an empty image has no digest */
	image_free(&f->img);
	assert_int_equal(image_digest(&f->img, &lm, d), CS_EINVAL);
}

/* An image on both sides of the STM32F407's record area (sector 1,
 * 0x08004000-0x08007FFF). */
static void
test_digest_record_area(void **state)
{
	struct fx        *f = *state;
	const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	struct target     st;
	struct image      m, back;
	/* measured: 0x08000000-0x08003FFF and 0x08008000-0x0800810F */
	static uint8_t    lo[0x4000], hi[0x110], flat_want[0x8110];
	uint8_t          *both, *flat, d[32], dw[32];
	uint32_t          base;
	size_t            flen;

	assert_int_equal(target_load(&st, "stm32f407", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(st.record_addr, 0x08004000u);
	assert_int_equal(st.record_size, 0x4000u);
	add_seg(&f->img, 0x08000000u, 0x100); /* vectors + boot code */
	add_seg(&f->img, 0x08008000u, 0x80);  /* the application... */
	add_seg(&f->img, 0x08008100u, 0x10);  /* ...with a gap */
	assert_int_equal(image_check(&f->img, &st, f->err, sizeof(f->err)),
	    CS_OK);

	/* by hand: below the record area, then above it; the record area
	 * itself (16 KiB) is not hashed at all, not even as 0xFF */
	memset(lo, 0xFF, sizeof(lo));
	memset(hi, 0xFF, sizeof(hi));
	paint(&f->img, 0x08000000u, lo, sizeof(lo));
	paint(&f->img, 0x08008000u, hi, sizeof(hi));
	both = malloc(sizeof(lo) + sizeof(hi));
	assert_non_null(both);
	memcpy(both, lo, sizeof(lo));
	memcpy(both + sizeof(lo), hi, sizeof(hi));
	assert_int_equal(cs_sha256(both, sizeof(lo) + sizeof(hi), dw), CS_OK);
	free(both);
	assert_int_equal(image_digest(&f->img, &st, d), CS_OK);
	assert_memory_equal(d, dw, 32);

	/* the measured form: those two pieces, which the station programs */
	assert_int_equal(image_measured(&f->img, &st, &m), CS_OK);
	assert_int_equal(m.nseg, 2);
	assert_int_equal(m.seg[0].addr, 0x08000000u);
	assert_int_equal(m.seg[0].len, sizeof(lo));
	assert_memory_equal(m.seg[0].data, lo, sizeof(lo));
	assert_int_equal(m.seg[1].addr, 0x08008000u);
	assert_int_equal(m.seg[1].len, sizeof(hi));
	assert_memory_equal(m.seg[1].data, hi, sizeof(hi));

	/* the flat form spans the record area as 0xFF */
	assert_int_equal(image_flatten(&f->img, &st, &base, &flat, &flen),
	    CS_OK);
	memset(flat_want, 0xFF, sizeof(flat_want));
	paint(&f->img, 0x08000000u, flat_want, sizeof(flat_want));
	assert_int_equal(base, 0x08000000u);
	assert_int_equal(flen, sizeof(flat_want));
	assert_memory_equal(flat, flat_want, flen);

	/* and back: exactly the measured form, the same digest; whatever
	 * the flat bytes say about the record area is dropped */
	flat[0x4000] = 0x42;
	assert_int_equal(image_from_flat(&back, &st, base, flat, flen,
	    f->err, sizeof(f->err)), CS_OK);
	free(flat);
	assert_int_equal(back.nseg, m.nseg);
	for (size_t i = 0; i < m.nseg; i++) {
		assert_int_equal(back.seg[i].addr, m.seg[i].addr);
		assert_int_equal(back.seg[i].len, m.seg[i].len);
		assert_memory_equal(back.seg[i].data, m.seg[i].data,
		    m.seg[i].len);
	}
	assert_int_equal(image_digest(&back, &st, dw), CS_OK);
	assert_memory_equal(dw, d, 32);
	image_free(&back);
	image_free(&m);
}

/* image_from_flat checks what it rebuilds like a loaded image. */
static void
test_from_flat_refused(void **state)
{
	struct fx        *f = *state;
	const char *const dirs[] = {CS_TARGETS_DIR, NULL};
	struct target     lm, st;
	static uint8_t    buf[0x2001]; /* the longest case below */
	struct image      back;

	memset(buf, 0xA5, sizeof(buf));
	assert_int_equal(target_load(&lm, "lm3s6965", dirs, f->err,
	    sizeof(f->err)), CS_OK);
	assert_int_equal(target_load(&st, "stm32f407", dirs, f->err,
	    sizeof(f->err)), CS_OK);

#define REFUSED(t, base, len, needle)                                         \
	do {                                                                  \
		int rv_ = image_from_flat(&back, t, base, buf, len, f->err,   \
		    sizeof(f->err));                                          \
		if (rv_ != CS_EINVAL || strstr(f->err, needle) == NULL) {     \
			fail_msg("got %d \"%s\", want \"%s\"", rv_, f->err,   \
			    needle);                                          \
		}                                                             \
		assert_int_equal(back.nseg, 0);                               \
	} while (0)

	/* before the STM32's flash, by one byte */
	REFUSED(&st, 0x07FFFFFFu, 0x100, "0x07FFFFFF-0x07FFFFFF is outside "
	    "the flash of stm32f407");
	/* in RAM */
	REFUSED(&st, 0x20000000u, 0x100, "is outside the flash");
	/* past the end of the LM3S6965's flash, beyond its record area */
	REFUSED(&lm, 0x3E000u, 0x2001, "0x00040000-0x00040000 is outside "
	    "the flash of lm3s6965");
	/* empty, past 4 GiB */
	REFUSED(&lm, 0, 0, "is empty, too big or runs past 4 GiB");
	REFUSED(&lm, 0xFFFFF000u, 0x2000, "is empty, too big or runs past "
	    "4 GiB");
#undef REFUSED

	/* up to the end of flash: the record area is cut out, nothing of
	 * it is kept */
	assert_int_equal(image_from_flat(&back, &lm, 0x3E000u, buf, 0x2000,
	    f->err, sizeof(f->err)), CS_OK);
	assert_int_equal(back.nseg, 1);
	assert_int_equal(back.seg[0].addr, 0x3E000u);
	assert_int_equal(back.seg[0].len, 0x1000);
	image_free(&back);
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_firmware),
	    T(test_bin),
	    T(test_max_bytes),
	    T(test_elf_good),
	    T(test_elf_malformed),
	    T(test_ihex_good),
	    T(test_ihex_malformed),
	    T(test_max_segments),
	    T(test_check),
	    T(test_digest_gap),
	    T(test_digest_record_area),
	    T(test_from_flat_refused),
	};
#undef T
	return tu_run_tests("image_test", tests, NULL, NULL);
}
