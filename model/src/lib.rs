//! The data model of the Martinique smart-city twin. Pure: no I/O, no clocks, no randomness
//! beyond the seeded generator, so every crate can depend on it and every test is repeatable.
//!
//! - [`kind`]: the six sensor kinds and their names on each protocol.
//! - [`place`]: the Martinique communes sensors stand in, and the island's local time.
//! - [`reading`]: the one [`Reading`] type with typed values per kind, and its physical ranges.
//! - [`catalogue`]: which sensors exist (the default ten, a file, or a generated island-wide set).
//! - [`dynamics`]: realistic daily patterns (rush hours, Saharan dust, showers, dusk and dawn).
//! - [`codec`]: wire formats; today the versioned JSON that travels over MQTT, Kafka and Pulsar.

pub mod catalogue;
pub mod codec;
pub mod dynamics;
pub mod kind;
pub mod place;
pub mod reading;
pub mod stream;

pub use catalogue::{Catalogue, CatalogueError, Sensor};
pub use kind::SensorKind;
pub use place::Commune;
pub use reading::{Reading, ReadingError, Values};
pub use stream::ReadingStream;
