#!/usr/bin/env bash
# Gateway throughput, sources -> InfluxDB: a backlog of 100,000 readings (1,000 generated sensors x
# 100 ticks) is first put on the bench's Mosquitto (held for the gateway's offline persistent session,
# QoS 1) or on fresh Kafka topics by the release simulator; then the release gateway starts on it with
# a fresh InfluxDB bucket and the time until its `smartcity_gateway_points_written_total` reaches
# 100,000 is measured (process start included), with its CPU time (utime + stime) and peak RSS
# (VmHWM). A Flux count of the bucket's `seq` points then checks that none was lost (points are unique
# per series and time, so the count is that of distinct (sensor, seq)). Three runs per source, medians;
# the peer in the same run is the simulator's own InfluxDB sink (same 100,000 readings, fresh bucket).
# Exits 1 if any reading is missing from InfluxDB.
# Usage: bench/gateway.sh   (make bench runs it)
#   BENCH_GATEWAY_LOGS=DIR keeps every gateway and simulator log and config in DIR;
#   BENCH_GATEWAY_RUNS=N runs each N times instead of 3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/services/services.sh up mosquitto kafka influxdb >/dev/null
cargo build --release --quiet --bin simulator --bin gateway
# shellcheck source=/dev/null
source target/bench/env
token_file="$PWD/target/bench/secrets/influxdb-token"
n=100000
runs=${BENCH_GATEWAY_RUNS:-3}
clk_tck=$(getconf CLK_TCK)
dir=$(mktemp -d)
gw_pid=""

influx() { curl -sS --fail-with-body -H "Authorization: Token $BENCH_INFLUX_TOKEN" "$@"; }

cleanup() {
  if [ -n "$gw_pid" ]; then kill -TERM "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
  if [ -n "${BENCH_GATEWAY_LOGS:-}" ]; then
    mkdir -p "$BENCH_GATEWAY_LOGS"
    cp "$dir"/*.log "$dir"/*.toml "$BENCH_GATEWAY_LOGS"/ 2>/dev/null || true
  fi
  # The run's buckets go: 100,000 points each would pile up on the bench at every `make bench`.
  if [ -s "$dir/buckets" ]; then
    while read -r id; do influx -o /dev/null -X DELETE "$BENCH_INFLUX_URL/api/v2/buckets/$id" || true; done < "$dir/buckets"
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

org_id=$(influx "$BENCH_INFLUX_URL/api/v2/orgs?org=$BENCH_INFLUX_ORG" | jq -r '.orgs[0].id')
# A fresh bucket per run keeps the count exact and gives every run the same (empty) start.
new_bucket() {
  influx -H 'Content-Type: application/json' -X POST "$BENCH_INFLUX_URL/api/v2/buckets" \
    -d "{\"orgID\":\"$org_id\",\"name\":\"$1\",\"retentionRules\":[]}" | jq -r .id >> "$dir/buckets"
}
# Points of field `seq` in the bucket: one per distinct (sensor, seq) written.
seq_count() {
  influx -H 'Content-Type: application/vnd.flux' -H 'Accept: application/csv' -X POST \
    "$BENCH_INFLUX_URL/api/v2/query?org=$BENCH_INFLUX_ORG" \
    --data-binary "from(bucket: \"$1\") |> range(start: 2020-01-01T00:00:00Z) |> filter(fn: (r) => r._field == \"seq\") |> group() |> count()" \
    | tr -d '\r' | awk -F, 'NR > 1 && $NF ~ /^[0-9]+$/ { s += $NF } END { print s + 0 }'
}

# The simulator's sink (where the backlog goes) and the gateway's source for run $2 of source $1.
sim_toml() {
  case "$1" in
    mqtt) printf '[[mqtt]]\nhost="%s"\nport=%s\nclient_id="%s-sim"\ntopic_prefix="bench/%s"\nqos=1\n' \
      "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$2" "$2" ;;
    kafka) printf '[[mqtt]]\nenabled=false\n[[kafka]]\nbootstrap_servers="%s"\ntopic_template="bench-%s-{kind}"\n' \
      "$BENCH_KAFKA_BOOTSTRAP" "$2" ;;
    influxdb) printf '[[mqtt]]\nenabled=false\n[[influxdb]]\nurl="%s"\norg="%s"\nbucket="%s"\ntoken_env=""\ntoken_file="%s"\n' \
      "$BENCH_INFLUX_URL" "$BENCH_INFLUX_ORG" "$2" "$token_file" ;;
  esac
  printf '[embedded_broker]\nenabled=false\n[status]\ninterval_seconds=0\n'
}
# Everything else is the shipped config/gateway.toml (batches of 5,000, linger 200 ms, inflight 100).
gateway_toml() {
  case "$1" in
    mqtt) printf '[[mqtt]]\nname="mqtt"\nhost="%s"\nport=%s\nclient_id="%s-gw"\ntopic_prefix="bench/%s"\nqos=1\nclean_session=false\n' \
      "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$2" "$2" ;;
    kafka) printf '[[mqtt]]\nenabled=false\n[[kafka]]\nname="kafka"\nbootstrap_servers="%s"\ntopic_template="bench-%s-{kind}"\ngroup_id="%s"\nauto_offset_reset="earliest"\n' \
      "$BENCH_KAFKA_BOOTSTRAP" "$2" "$2" ;;
  esac
  printf '[influxdb]\nurl="%s"\norg="%s"\nbucket="%s"\ntoken_env=""\ntoken_file="%s"\n' \
    "$BENCH_INFLUX_URL" "$BENCH_INFLUX_ORG" "$2" "$token_file"
}

# Backfill of the 100,000 readings; prints the simulator's own rate (its `stopped:` line).
simulate() {
  local run="$1"
  if ! target/release/simulator --config "$dir/$run-sim.toml" --sensors 1000 --interval 1 \
    --from 2025-06-01T00:00:00Z --to 2025-06-01T00:01:39Z --metrics-listen 127.0.0.1:0 > "$dir/$run-sim.log" 2>&1; then
    echo "simulator failed ($run):" >&2; tail -20 "$dir/$run-sim.log" >&2; exit 1
  fi
  grep -o 'generated in [0-9.]* s ([0-9]*/s)' "$dir/$run-sim.log" | grep -o '([0-9]*' | tr -d '('
}

metric() { # metric PORT SERIES: its value (summed over labels when SERIES has none), 0 when absent
  { curl -s "http://127.0.0.1:$1/metrics" || true; } | awk -v s="$2" '$1 == s || index($1, s "{") == 1 { v += $2 } END { printf "%d\n", v }'
}
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; } # utime + stime, after "pid (comm) "

