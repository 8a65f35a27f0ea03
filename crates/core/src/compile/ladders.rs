//! `[ladders.*]`: levels and their rules, conditions, holds and overrides.

use std::collections::HashSet;

use super::{Checked, Ctx, valid_name};
use crate::cond::{Cond, parse_condition};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Ladder, Level, Rule};
use crate::policy::*;

pub(super) fn compile(raw: &PolicyFile, checked: &Checked, cx: &mut Ctx<'_>) -> Vec<Ladder> {
    let value_names = checked.value_names();
    let mut ladders = Vec::new();
    for (name, def) in &raw.ladders {
        if let Some(l) = compile_ladder(name, def, &value_names, cx) {
            ladders.push(l);
        }
    }
    if raw.ladders.is_empty() {
        cx.push(Diagnostic::new(
            Code::NoLadders,
            "ladders",
            "the policy defines no ladders, so no one is placed",
        ));
    }

    ladders
}

fn compile_condition(text: &str, key: &str, names: &[String], cx: &mut Ctx<'_>) -> Option<Cond> {
    match parse_condition(text) {
        Ok(cond) => {
            let mut ok = true;
            for n in cond.names() {
                if !names.iter().any(|k| k == n) {
                    ok = false;
                    cx.push(
                        Diagnostic::new(
                            Code::UnknownMetric,
                            key,
                            format!("unknown metric or score `{n}` in `{text}`"),
                        )
                        .suggest(n, names.iter().map(String::as_str)),
                    );
                }
            }
            ok.then_some(cond)
        }
        Err(e) => {
            cx.push(Diagnostic::new(Code::InvalidCondition, key, e));
            None
        }
    }
}

