//! `[ladders.*]`: levels and their rules, conditions, holds and overrides.

use std::collections::HashSet;

use super::{Checked, Ctx, valid_name};
use crate::cluster::Transform;
use crate::cond::{Cond, parse_condition};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{ClusterRule, Ladder, Level, MissingFeature, Rule};
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
    let named;
    let levels_given: &[LevelDef] = match (&def.cluster, def.levels.is_empty()) {
        (Some(cluster), true) => {
            named = auto_levels(cluster);
            &named
        }
        _ => &def.levels,
    };
    if levels_given.is_empty() {
        let mut d = Diagnostic::new(
            Code::NoLevels,
            &key,
            format!("ladder `{name}` has no levels"),
        );
        if def.cluster.is_some() {
            d = d.with_help("list the levels, or give `k` in the cluster table to have them named cluster_1 … cluster_k");
        }
        cx.push(d);
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
    for (i, l) in levels_given.iter().enumerate() {
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
        if let Some(cluster) = &def.cluster {
            let has_rule = l.when.is_some()
                || l.top_share.is_some()
                || l.top_n.is_some()
                || l.value_share.is_some()
                || l.rest;
            if has_rule {
                cx.push(
                    Diagnostic::new(
                        Code::InvalidCluster,
                        &lkey,
                        format!(
                            "level `{}` of cluster ladder `{name}` has a rule; its levels take clusters",
                            l.name
                        ),
                    )
                    .with_help("drop when, top_share, top_n, value_share and rest from the level"),
                );
                ok = false;
                continue;
            }
            let rule = if cluster.missing.as_deref() == Some(l.name.as_str()) {
                Rule::MissingFeatures
            } else {
                let order = levels
                    .iter()
                    .filter(|l: &&Level| matches!(l.rule, Rule::Cluster { .. }))
                    .count();
                Rule::Cluster { order }
            };
            levels.push(Level {
                name: l.name.clone(),
                title: l.title.clone(),
                label: l.label.clone(),
                rule,
                valid_days: l.valid_days,
                attributes: l.attributes.clone(),
            });
            continue;
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
        if !levels_given.iter().any(|l| l.name == o.level) {
            cx.push(
                Diagnostic::new(
                    Code::UnknownLevel,
                    format!("{key}.overrides[{i}].level"),
                    format!("unknown level `{}` in ladder `{name}`", o.level),
                )
                .suggest(&o.level, levels_given.iter().map(|l| l.name.as_str())),
            );
            ok = false;
        }
    }
    let cluster = match &def.cluster {
        Some(c) => {
            let rule = compile_cluster(name, def, c, &levels, names, cx);
            ok &= rule.is_some();
            rule
        }
        None => None,
    };
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
        cluster,
    })
}

/// A cluster ladder without levels gets one per cluster, auto-named `cluster_1` (the highest
/// mean value) to `cluster_k` (the top of a range of k); none without `k`.
fn auto_levels(cluster: &ClusterDef) -> Vec<LevelDef> {
    let k = match &cluster.k {
        Some(KDef::Fixed(k)) => *k,
        Some(KDef::Range(text)) => text
            .split_once("..")
            .and_then(|(_, hi)| hi.trim().parse().ok())
            .unwrap_or(0),
        None => 0,
    };
    (1..=k.min(64))
        .map(|i| LevelDef {
            name: format!("cluster_{i}"),
            title: None,
            label: Default::default(),
            when: None,
            top_share: None,
            top_n: None,
            value_share: None,
            rest: false,
            valid_days: None,
            attributes: Default::default(),
        })
        .collect()
}

