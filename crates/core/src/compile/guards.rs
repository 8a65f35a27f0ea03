//! `[policy]` and `[engine]`: the settings the runner reads and the input guards.

use super::{Checked, Ctx};
use crate::diagnostic::{Code, Diagnostic};
use crate::guard::Guards;
use crate::model::PolicySettings;
use crate::policy::PolicyFile;

pub(super) fn compile(
    raw: &PolicyFile,
    checked: &Checked,
    cx: &mut Ctx<'_>,
) -> (PolicySettings, Guards) {
    if let Some(a) = &raw.policy.activity
        && !checked.metrics.iter().any(|m| &m.name == a)
    {
        cx.push(Diagnostic::unknown(
            Code::UnknownMetric,
            "policy.activity",
            "metric",
            a,
            checked.metrics.iter().map(|m| m.name.as_str()),
        ));
    }
    if let Some(h) = &raw.policy.household
        && !checked.metrics.iter().any(|m| &m.name == h)
    {
        cx.push(Diagnostic::unknown(
            Code::UnknownMetric,
            "policy.household",
            "metric",
            h,
            checked.metrics.iter().map(|m| m.name.as_str()),
        ));
    }
    let guards = limits(
        raw.policy
            .max_rejects
            .as_ref()
            .map(crate::policy::LimitDef::as_text)
            .as_deref(),
        raw.policy.max_shrink.as_deref(),
        raw.policy.non_finite.as_deref(),
        cx,
    );
    let p = &raw.policy;
    let settings = PolicySettings {
        name: p.name.clone(),
        as_of: p.as_of.clone(),
        currency: p.currency.clone(),
        overrides_file: p.overrides_file.clone(),
        activity: p.activity.clone(),
        household: p.household.clone(),
        cluster: raw
            .engine
            .as_ref()
            .and_then(|e| e.cluster.as_deref())
            .and_then(|url| match url.parse() {
                Ok(url) => Some(url),
                Err(e) => {
                    cx.push(Diagnostic::new(Code::InvalidEngine, "engine.cluster", e));
                    None
                }
            }),
        cluster_timeout_seconds: match raw.engine.as_ref().and_then(|e| e.timeout_seconds) {
            Some(0) => {
                cx.push(Diagnostic::new(
                    Code::InvalidEngine,
                    "engine.timeout_seconds",
                    "must be at least 1",
                ));
                None
            }
            t => t,
        },
    };
    (settings, guards)
}

/// `max_rejects`, `max_shrink` and `non_finite`.
fn limits(
    max_rejects: Option<&str>,
    max_shrink: Option<&str>,
    non_finite: Option<&str>,
    cx: &mut Ctx<'_>,
) -> Guards {
    let mut guards = Guards::default();
    match non_finite {
        None | Some("warn") => {}
        Some("error") => guards.non_finite_is_error = true,
        Some(other) => cx.push(Diagnostic::new(
            Code::InvalidLimit,
            "policy.non_finite",
            format!("`{other}` is neither \"warn\" nor \"error\""),
        )),
    }
    if let Some(s) = max_rejects {
        match s.parse() {
            Ok(l) => guards.max_rejects = l,
            Err(e) => cx.push(Diagnostic::new(Code::InvalidLimit, "policy.max_rejects", e)),
        }
    }
    if let Some(s) = max_shrink {
        match s.trim().strip_suffix('%').map(|p| p.trim().parse::<f64>()) {
            Some(Ok(v)) if (0.0..=100.0).contains(&v) => guards.max_shrink = v / 100.0,
            _ => cx.push(Diagnostic::new(
                Code::InvalidLimit,
                "policy.max_shrink",
                format!("`{s}` is not a share between 0% and 100% (write e.g. \"50%\")"),
            )),
        }
    }
    guards
}
