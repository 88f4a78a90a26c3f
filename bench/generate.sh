#!/usr/bin/env bash
# Case 0, generating readings: the Rust model (cargo bench, release) against the Python peer written
# the way the original system did it, one after the other, RUNS times each. Prints a Markdown section.
# Usage: bench/generate.sh   (make bench runs it)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cargo bench --quiet -p smartcity-model --bench generate --no-run 2>/dev/null
declare -A rust python
keys=(readings_per_second_one_core memory_bytes_per_sensor average_json_bytes)
for i in $(seq "$RUNS"); do
  r=$(cargo bench --quiet -p smartcity-model --bench generate 2>/dev/null | grep -E '^[a-z_]+ [0-9.]+$')
  p=$(python3 bench/python_peer.py)
  for k in "${keys[@]}"; do
    rust[$k]+="$(echo "$r" | awk -v k="$k" '$1 == k { print $2 }') "
    python[$k]+="$(echo "$p" | awk -v k="$k" '$1 == k { print $2 }') "
  done
  progress "generate run $i: rust $(echo "$r" | head -1), python $(echo "$p" | head -1)"
done
cat <<EOF
## 0. Generating readings: the Rust model vs the Python peer

\`cargo bench -p smartcity-model --bench generate\` (\`model/benches/generate.rs\`) and
\`python3 bench/python_peer.py\`, alternately, $RUNS times each: one reading for each of 100,000 sensors
per tick, encoded to the JSON wire format, for 3 s on one core (Martinique dynamics: traffic, dust,
showers, sun); the live heap of a 100,000-sensor catalogue with its sequence counters (a counting
allocator in Rust, \`tracemalloc\` in Python); the average encoded size (a check that both do the same
work). The Python peer is simpler than the Rust dynamics (no dust episodes, showers or sunrise), so
the ratio understates the difference. Median (min–max).

| measure | Rust | Python ($(python3 --version | cut -d' ' -f2)) | Rust ÷ Python |
| --- | --- | --- | --- |
EOF
for k in "${keys[@]}"; do
  rs=$(echo "${rust[$k]}" | stats); ps=$(echo "${python[$k]}" | stats)
  echo "| ${k//_/ } | $(echo "$rs" | fmt_stats) | $(echo "$ps" | fmt_stats) | $(ratio "${rs%% *}" "${ps%% *}") |"
done
echo
echo "Command: \`bench/generate.sh\`"
