//! rustls client configurations from PEM files. Certificates are always verified: there is no
//! "insecure" switch, a private CA is given with `ca_file` instead.

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// TLS settings of a client connection.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA(s) that signed the server certificate. Required: the project ships no
    /// bundle of public roots, and a private CA is the common case for brokers.
    pub ca_file: PathBuf,
    /// PEM client certificate, for servers that require mutual TLS. Goes with `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM {what}")]
    Empty { path: PathBuf, what: &'static str },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client_cert_file and client_key_file go together: set both or neither")]
    HalfClientAuth,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read { path: path.to_path_buf(), source })?;
    if certs.is_empty() {
        return Err(TlsError::Empty { path: path.to_path_buf(), what: "certificate" });
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Read { path: path.to_path_buf(), source })?
        .ok_or_else(|| TlsError::Empty { path: path.to_path_buf(), what: "private key" })
}

/// The ring provider, named explicitly: with two providers linked (reqwest brings ring, other
/// crates aws-lc) rustls refuses to pick one implicitly.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A verifying client config for `tls`.
pub fn client_config(tls: &TlsConfig) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(&tls.ca_file)? {
        roots.add(cert)?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(k)) => Ok(builder.with_client_auth_cert(certs(cert)?, key(k)?)?),
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(TlsError::HalfClientAuth),
    }
}
