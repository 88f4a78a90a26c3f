//! Reading back what a sink wrote, with the project's own clients, as (sensor id, seq) pairs:
//! an MQTT subscriber, a Kafka consumer, a Pulsar consumer and a Flux query. Each checks on the way
//! that the message key (Kafka, Pulsar) is the sensor id and that every payload decodes.

use crate::bench_var;
use futures::TryStreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use smartcity_model::codec::json;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a sink delivered: one (sensor id, seq) per message, duplicates kept.
pub type Delivered = Vec<(String, u64)>;

/// The distinct pairs of `d`, and whether any pair came more than once.
pub fn distinct(d: &Delivered) -> (BTreeSet<(String, u64)>, usize) {
    let set: BTreeSet<_> = d.iter().cloned().collect();
    let dups = d.len() - set.len();
    (set, dups)
}

/// An MQTT subscription to `{prefix}/#` that collects every reading it receives.
pub struct MqttCollector {
    got: Arc<Mutex<Delivered>>,
    task: tokio::task::JoinHandle<()>,
}

impl MqttCollector {
    /// Connects, subscribes at QoS 1 and returns once the broker acknowledged the subscription.
    pub async fn start(mut options: MqttOptions, prefix: &str) -> Self {
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(options, 1000);
        client.subscribe(format!("{prefix}/#"), QoS::AtLeastOnce).await.expect("subscribe request");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "no SUBACK from the broker within 20 s");
            match tokio::time::timeout(Duration::from_secs(20), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("subscriber cannot connect: {e}"),
                Err(_) => panic!("no answer from the broker within 20 s"),
            }
        }
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let prefix = prefix.to_string();
        let task = tokio::spawn(async move {
            let _client = client; // keeps the request channel open
            while let Ok(event) = events.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = event {
                    let r =
                        json::decode(&p.payload).unwrap_or_else(|e| panic!("undecodable reading on {}: {e}", p.topic));
                    assert_eq!(p.topic, format!("{prefix}/{}/{}", r.kind(), r.sensor_id));
                    sink.lock().unwrap().push((r.sensor_id, r.seq));
                }
            }
        });
        MqttCollector { got, task }
    }

    /// Waits until `n` readings arrived (or `timeout`), then 1 s more for any extra; returns all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Delivered {
        let deadline = Instant::now() + timeout;
        while self.got.lock().unwrap().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.got.lock().unwrap().clone()
    }
}

impl Drop for MqttCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether the record timestamp must be the reading's `observedAt`: true for our Kafka sink; the
/// REST proxy's API has no per-record timestamp (the broker stamps them).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stamped {
    ObservedAt,
    ByBroker,
}

/// Reads `topics` from the beginning with a fresh consumer group until `n` messages arrived (or
/// `timeout`), then 2 s more for any extra.
pub async fn kafka(
    mut config: rdkafka::ClientConfig,
    topics: Vec<String>,
    stamped: Stamped,
    n: usize,
    timeout: Duration,
) -> Delivered {
    config
        .set("group.id", crate::unique("readback"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().expect("kafka consumer");
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).expect("subscribe");
        let mut got = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut extra_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if extra_until.is_some_and(|t| now > t) || now > deadline {
                break;
            }
            if got.len() >= n && extra_until.is_none() {
                extra_until = Some(now + Duration::from_secs(2));
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(e)) => panic!("kafka consumer: {e}"),
                Some(Ok(m)) => {
                    let r = json::decode(m.payload().unwrap_or_default())
                        .unwrap_or_else(|e| panic!("undecodable reading on {}: {e}", m.topic()));
                    assert_eq!(m.key(), Some(r.sensor_id.as_bytes()), "message key is the sensor id");
                    if stamped == Stamped::ObservedAt {
                        let ts = m.timestamp().to_millis();
                        assert_eq!(ts, Some(r.observed_at.timestamp_millis()), "{}: timestamp = observedAt", m.topic());
                    }
                    got.push((r.sensor_id, r.seq));
                }
            }
        }
        got
    })
    .await
    .expect("kafka read-back task")
}

/// Reads `topics` from the earliest message with a fresh subscription until `n` messages arrived (or
/// `timeout`), then 2 s more for any extra.
pub async fn pulsar(topics: Vec<String>, n: usize, timeout: Duration) -> Delivered {
    use pulsar::consumer::{ConsumerOptions, InitialPosition};
    let url = bench_var("BENCH_PULSAR_URL");
    let client: pulsar::Pulsar<_> =
        pulsar::Pulsar::builder(url.as_str(), pulsar::TokioExecutor).build().await.expect("pulsar client");
    let mut consumer: pulsar::Consumer<Vec<u8>, _> = client
        .consumer()
        .with_topics(&topics)
        .with_subscription(crate::unique("readback"))
        .with_subscription_type(pulsar::SubType::Exclusive)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
        .build()
        .await
        .expect("pulsar consumer");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let limit = if got.len() >= n { tokio::time::Instant::now() + Duration::from_secs(2) } else { deadline };
        let Ok(next) = tokio::time::timeout_at(limit, consumer.try_next()).await else { break };
        let msg = next.expect("pulsar consumer").expect("consumer stream open");
        let r = json::decode(&msg.payload.data).expect("decodable reading");
        assert_eq!(msg.key().as_deref(), Some(r.sensor_id.as_str()), "message key is the sensor id");
        assert_eq!(msg.metadata().event_time, Some(r.observed_at.timestamp_millis() as u64), "event time = observedAt");
        consumer.ack(&msg).await.expect("ack");
        got.push((r.sensor_id, r.seq));
    }
    got
}

/// The bench's InfluxDB: its URL, org and operator token.
pub struct Influx {
    http: reqwest::Client,
    url: String,
    org: String,
    token: String,
}

