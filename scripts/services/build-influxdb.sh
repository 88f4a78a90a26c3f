#!/usr/bin/env bash
# Builds InfluxDB OSS 2.7.x (`influxd`) from the Go module proxy and caches the binary at
#   $BENCH_CACHE/bin/influxd-$INFLUXDB_VERSION
# Run by scripts/services/influxdb.sh (svc_install); can also be run by hand. Idempotent: does nothing
# when the binary is cached. Cold build: 10-30 min on 2 cores (the Rust Flux library, then ~1000 Go packages).
#
# Why a wrapper module: influxdb's go.mod has a `replace` directive, so `go install ...@version` refuses it.
# A throw-away module (in $BENCH_CACHE, never in the repo) requires influxdb, repeats its `replace`, and builds
# ./cmd/influxd from the module cache.
# Why the pkg-config wrapper: influxdb links Flux's Rust library (libflux) via cgo `#cgo pkg-config: flux`.
# github.com/influxdata/pkg-config answers that query by building libflux with cargo (into the Go build cache)
# and forwards every other query to the system pkg-config.
# Rust traps: flux pins Rust 1.72 in rust-toolchain.toml (no toolchain downloads here: RUSTUP_TOOLCHAIN selects
# the installed one), denies warnings that newer compilers raise (--cap-lints=warn, see below), and builds with
# LTO (CARGO_PROFILE_RELEASE_LTO=false: a much shorter build, same API).
# No `assets` build tag: the web UI is left out (stub), the HTTP API is complete.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

INFLUXDB_VERSION="${INFLUXDB_VERSION:-2.7.12}"
PKG_CONFIG_WRAPPER_VERSION="v0.2.14"   # the version influxdb v2.7.12's go.mod requires
OUT="$BENCH_CACHE/bin/influxd-$INFLUXDB_VERSION"

if [ -x "$OUT" ]; then exit 0; fi

command -v go >/dev/null || die "go is required to build influxd"
command -v cargo >/dev/null || die "cargo is required to build Flux's Rust library"
apt_install gcc libc6-dev pkg-config

WORK="$BENCH_CACHE/build/influxd-$INFLUXDB_VERSION"
mkdir -p "$WORK/bin" "$BENCH_CACHE/bin"
cd "$WORK"
started=$SECONDS
log "building influxd $INFLUXDB_VERSION (cold: 10-30 min; log: $WORK/build.log)"

# The wrapper module. tools.go imports influxd's main package only so that `go mod tidy` records every module
# it needs (flux among them: the pkg-config wrapper reads its version from this go.mod).
cat > go.mod <<EOF
module smartcity.local/influxd-build

go 1.23.0

require github.com/influxdata/influxdb/v2 v$INFLUXDB_VERSION

// Copied from influxdb v$INFLUXDB_VERSION's go.mod: replace directives of dependencies are not inherited.
replace github.com/nats-io/nats-streaming-server v0.11.2 => github.com/influxdata/nats-streaming-server v0.11.3-0.20201112040610-c277f7560803
EOF
cat > tools.go <<'EOF'
//go:build tools

package tools

import _ "github.com/influxdata/influxdb/v2/cmd/influxd"
EOF

{
  # Check that influxdb's own go.mod has no other replace directive than the one copied above.
  go mod download github.com/influxdata/influxdb/v2@v"$INFLUXDB_VERSION"
  upstream_mod="$(go env GOMODCACHE)/cache/download/github.com/influxdata/influxdb/v2/@v/v$INFLUXDB_VERSION.mod"
  if [ "$(grep -c '=>' "$upstream_mod" || true)" != "1" ]; then
    echo "influxdb v$INFLUXDB_VERSION's go.mod has other replace directives than the one copied; update build-influxdb.sh"
    grep -n '=>' "$upstream_mod"
    exit 1
  fi
  go mod tidy

  GOBIN="$WORK/bin" go install "github.com/influxdata/pkg-config@$PKG_CONFIG_WRAPPER_VERSION"

  toolchain="$(rustup show active-toolchain 2>/dev/null | awk '{print $1}')"
  toolchain="${RUSTUP_TOOLCHAIN:-${toolchain:-stable}}"
  echo "Rust toolchain for libflux: $toolchain"
  export RUSTUP_TOOLCHAIN="$toolchain"
  # --cap-lints=warn must reach every rustc call. RUSTFLAGS alone does not: the wrapper passes --target, and
  # then cargo leaves RUSTFLAGS off host builds, among them flux-core as the build-dependency of flux's
  # build.rs (flux-core's default `strict` feature denies warnings). A RUSTC_WRAPPER adds it everywhere.
  cat > "$WORK/bin/rustc-cap-lints" <<'WRAP'
#!/bin/sh
# RUSTC_WRAPPER: run rustc with --cap-lints=warn unless cargo already chose a cap (registry crates: allow).
rustc="$1"; shift
case " $* " in
  *" --crate-name "*) case " $* " in *--cap-lints*) ;; *) set -- "$@" --cap-lints=warn ;; esac ;;
esac
exec "$rustc" "$@"
WRAP
  chmod +x "$WORK/bin/rustc-cap-lints"
  export RUSTC_WRAPPER="$WORK/bin/rustc-cap-lints"
  export RUSTFLAGS="--cap-lints=warn"
  export CARGO_PROFILE_RELEASE_LTO=false
  export PKG_CONFIG="$WORK/bin/pkg-config"
  export CGO_ENABLED=1
  nice -n 10 go build -trimpath -tags sqlite_foreign_keys,sqlite_json \
    -ldflags "-s -w -X main.version=$INFLUXDB_VERSION" \
    -o "$OUT.tmp" github.com/influxdata/influxdb/v2/cmd/influxd
} > "$WORK/build.log" 2>&1 || { tail -n 60 "$WORK/build.log" >&2; die "influxd build failed (log: $WORK/build.log)"; }

mv "$OUT.tmp" "$OUT"
log "influxd $INFLUXDB_VERSION built in $((SECONDS - started))s: $OUT"
