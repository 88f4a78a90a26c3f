# The two commands a user needs:
#   make run    build and start the embedded demo (MQTT broker + simulator + gateway + map dashboard)
#   make test   install and start the real test servers, run every test, stop the servers
# Everything else here is a building block of those two.
SHELL := /bin/bash
S ?=

.PHONY: run test build setup services-up services-down services-status fmt lint bench

run:
	@scripts/run-demo.sh

test:
	@scripts/test.sh

build:
	cargo build --release --bin simulator --bin gateway --bin distribution

setup:
	@scripts/setup.sh

services-up:
	@scripts/services/services.sh up $(S)

services-down:
	@scripts/services/services.sh down $(S)

services-status:
	@scripts/services/services.sh status

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench:
	@bench/run.sh
