#!/usr/bin/env bash
# The bench Mosquitto's TLS listener users, changed at runtime as an operator would rotate a password:
#   mosquitto-user.sh set USER PASSWORD   add USER or change its password, then reload (SIGHUP)
#   mosquitto-user.sh delete USER         remove USER, then reload
# Mosquitto re-reads its password file on SIGHUP; connected clients stay connected, new connections
# (a reconnect) are checked against the new file. Tests use their own user, never the bench's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MOSQ_DIR="$BENCH_DATA/mosquitto"
[ -f "$MOSQ_DIR/passwd" ] || die "no bench Mosquitto password file at $MOSQ_DIR/passwd: run services.sh up mosquitto"
is_running mosquitto || die "the bench Mosquitto is not running"
case "${1:-}" in
  set) [ $# -eq 3 ] || die "usage: $0 set USER PASSWORD"; mosquitto_passwd -b "$MOSQ_DIR/passwd" "$2" "$3" ;;
  delete) [ $# -eq 2 ] || die "usage: $0 delete USER"; mosquitto_passwd -D "$MOSQ_DIR/passwd" "$2" ;;
  *) die "usage: $0 set USER PASSWORD | delete USER" ;;
esac
# mosquitto_passwd may write a new file: give it back to the user the broker runs as (it reads the
# file after dropping root), or every login would fail after the reload.
if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then chown mosquitto: "$MOSQ_DIR/passwd"; fi
chmod 600 "$MOSQ_DIR/passwd"
kill -HUP "$(cat "$(pidfile mosquitto)")"
