//! The Pulsar client, set up the same way by the sink and the source, and the checks of the
//! settings it is made from (`url`, `token_file`, `tls_ca_file`).

use crate::sink::{classify, Failure, Reason};
use ::pulsar::{Authentication, ConnectionRetryOptions, OperationRetryOptions, Pulsar, TokioExecutor};
use std::path::Path;
use std::time::Duration;
use tokio::time::timeout;

/// A connected Pulsar client.
pub(crate) type Client = Pulsar<TokioExecutor>;

/// Connects to `url` within `limit`: with token authentication when there is a `token`, and for
/// `pulsar+ssl://` with `tls_ca_file` as the only trusted CA and the broker's host name verified.
///
/// Fails fast: the callers retry with their own back-off (the sink's fan-out, the source's run loop
/// and watchdog), instead of the client's default dozen retries of up to 30 s each.
pub(crate) async fn connect(
    url: &str,
    token: Option<&str>,
    tls_ca_file: Option<&Path>,
    limit: Duration,
) -> Result<Client, Failure> {
    let mut builder = Pulsar::builder(url, TokioExecutor)
        .with_connection_retry_options(ConnectionRetryOptions {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_retries: 1,
            connection_timeout: limit.min(Duration::from_secs(10)),
            ..Default::default()
        })
        .with_operation_retry_options(OperationRetryOptions {
            operation_timeout: limit,
            retry_delay: Duration::from_millis(500),
            max_retries: Some(3),
        });
    if let Some(token) = token {
        builder = builder.with_auth(Authentication { name: "token".into(), data: token.as_bytes().to_vec() });
    }
    if let Some(ca) = tls_ca_file {
        builder = builder
            .with_certificate_chain_file(ca)
            .map_err(|e| Failure::new(Reason::Tls, format!("{}: {e}", ca.display())))?
            .with_allow_insecure_connection(false)
            .with_tls_hostname_verification_enabled(true);
    }
    match timeout(limit, builder.build()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(failure(&e)),
        Err(_) => Err(Failure::new(Reason::Timeout, format!("no connection within {limit:?}"))),
    }
}

/// A client error as a failure a user can act on.
pub(crate) fn failure(e: &::pulsar::Error) -> Failure {
    let message = e.to_string();
    Failure::new(classify(&message), message)
}

/// Whether `url`, a Pulsar service URL, uses TLS (`pulsar+ssl://`); why it is no service URL when
/// it is not (`pulsar://host:6650` or `pulsar+ssl://host:6651`). No network.
pub(crate) fn check_url(url: &str) -> Result<bool, String> {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "pulsar" || u.scheme() == "pulsar+ssl" => {
            if u.host_str().is_none_or(str::is_empty) {
                return Err(format!("`{url}` names no host"));
            }
            Ok(u.scheme() == "pulsar+ssl")
        }
        Ok(_) => Err(format!("`{url}` must start with pulsar:// or pulsar+ssl://")),
        Err(e) => Err(format!("`{url}` is not a URL: {e}")),
    }
}

/// Problems of the credentials, as (field, message): a `token_file` that cannot be read, a
/// `tls_ca_file` that no URL of the settings uses (`uses_tls` false; `tls_urls` says which URLs it
/// is for), or that is no readable PEM CA. No network.
pub(crate) fn credential_problems(
    token_file: Option<&Path>,
    tls_ca_file: Option<&Path>,
    uses_tls: bool,
    tls_urls: &str,
) -> Vec<(&'static str, String)> {
    let mut p: Vec<_> = crate::secret::file_problem("token_file", token_file).into_iter().collect();
    if let Some(ca) = tls_ca_file {
        if !uses_tls {
            p.push(("tls_ca_file", format!("is for {tls_urls}")));
        }
        let tls = crate::tls::TlsConfig { ca_file: ca.to_path_buf(), ..Default::default() };
        if let Err(e) = crate::tls::client_config(&tls) {
            p.push(("tls_ca_file", e.to_string()));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_are_pulsar_or_pulsar_ssl_with_a_host() {
        assert_eq!(check_url("pulsar://127.0.0.1:6650"), Ok(false));
        assert_eq!(check_url("pulsar+ssl://broker:6651"), Ok(true));
        assert!(check_url("http://broker:8080").unwrap_err().contains("must start with pulsar://"));
        assert!(check_url("pulsar://").unwrap_err().contains("names no host"));
        assert!(check_url("broker:6650 x").is_err());
    }

    #[test]
    fn credentials_are_checked_without_network() {
        assert!(credential_problems(None, None, false, "x").is_empty());
        let missing = Path::new("/nonexistent/file");
        let fields: Vec<_> =
            credential_problems(Some(missing), Some(missing), false, "pulsar+ssl:// URLs").into_iter().collect();
        assert_eq!(fields[0].0, "token_file");
        assert_eq!(fields[1], ("tls_ca_file", "is for pulsar+ssl:// URLs".to_string()));
        assert_eq!(fields[2].0, "tls_ca_file");
        assert_eq!(credential_problems(None, Some(missing), true, "x").len(), 1);
    }

    #[tokio::test]
    async fn an_unreadable_ca_file_is_a_tls_failure() {
        let ca = Path::new("/nonexistent/ca.pem");
        let f = connect("pulsar+ssl://127.0.0.1:1", None, Some(ca), Duration::from_secs(1)).await.err().unwrap();
        assert_eq!(f.reason, Reason::Tls);
        assert!(f.message.contains("/nonexistent/ca.pem"), "{}", f.message);
    }
}
