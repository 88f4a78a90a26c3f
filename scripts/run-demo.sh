#!/usr/bin/env bash
# `make run`: build and start the embedded demo on this machine, nothing else to install.
#   simulator  10 sensors + embedded MQTT broker on 127.0.0.1:1883, metrics on 127.0.0.1:8001
#   gateway    dashboard, JSON API and metrics on http://127.0.0.1:8080/
# Ctrl-C stops both cleanly. Extra simulator options: make run SIM_ARGS="--speed 60".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found. Install Rust with rustup (https://rustup.rs), then run 'make run' again." >&2
  exit 1
fi
for port in 1883 8001 8080; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "error: port $port is already in use (a demo already running? 'make services-down'?). Stop it first." >&2
    exit 1
  fi
done

echo "building (first time: a few minutes)..." >&2
cargo build --release --quiet --bin simulator --bin gateway

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

# shellcheck disable=SC2086
target/release/simulator ${SIM_ARGS:-} &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
target/release/gateway &
pids+=($!)

cat >&2 <<MSG

  Smart-city demo running.
    dashboard   http://127.0.0.1:8080/
    readings    mosquitto_sub -h 127.0.0.1 -t 'city/sensors/#' -v
    API         curl -s http://127.0.0.1:8080/api/readings
    metrics     curl -s http://127.0.0.1:8001/metrics   (gateway: :8080/metrics)
    stored      data/gateway/points/*.lp   (InfluxDB line protocol; README: the gateway with InfluxDB)
  Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
