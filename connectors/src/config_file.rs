//! Loading a binary's TOML configuration: the shipped file is embedded as the default, a user file
//! replaces it, and every error names the file and the field.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A configuration problem the user can fix, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: `{field}`: {message}")]
    Invalid { origin: String, field: String, message: String },
}

/// Where a config came from, for messages: the file path or "built-in defaults".
pub fn origin(path: Option<&Path>) -> String {
    path.map_or_else(|| "built-in defaults".to_string(), |p| p.display().to_string())
}

/// Parses the file at `path`, or `embedded` when no path is given.
pub fn load<T: DeserializeOwned>(path: Option<&Path>, embedded: &str) -> Result<T, ConfigError> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.to_path_buf(), source })?,
        None => embedded.to_string(),
    };
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        origin: origin(path),
        // toml's message already names the field, the line and the column.
        message: e.to_string().trim_end().replace('\n', "\n  "),
    })
}

/// The first of `problems` (field, message) as an error, prefixing each field with `section.`.
pub fn check(path: Option<&Path>, section: &str, problems: Vec<(&'static str, String)>) -> Result<(), ConfigError> {
    match problems.into_iter().next() {
        None => Ok(()),
        Some((field, message)) => Err(ConfigError::Invalid {
            origin: origin(path),
            field: if section.is_empty() { field.to_string() } else { format!("{section}.{field}") },
            message,
        }),
    }
}

/// Deserializes either one table (`[mqtt]`, the single-broker form) or an array of tables
/// (`[[mqtt]]`) into a list, keeping the TOML parser's own messages (field, line, column).
pub fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct OneOrMany<T>(std::marker::PhantomData<T>);

    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a table or an array of tables")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Vec<T>, A::Error> {
            serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|one| vec![one])
        }
    }

    deserializer.deserialize_any(OneOrMany(std::marker::PhantomData))
}
