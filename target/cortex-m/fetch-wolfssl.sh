#!/bin/sh
# fetch-wolfssl.sh DEPS_DIR
#
# Fetch Debian's wolfssl *source package* (the one behind the
# libwolfssl-dev the host build links) into DEPS_DIR and unpack it to
# DEPS_DIR/wolfssl-src, for the Cortex-M build to compile the few wolfCrypt
# files it needs.  Nothing is vendored into the repository.
#
# The system's apt configuration is left alone: a private sources list
# (deb-src for bookworm main, mirror from $CS_DEBIAN_MIRROR, default
# http://deb.debian.org/debian) and a private lists directory under
# DEPS_DIR/apt.  apt-get checks the downloaded files against the checksums
# in the signed Sources index; dpkg-source checks them against the .dsc
# and applies Debian's patches (security fixes included).
#
# Idempotent and safe to share between builds: a finished unpack leaves
# DEPS_DIR/wolfssl-src/.cs-fetched, and a lock serialises concurrent runs.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: fetch-wolfssl.sh DEPS_DIR" >&2
	exit 2
fi
deps=$1
mirror=${CS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${CS_DEBIAN_SUITE:-bookworm}

mkdir -p "$deps"
deps=$(cd "$deps" && pwd)
exec 9>"$deps/.fetch.lock"
flock 9

if [ -f "$deps/wolfssl-src/.cs-fetched" ]; then
	exit 0
fi

die() {
	echo "fetch-wolfssl.sh: error: $*" >&2
	echo "fetch-wolfssl.sh: the Cortex-M build needs Debian's wolfssl" \
	    "source package; give network access to $mirror, or" \
	    "-DCS_FIRMWARE=OFF to build without firmware" >&2
	exit 1
}

for tool in apt-get dpkg-source; do
	command -v "$tool" >/dev/null 2>&1 ||
	    die "$tool not found (install apt and dpkg-dev)"
done

mkdir -p "$deps/apt/lists/partial" "$deps/apt/cache/archives/partial" \
    "$deps/dl"
echo "deb-src $mirror $suite main" >"$deps/apt/sources.list"
apt_opts="-o Dir::Etc::sourcelist=$deps/apt/sources.list \
 -o Dir::Etc::sourceparts=- -o Dir::State::Lists=$deps/apt/lists \
 -o Dir::Cache=$deps/apt/cache"
# shellcheck disable=SC2086
apt-get -q $apt_opts update >"$deps/apt/update.log" 2>&1 ||
    die "apt-get update of the private source list failed (see $deps/apt/update.log)"
# shellcheck disable=SC2086
(cd "$deps/dl" && apt-get -q $apt_opts source --download-only wolfssl) \
    >"$deps/apt/source.log" 2>&1 ||
    die "apt-get source wolfssl failed (see $deps/apt/source.log)"

dsc=$(ls "$deps"/dl/wolfssl_*.dsc 2>/dev/null | tail -n 1)
[ -n "$dsc" ] || die "no wolfssl .dsc downloaded"
rm -rf "$deps/wolfssl-src"
dpkg-source -q -x "$dsc" "$deps/wolfssl-src" >"$deps/apt/unpack.log" 2>&1 ||
    die "dpkg-source -x $dsc failed (see $deps/apt/unpack.log)"
basename "$dsc" >"$deps/wolfssl-src/.cs-fetched"
echo "fetch-wolfssl.sh: $(basename "$dsc") unpacked in $deps/wolfssl-src"
