#!/usr/bin/env bash
# Case 4b, a device's own JSON into InfluxDB: the gateway's declarative `format = "mapping"`
# (docs/device-formats.md) against Telegraf's json_v2 parser on the same backlog of 30,000 payloads
# of a traffic counter's vendor JSON (1,000 devices x 30 ticks: time in ms, occupancy in percent,
# the device's position), queued on Mosquitto for the consumer's persistent session (QoS 1), each run
# into a fresh InfluxDB bucket. Afterwards each bucket's `seq` points are counted (lost = 30,000 -
# count; exit 1 if any run lost one) and its fields summed, tags and times included, which must give
# the same fingerprint for every run of both contenders (the same points). Prints a Markdown section.
# Usage: bench/formats.sh   (make bench runs it)
#   BENCH_RUNS=N runs per contender (default 5); BENCH_FORMATS_LOGS=DIR keeps every log and config;
#   BENCH_FORMATS_TICKS=N payloads per device (default 30).
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_up mosquitto influxdb
eval "$(bench/peers.sh)"
cargo build --release --quiet --bin gateway
release="${CARGO_TARGET_DIR:-target}/release"
token_file="$PWD/target/bench/secrets/influxdb-token"
devices=1000
# 30,000: the bench's Mosquitto 2.0.11 stopped taking a backlog of these for one offline session past
# about 34,500 (it disconnected the publisher "due to out of memory", or stopped acknowledging).
ticks=${BENCH_FORMATS_TICKS:-30}
n=$((devices * ticks))
dir=$(mktemp -d)
pid=""
mqtt_sessions=()

cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "${BENCH_FORMATS_LOGS:-}" ]; then
    mkdir -p "$BENCH_FORMATS_LOGS"
    cp "$dir"/*.log "$dir"/*.toml "$dir"/*.conf "$BENCH_FORMATS_LOGS"/ 2>/dev/null || true
  fi
  delete_buckets "$dir/buckets"
  for s in "${mqtt_sessions[@]}"; do # the broker's persistent sessions of the runs (a clean connect ends them)
    mosquitto_sub -h "$BENCH_MQTT_HOST" -p "$BENCH_MQTT_PORT" -i "$s" -t "bench/none" -E 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT

# The payloads, one per line: what a traffic counter's own firmware might publish, e.g.
# {"device":"tc-0042","fcnt":17,"ts":1748736960123,"loc":{"lat":14.6055,"lon":-61.0668},
#  "counts":{"vehicles_per_hour":1520,"occupancy_pct":31.5,"speed_kmh":38.2,"jam":false}}
# Every device a minute apart from one tick to the next, at its own millisecond offset in the minute;
# all of them in Fort-de-France (Telegraf cannot find a commune from a position: it gets it as a
# constant tag).
awk -v d="$devices" -v t="$ticks" 'BEGIN {
  srand(19)
  for (k = 0; k < t; k++) for (i = 0; i < d; i++) {
    v = int(200 + rand() * 1800); o = rand() * 95; s = 5 + rand() * 60
    printf "{\"device\":\"tc-%04d\",\"fcnt\":%d,\"ts\":%.0f,\"loc\":{\"lat\":%.4f,\"lon\":%.4f},", i, k + 1, 1748736000000 + k * 60000 + (i * 7919) % 60000, 14.6030 + (i % 20) * 0.0003, -61.0720 + int(i / 20) * 0.0002
    printf "\"counts\":{\"vehicles_per_hour\":%d,\"occupancy_pct\":%.1f,\"speed_kmh\":%.1f,\"jam\":%s}}\n", v, o, s, (o > 80 ? "true" : "false")
  }
}' > "$dir/payloads"
bytes=$(awk '{ s += length($0) } END { printf "%d", s / NR }' "$dir/payloads")

# The gateway: the shipped settings (writes of 10,000 readings, each one request, two in flight,
# linger 200 ms) and one MQTT source read through a mapping.
gateway_conf() { # gateway_conf RUN
  cat <<EOF
[[mqtt]]
name = "tc"
host = "$BENCH_MQTT_HOST"
port = $BENCH_MQTT_PORT
client_id = "$1-c"
topic_prefix = "bench/$1"
qos = 1
clean_session = false

[formats.tc]
format = "mapping"
kind = "traffic"
[formats.tc.mapping]
sensor_id = "device"
time = "ts"
time_format = "unix_ms"
seq = "fcnt"
lat = "loc.lat"
lon = "loc.lon"
[formats.tc.mapping.fields]
intensity = { path = "counts.vehicles_per_hour" }
occupancy = { path = "counts.occupancy_pct", unit = "%" }
averageVehicleSpeed = { path = "counts.speed_kmh" }
congested = { path = "counts.jam" }

[influxdb]
url = "$BENCH_INFLUX_URL"
org = "$BENCH_INFLUX_ORG"
bucket = "$1"
token_env = ""
token_file = "$token_file"
EOF
}

# Telegraf, tuned as in bench/ingest.sh (batches of 5,000, max_undelivered_messages 10,000, flush 1 s),
# json_v2 giving the gateway's points: measurement traffic, tags commune/kind (constants) and
# sensor_id, the four values plus lat, lon and seq as fields (same names and types), time = ts in ms,
# and processors.scale converting the occupancy from percent to 0-1 as the mapping's unit does.
telegraf_conf() { # telegraf_conf RUN
  cat <<EOF
[agent]
  interval = "10s"
  flush_interval = "1s"
  metric_batch_size = 5000
  metric_buffer_limit = 100000
  omit_hostname = true
  debug = true
[[inputs.mqtt_consumer]]
  servers = ["tcp://$BENCH_MQTT_HOST:$BENCH_MQTT_PORT"]
  topics = ["bench/$1/#"]
  qos = 1
  client_id = "$1-c"
  persistent_session = true
  topic_tag = ""
  max_undelivered_messages = 10000
  data_format = "json_v2"
  [inputs.mqtt_consumer.tags]
    commune = "Fort-de-France"
    kind = "traffic"
  [[inputs.mqtt_consumer.json_v2]]
    measurement_name = "traffic"
    timestamp_path = "ts"
    timestamp_format = "unix_ms"
    [[inputs.mqtt_consumer.json_v2.tag]]
      path = "device"
      rename = "sensor_id"
    [[inputs.mqtt_consumer.json_v2.field]]
      path = "fcnt"
      rename = "seq"
      type = "int"
    [[inputs.mqtt_consumer.json_v2.field]]
      path = "loc.lat"
      rename = "lat"
      type = "float"
    [[inputs.mqtt_consumer.json_v2.field]]
      path = "loc.lon"
      rename = "lon"
      type = "float"
    [[inputs.mqtt_consumer.json_v2.field]]
      path = "counts.vehicles_per_hour"
      rename = "intensity"
      type = "int"
    [[inputs.mqtt_consumer.json_v2.field]]
      path = "counts.occupancy_pct"
      rename = "occupancy"
      type = "float"
    [[inputs.mqtt_consumer.json_v2.field]]
      path = "counts.speed_kmh"
      rename = "averageVehicleSpeed"
      type = "float"
    [[inputs.mqtt_consumer.json_v2.field]]
      path = "counts.jam"
      rename = "congested"
      type = "bool"
[[processors.scale]]
  [[processors.scale.scaling]]
    input_minimum = 0.0
    input_maximum = 100.0
    output_minimum = 0.0
    output_maximum = 1.0
    fields = ["occupancy"]
[[outputs.influxdb_v2]]
  urls = ["$BENCH_INFLUX_URL"]
  token = "\${INFLUX_TOKEN}"
  organization = "$BENCH_INFLUX_ORG"
  bucket = "$1"
EOF
}

start() { # start CONTENDER RUN LOG PORT: in the background, sets pid
  case "$1" in
    gateway) RUST_LOG=info "$release/gateway" --config "$dir/$2.toml" --data-dir "$dir/$2-data" --http-listen "127.0.0.1:$4" > "$3" 2>&1 & ;;
    telegraf) INFLUX_TOKEN="$BENCH_INFLUX_TOKEN" "$TELEGRAF" --config "$dir/$2.conf" > "$3" 2>&1 & ;;
  esac
  pid=$!
}
stop() { kill -TERM "$pid"; wait "$pid" || echo "exited non-zero on SIGTERM: $1" >&2; pid=""; }
written() { # written CONTENDER LOG PORT: points the contender reports written so far
  case "$1" in
    gateway) metric "$3" smartcity_gateway_points_written_total ;;
    telegraf) { grep -o 'Wrote batch of [0-9]* metrics' "$2" || true; } | awk '{ s += $4 } END { print s + 0 }' ;;
  esac
}
connected() { # connected CONTENDER LOG PORT: subscribed to the broker (the MQTT session exists)
  case "$1" in
    gateway) [ "$(metric "$3" 'smartcity_gateway_source_connected{source="tc"}')" = 1 ] ;;
    telegraf) grep -q 'Connected \[' "$2" ;;
  esac
}

flux() { # flux QUERY: the CSV answer's last column of its data rows
  influx -H 'Content-Type: application/vnd.flux' -H 'Accept: application/csv' -X POST \
    "$BENCH_INFLUX_URL/api/v2/query?org=$BENCH_INFLUX_ORG" --data-binary "$1" | tr -d '\r'
}
# fingerprint BUCKET: the sum of every field over the points tagged commune=Fort-de-France,
# kind=traffic (booleans as 0/1), the number of sensor ids, and the sum of the points' times
# (milliseconds within the hour): equal for two buckets holding the same points.
fingerprint() {
  local from="from(bucket: \"$1\") |> range(start: 2020-01-01T00:00:00Z) |> filter(fn: (r) => r._measurement == \"traffic\" and r.commune == \"Fort-de-France\" and r.kind == \"traffic\")"
  {
    flux "$from |> map(fn: (r) => ({r with _value: float(v: r._value)})) |> group(columns: [\"_field\"]) |> sum()" |
      awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } $0 != "" && $c["_field"] != "_field" { printf "%s=%.9g\n", $c["_field"], $c["_value"] }'
    flux "$from |> filter(fn: (r) => r._field == \"seq\") |> keep(columns: [\"sensor_id\"]) |> distinct(column: \"sensor_id\") |> group() |> count()" |
      awk -F, 'NR > 1 && $NF ~ /^[0-9]+$/ { s += $NF } END { printf "sensors=%d\n", s }'
    flux "$from |> filter(fn: (r) => r._field == \"seq\") |> map(fn: (r) => ({r with _value: float(v: int(v: r._time) / 1000000 % 3600000)})) |> group() |> sum()" |
      awk -F, 'NR > 1 && $NF ~ /^[0-9.e+]+$/ { s += $NF } END { printf "time=%.0f\n", s }'
  } | sort | paste -sd' '
}

# One measured run; appends "rate cpu_s_per_100k peak_rss_mib lost steady" to $dir/CONTENDER.rows
# and the bucket's fingerprint to $dir/fingerprints.
one_run() { # one_run CONTENDER I
  local c="$1" run port log t0 t1 c0 c1 hwm got=0 last=0 stalled=0 count first_t="" first_n=0
  run="formats-$c-$$-$2-$(date +%s%N)"
  new_bucket "$run" "$dir/buckets"
  if [ "$c" = gateway ]; then gateway_conf "$run" > "$dir/$run.toml"; else telegraf_conf "$run" > "$dir/$run.conf"; fi
  port=$(free_port)
  # A first start creates the persistent session and its subscription; the broker then queues the
  # backlog for it while the consumer is down, as after an outage.
  mqtt_sessions+=("$run-c")
  start "$c" "$run" "$dir/$run-first.log" "$port"
  for _ in $(seq 200); do connected "$c" "$dir/$run-first.log" "$port" && break; sleep 0.1; done
  connected "$c" "$dir/$run-first.log" "$port" || { echo "$c not subscribed in 20 s:" >&2; tail "$dir/$run-first.log" >&2; exit 1; }
  sleep 0.5
  stop "$dir/$run-first.log"
  # The backlog, by paho-mqtt, which waits for every acknowledgement (`mosquitto_pub -l` 2.0.11 quit
  # with a third of it unsent).
  sed "s|^|bench/$run/traffic |" "$dir/payloads" > "$dir/messages"
  local published
  published=$("$PYTHON" bench/peers/paho_publish.py "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" 1 100 "$dir/messages") || true
  [[ "$published" == "published $n in "* ]] || { echo "publishing the backlog failed ($run): $published" >&2; exit 1; }
  log="$dir/$run.log"
  t0=$(date +%s.%N)
  start "$c" "$run" "$log" "$port"
  c0=$(cpu_ticks "$pid")
  while [ "$got" -lt "$n" ]; do
    sleep 0.05
    kill -0 "$pid" 2>/dev/null || { echo "$c died ($run):" >&2; tail -20 "$log" >&2; exit 1; }
    got=$(written "$c" "$log" "$port")
    if [ -z "$first_t" ] && [ "$got" -gt 0 ]; then first_t=$(date +%s.%N); first_n=$got; fi
    if [ "$got" -gt "$last" ]; then last=$got; stalled=0; else stalled=$((stalled + 1)); fi
    if [ "$stalled" -ge 1200 ]; then echo "$c stalled at $got of $n ($run)" >&2; break; fi # 60 s without a write
  done
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$pid")
  hwm=$(peak_rss_mib "$pid")
  stop "$log"
  count=$(seq_count "$run")
  local rate=0 steady=0
  if [ "$got" -ge "$n" ]; then
    rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
    # Once writing: from the first poll that saw a point written to the last (50 ms polls).
    steady=$(awk -v n="$((n - first_n))" -v a="$first_t" -v b="$t1" 'BEGIN { printf "%d", (b > a) ? n / (b - a) : 0 }')
  fi
  echo "$rate $(awk -v c="$((c1 - c0))" -v t="$CLK_TCK" -v w="$got" 'BEGIN { printf "%.2f", c / t * 100000 / (w > 0 ? w : 1) }') $hwm $((n - count)) $steady" >> "$dir/$c.rows"
  fingerprint "$run" >> "$dir/fingerprints"
  progress "formats run $2: $c $rate readings/s ($steady once writing), $count of $n in InfluxDB, $(grep -ciE 'WARN|ERROR|E!|W!' "$log" || true) warning/error lines; $(tail -1 "$dir/fingerprints")"
}

for i in $(seq "$RUNS"); do for c in gateway telegraf; do one_run "$c" "$i"; done; done

col() { awk -v k="$2" '{ print $k }' "$dir/$1.rows" | stats; }
gw=$(col gateway 1 | cut -d' ' -f1); gws=$(col gateway 5 | cut -d' ' -f1); gwc=$(col gateway 2 | cut -d' ' -f1)
tg=$(col telegraf 1 | cut -d' ' -f1); tgs=$(col telegraf 5 | cut -d' ' -f1); tgc=$(col telegraf 2 | cut -d' ' -f1)
figure formats_gateway "$gw"; figure formats_gateway_cpu "$gwc"; figure formats_telegraf "$tg"; figure formats_telegraf_cpu "$tgc"
lost_total=0
same=$(sort -u "$dir/fingerprints" | wc -l)
cat <<EOF
## 4b. A device's own JSON into InfluxDB: the gateway's \`mapping\` format vs Telegraf's \`json_v2\`

$n payloads of a traffic counter's vendor JSON ($devices devices × $ticks ticks, $bytes bytes on
average, e.g. \`{"device":"tc-0042","fcnt":17,"ts":1748736960123,"loc":{"lat":14.6051,"lon":-61.0644},"counts":{"vehicles_per_hour":1520,"occupancy_pct":31.5,"speed_kmh":38.2,"jam":false}}\`)
wait on Mosquitto, queued for the consumer's persistent session (QoS 1; a first start of the
consumer created the session, then it stopped and paho-mqtt published the backlog on one topic,
every message acknowledged). The consumer then starts into a fresh bucket and is timed as in cases 2–4: from its start
to its last point written, and from its first point written to its last ("once writing"); CPU is
utime + stime of the process over that time, peak RSS its \`VmHWM\`. **Lost** is $n minus the
bucket's count of \`seq\` points, over all runs. Median of $RUNS runs (min–max), contenders interleaved.
The backlog is smaller than cases 2–4's: past about 34,500 of these payloads queued for one offline
session, the bench's Mosquitto 2.0.11 disconnected the publisher ("out of memory") or stopped
acknowledging it. CPU is shared with other work on this machine: the figures are noisy, the ratios
(both contenders in the same run) less so.

Both write the same points: measurement \`traffic\`, tags \`commune\`, \`kind\`, \`sensor_id\`
(\`device\`), fields \`intensity\` (integer), \`occupancy\` (0-1, from \`occupancy_pct\`),
\`averageVehicleSpeed\`, \`congested\` (boolean), \`lat\`, \`lon\`, \`seq\` (\`fcnt\`, integer), time
\`ts\` (Unix milliseconds). The gateway: the shipped settings and a \`format = "mapping"\` source
(\`occupancy = { path = "counts.occupancy_pct", unit = "%" }\`; it also finds the commune from the
position and checks the reading as for every format). Telegraf $("$TELEGRAF" --version | awk '{ print $2 }'): \`mqtt_consumer\` with
\`json_v2\` (the commune and kind as constant tags), \`processors.scale\` for the percent, \`influxdb_v2\`,
tuned as in cases 2–4. Their configurations are \`gateway_conf\` and \`telegraf_conf\` in
\`bench/formats.sh\`. **Same points**: every bucket's fingerprint (the sum of each field, booleans as
0/1, over the points with the expected tags; the number of sensor ids; the sum of the times) is
the same for every run of both.

| contender | readings/s, start included | readings/s once writing | CPU s per 100,000 | peak RSS MiB | lost | gateway ÷ Telegraf (rate once writing) | Telegraf ÷ gateway (CPU) |
| --- | --- | --- | --- | --- | --- | --- | --- |
EOF
for c in gateway telegraf; do
  lost=$(awk '{ s += $4 } END { print s + 0 }' "$dir/$c.rows"); lost_total=$((lost_total + lost))
  r1=""; r2=""; name=Telegraf
  if [ "$c" = gateway ]; then name="our gateway (\`mapping\`)"; r1=$(ratio "$gws" "$tgs"); r2=$(ratio "$tgc" "$gwc"); fi
  echo "| $name | $(col "$c" 1 | fmt_stats) | $(col "$c" 5 | fmt_stats) | $(col "$c" 2 | fmt_stats) | $(col "$c" 3 | fmt_stats) | $lost of $((RUNS * n)) | $r1 | $r2 |"
done
figure formats_lost "$lost_total"
cat <<EOF

Same points in every bucket: $([ "$same" -eq 1 ] && echo "**yes**" || echo "**no** ($same different fingerprints)") (\`$(head -1 "$dir/fingerprints")\`).
Start included, the gateway is $(ratio "$gw" "$tg") Telegraf's rate.

Command: \`bench/formats.sh\`
EOF
[ "$lost_total" -eq 0 ] || { echo "LOST: $lost_total readings missing from InfluxDB" >&2; exit 1; }
[ "$same" -eq 1 ] || { echo "the buckets differ: $(sort -u "$dir/fingerprints" | paste -sd'|')" >&2; exit 1; }
