#!/usr/bin/env bash
# Throw-away PKI of the test bench: a private CA, a server certificate and a client certificate,
# made with openssl (>= 3.0: `req -x509 -CA`) and kept in $BENCH_DIR/certs until they near expiry.
# Not a server: sourced by the scripts of TLS servers (mosquitto.sh), or run directly to (re)make
# the files and print their folder.
#
#   ca.pem            CA, basicConstraints=critical,CA:TRUE (webpki/rustls rejects a CA without it)
#   server.pem/.key   SAN IP:127.0.0.1 + DNS:localhost, EKU serverAuth (rustls ignores the CN)
#   client.pem/.key   CN=smartcity-bench-client, EKU clientAuth, for mutual TLS
#
# EC P-256 keys (fast to make, accepted by rustls and OpenSSL servers), PKCS#8 PEM.
# A minimal openssl config is passed so that the system openssl.cnf's v3_ca section does not
# leak CA:TRUE into the leaf certificates.

if [ -z "${BENCH_DIR:-}" ] || ! declare -F log >/dev/null; then
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

BENCH_CERTS="$BENCH_DIR/certs"

# bench_certs: make the certificates unless valid ones (for at least 7 more days) exist.
bench_certs() {
  local d="$BENCH_CERTS" f
  local ok=1
  for f in ca.pem server.pem server.key client.pem client.key; do [ -s "$d/$f" ] || ok=0; done
  if [ "$ok" = 1 ] \
     && openssl x509 -checkend 604800 -noout -in "$d/server.pem" >/dev/null 2>&1 \
     && openssl x509 -checkend 604800 -noout -in "$d/client.pem" >/dev/null 2>&1; then
    return 0
  fi
  command -v openssl >/dev/null || apt_install openssl
  log "making test bench CA and certificates in $d"
  local tmp; tmp="$(mktemp -d "$BENCH_DIR/certs.tmp.XXXXXX")"
  (
    set -e
    cd "$tmp"
    printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n' > min.cnf
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -config min.cnf -x509 -new "${ec[@]}" -days 3650 \
      -keyout ca.key -out ca.pem -subj "/CN=smartcity bench CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash"
    openssl req -config min.cnf -x509 -new "${ec[@]}" -days 825 -CA ca.pem -CAkey ca.key \
      -keyout server.key -out server.pem -subj "/CN=localhost" \
      -addext "basicConstraints=critical,CA:FALSE" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -addext "keyUsage=critical,digitalSignature" \
      -addext "extendedKeyUsage=serverAuth"
    openssl req -config min.cnf -x509 -new "${ec[@]}" -days 825 -CA ca.pem -CAkey ca.key \
      -keyout client.key -out client.pem -subj "/CN=smartcity-bench-client" \
      -addext "basicConstraints=critical,CA:FALSE" \
      -addext "keyUsage=critical,digitalSignature" \
      -addext "extendedKeyUsage=clientAuth"
    openssl verify -CAfile ca.pem -purpose sslserver server.pem
    openssl verify -CAfile ca.pem -purpose sslclient client.pem
    rm -f min.cnf
  ) >"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log" >&2; rm -rf "$tmp"; die "could not make the bench certificates"; }
  rm -f "$tmp/openssl.log"
  chmod 755 "$tmp"; chmod 644 "$tmp"/*.pem; chmod 600 "$tmp"/*.key
  rm -rf "$d"
  mv "$tmp" "$d"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_certs
  echo "$BENCH_CERTS"
fi
