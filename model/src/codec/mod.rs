//! Wire formats. Plain functions, one module per format; protocol details (topic names, ids, units
//! codes) are derived here, never stored in [`crate::Reading`].

pub mod attributes;
pub mod chirpstack;
pub mod device;
pub mod json;
pub mod line_protocol;
pub mod lpp;
pub mod mapping;
pub mod ngsi_ld;
pub mod ngsi_ld_read;
pub mod senml;
pub mod sensorthings;
pub mod ttn;

#[cfg(test)]
mod partial_tests;
