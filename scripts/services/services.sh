#!/usr/bin/env bash
# The test bench: real servers started as local processes, no Docker.
#   services.sh up [NAME...]    install what is missing, start, wait until ready (idempotent)
#   services.sh down [NAME...]  stop only the processes this script started (idempotent)
#   services.sh restart NAME... stop then start, keeping the server's data folder (BENCH_KEEP_DATA=1), as a
#                               broker restart in production would; for tests of reconnection. Only servers
#                               whose svc_start uses fresh_data_dir keep their data (today: mosquitto,
#                               pulsar, influxdb; their generated passwords and tokens stay the same too);
#                               the others start empty, as with `up`. Measured (2 cores): mosquitto ~4 s,
#                               influxdb ~3 s.
#   services.sh status          one line per server
# Each server is scripts/services/<NAME>.sh defining:
#   svc_install  install/build what is missing (cached)
#   svc_start    start the process(es) with start_bg, on loopback, with a fresh data folder (fresh_data_dir
#                NAME empties it unless BENCH_KEEP_DATA=1)
#   svc_ready    exit 0 once the server answers at protocol level
#   svc_env      print KEY=value lines (addresses, tokens, certificate paths)
#   svc_stop     (optional) stop; default: stop_pid NAME
#   SVC_DEPS     (optional) servers that must be up first
#   SVC_READY_TIMEOUT (optional) seconds, default 120
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL_SERVICES=(mosquitto kafka kafka-bridge pulsar influxdb postgres frost prometheus)

load_svc() {
  local name="$1"
  [ -f "$REPO_ROOT/scripts/services/$name.sh" ] || die "unknown server '$name' (known: ${ALL_SERVICES[*]})"
  unset -f svc_install svc_start svc_ready svc_env svc_stop 2>/dev/null || true
  SVC_DEPS=(); SVC_READY_TIMEOUT=120; SVC_NAME="$name"
  # shellcheck source=/dev/null
  source "$REPO_ROOT/scripts/services/$name.sh"
  declare -F svc_stop >/dev/null || svc_stop() { stop_pid "$SVC_NAME"; }
}

join_env() {
  { echo "# written by scripts/services/services.sh; source it or read it as KEY=value lines"
    cat "$BENCH_ENVD"/*.env 2>/dev/null || true; } > "$BENCH_DIR/env"
}

up_one() {
  local name="$1" dep
  load_svc "$name"
  for dep in "${SVC_DEPS[@]}"; do up_one "$dep"; load_svc "$name"; done
  if is_running "$name" && svc_ready >/dev/null 2>&1; then
    log "$name already up"
  else
    svc_install
    svc_start
    wait_until "$SVC_READY_TIMEOUT" "$name" svc_ready
  fi
  svc_env | write_env "$name"
  join_env
}

down_one() {
  load_svc "$1"
  svc_stop
  rm -f "$BENCH_ENVD/$1.env"
  join_env
}

cmd="${1:-}"; shift || true
case "$cmd" in
  up)
    [ $# -gt 0 ] || set -- "${ALL_SERVICES[@]}"
    for s in "$@"; do up_one "$s"; done
    log "env file: $BENCH_DIR/env"
    "$REPO_ROOT/scripts/services/simulator-config.sh" ;;
  down)
    [ $# -gt 0 ] || set -- "${ALL_SERVICES[@]}"
    for s in "$@"; do load_svc "$s"; done  # unknown names fail before anything stops
    # Reverse of ALL_SERVICES, whatever order the names came in: dependents (frost, kafka-bridge)
    # stop before what they depend on.
    for ((i=${#ALL_SERVICES[@]}-1; i>=0; i--)); do
      for s in "$@"; do if [ "$s" = "${ALL_SERVICES[i]}" ]; then down_one "$s"; fi; done
    done ;;
  restart)
    [ $# -gt 0 ] || die "restart needs server names (servers: ${ALL_SERVICES[*]})"
    for s in "$@"; do load_svc "$s"; done  # unknown names fail before anything stops
    export BENCH_KEEP_DATA=1
    for s in "$@"; do down_one "$s"; up_one "$s"; done ;;
  status)
    for s in "${ALL_SERVICES[@]}"; do
      load_svc "$s"
      if is_running "$s" && svc_ready >/dev/null 2>&1; then st="up"
      elif is_running "$s"; then st="started, not ready"
      else st="down"; fi
      printf '%-13s %s\n' "$s" "$st"
    done ;;
  *) echo "usage: $0 up|down|restart|status [NAME...]   (servers: ${ALL_SERVICES[*]})" >&2; exit 2 ;;
esac
