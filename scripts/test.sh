#!/usr/bin/env bash
# `make test`: every test of the project against real servers.
#   1. install the tools the tests use (scripts/setup.sh; cached after the first run)
#   2. check formatting and lints (cargo fmt, clippy -D warnings)
#   3. start the test bench (scripts/services/services.sh up: Mosquitto, Kafka, Pulsar, ...)
#   4. cargo test --workspace --no-fail-fast: unit, integration, end-to-end, browser and smoke tests;
#      every test binary runs even after a failure, so that one failing test hides no other
#   5. stop the bench, also when a step failed
# It ends with the time of each step, every failed test by name, and the line
# `tests: N passed, N failed`; it exits non-zero when any step or test failed.
# The tests' whole output is also kept in target/make-test.log.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS
step_names=()
step_seconds=()
log=target/make-test.log

step() { printf '\n==> %s\n' "$*" >&2; }

# Runs one step and records its time; a failed step ends the run (the ones after it need it).
run_step() {
  local name="$1" t0=$SECONDS
  shift
  step "$name"
  "$@"
  local rc=$?
  step_names+=("$name")
  step_seconds+=($((SECONDS - t0)))
  if [ "$rc" -ne 0 ]; then
    summary
    echo "make test: step '$name' failed (exit $rc)" >&2
    exit "$rc"
  fi
}

summary() {
  local i
  printf '\n==> time of each step\n' >&2
  for i in "${!step_names[@]}"; do
    printf '  %-22s %5ss\n' "${step_names[$i]}" "${step_seconds[$i]}" >&2
  done
  printf '  %-22s %5ss\n' "total" "$((SECONDS - started))" >&2
}

lints() {
  cargo fmt --all -- --check && cargo clippy --workspace --all-targets --quiet -- -D warnings
}

bench_up() {
  scripts/services/services.sh up &&
    # A second `up` must be a quick no-op: the bench is idempotent.
    scripts/services/services.sh up
}

bench_down() {
  scripts/services/services.sh down &&
    # ... and so must a second `down`.
    scripts/services/services.sh down
}

# `cargo test` over the whole workspace without stopping at the first failing binary; the output goes
# to the terminal and to $log, which tell_results reads.
tests() {
  mkdir -p target
  cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee "$log"
  tests_rc=${PIPESTATUS[0]}
  return 0
}

# The failed tests by binary, and the counts over every binary.
tell_results() {
  if [ "$tests_rc" -ne 0 ]; then
    printf '\n==> failed\n' >&2
    # cargo names each binary "Running <source> (<binary path>)"; a failed test prints "test <name> ... FAILED".
    awk '/^ *Running /{bin=$NF; gsub(/[()]/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin)}
         /^test .* \.\.\. FAILED$/{print "  " bin ": " $2}' "$log" >&2
    # A binary that failed without a failed test (it crashed, or did not build) is named by cargo.
    sed -n '/^error: [0-9]* targets\? failed:/,/^$/p' "$log" >&2
  fi
  awk '/^test result: /{for (i = 1; i < NF; i++) {if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i}}
       END {printf "\ntests: %d passed, %d failed\n", p, f}' "$log"
}

tests_rc=0
run_step "setup" scripts/setup.sh
run_step "format and lints" lints
run_step "build" cargo test --workspace --all-targets --no-run --quiet
trap 'step "test bench down (after a failure)"; scripts/services/services.sh down || true' EXIT
run_step "test bench up" bench_up
run_step "tests" tests
trap - EXIT
run_step "test bench down" bench_down
summary
tell_results
if [ "$tests_rc" -ne 0 ]; then
  echo "make test: tests failed (cargo test exit $tests_rc); the whole output is in $log" >&2
  exit "$tests_rc"
fi
echo "make test: all steps passed in $((SECONDS - started))s" >&2
