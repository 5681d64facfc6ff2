#!/bin/sh
# footprint.sh MAP ELF OUT OBJ...
#
# Print the footprint of the verifier including crypto in the example
# firmware, as one line:
#
#   verifier footprint: text=<bytes> data=<bytes> bss=<bytes> stack=<bytes>
#
# text/data/bss: from the linker map MAP, the sizes of every input section
# the final image keeps (after --gc-sections) except those of the example's
# own harness (the executable's objects: main.c, startup.c, semihost.c; and
# its measuring library, libcs_fw_measure.a: measure.c and, in the Ed25519
# image, the SHA-256 only the measuring uses): the verifier, wolfCrypt and
# the libc/libgcc helpers they pull in.  text includes read-only data and
# .ARM.exidx; data is initialised RAM (its image also occupies flash).
#
# stack: the worst call path from cs_verify_record, summed over the
# per-function frame sizes GCC wrote with -fstack-usage into the call graph
# files (-fcallgraph-info=su: X.ci beside each object X.obj of the
# verifier library, OBJ...).  Functions without a
# frame size (libc's memcpy & co., compiled elsewhere) count as 0 and are
# listed; a dynamic frame or a cycle makes the result unbounded and is
# reported as an error.  The line is also written to OUT.  Exits 1 when
# ELF links malloc: the verifier must not use a heap.
set -eu

if [ $# -lt 4 ]; then
	echo "usage: footprint.sh MAP ELF OUT OBJ..." >&2
	exit 2
fi
map=$1
elf=$2
out=$3
shift 3
cis=
for obj in "$@"; do
	ci=${obj%.obj}.ci
	[ -f "$ci" ] || {
		echo "footprint.sh: error: $ci missing (build with" \
		    "-fcallgraph-info=su)" >&2
		exit 1
	}
	cis="$cis $ci"
done

if arm-none-eabi-nm "$elf" | awk '$3 == "malloc" || $3 == "_malloc_r" \
    || $3 == "calloc" || $3 == "realloc" { found = 1 }
    END { exit !found }'; then
	echo "footprint.sh: error: $elf links a heap allocator" >&2
	exit 1
fi

sizes=$(awk '
	/^Linker script and memory map/ { on = 1; next }
	!on { next }
	/^[.A-Za-z_]/ { osec = $1; pending = ""; next }
	/^ \*\(/ || /^ \*fill\*/ { pending = ""; next }
	/^ [.A-Za-z_]/ {
		if (NF >= 4 && $2 ~ /^0x/ && $3 ~ /^0x/) {
			add(osec, $3, $4)
			pending = ""
		} else if (NF == 1) {
			pending = $1
		}
		next
	}
	/^  +0x[0-9a-f]+ +0x[0-9a-f]+ / {
		if (pending != "") { add(osec, $2, $3); pending = "" }
		next
	}
	function add(sec, size, file,    n) {
		if (file ~ /countersign-fw\.elf\.dir\// ||
		    file ~ /libcs_fw_measure\.a\(/) return
		n = strtonum_(size)
		if (sec == ".text" || sec == ".ARM.exidx") text += n
		else if (sec == ".data") data += n
		else if (sec == ".bss") bss += n
	}
	function strtonum_(h,    i, c, v) {
		h = tolower(substr(h, 3)); v = 0
		for (i = 1; i <= length(h); i++) {
			c = index("0123456789abcdef", substr(h, i, 1)) - 1
			v = v * 16 + c
		}
		return v
	}
	END { printf "text=%d data=%d bss=%d", text, data, bss }
' "$map")

# shellcheck disable=SC2086
stack=$(cat $cis | awk '
	/^node:/ {
		t = $0; sub(/.*title: "/, "", t); sub(/".*/, "", t)
		if (match($0, /[0-9]+ bytes \([a-z,]+\)/)) {
			split(substr($0, RSTART, RLENGTH), f, " ")
			frame[t] = f[1] + 0
			if (f[3] != "(static)") dyn[t] = f[3]
		}
		next
	}
	/^edge:/ {
		s = $0; sub(/.*sourcename: "/, "", s); sub(/".*/, "", s)
		d = $0; sub(/.*targetname: "/, "", d); sub(/".*/, "", d)
		callees[s] = callees[s] "\n" d
		next
	}
	function worst(fn,    n, i, list, best, w) {
		if (fn in memo) return memo[fn]
		if (fn in busy) { cycle = cycle " " fn; return 0 }
		if (!(fn in frame)) { unknown[fn] = 1; return 0 }
		if (fn in dyn) dynamic = dynamic " " fn
		busy[fn] = 1
		best = 0
		n = split(callees[fn], list, "\n")
		for (i = 1; i <= n; i++) {
			if (list[i] == "") continue
			w = worst(list[i])
			if (w > best) { best = w; next_fn[fn] = list[i] }
		}
		delete busy[fn]
		memo[fn] = frame[fn] + best
		return memo[fn]
	}
	END {
		s = worst("cs_verify_record")
		u = ""
		for (g in unknown) u = u " " g
		p = ""
		for (f2 = "cs_verify_record"; f2 != ""; f2 = next_fn[f2]) {
			q = f2; sub(/.*:/, "", q)
			p = p (p == "" ? "" : " > ") q "(" frame[f2] + 0 ")"
		}
		printf "%d\n%s\n%s\n%s\n%s\n", s, u, cycle, dynamic, p
	}
')
stack_bytes=$(echo "$stack" | sed -n 1p)
unknown=$(echo "$stack" | sed -n 2p)
cycle=$(echo "$stack" | sed -n 3p)
dynamic=$(echo "$stack" | sed -n 4p)
path=$(echo "$stack" | sed -n 5p)
if [ -n "$cycle" ] || [ -n "$dynamic" ]; then
	echo "footprint.sh: error: stack of cs_verify_record is unbounded" \
	    "(recursion:$cycle; dynamic frames:$dynamic)" >&2
	exit 1
fi
line="verifier footprint: $sizes stack=$stack_bytes"
echo "$line"
echo "$line" >"$out"
echo "footprint.sh: worst stack path: $path"
echo "footprint.sh: stack counts 0 for functions without frame data:$unknown"
