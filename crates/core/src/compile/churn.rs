//! `[churn]`: who `stratum churn` warns about.

use super::{Checked, Ctx};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{ChurnRule, MetricKind};
use crate::policy::PolicyFile;

pub(super) fn compile(raw: &PolicyFile, checked: &Checked, cx: &mut Ctx<'_>) -> Option<ChurnRule> {
    let def = raw.churn.as_ref()?;
    let (ladders, metrics) = (&checked.ladders, &checked.metrics);
    let names = || metrics.iter().map(|m| m.name.as_str());
    let mut ok = true;
    let p_alive = def.p_alive.clone().unwrap_or_else(|| "p_alive".into());
    let mut metric = |key: &str, name: &str, cx: &mut Ctx<'_>| {
        if !metrics.iter().any(|m| m.name == name) {
            cx.push(Diagnostic::unknown(
                Code::UnknownMetric,
                format!("churn.{key}"),
                "metric",
                name,
                names(),
            ));
            ok = false;
        }
    };
    metric("p_alive", &p_alive, cx);
    if let Some(v) = &def.value {
        metric("value", v, cx);
    }
    for (key, v) in [("below", def.below), ("drop", def.drop)] {
        if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            cx.push(Diagnostic::new(
                Code::InvalidChurn,
                format!("churn.{key}"),
                format!("`{key}` is a probability: between 0 and 1"),
            ));
            ok = false;
        }
    }
    if let Some(l) = &def.ladder
        && !ladders.iter().any(|x| &x.name == l)
    {
        cx.push(Diagnostic::unknown(
            Code::UnknownLadder,
            "churn.ladder",
            "ladder",
            l,
            ladders.iter().map(|x| x.name.as_str()),
        ));
        ok = false;
    }
    if ok
        && !metrics
            .iter()
            .any(|m| m.name == p_alive && matches!(m.kind, MetricKind::Lifetime { .. }))
    {
        cx.push(Diagnostic::new(
            Code::ChurnWithoutModel,
            "churn.p_alive",
            format!(
                "`{p_alive}` is not a lifetime metric; it is read as a probability all the same"
            ),
        ));
    }
    ok.then(|| ChurnRule {
        p_alive,
        below: def.below.unwrap_or(0.5),
        drop: def.drop.unwrap_or(0.2),
        value: def.value.clone(),
        ladder: def.ladder.clone(),
    })
}
