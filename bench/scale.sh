#!/usr/bin/env bash
# Case 5, scale: N generated sensors at one reading a second each, live, through the whole chain
# simulator -> Mosquitto (QoS 1) -> gateway -> InfluxDB, for N = 10,000 ... 100,000; what each hop
# sustains and where it saturates, and the simulator's memory per simulated sensor.
# Prints a Markdown section. Usage: bench/scale.sh   (make bench runs it)
#   BENCH_RUNS=N runs per step (default 5); BENCH_SCALE_SECONDS=S measured seconds per run (default 10)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_up mosquitto influxdb
cargo build --release --quiet --bin simulator --bin gateway
token_file="$PWD/target/bench/secrets/influxdb-token"
warmup=20
measure=${BENCH_SCALE_SECONDS:-10}
steps=(10000 25000 100000)
live_scratch

# Counter deltas over the measured window, per second.
rate_between() { awk -v a="$1" -v b="$2" -v s="$measure" 'BEGIN { printf "%d", (b - a) / s }'; }

one_run() { # one_run SENSORS I: appends "published/s written/s clock_lag_s sim_rss_mib gw_rss_mib gw_cpu_pct sim_cpu_pct" to $dir/SENSORS.rows
  local n="$1" run="scale-$1-$$-$2-$(date +%s%N)" gw_port sim_port sim gw
  new_bucket "$run" "$dir/buckets"
  gw_port=$(free_port); sim_port=$(free_port)
  printf '[[mqtt]]\nname="mqtt"\nhost="%s"\nport=%s\nclient_id="%s-gw"\nclean_session=true\ntopic_prefix="bench/%s"\n[influxdb]\nurl="%s"\norg="%s"\nbucket="%s"\ntoken_env=""\ntoken_file="%s"\n' \
    "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$run" "$run" "$BENCH_INFLUX_URL" "$BENCH_INFLUX_ORG" "$run" "$token_file" > "$dir/gw.toml"
  printf '[embedded_broker]\nenabled=false\n[status]\ninterval_seconds=0\n[[mqtt]]\nhost="%s"\nport=%s\nclient_id="%s-sim"\nclean_session=true\ntopic_prefix="bench/%s"\n' \
    "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$run" "$run" > "$dir/sim.toml"
  target/release/gateway --config "$dir/gw.toml" --data-dir "$dir/data-$n-$2" --http-listen "127.0.0.1:$gw_port" > "$dir/gw.log" 2>&1 &
  gw=$!; pids+=("$gw")
  for _ in $(seq 100); do [ "$(metric "$gw_port" 'smartcity_gateway_source_connected{source="mqtt"}')" = 1 ] && break; sleep 0.1; done
  target/release/simulator --config "$dir/sim.toml" --sensors "$n" --interval 1 --metrics-listen "127.0.0.1:$sim_port" > "$dir/sim.log" 2>&1 &
  sim=$!; pids+=("$sim")
  sleep "$warmup"
  local p0 w0 p1 w1 gc0 gc1 sc0 sc1 simulated lag
  p0=$(metric "$sim_port" smartcity_simulator_readings_published_total); w0=$(metric "$gw_port" smartcity_gateway_points_written_total)
  gc0=$(cpu_ticks "$gw"); sc0=$(cpu_ticks "$sim")
  sleep "$measure"
  p1=$(metric "$sim_port" smartcity_simulator_readings_published_total); w1=$(metric "$gw_port" smartcity_gateway_points_written_total)
  gc1=$(cpu_ticks "$gw"); sc1=$(cpu_ticks "$sim")
  simulated=$(metric "$sim_port" smartcity_simulator_simulated_time_seconds)
  lag=$(( $(date +%s) - simulated ))
  echo "$(rate_between "$p0" "$p1") $(rate_between "$w0" "$w1") $lag $(peak_rss_mib "$sim") $(peak_rss_mib "$gw")" \
    "$(awk -v a="$gc0" -v b="$gc1" -v t="$CLK_TCK" -v s="$measure" 'BEGIN { printf "%d", 100 * (b - a) / t / s }')" \
    "$(awk -v a="$sc0" -v b="$sc1" -v t="$CLK_TCK" -v s="$measure" 'BEGIN { printf "%d", 100 * (b - a) / t / s }')" >> "$dir/$n.rows"
  # The simulator first and at once (SIGKILL): stopped gently it would spend 10 s publishing its
  # queue, and with clean sessions nothing of a run stays in the broker to slow down the next case.
  kill -KILL "$sim"; wait "$sim" 2>/dev/null || true
  kill -TERM "$gw"; wait "$gw" 2>/dev/null || true
  pids=()
  progress "scale $n sensors run $2: $(tail -1 "$dir/$n.rows") (published/s written/s lag_s sim_MiB gw_MiB gw_cpu% sim_cpu%)"
}

