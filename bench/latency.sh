#!/usr/bin/env bash
# Case 6, end-to-end latency: from a reading's observedAt to the moment it can be queried in
# InfluxDB, at 10,000 readings per second (10,000 generated sensors, one reading a second each, live)
# through simulator -> Mosquitto (QoS 1) -> gateway -> InfluxDB, default settings everywhere. A probe
# (bench/peers/latency_probe.py) polls InfluxDB every 100 ms for the latest point of 20 sensors spread
# over the catalogue. Prints a Markdown section.
# Usage: bench/latency.sh   (make bench runs it)   BENCH_RUNS=N runs (default 5)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_up mosquitto influxdb
cargo build --release --quiet --bin simulator --bin gateway
token_file="$PWD/target/bench/secrets/influxdb-token"
sensors=10000
warmup=10
measure=${BENCH_LATENCY_SECONDS:-30}
live_scratch

# Probe sensors: every 500th of the generated catalogue (its ids, from the same generator).
cargo build --release --quiet -p smartcity-model --example backfill_lines
mapfile -t probes < <(target/release/examples/backfill_lines "$sensors" 1 2025-06-01T00:00:00Z json |
  awk 'NR % 500 == 1' | jq -r .id)

one_run() { # one_run I: appends latencies (s) to $dir/latencies, "p50 p99" of the gateway's histogram to $dir/histogram
  local run="latency-$$-$1-$(date +%s%N)" port sim gw
  new_bucket "$run" "$dir/buckets"
  port=$(free_port)
  printf '[[mqtt]]\nname="mqtt"\nhost="%s"\nport=%s\nclient_id="%s-gw"\nclean_session=true\ntopic_prefix="bench/%s"\n[influxdb]\nurl="%s"\norg="%s"\nbucket="%s"\ntoken_env=""\ntoken_file="%s"\n' \
    "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$run" "$run" "$BENCH_INFLUX_URL" "$BENCH_INFLUX_ORG" "$run" "$token_file" > "$dir/gw.toml"
  printf '[embedded_broker]\nenabled=false\n[status]\ninterval_seconds=0\n[[mqtt]]\nhost="%s"\nport=%s\nclient_id="%s-sim"\nclean_session=true\ntopic_prefix="bench/%s"\n' \
    "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$run" "$run" > "$dir/sim.toml"
  target/release/gateway --config "$dir/gw.toml" --data-dir "$dir/data-$1" --http-listen "127.0.0.1:$port" > "$dir/gw.log" 2>&1 &
  gw=$!; pids+=("$gw")
  for _ in $(seq 100); do [ "$(metric "$port" 'smartcity_gateway_source_connected{source="mqtt"}')" = 1 ] && break; sleep 0.1; done
  target/release/simulator --config "$dir/sim.toml" --sensors "$sensors" --interval 1 --metrics-listen 127.0.0.1:0 > "$dir/sim.log" 2>&1 &
  sim=$!; pids+=("$sim")
  sleep "$warmup"
  local before
  before=$(curl -s "http://127.0.0.1:$port/metrics" | grep '^smartcity_gateway_end_to_end_seconds_bucket')
  python3 bench/peers/latency_probe.py "$BENCH_INFLUX_URL" "$BENCH_INFLUX_ORG" "$run" "$token_file" "$measure" 0.1 "${probes[@]}" >> "$dir/latencies"
  # The gateway's own histogram over the same window (observedAt to the write's answer), as a check.
  curl -s "http://127.0.0.1:$port/metrics" | grep '^smartcity_gateway_end_to_end_seconds_bucket' |
    awk -v before="$before" 'BEGIN { n = split(before, l, "\n"); for (i = 1; i <= n; i++) { split(l[i], f, " "); b[f[1]] = f[2] } }
      { match($1, /le="[^"]*"/); le = substr($1, RSTART + 4, RLENGTH - 5); c[++k] = $2 - b[$1]; u[k] = le }
      END { total = c[k]; for (i = 1; i <= k; i++) { if (p50 == "" && c[i] >= 0.5 * total) p50 = u[i]; if (p99 == "" && c[i] >= 0.99 * total) p99 = u[i] } print p50, p99, total }' >> "$dir/histogram"
  local published rate
  published=$(metric "$port" smartcity_gateway_points_written_total)
  # The simulator first and at once (SIGKILL): stopped gently it would spend 10 s publishing its
  # queue, and with clean sessions nothing of a run stays in the broker to slow down the next case.
  kill -KILL "$sim"; wait "$sim" 2>/dev/null || true
  kill -TERM "$gw"; wait "$gw" 2>/dev/null || true
  pids=()
  rate=$(awk -v w="$published" -v s="$((warmup + measure))" 'BEGIN { printf "%d", w / s }')
  echo "$rate" >> "$dir/rates"
  progress "latency run $1: $(wc -l < "$dir/latencies") samples so far, gateway wrote $published (~$rate/s), histogram p50/p99/n $(tail -1 "$dir/histogram")"
}

for i in $(seq "$RUNS"); do one_run "$i"; done
pct() { sort -g "$dir/latencies" | awk -v p="$1" '{ a[NR] = $1 } END { i = int(p * NR + 0.999999); if (i < 1) i = 1; printf "%.2f", a[i] }'; }
count=$(wc -l < "$dir/latencies")
figure latency_p99 "$(pct 0.99)"
cat <<EOF
## 6. End-to-end latency: observedAt to queryable in InfluxDB

$sensors generated sensors at one reading a second each, live (10,000 readings/s, each second's
readings observed at the same instant and published as one burst), through simulator → Mosquitto
(QoS 1) → gateway → InfluxDB, every setting at its default (gateway writes of 10,000 readings or after
200 ms). A probe polls InfluxDB every 100 ms for the latest \`seq\` point of ${#probes[@]} sensors spread over
the catalogue and records, for each new point, the time it was first seen minus its \`observedAt\`
(so up to 100 ms late: an upper bound). $RUNS runs of ${measure} s after ${warmup} s of warm-up; $count samples in all.

| p50 | p99 | max | gateway's own histogram, p50 / p99 bucket bound (observedAt → write answered) | written readings/s (median run) |
| --- | --- | --- | --- | --- |
| $(pct 0.5) s | $(pct 0.99) s | $(pct 1) s | $(awk '{ a = a $1 " " } END { print a }' "$dir/histogram" | stats | cut -d' ' -f1) s / $(awk '{ a = a $2 " " } END { print a }' "$dir/histogram" | stats | cut -d' ' -f1) s | $(stats < "$dir/rates" | fmt_stats) |

Command: \`bench/latency.sh\`
EOF
