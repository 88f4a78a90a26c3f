//! NGSI-LD context brokers (Orion-LD, Stellio, Scorpio): one entity per sensor, kept up to date with
//! batch upserts. The entities are FIWARE Smart Data Models (`model/src/codec/ngsi_ld.rs`,
//! docs/ngsi-ld.md); their short names expand through the project's own JSON-LD context, served by
//! the gateway, so that no broker needs the internet.

mod answer;
pub mod config;
mod rounds;
pub mod sink;
pub mod source;
mod temporal;

pub use config::{ContentMode, History, NgsiLdConfig};
pub use sink::NgsiLdSink;
pub use source::{NgsiLdSourceConfig, Subscriber};

/// The `rel` of the Link header that carries a JSON-LD context (NGSI-LD, JSON-LD 1.1 §6.2).
pub const CONTEXT_REL: &str = "http://www.w3.org/ns/json-ld#context";

/// The Link header naming `context`: exactly what Orion-LD and Stellio expect (Stellio refuses it
/// without `type=`).
pub fn link_header(context: &str) -> String {
    format!("<{context}>; rel=\"{CONTEXT_REL}\"; type=\"application/ld+json\"")
}
