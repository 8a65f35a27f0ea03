//! `[service]` and `[benefits.*]`: differentiated service, checked against the ladders and metrics.

use super::{Checked, Ctx};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Ladder;
use crate::policy::{PolicyFile, QuotaDef};
use crate::service::{Benefit, Quota, QuotaPeriod, Service};

/// `[service]` and `[benefits.*]`, checked against the ladders and metrics.
pub(super) fn compile(raw: &PolicyFile, checked: &Checked, cx: &mut Ctx<'_>) -> Option<Service> {
    let (ladders, metrics) = (&checked.ladders, &checked.metrics);
    if raw.service.is_none() && raw.benefits.is_empty() {
        return None;
    }
    let def = raw.service.clone().unwrap_or_default();
    let ladder = match &def.ladder {
        Some(name) => match ladders.iter().position(|l| &l.name == name) {
            Some(i) => i,
            None => {
                cx.push(
                    Diagnostic::new(
                        Code::UnknownLadder,
                        "service.ladder",
                        format!("no ladder named `{name}`"),
                    )
                    .suggest(name, ladders.iter().map(|l| l.name.as_str())),
                );
                return None;
            }
        },
        None if !ladders.is_empty() => 0,
        None => {
            cx.push(Diagnostic::new(
                Code::UnknownLadder,
                "service",
                "service and benefits need a ladder, and the policy has none",
            ));
            return None;
        }
    };
    let lad = &ladders[ladder];
    let timezone = match def.timezone.as_deref() {
        None => chrono_tz::UTC,
        Some(name) => match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                cx.push(
                    Diagnostic::new(
                        Code::InvalidTimezone,
                        "service.timezone",
                        format!("`{name}` is not an IANA timezone"),
                    )
                    .with_help("e.g. \"Asia/Shanghai\", \"Europe/Berlin\", \"UTC\""),
                );
                chrono_tz::UTC
            }
        },
    };
    if let Some(owner) = &def.owner
        && !metrics.iter().any(|m| &m.name == owner)
    {
        cx.push(
            Diagnostic::new(
                Code::UnknownMetric,
                "service.owner",
                format!(
                    "no metric named `{owner}` (the owner is a text metric of the customers source)"
                ),
            )
            .suggest(owner, metrics.iter().map(|m| m.name.as_str())),
        );
    }
    let seconds = def.sla_seconds.unwrap_or(20.0);
    let target = def.sla_target.unwrap_or(0.85);
    if !(0.0..=1.0).contains(&target) {
        cx.push(Diagnostic::new(
            Code::InvalidSlaTarget,
            "service.sla_target",
            format!("sla_target is a share between 0 and 1, not {target}"),
        ));
    }
    let (sla_seconds, sla_target, callback_hours) = sla_defaults(lad, seconds, target);
    let mut benefits = Vec::new();
    for (name, b) in &raw.benefits {
        let key = format!("benefits.{name}");
        let period = match b.period.as_deref() {
            None => QuotaPeriod::Year,
            Some(text) => match QuotaPeriod::parse(text) {
                Some(p) => p,
                None => {
                    cx.push(
                        Diagnostic::new(
                            Code::InvalidPeriod,
                            format!("{key}.period"),
                            format!("`{text}` is not a quota period"),
                        )
                        .with_help("use day, month, year, or a rolling window such as \"30 days\""),
                    );
                    continue;
                }
            },
        };
        let mut quota = vec![Quota::NotEligible; lad.levels.len()];
        for (level, q) in &b.quota {
            let Some(l) = lad.level_index(level) else {
                cx.push(
                    Diagnostic::new(
                        Code::UnknownLevel,
                        format!("{key}.quota.{level}"),
                        format!("ladder `{}` has no level `{level}`", lad.name),
                    )
                    .suggest(level, lad.levels.iter().map(|l| l.name.as_str())),
                );
                continue;
            };
            quota[l] = match q {
                QuotaDef::Count(n) if *n >= 0 => Quota::Limited(*n as u32),
                QuotaDef::Word(w) if w == "unlimited" => Quota::Unlimited,
                other => {
                    cx.push(Diagnostic::new(
                        Code::InvalidQuota,
                        format!("{key}.quota.{level}"),
                        format!(
                            "a quota is a number of uses (0 or more) or \"unlimited\", not {}",
                            match other {
                                QuotaDef::Count(n) => n.to_string(),
                                QuotaDef::Word(w) => format!("\"{w}\""),
                            }
                        ),
                    ));
                    continue;
                }
            };
        }
        if b.grant_hours == Some(0) {
            cx.push(Diagnostic::new(
                Code::InvalidGrant,
                format!("{key}.grant_hours"),
                "grant_hours must be at least 1",
            ));
        }
        benefits.push(Benefit {
            name: name.clone(),
            title: b.title.clone(),
            label: b.label.clone(),
            period,
            quota,
            grant_hours: b.grant_hours,
        });
    }
    Some(Service {
        ladder,
        ladder_name: lad.name.clone(),
        levels: lad.levels.iter().map(|l| l.name.clone()).collect(),
        timezone,
        owner: def.owner.clone(),
        last_tags: def
            .last_tags
            .clone()
            .unwrap_or_else(|| vec!["blacklist".to_string()]),
        aging_minutes: def.aging_minutes.unwrap_or(10),
        sla_seconds,
        sla_target,
        default_sla: (seconds, target),
        callback_hours,
        benefits,
    })
}

/// Reads a number level attribute.
fn attr_f64(ladder: &Ladder, level: usize, key: &str) -> Option<f64> {
    ladder.levels[level]
        .attributes
        .get(key)
        .and_then(|v| match v {
            toml::Value::Integer(i) => Some(*i as f64),
            toml::Value::Float(f) => Some(*f),
            _ => None,
        })
}

fn sla_defaults(
    ladder: &Ladder,
    seconds: f64,
    target: f64,
) -> (Vec<f64>, Vec<f64>, Vec<Option<u32>>) {
    let n = ladder.levels.len();
    (
        (0..n)
            .map(|l| attr_f64(ladder, l, "sla_seconds").unwrap_or(seconds))
            .collect(),
        (0..n)
            .map(|l| attr_f64(ladder, l, "sla_target").unwrap_or(target))
            .collect(),
        (0..n)
            .map(|l| attr_f64(ladder, l, "callback_hours").map(|h| h.max(0.0) as u32))
            .collect(),
    )
}
