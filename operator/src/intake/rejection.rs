//! Why an alert is rejected, and whether a failed write can succeed on a retry. Pure.
//!
//! Intake handles every alert on its own: one alert that can never become an Incident must not
//! hold back the alerts received with it, nor be retried forever. A rejection is final (counted
//! in `salve_intake_rejected_total{reason}`, logged, dead-lettered on SQS, answered 200 on the
//! webhook); a transient failure is retried (the message stays on the queue, the webhook
//! answers 503).

/// The `reason` label of `salve_intake_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Not a payload intake can read (bad JSON, unknown shape, missing alert name or time).
    Malformed,
    /// No workload for the alarm: not in the map, no usable dimensions/labels.
    Unmappable,
    /// The workload's namespace is not in the policy's allowed namespaces.
    NamespaceNotAllowed,
    /// The API server answered 403: the operator's RBAC does not grant the write there.
    Forbidden,
    /// The API server answered 404: the namespace does not exist.
    NotFound,
    /// The API server answered 400 or 422: the object is invalid.
    Invalid,
    /// An OK older than every open Incident of its alarm: it belongs to an earlier firing.
    StaleOk,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "Malformed",
            Self::Unmappable => "Unmappable",
            Self::NamespaceNotAllowed => "NamespaceNotAllowed",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::Invalid => "Invalid",
            Self::StaleOk => "StaleOk",
        }
    }
}

/// An alert intake will never act on, and why (the message is for people: alarm names and
/// namespaces, never a token or a URL).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", reason.as_str())]
pub struct Rejection {
    pub reason: Reason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

/// The rejection an API status code means, or `None` when a retry can help.
///
/// Permanent: 400 and 422 (the API server refuses the object itself), 403 (RBAC: the chart
/// grants writes only in the allowed namespaces, and a retry sends the same request as the same
/// user), 404 (the namespace is missing: the NamespaceLifecycle admission plugin answers
/// `namespaces "x" not found`). Everything else — 401 (credentials are rotated), 409 (a
/// conflict), 429, 5xx, and no answer at all — may succeed later.
pub fn permanent(code: u16) -> Option<Reason> {
    match code {
        400 | 422 => Some(Reason::Invalid),
        403 => Some(Reason::Forbidden),
        404 => Some(Reason::NotFound),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_a_retry_cannot_change_are_permanent() {
        assert_eq!(permanent(403), Some(Reason::Forbidden));
        assert_eq!(permanent(404), Some(Reason::NotFound));
        assert_eq!(permanent(422), Some(Reason::Invalid));
        assert_eq!(permanent(400), Some(Reason::Invalid));
        for retryable in [401, 409, 429, 500, 503, 504] {
            assert_eq!(permanent(retryable), None, "{retryable}");
        }
    }
}