fn compile_ladder(
    name: &str,
    def: &LadderDef,
    names: &[String],
    cx: &mut Ctx<'_>,
) -> Option<Ladder> {
    let key = format!("ladders.{name}");
    let mut ok = true;
    if !valid_name(name) {
        cx.push(Diagnostic::new(
            Code::InvalidName,
            &key,
            format!("ladder name `{name}` must be lower-case letters, digits and _"),
        ));
        ok = false;
    }
    for (field, value) in [("rank_by", &def.rank_by), ("value", &def.value)] {
        if let Some(v) = value
            && !names.iter().any(|n| n == v)
        {
            cx.push(Diagnostic::unknown(
                Code::UnknownMetric,
                format!("{key}.{field}"),
                "metric or score",
                v,
                names.iter().map(String::as_str),
            ));
            ok = false;
        }
    }
    if def.levels.is_empty() {
        cx.push(Diagnostic::new(
            Code::NoLevels,
            &key,
            format!("ladder `{name}` has no levels"),
        ));
        return None;
    }
    let applies_to = match &def.applies_to {
        Some(text) => {
            let c = compile_condition(text, &format!("{key}.applies_to"), names, cx);
            ok &= c.is_some();
            c
        }
        None => None,
    };
    let mut levels = Vec::new();
    let mut seen = HashSet::new();
    let mut share_sum = 0.0;
    for (i, l) in def.levels.iter().enumerate() {
        let lkey = format!("{key}.levels[{i}]");
        if let Some(placeholder) = crate::model::Placeholder::named(&l.name) {
            cx.push(
                Diagnostic::new(
                    Code::ReservedLevel,
                    format!("{lkey}.name"),
                    format!(
                        "`{}` is what Stratum calls a customer {}; a level cannot be named so",
                        l.name,
                        placeholder.meaning()
                    ),
                )
                .with_help("rename the level"),
            );
            ok = false;
        }
        if !seen.insert(l.name.as_str()) {
            cx.push(Diagnostic::new(
                Code::DuplicateLevel,
                format!("{lkey}.name"),
                format!("level `{}` appears twice in ladder `{name}`", l.name),
            ));
            ok = false;
        }
        let when = match &l.when {
            Some(text) => match compile_condition(text, &format!("{lkey}.when"), names, cx) {
                Some(c) => Some(c),
                None => {
                    ok = false;
                    continue;
                }
            },
            None => None,
        };
        let quotas = [
            l.top_share.is_some(),
            l.top_n.is_some(),
            l.value_share.is_some(),
            l.rest,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if quotas > 1 {
            cx.push(Diagnostic::new(
                Code::AmbiguousRule,
                &lkey,
                format!(
                    "level `{}` has more than one of top_share, top_n, value_share, rest",
                    l.name
                ),
            ));
            ok = false;
            continue;
        }
        let needs_rank = l.top_share.is_some() || l.top_n.is_some() || l.value_share.is_some();
        if needs_rank && def.rank_by.is_none() {
            cx.push(
                Diagnostic::new(
                    Code::MissingRankBy,
                    &key,
                    format!(
                        "level `{}` takes customers by rank, so ladder `{name}` needs `rank_by`",
                        l.name
                    ),
                )
                .with_help("add rank_by = \"<metric or score>\" to the ladder"),
            );
            ok = false;
        }
        for (field, share) in [("top_share", l.top_share), ("value_share", l.value_share)] {
            if let Some(s) = share
                && !(s.is_finite() && (0.0..=1.0).contains(&s))
            {
                cx.push(Diagnostic::new(
                    Code::InvalidShare,
                    format!("{lkey}.{field}"),
                    format!("{field} {s} must be between 0 and 1 (0.19 = 19%)"),
                ));
                ok = false;
            }
        }
        let rule = match (l.top_share, l.top_n, l.value_share, l.rest, when) {
            (Some(share), _, _, _, when) => {
                share_sum += share;
                Rule::TopShare { share, when }
            }
            (_, Some(n), _, _, when) => Rule::TopN { n, when },
            (_, _, Some(share), _, when) => Rule::ValueShare { share, when },
            (_, _, _, true, None) => Rule::Rest,
            (_, _, _, true, Some(_)) => {
                cx.push(Diagnostic::new(Code::AmbiguousRule, &lkey, format!("level `{}` is `rest` and also has `when`; a rest level takes everyone left", l.name)));
                ok = false;
                continue;
            }
            (None, None, None, false, Some(c)) => Rule::When(c),
            (None, None, None, false, None) => {
                cx.push(
                    Diagnostic::new(
                        Code::MissingRule,
                        &lkey,
                        format!("level `{}` has no rule", l.name),
                    )
                    .with_help("give it one of: when, top_share, top_n, value_share, rest = true"),
                );
                ok = false;
                continue;
            }
        };
        levels.push(Level {
            name: l.name.clone(),
            title: l.title.clone(),
            label: l.label.clone(),
            rule,
            valid_days: l.valid_days,
            attributes: l.attributes.clone(),
        });
    }
    if let Some(h) = &def.hold {
        for (field, v) in [
            ("upgrade_after_runs", h.upgrade_after_runs),
            ("downgrade_after_runs", h.downgrade_after_runs),
        ] {
            if v == Some(0) {
                cx.push(Diagnostic::new(
                    Code::InvalidHold,
                    format!("{key}.hold.{field}"),
                    format!("{field} must be at least 1 (1 = at the first run)"),
                ));
                ok = false;
            }
        }
    }
    if share_sum > 1.0 + 1e-9 {
        cx.push(Diagnostic::new(
            Code::SharesOverOne,
            &key,
            format!("top_share levels of `{name}` add up to {share_sum}, more than 100%"),
        ));
        ok = false;
    }
    for (i, o) in def.overrides.iter().enumerate() {
        if !def.levels.iter().any(|l| l.name == o.level) {
            cx.push(
                Diagnostic::new(
                    Code::UnknownLevel,
                    format!("{key}.overrides[{i}].level"),
                    format!("unknown level `{}` in ladder `{name}`", o.level),
                )
                .suggest(&o.level, def.levels.iter().map(|l| l.name.as_str())),
            );
            ok = false;
        }
    }
    ok.then(|| Ladder {
        name: name.to_string(),
        title: def.title.clone(),
        label: def.label.clone(),
        applies_to,
        rank_by: def.rank_by.clone(),
        value: def.value.clone(),
        levels,
        overrides: def.overrides.clone(),
        hold: def.hold.clone().unwrap_or_default(),
        better: def.better.unwrap_or_default(),
    })
}
