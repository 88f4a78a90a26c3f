//! The HTTP client every HTTP sink uses (Kafka REST proxy, InfluxDB, and later NGSI-LD and
//! SensorThings): rustls with the project's provider, certificates always verified, a timeout,
//! and the mapping of transport errors and answers to a [`Failure`].

use crate::sink::{Failure, Reason};
use crate::tls::{self, TlsConfig};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// A client for one server: with `tls`, certificates are verified against its private CA only (and
/// a client certificate is offered); without it, `https://` is verified against the public web PKI
/// roots that reqwest's rustls build carries (webpki-roots).
pub fn client(tls: Option<&TlsConfig>, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout.min(Duration::from_secs(10)));
    if let Some(t) = tls {
        builder = builder.use_preconfigured_tls(tls::client_config(t).map_err(|e| e.to_string())?);
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// A transport error (no answer) as a failure: refused, TLS or timeout.
pub fn transport_failure(e: &reqwest::Error) -> Failure {
    // reqwest's Display hides the cause ("error sending request"): walk the chain for it.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    let reason = if e.is_timeout() { Reason::Timeout } else { crate::sink::classify(&message) };
    Failure::new(reason, message)
}

/// `Retry-After` in seconds (the HTTP-date form is rare on these servers and read as absent).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The first 300 characters of an answer body, on one line, for a log message.
pub fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}
