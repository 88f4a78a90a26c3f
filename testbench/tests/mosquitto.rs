//! Smoke tests of rumqttc (the project's MQTT client) against the bench's Mosquitto
//! (scripts/services/mosquitto.sh): plain anonymous listener, and the TLS listener that wants a
//! client certificate signed by the bench CA *and* a user/password.
//!
//! Run with `scripts/services/services.sh up mosquitto` then
//! `cargo test -p smartcity-testbench --test mosquitto`.

use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS};
use smartcity_connectors::mqtt::MqttConfig;
use smartcity_connectors::tls::TlsConfig;
use smartcity_testbench::{bench_var, unique};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

const STEP: Duration = Duration::from_secs(10);

fn host() -> String {
    bench_var("BENCH_MQTT_HOST")
}

fn port(key: &str) -> u16 {
    bench_var(key).parse().unwrap_or_else(|e| panic!("{key} is not a port: {e}"))
}

/// The project's own MQTT settings for the bench's TLS listener, turned into client options by
/// `MqttConfig::options` (connectors/src/mqtt/config.rs and connectors/src/tls.rs): the CA is the
/// only trust anchor, there is no insecure verifier. The password goes through `password_file`.
fn tls_mqtt_config(id_prefix: &str, client_cert: bool, password: &str) -> MqttConfig {
    let password_file = std::env::temp_dir().join(unique("mqtt-password"));
    std::fs::write(&password_file, password).expect("write the password file");
    let mut cfg = MqttConfig::new(&host(), port("BENCH_MQTTS_PORT"), &unique(id_prefix));
    cfg.keep_alive_seconds = 10;
    cfg.clean_session = true;
    cfg.username = Some(bench_var("BENCH_MQTT_USER"));
    cfg.password_file = Some(password_file);
    cfg.tls = Some(TlsConfig {
        ca_file: bench_var("BENCH_TLS_CA").into(),
        client_cert_file: client_cert.then(|| bench_var("BENCH_TLS_CLIENT_CERT").into()),
        client_key_file: client_cert.then(|| bench_var("BENCH_TLS_CLIENT_KEY").into()),
    });
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    cfg
}

fn plain_options(id_prefix: &str) -> MqttOptions {
    let mut opts = MqttOptions::new(unique(id_prefix), host(), port("BENCH_MQTT_PORT"));
    opts.set_keep_alive(Duration::from_secs(10));
    opts
}

fn tls_options(id_prefix: &str, client_cert: bool, password: &str) -> MqttOptions {
    tls_mqtt_config(id_prefix, client_cert, password).options().expect("bench TLS settings are usable")
}

/// A connected client whose event loop is polled continuously by a task; events (or the first
/// error, which ends the task) arrive on `events`.
struct Conn {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Conn {
    async fn connect(opts: MqttOptions, what: &str) -> Conn {
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(ev) => {
                        if tx.send(Ok(ev)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        let mut conn = Conn { client, events, task };
        conn.expect(what, |p| matches!(p, Packet::ConnAck(a) if a.code == ConnectReturnCode::Success)).await;
        conn
    }

    /// Wait (bounded) for an incoming packet matching `pred`; panics on error or timeout.
    async fn expect(&mut self, what: &str, mut pred: impl FnMut(&Packet) -> bool) -> Packet {
        let deadline = Instant::now() + STEP;
        loop {
            let next = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("{what}: nothing within {STEP:?}"));
            match next {
                Some(Ok(Event::Incoming(p))) if pred(&p) => return p,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{what}: MQTT connection error: {e}"),
                None => panic!("{what}: event loop ended"),
            }
        }
    }

    async fn close(self) {
        let _ = self.client.disconnect().await;
        let _ = timeout(Duration::from_secs(2), self.task).await;
    }
}

/// Subscribe with one client, publish QoS 1 with another, read the message back and compare.
async fn round_trip(sub_opts: MqttOptions, pub_opts: MqttOptions, label: &str) {
    let topic = format!("smartcity/testbench/{}", unique(label));
    let payload = format!("{{\"probe\":\"{}\",\"value\":42.5}}", unique("payload"));

    let mut sub = Conn::connect(sub_opts, &format!("{label}: subscriber CONNACK")).await;
    sub.client.subscribe(&topic, QoS::AtLeastOnce).await.expect("queue SUBSCRIBE");
    let suback = sub.expect(&format!("{label}: SUBACK"), |p| matches!(p, Packet::SubAck(_))).await;
    if let Packet::SubAck(ack) = suback {
        assert_eq!(
            ack.return_codes,
            vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)],
            "{label}: subscription to {topic} not granted at QoS 1"
        );
    }

