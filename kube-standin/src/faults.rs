//! Fault injection and the request log, applied by one middleware in front of every API route.
//!
//! A [`Fault`] matches on HTTP method and a substring of `path?query`, and fires a limited or unlimited
//! number of times: added latency, an error `Status` (500/503/429 with `Retry-After`), a watch cut after
//! N events, or a forced `410 Expired` on the next watch. kube 5 retries 429/503/504 by default, so error
//! faults should carry a count.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// What a fault does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FaultAction {
    /// Delay the request.
    #[serde(rename_all = "camelCase")]
    Latency {
        /// Milliseconds of delay.
        millis: u64,
    },
    /// Answer with an error `Status` instead of serving the request.
    #[serde(rename_all = "camelCase")]
    Error {
        /// 500, 503, 429, ...
        code: u16,
        /// `Retry-After` seconds (429 and 503).
        #[serde(default)]
        retry_after_seconds: Option<u32>,
    },
    /// End a watch stream after this many events.
    #[serde(rename_all = "camelCase")]
    DropWatch {
        /// Events delivered before the stream ends.
        after_events: usize,
    },
    /// Answer the next watch with a `410 Expired` ERROR event.
    ExpireWatch,
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// HTTP method to match (`GET`, `PATCH`, ...); `None` matches all.
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of `path?query` to match; empty matches all.
    #[serde(default)]
    pub path: String,
    /// What happens.
    pub action: FaultAction,
    /// How many more times it fires; `None` = forever.
    #[serde(default)]
    pub times: Option<u32>,
}

impl Fault {
    fn with(action: FaultAction) -> Self {
        Fault {
            method: None,
            path: String::new(),
            action,
            times: None,
        }
    }

    /// Adds latency to matching requests.
    pub fn latency(delay: Duration) -> Self {
        Self::with(FaultAction::Latency {
            millis: delay.as_millis() as u64,
        })
    }

    /// Answers matching requests with an error code (500 InternalError, 503 ServiceUnavailable, ...).
    pub fn error(code: u16) -> Self {
        Self::with(FaultAction::Error {
            code,
            retry_after_seconds: None,
        })
    }

    /// Answers 429 TooManyRequests with `Retry-After: seconds`.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        Self::with(FaultAction::Error {
            code: 429,
            retry_after_seconds: Some(retry_after_seconds),
        })
    }

    /// Ends matching watch streams after `n` events.
    pub fn drop_watch_after(n: usize) -> Self {
        Self::with(FaultAction::DropWatch { after_events: n })
    }

    /// Answers the next matching watch with `410 Expired`.
    pub fn expire_watch() -> Self {
        Self::with(FaultAction::ExpireWatch)
    }

    /// Restricts the fault to one HTTP method.
    pub fn on_method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Restricts the fault to requests whose `path?query` contains `fragment`.
    pub fn on_path(mut self, fragment: &str) -> Self {
        self.path = fragment.to_string();
        self
    }

    /// Fires `n` times, then disappears.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && target.contains(&self.path)
    }
}

/// What the middleware must do for one request.
#[derive(Debug, Default)]
pub struct Decision {
    /// Total delay to add.
    pub latency: Duration,
    /// Answer this instead of serving.
    pub error: Option<ApiError>,
    /// For watches: the per-stream behaviour.
    pub watch: WatchFault,
}

/// Watch-specific faults, passed to the watch handler through request extensions.
#[derive(Debug, Default, Clone, Copy)]
pub struct WatchFault {
    /// End the stream after this many events.
    pub drop_after: Option<usize>,
    /// Answer with 410 Expired.
    pub expire: bool,
}

/// The shared, mutable fault list.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Vec<Fault>>>);