/// `[ladders.X.cluster]`: known numeric features, valid transforms, k matching the levels
/// that take clusters, a value to order the clusters by, a missing level the ladder has.
fn compile_cluster(
    name: &str,
    def: &LadderDef,
    cluster: &ClusterDef,
    levels: &[Level],
    names: &[String],
    cx: &mut Ctx<'_>,
) -> Option<ClusterRule> {
    let key = format!("ladders.{name}.cluster");
    let mut ok = true;
    if cluster.features.is_empty() {
        err(
            cx,
            &mut ok,
            &key,
            "features",
            "a cluster ladder needs at least one feature".into(),
        );
    }
    let mut seen = HashSet::new();
    for f in &cluster.features {
        if !names.iter().any(|n| n == f) {
            cx.push(Diagnostic::unknown(
                Code::UnknownMetric,
                format!("{key}.features"),
                "metric or score",
                f,
                names.iter().map(String::as_str),
            ));
            ok = false;
        } else if !seen.insert(f.as_str()) {
            err(
                cx,
                &mut ok,
                &key,
                "features",
                format!("feature `{f}` is listed twice"),
            );
        }
    }
    let parse = |t: &str| Transform::parse(t);
    let allowed = Transform::ALL.map(Transform::as_str).join(", ");
    let mut transforms = vec![Transform::ZScore; cluster.features.len()];
    match &cluster.transform {
        None => {}
        Some(TransformDef::All(t)) => match parse(t) {
            Some(t) => transforms.fill(t),
            None => err(
                cx,
                &mut ok,
                &key,
                "transform",
                format!("unknown transform `{t}`; use one of {allowed}"),
            ),
        },
        Some(TransformDef::PerFeature(map)) => {
            for (feature, t) in map {
                let Some(i) = cluster.features.iter().position(|f| f == feature) else {
                    err(
                        cx,
                        &mut ok,
                        &key,
                        "transform",
                        format!(
                            "`{feature}` is not among the features ({})",
                            cluster.features.join(", ")
                        ),
                    );
                    continue;
                };
                match parse(t) {
                    Some(t) => transforms[i] = t,
                    None => err(
                        cx,
                        &mut ok,
                        &key,
                        &format!("transform.{feature}"),
                        format!("unknown transform `{t}`; use one of {allowed}"),
                    ),
                }
            }
        }
    }
    let k = levels
        .iter()
        .filter(|l| matches!(l.rule, Rule::Cluster { .. }))
        .count();
    if k == 0 {
        err(
            cx,
            &mut ok,
            &key,
            "",
            format!("ladder `{name}` has no level to take a cluster"),
        );
    }
    let mut k_range = None;
    match &cluster.k {
        None => {}
        Some(KDef::Fixed(given)) if *given != k => err(
            cx,
            &mut ok,
            &key,
            "k",
            format!(
                "k = {given}, but {k} level{} take clusters: give one level per cluster",
                if k == 1 { "" } else { "s" }
            ),
        ),
        Some(KDef::Fixed(_)) => {}
        Some(KDef::Range(text)) => {
            let parsed = text.split_once("..").and_then(|(a, b)| {
                Some((
                    a.trim().parse::<usize>().ok()?,
                    b.trim().parse::<usize>().ok()?,
                ))
            });
            match parsed {
                Some((lo, hi)) if lo >= 2 && lo < hi && hi <= k => k_range = Some(lo..=hi),
                Some((lo, hi)) if lo >= 2 && lo < hi => err(
                    cx,
                    &mut ok,
                    &key,
                    "k",
                    format!(
                        "k = \"{text}\" can choose {hi} clusters, but {k} level{} take clusters: list at least {hi}",
                        if k == 1 { "" } else { "s" }
                    ),
                ),
                _ => err(
                    cx,
                    &mut ok,
                    &key,
                    "k",
                    format!(
                        "k = \"{text}\": give a number or a range such as \"2..6\" (from 2, lower first)"
                    ),
                ),
            }
        }
    }
    if cluster.restarts == Some(0) {
        err(
            cx,
            &mut ok,
            &key,
            "restarts",
            "restarts must be at least 1".into(),
        );
    }
    if def.value.is_none() && def.rank_by.is_none() {
        err(
            cx,
            &mut ok,
            &key,
            "",
            format!(
                "cluster ladder `{name}` needs `value` (or `rank_by`): the levels take the clusters by their mean value, highest first"
            ),
        );
    }
    let missing = match cluster.missing.as_deref() {
        None | Some("median") => MissingFeature::Median,
        Some(level) => match levels.iter().position(|l| l.name == level) {
            Some(i) => MissingFeature::Level(i),
            None => {
                cx.push(
                    Diagnostic::new(
                        Code::InvalidCluster,
                        format!("{key}.missing"),
                        format!("`{level}` is neither `median` nor a level of `{name}`"),
                    )
                    .suggest(level, levels.iter().map(|l| l.name.as_str())),
                );
                ok = false;
                MissingFeature::Median
            }
        },
    };
    let centres = match &cluster.centres {
        None => None,
        Some(given) => {
            let mut out = Vec::new();
            for (li, l) in levels.iter().enumerate() {
                if !matches!(l.rule, Rule::Cluster { .. }) {
                    continue;
                }
                match given.get(&l.name) {
                    Some(c)
                        if c.len() == cluster.features.len() && c.iter().all(|v| v.is_finite()) =>
                    {
                        out.push((li, c.clone()))
                    }
                    Some(c) => err(
                        cx,
                        &mut ok,
                        &key,
                        &format!("centres.{}", l.name),
                        format!(
                            "{} value(s), but a centre needs one finite number per feature ({})",
                            c.len(),
                            cluster.features.join(", ")
                        ),
                    ),
                    None => err(
                        cx,
                        &mut ok,
                        &key,
                        "centres",
                        format!("level `{}` takes a cluster but has no centre", l.name),
                    ),
                }
            }
            for level in given.keys() {
                if !levels
                    .iter()
                    .any(|l| &l.name == level && matches!(l.rule, Rule::Cluster { .. }))
                {
                    err(
                        cx,
                        &mut ok,
                        &key,
                        &format!("centres.{level}"),
                        format!("`{level}` is not a level of `{name}` that takes a cluster"),
                    );
                }
            }
            if k_range.is_some() {
                err(
                    cx,
                    &mut ok,
                    &key,
                    "centres",
                    "fixed centres fix k too: drop the range of `k`".into(),
                );
            }
            Some(out)
        }
    };
    let options = crate::cluster::KMeansOptions {
        restarts: cluster.restarts.unwrap_or(10),
        seed: cluster.seed.unwrap_or(0),
        ..crate::cluster::KMeansOptions::new(k)
    };
    ok.then(|| ClusterRule {
        features: cluster.features.clone(),
        transforms,
        options,
        k_range,
        centres,
        missing,
    })
}

fn err(cx: &mut Ctx<'_>, ok: &mut bool, key: &str, field: &str, message: String) {
    cx.push(Diagnostic::new(
        Code::InvalidCluster,
        if field.is_empty() {
            key.to_string()
        } else {
            format!("{key}.{field}")
        },
        message,
    ));
    *ok = false;
}