    let mut publisher = Conn::connect(pub_opts, &format!("{label}: publisher CONNACK")).await;
    publisher
        .client
        .publish(&topic, QoS::AtLeastOnce, false, payload.clone().into_bytes())
        .await
        .expect("queue PUBLISH");
    publisher.expect(&format!("{label}: PUBACK"), |p| matches!(p, Packet::PubAck(_))).await;

    let got = sub
        .expect(&format!("{label}: message on {topic}"), |p| matches!(p, Packet::Publish(m) if m.topic == topic))
        .await;
    let Packet::Publish(msg) = got else { unreachable!() };
    assert_eq!(
        std::str::from_utf8(&msg.payload).expect("payload is UTF-8"),
        payload,
        "{label}: payload read back differs from what was published"
    );
    assert_eq!(msg.qos, QoS::AtLeastOnce, "{label}: delivered QoS");

    publisher.close().await;
    sub.close().await;
}

/// First outcome of connecting: `Ok(code)` for a CONNACK, `Err` for a transport/TLS error.
async fn first_connect_outcome(opts: MqttOptions) -> Result<ConnectReturnCode, Box<ConnectionError>> {
    let (_client, mut eventloop): (AsyncClient, EventLoop) = AsyncClient::new(opts, 4);
    let deadline = Instant::now() + STEP;
    loop {
        let Ok(ev) = tokio::time::timeout_at(deadline, eventloop.poll()).await else {
            panic!("connect attempt neither accepted nor refused within {STEP:?}");
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack.code),
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => return Ok(code),
            Err(e) => return Err(Box::new(e)),
        }
    }
}

#[tokio::test]
async fn plain_qos1_round_trip() {
    round_trip(plain_options("tb-plain-sub"), plain_options("tb-plain-pub"), "plain").await;
}

#[tokio::test]
async fn mutual_tls_with_password_round_trip() {
    let password = bench_var("BENCH_MQTT_PASSWORD");
    round_trip(tls_options("tb-tls-sub", true, &password), tls_options("tb-tls-pub", true, &password), "mtls").await;
}

#[tokio::test]
async fn tls_wrong_password_is_refused() {
    let wrong = format!("{}-wrong", bench_var("BENCH_MQTT_PASSWORD"));
    match first_connect_outcome(tls_options("tb-tls-badpw", true, &wrong)).await {
        Ok(ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword) => {}
        Ok(ConnectReturnCode::Success) => panic!("broker accepted a wrong password on the TLS listener"),
        Ok(other) => panic!("wrong password: expected NotAuthorized/BadUserNamePassword, got {other:?}"),
        // The valid client certificate must get us through TLS: the refusal has to be the password's.
        Err(e) => panic!("wrong password: expected a CONNACK refusal, got a connection error: {e}"),
    }
}

#[tokio::test]
async fn tls_without_client_certificate_is_refused() {
    let password = bench_var("BENCH_MQTT_PASSWORD");
    match first_connect_outcome(tls_options("tb-tls-nocert", false, &password)).await {
        Ok(ConnectReturnCode::Success) => {
            panic!("broker accepted a TLS client without certificate (require_certificate not enforced)")
        }
        Ok(code) => panic!("no client certificate: expected a TLS failure, got CONNACK {code:?}"),
        Err(e) => {
            // TLS 1.3: the client finishes its handshake first, the server's alert
            // (certificate required) arrives on the first read; TLS 1.2 fails in the handshake.
            let text = format!("{e} / {e:?}");
            eprintln!("refused as expected: {text}");
            assert!(
                matches!(*e, ConnectionError::Tls(_) | ConnectionError::Io(_))
                    || text.to_lowercase().contains("certificate"),
                "no client certificate: unexpected error kind {text}"
            );
        }
    }
}
