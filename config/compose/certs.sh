#!/usr/bin/env bash
# Certificates of the docker compose stack, made by the project's script (scripts/services/certs.sh)
# in target/compose/certs (BENCH_DIR=target/compose), plus one server certificate for the TLS-only
# Mosquitto signed by the same CA:
#
#   ca.pem                       the CA: mounted into the simulator, the gateway and the distribution
#                                service (tls.ca_file = "certs/ca.pem") and into mosquitto-tls
#   mosquitto-tls.pem/.key       server certificate of mosquitto-tls: SAN DNS:mosquitto-tls (the name
#                                clients use on the compose network), DNS:localhost, IP:127.0.0.1
#   server.pem/.key, client.pem/.key, ca.key   made by certs.sh too; not mounted
#
# certs.sh's own server certificate names only localhost/127.0.0.1, and rustls verifies the host
# name, so the stack needs this second one. Idempotent: certificates still valid for 7 days and
# signed by the current CA are kept. Prints the folder. Run it before `docker compose up`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export BENCH_DIR="${COMPOSE_CERTS_BENCH_DIR:-$repo/target/compose}"
# shellcheck source=../../scripts/services/certs.sh
source "$repo/scripts/services/certs.sh"
bench_certs
d="$BENCH_CERTS"

if [ -s "$d/mosquitto-tls.pem" ] && [ -s "$d/mosquitto-tls.key" ] \
   && openssl verify -CAfile "$d/ca.pem" -purpose sslserver "$d/mosquitto-tls.pem" >/dev/null 2>&1 \
   && openssl x509 -checkend 604800 -noout -in "$d/mosquitto-tls.pem" >/dev/null 2>&1; then
  echo "$d"
  exit 0
fi

tmp="$(mktemp -d "$BENCH_DIR/mosquitto-tls.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n' > "$tmp/min.cnf"
openssl req -config "$tmp/min.cnf" -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days 825 -CA "$d/ca.pem" -CAkey "$d/ca.key" \
  -keyout "$tmp/mosquitto-tls.key" -out "$tmp/mosquitto-tls.pem" -subj "/CN=mosquitto-tls" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "subjectAltName=DNS:mosquitto-tls,DNS:localhost,IP:127.0.0.1" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" 2>"$tmp/openssl.log" \
  || { cat "$tmp/openssl.log" >&2; exit 1; }
openssl verify -CAfile "$d/ca.pem" -purpose sslserver "$tmp/mosquitto-tls.pem" >/dev/null
chmod 644 "$tmp/mosquitto-tls.pem"
chmod 600 "$tmp/mosquitto-tls.key"
mv "$tmp/mosquitto-tls.pem" "$tmp/mosquitto-tls.key" "$d/"
echo "$d"
