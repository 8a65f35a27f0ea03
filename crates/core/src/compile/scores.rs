//! `[scores.*]`: weighted composites, scorecards and RFM, in dependency order.

use std::collections::HashSet;

use super::{Checked, Ctx, in_dependency_order, valid_name};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Part, Score, ScoreSpec};
use crate::policy::*;

pub(super) fn compile(raw: &PolicyFile, checked: &Checked, cx: &mut Ctx<'_>) -> Vec<Score> {
    let metric_names: HashSet<&str> = raw.metrics.keys().map(String::as_str).collect();
    let mut scores = Vec::new();
    for (name, def) in &raw.scores {
        let key = format!("scores.{name}");
        if !valid_name(name) {
            cx.push(Diagnostic::new(
                Code::InvalidName,
                &key,
                format!("score name `{name}` must be lower-case letters, digits and _"),
            ));
            continue;
        }
        if metric_names.contains(name.as_str()) {
            cx.push(Diagnostic::new(
                Code::DuplicateName,
                &key,
                format!("`{name}` is both a metric and a score"),
            ));
            continue;
        }
        if let Some(spec) = compile_score(name, def, &key, cx) {
            scores.push(Score {
                name: name.clone(),
                spec,
            });
        }
    }
    let value_names: Vec<String> = checked.metrics.iter().map(|m| m.name.clone()).collect();
    order_scores(scores, &value_names, cx)
}

fn compile_score(name: &str, def: &ScoreDef, key: &str, cx: &mut Ctx<'_>) -> Option<ScoreSpec> {
    match def.kind {
        ScoreKind::Weighted => {
            if def.parts.is_empty() {
                cx.push(Diagnostic::new(
                    Code::EmptyScore,
                    format!("{key}.parts"),
                    format!("weighted score `{name}` has no `[[scores.{name}.parts]]`"),
                ));
                return None;
            }
            let normalize = def.normalize.unwrap_or_default();
            let mut parts = Vec::new();
            for (i, p) in def.parts.iter().enumerate() {
                if !(p.weight.is_finite() && p.weight > 0.0) {
                    cx.push(Diagnostic::new(
                        Code::InvalidWeight,
                        format!("{key}.parts[{i}].weight"),
                        format!("weight {} must be a positive number", p.weight),
                    ));
                }
                parts.push(Part {
                    input: p.metric.clone(),
                    weight: p.weight,
                    normalize: p.normalize.unwrap_or(normalize),
                    lower_is_better: p.lower_is_better,
                });
            }
            let sum: f64 = parts.iter().map(|p| p.weight).sum();
            if (sum - 1.0).abs() > 1e-6 {
                cx.push(
                    Diagnostic::new(
                        Code::WeightsSum,
                        format!("{key}.parts"),
                        format!("weights of `{name}` sum to {sum}, not 1"),
                    )
                    .with_help(
                        "the score's maximum is then not its scale; make the weights add up to 1",
                    ),
                );
            }
            Some(ScoreSpec::Weighted {
                scale: def.scale.unwrap_or(100.0),
                parts,
            })
        }
        ScoreKind::Scorecard => {
            if def.dimensions.is_empty() {
                cx.push(Diagnostic::new(
                    Code::EmptyScore,
                    format!("{key}.dimensions"),
                    format!("scorecard `{name}` has no dimensions"),
                ));
                return None;
            }
            for (i, d) in def.dimensions.iter().enumerate() {
                let dkey = format!("{key}.dimensions[{i}]");
                if d.categories.is_some() && d.bands.is_some() {
                    cx.push(Diagnostic::new(
                        Code::InvalidDimension,
                        &dkey,
                        format!(
                            "dimension `{}` has both `categories` and `bands`; choose one",
                            d.name
                        ),
                    ));
                }
                if let (Some(max), Some(missing)) = (d.max_points, d.missing)
                    && !(0.0..=max).contains(&missing)
                {
                    cx.push(Diagnostic::new(
                        Code::PointsOverMax,
                        format!("{dkey}.missing"),
                        format!(
                            "dimension `{}` gives {} points for a missing value, outside 0..{}",
                            d.name,
                            crate::fmt_num(missing),
                            crate::fmt_num(max)
                        ),
                    ));
                }
                if let (Some(max), Some(bands)) = (d.max_points, &d.bands) {
                    for (j, b) in bands.iter().enumerate() {
                        if b.points > max {
                            cx.push(Diagnostic::new(
                                Code::PointsOverMax,
                                format!("{dkey}.bands[{j}]"),
                                format!("band gives {} points, above max_points {max}", b.points),
                            ));
                        }
                    }
                }
                if let (Some(max), Some(cats)) = (d.max_points, &d.categories) {
                    for (cat, pts) in cats {
                        if *pts > max {
                            cx.push(Diagnostic::new(
                                Code::PointsOverMax,
                                format!("{dkey}.categories"),
                                format!(
                                    "category `{cat}` gives {pts} points, above max_points {max}"
                                ),
                            ));
                        }
                    }
                }
                if let Some(bands) = &d.bands {
                    lint_bands(bands, &dkey, &d.name, cx);
                }
            }
            Some(ScoreSpec::Scorecard {
                dimensions: def.dimensions.clone(),
            })
        }
        ScoreKind::Rfm => {
            let field = |v: &Option<String>, f: &str, cx: &mut Ctx<'_>| -> Option<String> {
                if v.is_none() {
                    cx.push(Diagnostic::new(
                        Code::MissingField,
                        key,
                        format!("RFM score `{name}` needs `{f}`"),
                    ));
                }
                v.clone()
            };
            let (r, f, m) = (
                field(&def.recency, "recency", cx),
                field(&def.frequency, "frequency", cx),
                field(&def.monetary, "monetary", cx),
            );
            let bins = def.bins.unwrap_or(5);
            if !(2..=10).contains(&bins) {
                cx.push(Diagnostic::new(
                    Code::InvalidBins,
                    format!("{key}.bins"),
                    "bins must be between 2 and 10",
                ));
            }
            Some(ScoreSpec::Rfm {
                recency: r?,
                frequency: f?,
                monetary: m?,
                bins,
            })
        }
    }
}

