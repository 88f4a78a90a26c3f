#!/usr/bin/env bash
# Installs what `make test` needs beyond the Rust toolchain, once (idempotent, quiet when done):
#   chromium            headless browser test of the dashboard
#   gdal-bin            ogrinfo, GDAL's OGC API - Features client (OAPIF driver), reads the gateway's /ogc
#   mosquitto-clients   mosquitto_sub/pub, used by the end-to-end demo test
#   prometheus          promtool, which lints our /metrics expositions
#   protobuf-compiler   protoc, needed to build the Pulsar client crate
#   libssl-dev, libsasl2-dev, pkg-config, cmake   building librdkafka (Kafka client) with TLS and SASL
# The servers of the test bench install themselves: scripts/services/*.sh.
source "$(dirname "${BASH_SOURCE[0]}")/services/lib.sh"

command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
apt_install chromium gdal-bin mosquitto-clients prometheus protobuf-compiler libssl-dev libsasl2-dev pkg-config cmake
