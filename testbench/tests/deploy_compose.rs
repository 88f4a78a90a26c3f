//! The docker compose stack (`docker-compose.yml`, plus `docker-compose.distribution.yml`), proven as
//! far as a machine without a container engine allows:
//!
//! - both files load with Docker Compose's own loader (compose-go, through `tools/composecheck`):
//!   merge, interpolation from `.env.example`, the Compose Specification's schema, consistency;
//!   without an env file the load fails on a missing secret (secrets come only from `.env`);
//! - every image is pinned (a tag, never `latest`), every service has a healthcheck, and every
//!   `depends_on` waits for `service_healthy`;
//! - host ports are unique across the whole stack;
//! - every file or folder the stack bind-mounts exists in the repository, except the certificates,
//!   which must be those `config/compose/certs.sh` makes (it is run, and they must then exist);
//!   build contexts exist and name stages of the Dockerfile;
//! - each `config/compose/*.toml` passes `--check-config` of the binary the stack gives it to, run in
//!   a folder laid out as the container sees it (its bind mounts under the working directory), so
//!   that relative paths such as `certs/ca.pem` are checked as the container resolves them.
//!
//! Needs Go (`go` on PATH, `$GO`, or /usr/local/go/bin/go) and the Go module proxy the first time
//! (compose-go is cached under target/composecheck/), `openssl`, and builds the three binaries with
//! `cargo build --bin simulator --bin gateway --bin distribution` (a no-op when they are fresh).
//! No server is started. Run alone: `cargo test -p smartcity-testbench --test deploy_compose`.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const BASE: &str = "docker-compose.yml";
const OVERLAY: &str = "docker-compose.distribution.yml";
const ENV_EXAMPLE: &str = ".env.example";
/// The script that makes the stack's certificates, and what it makes that the stack mounts.
const CERTS_SCRIPT: &str = "config/compose/certs.sh";
const CERTS_DIR: &str = "target/compose/certs";
const GENERATED_CERTS: [&str; 3] = ["ca.pem", "mosquitto-tls.pem", "mosquitto-tls.key"];
/// Our services: (compose service, binary, the env variable naming its config file).
const OURS: [(&str, &str, &str); 3] = [
    ("simulator", "simulator", "SMARTCITY_SIMULATOR_CONFIG"),
    ("gateway", "gateway", "SMARTCITY_GATEWAY_CONFIG"),
    ("distribution", "distribution", "SMARTCITY_DISTRIBUTION_CONFIG"),
];
/// The stack the issue asks for, by compose service name.
const EXPECTED_BASE: [&str; 20] = [
    "emqx",
    "mosquitto",
    "mosquitto-tls",
    "mosquitto-exporter",
    "pulsar",
    "redpanda",
    "orion-mongo",
    "orion-ld",
    "stellio-kafka",
    "stellio-postgres",
    "stellio-search-service",
    "stellio-subscription-service",
    "stellio-api-gateway",
    "frost-db",
    "frost",
    "influxdb",
    "prometheus",
    "grafana",
    "gateway",
    "simulator",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testbench has a parent").to_path_buf()
}

/// target/<profile>, from this test's own executable (target/<profile>/deps/deploy_compose-…).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(Path::parent).expect("test executable under target/<profile>/deps").to_path_buf()
}

fn scratch() -> PathBuf {
    profile_dir().parent().expect("target dir").join("composecheck")
}

fn go() -> PathBuf {
    if let Some(go) = std::env::var_os("GO") {
        return PathBuf::from(go);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("go");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let fallback = PathBuf::from("/usr/local/go/bin/go");
    assert!(
        fallback.is_file(),
        "Go is required to load the compose files with compose-go (tools/composecheck): install it \
         (https://go.dev/dl/) or set GO=/path/to/go"
    );
    fallback
}

/// Builds tools/composecheck once per test process; the module and build caches live under
/// target/composecheck/ (writable, so `cargo clean` can remove them), nothing is written in the repo.
fn checker() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = scratch().join("bin/composecheck");
        let status = Command::new(go())
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(repo().join("tools/composecheck"))
            .env("GOFLAGS", "-mod=mod -modcacherw -buildvcs=false")
            .env("GOMODCACHE", scratch().join("gomod"))
            .env("GOCACHE", scratch().join("gocache"))
            .env("GOTOOLCHAIN", "local")
            .status()
            .expect("running go build of tools/composecheck");
        assert!(status.success(), "go build of tools/composecheck failed ({status})");
        out
    })
}

/// The loader's verdict on `files` with `env_file`: the resolved project, or its error message.
fn load(files: &[&str], env_file: &str) -> Result<Value, String> {
    let mut cmd = Command::new(checker());
    for f in files {
        cmd.arg("-f").arg(f);
    }
    let out = cmd.arg("--env-file").arg(env_file).current_dir(repo()).output().expect("running composecheck");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("composecheck prints JSON"))
}

