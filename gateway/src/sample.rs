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
        device => TopicRule::Device {
            format: device,
            options: Box::new(configured.options()),
            uplinks_only: topic.is_some(),
            mapping: configured.mapping.clone().map(Box::new),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every example of docs/device-formats.md decodes as the page says.
    #[test]
    fn documented_examples_decode() {
        let doc = include_str!("../../docs/device-formats.md");
        let cfg = GatewayConfig::load(None).unwrap();
        let mut seen = Vec::new();
        for block in doc.split("```json ").skip(1) {
            let (format, rest) = block.split_once('\n').expect("a fenced block");
            let payload = rest.split("```").next().expect("closed block");
            let format = <Format as clap::ValueEnum>::from_str(format, false).expect("a format name");
            let out = describe(&cfg, Some(format), None, None, payload.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('{')).collect();
            let kinds: Vec<&str> = lines.iter().map(|l| l.split(',').next().unwrap()).collect();
            seen.push((format, kinds.join(" ")));
            if format == Format::Ttn {
                assert!(doc.contains(lines[0]), "the page shows the line protocol of the TTN example: {}", lines[0]);
            }
        }
        let want = [(Format::Ttn, "weather"), (Format::Chirpstack, "noise"), (Format::Senml, "parking parking")];
        let want: Vec<(Format, String)> = want.iter().map(|(f, k)| (*f, k.to_string())).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_refusal_says_reason_and_message() {
        let cfg = GatewayConfig::load(None).unwrap();
        let e = describe(&cfg, Some(Format::Senml), None, None, b"{}").unwrap_err();
        assert!(e.starts_with("dead letter, reason `syntax`"), "{e}");
        let e = describe(&cfg, None, Some("nope"), None, b"{}").unwrap_err();
        assert!(e.contains("no source is named `nope`"), "{e}");
    }
}
