#!/bin/sh
# make-fw-key.sh DIR KEYTOOL MAKE_TOKEN ALG...
#
# The signing key of the example firmware, made the way an OEM makes its
# own: a SoftHSM2 token in DIR (tests/hsm/make-token.sh), one key pair per
# algorithm generated inside it by countersign-keytool (label fw-<alg>),
# and the public half exported as the C header the firmware compiles in
# (DIR/<alg>/trust_key.h).  The QEMU tests sign device records with the
# same token.  Test keys only: DIR lives in the build tree and is never
# committed.  Starts from scratch every time it runs.
set -eu

if [ $# -lt 4 ]; then
	echo "usage: make-fw-key.sh DIR KEYTOOL MAKE_TOKEN ALG..." >&2
	exit 2
fi
dir=$1
keytool=$2
make_token=$3
shift 3

rm -rf "$dir"
mkdir -p "$dir"
eval "$(bash "$make_token" "$dir/token" cs-firmware fw-test-pin)"
for alg in "$@"; do
	mkdir -p "$dir/$alg"
	"$keytool" keygen --label "fw-$alg" --alg "$alg" >"$dir/$alg/keygen.txt"
	"$keytool" export --label "fw-$alg" --format c-header \
	    -o "$dir/$alg/trust_key.h.tmp"
	"$keytool" export --label "fw-$alg" -o "$dir/$alg/pub.pem"
	mv "$dir/$alg/trust_key.h.tmp" "$dir/$alg/trust_key.h"
done
