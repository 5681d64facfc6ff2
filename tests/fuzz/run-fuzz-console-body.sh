#!/bin/sh
# run-fuzz-console-body.sh CLANG SOURCE_DIR WORK_DIR SECONDS
#
# Build the console's request-body fuzzer with clang's libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer, seed it with the bodies
# of docs/console.md's routes and a few edge cases, and run it for
# SECONDS.  Any crash, sanitizer report, leak or abort fails (non-zero
# exit; the reproducer is left in WORK_DIR).  Registered as the ctest
# test fuzz_console_body.
#
# The parser's part of cs_common (cs_json.c, and cs_hex.c which it calls)
# is compiled here from source rather than linked from the build's
# libcs_common.a: the project's compiler may be gcc, and its objects
# would carry neither libFuzzer's coverage nor clang's sanitizers.
set -eu

if [ $# -ne 4 ]; then
	echo "usage: run-fuzz-console-body.sh CLANG SOURCE_DIR WORK_DIR" \
	    "SECONDS" >&2
	exit 2
fi
clang=$1
src=$2
work=$3
seconds=$4

rm -rf "$work"
mkdir -p "$work/corpus"
"$clang" -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$src/authority" -I"$src/common" \
    "$src/tests/fuzz/fuzz_console_body.c" "$src/authority/console_body.c" \
    "$src/common/cs_json.c" "$src/common/cs_hex.c" \
    $(pkg-config --cflags --libs jansson) -o "$work/fuzz_console_body"

# Seeds: what the routes accept ...
seed() {
	printf '%s' "$2" >"$work/corpus/$1"
}
seed login '{"token": "051a77e13babd07f4af8fd1ab4b3d8414f9586f6cde0aae594d517d599669a72"}'
seed order '{"order_id": "PO-1", "product_id": 4660, "key_label": "k1", "quota": 100, "uid_len": 8, "cms": ["acme", "b"], "expires_unix_s": null, "firmware_sha256": ""}'
seed quota '{"delta": -20}'
# ... and what they must refuse.
seed empty ''
seed real '{"delta": 1.5}'
seed nested '{"a": {"b": 1}}'
seed deep '{"a": [[1]]}'
seed dup '{"a": 1, "a": 2}'
seed nul '{"a": "\u0000"}'
seed trail '{} {}'

cd "$work"
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1:abort_on_error=1 \
    ./fuzz_console_body -max_total_time="$seconds" -max_len=65536 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 corpus
