#!/usr/bin/env bash
#
# run.sh - the web console in a real browser, end to end.
#
# Sets up what tests/integration/authority_test.c sets up (test PKI,
# SoftHSM token, HSM key, station CA, the authority on loopback, a key, an
# order, an enrolled station) plus the console listener on an ephemeral
# HTTPS port and two admin tokens (officer1, viewer1); then runs
# console.spec.mjs in Debian's Chromium through playwright-core.
#
# Environment (ctest sets the first two):
#   CS_BINARY_DIR   the build tree (programs are taken from it)
#   CS_SOURCE_DIR   the source tree
#   CS_PLAYWRIGHT   playwright-core version from npm (default pinned below)
#   CS_CHROMIUM     the browser (default /usr/bin/chromium)
#   CS_KEEP=1       keep the work directory (printed) after the run
#
# playwright-core is installed at test time into
# $CS_BINARY_DIR/tests/browser/node_modules (never committed).  Screenshots
# and the exported audit log go to $CS_BINARY_DIR/tests/browser/artifacts.
#
# Exit: 0 passed, 1 failed, 77 skipped (the authority was built without
# the console listener).
set -euo pipefail

src=${CS_SOURCE_DIR:?CS_SOURCE_DIR is not set}
bin=${CS_BINARY_DIR:?CS_BINARY_DIR is not set}
pw_version=${CS_PLAYWRIGHT:-1.65.1}
chromium=${CS_CHROMIUM:-/usr/bin/chromium}
softhsm=${CS_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

authority=$bin/authority/countersign-authority
admin=$bin/authority/countersign-admin
station=$bin/station/countersign-station
keytool=$bin/hsm-shim/countersign-keytool
here=$bin/tests/browser
artifacts=$here/artifacts

log() { printf '# %s\n' "$*"; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

for p in "$authority" "$admin" "$station" "$keytool"; do
	[[ -x $p ]] || die "$p is not built"
done
# The console's pages (authority/console/www) are compiled into the
# authority with the listener; without them there is nothing to test.
if ! grep -q -a -F '<title>Countersign console</title>' "$authority"; then
	echo "SKIP: $authority has no web console (authority/console.c not in this build)"
	exit 77
fi
[[ -x $chromium ]] || die "$chromium not found: apt-get install chromium (deploy/debian-packages.txt)"
command -v node >/dev/null || die "node not found"
command -v npm >/dev/null || die "npm not found"

# playwright-core, pinned, from npm, into the build tree.
mkdir -p "$here"
have=$(node -p "require('$here/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [[ $have != "$pw_version" ]]; then
	log "installing playwright-core@$pw_version from npm into $here"
	npm install --no-save --no-audit --no-fund --prefix "$here" \
	    "playwright-core@$pw_version" >"$here/npm.log" 2>&1 ||
	    { cat "$here/npm.log" >&2; die "npm install playwright-core@$pw_version failed"; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cs-browser.XXXXXX")
pid=
cleanup() {
	local rc=$?
	if [[ -n $pid ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [[ $rc -ne 0 && $rc -ne 77 && -f $work/authority.log ]]; then
		echo "--- authority.log (last 40 lines)"
		tail -n 40 "$work/authority.log"
	fi
	if [[ ${CS_KEEP:-0} == 1 ]]; then
		echo "# kept $work"
	else
		rm -rf -- "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
rm -rf -- "$artifacts"
mkdir -p "$artifacts"

# run CMD...: quiet unless it fails.
run() {
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "failed: $*"
	fi
	printf '%s' "$out"
}

# wait_line FILE PATTERN SECONDS: the first line of FILE matching PATTERN.
wait_line() {
	local i line
	for ((i = 0; i < $3 * 10; i++)); do
		if line=$(grep -m1 -E -- "$2" "$1" 2>/dev/null); then
			printf '%s' "$line"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$1" >&2
			die "the authority exited"
		fi
		sleep 0.1
	done
	cat "$1" >&2
	die "no line matching '$2' in $1 after $3 s"
}

log "setting up in $work"
bash "$src/tests/pki/make-pki.sh" "$work"
eval "$(bash "$src/tests/hsm/make-token.sh" "$work" authority 123456)"
export COUNTERSIGN_HSM_MODULE=$softhsm
run "$keytool" keygen --label oem-p256 --alg p256 >/dev/null

conf=$work/authority.conf
cat >"$conf" <<CONF
[authority]
id = test-authority
data_dir = $work/data
station_listen = tls+tcp://127.0.0.1:0
admin_listen = ipc://$work/admin.sock
map_size_mb = 64
[tls]
cert = $work/server.pem
key = $work/server.key
station_ca = $work/station-ca.pem
[hsm]
module = $softhsm
token = authority
pin_file = $work/pin
sessions = 2
[console]
listen = https://127.0.0.1:0
cert = $work/server.pem
key = $work/server.key
CONF

run "$admin" -c "$conf" ca init >/dev/null
"$authority" -c "$conf" >"$work/authority.log" 2>&1 &
pid=$!
line=$(wait_line "$work/authority.log" 'listening url=https' 20)
console_port=${line##* port=}
console_port=${console_port%% *}
line=$(wait_line "$work/authority.log" 'listening url=tls' 20)
station_port=${line##* port=}
station_port=${station_port%% *}
[[ $console_port =~ ^[0-9]+$ && $station_port =~ ^[0-9]+$ ]] ||
    die "cannot read the ports from the authority's log"
log "authority: console https://127.0.0.1:$console_port, stations port $station_port"

run "$admin" -c "$conf" key add --label oem-p256 >/dev/null
order=PO-WEB-1
run "$admin" -c "$conf" order create --id "$order" --product 4242 \
    --key oem-p256 --quota 100 --uid-len 12 --cm acme >/dev/null

sconf=$work/st1.conf
cat >"$sconf" <<CONF
[station]
name = st1
authority_url = tls+tcp://127.0.0.1:$station_port
authority_id = test-authority
ca = $work/ca.pem
cert = $work/st1.pem
key = $work/st1.key
timeout_ms = 20000
CONF
run "$station" -c "$sconf" init >/dev/null
run "$admin" -c "$conf" station enroll --csr "$work/st1.csr" --name st1 \
    --cm acme -o "$work/st1.pem" >/dev/null

# token_create NAME ROLE: the new token, read from --json output.
token_create() {
	run "$admin" --json -c "$conf" token create --name "$1" --role "$2" |
	    node -e 'let s="";process.stdin.on("data",(c)=>s+=c).on("end",()=>{
		const t=JSON.parse(s).token;
		if(typeof t!=="string"||!t){process.exit(1)}
		process.stdout.write(t)})' ||
	    die "no token in the output of token create --name $1"
}
officer=$(token_create officer1 officer)
viewer=$(token_create viewer1 viewer)

# Chromium trusts exactly the console's key: the SHA-256 of its SPKI.
spki=$(openssl pkey -in "$work/server.key" -pubout -outform DER |
    openssl dgst -sha256 -binary | openssl base64 -A)

log "running console.spec.mjs in $("$chromium" --version 2>/dev/null)"
CS_CONSOLE_URL=https://127.0.0.1:$console_port \
CS_SPKI_HASH=$spki \
CS_OFFICER_TOKEN=$officer \
CS_VIEWER_TOKEN=$viewer \
CS_STATION_BIN=$station \
CS_STATION_CONF=$sconf \
CS_ORDER=$order \
CS_UID_LEN=12 \
CS_NODE_MODULES=$here \
CS_ARTIFACTS=$artifacts \
CS_CHROMIUM=$chromium \
    node "$src/tests/browser/console.spec.mjs"
log "screenshots: $(cd "$artifacts" && echo *.png)"
