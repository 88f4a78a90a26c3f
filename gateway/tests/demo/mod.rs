//! The `make run` demo in one test process: the simulator with its embedded MQTT broker (the default
//! ten sensors) and the gateway, on free ports, with the gateway's files in a temp folder. Shared by
//! the browser test and the OGC API test.

use smartcity_gateway::GatewayConfig;
use smartcity_simulator::SimulatorConfig;
use tokio_util::sync::CancellationToken;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Demo {
    pub http: String,
    #[allow(dead_code)] // the OGC test does not publish itself
    pub mqtt_port: u16,
    pub stop: CancellationToken,
}

/// Starts the simulator and the gateway; `tag` names the gateway's client id and data folder.
pub async fn start_demo(tag: &str) -> Demo {
    let (mqtt_port, metrics_port, http_port) = (free_port(), free_port(), free_port());
    let mut sim = SimulatorConfig::load(None).unwrap();
    sim.embedded_broker.listen = format!("127.0.0.1:{mqtt_port}").parse().unwrap();
    sim.mqtt[0].port = mqtt_port;
    sim.metrics.listen = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    sim.status.interval_seconds = 0;
    let mut gw = GatewayConfig::load(None).unwrap();
    gw.mqtt[0].port = mqtt_port;
    gw.set_data_dir(&std::env::temp_dir().join(format!("gw-{tag}-{mqtt_port}")));
    gw.mqtt[0].client_id = format!("gw-{tag}-{mqtt_port}");
    gw.http.listen = format!("127.0.0.1:{http_port}").parse().unwrap();

    smartcity_connectors::mqtt::EmbeddedBroker::start(&sim.embedded_broker).expect("embedded broker");
    let stop = CancellationToken::new();
    let catalogue = smartcity_simulator::build_catalogue(&sim).unwrap();
    let s = stop.clone();
    tokio::spawn(async move { smartcity_simulator::run(sim, catalogue, s).await.expect("simulator runs") });
    let s = stop.clone();
    tokio::spawn(async move { smartcity_gateway::run(gw, s).await.expect("gateway runs") });
    Demo { http: format!("http://127.0.0.1:{http_port}"), mqtt_port, stop }
}
