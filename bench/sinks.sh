#!/usr/bin/env bash
# Sink throughput: the release simulator backfills 100,000 readings (1,000 generated sensors, 100
# ticks; FROST 2,000) into one sink of the test bench at a time, as fast as that sink acknowledges them (`block`
# policy), RUNS times each; prints a Markdown section with the median readings per second.
# Usage: bench/sinks.sh   (make bench runs it; it starts the bench servers it needs)
#   BENCH_SINKS="ngsi-ld ngsi-ld-temporal" measures only those rows (default: every sink; the ratio
#   column is then against the first row measured).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_up mosquitto kafka kafka-bridge pulsar influxdb frost
cargo build --release --quiet --bin simulator
# No NGSI-LD broker can be installed here: the NGSI-LD row measures our sink against the strict
# contract server of the tests (an in-memory axum server), so it bounds the sink, not a broker.
cargo build --release --quiet -p smartcity-testbench --example ngsi_ld_contract_server
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
    # The two other history modes (docs/ngsi-ld.md): the default above keeps every reading with
    # upserts; `temporal` sends the older readings of a batch through the temporal API; `latest`
    # keeps only the latest reading of each sensor per batch (no history).
    ngsi-ld-temporal) printf '[[mqtt]]\nenabled=false\n[[ngsi_ld]]\nurl="%s"\nhistory="temporal"\n' "$ngsi_url" ;;
    ngsi-ld-latest) printf '[[mqtt]]\nenabled=false\n[[ngsi_ld]]\nurl="%s"\nhistory="latest"\n' "$ngsi_url" ;;
    influxdb) printf '[[mqtt]]\nenabled=false\n[[influxdb]]\nurl="%s"\norg="%s"\nbucket="%s"\ntoken_file="%s"\n' "$BENCH_INFLUX_URL" "$BENCH_INFLUX_ORG" "$BENCH_INFLUX_BUCKET" "$secrets/influxdb-token" ;;
  esac
  # The end-of-run drain must never cut a run short: the figure is the rate of full delivery.
  printf '[embedded_broker]\nenabled=false\n[status]\ninterval_seconds=0\n[simulation]\ndrain_seconds=600\n'
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
    --from 2025-06-01T00:00:00Z --to "$to" --metrics-listen 127.0.0.1:0 > "$dir/$run.log" 2>&1
  sim_rate "$dir/$run.log"
}

cat <<EOF
## 7a. Every sink: readings per second into the bench's servers

The release simulator backfills 100,000 readings (1,000 generated sensors × 100 ticks; FROST 2,000:
100 sensors × 20 ticks, the bootstrap of its 100 Things included) into **one** sink at a time, as fast
as that sink's server acknowledges them (\`block\` policy, default settings of each sink); the figure
is the simulator's own \`stopped: … (N/s)\` rate (process start not counted). Everything runs on the
same machine as the servers (Kafka, Pulsar, FROST and PostgreSQL stay up during the runs). No NGSI-LD
broker can be installed here: that row measures the sink against the tests' strict contract server
(in memory, every entity checked against the contract), a floor for the sink, not a broker's figure;
its three rows are the three \`history\` modes (\`ngsi-ld\`: every reading by upserts, the default); the
REST proxy row is the bench's stand-in (a JDK HTTP server in front of a Java producer), not
Redpanda's. Median of $RUNS runs (min–max).

| sink | readings/s | vs the MQTT sink |
| --- | --- | --- |
EOF
mqtt=""
all_sinks="mosquitto mosquitto-tls kafka kafka-sasl kafka-rest pulsar influxdb sensorthings ngsi-ld ngsi-ld-temporal ngsi-ld-latest"
for sink in ${BENCH_SINKS:-$all_sinks}; do
  case " $all_sinks " in *" $sink "*) ;; *) echo "BENCH_SINKS: unknown sink \`$sink\`" >&2; exit 2 ;; esac
  runs=$(for i in $(seq "$RUNS"); do one_run "$sink" "$i"; done | tr '\n' ' ')
  s=$(echo "$runs" | stats)
  [ -n "$mqtt" ] || mqtt="${s%% *}"
  figure "sink_$sink" "${s%% *}"
  progress "sinks: $sink $runs"
  echo "| \`$sink\` | $(echo "$s" | fmt_stats) | $(ratio "${s%% *}" "$mqtt") |"
done
echo
echo "Command: \`bench/sinks.sh\`"
