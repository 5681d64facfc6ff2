#!/usr/bin/env bash
# The Countersign demo: one command that shows the system working on this
# machine.  It installs what is missing, builds, and tells what happens.
#
# At this stage of the project the story is the spine: a signing authority
# and a station agent, two real processes, talking protobuf RPC over
# mutually authenticated TLS (wolfSSL inside nng).  Later stages add the
# HSM, orders, and emulated devices.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CS_BUILD_DIR:-$top/build}/default

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing missing packages and building (quiet when up to date)"
"$top/deploy/bootstrap.sh"
cmake -S "$top" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/countersign-demo.XXXXXX")
authority_pid=
cleanup() {
	if [ -n "$authority_pid" ] && kill -0 "$authority_pid" 2>/dev/null; then
		kill -TERM "$authority_pid"
		wait "$authority_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

say "Making a throw-away PKI: a CA, the authority's server certificate, station certificates"
"$top/tests/pki/make-pki.sh" "$work/pki"
ls "$work/pki" | sed 's/^/   /'

say "Starting the signing authority (it picks a free port on loopback)"
cat >"$work/authority.conf" <<CONF
[authority]
id = demo-authority
data_dir = $work/data
station_listen = tls+tcp://127.0.0.1:0

[tls]
cert = $work/pki/server.pem
key = $work/pki/server.key
station_ca = $work/pki/ca.pem
CONF
"$build/authority/countersign-authority" -c "$work/authority.conf" --check-config
"$build/authority/countersign-authority" -c "$work/authority.conf" 2>"$work/authority.log" &
authority_pid=$!
port=
for _ in $(seq 1 100); do
	port=$(sed -n 's/.*listening url=.* port=\([0-9]*\).*/\1/p' "$work/authority.log" | head -n1)
	[ -n "$port" ] && break
	sleep 0.05
done
[ -n "$port" ] || { cat "$work/authority.log"; echo "authority did not start" >&2; exit 1; }
echo "   authority listening on tls+tcp://127.0.0.1:$port (client certificates required)"

station_conf() { # name cert-basename
	cat >"$work/$1.conf" <<CONF
[station]
name = $1
authority_url = tls+tcp://localhost:$port
ca = $work/pki/ca.pem
cert = $work/pki/$2.pem
key = $work/pki/$2.key
timeout_ms = 3000
CONF
}

say "A station with a certificate from the authority's CA pings it"
station_conf station1 station1
"$build/station/countersign-station" -c "$work/station1.conf" ping --count 3

say "A station with a certificate from some other CA is refused"
station_conf intruder other-station
if "$build/station/countersign-station" -c "$work/intruder.conf" ping 2>&1 | sed 's/^/   /'; then
	echo "demo: the intruder was not refused" >&2
	exit 1
fi

say "What the authority logged"
sed 's/^/   /' "$work/authority.log"

say "Demo finished: mutual TLS RPC between two real processes works"
