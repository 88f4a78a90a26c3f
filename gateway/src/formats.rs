//! `[formats.<source>]`: which payload format a source carries, when it is not our wire format,
//! and the settings of that format (docs/device-formats.md).
//!
//! ```toml
//! [[mqtt]]
//! name = "ttn"
//! topic_prefix = "v3/city@ttn/devices"   # subscribes to v3/city@ttn/devices/#
//!
//! [formats.ttn]
//! format = "ttn"          # json (default), senml, ttn, chirpstack
//! unknown = "ignore"      # or "refuse": a measurement the kind has no attribute for
//! # raw_payload = "cayenne-lpp"   # an uplink without decoded payload: its bytes as Cayenne LPP
//! # kind = "weather"      # else chosen from the measurements present
//! # lat = 14.61           # position of devices whose payload has none
//! # lon = -61.05
//! [formats.ttn.devices.wx-lamentin-1]   # per device: kind and/or a fixed position
//! lat = 14.613
//! lon = -60.999
//!
//! [formats.acme]                        # any other JSON: where each thing is
//! format = "mapping"
//! kind = "noise"
//! [formats.acme.mapping]
//! sensor_id_topic_segment = 2
//! time = "ts"
//! time_format = "unix"
//! fields = { LAeq = { path = "leq" }, LAmax = { path = "max" }, LAS = { path = "slow" } }
//! ```

use serde::Deserialize;
use smartcity_model::codec::device::{DeviceError, Options, Placement, RawPayload, Unknown};
use smartcity_model::codec::mapping::{self, Mapping};
use smartcity_model::codec::{chirpstack, senml, ttn};
use smartcity_model::{Reading, SensorKind};
use std::collections::BTreeMap;

/// A payload format a source can carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Our versioned JSON wire format (docs/wire-format.md).
    #[default]
    Json,
    /// SenML JSON packs (RFC 8428).
    Senml,
    /// The Things Stack v3 uplink messages.
    Ttn,
    /// ChirpStack v4 `up` events (JSON integration).
    Chirpstack,
    /// Any other JSON, through the source's `[formats.<source>.mapping]`.
    Mapping,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Senml => "senml",
            Format::Ttn => "ttn",
            Format::Chirpstack => "chirpstack",
            Format::Mapping => "mapping",
        }
    }

    /// Whether `seq` is a frame counter whose gaps mean lost messages (SenML's is a time; a
    /// mapping's is one only when it names a `seq` path, see [`TopicRule::counts_frames`]).
    ///
    /// [`TopicRule::counts_frames`]: crate::decode::TopicRule::counts_frames
    pub fn counts_frames(self) -> bool {
        self != Format::Senml
    }

    /// The last segment(s) of the topics this format's messages come on, when the network server
    /// publishes other events under the same prefix (joins, downlinks, status...).
    pub fn topic_suffix(self) -> Option<&'static str> {
        match self {
            Format::Ttn => Some("/up"),
            Format::Chirpstack => Some("/event/up"),
            Format::Json | Format::Senml | Format::Mapping => None,
        }
    }

    /// Decodes a device payload (`Json` is decoded by the wire-format path, not here).
    pub fn decode(
        self,
        payload: &[u8],
        topic: &str,
        options: &Options,
        mapping: Option<&Mapping>,
    ) -> Result<Vec<Reading>, DeviceError> {
        let now = chrono::Utc::now();
        match self {
            Format::Senml => senml::decode(payload, options, now),
            Format::Ttn => ttn::decode(payload, options, now),
            Format::Chirpstack => chirpstack::decode(payload, options, now),
            Format::Mapping => {
                let no_mapping = || DeviceError::Field("mapping".into()); // --check-config refuses this
                mapping::decode(payload, topic, mapping.ok_or_else(no_mapping)?, options, now)
            }
            Format::Json => Err(DeviceError::Syntax { format: "device", message: "the wire format is not one".into() }),
        }
    }
}

