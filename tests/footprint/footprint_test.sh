#!/bin/sh
# footprint_test.sh REPORT IMAGE=DIR...
#
# The verifier's footprint in the example firmware images against the
# design budgets: REPORT (target/cortex-m/footprint-report.sh) --check on
# the images the build made must pass (size profile: flash <= 10 KB,
# stack <= 2.5 KB static and painted; speed profile: flash <= 20 KB; every
# counted verify authorized).  First the check itself is shown to fail on
# made-up images just over each budget, so that a broken report cannot
# pass by accident.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: footprint_test.sh REPORT IMAGE=DIR..." >&2
	exit 2
fi
report=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fake NAME PROFILE TEXT DATA STACK PAINTED VERDICT
fake() {
	mkdir -p "$tmp/$1"
	echo "CS_FW_PROFILE:STRING=$2" >"$tmp/$1/CMakeCache.txt"
	echo "verifier footprint: text=$3 data=$4 bss=0 stack=$5" \
	    >"$tmp/$1/footprint.txt"
	{
		echo "verify instructions: 1000"
		echo "countersign: stack high-water mark $6 bytes"
		echo "countersign: $7"
	} >"$tmp/$1/insns.txt"
}
expect() {
	want=$1
	shift
	got=0
	sh "$report" --check "$@" >"$tmp/out" 2>&1 || got=1
	if [ "$got" -ne "$want" ]; then
		echo "footprint_test: --check $* exited $got, wanted $want:" >&2
		cat "$tmp/out" >&2
		exit 1
	fi
}

fake fit size 10000 240 2560 2560 "device authorized"
fake speedfit speed 20000 480 6000 6100 "device authorized"
expect 0 "fit=$tmp/fit" "speedfit=$tmp/speedfit"
fake flash size 10000 241 2000 2100 "device authorized"
expect 1 "flash=$tmp/flash"
fake stack size 9000 0 2561 2000 "device authorized"
expect 1 "stack=$tmp/stack"
fake painted size 9000 0 2000 2561 "device authorized"
expect 1 "painted=$tmp/painted"
fake speedflash speed 20481 0 6000 6100 "device authorized"
expect 1 "speedflash=$tmp/speedflash"
fake refused size 9000 0 2000 2100 "UNAUTHORIZED DEVICE (BAD_SIGNATURE)"
expect 1 "refused=$tmp/refused"
mkdir -p "$tmp/empty"
expect 1 "empty=$tmp/empty"
echo "footprint_test: the check refuses each made-up image over budget"

# The images of this build.
sh "$report" --check "$@"
