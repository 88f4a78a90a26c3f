#!/usr/bin/env bash
# A SCRAM-SHA-256 user of the bench Kafka's SCRAM listener (127.0.0.1:9095), created or given a new
# password at runtime, as an operator rotates a credential:
#   kafka-scram-user.sh set USER PASSWORD
# Open connections of that user must log in again within 5 s (connections.max.reauth.ms), so the
# change takes effect at once. Tests use their own user, never the bench's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SVC_NAME=kafka
source "$REPO_ROOT/scripts/services/kafka.sh"
is_running kafka || die "the bench Kafka is not running"
case "${1:-}" in
  set) [ $# -eq 3 ] || die "usage: $0 set USER PASSWORD"; kafka_scram_user "$2" "$3" >/dev/null ;;
  *) die "usage: $0 set USER PASSWORD" ;;
esac
