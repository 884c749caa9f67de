//! Request counting, one rule for both ends of the Configuration API: the client counts what
//! it sends by method ([`RequestCounts`], in reports and `--sync-now` output), the embedded
//! server counts what it answers by method and status (the agent's `http_requests_total`,
//! through [`ResponseObserver`], by a method from a fixed set: [`method_label`]).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Requests sent, by method (every attempt counts: this is what the server sees).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RequestCounts {
    pub get: u64,
    pub post: u64,
    pub put: u64,
    pub delete: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.get + self.post + self.put + self.delete
    }
    pub fn writes(&self) -> u64 {
        self.post + self.put + self.delete
    }
}

impl std::fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests ({} GET, {} POST, {} PUT, {} DELETE)",
            self.total(),
            self.get,
            self.post,
            self.put,
            self.delete
        )
    }
}

/// The live, shared form of [`RequestCounts`] (clones of a client add to the same counters).
#[derive(Debug, Default)]
pub struct RequestCounter {
    get: AtomicU64,
    post: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
}

impl RequestCounter {
    /// Count one request; methods the API does not use (HEAD, OPTIONS) are not counted.
    pub fn record(&self, method: &str) {
        let c = match method {
            "GET" => &self.get,
            "POST" => &self.post,
            "PUT" => &self.put,
            "DELETE" => &self.delete,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            get: self.get.load(Ordering::Relaxed),
            post: self.post.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
        }
    }
}

/// Called with the method and status of every answered request (the agent's metrics). The
/// method is always one of [`METHOD_LABELS`] ([`method_label`]): a client chooses the method it
/// sends, before it is authenticated, so the raw token would be an unbounded label.
pub type ResponseObserver = Arc<dyn Fn(&str, u16) + Send + Sync>;

/// The only method values a metric label takes (issue 18 point 4).
pub const METHOD_LABELS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "other"];

/// `method` as a metric label: itself when it is one of [`METHOD_LABELS`], else `other`.
pub fn method_label(method: &str) -> &'static str {
    METHOD_LABELS[..6]
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}
