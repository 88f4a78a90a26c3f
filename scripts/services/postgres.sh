# PostgreSQL 15 + PostGIS 3 (Debian packages), our own throw-away cluster on 127.0.0.1:5432.
# Used by FROST-Server (frost.sh). Sourced by services.sh; see lib.sh for the helpers.
#
# - We never touch a system cluster: initdb into a fresh folder at every start, run `postgres` in the
#   foreground as user `postgres` (it refuses to run as root), TCP on 127.0.0.1 only, no Unix socket
#   (socket paths are limited to ~107 bytes and /var/run/postgresql may not exist).
# - Durability is off (fsync, synchronous_commit, full_page_writes): the data is thrown away anyway.
# - The data folder is target/bench/data/postgres when user `postgres` can reach it; a checkout under a
#   private home (e.g. /root, mode 700) cannot be traversed by that user, so we then use a folder in /tmp.
# - Role and database `frost` (owner), with the postgis extension; superuser `postgres` has a throw-away
#   password too (scram-sha-256 for every TCP login).

PG_VERSION=15
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
PG_PORT=5432
PG_SUPER_PASSWORD="bench-postgres-pw"
PG_FROST_PASSWORD="frost-bench-pw"
SVC_READY_TIMEOUT=90

# Prefix that runs a command as user postgres (nothing when we are not root). setpriv execs, without
# forking, so the pid start_bg records is the postmaster's own.
PG_AS_USER=()
[ "$(id -u)" -ne 0 ] || PG_AS_USER=(setpriv --reuid=postgres --regid=postgres --init-groups --)
pg_user_exec() { (cd / && "${PG_AS_USER[@]}" "$@"); }

pg_datadir() {
  if [ "$(id -u)" -ne 0 ] || pg_user_exec test -x "$BENCH_DATA" 2>/dev/null; then
    echo "$BENCH_DATA/postgres"
  else
    echo "/tmp/smartcity-bench-postgres-$(printf '%s' "$BENCH_DIR" | sha256sum | cut -c1-12)"
  fi
}

pg_psql() { # pg_psql USER PASSWORD DB ARGS...
  local user="$1" pw="$2" db="$3"; shift 3
  PGPASSWORD="$pw" PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$user" -d "$db" \
    -v ON_ERROR_STOP=1 "$@"
}

svc_install() {
  apt_install "postgresql-$PG_VERSION" "postgresql-$PG_VERSION-postgis-3" "postgresql-client-$PG_VERSION"
  getent passwd postgres >/dev/null || die "user 'postgres' missing after installing postgresql-$PG_VERSION"
}

svc_start() {
  port_free "$PG_PORT" || die "port $PG_PORT is already in use, probably by a system PostgreSQL cluster \
(see 'pg_lsclusters'; stop it with 'pg_ctlcluster $PG_VERSION main stop') or another bench: \
our own cluster needs 127.0.0.1:$PG_PORT"
  local dir pwfile
  dir="$(pg_datadir)"
  [ "$dir" = "$BENCH_DATA/postgres" ] || log "postgres: user 'postgres' cannot traverse $BENCH_DATA, data goes to $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  pwfile="$(mktemp)"
  printf '%s\n' "$PG_SUPER_PASSWORD" > "$pwfile"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir" "$pwfile"; fi
  chmod 700 "$dir"
  pg_user_exec "$PG_BIN/initdb" -D "$dir" -U postgres -E UTF8 --no-locale --no-sync \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 --pwfile="$pwfile" \
      >"$BENCH_LOGS/postgres-initdb.log" 2>&1 \
    || { rm -f "$pwfile"; tail -n 20 "$BENCH_LOGS/postgres-initdb.log" >&2; die "initdb failed"; }
  rm -f "$pwfile"
  cat >> "$dir/postgresql.conf" <<EOF
# test bench settings (scripts/services/postgres.sh)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
shared_buffers = 128MB
logging_collector = off
EOF
  (cd / && start_bg postgres "${PG_AS_USER[@]}" "$PG_BIN/postgres" -D "$dir")
  # The role, database and extension need a running server: create them here, once it accepts logins.
  wait_until 60 postgres "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
  pg_psql postgres "$PG_SUPER_PASSWORD" postgres \
    -c "CREATE ROLE frost LOGIN PASSWORD '$PG_FROST_PASSWORD'" \
    -c "CREATE DATABASE frost OWNER frost" >/dev/null
  pg_psql postgres "$PG_SUPER_PASSWORD" frost -c "CREATE EXTENSION postgis" >/dev/null
}

svc_ready() {
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || return 1
  [ "$(pg_psql frost "$PG_FROST_PASSWORD" frost -tAc "SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")" = 1 ]
}

svc_stop() {
  # SIGINT = "fast" shutdown (SIGTERM would wait for every client, FROST's pool included, to leave).
  local f pid
  f="$(pidfile postgres)"
  if [ -f "$f" ] && pid="$(cat "$f")" && kill -0 "$pid" 2>/dev/null; then
    log "stopping postgres (pid $pid, fast shutdown)"
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  stop_pid postgres
}

svc_env() {
  echo "BENCH_PG_URL=postgres://frost:$PG_FROST_PASSWORD@127.0.0.1:$PG_PORT/frost"
}
