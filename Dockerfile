# The smart-city binaries (simulator, gateway, distribution) in one small image, plus the Mosquitto
# exporter given a shell for its healthcheck. Used by docker-compose.yml; on its own:
#
#   docker build -t smartcity:0.1.0 .
#   docker run --rm smartcity:0.1.0 gateway --help
#
# Base images are pinned: the builder is the toolchain the project is tested with (rust-version in
# Cargo.toml is the floor), the runtime the same Debian release (bookworm) as the builder, so the
# OpenSSL the Kafka client was linked against (libssl3) is the one installed.

# ---------------------------------------------------------------------------------------------------
# Builder: rdkafka builds librdkafka from its bundled source (./configure + make, `ssl` feature:
# OpenSSL headers; zlib for its default libz feature), and the Pulsar client's build script runs protoc.
FROM rust:1.95.0-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler libssl-dev pkg-config zlib1g-dev make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# The whole workspace (every member's manifest must be there for Cargo to load it); .dockerignore
# keeps out target/, data/, .git and the .env secrets.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin simulator --bin gateway --bin distribution \
 && mkdir -p /out \
 && cp target/release/simulator target/release/gateway target/release/distribution /out/

# ---------------------------------------------------------------------------------------------------
# sapcc/mosquitto-exporter is a FROM-scratch image: no shell, so no healthcheck could run in it. Its
# binary (static Go) is copied onto busybox, whose wget probes /metrics.
FROM sapcc/mosquitto-exporter:0.8.0 AS mosquitto-exporter-bin

FROM busybox:1.36.1 AS mosquitto-exporter
COPY --from=mosquitto-exporter-bin /mosquitto_exporter /mosquitto_exporter
USER 65534:65534
EXPOSE 9234
ENTRYPOINT ["/mosquitto_exporter"]

# ---------------------------------------------------------------------------------------------------
# Runtime (the default target): the three binaries, run as an unprivileged user. The working
# directory /srv/smartcity is where the compose stack mounts each binary's config and certificates,
# and data/ (a volume) is where the gateway keeps its spool and dead letters.
FROM debian:12.11-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 smartcity \
 && useradd --system --uid 10001 --gid smartcity --home-dir /srv/smartcity --shell /usr/sbin/nologin smartcity \
 && install -d -o smartcity -g smartcity /srv/smartcity /srv/smartcity/data
COPY --from=builder /out/ /usr/local/bin/
WORKDIR /srv/smartcity
USER 10001:10001
ENV RUST_LOG=info
# simulator metrics, distribution metrics, gateway dashboard + API + metrics
EXPOSE 8001 8002 8080
CMD ["gateway", "--help"]
