#!/usr/bin/env bash
# `make test`: every test of the project against real servers.
#   1. install the tools the tests use (scripts/setup.sh; cached after the first run)
#   2. check formatting and lints (cargo fmt, clippy -D warnings)
#   3. start the test bench (scripts/services/services.sh up: Mosquitto, Kafka, Pulsar, ...)
#   4. cargo test --workspace: unit, integration, end-to-end, browser and smoke tests
#   5. stop the bench, also when a step failed
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n==> %s\n' "$*" >&2; }
started=$SECONDS

step "setup"
scripts/setup.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build"
cargo test --workspace --all-targets --no-run --quiet

step "test bench up"
trap 'step "test bench down (after a failure)"; scripts/services/services.sh down || true' EXIT
scripts/services/services.sh up
# A second `up` must be a quick no-op: the bench is idempotent.
scripts/services/services.sh up

step "tests"
cargo test --workspace --all-targets

step "test bench down"
trap - EXIT
scripts/services/services.sh down
# ... and so must a second `down`.
scripts/services/services.sh down
echo "make test: all steps passed in $((SECONDS - started))s" >&2
