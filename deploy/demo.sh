#!/usr/bin/env bash
# The Countersign demo: the whole story on this machine, in one command.
#
#   ./deploy/demo.sh
#
# It installs what is missing, builds, and then plays every part: the
# OEM's security officer (keys in an HSM, firmware that trusts one, an
# order for 5 units whose firmware the authority holds, a station
# enrolled), the signing authority (a real daemon with TLS, LMDB and the
# HSM), and the contract manufacturer's shift lead (one command programs
# six emulated devices, with no firmware file on the station).  Five
# devices are programmed, measure their own flash and boot "device
# authorized"; the sixth is refused for quota; a copy of one device's
# flash refuses to run on another chip, and so does one patched byte of
# firmware; on the simulated probes, devices leave the line locked.
# Everything it starts is stopped and removed at the end.  Exit 0 when
# the story went as told.
#
# Environment: CS_DEMO_BUILD=DIR uses an existing build tree (no install,
# no build: how tests/run.sh runs it); CS_BUILD_DIR as for tests/run.sh;
# CS_DEMO_PAUSE=1 waits at the console's address (open it in a browser
# and watch the order fill up) and again before cleaning up.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ -t 1 ]; then
	bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'
else
	bold='' dim='' off=''
fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
tell() { printf '   %s%s%s\n' "$dim" "$*" "$off"; }
indent() { sed 's/^/   /'; }
die() {
	printf '\ndemo: %s\n' "$*" >&2
	exit 1
}

if [ -n "${CS_DEMO_BUILD:-}" ]; then
	build=$CS_DEMO_BUILD
else
	build=${CS_BUILD_DIR:-$top/build}/default
	say "Installing missing packages and building (quiet when up to date)"
	"$top/deploy/bootstrap.sh"
	cmake -S "$top" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCS_DEPS_DIR="${CS_BUILD_DIR:-$top/build}/_deps" >/dev/null
	cmake --build "$build" >/dev/null
fi
bin_authority=$build/authority/countersign-authority
bin_admin=$build/authority/countersign-admin
bin_station=$build/station/countersign-station
bin_keytool=$build/hsm-shim/countersign-keytool
deps=$(sed -n 's/^CS_DEPS_DIR:PATH=//p' "$build/CMakeCache.txt")
qemu=$(sed -n 's/^CS_QEMU_ARM:FILEPATH=//p' "$build/CMakeCache.txt")
for f in "$bin_authority" "$bin_admin" "$bin_station" "$bin_keytool"; do
	[ -x "$f" ] || die "$f is missing: build first"
done
[ -x "$qemu" ] && [ -d "$deps/wolfssl-src" ] ||
	die "the demo needs the firmware build (qemu-system-arm, arm-none-eabi-gcc, CS_FIRMWARE=ON)"