start_gateway() { # start_gateway RUN PORT LOG: runs in the background, sets gw_pid
  RUST_LOG=info target/release/gateway --config "$dir/$1-gw.toml" --data-dir "$dir/$1-data" \
    --http-listen "127.0.0.1:$2" > "$3" 2>&1 &
  gw_pid=$!
}
stop_gateway() {
  kill -TERM "$gw_pid"
  if ! wait "$gw_pid"; then echo "gateway exited non-zero on SIGTERM, log $1:" >&2; tail -20 "$1" >&2; fi
  gw_pid=""
}

# One measured run of source $1 (mqtt, kafka): appends "rate cpu_s_per_100k rss_mib lost" to
# $dir/$1.rows and a detail line to $dir/details.
one_run() {
  local src="$1" i="$2" run port log t0 t1 c0 c1 hwm written=0 last=0 stalled=0 count lost rate
  run="gw-$src-$$-$i-$(date +%s%N)"
  new_bucket "$run"
  sim_toml "$src" "$run" > "$dir/$run-sim.toml"
  gateway_toml "$src" "$run" > "$dir/$run-gw.toml"
  port=$(free_port)
  if [ "$src" = mqtt ]; then
    # First start: the broker now holds the persistent session (clean_session=false) and its
    # subscription, and queues the backlog for it while the gateway is down.
    start_gateway "$run" "$port" "$dir/$run-gw-first.log"
    for _ in $(seq 200); do
      [ "$(metric "$port" 'smartcity_gateway_source_connected{source="mqtt"}')" = 1 ] && break
      kill -0 "$gw_pid" 2>/dev/null || { cat "$dir/$run-gw-first.log" >&2; exit 1; }
      sleep 0.1
    done
    [ "$(metric "$port" 'smartcity_gateway_source_connected{source="mqtt"}')" = 1 ] \
      || { echo "gateway not subscribed after 20 s ($run):" >&2; cat "$dir/$run-gw-first.log" >&2; exit 1; }
    sleep 0.5
    stop_gateway "$dir/$run-gw-first.log"
  fi
  simulate "$run" > /dev/null
  log="$dir/$run-gw.log"
  t0=$(date +%s.%N)
  start_gateway "$run" "$port" "$log"
  c0=$(cpu_ticks "$gw_pid")
  while [ "$written" -lt "$n" ]; do
    sleep 0.05
    kill -0 "$gw_pid" 2>/dev/null || { echo "gateway died ($run):" >&2; tail -20 "$log" >&2; exit 1; }
    written=$(metric "$port" smartcity_gateway_points_written_total)
    if [ "$written" -gt "$last" ]; then last=$written; stalled=0; else stalled=$((stalled + 1)); fi
    # 60 s without a single point written: report what it has rather than wait for ever.
    if [ "$stalled" -ge 1200 ]; then echo "gateway stalled at $written of $n ($run)" >&2; break; fi
  done
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$gw_pid")
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$gw_pid/status")
  local details
  details="spooled $(metric "$port" smartcity_gateway_readings_spooled_total), write errors $(metric "$port" smartcity_gateway_write_errors_total)"
  details+=", stale $(metric "$port" smartcity_gateway_readings_stale_total), gaps $(metric "$port" smartcity_gateway_sequence_gaps_total)"
  stop_gateway "$log"
  count=$(seq_count "$run")
  lost=$((n - count))
  rate=$(awk -v n="$written" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
  [ "$written" -ge "$n" ] || rate=0
  echo "$rate $(awk -v c="$((c1 - c0))" -v t="$clk_tck" -v w="$written" 'BEGIN { printf "%.2f", c / t * 100000 / (w > 0 ? w : 1) }') $((hwm / 1024)) $lost" >> "$dir/$src.rows"
  echo "$src run $i: $rate readings/s, $written written, $count in InfluxDB, $details, WARN/ERROR log lines $(grep -cE ' (WARN|ERROR) ' "$log" || true)" >> "$dir/details"
  if [ "$src" = mqtt ]; then # drop the broker's persistent session of this run (clean session connect)
    mosquitto_sub -h "$BENCH_MQTT_HOST" -p "$BENCH_MQTT_PORT" -i "$run-gw" -t "bench/$run/none" -E 2>/dev/null || true
  fi
}

for src in mqtt kafka; do for i in $(seq "$runs"); do one_run "$src" "$i"; done; done
peer_runs=""
for i in $(seq "$runs"); do
  run="gw-peer-$$-$i-$(date +%s%N)"
  new_bucket "$run"
  sim_toml influxdb "$run" > "$dir/$run-sim.toml"
  peer_runs+="$(simulate "$run") "
done
peer=$(echo "$peer_runs" | tr ' ' '\n' | grep . | median)

col() { awk -v k="$2" '{ print $k }' "$dir/$1.rows"; }
printf '%-24s %11s %12s %11s %13s %10s   %s\n' path readings/s vs-sim-influx cpu-s/100k peak-rss-MiB "lost(all)" "runs (readings/s)"
total_lost=0
for src in mqtt kafka; do
  m=$(col "$src" 1 | median)
  lost=$(col "$src" 4 | awk '{ s += $1 } END { print s + 0 }')
  total_lost=$((total_lost + lost))
  printf '%-24s %11s %12s %11s %13s %10s   %s\n' "$src -> gateway -> influx" "$m" \
    "$(awk -v a="$m" -v b="$peer" 'BEGIN { printf "%.2fx", a / b }')" "$(col "$src" 2 | median)" "$(col "$src" 3 | median)" \
    "$lost" "$(col "$src" 1 | tr '\n' ' ')"
done
printf '%-24s %11s %12s %11s %13s %10s   %s\n' "simulator -> influx" "$peer" 1.00x - - - "$peer_runs"
cat "$dir/details"
echo "$n readings per run (1,000 sensors x 100 ticks, already in the broker), gateway start included (simulator -> influx:"
echo "the simulator's own rate, start excluded), medians of $runs, release build, $(nproc) cores, $(date -u +%F)"
[ "$total_lost" -eq 0 ] || { echo "LOST: $total_lost readings missing from InfluxDB" >&2; exit 1; }
