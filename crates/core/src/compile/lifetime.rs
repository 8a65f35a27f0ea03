//! `[lifetime]`: the purchases the lifetime models are fitted to.

use super::{Checked, Ctx};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Lifetime;
use crate::policy::PolicyFile;
use crate::time::TimeUnit;

/// `[lifetime]`, checked against the sources.
pub(super) fn compile(raw: &PolicyFile, checked: &Checked, cx: &mut Ctx<'_>) -> Option<Lifetime> {
    let def = raw.lifetime.as_ref()?;
    let sources = &checked.sources;
    let unit = match def.unit.as_deref() {
        None => TimeUnit::Week,
        Some(u) => match TimeUnit::parse(u) {
            // The models' periods: a year is longer than any customer's purchase rhythm.
            Some(unit) if unit != TimeUnit::Year => unit,
            _ => {
                cx.push(Diagnostic::new(
                    Code::InvalidUnit,
                    "lifetime.unit",
                    format!("unknown unit `{u}`; use day, week or month"),
                ));
                return None;
            }
        },
    };
    match sources.get(&def.source) {
        None => {
            cx.push(Diagnostic::unknown(
                Code::UnknownSource,
                "lifetime.source",
                "source",
                &def.source,
                sources.keys().map(String::as_str),
            ));
            return None;
        }
        Some(src) if src.time.is_none() => {
            cx.push(Diagnostic::new(
                Code::LifetimeWithoutTime,
                "lifetime.source",
                format!(
                    "source `{}` has no time column; the lifetime models need dated purchases",
                    def.source
                ),
            ));
            return None;
        }
        Some(_) => {}
    }
    Some(Lifetime {
        source: def.source.clone(),
        amount: def.amount.clone(),
        filter: def.filter.clone(),
        unit,
    })
}
