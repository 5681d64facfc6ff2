#!/bin/sh
# run-fuzz.sh CLANG SOURCE_DIR WORK_DIR SECONDS
#
# Build the record parser/verifier fuzzer with clang's libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer (linking Debian's
# libwolfssl), seed it with the worked-example records of
# docs/record-format.md and a few edge cases, and run it for SECONDS.  Any
# crash, sanitizer report or abort fails (non-zero exit; the reproducer is
# left in WORK_DIR).  Registered as the ctest test fuzz_record.
set -eu

if [ $# -ne 4 ]; then
	echo "usage: run-fuzz.sh CLANG SOURCE_DIR WORK_DIR SECONDS" >&2
	exit 2
fi
clang=$1
src=$2
work=$3
seconds=$4

rm -rf "$work"
mkdir -p "$work/corpus"
"$clang" -g -O1 -std=c99 -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -DCS_CRYPTO_WOLFCRYPT -I"$src/target/include" \
    "$src/tests/fuzz/fuzz_record.c" "$src/target/src/verify.c" \
    "$src/target/src/crypto_wolfcrypt.c" \
    $(pkg-config --cflags --libs wolfssl) -o "$work/fuzz_record"

# Seeds: the worked examples (hex blocks after their markers) ...
for ex in p256 ed25519; do
	awk -v m="<!-- example:$ex-record -->" '
		$0 == m { on = 1; next }
		on && /^```/ { if (++fence == 2) exit; next }
		on && fence == 1 { print }
	' "$src/docs/record-format.md" | xxd -r -p >"$work/corpus/$ex"
	[ -s "$work/corpus/$ex" ] || {
		echo "run-fuzz.sh: no $ex example in docs/record-format.md" >&2
		exit 1
	}
done
# ... and a header alone, and the largest declared size.
head -c 32 "$work/corpus/p256" >"$work/corpus/header"
{ printf 'CSRD\001\001\001\040'; head -c 152 /dev/zero; } \
    >"$work/corpus/max"

cd "$work"
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1:abort_on_error=1 \
    ./fuzz_record -max_total_time="$seconds" -max_len=512 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 corpus