work=$(mktemp -d "${TMPDIR:-/tmp}/countersign-demo.XXXXXX")
authority_pid=
qemu_pids=()
cleanup() {
	for p in "${qemu_pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ -n "$authority_pid" ] && kill -0 "$authority_pid" 2>/dev/null; then
		kill -TERM "$authority_pid"
		wait "$authority_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

admin() { "$bin_admin" -c "$work/authority.conf" "$@"; }

# ---------------------------------------------------------------------
say "1. The OEM's security officer makes the product key inside an HSM"
tell "A SoftHSM2 token stands in for the HSM; the private key is generated on it"
tell "and can never be read out.  Only the public half leaves the token."
eval "$("$top/tests/hsm/make-token.sh" "$work/hsm" oem-hsm 123456)"
"$bin_keytool" keygen --label product-2026 --alg p256 | indent
tell "A second key, AES-256, seals the firmware images the authority holds:"
"$bin_keytool" keygen --label fw-2026 --alg aes256 | indent
mkdir -p "$work/trust"
"$bin_keytool" export --label product-2026 --format c-header -o "$work/trust/trust_key.h"

say "2. The firmware is built with that public key compiled in"
tell "This is target/examples/lm3s6965: at boot it reads its chip's UID, finds its"
tell "device record in flash, verifies it with the compiled-in key and stops unless"
tell "the record was signed for exactly this chip.  It also measures its own flash"
tell "(SHA-256, docs/record-format.md) and stops unless the record binds exactly it."
cmake -S "$top/target/examples/lm3s6965" -B "$work/fw" -G Ninja \
	-DCMAKE_TOOLCHAIN_FILE="$top/target/cortex-m/arm-none-eabi.cmake" \
	-DCMAKE_BUILD_TYPE=MinSizeRel -DCS_WOLFSSL_DIR="$deps/wolfssl-src" \
	-DCS_TRUST_HEADER="$work/trust/trust_key.h" -DCS_FW_ALG=p256 \
	-DCS_FW_PRODUCT_ID=0x1234 >/dev/null
cmake --build "$work/fw" >/dev/null
firmware=$work/fw/countersign-fw.elf
tell "firmware: $(stat -c %s "$firmware") bytes ELF, product 0x1234 (4660)"

# ---------------------------------------------------------------------
say "3. DevOps starts the signing authority"
tell "TLS certificates for the authority (a throw-away PKI), an LMDB store in a"
tell "temporary directory, the HSM token above.  First the station CA: its key is"
tell "made on the HSM too, so that nothing on disk can enroll a station."
"$top/tests/pki/make-pki.sh" "$work/pki" >/dev/null
cat >"$work/authority.conf" <<CONF
[authority]
id = demo-authority
data_dir = $work/data
station_listen = tls+tcp://127.0.0.1:0
admin_listen = ipc://$work/admin.sock

[tls]
cert = $work/pki/server.pem
key = $work/pki/server.key
station_ca = $work/station-ca.pem

[hsm]
module = $COUNTERSIGN_HSM_MODULE
token = oem-hsm
pin_file = $work/hsm/pin
sessions = 2
firmware_key = fw-2026

[firmware]
targets_dir = $top/station/targets

[console]
listen = https://127.0.0.1:0
cert = $work/pki/server.pem
key = $work/pki/server.key
CONF
admin ca init | indent
"$bin_authority" -c "$work/authority.conf" 2>"$work/authority.log" &
authority_pid=$!
port=
for _ in $(seq 1 200); do
	port=$(sed -n 's/.*listening url=tls.* port=\([0-9]*\).*/\1/p' "$work/authority.log" | head -n1)
	[ -n "$port" ] && break
	kill -0 "$authority_pid" 2>/dev/null || break
	sleep 0.05
done
[ -n "$port" ] || { indent <"$work/authority.log"; die "the authority did not start"; }
tell "authority listening on tls+tcp://127.0.0.1:$port (station certificates required)"
cport=
for _ in $(seq 1 100); do
	cport=$(sed -n 's/.*listening url=https.* port=\([0-9]*\).*/\1/p' "$work/authority.log" | head -n1)
	[ -n "$cport" ] && break
	sleep 0.05
done
[ -n "$cport" ] || die "the console did not start"

# ---------------------------------------------------------------------
say "4. The security officer registers the key and opens an order for 5 units"
tell "The order holds its firmware: the authority checks the image against the"
tell "target profile, seals it under the HSM's AES key and binds its digest into"
tell "every record.  The CM never gets it as a file."
admin key add --label product-2026 | indent
admin order create --id PO-DEMO-5 --product 4660 --key product-2026 --quota 5 \
	--uid-len 8 --cm demo-cm --target lm3s6965 --firmware "$firmware" | indent

token=$(admin --json token create --name demo-viewer --role viewer |
	sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p')
[ -n "$token" ] || die "no console token"
tell "The OEM can watch the order fill up in the console:"
tell "  https://127.0.0.1:$cport/  (sign in with the viewer token $token;"
tell "  the certificate is the demo's own test CA: $work/pki/ca.pem)"
if [ -n "${CS_DEMO_PAUSE:-}" ]; then
	read -r -p "   Open it now, then press Enter to go on. " _
fi

say "5. The CM's station makes its own key; the officer enrolls it"
cat >"$work/station.conf" <<CONF
[station]
name = line1
authority_url = tls+tcp://localhost:$port
authority_id = demo-authority
ca = $work/pki/ca.pem
cert = $work/line1.pem
key = $work/line1.key
CONF
"$bin_station" -c "$work/station.conf" init | indent
admin station enroll --csr "$work/line1.csr" --name line1 --cm demo-cm \
	-o "$work/line1.pem" | indent

# ---------------------------------------------------------------------
say "6. Six devices arrive on the line (QEMU lm3s6965evb, each its own UID)"
tell "Each waits halted, with a GDB server on a socket: the station's probe."
uid_of() { printf '5eed%012x' "$((0xc0ffee000 + $1))"; }
probes=()
for i in 1 2 3 4 5 6; do
	uid=$(uid_of "$i")
	# The loader stores the value little-endian: give it byte-reversed.
	le=$(echo "$uid" | sed 's/../& /g' | awk '{for (i = NF; i > 0; i--) printf "%s", $i}')
	"$qemu" -M lm3s6965evb -nographic -monitor none -serial none \
		-semihosting-config enable=on,target=native -S \
		-gdb "unix:$work/dev$i.sock,server=on,wait=off" \
		-device "loader,addr=0x2000FF00,data=0x$le,data-len=8" \
		>"$work/dev$i.log" 2>&1 &
	qemu_pids+=($!)
	probes+=(--probe "gdb+unix://$work/dev$i.sock")
	tell "device $i: UID $uid"
done
for i in 1 2 3 4 5 6; do
	for _ in $(seq 1 100); do
		[ -S "$work/dev$i.sock" ] && break
		sleep 0.05
	done
done

say "7. The shift lead starts one command: gang programming, six probes"
tell "No --image: the station fetches the order's firmware over its authenticated"
tell "session into locked memory, checks its digest, and wipes it when the run ends."
tell "Per device: read UID -> the authority signs its record (HSM) -> write image"
tell "and record -> read back -> reset -> the firmware's verdict -> report."
set +e
"$bin_station" -c "$work/station.conf" run --order PO-DEMO-5 \
	--target "$top/station/targets/lm3s6965.ini" --count 6 \
	--next-device-s 5 "${probes[@]}" >"$work/run.out" 2>"$work/run.err"
status=$?
set -e
indent <"$work/run.out"
indent <"$work/run.err"
[ "$status" -eq 5 ] || die "the run should stop for quota (exit 5), it exited $status"
[ "$(grep -c '^programmed' "$work/run.out")" -eq 5 ] ||
	die "five devices should have been programmed"
grep -q '^quota-exhausted' "$work/run.out" || die "the sixth device should be refused for quota"

say "8. What each device said when it booted"
authorized=0
for i in 1 2 3 4 5 6; do
	verdict=$(grep -h -m1 -E 'authorized|UNAUTHORIZED' "$work/dev$i.log" || true)
	if [ -z "$verdict" ]; then
		verdict="(never programmed: still halted, blank flash)"
	fi
	tell "device $i: $verdict"
	case $verdict in
	*"device authorized"*) authorized=$((authorized + 1)) ;;
	esac
done
[ "$authorized" -eq 5 ] || die "five devices should boot authorized, $authorized did"

# ---------------------------------------------------------------------
# The six ran at once: which one the quota stopped differs from run to run.
src_uid=$(sed -n 's/^programmed .* uid=\([0-9a-f]*\) .*/\1/p' "$work/run.out" | head -1)
[ -n "$src_uid" ] || die "no programmed device to copy"
say "9. Someone copies a programmed device's whole flash onto another chip"
tell "Device $src_uid's firmware and record, on a chip with another UID: the"
tell "record is not for that chip."
admin device show "$src_uid" --order PO-DEMO-5 --record-out "$work/dev1.rec" >/dev/null
clone_uid=5eed0000deadbeef
clone_le=$(echo "$clone_uid" | sed 's/../& /g' | awk '{for (i = NF; i > 0; i--) printf "%s", $i}')
set +e
timeout 60 "$qemu" -M lm3s6965evb -nographic -monitor none -serial none \
	-semihosting-config enable=on,target=native -kernel "$firmware" \
	-device "loader,addr=0x2000FF00,data=0x$clone_le,data-len=8" \
	-device "loader,file=$work/dev1.rec,addr=0x3F000" >"$work/clone.log" 2>&1
clone_status=$?
set -e
tell "copy on chip $clone_uid: $(grep -m1 -E 'authorized|UNAUTHORIZED' "$work/clone.log" || echo '(no verdict)') (exit $clone_status)"
[ "$clone_status" -ne 0 ] && grep -q UNAUTHORIZED "$work/clone.log" ||
	die "the copied flash should refuse to run"

say "10. Someone patches one byte of the firmware on a programmed device"
tell "Device $src_uid with its own record and UID, but one byte of its firmware"
tell "changed (a reserved vector-table entry, 0x1C, which the code never uses):"
tell "the device measures its flash, and the record binds another digest."
cp "$firmware" "$work/patched.elf"
text_off=$(readelf -lW "$firmware" | awk '$1 == "LOAD" && $4 == "0x00000000" { print $2; exit }')
[ -n "$text_off" ] || die "cannot find the firmware's flash segment"
printf '\132' | dd of="$work/patched.elf" bs=1 seek=$((text_off + 0x1C)) conv=notrunc status=none
src_le=$(echo "$src_uid" | sed 's/../& /g' | awk '{for (i = NF; i > 0; i--) printf "%s", $i}')
set +e
timeout 60 "$qemu" -M lm3s6965evb -nographic -monitor none -serial none \
	-semihosting-config enable=on,target=native -kernel "$work/patched.elf" \
	-device "loader,addr=0x2000FF00,data=0x$src_le,data-len=8" \
	-device "loader,file=$work/dev1.rec,addr=0x3F000" >"$work/patched.log" 2>&1
patched_status=$?
set -e
tell "patched firmware on chip $src_uid: $(grep -m1 -E 'authorized|UNAUTHORIZED' "$work/patched.log" || echo '(no verdict)') (exit $patched_status)"
[ "$patched_status" -ne 0 ] && grep -q FIRMWARE_MISMATCH "$work/patched.log" ||
	die "the patched firmware should refuse to run (FIRMWARE_MISMATCH)"

# ---------------------------------------------------------------------
say "11. Devices leave the line locked (simulated probes)"
tell "QEMU models no readout protection, so this part runs on the station's"
tell "simulated LM3S (sim: probes), whose profile lm3s6965-locked says how to lock"
tell "the part and how to check that it took: after the lock, the debugger can no"
tell "longer read the flash.  This order requires the lock."
"$bin_keytool" export --label product-2026 --format der -o "$work/trust/product.der"
admin order create --id PO-DEMO-LOCK --product 4660 --key product-2026 --quota 3 \
	--uid-len 8 --cm demo-cm --target lm3s6965-locked --firmware "$firmware" \
	--require-lock | indent
fw_end=$(admin --json order show PO-DEMO-LOCK | sed -n 's/.*"firmware_size":\([0-9]*\).*/\1/p')
[ -n "$fw_end" ] || die "no firmware size for PO-DEMO-LOCK"
sims=()
for i in 1 2 3; do
	sims+=(--probe "sim:lock$i?uid=$(uid_of $((10 + i)))&trust=$work/trust/product.der&fw_end=$fw_end")
done
set +e
"$bin_station" -c "$work/station.conf" run --order PO-DEMO-LOCK \
	--target "$top/station/targets/lm3s6965-locked.ini" --count 3 \
	"${sims[@]}" >"$work/lock.out" 2>"$work/lock.err"
status=$?
set -e
indent <"$work/lock.out"
indent <"$work/lock.err"
[ "$status" -eq 0 ] || die "the locked run should succeed, it exited $status"
[ "$(grep -c '^programmed.*locked' "$work/lock.out")" -eq 3 ] ||
	die "three devices should have been programmed and locked"
admin device show "$(uid_of 11)" --order PO-DEMO-LOCK | grep -E '^(state|lock|firmware) ' | indent

# ---------------------------------------------------------------------
say "12. The order, as the OEM sees it"
admin order show PO-DEMO-5 | indent
if command -v node >/dev/null; then
	tell "... and as the console's dashboard reports it (GET /api/dashboard):"
	CA="$work/pki/ca.pem" URL="https://127.0.0.1:$cport/api/dashboard" TOKEN="$token" \
		node -e '
const https = require("https"), fs = require("fs");
https.get(process.env.URL, {ca: fs.readFileSync(process.env.CA),
    headers: {Authorization: "Bearer " + process.env.TOKEN}}, (res) => {
	let body = "";
	res.on("data", (d) => body += d);
	res.on("end", () => {
		const o = JSON.parse(body).orders.find((x) => x.order_id === "PO-DEMO-5");
		console.log(`   console: ${o.order_id} issued ${o.issued} of ${o.quota}, ` +
		    `confirmed ${o.confirmed}, remaining ${o.remaining}`);
		process.exit(o.issued === 5 && o.remaining === 0 ? 0 : 1);
	});
}).on("error", (e) => { console.error(e.message); process.exit(1); });
' || die "the console should show the order with 5 issued"
fi

say "13. The audit log: every decision, hash-chained"
admin audit list | indent
admin audit verify | indent

if [ -n "${CS_DEMO_PAUSE:-}" ]; then
	read -r -p "   The console is still up; press Enter to stop everything. " _
fi

say "Demo finished: 5 of 5 units made and verified from firmware the CM never held, the 6th refused, a copy and a patch useless, 3 devices locked"
