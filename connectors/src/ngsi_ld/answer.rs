//! What an NGSI-LD broker's answers say, in each dialect the brokers speak:
//! - a ProblemDetails body (`type`, `title`, `detail`) for a whole request (ETSI GS CIM 009 5.5);
//! - a batch result whose `errors` items are the specification's BatchEntityError
//!   `{"entityId", "error": ProblemDetails}` (Orion-LD, Stellio), or Scorpio's
//!   `{"id", "ProblemDetails"}` (without `success` when every item failed);
//! - an error body that is such an `errors` list (Scorpio's 503 for an unreachable `@context`).
//!
//! Log lines keep the ProblemDetails type whole (`https://uri.etsi.org/ngsi-ld/errors/...`): it is
//! what an operator searches for.

use crate::http_client;
use serde_json::Value;

/// A ProblemDetails.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Problem {
    pub kind: String,
    pub title: String,
    pub detail: String,
}

/// ProblemDetails types about the entity itself: sending it again unchanged cannot succeed. Every
/// other type (`LdContextNotAvailable`, `InternalError`, `TenantNotFound`, ...) is about the broker.
const ABOUT_THE_DATA: [&str; 2] = ["BadRequestData", "InvalidRequest"];

impl Problem {
    fn from_value(v: &Value) -> Option<Problem> {
        let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let p = Problem { kind: field("type"), title: field("title"), detail: field("detail") };
        (!(p.kind.is_empty() && p.title.is_empty() && p.detail.is_empty())).then_some(p)
    }

    /// The last segment of the type (`BadRequestData`).
    pub fn short_kind(&self) -> &str {
        self.kind.rsplit('/').next().unwrap_or(&self.kind)
    }

    pub fn about_the_data(&self) -> bool {
        ABOUT_THE_DATA.contains(&self.short_kind())
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<&str> = [self.kind.as_str(), self.title.as_str(), self.detail.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        f.write_str(&parts.join(": "))
    }
}

/// One item of a batch answer's `errors`, in either dialect.
fn error_item(item: &Value) -> Option<(String, Option<Problem>)> {
    let id = item.get("entityId").or_else(|| item.get("id")).and_then(Value::as_str)?;
    let problem = item.get("error").or_else(|| item.get("ProblemDetails")).and_then(Problem::from_value);
    Some((id.to_string(), problem))
}

/// The problem an error answer names: a top-level ProblemDetails, or the first item of an `errors`
/// list (with its entity); `None` when the body says neither.
pub(super) fn problem_of(body: &str) -> Option<Problem> {
    let v: Value = serde_json::from_str(body).ok()?;
    if let Some(p) = Problem::from_value(&v) {
        return Some(p);
    }
    let (id, p) = v.get("errors")?.as_array()?.iter().find_map(error_item)?;
    p.map(|p| Problem { detail: format!("{} (entity {id})", p.detail).trim_start().to_string(), ..p })
}

/// An error answer on one line: its problem, or an excerpt of whatever came.
pub(super) fn problem(body: &str) -> String {
    problem_of(body).map_or_else(|| http_client::excerpt(body), |p| p.to_string())
}

/// An entity a 207 answer lists as failed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Failed {
    pub id: String,
    pub problem: Option<Problem>,
}

impl Failed {
    /// A failure about the entity itself (rejected), or about the broker (sent again); an item
    /// without a ProblemDetails tells nothing about the data: sent again.
    pub fn about_the_data(&self) -> bool {
        self.problem.as_ref().is_some_and(Problem::about_the_data)
    }

    pub fn why(&self) -> String {
        self.problem.as_ref().map_or_else(|| "no ProblemDetails".to_string(), |p| p.to_string())
    }
}

/// The `errors` of a 207 batch answer, in either dialect; `Err` when the body is not a batch result.
pub(super) fn failed_entities(body: &str) -> Result<Vec<Failed>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let Some(errors) = v.get("errors") else { return Ok(Vec::new()) };
    let errors = errors.as_array().ok_or("`errors` is not an array")?;
    errors
        .iter()
        .map(|e| {
            let (id, problem) = error_item(e).ok_or("an error item without `entityId` (or `id`)")?;
            Ok(Failed { id, problem })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: &str = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData";

    #[test]
    fn both_batch_dialects_are_read() {
        let spec = format!(
            r#"{{"success":["urn:b"],"errors":[{{"entityId":"urn:a","error":{{"type":"{BAD}","title":"bad","detail":"no unitCode"}}}}]}}"#
        );
        let failed = failed_entities(&spec).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].id, "urn:a");
        assert!(failed[0].about_the_data());
        assert_eq!(failed[0].why(), format!("{BAD}: bad: no unitCode"));
        // Scorpio: `id` and `ProblemDetails`, no `success` when everything failed.
        let scorpio = r#"{"errors":[{"type":"Upsert","id":"urn:c","ProblemDetails":{"type":"https://uri.etsi.org/ngsi-ld/errors/InternalError","title":"db down"}}]}"#;
        let failed = failed_entities(scorpio).unwrap();
        assert_eq!((failed[0].id.as_str(), failed[0].about_the_data()), ("urn:c", false));
        // No ProblemDetails: nothing known about the data.
        assert!(!failed_entities(r#"{"errors":[{"entityId":"urn:d"}]}"#).unwrap()[0].about_the_data());
        assert!(failed_entities(r#"{"errors":[{"nope":1}]}"#).is_err());
        assert!(failed_entities(r#"{"errors":{}}"#).is_err());
        assert!(failed_entities("not json").is_err());
        assert!(failed_entities(r#"{"success":["a"]}"#).unwrap().is_empty());
    }

    #[test]
    fn error_bodies_keep_the_type_whole_in_every_shape() {
        let top = r#"{"type":"https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable","title":"cannot fetch","detail":"http://ctx"}"#;
        assert_eq!(problem(top), "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable: cannot fetch: http://ctx");
        // Scorpio's 503: an `errors` list in place of a ProblemDetails.
        let listed = r#"{"errors":[{"id":"urn:x","ProblemDetails":{"type":"https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable","title":"Unable to load remote context","detail":"timeout"}}]}"#;
        assert_eq!(
            problem(listed),
            "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable: Unable to load remote context: timeout (entity urn:x)"
        );
        assert_eq!(problem("<html>gateway</html>"), "<html>gateway</html>");
        assert_eq!(problem_of(r#"{"errors":[]}"#), None);
    }
}
