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
//! # kind = "weather"      # else chosen from the measurements present
//! # lat = 14.61           # position of devices whose payload has none
//! # lon = -61.05
//! [formats.ttn.devices.wx-lamentin-1]   # per device: kind and/or a fixed position
//! lat = 14.613
//! lon = -60.999
//! ```

use serde::Deserialize;
use smartcity_model::codec::device::{DeviceError, Options, Placement, Unknown};
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
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Senml => "senml",
            Format::Ttn => "ttn",
            Format::Chirpstack => "chirpstack",
        }
    }

    /// Whether `seq` is a frame counter whose gaps mean lost messages (SenML's is a time).
    pub fn counts_frames(self) -> bool {
        self != Format::Senml
    }

    /// The last segment(s) of the topics this format's messages come on, when the network server
    /// publishes other events under the same prefix (joins, downlinks, status...).
    pub fn topic_suffix(self) -> Option<&'static str> {
        match self {
            Format::Ttn => Some("/up"),
            Format::Chirpstack => Some("/event/up"),
            Format::Json | Format::Senml => None,
        }
    }

    /// Decodes a device payload (`Json` is decoded by the wire-format path, not here).
    pub fn decode(self, payload: &[u8], options: &Options) -> Result<Vec<Reading>, DeviceError> {
        let now = chrono::Utc::now();
        match self {
            Format::Senml => senml::decode(payload, options, now),
            Format::Ttn => ttn::decode(payload, options, now),
            Format::Chirpstack => chirpstack::decode(payload, options, now),
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
    /// Per device (by its sensor id): kind and fixed position, over the payload's.
    #[serde(default)]
    pub devices: BTreeMap<String, Placement>,
}

impl FormatConfig {
    pub fn options(&self) -> Options {
        Options { kind: self.kind, lat: self.lat, lon: self.lon, unknown: self.unknown, devices: self.devices.clone() }
    }

    /// Problems a user can fix, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = self.options().problems();
        if self.format == Format::Json && *self != (FormatConfig { format: Format::Json, ..Default::default() }) {
            p.push(("format", "`json` (the wire format) takes no other setting".into()));
        }
        p
    }
}
