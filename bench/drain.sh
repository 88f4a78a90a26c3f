#!/usr/bin/env bash
# Case 9, the spool's drain after an InfluxDB outage: how fast the gateway catches up once InfluxDB
# is back, at 1, 2 and 4 writes in flight (`writer.writes_in_flight`; 2 is the default).
# 200,000 readings (2,000 generated sensors x 100 ticks) are produced to Kafka, then read by a gateway
# whose InfluxDB does not answer (a closed port): every reading goes to its spool. That spool is
# copied for each run, so every run drains the very same records: a gateway starts on the copy with
# InfluxDB reachable and a fresh bucket, and is timed from its start to its last point written (its
# `/metrics`, polled every 50 ms). Lost = 200,000 minus the bucket's `seq` points.
# Prints a Markdown section. Usage: bench/drain.sh   (make bench runs it)
#   BENCH_RUNS=N runs per setting (default 5); BENCH_DRAIN_IN_FLIGHT="1 2 4" the settings compared.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_up mosquitto kafka influxdb
cargo build --release --quiet --bin simulator --bin gateway
token_file="$PWD/target/bench/secrets/influxdb-token"
n=200000
read -r -a settings <<< "${BENCH_DRAIN_IN_FLIGHT:-1 2 4}"
dir=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  delete_buckets "$dir/buckets"
  rm -rf "$dir"
}
trap cleanup EXIT
run_id="drain-$$-$(date +%s)"

# The gateway's config: the shipped writer settings, a source that carries nothing during the drain
# (an MQTT prefix nobody publishes to), and InfluxDB at URL.
gateway_conf() { # gateway_conf URL BUCKET IN_FLIGHT [KAFKA_SOURCE]
  if [ -n "${4:-}" ]; then
    printf '[[mqtt]]\nenabled=false\n[[kafka]]\nname="kafka"\nbootstrap_servers="%s"\ntopic_template="bench-%s-{kind}"\ngroup_id="%s"\nauto_offset_reset="earliest"\n' \
      "$BENCH_KAFKA_BOOTSTRAP" "$run_id" "$run_id"
  else
    printf '[[mqtt]]\nname="mqtt"\nhost="%s"\nport=%s\nclient_id="%s-%s"\ntopic_prefix="bench/none-%s"\n' \
      "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$run_id" "$RANDOM" "$run_id"
  fi
  printf '[writer]\nwrites_in_flight=%s\n' "$3"
  printf '[influxdb]\nurl="%s"\norg="%s"\nbucket="%s"\ntoken_env=""\ntoken_file="%s"\n' "$1" "$BENCH_INFLUX_ORG" "$2" "$token_file"
}

# 1. The backlog on Kafka, then the spool filled by a gateway whose InfluxDB is away.
printf '[[mqtt]]\nenabled=false\n[[kafka]]\nbootstrap_servers="%s"\ntopic_template="bench-%s-{kind}"\n[embedded_broker]\nenabled=false\n[status]\ninterval_seconds=0\n[simulation]\ndrain_seconds=600\n' \
  "$BENCH_KAFKA_BOOTSTRAP" "$run_id" > "$dir/sim.toml"
target/release/simulator --config "$dir/sim.toml" --sensors 2000 --interval 1 --from 2025-06-01T00:00:00Z --to 2025-06-01T00:01:39Z \
  --metrics-listen 127.0.0.1:0 > "$dir/sim.log" 2>&1 || { echo "simulator failed:" >&2; tail -20 "$dir/sim.log" >&2; exit 1; }
closed=$(free_port) # nothing listens there: every write fails at once
gateway_conf "http://127.0.0.1:$closed" unused 2 kafka > "$dir/fill.toml"
port=$(free_port)
RUST_LOG=warn target/release/gateway --config "$dir/fill.toml" --data-dir "$dir/fill-data" --http-listen "127.0.0.1:$port" > "$dir/fill.log" 2>&1 &
pid=$!
for _ in $(seq 1200); do
  [ "$(metric "$port" smartcity_gateway_readings_spooled_total)" -ge "$n" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "the filling gateway died:" >&2; tail -20 "$dir/fill.log" >&2; exit 1; }
  sleep 0.1
