//! Runs the NGSI-LD contract server on its own (for `bench/sinks.sh`: no real NGSI-LD broker can be
//! installed on this machine) and prints its URL; stops on Ctrl-C or SIGTERM.
//! `cargo run --release -p smartcity-testbench --example ngsi_ld_contract_server`

#[tokio::main]
async fn main() {
    let server = smartcity_testbench::ngsi_ld_contract::ContractServer::start(false).await;
    println!("{}", server.url());
    let _ = tokio::signal::ctrl_c().await;
}
