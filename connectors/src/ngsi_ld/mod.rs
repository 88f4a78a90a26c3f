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

/// The headers every request to a broker carries: the tenant, and the bearer token read from
/// `token_env` or `token_file` (marked sensitive: never logged).
pub(crate) fn broker_headers(
    tenant: Option<&str>,
    token_env: &str,
    token_file: Option<&std::path::Path>,
) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
    let mut headers = HeaderMap::new();
    if let Some(tenant) = tenant {
        headers.insert("NGSILD-Tenant", HeaderValue::from_str(tenant).map_err(|e| format!("tenant: {e}"))?);
    }
    if let Some(token) = crate::secret::read(token_env, token_file)? {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| "the bearer token holds characters not allowed in a header".to_string())?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}