done
spooled=$(metric "$port" smartcity_gateway_readings_spooled_total)
batches=$(metric "$port" smartcity_gateway_spool_batches)
kill -TERM "$pid"; wait "$pid" || true; pid=""
[ "$spooled" -ge "$n" ] || { echo "only $spooled of $n readings spooled in 120 s" >&2; exit 1; }
progress "drain: $n readings spooled in $batches batches ($(du -sh "$dir/fill-data" | cut -f1) on disk)"

# 2. Each run drains a copy of that spool into a fresh bucket.
one_run() { # one_run IN_FLIGHT I
  local run="drain-$1-$$-$2-$(date +%s%N)" t0 t1 c0 c1 got=0 last=0 stalled=0 count
  new_bucket "$run" "$dir/buckets"
  rm -rf "$dir/run-data" && cp -r "$dir/fill-data" "$dir/run-data"
  gateway_conf "$BENCH_INFLUX_URL" "$run" "$1" > "$dir/run.toml"
  port=$(free_port)
  t0=$(date +%s.%N)
  RUST_LOG=info target/release/gateway --config "$dir/run.toml" --data-dir "$dir/run-data" --http-listen "127.0.0.1:$port" > "$dir/run.log" 2>&1 &
  pid=$!
  c0=$(cpu_ticks "$pid")
  while [ "$got" -lt "$n" ]; do
    sleep 0.05
    kill -0 "$pid" 2>/dev/null || { echo "the gateway died ($run):" >&2; tail -20 "$dir/run.log" >&2; exit 1; }
    got=$(metric "$port" smartcity_gateway_points_written_total)
    if [ "$got" -gt "$last" ]; then last=$got; stalled=0; else stalled=$((stalled + 1)); fi
    if [ "$stalled" -ge 1200 ]; then echo "drain stalled at $got of $n ($run)" >&2; break; fi
  done
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$pid")
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  count=$(seq_count "$run")
  local rate
  rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
  echo "$rate $(awk -v c="$((c1 - c0))" -v t="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.2f", c / t * 100000 / n }') $((n - count))" >> "$dir/$1.rows"
  progress "drain run $2, $1 in flight: $rate readings/s, $count of $n in InfluxDB"
}
for i in $(seq "$RUNS"); do for s in "${settings[@]}"; do one_run "$s" "$i"; done; done

col() { awk -v k="$2" '{ print $k }' "$dir/$1.rows" | stats; }
base=$(col "${settings[0]}" 1 | cut -d' ' -f1)
lost_total=0
cat <<EOF
## 9. The spool's drain after an InfluxDB outage

$n readings (2,000 generated sensors × 100 ticks) were read from Kafka by a gateway whose InfluxDB
did not answer, so all of them went to its spool. Each run starts a gateway on a copy of that spool
with InfluxDB back and a fresh bucket, and times it from its start to its last point written (its
\`/metrics\`, polled every 50 ms; the spool's opening included). The writer as shipped
(the defaults, as in \`config/gateway.toml\`: writes of 10,000 readings, each sent as two requests of
5,000 lines) but for \`writes_in_flight\`. The spool held the readings in $batches batches. Median of $RUNS runs (min–max), settings interleaved; **lost** is $n minus the
bucket's \`seq\` points, over all runs.

| \`writes_in_flight\` | readings/s | CPU s per 100,000 | lost | ÷ ${settings[0]} in flight |
| --- | --- | --- | --- | --- |
EOF
for s in "${settings[@]}"; do
  lost=$(awk '{ s += $3 } END { print s + 0 }' "$dir/$s.rows"); lost_total=$((lost_total + lost))
  m=$(col "$s" 1 | cut -d' ' -f1)
  figure "drain_in_flight_$s" "$m"
  echo "| $s | $(col "$s" 1 | fmt_stats) | $(col "$s" 2 | fmt_stats) | $lost of $((RUNS * n)) | $(ratio "$m" "$base") |"
done
cat <<EOF

Command: \`bench/drain.sh\`
EOF
[ "$lost_total" -eq 0 ] || { echo "LOST: $lost_total readings missing from InfluxDB" >&2; exit 1; }
