#!/usr/bin/env bash
# Install the Debian packages listed in deploy/debian-packages.txt that are
# missing.  Shared by tests/run.sh and deploy/demo.sh.  Quick and quiet
# when everything is present; uses sudo when not run as root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
list="$here/debian-packages.txt"

missing=()
while read -r pkg _; do
	case "$pkg" in '' | '#'*) continue ;; esac
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$pkg")
done <"$list"

[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null; then
		echo "bootstrap: missing packages: ${missing[*]}" >&2
		echo "bootstrap: run as root or install sudo" >&2
		exit 1
	fi
	sudo=(sudo)
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
