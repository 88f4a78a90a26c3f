#!/usr/bin/env bash
# Cases 2-4, ingest into InfluxDB: our gateway against Telegraf 1.37.2 on the same backlog of 200,000
# readings (2,000 generated sensors x 100 ticks), from MQTT (Mosquitto, QoS 1, a persistent session)
# and from Kafka (6 topics), each run into a fresh InfluxDB bucket whose `seq` points are counted
# afterwards (lost = 200,000 - count; the script exits 1 if any run lost one); then InfluxDB alone
# fed the same readings as pre-encoded line protocol, the ceiling of any ingest on this machine.
# The gateway's two other sources, the Kafka REST proxy and Pulsar, are measured the same way, alone:
# Telegraf has no input for either.
# Prints a Markdown section. Usage: bench/ingest.sh   (make bench runs it)
#   BENCH_RUNS=N runs per contender (default 5); BENCH_INGEST_LOGS=DIR keeps every log and config;
#   BENCH_PROFILE=DIR profiles each contender's first run of each path with perf (999 Hz, all
#   threads) and writes its hottest functions to DIR/<path>-<contender>.txt;
#   BENCH_INGEST_SOURCES="pulsar ..." measures only those paths (default: mqtt kafka kafka-rest pulsar);
#   BENCH_GATEWAY_BASELINE=PATH adds a gateway binary built elsewhere (e.g. from an older commit) as
#   one more contender, "baseline", interleaved with the others: before/after figures of one run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_up mosquitto kafka kafka-bridge pulsar influxdb
eval "$(bench/peers.sh)"
cargo build --release --quiet --bin simulator --bin gateway
cargo build --release --quiet -p smartcity-model --example backfill_lines
token_file="$PWD/target/bench/secrets/influxdb-token"
n=200000
span=(--sensors 2000 --interval 1 --from 2025-06-01T00:00:00Z --to 2025-06-01T00:01:39Z)
dir=$(mktemp -d)
read -r -a sources <<< "${BENCH_INGEST_SOURCES:-mqtt kafka kafka-rest pulsar}"
for s in "${sources[@]}"; do
  case "$s" in mqtt | kafka | kafka-rest | pulsar) ;; *) echo "BENCH_INGEST_SOURCES: unknown source \`$s\`" >&2; exit 2 ;; esac
done
measured() { [[ " ${sources[*]} " == *" $1 "* ]]; }
# Telegraf has inputs for MQTT and Kafka only.
contenders() {
  local base=${BENCH_GATEWAY_BASELINE:+baseline}
  case "$1" in mqtt | kafka) echo gateway $base telegraf ;; *) echo gateway $base ;; esac
}
pid=""
mqtt_sessions=()

cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "${BENCH_INGEST_LOGS:-}" ]; then mkdir -p "$BENCH_INGEST_LOGS" && cp "$dir"/*.log "$dir"/*.toml "$dir"/*.conf "$BENCH_INGEST_LOGS"/ 2>/dev/null || true; fi
  delete_buckets "$dir/buckets" # 200,000 points each would pile up at every `make bench`
  for s in "${mqtt_sessions[@]}"; do # the broker's persistent sessions of the runs (a clean connect ends them)
    mosquitto_sub -h "$BENCH_MQTT_HOST" -p "$BENCH_MQTT_PORT" -i "$s" -t "bench/none" -E 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT

# The backlog of a run: the simulator's backfill to MQTT prefix bench/RUN or Kafka topics bench-RUN-{kind}.
backlog() { # backlog SOURCE RUN
  case "$1" in
    mqtt) printf '[[mqtt]]\nhost="%s"\nport=%s\nclient_id="%s-sim"\ntopic_prefix="bench/%s"\nqos=1\n' "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$2" "$2" ;;
    kafka) printf '[[mqtt]]\nenabled=false\n[[kafka]]\nbootstrap_servers="%s"\ntopic_template="bench-%s-{kind}"\n' "$BENCH_KAFKA_BOOTSTRAP" "$2" ;;
    kafka-rest) printf '[[mqtt]]\nenabled=false\n[[kafka_rest]]\nurl="%s"\ntopic_template="bench-%s-{kind}"\n' "$BENCH_KAFKA_REST_URL" "$2" ;;
    pulsar) printf '[[mqtt]]\nenabled=false\n[[pulsar]]\nurl="%s"\ntopic_template="persistent://public/default/%s-{kind}"\n' "$BENCH_PULSAR_URL" "$2" ;;
  esac > "$dir/$2-sim.toml"
  printf '[embedded_broker]\nenabled=false\n[status]\ninterval_seconds=0\n[simulation]\ndrain_seconds=600\n' >> "$dir/$2-sim.toml"
  target/release/simulator --config "$dir/$2-sim.toml" "${span[@]}" --metrics-listen 127.0.0.1:0 > "$dir/$2-sim.log" 2>&1 ||
    { echo "simulator failed ($2):" >&2; tail -20 "$dir/$2-sim.log" >&2; exit 1; }
}

# The gateway: the shipped config/gateway.toml (writes of 10,000 readings sent as two requests of
# 5,000 at once, linger 200 ms) plus the source.
gateway_conf() { # gateway_conf SOURCE RUN
  case "$1" in
    mqtt) printf '[[mqtt]]\nname="mqtt"\nhost="%s"\nport=%s\nclient_id="%s-c"\ntopic_prefix="bench/%s"\nqos=1\nclean_session=false\n' \
      "$BENCH_MQTT_HOST" "$BENCH_MQTT_PORT" "$2" "$2" ;;
    kafka) printf '[[mqtt]]\nenabled=false\n[[kafka]]\nname="kafka"\nbootstrap_servers="%s"\ntopic_template="bench-%s-{kind}"\ngroup_id="%s"\nauto_offset_reset="earliest"\n' \
      "$BENCH_KAFKA_BOOTSTRAP" "$2" "$2" ;;
    kafka-rest) printf '[[mqtt]]\nenabled=false\n[[kafka_rest]]\nname="kafka-rest"\nurl="%s"\ntopic_template="bench-%s-{kind}"\ngroup="%s"\ninstance="%s-c"\n' \
      "$BENCH_KAFKA_REST_URL" "$2" "$2" "$2" ;;
    pulsar) printf '[[mqtt]]\nenabled=false\n[[pulsar]]\nname="pulsar"\nurl="%s"\ntopics=[%s]\nsubscription="%s"\nadmin_url="%s"\ndead_letter_topic="persistent://public/default/%s-dlq"\n' \
      "$BENCH_PULSAR_URL" "$(for k in traffic airquality parking noise weather light; do printf '"persistent://public/default/%s-%s",' "$2" "$k"; done | sed 's/,$//')" \
      "$2" "$BENCH_PULSAR_ADMIN_URL" "$2" ;;
  esac
  printf '[influxdb]\nurl="%s"\norg="%s"\nbucket="%s"\ntoken_env=""\ntoken_file="%s"\n' "$BENCH_INFLUX_URL" "$BENCH_INFLUX_ORG" "$2" "$token_file"
}

# Telegraf, tuned as its documentation advises for throughput with delivery tracking: batches of 5,000
# (ours), max_undelivered_messages twice that (with fewer, a batch never fills and each waits for the
# flush interval), flush_interval 1 s, json_v2 giving the points the gateway writes (measurement =
# type, tags commune/kind/sensor_id, the values plus lat, lon and seq as fields, time = observedAt).
telegraf_conf() { # telegraf_conf SOURCE RUN
  cat <<EOF
[agent]
  interval = "10s"
  flush_interval = "1s"
  metric_batch_size = 5000
  metric_buffer_limit = 100000
  omit_hostname = true
  debug = true
EOF
  local input
  case "$1" in
    mqtt) input=mqtt_consumer; cat <<EOF
[[inputs.mqtt_consumer]]
  servers = ["tcp://$BENCH_MQTT_HOST:$BENCH_MQTT_PORT"]
  topics = ["bench/$2/#"]
  qos = 1
  client_id = "$2-c"
  persistent_session = true
  topic_tag = ""
EOF
    ;;
    kafka) input=kafka_consumer; cat <<EOF
[[inputs.kafka_consumer]]
  brokers = ["$BENCH_KAFKA_BOOTSTRAP"]
  topics = [$(for k in traffic air-quality parking noise weather light; do printf '"bench-%s-%s",' "$2" "$k"; done | sed 's/,$//')]
  consumer_group = "$2"
  offset = "oldest"
  balance_strategy = "roundrobin"
EOF
    ;;
  esac
  cat <<EOF
  max_undelivered_messages = 10000
  data_format = "json_v2"
  [[inputs.$input.json_v2]]
    measurement_name_path = "type"
    timestamp_path = "observedAt"
    timestamp_format = "2006-01-02T15:04:05Z07:00"
    [[inputs.$input.json_v2.tag]]
      path = "commune"
    [[inputs.$input.json_v2.tag]]
      path = "type"
      rename = "kind"
    [[inputs.$input.json_v2.tag]]
      path = "id"
      rename = "sensor_id"
    [[inputs.$input.json_v2.field]]
      path = "seq"
      type = "int"
    [[inputs.$input.json_v2.field]]
      path = "lat"
    [[inputs.$input.json_v2.field]]
      path = "lon"
    [[inputs.$input.json_v2.object]]
      path = "values"
[[outputs.influxdb_v2]]
  urls = ["$BENCH_INFLUX_URL"]
  token = "\${INFLUX_TOKEN}"
  organization = "$BENCH_INFLUX_ORG"
  bucket = "$2"
EOF
}

start() { # start CONTENDER RUN LOG [PORT]: in the background, sets pid
  case "$1" in
    gateway | baseline)
      local bin=target/release/gateway
      [ "$1" = baseline ] && bin=$BENCH_GATEWAY_BASELINE
      RUST_LOG=info "$bin" --config "$dir/$2.toml" --data-dir "$dir/$2-data" --http-listen "127.0.0.1:$4" > "$3" 2>&1 & ;;
    telegraf) INFLUX_TOKEN="$BENCH_INFLUX_TOKEN" "$TELEGRAF" --config "$dir/$2.conf" > "$3" 2>&1 & ;;
  esac
  pid=$!
}
stop() { kill -TERM "$pid"; wait "$pid" || echo "exited non-zero on SIGTERM: $1" >&2; pid=""; }
written() { # written CONTENDER LOG PORT: points the contender reports written so far
  case "$1" in
    gateway | baseline) metric "$3" smartcity_gateway_points_written_total ;;
    telegraf) { grep -o 'Wrote batch of [0-9]* metrics' "$2" || true; } | awk '{ s += $4 } END { print s + 0 }' ;;
  esac
}
connected() { # connected CONTENDER LOG PORT: subscribed to the broker (the MQTT session exists)
  case "$1" in
    gateway | baseline) [ "$(metric "$3" 'smartcity_gateway_source_connected{source="mqtt"}')" = 1 ] ;;
    telegraf) grep -q 'Connected \[' "$2" ;;
  esac
}

# Where the cores went during a run: CPU ticks of InfluxDB, of the source's broker (the REST proxy
# path counts Kafka and the proxy), and of the whole machine (busy, total; /proc/stat).
broker_pids() { case "$1" in mqtt) cat target/bench/run/mosquitto.pid ;; kafka) cat target/bench/run/kafka.pid ;; kafka-rest) cat target/bench/run/kafka.pid target/bench/run/kafka-bridge.pid ;; pulsar) cat target/bench/run/pulsar.pid ;; esac; }
pids_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
server_ticks() { echo "$(pids_ticks "$(cat target/bench/run/influxdb.pid)") $(pids_ticks $(broker_pids "$1")) $(machine_ticks)"; }

# One measured run; appends "rate cpu_s_per_100k peak_rss_mib lost" to $dir/SOURCE-CONTENDER.rows.
one_run() { # one_run SOURCE CONTENDER I   (I = warmup: a run whose figures are not kept)
  local src="$1" c="$2" run port log t0 t1 c0 c1 hwm got=0 last=0 stalled=0 count first_t="" first_n=0
  local rows="$dir/$src-$c.rows"
  [ "$3" = warmup ] && rows="$dir/warmup.rows"
  run="ingest-$src-$c-$$-$3-$(date +%s%N)"
  new_bucket "$run" "$dir/buckets"
  if [ "$c" = telegraf ]; then telegraf_conf "$src" "$run" > "$dir/$run.conf"; else gateway_conf "$src" "$run" > "$dir/$run.toml"; fi
  port=$(free_port)
  if [ "$src" = mqtt ]; then
    # A first start creates the persistent session and its subscription; the broker then queues the
    # backlog for it while the consumer is down, as after an outage.
    mqtt_sessions+=("$run-c")
    start "$c" "$run" "$dir/$run-first.log" "$port"
    for _ in $(seq 200); do connected "$c" "$dir/$run-first.log" "$port" && break; sleep 0.1; done
    connected "$c" "$dir/$run-first.log" "$port" || { echo "$c not subscribed in 20 s:" >&2; tail "$dir/$run-first.log" >&2; exit 1; }
    sleep 0.5
    stop "$dir/$run-first.log"
  fi
  backlog "$src" "$run"
  log="$dir/$run.log"
  local s0 s1
  influx_quiet
  s0=$(server_ticks "$src")
  t0=$(date +%s.%N)
  start "$c" "$run" "$log" "$port"
  c0=$(cpu_ticks "$pid")
  local perf=""
  if [ -n "${BENCH_PROFILE:-}" ] && [ "$3" = 1 ]; then
    mkdir -p "$BENCH_PROFILE"
    perf record -q -F 999 -g -p "$pid" -o "$dir/$src-$c.perf" 2>/dev/null &
    perf=$!
  fi
  while [ "$got" -lt "$n" ]; do
    sleep 0.05
    kill -0 "$pid" 2>/dev/null || { echo "$c died ($run):" >&2; tail -20 "$log" >&2; exit 1; }
    got=$(written "$c" "$log" "$port")
    if [ -z "$first_t" ] && [ "$got" -gt 0 ]; then first_t=$(date +%s.%N); first_n=$got; fi
    if [ "$got" -gt "$last" ]; then last=$got; stalled=0; else stalled=$((stalled + 1)); fi
    if [ "$stalled" -ge 1200 ]; then echo "$c stalled at $got of $n ($run)" >&2; break; fi # 60 s without a write
  done
  t1=$(date +%s.%N)
  s1=$(server_ticks "$src")
  c1=$(cpu_ticks "$pid")
  hwm=$(peak_rss_mib "$pid")
  if [ -n "$perf" ]; then
    kill -INT "$perf"; wait "$perf" 2>/dev/null || true
    perf report -i "$dir/$src-$c.perf" --stdio --no-children --sort dso,symbol --percent-limit 0.7 2>/dev/null |
      grep -E '^ +[0-9.]+%' > "$BENCH_PROFILE/$src-$c.txt" || true
  fi
  stop "$log"
  count=$(seq_count "$run")
  drop_bucket "$run"
  local rate=0 steady=0
  if [ "$got" -ge "$n" ]; then
    rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
    # Once writing: from the first poll that saw a point written to the last (50 ms polls).
    steady=$(awk -v n="$((n - first_n))" -v a="$first_t" -v b="$t1" 'BEGIN { printf "%d", (b > a) ? n / (b - a) : 0 }')
  fi
  # Columns: rate, CPU s per 100,000, peak RSS MiB, lost, rate once writing, then InfluxDB's and the
  # broker's CPU s per 100,000 and the machine's busy share of all its cores (%) over the same time.
  echo "$rate $(awk -v c="$((c1 - c0))" -v t="$CLK_TCK" -v w="$got" 'BEGIN { printf "%.2f", c / t * 100000 / (w > 0 ? w : 1) }') $hwm $((n - count)) $steady" \
    "$(echo "$s0 $s1" | awk -v t="$CLK_TCK" -v w="$got" '{ w = w > 0 ? w : 1; printf "%.2f %.2f %d", ($5 - $1) / t * 100000 / w, ($6 - $2) / t * 100000 / w, 100 * ($7 - $3) / ($8 - $4) }')" >> "$rows"
  progress "ingest $src run $3: $c $rate readings/s ($steady once writing), $count of $n in InfluxDB, $(grep -ciE 'WARN|ERROR|E!|W!' "$log" || true) warning/error lines"
}

# The ceiling: the same 200,000 readings as line protocol, split into batches, POSTed by curl with
# P requests at a time into a fresh bucket; wall time from the first request to the last answer.
target/release/examples/backfill_lines 2000 100 2025-06-01T00:00:00Z > "$dir/lines"
[ "$(wc -l < "$dir/lines")" -eq "$n" ] || { echo "backfill_lines gave $(wc -l < "$dir/lines") lines" >&2; exit 1; }
ceiling_run() { # ceiling_run BATCH PARALLEL I [ROWS] -> readings per second
  # ROWS, when given, gets "rate InfluxDB-CPU-s-per-100,000 machine-busy-%" appended.
  local run="ingest-ceiling-$1x$2-$$-$3-$(date +%s%N)" t0 t1 s0 s1 rate
  new_bucket "$run" "$dir/buckets"
  rm -rf "$dir/split" && mkdir "$dir/split" && split -l "$1" "$dir/lines" "$dir/split/b"
  influx_quiet
  s0=$(server_ticks mqtt) # InfluxDB's and the machine's ticks (the broker's are not used here)
  t0=$(date +%s.%N)
  find "$dir/split" -type f | sort | xargs -P "$2" -I{} curl -sS --fail-with-body -o /dev/null \
    -H "Authorization: Token $BENCH_INFLUX_TOKEN" -H 'Content-Type: text/plain; charset=utf-8' \
    "$BENCH_INFLUX_URL/api/v2/write?org=$BENCH_INFLUX_ORG&bucket=$run&precision=ms" --data-binary @{}
  t1=$(date +%s.%N)
  s1=$(server_ticks mqtt)
  [ "$(seq_count "$run")" -eq "$n" ] || { echo "ceiling run $run: $(seq_count "$run") of $n points" >&2; exit 1; }
  drop_bucket "$run"
  rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d\n", n / (b - a) }')
  if [ -n "${4:-}" ]; then
    echo "$rate $(echo "$s0 $s1" | awk -v t="$CLK_TCK" -v w="$n" '{ printf "%.2f %d", ($5 - $1) / t * 100000 / w, 100 * ($7 - $3) / ($8 - $4) }')" >> "$4"
  fi
  echo "$rate"
}

# InfluxDB alone, as it was beside each path's runs: its speed drifts threefold over a bench (its
# compactions of the earlier runs' points, other work on the two cores), so each run of the gateway
# is compared with a ceiling run (the default shape, 10,000 lines x 2 requests) made right after it.
# Before a path's measured rounds, one round whose figures are not kept (BENCH_WARMUP=0: none): the
# brokers are JVMs (Kafka, Pulsar) that a fresh bench starts cold, and the first runs of a path
# would otherwise measure their warm-up, whichever contender came first.
declare -A beside
for src in "${sources[@]}"; do
  for _ in $(seq "${BENCH_WARMUP:-1}"); do
    for c in $(contenders "$src"); do one_run "$src" "$c" warmup; done
  done
  for i in $(seq "$RUNS"); do
    for c in $(rotate "$i" $(contenders "$src")); do one_run "$src" "$c" "$i"; done
    beside[$src]+="$(ceiling_run 10000 2 "beside-$src-$i" "$dir/beside-$src.rows") "
  done
  progress "ingest $src: InfluxDB alone beside its runs: ${beside[$src]}"
done
declare -A ceiling
for shape in 5000x1 5000x2 5000x4 10000x2; do
  for i in $(seq "$RUNS"); do ceiling[$shape]+="$(ceiling_run "${shape%x*}" "${shape#*x}" "$i") "; done
  progress "ingest ceiling $shape: ${ceiling[$shape]}"
done
# The MQTT path's other ceiling: Mosquitto alone replaying the same backlog, queued the same way for
# a persistent session, to mosquitto_sub (QoS 1: it acknowledges each message at once and writes
# nothing). The gateway from MQTT cannot be faster than this, whatever InfluxDB takes.
mosquitto_run() { # mosquitto_run I -> readings per second
  local run="ingest-mosquitto-$$-$1-$(date +%s%N)" t0 t1 m=(-h "$BENCH_MQTT_HOST" -p "$BENCH_MQTT_PORT")
  mosquitto_sub "${m[@]}" -q 1 -c -i "$run-c" -t "bench/$run/#" -E
  backlog mqtt "$run"
  t0=$(date +%s.%N)
  mosquitto_sub "${m[@]}" -q 1 -c -i "$run-c" -t "bench/$run/#" -C "$n" -W 300 > /dev/null ||
    { echo "mosquitto_sub did not receive $n messages ($run)" >&2; exit 1; }
  t1=$(date +%s.%N)
  mosquitto_sub "${m[@]}" -i "$run-c" -t bench/none -E # a clean connect ends the session
  awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d\n", n / (b - a) }'
}
mosquitto_alone=""
if measured mqtt; then
  for i in $(seq "$RUNS"); do mosquitto_alone+="$(mosquitto_run "$i") "; done
  progress "ingest Mosquitto alone: $mosquitto_alone"
fi
best=""
for shape in "${!ceiling[@]}"; do
  m=$(echo "${ceiling[$shape]}" | stats | cut -d' ' -f1)
  if [ -z "$best" ] || [ "$m" -gt "$(echo "${ceiling[$best]}" | stats | cut -d' ' -f1)" ]; then best=$shape; fi
done
top=$(echo "${ceiling[$best]}" | stats | cut -d' ' -f1)

col() { awk -v k="$2" '{ print $k }' "$dir/$1.rows" | stats; }
# Ratios run by run (the contenders' runs interleave: run i of one over run i of the other), as
# "median× (min–max)": the spread says whether a target is met by the median or by luck.
# paired A COL_A B COL_B, or paired A COL_A - "VALUES" (one value per run, in run order).
paired() {
  local b
  if [ "$3" = - ]; then b=$(echo "$4" | tr ' ' '\n' | grep .); else b=$(awk -v k="$4" '{ print $k }' "$dir/$3.rows"); fi
  paste -d' ' <(awk -v k="$2" '{ print $k }' "$dir/$1.rows") <(echo "$b") |
    awk '$2 > 0 { printf "%.2f\n", $1 / $2 }' | tr '\n' ' ' | stats | awk '{ printf "%s× (%s–%s)\n", $1, $2, $3 }'
}
# "0.63× (0.55–0.70)" -> "63 % (55–70 %)"
percent() { tr -d '×()' | tr '–' ' ' | awk '{ printf "%.0f %% (%.0f–%.0f %%)\n", 100 * $1, 100 * $2, 100 * $3 }'; }
label() { case "$1" in mqtt) echo "MQTT → InfluxDB" ;; kafka) echo "Kafka → InfluxDB" ;; kafka-rest) echo "Kafka REST proxy → InfluxDB" ;; pulsar) echo "Pulsar → InfluxDB" ;; esac; }
lost_total=0
cat <<EOF
## 2–4. Ingest into InfluxDB: gateway vs Telegraf, and InfluxDB alone

$n readings (2,000 generated sensors × 100 ticks) wait in the broker: on Mosquitto, queued for the
consumer's persistent session (QoS 1; a first start of the consumer created the session, then it
stopped and the simulator published), or on 6 fresh Kafka topics (read natively, or by the gateway
alone through the bench's Kafka REST proxy stand-in), or on 6 fresh Pulsar topics (the gateway alone:
Telegraf has no input for the REST proxy nor for Pulsar). The consumer then starts into a
fresh bucket and is timed from its start to its last point written (process start and connection
included), and from its first point written to its last ("once writing": the rate to compare with
InfluxDB alone): our gateway by its \`/metrics\`, Telegraf by its debug log's \`Wrote batch of N
metrics\`, polled every 50 ms.
CPU is utime + stime of the process over that time, peak RSS its \`VmHWM\`. **Lost** is $n minus
the bucket's count of \`seq\` points afterwards, over all runs. Median of $RUNS runs (min–max),
contenders interleaved, each round starting with a different one. Each path first runs one round
whose figures are not kept (the bench's Kafka and Pulsar are JVMs, cold after a fresh start), every
run waits for InfluxDB to be idle, and its bucket is dropped once counted.

Settings: the gateway as shipped (\`config/gateway.toml\`: writes of 10,000 readings, each one
request, two writes in flight, linger 200 ms, acknowledgement after the write); Telegraf $("$TELEGRAF" --version | awk '{ print $2 }') built from the Go module proxy with
\`mqtt_consumer\`/\`kafka_consumer\`, \`json_v2\` and \`influxdb_v2\`, delivery tracking on (its
default), \`metric_batch_size = 5000\`, \`max_undelivered_messages = 10000\`, \`flush_interval = "1s"\`,
its points shaped like ours (the configuration is \`telegraf_conf\` in \`bench/ingest.sh\`). Its
output writes its batches one after another (one flush at a time per output), as Telegraf does.

| path | contender | readings/s, start included | readings/s once writing | CPU s per 100,000 | peak RSS MiB | lost | gateway ÷ Telegraf (rate, start included) | Telegraf ÷ gateway (CPU) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
EOF
for src in "${sources[@]}"; do
  gw=$(col "$src-gateway" 1 | cut -d' ' -f1); gwc=$(col "$src-gateway" 2 | cut -d' ' -f1)
  figure "ingest_${src}_gateway" "$gw"; figure "ingest_${src}_gateway_cpu" "$gwc"
  figure "ingest_${src}_gateway_steady" "$(col "$src-gateway" 5 | cut -d' ' -f1)"
  figure "ingest_${src}_gateway_rss" "$(col "$src-gateway" 3 | cut -d' ' -f1)"
  tg=""; tgc=""
  if [ -f "$dir/$src-telegraf.rows" ]; then
    tg=$(col "$src-telegraf" 1 | cut -d' ' -f1); tgc=$(col "$src-telegraf" 2 | cut -d' ' -f1)
    figure "ingest_${src}_telegraf" "$tg"; figure "ingest_${src}_telegraf_cpu" "$tgc"
  fi
  for c in $(contenders "$src"); do
    lost=$(awk '{ s += $4 } END { print s + 0 }' "$dir/$src-$c.rows"); lost_total=$((lost_total + lost))
    r1=""; r2=""
    case "$c" in telegraf) name=Telegraf ;; baseline) name="baseline gateway (\`BENCH_GATEWAY_BASELINE\`)" ;; *) name="our gateway" ;; esac
    if [ "$c" = gateway ] && [ -n "$tg" ]; then
      r1=$(paired "$src-gateway" 1 "$src-telegraf" 1); r2=$(paired "$src-telegraf" 2 "$src-gateway" 2)
      figure "ingest_${src}_vs_telegraf" "$r1"; figure "ingest_${src}_cpu_vs_telegraf" "$r2"
    fi
    if [ "$c" = gateway ] && [ -z "$tg" ]; then r1="(Telegraf has no input for it)"; fi
    if [ "$c" = baseline ]; then
      r1="gateway ÷ baseline, once writing: $(paired "$src-gateway" 5 "$src-baseline" 5)"
      r2="baseline ÷ gateway: $(paired "$src-baseline" 2 "$src-gateway" 2)"
    fi
    echo "| $(label "$src") | $name | $(col "$src-$c" 1 | fmt_stats) | $(col "$src-$c" 5 | fmt_stats) | $(col "$src-$c" 2 | fmt_stats) | $(col "$src-$c" 3 | fmt_stats) | $lost of $((RUNS * n)) | $r1 | $r2 |"
  done
done
cat <<EOF

**The ceiling**: InfluxDB alone, the same $n readings pre-encoded as line protocol (our codec:
\`cargo run --release -p smartcity-model --example backfill_lines -- 2000 100 2025-06-01T00:00:00Z\`),
POSTed by curl in batches of B lines, P requests at a time; timed from the first request to the last
answer. Median of $RUNS runs (min–max) per shape; the best shape is the ceiling.

| batch × parallel requests | readings/s |
| --- | --- |
EOF
for shape in 5000x1 5000x2 5000x4 10000x2; do
  echo "| ${shape/x/ × }$([ "$shape" = "$best" ] && echo " (**ceiling**)") | $(echo "${ceiling[$shape]}" | stats | fmt_stats) |"
done
figure ingest_ceiling "$top"; figure ingest_lost "$lost_total"
echo
for src in kafka mqtt; do
  measured "$src" || continue
  figure "ingest_${src}_of_ceiling" "$(paired "$src-gateway" 5 - "${beside[$src]}" | sed 's/×.*//')"
  echo "- Once writing, our gateway from $(label "$src" | cut -d' ' -f1) reaches **$(paired "$src-gateway" 5 - "${beside[$src]}" | percent)** of InfluxDB alone (10,000 × 2) measured right after each of its runs: $(echo "${beside[$src]}" | stats | fmt_stats) readings/s."
