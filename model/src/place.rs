//! Martinique communes where sensors stand, and the island's local time.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

/// America/Martinique is UTC-4 all year (no daylight saving).
pub const UTC_OFFSET_HOURS: i32 = -4;

/// The island's fixed offset from UTC.
pub fn martinique_offset() -> FixedOffset {
    FixedOffset::west_opt(-UTC_OFFSET_HOURS * 3600).expect("constant offset is valid")
}

/// A UTC instant as Martinique wall-clock time.
pub fn local_time(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&martinique_offset())
}

/// What a commune is like, which shapes its traffic, noise and parking patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Character {
    /// Fort-de-France / Le Lamentin axis: heavy commuter traffic and offices.
    UrbanCore,
    /// Towns with a morning market and moderate traffic.
    Town,
    /// Beach and marina towns: busy afternoons and weekends.
    Coastal,
}

/// A commune of Martinique with the coordinates of its centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Commune {
    #[serde(rename = "Fort-de-France")]
    FortDeFrance,
    #[serde(rename = "Le Lamentin")]
    LeLamentin,
    #[serde(rename = "Schoelcher")]
    Schoelcher,
    #[serde(rename = "Le Robert")]
    LeRobert,
    #[serde(rename = "Le François")]
    LeFrancois,
    #[serde(rename = "Sainte-Anne")]
    SainteAnne,
    #[serde(rename = "Saint-Pierre")]
    SaintPierre,
    #[serde(rename = "Le Marin")]
    LeMarin,
    #[serde(rename = "La Trinité")]
    LaTrinite,
    #[serde(rename = "Ducos")]
    Ducos,
}

impl Commune {
    pub const ALL: [Commune; 10] = [
        Commune::FortDeFrance,
        Commune::LeLamentin,
        Commune::Schoelcher,
        Commune::LeRobert,
        Commune::LeFrancois,
        Commune::SainteAnne,
        Commune::SaintPierre,
        Commune::LeMarin,
        Commune::LaTrinite,
        Commune::Ducos,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Commune::FortDeFrance => "Fort-de-France",
            Commune::LeLamentin => "Le Lamentin",
            Commune::Schoelcher => "Schoelcher",
            Commune::LeRobert => "Le Robert",
            Commune::LeFrancois => "Le François",
            Commune::SainteAnne => "Sainte-Anne",
            Commune::SaintPierre => "Saint-Pierre",
            Commune::LeMarin => "Le Marin",
            Commune::LaTrinite => "La Trinité",
            Commune::Ducos => "Ducos",
        }
    }

    /// ASCII slug for ids: `fort-de-france`, `le-francois`.
    pub fn slug(self) -> &'static str {
        match self {
            Commune::FortDeFrance => "fort-de-france",
            Commune::LeLamentin => "le-lamentin",
            Commune::Schoelcher => "schoelcher",
            Commune::LeRobert => "le-robert",
            Commune::LeFrancois => "le-francois",
            Commune::SainteAnne => "sainte-anne",
            Commune::SaintPierre => "saint-pierre",
            Commune::LeMarin => "le-marin",
            Commune::LaTrinite => "la-trinite",
            Commune::Ducos => "ducos",
        }
    }

    /// Centre of the commune, (latitude, longitude) in degrees.
    pub fn centre(self) -> (f64, f64) {
        match self {
            Commune::FortDeFrance => (14.616, -61.059),
            Commune::LeLamentin => (14.613, -60.999),
            Commune::Schoelcher => (14.615, -61.090),
            Commune::LeRobert => (14.678, -60.940),
            Commune::LeFrancois => (14.616, -60.903),
            Commune::SainteAnne => (14.436, -60.882),
            Commune::SaintPierre => (14.743, -61.176),
            Commune::LeMarin => (14.469, -60.869),
            Commune::LaTrinite => (14.738, -60.963),
            Commune::Ducos => (14.575, -60.975),
        }
    }

    pub fn character(self) -> Character {
        match self {
            Commune::FortDeFrance | Commune::LeLamentin => Character::UrbanCore,
            Commune::SainteAnne | Commune::LeMarin | Commune::SaintPierre => Character::Coastal,
            _ => Character::Town,
        }
    }

    /// Commune whose name (or slug) is `s`.
    pub fn parse(s: &str) -> Option<Commune> {
        Commune::ALL.into_iter().find(|c| c.name() == s || c.slug() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};

    #[test]
    fn local_time_is_utc_minus_four() {
        let t = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(local_time(t).hour(), 8);
    }

    #[test]
    fn communes_parse_by_name_and_slug() {
        for c in Commune::ALL {
            assert_eq!(Commune::parse(c.name()), Some(c));
            assert_eq!(Commune::parse(c.slug()), Some(c));
        }
    }
}