fn lint_bands(bands: &[Band], key: &str, dim: &str, cx: &mut Ctx<'_>) {
    let mut sorted: Vec<&Band> = bands.iter().collect();
    sorted.sort_by(|a, b| {
        a.min
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&b.min.unwrap_or(f64::NEG_INFINITY))
    });
    for pair in sorted.windows(2) {
        let (lo, hi) = (pair[0], pair[1]);
        let lo_max = lo.max.unwrap_or(f64::INFINITY);
        let hi_min = hi.min.unwrap_or(f64::NEG_INFINITY);
        if lo_max < hi_min {
            cx.push(Diagnostic::new(
                Code::BandGap,
                format!("{key}.bands"),
                format!(
                    "dimension `{dim}`: values in [{lo_max}, {hi_min}) fall in no band and score 0"
                ),
            ));
        }
    }
}

fn order_scores(scores: Vec<Score>, metric_names: &[String], cx: &mut Ctx<'_>) -> Vec<Score> {
    let score_names: Vec<String> = scores
        .iter()
        .flat_map(|s| {
            let mut v = vec![s.name.clone()];
            v.extend(s.sub_names());
            v
        })
        .collect();
    let all: Vec<&str> = metric_names
        .iter()
        .chain(score_names.iter())
        .map(String::as_str)
        .collect();
    let mut items = Vec::new();
    for s in &scores {
        let mut deps = Vec::new();
        for (i, input) in s.inputs().into_iter().enumerate() {
            let key = match &s.spec {
                ScoreSpec::Weighted { .. } => format!("scores.{}.parts[{i}].metric", s.name),
                ScoreSpec::Scorecard { .. } => format!("scores.{}.dimensions[{i}].metric", s.name),
                ScoreSpec::Rfm { .. } => format!(
                    "scores.{}.{}",
                    s.name,
                    ["recency", "frequency", "monetary"][i]
                ),
            };
            if !all.contains(&input) {
                cx.push(Diagnostic::unknown(
                    Code::UnknownMetric,
                    key,
                    "metric or score",
                    input,
                    all.iter().copied(),
                ));
            } else if let Some(owner) = scores
                .iter()
                .find(|o| o.name == input || o.sub_names().iter().any(|n| n == input))
            {
                deps.push(owner.name.clone());
            }
        }
        items.push((s.name.clone(), deps));
    }
    in_dependency_order(scores, &items, |s| &s.name, Code::ScoreCycle, "scores", cx)
}
