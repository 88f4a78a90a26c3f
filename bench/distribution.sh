#!/usr/bin/env bash
# Distribution throughput, Pulsar → MQTT: the release simulator first puts 20,000 readings (1,000
# sensors x 20 ticks) on fresh Pulsar topics; then the release distribution service starts on them
# with one MQTT target (the bench's Mosquitto, QoS 1) and the time until it has acknowledged all
# 20,000 to Pulsar (every MQTT PUBACK in) is measured from its metrics. RUNS runs; a Markdown section.
# Usage: bench/distribution.sh   (make bench runs it)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_up mosquitto pulsar
cargo build --release --quiet --bin simulator --bin distribution
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
n=20000

one_run() {
  local run="dist-bench-$$-$1-$(date +%s%N)" port topics=""
  printf '[embedded_broker]\nenabled=false\n[[mqtt]]\nenabled=false\n[[pulsar]]\nurl="%s"\ntopic_template="persistent://public/default/%s-{kind}"\n[status]\ninterval_seconds=0\n' \
    "$BENCH_PULSAR_URL" "$run" > "$dir/sim.toml"
  target/release/simulator --config "$dir/sim.toml" --sensors 1000 --interval 1 \
    --from 2025-07-01T00:00:00Z --to 2025-07-01T00:00:19Z --metrics-listen 127.0.0.1:0 2>/dev/null
  for k in traffic airquality parking noise weather light; do topics+="\"persistent://public/default/$run-$k\","; done
  port=$(free_port)
  printf '[pulsar]\nurl="%s"\ntopics=[%s]\nsubscription="%s"\ndead_letter_topic="persistent://public/default/%s-dlq"\nadmin_url="%s"\n[[mqtt]]\nport=%s\nclient_id="%s"\ntopic_prefix="bench/%s"\n[metrics]\nlisten="127.0.0.1:%s"\n[status]\ninterval_seconds=0\n' \
    "$BENCH_PULSAR_URL" "${topics%,}" "$run" "$run" "$BENCH_PULSAR_ADMIN_URL" "$BENCH_MQTT_PORT" "$run" "$run" "$port" > "$dir/dist.toml"
  local start end delivered=0
  start=$(date +%s.%N)
  target/release/distribution --config "$dir/dist.toml" 2>"$dir/dist.log" &
  local pid=$!
  while [ "$delivered" -lt "$n" ]; do
    sleep 0.05
    delivered=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "smartcity_distribution_messages_delivered_total" { print int($2) }')
    delivered=${delivered:-0}
    if ! kill -0 "$pid" 2>/dev/null; then cat "$dir/dist.log" >&2; exit 1; fi
  done
  end=$(date +%s.%N)
  kill -TERM "$pid"; wait "$pid" || true
  awk -v n="$n" -v s="$start" -v e="$end" 'BEGIN { printf "%d\n", n / (e - s) }'
}

runs=$(for i in $(seq "$RUNS"); do one_run "$i"; done | tr '\n' ' ')
s=$(echo "$runs" | stats)
figure distribution_pulsar_mqtt "${s%% *}"
cat <<EOF
## 7b. Distribution: Pulsar → MQTT

The release simulator puts $n readings (1,000 sensors × 20 ticks) on fresh Pulsar topics; then the
release \`distribution\` starts on them with one MQTT target (the bench's Mosquitto, QoS 1) and is timed
from its start until it has acknowledged all $n to Pulsar (each only after its PUBACK), from its
\`/metrics\`, process start included. Median of $RUNS runs (min–max).

| path | readings/s |
| --- | --- |
| Pulsar → distribution → MQTT QoS 1 | $(echo "$s" | fmt_stats) |

Command: \`bench/distribution.sh\`
EOF
