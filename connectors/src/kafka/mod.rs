//! Kafka: a producer sink on librdkafka (rdkafka), one topic per sensor kind (`{kind}` by default:
//! `traffic`, `air-quality`, ...), the sensor id as message key (one sensor stays in one partition,
//! in order) and the JSON wire format as value; and a consumer-group source over the same topics
//! (`source.rs`, `source_config.rs`) that commits only acknowledged offsets.
//!
//! The pure part lives here: sorting librdkafka's errors into retry or reject, and the text of its
//! messages. Shared by the sink and the source: the security settings (`security.rs`) and the
//! rate-limited logging of librdkafka's callbacks (`log.rs`); shared with the REST proxy source: the
//! commit bookkeeping (`commits.rs`).

pub mod commits;
pub mod config;
mod log;
mod security;
pub mod sink;
pub mod source;
pub mod source_config;

pub use config::KafkaConfig;
pub use log::{librdkafka_log_level, LogContext};
pub use sink::KafkaSink;
pub use source::KafkaSource;
pub use source_config::KafkaSourceConfig;

use crate::sink::{classify, expand_topic, topic_template_problem, Reason};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use smartcity_model::SensorKind;

/// Why `template` cannot name Kafka topics, if it cannot: on top of the common template rules,
/// Kafka takes only ASCII letters, digits, `.`, `_` and `-`, at most 249 of them. Checked here
/// because a broker refuses such a topic only at the first write. Shared with `kafka_rest`.
pub fn topic_problem(template: &str) -> Option<String> {
    if let Some(p) = topic_template_problem(template) {
        return Some(p);
    }
    // The longest kind name gives the longest topic.
    let topic = expand_topic(template, SensorKind::AirQuality.as_str());
    if topic.len() > 249 {
        return Some(format!("`{template}` gives topics longer than Kafka's 249 characters"));
    }
    if topic == "."
        || topic == ".."
        || !topic.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Some(format!("`{template}`: Kafka topic names take only letters, digits, `.`, `_` and `-`"));
    }
    None
}

/// The error code inside a librdkafka error, when it carries one.
fn code_of(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    e.rdkafka_error_code()
}

/// True when the broker refused the message itself: sending it again unchanged cannot succeed.
/// Everything else (timeouts, brokers down, authentication, a topic missing, refused to us or with
/// an invalid name) is about the destination and retried with back-off (`docs/failures.md`).
pub fn is_permanent(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidRecord
    )
}

/// The [`Reason`] of a librdkafka error: by its code where that says it, else by its words.
pub fn reason_of(code: Option<RDKafkaErrorCode>, message: &str) -> Reason {
    match code {
        Some(c) if is_permanent(c) => Reason::Rejected,
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => Reason::Auth,
        Some(RDKafkaErrorCode::ClusterAuthorizationFailed | RDKafkaErrorCode::TopicAuthorizationFailed) => Reason::Auth,
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::InvalidTopic,
        ) => Reason::Missing,
        Some(RDKafkaErrorCode::SSL) => Reason::Tls,
        Some(
            RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::TimedOutQueue,
        ) => Reason::Timeout,
        _ => classify(without_broker(message)),
    }
}

/// The reason of a [`KafkaError`] and a one-line message for it.
pub fn describe(e: &KafkaError) -> (Reason, String) {
    let message = e.to_string();
    (reason_of(code_of(e), &message), message)
}

/// librdkafka starts its messages with the broker (`sasl_ssl://10.0.0.5:9093/1: SASL authentication
/// error: ...`, `10.0.0.5:9092/bootstrap: Connect to ...`); the protocol name in it would make every
/// message look like a TLS problem.
pub fn without_broker(message: &str) -> &str {
    match message.split_once(": ") {
        Some((head, rest)) if head.contains('/') && !head.contains(char::is_whitespace) => rest,
        _ => message,
    }
}

/// A librdkafka message as one readable line: the thread prefix of its log lines (`[thrd:...]: `)
/// dropped and the broker moved to the end, so that the cause comes first.
pub fn tidy(message: &str) -> String {
    let message = match message.strip_prefix("[thrd:").and_then(|m| m.split_once("]: ")) {
        Some((_, rest)) => rest,
        None => message,
    };
    let cause = without_broker(message);
    if cause.len() == message.len() {
        message.to_string()
    } else {
        let broker = &message[..message.len() - cause.len() - 2];
        format!("{cause} (broker {broker})")
    }
}