fn stack() -> &'static Value {
    static STACK: OnceLock<Value> = OnceLock::new();
    STACK.get_or_init(|| {
        load(&[BASE, OVERLAY], ENV_EXAMPLE)
            .unwrap_or_else(|e| panic!("compose-go refused {BASE} + {OVERLAY} with {ENV_EXAMPLE}:\n{e}"))
    })
}

fn services(project: &Value) -> &serde_json::Map<String, Value> {
    project["services"].as_object().expect("`services` is an object")
}

fn names(project: &Value) -> BTreeSet<String> {
    services(project).keys().cloned().collect()
}

/// Runs config/compose/certs.sh once (it keeps valid certificates).
fn make_certs() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = Command::new("bash").arg(repo().join(CERTS_SCRIPT)).current_dir(repo()).output().expect("bash");
        assert!(
            out.status.success(),
            "{CERTS_SCRIPT} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

#[test]
fn both_files_load_with_docker_composes_own_loader() {
    let base = load(&[BASE], ENV_EXAMPLE).unwrap_or_else(|e| panic!("compose-go refused {BASE}:\n{e}"));
    let expected: BTreeSet<String> = EXPECTED_BASE.iter().map(|s| s.to_string()).collect();
    assert_eq!(names(&base), expected, "the services of {BASE}");
    assert_eq!(base["name"], "smartcity");

    let merged = stack();
    let added: Vec<String> = names(merged).difference(&names(&base)).cloned().collect();
    assert_eq!(added, ["distribution"], "{OVERLAY} adds the distribution service, and only it");
    // The overlay's relative paths resolve against the project directory (the repository).
    let dist = &services(merged)["distribution"];
    assert_eq!(dist["build"]["context"].as_str().map(PathBuf::from), Some(repo()), "{dist:#}");
}

#[test]
fn secrets_come_only_from_the_env_file() {
    // Without .env (here: an empty env file) the loader stops on the first required secret.
    let err = load(&[BASE, OVERLAY], "/dev/null").expect_err("the stack must not load without its secrets");
    assert!(err.contains("required variable") && err.contains(".env"), "{err}");
    // .env is never committed.
    let out =
        Command::new("git").args(["check-ignore", "-q", ".env"]).current_dir(repo()).status().expect("running git");
    assert!(out.success(), ".env must be ignored by git (.gitignore)");
    // Every secret the stack requires has an example value in .env.example: proven by the load above
    // (stack()), which would fail on a missing one.
    let _ = stack();
}

#[test]
fn every_image_is_pinned_and_every_service_healthchecked_and_waits_for_healthy_dependencies() {
    for (name, svc) in services(stack()) {
        let image = svc["image"].as_str().unwrap_or_else(|| panic!("{name}: no image"));
        let reference = image.split('@').next().unwrap();
        let last = reference.rsplit('/').next().unwrap();
        let tag = last.split_once(':').map(|(_, t)| t).unwrap_or_else(|| panic!("{name}: image {image} has no tag"));
        assert!(tag != "latest" && !tag.ends_with("-latest"), "{name}: image {image} is not pinned");
        assert!(tag.chars().any(|c| c.is_ascii_digit()), "{name}: tag of {image} names no version");

        let hc = &svc["healthcheck"];
        assert!(hc.is_object() && hc["disable"] != true, "{name}: no healthcheck");
        let test = hc["test"].as_array().unwrap_or_else(|| panic!("{name}: healthcheck without test: {hc}"));
        assert!(
            test.len() >= 2 && matches!(test[0].as_str(), Some("CMD" | "CMD-SHELL")),
            "{name}: healthcheck test {test:?}"
        );

        if let Some(deps) = svc["depends_on"].as_object() {
            for (dep, how) in deps {
                assert_eq!(how["condition"], "service_healthy", "{name} depends on {dep} without waiting for it");
                assert!(services(stack()).contains_key(dep), "{name} depends on unknown {dep}");
            }
        }
    }
}

#[test]
fn host_ports_are_unique_across_the_stack() {
    // Keyed by port and protocol only: a port bound on one interface collides with the same port
    // bound on all of them, so the host address is not part of the key.
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    for (name, svc) in services(stack()) {
        for port in svc["ports"].as_array().into_iter().flatten() {
            let published = match &port["published"] {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue, // not published on the host
            };
            let protocol = port["protocol"].as_str().unwrap_or("tcp").to_string();
            if let Some(other) = seen.insert((published.clone(), protocol.clone()), name.clone()) {
                panic!("host port {published}/{protocol} is published by both {other} and {name}");
            }
        }
    }
    assert!(seen.len() >= 15, "fewer published ports than expected: {seen:?}");
}

#[test]
fn every_mounted_file_exists_or_is_made_by_the_certs_script() {
    make_certs();
    let repo = repo();
    let certs = repo.join(CERTS_DIR);
    let declared_volumes: BTreeSet<String> =
        stack()["volumes"].as_object().map(|v| v.keys().cloned().collect()).unwrap_or_default();
    let dockerfile = std::fs::read_to_string(repo.join("Dockerfile")).expect("Dockerfile");
    for (name, svc) in services(stack()) {
        for v in svc["volumes"].as_array().into_iter().flatten() {
            let source = v["source"].as_str().unwrap_or_default();
            match v["type"].as_str() {
                Some("bind") => {
                    let path = PathBuf::from(source);
                    assert!(path.starts_with(&repo), "{name}: mounts {source}, outside the repository");
                    if path.starts_with(&certs) {
                        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
                        assert!(
                            GENERATED_CERTS.contains(&file) && path.parent() == Some(certs.as_path()),
                            "{name}: mounts {source}, which {CERTS_SCRIPT} does not make"
                        );
                        assert!(path.is_file(), "{name}: {source} missing after {CERTS_SCRIPT}");
                        assert_eq!(
                            v["bind"]["create_host_path"], false,
                            "{name}: a missing {file} would become a folder"
                        );
                    } else {
                        assert!(path.exists(), "{name}: mounts {source}, which does not exist");
                    }
                }
                Some("volume") => {
                    assert!(declared_volumes.contains(source), "{name}: named volume {source} not declared")
                }
                other => panic!("{name}: unexpected mount type {other:?}: {v}"),
            }
        }
        if let Some(build) = svc["build"].as_object() {
            let context = PathBuf::from(build["context"].as_str().expect("build context"));
            assert!(context.is_dir(), "{name}: build context {} missing", context.display());
            let file = build.get("dockerfile").and_then(Value::as_str).unwrap_or("Dockerfile");
            assert!(context.join(file).is_file(), "{name}: {file} missing");
            if let Some(target) = build.get("target").and_then(Value::as_str) {
                let stage = format!(" AS {target}\n");
                assert!(dockerfile.contains(&stage), "{name}: the Dockerfile has no stage `{target}`");
            }
        }
    }
}

/// The three binaries, built (or found fresh) in this test's profile folder.
fn binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = profile_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--bin", "simulator", "--bin", "gateway", "--bin", "distribution"]);
        if dir.file_name().and_then(|n| n.to_str()) == Some("release") {
            cmd.arg("--release");
        }
        let status = cmd.current_dir(repo()).status().expect("running cargo build");
        assert!(status.success(), "cargo build of the binaries failed ({status})");
        dir
    })
}

