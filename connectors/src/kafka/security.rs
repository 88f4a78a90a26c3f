//! How a librdkafka client proves who it is and whom it talks to: the `security_protocol`, SASL and
//! TLS settings shared by the producing sink (`[[kafka]]` of the simulator and distribution) and the
//! consuming source (`[[kafka]]` of the gateway). Both configs keep these fields flat in their own
//! table (serde's `flatten` does not work with `deny_unknown_fields`), and hand them here as a
//! [`Security`] view so that the checks and the librdkafka properties exist once.

use crate::secret;
use crate::tls::{self, TlsConfig};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) const PROTOCOLS: [&str; 4] = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
pub(crate) const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

pub(crate) fn default_security_protocol() -> String {
    "plaintext".into()
}
pub(crate) fn default_sasl_mechanism() -> String {
    "PLAIN".into()
}
pub(crate) fn default_password_env() -> String {
    "SMARTCITY_KAFKA_PASSWORD".into()
}

/// `(field, "`value` is not one of ...")` unless `value` is allowed.
pub(crate) fn one_of(field: &'static str, value: &str, allowed: &[&str]) -> Option<(&'static str, String)> {
    (!allowed.contains(&value)).then(|| (field, format!("`{value}` is not one of {}", allowed.join(", "))))
}

/// `(field, message)` when the comma-separated broker list has an empty entry.
pub(crate) fn bootstrap_problem(servers: &str) -> Option<(&'static str, String)> {
    servers
        .split(',')
        .any(|s| s.trim().is_empty())
        .then(|| ("bootstrap_servers", "must list host:port entries, comma-separated (e.g. \"127.0.0.1:9092\")".into()))
}

/// The security fields of one Kafka config, borrowed.
pub(crate) struct Security<'a> {
    pub protocol: &'a str,
    pub mechanism: &'a str,
    pub username: Option<&'a str>,
    pub password_env: &'a str,
    pub password_file: Option<&'a Path>,
    pub tls: Option<&'a TlsConfig>,
    pub properties: &'a BTreeMap<String, String>,
}

impl Security<'_> {
    fn uses_sasl(&self) -> bool {
        self.protocol.starts_with("sasl_")
    }

    fn uses_tls(&self) -> bool {
        self.protocol.ends_with("ssl")
    }

    /// Problems a user can fix in the file, as (field, message). No network.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        p.extend(one_of("security_protocol", self.protocol, &PROTOCOLS));
        p.extend(one_of("sasl_mechanism", self.mechanism, &MECHANISMS));
        if self.uses_sasl() && self.username.is_none_or(|u| u.trim().is_empty()) {
            p.push(("username", format!("required with security_protocol = \"{}\"", self.protocol)));
        }
        if self.password_file.is_some() && self.username.is_none() {
            p.push(("password_file", "needs `username` too".into()));
        }
        p.extend(secret::file_problem("password_file", self.password_file));
        if let Some(t) = self.tls {
            if !self.uses_tls() {
                p.push(("tls", format!("is set but security_protocol = \"{}\" does not use TLS", self.protocol)));
            } else if let Err(e) = tls::client_config(t) {
                // librdkafka reads the files itself (OpenSSL); loading them here catches a bad path early.
                p.push(("tls", e.to_string()));
            }
        }
        if self.properties.keys().any(|k| k.trim().is_empty()) {
            p.push(("properties", "property names must not be empty".into()));
        }
        p
    }

    /// Sets the protocol, SASL (reading the password) and TLS properties on `c`.
    pub fn apply(&self, c: &mut ClientConfig) -> Result<(), String> {
        c.set("security.protocol", self.protocol);
        if self.uses_sasl() {
            let user = self.username.ok_or("username is required with SASL")?;
            let password = secret::read(self.password_env, self.password_file)?
                .ok_or_else(|| format!("no SASL password: set {} or password_file", self.password_env))?;
            c.set("sasl.mechanisms", self.mechanism).set("sasl.username", user).set("sasl.password", password);
        }
        if self.uses_tls() {
            c.set("enable.ssl.certificate.verification", "true").set("ssl.endpoint.identification.algorithm", "https");
            if let Some(t) = self.tls {
                c.set("ssl.ca.location", t.ca_file.to_string_lossy());
                if let Some(cert) = &t.client_cert_file {
                    c.set("ssl.certificate.location", cert.to_string_lossy());
                }
                if let Some(key) = &t.client_key_file {
                    c.set("ssl.key.location", key.to_string_lossy());
                }
            }
        }
        Ok(())
    }

    /// The extra properties, set last so that they override everything else.
    pub fn apply_properties(&self, c: &mut ClientConfig) {
        for (k, v) in self.properties {
            c.set(k, v);
        }
    }
}
