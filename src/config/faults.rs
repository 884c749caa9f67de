//! `[server.faults]`: fault injection for tests of the embedded endpoint (a TEST FACILITY).

use super::parse::ParseError;
use serde::Deserialize;

/// `[server.faults]`: a TEST FACILITY that makes the embedded endpoint misbehave on purpose
/// (errors, dropped connections, latency, slow answers) so that tests can prove the agent
/// survives a faulty network. Absent by default; never set it in production.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsConfig {
    /// Seed of the random choices, for reproducible runs (absent: a random seed).
    pub seed: Option<u64>,
    /// Answer 500 before the request reaches its handler (nothing is applied).
    pub error_500: Option<FaultRule>,
    /// Let the handler apply and commit the request, then close the connection without a
    /// response: the client sees an error for a write that happened.
    pub drop_after_apply: Option<FaultRule>,
    /// Add `delay_ms` (default 100) before the request is handled; combines with the others.
    pub latency: Option<FaultRule>,
    /// Hold the request for `delay_ms` (default 60000, past any client timeout), then apply
    /// it anyway (as a servlet server does after the client gave up) and answer late.
    pub slow: Option<FaultRule>,
}

/// One fault kind: the share of matching requests it hits and which requests match.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Share of matching requests, 0.0 to 1.0.
    pub share: f64,
    /// Methods it applies to (e.g. `["POST", "PUT"]`); empty: all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path fragments it applies to: a request matches when its path contains one of them
    /// (a prefix such as `/communication_manager/api/resource/asterisk` or a word such as
    /// `extensions`); empty: all.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Delay of `latency` and `slow`, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

impl FaultRule {
    /// A rule hitting `share` of all requests.
    pub fn share(share: f64) -> FaultRule {
        FaultRule {
            share,
            ..FaultRule::default()
        }
    }
}

impl FaultsConfig {
    pub(super) fn validate(&self) -> Result<(), ParseError> {
        let rules = [
            ("error_500", &self.error_500),
            ("drop_after_apply", &self.drop_after_apply),
            ("latency", &self.latency),
            ("slow", &self.slow),
        ];
        for (name, rule) in rules {
            let Some(r) = rule else { continue };
            if !(0.0..=1.0).contains(&r.share) {
                return Err(format!("server.faults.{name}.share must be between 0 and 1").into());
            }
            for m in &r.methods {
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(format!(
                        "server.faults.{name}.methods: {m:?} is not an HTTP method"
                    )
                    .into());
                }
            }
            if r.delay_ms.is_some() && matches!(name, "error_500" | "drop_after_apply") {
                return Err(format!(
                    "server.faults.{name}.delay_ms: only latency and slow have a delay"
                )
                .into());
            }
        }
        // error_500, drop_after_apply and slow exclude each other (one draw per request).
        let exclusive: f64 = [&self.error_500, &self.drop_after_apply, &self.slow]
            .iter()
            .filter_map(|r| r.as_ref().map(|r| r.share))
            .sum();
        if exclusive > 1.0 + 1e-9 {
            return Err(
                "server.faults: the shares of error_500, drop_after_apply and slow add up to \
                 more than 1"
                    .into(),
            );
        }
        Ok(())
    }
}
