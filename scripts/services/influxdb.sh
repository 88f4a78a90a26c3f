# InfluxDB OSS 2.7.x (`influxd`, built from the Go module proxy by build-influxdb.sh, cached in $BENCH_CACHE/bin).
#   127.0.0.1:8086  HTTP API v2 (write, Flux query, setup, health)
# Sourced by services.sh. Each start wipes $BENCH_DATA/influxdb and runs the initial setup (POST /api/v2/setup):
# org `digitribe`, bucket `iot_data`, user `bench`, and an all-access operator token generated for this start
# (published as BENCH_INFLUX_TOKEN; a copy sits in $BENCH_DATA/influxdb/credentials for svc_ready/svc_env).
# `services.sh restart influxdb` (BENCH_KEEP_DATA=1) keeps the folder instead: influxd finds its org, bucket,
# token and points again (an acknowledged write is in its WAL, replayed at start), the setup is skipped
# (GET /api/v2/setup answers allowed=false) and the token in the env file stays the same.
# Non-obvious settings: every path (bolt, engine, sqlite) is inside the data folder, otherwise influxd uses
# ~/.influxdbv2; --reporting-disabled stops the phone-home to usage.influxdata.com (unreachable here).

INFLUXDB_VERSION="2.7.12"
INFLUX_PORT=8086
INFLUX_ORG="digitribe"
INFLUX_BUCKET="iot_data"
SVC_READY_TIMEOUT=60

influx_bin() { echo "$BENCH_CACHE/bin/influxd-$INFLUXDB_VERSION"; }
influx_creds() { echo "$BENCH_DATA/influxdb/credentials"; }

svc_install() {
  command -v curl >/dev/null || apt_install curl
  # Builds once (10-30 min cold), then a no-op.
  INFLUXDB_VERSION="$INFLUXDB_VERSION" bash "$REPO_ROOT/scripts/services/build-influxdb.sh"
}

influx_health() {
  curl -fsS --max-time 5 "http://127.0.0.1:$INFLUX_PORT/health" | grep -q '"status": *"pass"'
}

svc_start() {
  stop_pid influxdb   # a start of ours that never became ready
  require_port_free "$INFLUX_PORT"
  local data token password
  data="$(fresh_data_dir influxdb)"   # emptied unless BENCH_KEEP_DATA=1
  start_bg influxdb "$(influx_bin)" \
    --http-bind-address "127.0.0.1:$INFLUX_PORT" \
    --bolt-path "$data/influxd.bolt" --engine-path "$data/engine" --sqlite-path "$data/influxd.sqlite" \
    --reporting-disabled --log-level info
  wait_until "$SVC_READY_TIMEOUT" influxdb influx_health

  # Kept data: already set up, and the token of the first start is still the valid one.
  if curl -fsS --max-time 5 "http://127.0.0.1:$INFLUX_PORT/api/v2/setup" | grep -q '"allowed": *false'; then
    [ -n "$(influx_token)" ] ||
      die "influxdb: the kept data is set up but $(influx_creds) has no token: run 'services.sh down influxdb' then 'up influxdb' (empties it)"
    log "influxdb: already set up (data kept), token unchanged"
    return 0
  fi
  token="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
  password="$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
  ( umask 077; printf 'INFLUX_TOKEN=%s\nINFLUX_PASSWORD=%s\n' "$token" "$password" > "$(influx_creds)" )
  log "influxdb: initial setup (org $INFLUX_ORG, bucket $INFLUX_BUCKET)"
  curl -fsS --max-time 20 -X POST "http://127.0.0.1:$INFLUX_PORT/api/v2/setup" \
    -H 'Content-Type: application/json' \
    -d "{\"username\":\"bench\",\"password\":\"$password\",\"org\":\"$INFLUX_ORG\",\"bucket\":\"$INFLUX_BUCKET\",\"token\":\"$token\"}" \
    >"$data/setup.json" || { cat "$data/setup.json" >&2 2>/dev/null || true; die "influxdb setup failed"; }
}

influx_token() { sed -n 's/^INFLUX_TOKEN=//p' "$(influx_creds)" 2>/dev/null; }

# Ready: health passes and the setup is done (the token sees the bucket in the org).
svc_ready() {
  local token; token="$(influx_token)"
  [ -n "$token" ] && influx_health &&
    curl -fsS --max-time 5 -H "Authorization: Token $token" \
      "http://127.0.0.1:$INFLUX_PORT/api/v2/buckets?org=$INFLUX_ORG&name=$INFLUX_BUCKET" |
      grep -q "\"name\": *\"$INFLUX_BUCKET\""
}

svc_env() {
  echo "BENCH_INFLUX_URL=http://127.0.0.1:$INFLUX_PORT"
  echo "BENCH_INFLUX_ORG=$INFLUX_ORG"
  echo "BENCH_INFLUX_BUCKET=$INFLUX_BUCKET"
  echo "BENCH_INFLUX_TOKEN=$(influx_token)"
}