# Memory per simulated sensor: the simulator's peak RSS with 100,000 sensors minus that with 10, both
# generating and publishing at QoS 1 to the same broker for 10 s (MQTT at the default 5 s interval,
# so that publishing keeps up and no queue grows).
memory_run() { # memory_run SENSORS -> peak RSS KiB
  local run="scale-mem-$1-$$-$(date +%s%N)" sim kib
  printf '[embedded_broker]\nenabled=false\n[status]\ninterval_seconds=0\n[[mqtt]]\nhost="%s"\nport=%s\nclient_id="%s"\ntopic_prefix="bench/%s"\nqos=0\n' \
    "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$run" "$run" > "$dir/mem.toml"
  target/release/simulator --config "$dir/mem.toml" --sensors "$1" --interval 5 --metrics-listen 127.0.0.1:0 > "$dir/mem.log" 2>&1 &
  sim=$!; pids+=("$sim")
  sleep 10
  kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$sim/status")
  kill -TERM "$sim"; wait "$sim" 2>/dev/null || true
  pids=()
  echo "$kib"
}

for n in "${steps[@]}"; do for i in $(seq "$RUNS"); do one_run "$n" "$i"; done; done
small=$(for i in $(seq "$RUNS"); do memory_run 10; done | stats | cut -d' ' -f1)
large=$(for i in $(seq "$RUNS"); do memory_run 100000; done | stats | cut -d' ' -f1)

col() { awk -v k="$2" '{ print $k }' "$dir/$1.rows" | stats; }
cat <<EOF
## 5. Scale: up to 100,000 sensors at 1 Hz through the whole chain

N generated sensors, one reading a second each, live: simulator → Mosquitto (QoS 1, 100 in flight)
→ gateway → InfluxDB, all on this machine with the rest of the bench, every setting at its default.
After ${warmup} s of warm-up, ${measure} s are measured: readings the simulator had acknowledged by the broker
per second, points the gateway wrote per second, how far the simulated clock lags the wall clock at
the end (it falls behind when publishing cannot keep up: nothing is dropped, the simulator waits),
peak RSS and CPU (100 % = one core) of each process. Median of $RUNS runs (min–max).

| sensors (offered readings/s) | published/s | written to InfluxDB/s | clock lag at the end | sustained | simulator CPU | gateway CPU | simulator peak RSS | gateway peak RSS |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
EOF
for n in "${steps[@]}"; do
  pub=$(col "$n" 1 | cut -d' ' -f1); wr=$(col "$n" 2 | cut -d' ' -f1)
  ok=$(awk -v p="$pub" -v w="$wr" -v n="$n" 'BEGIN { print (p >= 0.95 * n && w >= 0.95 * n) ? "yes" : "no" }')
  [ "$ok" = no ] || figure scale_sustained "$n"
  echo "| $n | $(col "$n" 1 | fmt_stats) | $(col "$n" 2 | fmt_stats) | $(col "$n" 3 | cut -d' ' -f1) s | $ok | $(col "$n" 7 | cut -d' ' -f1) % | $(col "$n" 6 | cut -d' ' -f1) % | $(col "$n" 4 | cut -d' ' -f1) MiB | $(col "$n" 5 | cut -d' ' -f1) MiB |"
done
figure scale_bytes_per_sensor "$(awk -v a="$large" -v b="$small" 'BEGIN { printf "%.0f", (a - b) * 1024 / 99990 }')"
cat <<EOF

**Memory per simulated sensor**: the simulator's peak RSS with 100,000 sensors ($((large / 1024)) MiB) minus that
with 10 ($((small / 1024)) MiB), publishing at the default 5 s interval (QoS 0) for 10 s, divided by 99,990:
**$(awk -v a="$large" -v b="$small" 'BEGIN { printf "%.0f", (a - b) * 1024 / 99990 }') bytes** (median of $RUNS runs each).

Command: \`bench/scale.sh\`
EOF
