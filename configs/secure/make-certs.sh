#!/bin/sh
# Makes the files of the hardened two-host pair (secure-host1.yaml and
# secure-host2.yaml): a CA, host2's server certificate, host1's client
# certificate, and the shared auth key. The set in the repository is an
# example anyone can read: run this to make your own before the pair
# carries anything real, then copy host1.* to host 1 and host2.* to host 2
# (ca.pem and bridge.key to both). The CA's private key is not kept.
#
#   configs/secure/make-certs.sh [HOST2_NAME]   (default: localhost)
set -eu
cd "$(dirname "$0")"
host2=${1:-localhost}
days=36500
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1"; }

ec "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -days $days -subj "/CN=pickleway example CA" \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign" -out ca.pem

# sign NAME SUBJECT EXTENSIONS
sign() {
  ec "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$tmp/$1.csr"
  printf '%s\n' "$3" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA ca.pem -CAkey "$tmp/ca.key" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -days $days -extfile "$tmp/$1.ext" -out "$1.pem" 2>/dev/null
}
case $host2 in
  *[!0-9.]*) san="DNS:$host2,IP:127.0.0.1" ;;
  *) san="IP:$host2" ;;
esac
sign host2 "/CN=$host2" "subjectAltName=$san
extendedKeyUsage=serverAuth"
sign host1 "/CN=host1" "extendedKeyUsage=clientAuth"
openssl rand -out bridge.key 32
chmod 600 host1.key host2.key bridge.key
echo "made ca.pem, host1.pem/.key, host2.pem/.key (for $host2) and bridge.key in $(pwd)"
