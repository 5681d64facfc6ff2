#!/bin/sh
# footprint-report.sh [--check] IMAGE=DIR...
#
# The verifier's footprint in each example firmware image, side by side,
# against the design budgets.  DIR is an image's build directory (the
# host build's target/fw-<image>); from it:
#
#   footprint.txt  footprint.sh's line: text, data, bss and the static
#                  worst-path stack of cs_verify_record
#   insns.txt      count-insns.sh's output for a verify of a good record:
#                  instructions, the painted stack's high-water mark of the
#                  whole run and the verdict
#   CMakeCache.txt CS_FW_PROFILE (size or speed)
#
# Budgets (the verifier including crypto; flash = text + data):
#
#   size profile   flash <= 10240 bytes, stack <= 2560 bytes, both the
#                  static figure and the painted high-water mark (which
#                  also holds main's frame and the startup code)
#   speed profile  flash <= 20480 bytes; its stack is reported, not
#                  budgeted (wolfCrypt's fast verify keeps ~5.5 KB of
#                  temporaries on the stack)
#
# The milliseconds are instructions / clock at one instruction per cycle,
# a lower bound: a Cortex-M3 from flash with wait states takes roughly
# 1.2-1.5 cycles per instruction on this code.
#
# Prints the table.  With --check, exits 1 when an image is over its
# budget, when a file is missing or unreadable, or when the counted verify
# did not authorize the device (a count of a refusal would be too low);
# without it, always exits 0 after printing (the build's report).
set -eu

check=0
if [ "${1:-}" = "--check" ]; then
	check=1
	shift
fi
if [ $# -lt 1 ]; then
	echo "usage: footprint-report.sh [--check] IMAGE=DIR..." >&2
	exit 2
fi

fail=0
printf '%-10s %-7s %6s %6s %5s %5s %6s %7s %8s %6s %6s  %s\n' \
    image profile flash text data bss stack painted "M insns" \
    "ms@64" "ms@168" budget
for arg in "$@"; do
	image=${arg%%=*}
	dir=${arg#*=}
	profile=$(sed -n 's/^CS_FW_PROFILE:[A-Z]*=//p' \
	    "$dir/CMakeCache.txt" 2>/dev/null || true)
	fp=$(cat "$dir/footprint.txt" 2>/dev/null || true)
	insns=$(cat "$dir/insns.txt" 2>/dev/null || true)
	line=$(printf '%s\n%s\n' "$fp" "$insns" | awk -v image="$image" \
	    -v profile="$profile" '
		/^verifier footprint:/ {
			for (i = 3; i <= NF; i++) {
				split($i, kv, "=")
				v[kv[1]] = kv[2]
			}
			have_fp = 1
		}
		/^verify instructions:/ { n = $3; have_n = 1 }
		/^countersign: stack high-water mark/ { painted = $5 }
		/^countersign: device authorized/ { ok = 1 }
		END {
			problem = ""
			if (profile != "size" && profile != "speed")
				problem = problem " no-profile"
			if (!have_fp) problem = problem " no-footprint.txt"
			if (!have_n || painted == "")
				problem = problem " no-insns.txt"
			else if (!ok) problem = problem " verify-not-authorized"
			flash = v["text"] + v["data"]
			over = ""
			if (profile == "size") {
				budget = "flash<=10240 stack<=2560"
				if (flash > 10240) over = over " flash"
				if (v["stack"] > 2560) over = over " stack"
				if (painted != "" && painted > 2560)
					over = over " painted"
			} else {
				budget = "flash<=20480"
				if (flash > 20480) over = over " flash"
			}
			verdict = problem != "" ? "ERROR:" problem : \
			    (over != "" ? "OVER:" over : "ok")
			if (have_n) {
				m = sprintf("%.2f", n / 1e6)
				ms64 = sprintf("%.0f", n / 64e3)
				ms168 = sprintf("%.0f", n / 168e3)
			} else {
				m = "-"; ms64 = "-"; ms168 = "-"
			}
			fmt = "%-10s %-7s %6d %6d %5d %5d %6d %7s %8s %6s %6s"
			printf fmt "  %s: %s\n", image, profile, flash,
			    v["text"], v["data"], v["bss"], v["stack"],
			    painted == "" ? "-" : painted, m, ms64, ms168,
			    budget, verdict
		}')
	echo "$line"
	case $line in
	*": ok") ;;
	*) fail=1 ;;
	esac
done
echo "(flash = text + data; stack = footprint.sh's static worst path of" \
    "cs_verify_record; painted = the firmware's high-water mark; ms at one" \
    "instruction per cycle)"
if [ "$check" -eq 1 ] && [ "$fail" -ne 0 ]; then
	echo "footprint-report.sh: over budget or incomplete (see above)" >&2
	exit 1
fi
exit 0
