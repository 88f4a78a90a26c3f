//! Smoke tests against the bench's Prometheus (scripts/services/prometheus.sh), which scrapes
//! job `testbench` at BENCH_PROMETHEUS_TEST_TARGET (127.0.0.1:9464) every second.
//!
//! - `scrapes_our_exposition`: this test serves /metrics on the target address itself, with a
//!   gauge holding a random value, and reads the value back through the Prometheus HTTP API.
//! - `promtool_check_metrics`: the exposition linter accepts a good text and rejects bad ones.
//!
//! Run with `scripts/services/services.sh up prometheus` then
//! `cargo test -p smartcity-testbench --test prometheus`.

use smartcity_testbench::{bench_var, unique};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve `body` as the text exposition on every request to `listener` (one request per connection).
async fn serve_metrics(listener: TcpListener, body: String) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let body = body.clone();
        tokio::spawn(async move {
            // Read the request head (Prometheus sends a small GET); the path does not matter.
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(response.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

/// Instant query; returns the values of the result vector (empty while nothing matches).
async fn query(http: &reqwest::Client, base: &str, promql: &str) -> Vec<f64> {
    let resp = http
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("Prometheus at {base} unreachable: {e}"));
    let status = resp.status();
    let json: serde_json::Value = resp.json().await.unwrap_or_else(|e| panic!("query {promql}: body is not JSON: {e}"));
    assert!(status.is_success(), "query {promql}: HTTP {status}: {json}");
    assert_eq!(json["status"], "success", "query {promql}: {json}");
    assert_eq!(json["data"]["resultType"], "vector", "query {promql}: {json}");
    json["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("query {promql}: no result array: {json}"))
        .iter()
        .map(|r| {
            let v = r["value"][1].as_str().unwrap_or_else(|| panic!("query {promql}: bad sample {r}"));
            v.parse::<f64>().unwrap_or_else(|e| panic!("query {promql}: sample {v:?}: {e}"))
        })
        .collect()
}

#[tokio::test]
async fn scrapes_our_exposition() {
    let base = bench_var("BENCH_PROMETHEUS_URL");
    let target = bench_var("BENCH_PROMETHEUS_TEST_TARGET");
    let listener = TcpListener::bind(&target).await.unwrap_or_else(|e| {
        panic!("cannot listen on the scrape target {target} ({e}): is a gateway or another test using it?")
    });

    // A random value with an exact decimal form, and a per-run label so that samples left by
    // earlier runs cannot match.
    let value = f64::from(rand::random::<u32>() % 1_000_000) / 8.0;
    let run = unique("run");
    let body = format!(
        "# HELP testbench_probe_value Random value served by the testbench for Prometheus to scrape.\n\
         # TYPE testbench_probe_value gauge\n\
         testbench_probe_value{{run=\"{run}\"}} {value}\n"
    );
    let server = tokio::spawn(serve_metrics(listener, body));

    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("reqwest client");
    let value_query = format!("testbench_probe_value{{job=\"testbench\",run=\"{run}\"}}");
    let up_query = format!("up{{job=\"testbench\",instance=\"{target}\"}}");

    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let last = loop {
        let got = query(&http, &base, &value_query).await;
        if got == [value] {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape {value} from {target} within {SCRAPE_TIMEOUT:?} (last result of \
             {value_query}: {got:?}); see its targets page {base}/targets"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(last, [value], "scraped value differs from the served one");

    // The scrape that brought our sample in was successful: up == 1 for the target.
    let up = query(&http, &base, &up_query).await;
    assert_eq!(up, [1.0], "{up_query} should be exactly one sample equal to 1");

    server.abort();
}

/// Pipe `text` into `promtool check metrics`; returns (exit code, stdout+stderr).
fn promtool_check(text: &str) -> (i32, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): `scripts/services/services.sh up prometheus` installs it")
        });
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let msg = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), msg)
}

#[test]
fn promtool_check_metrics() {
    // promtool is installed by the bench's Prometheus: its env file being present proves that.
    let _ = bench_var("BENCH_PROMETHEUS_URL");

    let good = "# HELP smartcity_messages_total Messages received, by source.\n\
                # TYPE smartcity_messages_total counter\n\
                smartcity_messages_total{source=\"mqtt\"} 42\n\
                smartcity_messages_total{source=\"kafka\"} 7\n\
                # HELP smartcity_queue_depth Messages waiting to be forwarded.\n\
                # TYPE smartcity_queue_depth gauge\n\
                smartcity_queue_depth 3\n";
    let (code, msg) = promtool_check(good);
    assert_eq!(code, 0, "promtool rejected a good exposition: {msg}");

    // Lint problem: a counter without the `_total` suffix.
    let lint = "# HELP smartcity_messages Messages received.\n\
                # TYPE smartcity_messages counter\n\
                smartcity_messages 42\n";
    let (code, msg) = promtool_check(lint);
    assert_ne!(code, 0, "promtool accepted a counter without _total: {msg}");
    assert!(msg.contains("_total"), "promtool should name the _total problem, said: {msg}");

    // Syntax error: not an exposition line at all.
    let (code, msg) = promtool_check("smartcity messages 4 2 x\n");
    assert_ne!(code, 0, "promtool accepted a malformed exposition: {msg}");
}
