#!/bin/sh
# check-image-span.sh ELF
#
# Check, after every link of the example firmware, that the span the
# firmware measures (__cs_image_start .. __cs_image_end, from its linker
# script) is the span the station and the authority measure from the ELF
# (docs/record-format.md, "Firmware digest"):
#
#   - __cs_image_start is the lowest p_paddr and __cs_image_end the
#     highest p_paddr + p_filesz of the PT_LOAD segments with file bytes;
#   - the span has no gap: `objcopy -O binary` with --gap-fill=0xff and
#     with --gap-fill=0x00 write the same bytes, end - start of them.
#     (The station programs gaps as 0xFF, so they would be measured
#     right on a device it programs; but QEMU's -kernel and other loaders
#     leave them 0x00, and the example must boot under both.)
#
# Prints "image span: 0xSTART-0xEND (N bytes), no gaps" or an error and
# exits 1.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: check-image-span.sh ELF" >&2
	exit 2
fi
elf=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sym() {
	arm-none-eabi-nm "$elf" | awk -v s="$1" '$3 == s { print $1 }'
}
start=$(sym __cs_image_start)
end=$(sym __cs_image_end)
[ -n "$start" ] && [ -n "$end" ] || {
	echo "check-image-span.sh: error: $elf defines no" \
	    "__cs_image_start/__cs_image_end" >&2
	exit 1
}
# LOAD lines: Type Offset VirtAddr PhysAddr FileSiz MemSiz ...
span=$(arm-none-eabi-readelf -lW "$elf" | awk '
	function num(h,    i, v) {
		h = tolower(substr(h, 3)); v = 0
		for (i = 1; i <= length(h); i++)
			v = v * 16 + \
			    index("0123456789abcdef", substr(h, i, 1)) - 1
		return v
	}
	$1 == "LOAD" && num($5) > 0 {
		a = num($4); b = a + num($5)
		if (n++ == 0 || a < lo) lo = a
		if (b > hi) hi = b
	}
	END { if (n == 0) exit 1; printf "%08x %08x", lo, hi }
')
lo=${span% *}
hi=${span#* }
if [ "$lo" != "$start" ] || [ "$hi" != "$end" ]; then
	echo "check-image-span.sh: error: the linker script says" \
	    "0x$start-0x$end, the program headers 0x$lo-0x$hi" >&2
	exit 1
fi
arm-none-eabi-objcopy -O binary --gap-fill=0xff "$elf" "$tmp/ff.bin"
arm-none-eabi-objcopy -O binary --gap-fill=0x00 "$elf" "$tmp/00.bin"
size=$(wc -c <"$tmp/ff.bin")
if [ "$size" -ne $((0x$end - 0x$start)) ]; then
	echo "check-image-span.sh: error: objcopy wrote $size bytes for" \
	    "0x$start-0x$end" >&2
	exit 1
fi
if ! cmp -s "$tmp/ff.bin" "$tmp/00.bin"; then
	first=$(cmp "$tmp/ff.bin" "$tmp/00.bin" | sed 's/.*byte //')
	echo "check-image-span.sh: error: the span 0x$start-0x$end has" \
	    "gaps (the first at byte $first)" >&2
	exit 1
fi
echo "image span: 0x$start-0x$end ($size bytes), no gaps"
