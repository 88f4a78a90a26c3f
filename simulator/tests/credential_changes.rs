//! A broker's password changed under a running simulator (issue 17), then changed back 30 s later:
//! - the bench Mosquitto's TLS listener (the password file changed and reloaded with SIGHUP, the
//!   connection cut so that the client must log in again);
//! - the bench Kafka's SCRAM-SHA-256 listener (the user's credential altered in the cluster; the
//!   broker makes every connection log in again within 5 s);
//! - the bench Kafka REST proxy's basic authentication (the user's line changed in its users file).
//!
//! Refused credentials are about the broker, not the data: the readings wait in the sink's queue,
//! the metrics say `auth`, and once the password is back every reading arrives, none dropped, and
//! the simulator exits 0.

mod common;

use common::Sim;
use smartcity_connectors::mqtt::MqttConfig;
use smartcity_testbench::bench_var;
use smartcity_testbench::gate::Gate;
use smartcity_testbench::readback::{distinct, MqttCollector};
use smartcity_testbench::sim_config::{secret_file, RunNames};
use std::process::Command;
use std::time::{Duration, Instant};

/// `scripts/services/{script} set USER PASSWORD`: the bench's users, changed at runtime.
fn set_user(script: &str, user: &str, password: &str) {
    let path = format!("{}/../scripts/services/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&path).args(["set", user, password]).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

fn mosquitto_user(user: &str, password: &str) {
    set_user("mosquitto-user.sh", user, password);
}

fn kafka_user(user: &str, password: &str) {
    set_user("kafka-scram-user.sh", user, password);
}

/// Waits until `sink`'s queue holds at most a tick or two (a live run always has some in flight).
async fn drained(sim: &Sim, sink: &str) {
    let series = format!("smartcity_simulator_sink_queue_readings{{sink=\"{sink}\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.metric(&series).await > 50.0 {
        assert!(Instant::now() < deadline, "{sink}: the queue drains once the password is back:\n{}", sim.log_text());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_metric(sim: &Sim, series: &str, want: f64, within: Duration) {
    let deadline = Instant::now() + within;
    while sim.metric(series).await != want {
        assert!(Instant::now() < deadline, "{series} never {want}:\n{}", sim.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The heart of each test: `sim` runs live with its sink `sink` up; `refuse` makes the server refuse
/// the sink's credentials; 30 s later `accept` makes it accept them again. Checks that the refusal
/// showed as `auth`, that the readings waited in the queue, and that the run then delivered them all
/// and exited 0. Returns how many readings the run generated.
async fn refused_for_30_s(
    sim: &mut Sim,
    sink: &str,
    refuse: impl std::future::Future<Output = ()>,
    accept: impl FnOnce(),
) -> usize {
    let up = format!("smartcity_simulator_sink_up{{sink=\"{sink}\"}}");
    wait_metric(sim, &up, 1.0, Duration::from_secs(30)).await;
    refuse.await;
    let down = format!("smartcity_simulator_sink_down{{reason=\"auth\",sink=\"{sink}\"}}");
    wait_metric(sim, &down, 1.0, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let queued = sim.metric(&format!("smartcity_simulator_sink_queue_readings{{sink=\"{sink}\"}}")).await;
    assert!(queued > 1000.0, "{sink}: the readings of the refusal wait in the queue: {queued}");
    accept();
    wait_metric(sim, &up, 1.0, Duration::from_secs(60)).await;
    drained(sim, sink).await;
    let status = sim.stop(Duration::from_secs(60));
    assert!(status.success(), "{sink}: every reading delivered, exit 0:\n{}", sim.log_text());
    let dropped = format!("smartcity_simulator_readings_dropped_total{{reason=\"rejected\",sink=\"{sink}\"}}");
    assert_eq!(sim.metric(&dropped).await, 0.0);
    let log = sim.log_text();
    assert!(log.contains(&format!("sink `{sink}`")) && log.contains("auth"), "a log line names the refusal:\n{log}");
    sim.generated() as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_refusing_the_password_for_30_s_costs_a_wait_not_a_reading() {
    let run = RunNames::new("mqtt-pw");
    let user = run.run.clone();
    mosquitto_user(&user, "first-password");
    let tls: std::net::SocketAddr = format!("127.0.0.1:{}", bench_var("BENCH_MQTTS_PORT")).parse().unwrap();
    let gate = Gate::open_to(tls).await;
    let prefix = run.mqtt_prefix("tls");
    let toml = format!(
        "[embedded_broker]\nenabled = false\n[status]\ninterval_seconds = 1\n\n[[mqtt]]\nname = \"mosquitto-tls\"\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"{}\"\ntopic_prefix = \"{prefix}\"\nusername = \"{user}\"\npassword_file = \"{}\"\n[mqtt.tls]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
        gate.addr.port(),
        run.run,
        secret_file(&run, "mqtt-pw", "first-password"),
        bench_var("BENCH_TLS_CA"),
        bench_var("BENCH_TLS_CLIENT_CERT"),
        bench_var("BENCH_TLS_CLIENT_KEY"),
    );
    let mut plain = MqttConfig::new(
        &bench_var("BENCH_MQTT_HOST"),
        bench_var("BENCH_MQTT_PORT").parse().unwrap(),
        &format!("{}-watch", run.run),
    );
    plain.clean_session = true;
    let collector = MqttCollector::start(plain.options().unwrap(), &prefix).await;

    // Live at 60x: ten sensors every 5 simulated seconds, 120 readings a second.
    let mut sim = Sim::start(&run.run, &toml, &["--speed", "60"]);
    // The operator changes the password; the connection drops; the client must log in again.
    let refuse = async {
        mosquitto_user(&user, "second-password");
        gate.close().await;
        gate.reopen().await;
    };
    let n = refused_for_30_s(&mut sim, "mosquitto-tls", refuse, || mosquitto_user(&user, "first-password")).await;
    let (got, _) = distinct(&collector.wait_for(n, Duration::from_secs(60)).await);
    assert_eq!(got.len(), n, "every reading on the broker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kafka_scram_password_changed_for_30_s_costs_a_wait_not_a_reading() {
    let run = RunNames::new("scram-pw");
    let user = run.run.clone();
    kafka_user(&user, "first-password");
    let template = run.kafka_template("scram");
    let toml = format!(
        "[embedded_broker]\nenabled = false\n[status]\ninterval_seconds = 1\n[[mqtt]]\nenabled = false\n\n[[kafka]]\nname = \"kafka-scram\"\nbootstrap_servers = \"{}\"\ntopic_template = \"{template}\"\nsecurity_protocol = \"sasl_plaintext\"\nsasl_mechanism = \"SCRAM-SHA-256\"\nusername = \"{user}\"\npassword_env = \"\"\npassword_file = \"{}\"\n",
        bench_var("BENCH_KAFKA_SCRAM_BOOTSTRAP"),
        secret_file(&run, "scram-pw", "first-password"),
    );
    let mut sim = Sim::start(&run.run, &toml, &["--speed", "60"]);
    let refuse = async { kafka_user(&user, "second-password") };
    let n = refused_for_30_s(&mut sim, "kafka-scram", refuse, || kafka_user(&user, "first-password")).await;
    let got = smartcity_testbench::readback::kafka(
        smartcity_testbench::sim_config::kafka_reader(),
        run.kafka_topics("scram"),
        smartcity_testbench::readback::Stamped::ObservedAt,
        n,
        Duration::from_secs(60),
    )
    .await;
    let (set, _) = distinct(&got);
    assert_eq!(set.len(), n, "every reading on Kafka");
}

/// `user:password` in the bench REST proxy's users file, replacing the user's line (read by the
/// proxy at every request).
fn rest_user(user: &str, password: &str) {
    let path = bench_var("BENCH_KAFKA_REST_USERS");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut lines: Vec<String> =
        text.lines().filter(|l| !l.starts_with(&format!("{user}:"))).map(String::from).collect();
    lines.push(format!("{user}:{password}"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rest_proxy_refusing_the_password_for_30_s_costs_a_wait_not_a_reading() {
    let run = RunNames::new("rest-pw");
    let user = run.run.clone();
    rest_user(&user, "first-password");
    let template = run.kafka_template("rest");
    let toml = format!(
        "[embedded_broker]\nenabled = false\n[status]\ninterval_seconds = 1\n[[mqtt]]\nenabled = false\n\n[[kafka_rest]]\nname = \"kafka-rest\"\nurl = \"{}\"\ntopic_template = \"{template}\"\nusername = \"{user}\"\npassword_env = \"\"\npassword_file = \"{}\"\n",
        bench_var("BENCH_KAFKA_REST_URL"),
        secret_file(&run, "rest-pw", "first-password"),
    );
    let mut sim = Sim::start(&run.run, &toml, &["--speed", "60"]);
    let refuse = async { rest_user(&user, "second-password") };
    let n = refused_for_30_s(&mut sim, "kafka-rest", refuse, || rest_user(&user, "first-password")).await;
    let got = smartcity_testbench::readback::kafka(
        smartcity_testbench::sim_config::kafka_reader(),
        run.kafka_topics("rest"),
        smartcity_testbench::readback::Stamped::ByBroker,
        n,
        Duration::from_secs(60),
    )
    .await;
    let (set, _) = distinct(&got);
    assert_eq!(set.len(), n, "every reading on Kafka through the proxy");
}