/// The part of a (tidied) librdkafka message that stays the same when it repeats: librdkafka
/// appends timings and counts (`(after 3ms in state AUTH_REQ, 4 identical error(s) suppressed)`)
/// that change every time.
pub fn repeat_key(message: &str) -> &str {
    match message.find(" (after ") {
        Some(i) => &message[..i],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert_eq!(topic_problem("{kind}"), None);
        assert_eq!(topic_problem("smartcity.{kind}_v1"), None);
        assert!(topic_problem("tmp#{kind}").is_some());
        assert!(topic_problem("city/{kind}").is_some());
        assert!(topic_problem("{type}").is_some());
        assert!(topic_problem(&"x".repeat(250)).is_some());
    }

    #[test]
    fn broker_prefix_does_not_make_auth_look_like_tls() {
        let m = "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed: \
                 Invalid username or password (after 3ms in state AUTH_REQ, 4 identical error(s) suppressed)";
        assert_eq!(reason_of(None, m), Reason::Auth);
        assert_eq!(reason_of(Some(RDKafkaErrorCode::Authentication), m), Reason::Auth);
        let tls = "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: certificate verify failed";
        assert_eq!(reason_of(None, tls), Reason::Tls);
        let refused = "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused";
        assert_eq!(reason_of(None, refused), Reason::Connect);
        assert_eq!(reason_of(None, "1/1 brokers are down"), Reason::Connect);
    }

    #[test]
    fn codes_sort_into_retry_and_reject() {
        assert_eq!(reason_of(Some(RDKafkaErrorCode::MessageTimedOut), "Local: Message timed out"), Reason::Timeout);
        assert_eq!(reason_of(Some(RDKafkaErrorCode::MessageSizeTooLarge), "too large"), Reason::Rejected);
        assert_eq!(reason_of(Some(RDKafkaErrorCode::InvalidRecord), "bad"), Reason::Rejected);
        // About the destination: a permission, a missing or misnamed topic; retried, never refused.
        assert_eq!(reason_of(Some(RDKafkaErrorCode::TopicAuthorizationFailed), "denied"), Reason::Auth);
        assert_eq!(reason_of(Some(RDKafkaErrorCode::UnknownTopicOrPartition), "unknown"), Reason::Missing);
        assert!(!is_permanent(RDKafkaErrorCode::BrokerNotAvailable));
        assert!(!is_permanent(RDKafkaErrorCode::SaslAuthenticationFailed));
        assert!(!is_permanent(RDKafkaErrorCode::TopicAuthorizationFailed));
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTopic);
        assert_eq!(describe(&e).0, Reason::Missing);
    }

    #[test]
    fn repeats_are_recognised_despite_timings() {
        let a = "x://h:1/b: SASL authentication error: failed (after 3ms in state AUTH_REQ)";
        let b = "x://h:1/b: SASL authentication error: failed (after 7ms in state AUTH_REQ, 2 identical error(s) suppressed)";
        assert_eq!(repeat_key(a), repeat_key(b));
        assert_eq!(repeat_key("plain"), "plain");
    }

    #[test]
    fn tidy_puts_the_cause_first() {
        let log =
            "[thrd:sasl_ssl://127.0.0.1:9093/bootstrap]: sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication \
                   error: Authentication failed (after 3ms in state AUTH_REQ)";
        let callback = "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed \
                        (after 5ms in state AUTH_REQ, 1 identical error(s) suppressed)";
        assert!(tidy(log).starts_with("SASL authentication error: Authentication failed"), "{}", tidy(log));
        assert!(tidy(log).ends_with("(broker sasl_ssl://127.0.0.1:9093/bootstrap)"));
        assert_eq!(repeat_key(&tidy(log)), repeat_key(&tidy(callback)));
        assert_eq!(tidy("1/1 brokers are down"), "1/1 brokers are down");
        assert_eq!(
            tidy("127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"),
            "Connect to ipv4#127.0.0.1:1 failed: Connection refused (broker 127.0.0.1:1/bootstrap)"
        );
        assert_eq!(tidy("Local: Broker transport failure"), "Local: Broker transport failure");
    }
}