#[test]
fn our_binaries_accept_the_configs_the_stack_gives_them() {
    make_certs();
    let repo = repo();
    let mut checked = BTreeSet::new();
    for (service, bin, config_env) in OURS {
        let svc = &services(stack())[service];
        let command: Vec<&str> = svc["command"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        assert_eq!(command.first(), Some(&bin), "{service}: command {command:?}");
        let workdir = PathBuf::from(svc["working_dir"].as_str().unwrap_or_else(|| panic!("{service}: no working_dir")));
        let config = PathBuf::from(
            svc["environment"][config_env].as_str().unwrap_or_else(|| panic!("{service}: {config_env} not set")),
        );

        // The container's view of its working directory: every bind mount under it, as a symlink.
        let sandbox = scratch().join("sandbox").join(service);
        let _ = std::fs::remove_dir_all(&sandbox);
        std::fs::create_dir_all(&sandbox).unwrap();
        let mut config_source = None;
        for v in svc["volumes"].as_array().into_iter().flatten().filter(|v| v["type"] == "bind") {
            let target = PathBuf::from(v["target"].as_str().unwrap());
            let source = PathBuf::from(v["source"].as_str().unwrap());
            if target == config {
                config_source = Some(source.clone());
            }
            if let Ok(rel) = target.strip_prefix(&workdir) {
                let link = sandbox.join(rel);
                std::fs::create_dir_all(link.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(source, link).unwrap();
            }
        }
        let config_source = config_source.unwrap_or_else(|| panic!("{service}: {} is not mounted", config.display()));
        assert!(
            config_source.starts_with(repo.join("config/compose")),
            "{service}: config {}",
            config_source.display()
        );
        checked.insert(config_source.clone());
        let rel =
            config.strip_prefix(&workdir).unwrap_or_else(|_| panic!("{service}: config outside {}", workdir.display()));

        let out = Command::new(binaries().join(bin))
            .arg("--check-config")
            .arg("--config")
            .arg(rel)
            .current_dir(sandbox.as_path())
            .env_remove(config_env)
            .output()
            .unwrap_or_else(|e| panic!("running {bin}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{bin} --check-config refused {}:\n{stdout}{}",
            config_source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{service}: {stdout}");
    }
    // No config under config/compose/*.toml is left unused (and so unchecked).
    let mut all = BTreeSet::new();
    for entry in std::fs::read_dir(repo.join("config/compose")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            all.insert(path);
        }
    }
    assert_eq!(all, checked, "every config/compose/*.toml is given to one of our services");
}
