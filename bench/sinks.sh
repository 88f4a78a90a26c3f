#!/usr/bin/env bash
# Sink throughput: the release simulator backfills 100,000 readings (1,000 generated sensors, 100
# ticks; FROST 2,000) into one sink of the test bench at a time, as fast as that sink acknowledges them (`block`
# policy), three times each; prints the median readings per second and the ratio to the MQTT sink.
# Usage: bench/sinks.sh   (make bench runs it; it starts the bench servers it needs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/services/services.sh up mosquitto kafka kafka-bridge pulsar influxdb frost >/dev/null
cargo build --release --quiet --bin simulator
# No NGSI-LD broker can be installed here: the NGSI-LD row measures our sink against the strict
# contract server of the tests (an in-memory axum server), so it bounds the sink, not a broker.
cargo build --release --quiet -p smartcity-testbench --example ngsi_ld_contract_server
# shellcheck source=/dev/null
source target/bench/env
secrets=target/bench/secrets
dir=$(mktemp -d)
target/release/examples/ngsi_ld_contract_server > "$dir/ngsi-url" &
contract=$!
trap 'kill $contract 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do [ -s "$dir/ngsi-url" ] && break; sleep 0.1; done
ngsi_url=$(cat "$dir/ngsi-url")

# One config per sink, from the bench's all-sinks config (target/bench/simulator.toml).
sink_toml() {
  local run="$1"
  case "$2" in
    mosquitto) printf '[[mqtt]]\nname="mosquitto"\nport=%s\nclient_id="bench-%s"\ntopic_prefix="bench/%s"\n' "$BENCH_MQTT_PORT" "$run" "$run" ;;
    mosquitto-tls) printf '[[mqtt]]\nname="mosquitto-tls"\nport=%s\nclient_id="bench-%s"\ntopic_prefix="bench/%s"\nusername="%s"\npassword_file="%s"\n[mqtt.tls]\nca_file="%s"\nclient_cert_file="%s"\nclient_key_file="%s"\n' \
      "$BENCH_MQTTS_PORT" "$run" "$run" "$BENCH_MQTT_USER" "$secrets/mqtt-password" "$BENCH_TLS_CA" "$BENCH_TLS_CLIENT_CERT" "$BENCH_TLS_CLIENT_KEY" ;;
    kafka) printf '[[mqtt]]\nenabled=false\n[[kafka]]\nbootstrap_servers="%s"\ntopic_template="bench-%s-{kind}"\n' "$BENCH_KAFKA_BOOTSTRAP" "$run" ;;
    kafka-sasl) printf '[[mqtt]]\nenabled=false\n[[kafka]]\nname="kafka-sasl"\nbootstrap_servers="%s"\ntopic_template="bench-%s-{kind}"\nsecurity_protocol="sasl_ssl"\nusername="%s"\npassword_file="%s"\n[kafka.tls]\nca_file="%s"\n' \
      "$BENCH_KAFKA_SASL_BOOTSTRAP" "$run" "$BENCH_KAFKA_SASL_USER" "$secrets/kafka-password" "$BENCH_KAFKA_TLS_CA" ;;
    kafka-rest) printf '[[mqtt]]\nenabled=false\n[[kafka_rest]]\nurl="%s"\ntopic_template="bench-%s-{kind}"\n' "$BENCH_KAFKA_REST_URL" "$run" ;;
    pulsar) printf '[[mqtt]]\nenabled=false\n[[pulsar]]\nurl="%s"\ntopic_template="persistent://public/default/bench-%s-{kind}"\n' "$BENCH_PULSAR_URL" "$run" ;;
    sensorthings) printf '[[mqtt]]\nenabled=false\n[[sensorthings]]\nurl="%s"\nname_prefix="bench-%s-"\n' "$BENCH_FROST_URL" "$run" ;;
    ngsi-ld) printf '[[mqtt]]\nenabled=false\n[[ngsi_ld]]\nurl="%s"\n' "$ngsi_url" ;;
    influxdb) printf '[[mqtt]]\nenabled=false\n[[influxdb]]\nurl="%s"\norg="%s"\nbucket="%s"\ntoken_file="%s"\n' "$BENCH_INFLUX_URL" "$BENCH_INFLUX_ORG" "$BENCH_INFLUX_BUCKET" "$secrets/influxdb-token" ;;
  esac
  printf '[embedded_broker]\nenabled=false\n[status]\ninterval_seconds=0\n'
}

# Readings per second of one run, from the simulator's own `stopped:` line (excludes process start).
# FROST stores about 1,000 Observations a second here (5 per reading): its runs are 2,000 readings
# (100 sensors x 20 ticks, the bootstrap of 100 Things included) to keep the whole bench short.
one_run() {
  local sink="$1" i="$2" run sensors=1000 to=2025-06-01T00:01:39Z
  run="$sink-$$-$i-$(date +%s%N)"
  if [ "$sink" = sensorthings ]; then sensors=100; to=2025-06-01T00:00:19Z; fi
  sink_toml "$run" "$sink" > "$dir/$run.toml"
  target/release/simulator --config "$dir/$run.toml" --sensors "$sensors" --interval 1 \
    --from 2025-06-01T00:00:00Z --to "$to" --metrics-listen 127.0.0.1:0 2>&1 \
    | grep -o 'generated in [0-9.]* s ([0-9]*/s)' | grep -o '([0-9]*' | tr -d '('
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-14s %12s %10s   %s\n' sink readings/s vs-mqtt "runs (readings/s)"
mqtt=""
for sink in mosquitto mosquitto-tls kafka kafka-sasl kafka-rest pulsar influxdb sensorthings ngsi-ld; do
  runs=$(for i in 1 2 3; do one_run "$sink" "$i"; done | tr '\n' ' ')
  m=$(echo "$runs" | tr ' ' '\n' | grep . | median)
  [ -n "$mqtt" ] || mqtt="$m"
  printf '%-14s %12s %10s   %s\n' "$sink" "$m" "$(awk -v a="$m" -v b="$mqtt" 'BEGIN { printf "%.2fx", a / b }')" "$runs"
done
echo "100,000 readings per run (1,000 sensors x 100 ticks; sensorthings 2,000), release build, $(nproc) cores, $(date -u +%F)"
