# Shared helpers for the test bench scripts. Sourced by services.sh and by each
# scripts/services/<name>.sh; never run directly.
#
# Layout (why: downloads and builds survive fresh clones, run state does not):
#   $BENCH_CACHE  (~/.cache/smartcity-bench)  downloads, Maven classpaths, built binaries
#   $BENCH_DIR    (<repo>/target/bench)       pids, logs, throw-away data, env files
#     logs/<name>.log       one log per server
#     run/<name>.pid        pid of the process we started (down stops only these)
#     data/<name>/          data folder, wiped on every start (kept by `services.sh restart`, for the
#                           servers whose svc_start uses fresh_data_dir: mosquitto, pulsar, influxdb)
#     env.d/<name>.env      KEY=value lines this server publishes
#     env                   all env.d files joined: what tests and binaries read
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH_CACHE="${BENCH_CACHE:-$HOME/.cache/smartcity-bench}"
BENCH_DIR="${BENCH_DIR:-$REPO_ROOT/target/bench}"
BENCH_LOGS="$BENCH_DIR/logs"
BENCH_RUN="$BENCH_DIR/run"
BENCH_DATA="$BENCH_DIR/data"
BENCH_ENVD="$BENCH_DIR/env.d"
mkdir -p "$BENCH_CACHE" "$BENCH_LOGS" "$BENCH_RUN" "$BENCH_DATA" "$BENCH_ENVD"

log()  { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# apt_install PKG...: install missing Debian packages without starting their services.
apt_install() {
  local missing=()
  # dpkg -s alone also succeeds for removed-but-not-purged packages ("deinstall ok config-files").
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  # Debian packages start their daemons on install; we start our own, with our config.
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ ! -f "$BENCH_CACHE/.apt-updated" ] || [ -n "$(find "$BENCH_CACHE/.apt-updated" -mmin +1440 2>/dev/null)" ]; then
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq && touch "$BENCH_CACHE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pidfile() { echo "$BENCH_RUN/$1.pid"; }

# fresh_data_dir NAME: print the data folder of NAME, emptied first unless BENCH_KEEP_DATA=1 (set by
# `services.sh restart`, so a test can restart a server and find its data again).
fresh_data_dir() {
  local dir="$BENCH_DATA/$1"
  if [ "${BENCH_KEEP_DATA:-0}" = 1 ] && [ -d "$dir" ]; then
    log "$1: keeping the data in $dir (BENCH_KEEP_DATA=1)"
  else
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  echo "$dir"
}

# require_disk_room NAME DIR MAX_PERCENT: fail with a clear message when the disk holding DIR is fuller than
# MAX_PERCENT, computed as Java's disk checkers do ((size - available) / size), before NAME starts and then
# fails in a way that names no cause (Pulsar's bookie turns read-only and the broker never becomes ready).
require_disk_room() {
  local name="$1" dir="$2" max="$3" size avail used
  read -r size avail < <(df -P -B1 "$dir" | awk 'NR == 2 {print $2, $4}')
  [ -n "$size" ] && [ "$size" -gt 0 ] || return 0
  used=$(( (size - avail) * 100 / size ))
  if [ "$used" -gt "$max" ]; then
    die "$name: the disk holding $dir is ${used}% full ($((avail / 1024 / 1024 / 1024)) GiB free); $name needs it at most ${max}% full. Free space first: old clones, target/ folders (cargo clean), $BENCH_DATA"
  fi
}

# is_running NAME: our recorded process for NAME is alive.
is_running() {
  local f; f="$(pidfile "$1")"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start_bg NAME CMD...: start CMD detached (own session), log to logs/NAME.log, record its pid.
start_bg() {
  local name="$1"; shift
  log "starting $name (log: $BENCH_LOGS/$name.log)"
  setsid "$@" >>"$BENCH_LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile "$name")"
}

# stop_pid NAME: stop the process group we started for NAME (TERM, then KILL after 20 s).
stop_pid() {
  local name="$1" f pid
  f="$(pidfile "$name")"
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_until SECONDS NAME CMD...: poll CMD every second until it succeeds; on timeout show the log tail and fail.
wait_until() {
  local timeout="$1" name="$2"; shift 2
  local start=$SECONDS
  while ! "$@" >/dev/null 2>&1; do
    if [ -f "$(pidfile "$name")" ] && ! is_running "$name"; then
      tail -n 40 "$BENCH_LOGS/$name.log" >&2 || true
      die "$name exited during start-up (log: $BENCH_LOGS/$name.log)"
    fi
    if [ $((SECONDS - start)) -ge "$timeout" ]; then
      tail -n 40 "$BENCH_LOGS/$name.log" >&2 || true
      if grep -q 'Used space fraction' "$BENCH_LOGS/$name.log" 2>/dev/null; then
        die "$name not ready after ${timeout}s: its disk is too full (see 'Used space fraction' in $BENCH_LOGS/$name.log); free space and retry"
      fi
      die "$name not ready after ${timeout}s (log: $BENCH_LOGS/$name.log)"
    fi
    sleep 1
  done
  log "$name ready in $((SECONDS - start))s"
}

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
require_port_free() { port_free "$1" || die "port $1 is already in use by another process: stop it, or run 'make services-down'"; }

# write_env NAME <<EOF ... : publish this server's KEY=value lines.
write_env() { cat > "$BENCH_ENVD/$1.env"; }

# Maven: resolve a tiny generated POM's runtime classpath, cached by POM content.
# maven_classpath NAME POM_TEXT -> prints the classpath
maven_classpath() {
  local name="$1" pom="$2" dir hash
  hash="$(printf '%s' "$pom" | sha256sum | cut -c1-16)"
  dir="$BENCH_CACHE/maven/$name-$hash"
  if [ ! -s "$dir/classpath.txt" ]; then
    mkdir -p "$dir"
    printf '%s' "$pom" > "$dir/pom.xml"
    log "resolving $name jars from Maven Central (cached afterwards)"
    mvn -B -q -f "$dir/pom.xml" -s "$REPO_ROOT/scripts/services/maven-settings.xml" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath \
      -Dmdep.outputFile="$dir/classpath.txt" >"$dir/mvn.log" 2>&1 \
      || { tail -n 30 "$dir/mvn.log" >&2; die "maven could not resolve $name"; }
  fi
  cat "$dir/classpath.txt"
}
