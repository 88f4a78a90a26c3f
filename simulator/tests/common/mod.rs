//! Running the real `simulator` binary in tests: stderr kept in a file (shown on failure), metrics
//! read over HTTP, SIGTERM for a clean stop.

#![allow(dead_code)] // each test file uses its own part of these helpers

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The binary with `args`, its stderr in a file.
pub struct Sim {
    pub child: Child,
    pub log: PathBuf,
    pub metrics: u16,
}

impl Sim {
    /// Starts `simulator --config <toml> --metrics-listen <free port> <args>`.
    pub fn start(name: &str, toml: &str, args: &[&str]) -> Sim {
        let dir = std::env::temp_dir();
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, toml).unwrap();
        let log = dir.join(format!("{name}.log"));
        let metrics = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_simulator"))
            .arg("--config")
            .arg(&config)
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("simulator starts");
        Sim { child, log, metrics }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of the sample `series` (name and labels exactly as exposed), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = match reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => return 0.0,
        };
        let want = series_key(series);
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (s, v) = l.rsplit_once(' ')?;
                (series_key(s) == want).then(|| v.trim().parse().ok()).flatten()
            })
            .unwrap_or(0.0)
    }

    /// SIGTERM, then the exit status within `timeout`.
    pub fn stop(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.wait(timeout)
    }

    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "simulator still running after {timeout:?}:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// N of the final `stopped: N readings generated` line.
    pub fn generated(&self) -> u64 {
        let log = self.log_text();
        log.lines()
            .find_map(|l| l.split("stopped: ").nth(1)?.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no `stopped:` line in the log:\n{log}"))
    }
}

/// `name{b="2",a="1"}` as (name, sorted labels): the exposition's label order is not ours to choose.
fn series_key(series: &str) -> (String, Vec<String>) {
    match series.split_once('{') {
        None => (series.to_string(), Vec::new()),
        Some((name, rest)) => {
            let mut labels: Vec<String> =
                rest.trim_end_matches('}').split(',').filter(|l| !l.is_empty()).map(str::to_string).collect();
            labels.sort();
            (name.to_string(), labels)
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
