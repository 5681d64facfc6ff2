#!/usr/bin/env bash
#
# make-pki.sh OUTDIR - make the throwaway PKI that the TLS tests and the
# demo use.  Keys are made at test time and never committed.
#
# Everything is EC P-256, signed with SHA-256 by the stock openssl CLI
# (OpenSSL 3.0), through `openssl ca` and a private database kept in
# OUTDIR/.ca so that validity dates (an expired certificate) and CRLs
# (a revoked one) can be made without touching anything outside OUTDIR.
#
# Made in OUTDIR:
#   ca.pem ca.key                   "Countersign Test CA": issues the
#                                   server and station certificates
#   server.pem server.key           CN=localhost, DNS:localhost,
#                                   IP:127.0.0.1, serverAuth
#   wrongname-server.pem/.key       issued by ca, only DNS:wrong.example
#   station1.pem/.key               clientAuth, CN=station1
#   station2.pem/.key               clientAuth, CN=station2
#   expired-station.pem/.key        issued by ca, validity entirely past
#   revoked-station.pem/.key        issued by ca, revoked in crl-revoked.pem
#   other-ca.pem other-ca.key       an unrelated CA
#   other-station.pem/.key          clientAuth, issued by other-ca
#   crl.pem                         CRL of ca revoking nothing
#   crl-revoked.pem                 CRL of ca revoking revoked-station
#
# Quiet on success; on failure prints openssl's output and exits non-zero.
# Private keys are mode 0600.
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
	echo "usage: make-pki.sh OUTDIR" >&2
	exit 2
fi
# The path goes into an openssl config file, where these are syntax.
case $1 in
*['$#\\"']*)
	echo "make-pki.sh: OUTDIR may not contain \$ # \\ or \": $1" >&2
	exit 2
	;;
esac
mkdir -p -- "$1"
out=$(cd -- "$1" && pwd)
db=$out/.ca
cnf=$db/openssl.cnf

# Private keys are created 0600 from the start, never chmod-ed down later.
umask 077

# run CMD...: run quietly, show everything it said if it fails.
run() {
	local log
	if ! log=$("$@" 2>&1); then
		printf '%s\n' "$log" >&2
		echo "make-pki.sh: failed: $*" >&2
		exit 1
	fi
}

# One day in the past, so that a verifier whose clock is a little behind
# still accepts certificates made a moment ago.
start=$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)
days=3650

rm -rf -- "$db"
mkdir -p -- "$db/main" "$db/other"
for d in main other; do
	: >"$db/$d/index.txt"
	echo 1000 >"$db/$d/serial"
	echo 1000 >"$db/$d/crlnumber"
done

# ca_section NAME DIR CERT: one `openssl ca` section (selected by -name).
ca_section() {
	cat <<SECTION
[ $1 ]
dir              = $db/$2
certificate      = $out/$3.pem
private_key      = $out/$3.key
database         = \$dir/index.txt
serial           = \$dir/serial
crlnumber        = \$dir/crlnumber
new_certs_dir    = \$dir
default_md       = sha256
default_crl_days = 30
policy           = policy_cn
unique_subject   = no
copy_extensions  = none

SECTION
}

{
	cat <<CNF
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused

[ policy_cn ]
commonName = supplied

CNF
	ca_section ca_main main ca
	ca_section ca_other other other-ca
	cat <<CNF
[ ext_ca ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ ext_server ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ ext_wrongname ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:wrong.example
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ ext_client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
CNF
} >"$cnf"

# newkey NAME CN: P-256 key NAME.key (PKCS#8, unencrypted) and a CSR.
newkey() {
	run openssl req -config "$cnf" -new -newkey ec \
		-pkeyopt ec_paramgen_curve:P-256 -noenc \
		-keyout "$out/$1.key" -out "$db/$1.csr" -subj "/CN=$2"
}

# issue CA NAME EXT [STARTDATE ENDDATE]: sign NAME's CSR with CA.
issue() {
	local dates=(-startdate "$start" -days "$days")
	if [[ $# -eq 5 ]]; then
		dates=(-startdate "$4" -enddate "$5")
	fi
	run openssl ca -config "$cnf" -name "$1" -batch -notext \
		-in "$db/$2.csr" -out "$out/$2.pem" -extensions "$3" \
		"${dates[@]}"
}

# selfsign CA NAME CN: a self-signed CA certificate NAME.pem.
selfsign() {
	newkey "$2" "$3"
	run openssl ca -config "$cnf" -name "$1" -batch -notext -selfsign \
		-keyfile "$out/$2.key" -in "$db/$2.csr" -out "$out/$2.pem" \
		-extensions ext_ca -startdate "$start" -days "$days"
}

selfsign ca_main ca "Countersign Test CA"
selfsign ca_other other-ca "Countersign Other CA"

newkey server localhost
issue ca_main server ext_server
newkey wrongname-server wrong.example
issue ca_main wrongname-server ext_wrongname
for s in station1 station2 revoked-station; do
	newkey "$s" "$s"
	issue ca_main "$s" ext_client
done
newkey expired-station expired-station
issue ca_main expired-station ext_client 20200101000000Z 20210101000000Z
newkey other-station other-station
issue ca_other other-station ext_client

run openssl ca -config "$cnf" -name ca_main -gencrl -out "$out/crl.pem"
run openssl ca -config "$cnf" -name ca_main \
	-revoke "$out/revoked-station.pem" -crl_reason keyCompromise
run openssl ca -config "$cnf" -name ca_main -gencrl \
	-out "$out/crl-revoked.pem"

# Certificates and CRLs are public; keys stay as made (0600).
chmod 0644 "$out"/*.pem