/// `[formats.<source name>]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatConfig {
    #[serde(default)]
    pub format: Format,
    /// The kind of every reading of this source; else chosen from the measurements present.
    #[serde(default)]
    pub kind: Option<SensorKind>,
    /// Position of devices whose payload carries none (both or neither).
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    /// `ignore` (default) or `refuse` a measurement the kind has no attribute for.
    #[serde(default)]
    pub unknown: Unknown,
    /// `refuse` (default) an uplink without decoded payload, or read its raw bytes as
    /// `cayenne-lpp` (TTN and ChirpStack).
    #[serde(default)]
    pub raw_payload: RawPayload,
    /// Per device (by its sensor id): kind and fixed position, over the payload's.
    #[serde(default)]
    pub devices: BTreeMap<String, Placement>,
    /// Where everything is, for `format = "mapping"` (model/src/codec/mapping.rs).
    #[serde(default)]
    pub mapping: Option<Mapping>,
}

impl FormatConfig {
    pub fn options(&self) -> Options {
        Options {
            kind: self.kind,
            lat: self.lat,
            lon: self.lon,
            unknown: self.unknown,
            raw_payload: self.raw_payload,
            devices: self.devices.clone(),
        }
    }

    /// Problems a user can fix, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = self.options().problems();
        if self.format == Format::Json && *self != (FormatConfig { format: Format::Json, ..Default::default() }) {
            p.push(("format", "`json` (the wire format) takes no other setting".into()));
        }
        if self.raw_payload != RawPayload::Refuse && !matches!(self.format, Format::Ttn | Format::Chirpstack) {
            p.push(("raw_payload", "only `ttn` and `chirpstack` uplinks carry raw bytes to decode".into()));
        }
        match (&self.mapping, self.format) {
            (None, Format::Mapping) => p.push(("mapping", "`format = \"mapping\"` needs a [mapping] table".into())),
            (Some(m), Format::Mapping) => p.extend(m.problems()),
            (Some(_), _) => p.push(("mapping", "only `format = \"mapping\"` takes a [mapping] table".into())),
            (None, _) => {}
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;

    /// The example at the top of this file is a valid configuration.
    #[test]
    fn the_documented_example_is_valid() {
        let block = include_str!("formats.rs").split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
        let text: String =
            block.lines().map(|l| l.trim_start_matches("//!").trim_start()).collect::<Vec<_>>().join("\n");
        let text = text.replace("[[mqtt]]", "[[mqtt]]\nname = \"acme\"\nclient_id = \"a\"\n[[mqtt]]");
        let path = std::env::temp_dir().join(format!("gw-formats-doc-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let cfg = GatewayConfig::load(Some(&path)).unwrap();
        cfg.validate(Some(&path)).unwrap();
        assert_eq!((cfg.formats["ttn"].format, cfg.formats["acme"].format), (Format::Ttn, Format::Mapping));
        let rules = crate::sources::topic_rules(&cfg);
        let event = br#"{"ts": 1795253400, "leq": 61.5, "max": 70, "slow": 60}"#;
        let acme = Options { lat: Some(14.6), lon: Some(-61.0), ..cfg.formats["acme"].options() };
        let mapping = cfg.formats["acme"].mapping.as_ref();
        let r = Format::Mapping.decode(event, "site/fdf/nz-3", &acme, mapping).unwrap();
        assert_eq!((r[0].sensor_id.as_str(), r[0].kind()), ("nz-3", SensorKind::Noise));
        assert!(!rules["acme"].counts_frames(), "no seq path: the seq is a time");
        assert!(rules["ttn"].counts_frames());
    }

    #[test]
    fn raw_payload_goes_with_ttn_and_chirpstack_only() {
        let c = FormatConfig { format: Format::Senml, raw_payload: RawPayload::CayenneLpp, ..FormatConfig::default() };
        assert_eq!(c.problems().first().map(|p| p.0), Some("raw_payload"));
        let c = FormatConfig { format: Format::Ttn, raw_payload: RawPayload::CayenneLpp, ..FormatConfig::default() };
        assert!(c.problems().is_empty());
    }

    #[test]
    fn a_mapping_goes_with_format_mapping_only() {
        let mapping = Some(Mapping::default());
        let c = FormatConfig { format: Format::Ttn, mapping, ..FormatConfig::default() };
        assert!(c.problems().iter().any(|(f, _)| *f == "mapping"));
        let c = FormatConfig { format: Format::Mapping, ..FormatConfig::default() };
        assert!(c.problems().iter().any(|(_, m)| m.contains("needs a [mapping] table")));
    }
}
