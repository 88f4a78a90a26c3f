# Shared helpers of the benchmark scripts (bench/*.sh); sourced, never run directly.
# Every case prints a Markdown section (its method, its table, its command) on stdout, which
# bench/run.sh (make bench) gathers into docs/benchmarks.md; progress and details go to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Runs per contender and case: the tables show the median, the minimum and the maximum.
RUNS=${BENCH_RUNS:-5}

# bench_up SERVICE...: starts those servers of the test bench (a no-op for those already up) and
# loads their addresses and credentials (target/bench/env).
bench_up() {
  scripts/services/services.sh up "$@" >/dev/null
  # shellcheck source=/dev/null
  source target/bench/env
}

progress() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Numbers on stdin (one per line or space-separated) -> "median min max".
stats() {
  tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "- - -"; exit } print a[int((NR + 1) / 2)], a[1], a[NR] }'
}
# "median min max" -> "median (min–max)" with thousands separators for integers.
fmt_stats() {
  awk '{ printf "%s (%s–%s)\n", f($1), f($2), f($3) }
       function f(x,   s, r) { if (x !~ /^[0-9]+$/) return x; s = x; r = ""
         while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } return s r }'
}
# ratio A B -> "A/B×" with two decimals ("–" when either is missing or B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "–"; else printf "%.2f×\n", a / b }'; }

# The simulator's own rate from its last log line (`stopped: N readings generated in S s (R/s);
# acknowledged: ...; U left unsent`): its process start and connection are not counted, the wait for
# every acknowledgement is. A run that left readings unsent (its sink gave up or the end-of-run drain
# ran out) has no rate: it fails, and with it the case, rather than report generation as delivery.
sim_rate() {
  local last
  last=$(grep 'stopped: ' "$1" | tail -1)
  if ! grep -q '; 0 left unsent' <<< "$last"; then
    echo "bench: not every reading was acknowledged ($1): ${last:-no stopped line}" >&2
    return 1
  fi
  grep -o 'generated in [0-9.]* s ([0-9]*/s)' <<< "$last" | grep -o '([0-9]*' | tr -d '('
}

# metric PORT SERIES: its value on http://127.0.0.1:PORT/metrics (summed over labels when SERIES
# names none), 0 when absent.
metric() {
  { curl -s "http://127.0.0.1:$1/metrics" || true; } | awk -v s="$2" '$1 == s || index($1, s "{") == 1 { v += $2 } END { printf "%d\n", v }'
}
# CPU ticks (utime + stime, all threads) of a live process; and of its reaped children with cstime.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
CLK_TCK=$(getconf CLK_TCK)
peak_rss_mib() { awk '/^VmHWM:/ { printf "%d\n", $2 / 1024 }' "/proc/$1/status"; }
# Waits (30 s at most) until InfluxDB has used under a tenth of a core for a second: its compaction
# of the previous run's points would otherwise slow whichever run comes next, and the same
# contender would pay for it in every round.
influx_quiet() {
  local p t0 i
  p=$(cat target/bench/run/influxdb.pid 2>/dev/null) || return 0
  for i in $(seq 30); do
    t0=$(cpu_ticks "$p") || return 0
    sleep 1
    [ $(($(cpu_ticks "$p") - t0)) -lt $((CLK_TCK / 10)) ] && return 0
  done
}
# The words after I, rotated by I: round I of a bench starts with a different contender.
rotate() { local i=$1; shift; local a=("$@") k; for ((k = 0; k < $#; k++)); do echo "${a[$(((k + i) % $#))]}"; done; }

machine() {
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
}

# --- InfluxDB (after bench_up influxdb) ---
influx() { curl -sS --fail-with-body -H "Authorization: Token $BENCH_INFLUX_TOKEN" "$@"; }
influx_org_id() { influx "$BENCH_INFLUX_URL/api/v2/orgs?org=$BENCH_INFLUX_ORG" | jq -r '.orgs[0].id'; }
# new_bucket NAME LIST_FILE: a fresh bucket (every run starts empty, counts stay exact); its id is
# appended to LIST_FILE for delete_buckets.
new_bucket() {
  influx -H 'Content-Type: application/json' -X POST "$BENCH_INFLUX_URL/api/v2/buckets" \
    -d "{\"orgID\":\"$(influx_org_id)\",\"name\":\"$1\",\"retentionRules\":[]}" | jq -r .id >> "$2"
}
delete_buckets() {
  [ -s "$1" ] || return 0
  while read -r id; do influx -o /dev/null -X DELETE "$BENCH_INFLUX_URL/api/v2/buckets/$id" 2>/dev/null || true; done < "$1"
}
# drop_bucket NAME: deletes it at once (a run's bucket, once counted): InfluxDB would otherwise
# snapshot and compact its points while later runs are measured (a cache goes cold after 10 min).
drop_bucket() {
  local id
  id=$(influx "$BENCH_INFLUX_URL/api/v2/buckets?name=$1&org=$BENCH_INFLUX_ORG" | jq -r '.buckets[0].id // empty')
  [ -z "$id" ] || influx -o /dev/null -X DELETE "$BENCH_INFLUX_URL/api/v2/buckets/$id"
}
# seq_count BUCKET: points of field `seq`, i.e. distinct (sensor, seq) written (a point is unique per
# series and time).
seq_count() {
  influx -H 'Content-Type: application/vnd.flux' -H 'Accept: application/csv' -X POST \
    "$BENCH_INFLUX_URL/api/v2/query?org=$BENCH_INFLUX_ORG" \
    --data-binary "from(bucket: \"$1\") |> range(start: 2020-01-01T00:00:00Z) |> filter(fn: (r) => r._field == \"seq\") |> group() |> count()" \
    | tr -d '\r' | awk -F, 'NR > 1 && $NF ~ /^[0-9]+$/ { s += $NF } END { print s + 0 }'
}

# live_scratch: a scratch folder $dir, and at exit the processes listed in $pids stopped (SIGTERM)
# and the buckets listed in $dir/buckets deleted (the live cases: scale, latency).
live_scratch() {
  dir=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
        delete_buckets "$dir/buckets"; rm -rf "$dir"' EXIT
}

# figure KEY VALUE: records a headline figure for the targets table of bench/run.sh.
figure() { echo "$1=$2" >> "${BENCH_FIGURES:-/dev/null}"; }