impl Default for Influx {
    fn default() -> Self {
        Influx {
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client"),
            url: bench_var("BENCH_INFLUX_URL"),
            org: bench_var("BENCH_INFLUX_ORG"),
            token: bench_var("BENCH_INFLUX_TOKEN"),
        }
    }
}

impl Influx {
    /// A request to the bench's InfluxDB API with the operator token.
    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", format!("Token {}", self.token))
    }

    /// Sends `request` and returns its JSON answer, asserting `status`.
    async fn call(&self, request: reqwest::RequestBuilder, status: u16, what: &str) -> serde_json::Value {
        let resp = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let got = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(got, status, "{what}: {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// The id of the bench org.
    pub async fn org_id(&self) -> String {
        let orgs =
            self.call(self.api(reqwest::Method::GET, "/api/v2/orgs").query(&[("org", &self.org)]), 200, "orgs").await;
        orgs["orgs"][0]["id"].as_str().expect("bench org id").to_string()
    }

    /// Creates the bucket `name` in the bench org (one per test run keeps read-backs exact).
    pub async fn create_bucket(&self, name: &str) {
        let body = serde_json::json!({"orgID": self.org_id().await, "name": name, "retentionRules": []});
        self.call(
            self.api(reqwest::Method::POST, "/api/v2/buckets").json(&body),
            201,
            &format!("creating bucket {name}"),
        )
        .await;
    }

    async fn bucket_id(&self, name: &str) -> String {
        let found =
            self.call(self.api(reqwest::Method::GET, "/api/v2/buckets").query(&[("name", name)]), 200, "buckets").await;
        found["buckets"][0]["id"].as_str().unwrap_or_else(|| panic!("bucket {name} not found: {found}")).to_string()
    }

    /// Deletes the bucket `name` and everything in it, as an operator would by mistake.
    pub async fn delete_bucket(&self, name: &str) {
        let id = self.bucket_id(name).await;
        let what = format!("deleting {name}");
        self.call(self.api(reqwest::Method::DELETE, &format!("/api/v2/buckets/{id}")), 204, &what).await;
    }

    /// Sets the retention of the bucket `name` (0: forever). InfluxDB refuses points older than it.
    pub async fn set_retention(&self, name: &str, seconds: u64) {
        let id = self.bucket_id(name).await;
        let rules = match seconds {
            0 => serde_json::json!([{"type": "expire", "everySeconds": 0}]),
            s => serde_json::json!([{"type": "expire", "everySeconds": s, "shardGroupDurationSeconds": s.min(3600)}]),
        };
        let body = serde_json::json!({"retentionRules": rules});
        self.call(self.api(reqwest::Method::PATCH, &format!("/api/v2/buckets/{id}")).json(&body), 200, "retention")
            .await;
    }

    /// A token of its own for a client: read and write on every bucket of the bench org (so that a
    /// bucket recreated under the same name is covered). Returns (authorization id, token).
    pub async fn create_token(&self, description: &str) -> (String, String) {
        let org_id = self.org_id().await;
        let permission =
            |action: &str| serde_json::json!({"action": action, "resource": {"type": "buckets", "orgID": org_id}});
        let body = serde_json::json!({"orgID": org_id, "description": description,
                                      "permissions": [permission("read"), permission("write")]});
        let auth =
            self.call(self.api(reqwest::Method::POST, "/api/v2/authorizations").json(&body), 201, "new token").await;
        (auth["id"].as_str().expect("authorization id").into(), auth["token"].as_str().expect("token").into())
    }

    /// Sets a token active or inactive (InfluxDB's authorizations API): an inactive token is refused
    /// with 401 until it is active again.
    pub async fn set_token_active(&self, id: &str, active: bool) {
        let body = serde_json::json!({"status": if active { "active" } else { "inactive" }});
        self.call(
            self.api(reqwest::Method::PATCH, &format!("/api/v2/authorizations/{id}")).json(&body),
            200,
            "token status",
        )
        .await;
    }

    /// Runs a Flux query and returns its rows as column → value maps (annotations off).
    pub async fn query(&self, flux: &str) -> Vec<std::collections::HashMap<String, String>> {
        let resp = self
            .http
            .post(format!("{}/api/v2/query", self.url))
            .query(&[("org", self.org.as_str())])
            .header("Authorization", format!("Token {}", self.token))
            .header("Content-Type", "application/vnd.flux")
            .header("Accept", "application/csv")
            .body(flux.to_string())
            .send()
            .await
            .expect("POST /api/v2/query");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "Flux query failed ({status}): {text}\n{flux}");
        let mut rows = Vec::new();
        let mut header: Vec<String> = Vec::new();
        for line in text.lines().map(|l| l.trim_end_matches('\r')) {
            if line.is_empty() {
                header.clear();
                continue;
            }
            let cells: Vec<String> = line.split(',').map(str::to_string).collect();
            if header.is_empty() {
                header = cells;
            } else {
                rows.push(header.iter().cloned().zip(cells).collect());
            }
        }
        rows
    }

    /// Every (sensor id, seq) point in `bucket` between `start` and `stop` (RFC 3339).
    pub async fn seqs(&self, bucket: &str, start: &str, stop: &str) -> Delivered {
        let flux = format!(
            "from(bucket: \"{bucket}\") |> range(start: {start}, stop: {stop}) \
             |> filter(fn: (r) => r._field == \"seq\") |> keep(columns: [\"sensor_id\", \"_value\"])"
        );
        self.query(&flux)
            .await
            .into_iter()
            .map(|row| (row["sensor_id"].clone(), row["_value"].parse().expect("seq is an integer")))
            .collect()
    }
}
