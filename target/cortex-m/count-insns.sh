#!/bin/sh
# count-insns.sh FW.ELF RECORD.BIN UID_DATA [OUT]
#
# Count the guest instructions one cs_verify_record call executes in the
# example firmware on QEMU's lm3s6965evb, and those of the firmware
# measuring itself before it (cs_fw_measure).  QEMU models no cycles, so the
# count comes from its execution trace: with -d in_asm,exec,nochain every
# translated block is printed once with its instructions (in_asm) and
# every execution of a block is logged (exec; nochain makes each one
# visible).  The instructions of the blocks executed between the markers
# cs_mark_verify_start and cs_mark_verify_end (empty functions around the
# call in main.c) are summed; likewise between cs_mark_measure_start and
# cs_mark_measure_end.  -icount shift=0 keeps the run deterministic.
# UID_DATA is the loader value for the UID mailbox, e.g.
# 0xefcdab8967452301.  Prints "measure instructions: N",
# "verify instructions: N" and the firmware's own lines (its stack
# high-water mark and verdict); with OUT, writes them there as well (the
# example's build does, after each link, for footprint-report.sh).
set -eu

if [ $# -ne 3 ] && [ $# -ne 4 ]; then
	echo "usage: count-insns.sh FW.ELF RECORD.BIN UID_DATA [OUT]" >&2
	exit 2
fi
elf=$1
record=$2
uid=$3
out=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

addr() {
	arm-none-eabi-nm "$elf" | awk -v s="$1" '$3 == s { print $1 }'
}
start=$(addr cs_mark_verify_start)
end=$(addr cs_mark_verify_end)
mstart=$(addr cs_mark_measure_start)
mend=$(addr cs_mark_measure_end)
[ -n "$start" ] && [ -n "$end" ] && [ -n "$mstart" ] && [ -n "$mend" ] || {
	echo "count-insns.sh: markers not found in $elf" >&2
	exit 1
}
mkfifo "$tmp/log"
awk -v start="$start" -v end="$end" -v mstart="$mstart" -v mend="$mend" '
	function hex(s) { return tolower(sprintf("%08s", s)) }
	BEGIN { start = hex(start); end = hex(end); state = 0; n = 0
		mstart = hex(mstart); mend = hex(mend); mstate = 0; m = 0 }
	/^IN:/ { tb = ""; next }
	/^0x[0-9a-f]+:/ {
		a = substr($1, 3, 8)
		if (tb == "") { tb = a; size[tb] = 0 }
		size[tb]++
		next
	}
	/^Trace / {
		if (match($0, /\[[0-9a-f]+\/[0-9a-f]+\//) == 0) next
		split(substr($0, RSTART + 1, RLENGTH - 2), f, "/")
		pc = f[2]
		if (pc == mstart) { mstate = 1; next }
		if (pc == mend && mstate == 1) { mstate = 2; next }
		if (mstate == 1) m += size[pc]
		if (pc == start) { state = 1; next }
		if (pc == end && state == 1) { state = 2; next }
		if (state == 1) n += size[pc]
	}
	END { if (state != 2 || mstate != 2) {
		print "markers not reached" > "/dev/stderr"; exit 1 }
		print "measure instructions: " m
		print "verify instructions: " n }
' <"$tmp/log" >"$tmp/counts" &
counter=$!
qemu-system-arm -M lm3s6965evb -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -icount shift=0 \
    -kernel "$elf" -device "loader,file=$record,addr=0x3F000" \
    -device "loader,addr=0x2000FF00,data=$uid,data-len=8" \
    -d in_asm,exec,nochain -D "$tmp/log" >"$tmp/out" 2>&1 || true
wait "$counter"
grep '^countersign:' "$tmp/out" >>"$tmp/counts" || true
cat "$tmp/counts"
if [ -n "$out" ]; then
	cp "$tmp/counts" "$out"
fi
