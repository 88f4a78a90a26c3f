#!/usr/bin/env bash
# Writes target/bench/simulator.toml: a simulator configuration that enables one sink per bench
# server that is up (both Mosquitto listeners, Kafka PLAINTEXT and SASL_SSL, the REST proxy, Pulsar,
# InfluxDB). Secrets go to files under target/bench/secrets/ (mode 600), never into the TOML.
# Called by `services.sh up`; run it again by hand after starting servers one by one.
#   target/release/simulator --config target/bench/simulator.toml
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

env_file="$BENCH_DIR/env"
[ -f "$env_file" ] || die "$env_file missing: run scripts/services/services.sh up first"
# shellcheck source=/dev/null
source "$env_file"
secrets="$BENCH_DIR/secrets"
mkdir -p "$secrets"
chmod 700 "$secrets"
secret() { (umask 077; printf '%s\n' "$2" > "$secrets/$1"); echo "$secrets/$1"; }

out="$BENCH_DIR/simulator.toml"
{
  echo "# Written by scripts/services/simulator-config.sh for the test bench: every sink at once."
  echo "# Run: target/release/simulator --config $out"
  echo "[embedded_broker]"
  echo "enabled = false"
  if [ -n "${BENCH_MQTT_PORT:-}" ]; then
    cat <<TOML

[[mqtt]]
name = "mosquitto"
host = "$BENCH_MQTT_HOST"
port = $BENCH_MQTT_PORT

[[mqtt]]
name = "mosquitto-tls"
host = "$BENCH_MQTT_HOST"
port = $BENCH_MQTTS_PORT
username = "$BENCH_MQTT_USER"
password_file = "$(secret mqtt-password "$BENCH_MQTT_PASSWORD")"
[mqtt.tls]
ca_file = "$BENCH_TLS_CA"
client_cert_file = "$BENCH_TLS_CLIENT_CERT"
client_key_file = "$BENCH_TLS_CLIENT_KEY"
TOML
  else
    printf '\n[[mqtt]]\nenabled = false\n'
  fi
  if [ -n "${BENCH_KAFKA_BOOTSTRAP:-}" ]; then
    cat <<TOML

[[kafka]]
name = "kafka"
bootstrap_servers = "$BENCH_KAFKA_BOOTSTRAP"

[[kafka]]
name = "kafka-sasl"
bootstrap_servers = "$BENCH_KAFKA_SASL_BOOTSTRAP"
security_protocol = "sasl_ssl"
sasl_mechanism = "PLAIN"
username = "$BENCH_KAFKA_SASL_USER"
password_file = "$(secret kafka-password "$BENCH_KAFKA_SASL_PASSWORD")"
[kafka.tls]
ca_file = "$BENCH_KAFKA_TLS_CA"
TOML
  fi
  if [ -n "${BENCH_KAFKA_REST_URL:-}" ]; then
    printf '\n[[kafka_rest]]\nname = "kafka-rest"\nurl = "%s"\n' "$BENCH_KAFKA_REST_URL"
  fi
  if [ -n "${BENCH_PULSAR_URL:-}" ]; then
    printf '\n[[pulsar]]\nname = "pulsar"\nurl = "%s"\n' "$BENCH_PULSAR_URL"
  fi
  if [ -n "${BENCH_INFLUX_URL:-}" ]; then
    cat <<TOML

[[influxdb]]
name = "influxdb"
url = "$BENCH_INFLUX_URL"
org = "$BENCH_INFLUX_ORG"
bucket = "$BENCH_INFLUX_BUCKET"
token_file = "$(secret influxdb-token "$BENCH_INFLUX_TOKEN")"
TOML
  fi
} > "$out"
log "simulator config for the bench: $out"
