#!/usr/bin/env bash
# Case 1, publishing over MQTT: our simulator against Python paho-mqtt, Node MQTT.js and
# mosquitto_pub -l, the same 50,000 JSON readings to the bench's Mosquitto at QoS 0 and QoS 1, each
# with at most 100 messages in flight (the simulator's default). Prints a Markdown section.
# Usage: bench/publish.sh   (make bench runs it)   BENCH_RUNS=N: runs per contender (default 5)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_up mosquitto
eval "$(bench/peers.sh)"
cargo build --release --quiet --bin simulator
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
n=50000
inflight=100
span=(--sensors 1000 --interval 1 --from 2025-06-01T00:00:00Z --to 2025-06-01T00:00:49Z)

sim_toml() { # sim_toml RUN QOS
  printf '[embedded_broker]\nenabled=false\n[status]\ninterval_seconds=0\n[[mqtt]]\nhost="%s"\nport=%s\nclient_id="%s"\ntopic_prefix="bench/%s"\nqos=%s\ninflight=%s\n' \
    "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$1" "$1" "$2" "$inflight"
}

# The payloads every peer publishes: exactly what the simulator sends, captured from the broker
# (topic and payload per line, as `mosquitto_sub -v` prints them).
progress "publish: capturing the $n readings the peers will send"
sim_toml capture 1 > "$dir/capture.toml"
mosquitto_sub -h "$BENCH_MQTT_HOST" -p "$BENCH_MQTT_PORT" -q 1 -v -t 'bench/capture/#' -C "$n" -W 120 > "$dir/messages" &
sub=$!
sleep 1
target/release/simulator --config "$dir/capture.toml" "${span[@]}" --metrics-listen 127.0.0.1:0 > "$dir/capture.log" 2>&1
wait "$sub" || { echo "capture incomplete: $(wc -l < "$dir/messages") of $n" >&2; exit 1; }
cut -d' ' -f2- "$dir/messages" > "$dir/payloads"
bytes=$(awk '{ s += length($0) } END { printf "%d", s / NR }' "$dir/payloads")

# CPU seconds (user + system) of the contender's whole process per 100,000 readings, from
# /usr/bin/time: start-up and, for the peers, reading the file included.
cpu_per_100k() { awk -v n="$n" '{ printf "%.2f\n", ($1 + $2) * 100000 / n }' "$dir/time"; }
timed() { /usr/bin/time -f '%U %S' -o "$dir/time" "$@"; }

one_run() { # one_run CONTENDER QOS -> "readings_per_second cpu_s_per_100k"
  local rate
  rate=$(rate_of "$@")
  echo "$rate $(cpu_per_100k)"
}
rate_of() {
  local run="pub-$1-$2-$$-$(date +%s%N)" t0 t1 out
  case "$1" in
    simulator)
      sim_toml "$run" "$2" > "$dir/sim.toml"
      timed target/release/simulator --config "$dir/sim.toml" "${span[@]}" --metrics-listen 127.0.0.1:0 > "$dir/sim.log" 2>&1
      sim_rate "$dir/sim.log" ;;
    paho)
      out=$(timed "$PYTHON" bench/peers/paho_publish.py "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$2" "$inflight" "$dir/messages")
      echo "$out" | grep -o '([0-9]*/s)' | tr -dc '0-9' ;;
    mqttjs)
      out=$(NODE_PATH="$NODE_PATH" timed node bench/peers/mqttjs_publish.js "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$2" "$inflight" "$dir/messages")
      echo "$out" | grep -o '([0-9]*/s)' | tr -dc '0-9' ;;
    mosquitto_pub)
      # One topic for all (its -l mode cannot vary it); process start included, a few ms.
      t0=$(date +%s.%N)
      timed mosquitto_pub -h "$BENCH_MQTT_HOST" -p "$BENCH_MQTT_PORT" -q "$2" -M "$inflight" -i "$run" -t "bench/$run" -l < "$dir/payloads"
      t1=$(date +%s.%N)
      awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d\n", n / (b - a) }' ;;
  esac
}

contenders=(simulator paho mqttjs mosquitto_pub)
declare -A rates cpus
for qos in 0 1; do
  for i in $(seq "$RUNS"); do
    for c in "${contenders[@]}"; do # interleaved, so that a slow moment of the machine hits every contender
      r=$(one_run "$c" "$qos")
      [ -n "${r%% *}" ] || { echo "publish: $c QoS $qos gave no rate" >&2; exit 1; }
      rates[$c-$qos]+="${r%% *} "
      cpus[$c-$qos]+="${r#* } "
      progress "publish QoS $qos run $i: $c ${r%% *}/s, ${r#* } CPU s per 100,000"
    done
  done
done

cat <<EOF
## 1. Publishing over MQTT: simulator vs paho-mqtt, MQTT.js, mosquitto_pub

The same $n readings (1,000 generated sensors × 50 ticks, $bytes bytes of JSON on average) to the
bench's Mosquitto, at most $inflight messages in flight for every contender, no subscriber. The
simulator generates and encodes its readings as it goes; the peers publish the payloads the
simulator sent, captured from the broker beforehand and read into memory before their clock starts.
Rates are timed from the first publish to the last acknowledgement (QoS 1) or the last write
(QoS 0): the simulator's own \`stopped:\` line, the peers' own timers, \`mosquitto_pub -l\` (one
message per stdin line, on one topic) by its wall time. CPU is user + system time of the whole
process (/usr/bin/time: start-up and, for the peers, reading the file included). Median of $RUNS
runs (min–max), contenders interleaved.

| contender | QoS 0 readings/s | QoS 1 readings/s | simulator ÷ it, QoS 0 | simulator ÷ it, QoS 1 | CPU s per 100,000, QoS 1 | its CPU ÷ the simulator's |
| --- | --- | --- | --- | --- | --- | --- |
EOF
for c in "${contenders[@]}"; do
  s0=$(echo "${rates[$c-0]}" | stats); s1=$(echo "${rates[$c-1]}" | stats)
  sim0=$(echo "${rates[simulator-0]}" | stats | cut -d' ' -f1); sim1=$(echo "${rates[simulator-1]}" | stats | cut -d' ' -f1)
  name=$c
  case "$c" in
    simulator) name="our simulator (Rust, rumqttc)" ;;
    paho) name="Python paho-mqtt 2.1.0" ;;
    mqttjs) name="Node MQTT.js 5.14.1 ($(node --version))" ;;
    mosquitto_pub) name="mosquitto_pub -l ($({ mosquitto_pub --help || true; } | awk 'NR == 2 { print $3 }'), C)" ;;
  esac
  figure "publish_${c}_qos0" "${s0%% *}"; figure "publish_${c}_qos1" "${s1%% *}"
  c1=$(echo "${cpus[$c-1]}" | stats); simc=$(echo "${cpus[simulator-1]}" | stats | cut -d' ' -f1)
  figure "publish_${c}_qos1_cpu" "${c1%% *}"
  echo "| $name | $(echo "$s0" | fmt_stats) | $(echo "$s1" | fmt_stats) | $(ratio "$sim0" "${s0%% *}") | $(ratio "$sim1" "${s1%% *}") | $(echo "$c1" | fmt_stats) | $(ratio "${c1%% *}" "$simc") |"
done
echo
echo "Command: \`bench/publish.sh\`"
