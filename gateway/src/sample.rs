//! `gateway decode`: what one sample payload becomes, without any server.

use crate::config::GatewayConfig;
use crate::decode::{self, TopicRule};
use crate::formats::{Format, FormatConfig};
use smartcity_model::codec::{json, line_protocol};

/// The readings of `payload` as wire-format JSON and line protocol, or the refusal as
/// `reason: message`.
pub fn describe(
    cfg: &GatewayConfig,
    format: Option<Format>,
    source: Option<&str>,
    topic: Option<&str>,
    payload: &[u8],
) -> Result<String, String> {
    let configured = match source {
        Some(s) => match cfg.formats.get(s) {
            Some(f) => f.clone(),
            None if cfg.source_names().iter().any(|n| n == s) => FormatConfig::default(),
            None => return Err(format!("no source is named `{s}` (sources: {})", cfg.source_names().join(", "))),
        },
        None => FormatConfig::default(),
    };
    let format = format.unwrap_or(configured.format);
    let rule = match format {
        // The wire format names its kind and sensor in the payload: no topic to check it against.
        Format::Json => TopicRule::Template { template: "any".into(), pulsar_names: false },
        device => {
            TopicRule::Device { format: device, options: Box::new(configured.options()), uplinks_only: topic.is_some() }
        }
    };
    let topic = topic.map_or_else(|| format.topic_suffix().unwrap_or("any").to_string(), str::to_string);
    let readings = decode::decode_all(&rule, &topic, payload, cfg.writer.max_message_bytes)
        .map_err(|r| format!("dead letter, reason `{}`: {}", r.reason, r.message))?;
    let mut out = String::new();
    for r in &readings {
        out += &String::from_utf8_lossy(&json::encode(r));
        out.push('\n');
        line_protocol::encode(r, &mut out);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