impl Faults {
    /// Adds a rule.
    pub fn add(&self, fault: Fault) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(fault);
    }

    /// Removes all rules.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The current rules (with their remaining counts).
    pub fn list(&self) -> Vec<Fault> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Decides for one request, consuming counts of the rules that fire.
    pub fn decide(&self, method: &str, target: &str, is_watch: bool) -> Decision {
        let mut rules = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut d = Decision::default();
        for rule in rules.iter_mut() {
            if rule.times == Some(0) || !rule.matches(method, target) {
                continue;
            }
            let fired = match &rule.action {
                FaultAction::Latency { millis } => {
                    d.latency += Duration::from_millis(*millis);
                    true
                }
                FaultAction::Error {
                    code,
                    retry_after_seconds,
                } if d.error.is_none() => {
                    d.error = Some(injected(*code, *retry_after_seconds));
                    true
                }
                FaultAction::DropWatch { after_events } if is_watch && d.watch.drop_after.is_none() => {
                    d.watch.drop_after = Some(*after_events);
                    true
                }
                FaultAction::ExpireWatch if is_watch && !d.watch.expire => {
                    d.watch.expire = true;
                    true
                }
                _ => false,
            };
            if fired && let Some(n) = rule.times.as_mut() {
                *n -= 1;
            }
        }
        rules.retain(|r| r.times != Some(0));
        d
    }
}

fn injected(code: u16, retry_after: Option<u32>) -> ApiError {
    let (reason, message) = match code {
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later (injected by kube-standin)",
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request (injected by kube-standin)",
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted (injected by kube-standin)",
        ),
        _ => (
            "InternalError",
            "an error on the server (\"injected by kube-standin\") has prevented the request from succeeding",
        ),
    };
    ApiError {
        retry_after,
        ..ApiError::new(code, reason, message)
    }
}

/// One served request, as recorded by the middleware.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path, undecoded.
    pub path: String,
    /// Query string (may be empty).
    pub query: String,
    /// `Content-Type` of the request, if any.
    pub content_type: Option<String>,
    /// `User-Agent`, if any.
    pub user_agent: Option<String>,
    /// Who the request claimed to be (bearer token, `Impersonate-*` headers).
    pub identity: Identity,
    /// The response status code.
    pub status: u16,
}

/// The caller's credential and impersonation, as a real API server's audit log has them (the stand-in
/// authenticates nobody; tests check what a client sent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The token of `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    /// `Impersonate-User`.
    pub impersonate_user: Option<String>,
    /// `Impersonate-Group` (each header).
    pub impersonate_groups: Vec<String>,
    /// `Impersonate-Uid`.
    pub impersonate_uid: Option<String>,
}

/// The shared request log (bounded).
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<RequestRecord>>>);

impl RequestLog {
    /// Appends a record, dropping the oldest beyond 50,000.
    pub fn push(&self, r: RequestRecord) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= 50_000 {
            log.remove(0);
        }
        log.push(r);
    }

    /// All records so far.
    pub fn all(&self) -> Vec<RequestRecord> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets all records.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_matching() {
        let f = Faults::default();
        f.add(
            Fault::too_many_requests(1)
                .on_method("patch")
                .on_path("/secrets")
                .times(2),
        );
        f.add(Fault::latency(Duration::from_millis(5)));
        f.add(Fault::drop_watch_after(3).on_path("watch=true").times(1));
        assert!(
            f.decide("GET", "/api/v1/namespaces/a/secrets/x", false)
                .error
                .is_none()
        );
        let d = f.decide("PATCH", "/api/v1/namespaces/a/secrets/x", false);
        assert_eq!(d.error.unwrap().retry_after, Some(1));
        assert_eq!(d.latency, Duration::from_millis(5));
        assert!(
            f.decide("PATCH", "/api/v1/namespaces/a/secrets/x", false)
                .error
                .is_some()
        );
        assert!(
            f.decide("PATCH", "/api/v1/namespaces/a/secrets/x", false)
                .error
                .is_none()
        );
        assert_eq!(
            f.decide("GET", "/api/v1/pods?watch=true", true).watch.drop_after,
            Some(3)
        );
        assert_eq!(
            f.decide("GET", "/api/v1/pods?watch=true", true).watch.drop_after,
            None
        );
        assert_eq!(f.list().len(), 1);
    }

    #[test]
    fn serde_shape() {
        let f: Fault = serde_json::from_str(
            r#"{"method":"GET","path":"/pods","action":{"type":"error","code":500},"times":1}"#,
        )
        .unwrap();
        assert_eq!(f, Fault::error(500).on_method("GET").on_path("/pods").times(1));
    }
}
