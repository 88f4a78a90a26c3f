#!/usr/bin/env bash
# Simulator benchmark: Rust (cargo bench, release) and the Python peer in the same run, on this
# machine, then the ratios. Usage: bench/run.sh   (or: make bench)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rust=$(cargo bench --quiet -p smartcity-model --bench generate 2>/dev/null | grep -E '^[a-z_]+ [0-9.]+$')
python=$(python3 bench/python_peer.py)
get() { echo "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
printf '%-32s %14s %14s %8s\n' metric rust python ratio
for k in readings_per_second_one_core memory_bytes_per_sensor average_json_bytes; do
  r=$(get "$rust" "$k"); p=$(get "$python" "$k")
  printf '%-32s %14s %14s %8s\n' "$k" "$r" "$p" "$(awk -v r="$r" -v p="$p" 'BEGIN { printf "%.2f", r / p }')"
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo; echo "== sinks (bench/sinks.sh) =="; bench/sinks.sh
echo; echo "== distribution (bench/distribution.sh) =="; bench/distribution.sh
echo; echo "== gateway (bench/gateway.sh) =="; bench/gateway.sh
