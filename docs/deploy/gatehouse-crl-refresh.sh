#!/bin/sh
# Fetch both Gatehouse CRLs (issuing intermediate and root), check their signatures, write them
# as one PEM file for nginx's ssl_crl or HAProxy's crl-file, and run RELOAD_COMMAND when the
# file changed. Run it every few minutes (docs/deploy/gatehouse-crl-refresh.timer): the
# interval is how long a revoked client can still connect, and the CA's CRL expires after 24 h
# (crl.lifetime), after which nginx and HAProxy refuse every client.
#
#   gatehouse-crl-refresh.sh CA_URL CA_BUNDLE CRL_FILE RELOAD_COMMAND
#   gatehouse-crl-refresh.sh https://ca.acme.internal:8443 /etc/gatehouse/trust/ca-bundle.pem \
#       /etc/gatehouse/trust/crl.pem 'systemctl reload nginx'
#
# CA_BUNDLE is the root then the issuing intermediate (ca/root.pem + ca/intermediate.pem).
# Exits non-zero, leaving CRL_FILE untouched, when a download or a signature check fails.
# test/interop-nginx.test.ts and test/interop-haproxy.test.ts run this file as it is.
set -eu

if [ "$#" -ne 4 ]; then
  echo "usage: $0 CA_URL CA_BUNDLE CRL_FILE RELOAD_COMMAND" >&2
  exit 64
fi
ca_url=${1%/}
bundle=$2
out=$3
reload=$4

work=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-crl.XXXXXX")
trap 'rm -rf "$work"' EXIT

for path in crl crl/root; do
  curl -sS --fail --max-time 30 --cacert "$bundle" -o "$work/crl.der" "$ca_url/$path"
  # Exit status 1 when no certificate in the bundle signed it.
  openssl crl -inform DER -in "$work/crl.der" -CAfile "$bundle" -noout 2>"$work/verify" || {
    echo "$0: $ca_url/$path: signature check failed: $(cat "$work/verify")" >&2
    exit 1
  }
  openssl crl -inform DER -in "$work/crl.der" -outform PEM >>"$work/crl.pem"
done

if [ -f "$out" ] && cmp -s "$work/crl.pem" "$out"; then
  exit 0
fi
chmod 644 "$work/crl.pem"
# Same directory, then rename: the proxy never reads a half-written file.
cp "$work/crl.pem" "$out.new"
mv -f "$out.new" "$out"
sh -c "$reload"