done
if measured mqtt; then
  figure ingest_mqtt_mosquitto_alone "$(echo "$mosquitto_alone" | stats | cut -d' ' -f1)"
  figure ingest_mqtt_of_mosquitto "$(paired mqtt-gateway 5 - "$mosquitto_alone" | sed 's/×.*//')"
  cat <<EOF
- **Mosquitto alone**, the MQTT path's own ceiling: the same backlog queued the same way for a
  persistent session, replayed to \`mosquitto_sub -q 1\` (it acknowledges each message at once and
  writes nothing): $(echo "$mosquitto_alone" | stats | fmt_stats) readings/s. Once writing, our gateway from MQTT
  reaches **$(paired mqtt-gateway 5 - "$mosquitto_alone" | percent)** of it.
EOF
fi
cat <<EOF

**Where the two cores went** during the runs above (the same time span as the CPU column; the
broker is Mosquitto, Kafka, Kafka and the REST proxy, or Pulsar): CPU seconds per 100,000 readings
of the contender, of InfluxDB and of the broker, and the machine's busy share of both cores. A run
with the machine near 100 % busy is bound by the sum of these costs, not by waiting.

| path | contender | contender CPU s | InfluxDB CPU s | broker CPU s | machine busy |
| --- | --- | --- | --- | --- | --- |
EOF
for src in "${sources[@]}"; do
  for c in $(contenders "$src"); do
    echo "| $(label "$src") | $c | $(col "$src-$c" 2 | fmt_stats) | $(col "$src-$c" 6 | fmt_stats) | $(col "$src-$c" 7 | fmt_stats) | $(col "$src-$c" 8 | fmt_stats) % |"
  done
  echo "| $(label "$src") | InfluxDB alone (curl, 10,000 × 2, after each round) | – | $(col "beside-$src" 2 | fmt_stats) | – | $(col "beside-$src" 3 | fmt_stats) % |"
done
# The CPU budget of the 80 % target: what two fully busy cores allow per reading at that rate, less
# what InfluxDB alone spends per reading, is what the contender and its broker may spend.
cores=$(nproc)
med() { col "$1" "$2" | cut -d' ' -f1; }
echo
for src in kafka mqtt; do
  measured "$src" || continue
  figure "ingest_${src}_budget_left" "$(awk -v c="$(med "beside-$src" 1)" -v i="$(med "beside-$src" 2)" -v b="$(med "$src-gateway" 7)" -v k="$cores" 'BEGIN { printf "%.2f", k * 100000 / (0.8 * c) - i - b }')"
  awk -v c="$(med "beside-$src" 1)" -v i="$(med "beside-$src" 2)" -v g="$(med "$src-gateway" 2)" -v b="$(med "$src-gateway" 7)" \
    -v k="$cores" -v from="$(label "$src" | cut -d' ' -f1)" 'BEGIN {
      budget = k * 100000 / (0.8 * c)
      printf "- **The CPU budget of 80 %% of InfluxDB alone, from %s**: 80 %% of %s is %s readings/s; %d cores fully busy allow %.2f CPU s per 100,000 readings at that rate for every process of the path. InfluxDB alone spent %.2f and the broker %.2f (during the gateway'"'"'s runs), which leaves %.2f for the gateway; it spent %.2f.\n", from, th(c), th(0.8 * c), k, budget, i, b, budget - i - b, g
    }
    function th(x,   s, r) { s = sprintf("%d", x); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } return s r }'
done
cat <<EOF

Command: \`bench/ingest.sh\`
EOF
[ "$lost_total" -eq 0 ] || { echo "LOST: $lost_total readings missing from InfluxDB" >&2; exit 1; }
