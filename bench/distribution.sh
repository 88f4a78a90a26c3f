#!/usr/bin/env bash
# Distribution throughput, Pulsar → MQTT: the release simulator first puts 200,000 readings (2,000
# sensors x 100 ticks) on fresh Pulsar topics; then the release distribution service starts on them
# with one MQTT target (the bench's Mosquitto, QoS 1) and the time until it has acknowledged all
# 200,000 to Pulsar (every MQTT PUBACK in) is measured from its metrics, from its start and from its
# first delivery, with its CPU and peak RSS. RUNS runs; a Markdown section.
# Usage: bench/distribution.sh   (make bench runs it)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_up mosquitto pulsar
cargo build --release --quiet --bin simulator --bin distribution
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
n=200000

one_run() {
  local run="dist-bench-$$-$1-$(date +%s%N)" port topics=""
  printf '[embedded_broker]\nenabled=false\n[[mqtt]]\nenabled=false\n[[pulsar]]\nurl="%s"\ntopic_template="persistent://public/default/%s-{kind}"\n[status]\ninterval_seconds=0\n' \
    "$BENCH_PULSAR_URL" "$run" > "$dir/sim.toml"
  target/release/simulator --config "$dir/sim.toml" --sensors 2000 --interval 1 \
    --from 2025-07-01T00:00:00Z --to 2025-07-01T00:01:39Z --metrics-listen 127.0.0.1:0 2>/dev/null
  for k in traffic airquality parking noise weather light; do topics+="\"persistent://public/default/$run-$k\","; done
  port=$(free_port)
  printf '[pulsar]\nurl="%s"\ntopics=[%s]\nsubscription="%s"\ndead_letter_topic="persistent://public/default/%s-dlq"\nadmin_url="%s"\n[[mqtt]]\nport=%s\nclient_id="%s"\ntopic_prefix="bench/%s"\n[metrics]\nlisten="127.0.0.1:%s"\n[status]\ninterval_seconds=0\n' \
    "$BENCH_PULSAR_URL" "${topics%,}" "$run" "$run" "$BENCH_PULSAR_ADMIN_URL" "$BENCH_MQTT_PORT" "$run" "$run" "$port" > "$dir/dist.toml"
  local start end delivered=0 first_t="" first_n=0 c0 c1 hwm
  start=$(date +%s.%N)
  target/release/distribution --config "$dir/dist.toml" 2>"$dir/dist.log" &
  local pid=$!
  c0=$(cpu_ticks "$pid")
  while [ "$delivered" -lt "$n" ]; do
    sleep 0.05
    delivered=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "smartcity_distribution_messages_delivered_total" { print int($2) }')
    delivered=${delivered:-0}
    if [ -z "$first_t" ] && [ "$delivered" -gt 0 ]; then first_t=$(date +%s.%N); first_n=$delivered; fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$dir/dist.log" >&2; exit 1; fi
  done
  end=$(date +%s.%N)
  c1=$(cpu_ticks "$pid")
  hwm=$(peak_rss_mib "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  # "rate once-delivering cpu_s_per_100k peak_rss_mib"
  awk -v n="$n" -v s="$start" -v f="$first_t" -v m="$((n - first_n))" -v e="$end" -v c="$((c1 - c0))" -v t="$CLK_TCK" -v h="$hwm" \
    'BEGIN { printf "%d %d %.2f %d\n", n / (e - s), (e > f) ? m / (e - f) : 0, c / t * 100000 / n, h }'
}

for i in $(seq "$RUNS"); do one_run "$i"; done > "$dir/rows"
col() { cut -d' ' -f"$1" "$dir/rows" | tr '\n' ' ' | stats; }
s=$(col 1) steady=$(col 2) cpu=$(col 3) rss=$(col 4)
figure distribution_pulsar_mqtt "${steady%% *}"
cat <<EOF
## 7b. Distribution: Pulsar → MQTT

The release simulator puts $n readings (2,000 sensors × 100 ticks) on fresh Pulsar topics; then the
release \`distribution\` starts on them with one MQTT target (the bench's Mosquitto, QoS 1) and is timed
from its start until it has acknowledged all $n to Pulsar (each only after its PUBACK), from its
\`/metrics\`: from the process start, and once delivering (from its first acknowledged message to its
last). CPU seconds per 100,000 readings and peak RSS of the distribution process. Median of $RUNS
runs (min–max).

| path | readings/s, start included | once delivering | CPU s per 100,000 | peak RSS MiB |
| --- | --- | --- | --- | --- |
| Pulsar → distribution → MQTT QoS 1 | $(echo "$s" | fmt_stats) | $(echo "$steady" | fmt_stats) | $(echo "$cpu" | fmt_stats) | $(echo "$rss" | fmt_stats) |

Command: \`bench/distribution.sh\`
EOF
