#!/usr/bin/env bash
# Installs the tools the benchmarks compare us with, from the package registries, once; later calls
# are quick no-ops (everything is cached in $BENCH_CACHE/peers, like the test bench's servers):
#   telegraf        1.37.2 from the Go module proxy, built with only the plugins the cases use (a plain
#                   `go install ...@latest` fails: two of its plugin modules cannot be verified);
#                   processors.scale converts the units bench/formats.sh's payloads carry
#   paho-mqtt       2.1.0 from PyPI, in a virtualenv: the original Python system's MQTT client
#   mqtt (MQTT.js)  5.14.1 from npm
#   mosquitto_pub   Debian mosquitto-clients (the C client: the client-side ceiling)
#   perf            Debian linux-perf, for the profiles
# Prints KEY=path lines (TELEGRAF, PYTHON, NODE_PATH) for the callers to eval.
# Usage: bench/peers.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/services/lib.sh"

TELEGRAF_VERSION=1.37.2
TELEGRAF_TAGS="custom,inputs.mqtt_consumer,inputs.kafka_consumer,outputs.influxdb_v2,parsers.json_v2,processors.scale"
PAHO_VERSION=2.1.0
MQTTJS_VERSION=5.14.1
peers="$BENCH_CACHE/peers"
mkdir -p "$peers"

apt_install mosquitto-clients linux-perf

# One binary per set of plugins: adding one rebuilds it.
telegraf="$peers/telegraf-$TELEGRAF_VERSION-$(echo "$TELEGRAF_TAGS" | md5sum | cut -c1-8)/telegraf"
if [ ! -x "$telegraf" ]; then
  command -v go >/dev/null || die "go not found: Telegraf is built from the Go module proxy (install Go 1.24+)"
  log "building telegraf $TELEGRAF_VERSION ($TELEGRAF_TAGS; about a minute)"
  # The module cache is the user's own (GOMODCACHE): the download is shared with other Go builds.
  GOBIN="$(dirname "$telegraf")" GOFLAGS=-mod=mod go install -tags "$TELEGRAF_TAGS" \
    -ldflags "-s -w -X github.com/influxdata/telegraf/internal.Version=$TELEGRAF_VERSION" \
    "github.com/influxdata/telegraf/cmd/telegraf@v$TELEGRAF_VERSION" >&2 ||
    die "building telegraf failed (see above)"
fi

venv="$peers/paho-$PAHO_VERSION"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import paho.mqtt' 2>/dev/null; then
  log "installing paho-mqtt $PAHO_VERSION into $venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet "paho-mqtt==$PAHO_VERSION" >&2 || die "pip install paho-mqtt failed"
fi

node_dir="$peers/mqttjs-$MQTTJS_VERSION"
if [ ! -f "$node_dir/node_modules/mqtt/package.json" ]; then
  command -v npm >/dev/null || die "npm not found: MQTT.js comes from npm (install Node.js 18+)"
  log "installing mqtt (MQTT.js) $MQTTJS_VERSION into $node_dir"
  mkdir -p "$node_dir"
  npm install --silent --no-audit --no-fund --prefix "$node_dir" "mqtt@$MQTTJS_VERSION" >&2 || die "npm install mqtt failed"
fi

echo "TELEGRAF=$telegraf"
echo "PYTHON=$venv/bin/python"
echo "NODE_PATH=$node_dir/node_modules"
