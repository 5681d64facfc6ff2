#!/usr/bin/env bash
# make-token.sh DIR LABEL PIN [SO_PIN]
#
# A throw-away SoftHSM2 token for tests and the demo: writes
# DIR/softhsm2.conf (tokens under DIR/tokens, file backend, errors only),
# initialises a token labelled LABEL with the user PIN and the SO PIN
# (default: "so-" followed by PIN), and writes the user PIN to DIR/pin
# (mode 0600) and the SO PIN to DIR/so-pin.  Prints the environment a
# shell needs to use it:
#
#   eval "$(tests/hsm/make-token.sh /tmp/hsm demo-token 123456)"
#
# softhsm2-util takes the PINs on its command line; that is acceptable
# only because these tokens are test fixtures.  Countersign's own tools
# never take a PIN from argv.
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
	echo "usage: make-token.sh DIR LABEL PIN [SO_PIN]" >&2
	exit 2
fi
dir=$1
label=$2
pin=$3
so_pin=${4:-so-$pin}
module=${COUNTERSIGN_HSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

command -v softhsm2-util >/dev/null || {
	echo "make-token.sh: softhsm2-util not found (install softhsm2)" >&2
	exit 1
}
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
chmod 0700 "$dir/tokens"

cat >"$dir/softhsm2.conf" <<CONF
# SoftHSM2 configuration written by tests/hsm/make-token.sh
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF

(
	umask 077
	printf '%s\n' "$pin" >"$dir/pin"
	printf '%s\n' "$so_pin" >"$dir/so-pin"
)
chmod 0600 "$dir/pin" "$dir/so-pin"

SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free \
	--label "$label" --pin "$pin" --so-pin "$so_pin" >/dev/null

cat <<ENV
export SOFTHSM2_CONF='$dir/softhsm2.conf'
export COUNTERSIGN_HSM_MODULE='$module'
export COUNTERSIGN_HSM_TOKEN='$label'
export COUNTERSIGN_HSM_PIN_FILE='$dir/pin'
ENV
