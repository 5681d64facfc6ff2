#!/usr/bin/env bash
# The one test command: install what is missing, build with warnings as
# errors, run every test; then build and run the whole suite again with
# AddressSanitizer and UndefinedBehaviorSanitizer.  Exits non-zero on any
# failure.  Build trees go to $CS_BUILD_DIR (default: build/).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
build=${CS_BUILD_DIR:-$top/build}
jobs=${CS_TEST_JOBS:-2}

"$top/deploy/bootstrap.sh"

run_suite() {
	local name=$1
	shift
	echo "== $name: configure and build"
	cmake -S "$top" -B "$build/$name" -G Ninja -DCS_WERROR=ON "$@" >/dev/null
	cmake --build "$build/$name"
	echo "== $name: test"
	(cd "$build/$name" && ctest --output-on-failure -j "$jobs")
}

run_suite default -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCS_DEPS_DIR="$build/_deps"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite sanitize -DCMAKE_BUILD_TYPE=Debug -DCS_SANITIZE=ON -DCS_DEPS_DIR="$build/_deps"

echo "== all test suites passed"
