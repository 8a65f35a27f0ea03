//! Scores: weighted composites on a 100-point base, scorecards with categories and bands, and
//! RFM quintiles. Each score becomes a numeric column of the frame; its fitted normalisers are
//! kept so one customer's contributions can be explained later.

use crate::frame::{Column, Frame, Value, fmt_num};
use crate::model::{Score, ScoreSpec};
use crate::policy::{Dimension, Normalize};

/// How a raw value becomes 0..1 (or stays raw), fitted on the whole population.
#[derive(Debug, Clone)]
pub struct Normalizer {
    kind: Normalize,
    lower_is_better: bool,
    sorted: Vec<f64>,
}

impl Normalizer {
    pub fn fit(
        kind: Normalize,
        lower_is_better: bool,
        values: impl Iterator<Item = Option<f64>>,
    ) -> Self {
        let mut sorted: Vec<f64> = values.flatten().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        Self {
            kind,
            lower_is_better,
            sorted,
        }
    }

    /// SQL `percent_rank()`: customers strictly below ÷ (customers with a value − 1).
    /// With `lower_is_better`, customers strictly above instead.
    pub fn percentile(&self, v: f64) -> f64 {
        let n = self.sorted.len();
        if n <= 1 {
            return 0.0;
        }
        let count = if self.lower_is_better {
            n - self.sorted.partition_point(|x| *x <= v)
        } else {
            self.sorted.partition_point(|x| *x < v)
        };
        count as f64 / (n - 1) as f64
    }

    /// Fits on a column and normalises every row in one go: for percentiles one sort of
    /// (value, row) pairs and a walk over it, instead of a binary search per row.
    pub fn fit_apply(
        kind: Normalize,
        lower_is_better: bool,
        column: &Column,
    ) -> (Self, Vec<Option<f64>>) {
        let n = column.len();
        let mut pairs: Vec<(f64, u32)> = (0..n)
            .filter_map(|r| {
                column
                    .num(r)
                    .filter(|v| v.is_finite())
                    .map(|v| (v, r as u32))
            })
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let norm = Self {
            kind,
            lower_is_better,
            sorted: pairs.iter().map(|p| p.0).collect(),
        };
        let mut out = vec![None; n];
        match kind {
            Normalize::Percentile => {
                let valid = pairs.len();
                let mut i = 0;
                while i < valid {
                    let mut j = i;
                    while j < valid && pairs[j].0 == pairs[i].0 {
                        j += 1;
                    }
                    let value = if valid <= 1 {
                        0.0
                    } else if lower_is_better {
                        (valid - j) as f64 / (valid - 1) as f64
                    } else {
                        i as f64 / (valid - 1) as f64
                    };
                    for p in &pairs[i..j] {
                        out[p.1 as usize] = Some(value);
                    }
                    i = j;
                }
            }
            _ => {
                for p in &pairs {
                    out[p.1 as usize] = Some(norm.apply(p.0));
                }
            }
        }
        (norm, out)
    }

    /// [`Normalizer::apply`] for every row of a column (`None`: no finite value), with one
    /// sort of the column and a walk beside the fitted values instead of a binary search per
    /// row: at a million customers the searches' cache misses cost a second per part.
    pub fn apply_column(&self, column: &Column) -> Vec<Option<f64>> {
        let n = column.len();
        let value = |r: usize| column.num(r).filter(|v| v.is_finite());
        if self.kind != Normalize::Percentile {
            return (0..n).map(|r| value(r).map(|v| self.apply(v))).collect();
        }
        let mut pairs: Vec<(f64, u32)> = (0..n)
            .filter_map(|r| value(r).map(|v| (v, r as u32)))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let fitted = self.sorted.len();
        let mut out = vec![None; n];
        // Fitted values strictly below, and at or below, the current value: both only grow
        // as the values do.
        let (mut below, mut at_most) = (0, 0);
        for (v, row) in pairs {
            while below < fitted && self.sorted[below] < v {
                below += 1;
            }
            at_most = at_most.max(below);
            while at_most < fitted && self.sorted[at_most] <= v {
                at_most += 1;
            }
            out[row as usize] = Some(if fitted <= 1 {
                0.0
            } else {
                let count = if self.lower_is_better {
                    fitted - at_most
                } else {
                    below
                };
                count as f64 / (fitted - 1) as f64
            });
        }
        out
    }

    pub fn apply(&self, v: f64) -> f64 {
        match self.kind {
            Normalize::Percentile => self.percentile(v),
            Normalize::Minmax => {
                let (Some(min), Some(max)) = (self.sorted.first(), self.sorted.last()) else {
                    return 0.0;
                };
                if max == min {
                    return 1.0;
                }
                let x = ((v - min) / (max - min)).clamp(0.0, 1.0);
                if self.lower_is_better { 1.0 - x } else { x }
            }
            Normalize::Raw => v,
        }
    }
}

/// One line of a score's explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub label: String,
    pub input: String,
    pub detail: String,
    pub points: f64,
}

/// A score fitted on the population.
#[derive(Debug, Clone)]
pub struct ScoreModel {
    pub score: Score,
    normalizers: Vec<Normalizer>,
}

impl ScoreModel {
    /// Fits and computes the score, adding its column(s) to the frame.
    pub fn compute(score: &Score, frame: &mut Frame) -> Result<ScoreModel, String> {
        let n = frame.len();
        let input_col = |name: &str, frame: &Frame| -> Result<usize, String> {
            frame
                .index_of(name)
                .ok_or_else(|| format!("score `{}` reads unknown `{name}`", score.name))
        };
        let num_input = |name: &str, frame: &Frame| -> Result<usize, String> {
            let idx = input_col(name, frame)?;
            match frame.column_at(idx) {
                Column::Num(_) => Ok(idx),
                Column::Text(_) => Err(format!(
                    "score `{}` needs a number but `{name}` is text",
                    score.name
                )),
            }
        };
        let mut normalizers = Vec::new();
        match &score.spec {
            ScoreSpec::Weighted { scale, parts } => {
                let mut cols = Vec::new();
                for p in parts {
                    cols.push(num_input(&p.input, frame)?);
                }
                // Parts are independent: fit them on separate threads.
                let fitted: Vec<(Normalizer, Vec<Option<f64>>)> = std::thread::scope(|scope| {
                    let handles: Vec<_> = parts
                        .iter()
                        .zip(&cols)
                        .map(|(p, &c)| {
                            let column = frame.column_at(c);
                            scope.spawn(move || {
                                Normalizer::fit_apply(p.normalize, p.lower_is_better, column)
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("normaliser thread"))
                        .collect()
                });
                let mut out = vec![0.0; n];
                // Summed part by part, in the written order, so totals are reproducible.
                for (p, (_, normalized)) in parts.iter().zip(&fitted) {
                    for (total, x) in out.iter_mut().zip(normalized) {
                        if let Some(x) = x {
                            *total += p.weight * x;
                        }
                    }
                }
                let (fitted_normalizers, fitted_points): (Vec<_>, Vec<_>) =
                    fitted.into_iter().unzip();
                normalizers.extend(fitted_normalizers);
                // Raw parts are already on the score's scale; normalised ones are 0..1.
                let all_raw = parts.iter().all(|p| p.normalize == Normalize::Raw);
                let values = if all_raw {
                    out
                } else if parts.iter().any(|p| p.normalize == Normalize::Raw) {
                    let mut values = vec![0.0; n];
                    for (r, total) in values.iter_mut().enumerate() {
                        *total = parts
                            .iter()
                            .zip(&fitted_points)
                            .map(|(p, normalized)| {
                                normalized[r].map_or(0.0, |x| {
                                    let x = p.weight * x;
                                    if p.normalize == Normalize::Raw {
                                        x
                                    } else {
                                        x * scale
                                    }
                                })
                            })
                            .sum();
                    }
                    values
                } else {
                    out.into_iter().map(|v| scale * v).collect()
                };
                frame
                    .push(
                        score.name.clone(),
                        Column::Num(values.into_iter().map(Some).collect()),
                    )
                    .map_err(|e| e.to_string())?;
            }
            ScoreSpec::Scorecard { dimensions } => {
                let mut totals = vec![0.0; n];
                for d in dimensions {
                    let idx = input_col(&d.metric, frame)?;
                    let col = frame.column_at(idx);
                    // Points entered by people must lie within the dimension's range.
                    if d.categories.is_none() && d.bands.is_none() {
                        for r in 0..n {
                            if let Some(v) = col.num(r)
                                && (v < 0.0 || d.max_points.is_some_and(|m| v > m))
                            {
                                return Err(format!(
                                    "customer `{}`: `{}` = {} is outside 0..{} points of dimension `{}`",
                                    &frame.ids()[r],
                                    d.metric,
                                    fmt_num(v),
                                    d.max_points.map_or("∞".to_string(), fmt_num),
                                    d.name
                                ));
                            }
                        }
                    }
                    for (r, total) in totals.iter_mut().enumerate() {
                        *total += dimension_points(d, col.value(r)).0;
                    }
                }
                frame
                    .push(
                        score.name.clone(),
                        Column::Num(totals.into_iter().map(Some).collect()),
                    )
                    .map_err(|e| e.to_string())?;
            }
            ScoreSpec::Rfm {
                recency,
                frequency,
                monetary,
                bins,
            } => {
                let mut subs = Vec::new();
                for (name, lower_better) in [(recency, true), (frequency, false), (monetary, false)]
                {
                    let idx = num_input(name, frame)?;
                    let col = frame.column_at(idx);
                    let norm = Normalizer::fit(
                        Normalize::Percentile,
                        lower_better,
                        (0..n).map(|r| col.num(r)),
                    );
                    let q: Vec<Option<f64>> = (0..n)
                        .map(|r| Some(col.num(r).map_or(1.0, |v| quantile_bin(&norm, v, *bins))))
                        .collect();
                    normalizers.push(norm);
                    subs.push(q);
                }
                let total: Vec<Option<f64>> = (0..n)
                    .map(|r| Some(subs.iter().map(|s| s[r].unwrap_or(1.0)).sum()))
                    .collect();
                frame
                    .push(score.name.clone(), Column::Num(total))
                    .map_err(|e| e.to_string())?;
                for (sub, name) in subs.into_iter().zip(score.sub_names()) {
                    frame
                        .push(name, Column::Num(sub))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(ScoreModel {
            score: score.clone(),
            normalizers,
        })
    }

    /// A weighted score's points per part for every customer (`None`: no value, 0 points),
    /// named by the part's input: what a run records so that a page can show a customer's
    /// breakdown without the population the parts were normalized on. Empty for other kinds,
    /// whose points follow from the customer's own metrics.
    pub fn part_points(&self, frame: &Frame) -> Vec<(String, Vec<Option<f64>>)> {
        let ScoreSpec::Weighted { scale, parts } = &self.score.spec else {
            return Vec::new();
        };
        parts
            .iter()
            .zip(&self.normalizers)
            .map(|(p, norm)| {
                let normalized = match frame.column(&p.input) {
                    Some(column) => norm.apply_column(column),
                    None => vec![None; frame.len()],
                };
                let points = normalized
                    .into_iter()
                    .map(|x| {
                        let x = x?;
                        Some(if p.normalize == Normalize::Raw {
                            p.weight * x
                        } else {
                            p.weight * x * scale
                        })
                    })
                    .collect();
                (p.input.clone(), points)
            })
            .collect()
    }

    /// Each input's share of one customer's score.
    pub fn contributions(&self, frame: &Frame, row: usize) -> Vec<Contribution> {
        match &self.score.spec {
            ScoreSpec::Weighted { scale, parts } => parts
                .iter()
                .zip(&self.normalizers)
                .map(|(p, norm)| {
                    let v = frame
                        .column(&p.input)
                        .and_then(|c| c.num(row))
                        .filter(|v| v.is_finite());
                    let (points, detail) = match v {
                        None => (0.0, "no value: 0 points".to_string()),
                        Some(v) => {
                            let x = norm.apply(v);
                            let points = if p.normalize == Normalize::Raw {
                                p.weight * x
                            } else {
                                p.weight * x * scale
                            };
                            let how = match p.normalize {
                                Normalize::Percentile => format!("percentile {:.1}%", x * 100.0),
                                Normalize::Minmax => format!("min-max {:.3}", x),
                                Normalize::Raw => "raw".to_string(),
                            };
                            (
                                points,
                                format!("{} → {how} × weight {}", fmt_num(v), p.weight),
                            )
                        }
                    };
                    Contribution {
                        label: p.input.clone(),
                        input: p.input.clone(),
                        detail,
                        points,
                    }
                })
                .collect(),
            ScoreSpec::Scorecard { dimensions } => dimensions
                .iter()
                .map(|d| {
                    let v = frame
                        .column(&d.metric)
                        .map_or(Value::Null, |c| c.value(row));
                    let (points, detail) = dimension_points(d, v);
                    Contribution {
                        label: d.name.clone(),
                        input: d.metric.clone(),
                        detail,
                        points,
                    }
                })
                .collect(),
            ScoreSpec::Rfm { .. } => self
                .score
                .inputs()
                .into_iter()
                .zip(self.score.sub_names())
                .zip(["R", "F", "M"])
                .map(|((input, sub), label)| {
                    let q = frame.column(&sub).and_then(|c| c.num(row)).unwrap_or(1.0);
                    let v = frame.column(input).map_or(Value::Null, |c| c.value(row));
                    Contribution {
                        label: label.to_string(),
                        input: input.to_string(),
                        detail: format!("{input} {v} → bin {q}"),
                        points: q,
                    }
                })
                .collect(),
        }
    }
}

fn quantile_bin(norm: &Normalizer, v: f64, bins: u32) -> f64 {
    // Share of customers ranked strictly worse, so ties share a bin.
    let n = norm.sorted.len();
    if n == 0 {
        return 1.0;
    }
    let worse = if norm.lower_is_better {
        n - norm.sorted.partition_point(|x| *x <= v)
    } else {
        norm.sorted.partition_point(|x| *x < v)
    };
    ((worse as f64 / n as f64 * f64::from(bins)).floor() + 1.0).min(f64::from(bins))
}

/// Points of one scorecard dimension for a value, with the reason.
pub fn dimension_points(d: &Dimension, v: Value<'_>) -> (f64, String) {
    let cap = |p: f64| d.max_points.map_or(p, |m| p.min(m)).max(0.0);
    match (v, &d.categories, &d.bands) {
        (Value::Null, _, _) => match d.missing {
            Some(p) => (p, format!("no value → {} points", fmt_num(p))),
            None => (0.0, "no value: 0 points".into()),
        },
        (Value::Text(t), Some(cats), _) => match cats.get(t) {
            Some(p) => (*p, format!("'{t}' → {p} points")),
            None => (0.0, format!("'{t}' is not a listed category: 0 points")),
        },
        (Value::Num(n), _, Some(bands)) => {
            let hit = bands
                .iter()
                .find(|b| b.min.is_none_or(|m| n >= m) && b.max.is_none_or(|m| n < m));
            match hit {
                Some(b) => (
                    b.points,
                    format!(
                        "{} in {}{} → {} points",
                        fmt_num(n),
                        b.label
                            .as_ref()
                            .map(|l| format!("'{l}' "))
                            .unwrap_or_default(),
                        band_text(b.min, b.max),
                        b.points
                    ),
                ),
                None => (0.0, format!("{} is in no band: 0 points", fmt_num(n))),
            }
        }
        (Value::Num(n), Some(cats), None) => {
            let key = fmt_num(n);
            match cats.get(&key) {
                Some(p) => (*p, format!("{key} → {p} points")),
                None => (0.0, format!("{key} is not a listed category: 0 points")),
            }
        }
        (Value::Num(n), None, None) => {
            let p = cap(n);
            (p, format!("{} points as entered", fmt_num(p)))
        }
        (Value::Text(t), None, _) => (
            0.0,
            format!("'{t}' is text; the dimension expects points or categories: 0 points"),
        ),
    }
}

fn band_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("[{}, {})", fmt_num(a), fmt_num(b)),
        (Some(a), None) => format!(">= {}", fmt_num(a)),
        (None, Some(b)) => format!("< {}", fmt_num(b)),
        (None, None) => "any value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_sql_percent_rank_with_ties() {
        let n = Normalizer::fit(
            Normalize::Percentile,
            false,
            [10.0, 20.0, 20.0, 40.0].map(Some).into_iter(),
        );
        assert_eq!(n.apply(10.0), 0.0);
        assert_eq!(n.apply(20.0), 1.0 / 3.0);
        assert_eq!(n.apply(40.0), 1.0);
        let low = Normalizer::fit(
            Normalize::Percentile,
            true,
            [10.0, 20.0, 20.0, 40.0].map(Some).into_iter(),
        );
        assert_eq!(low.apply(10.0), 1.0);
        assert_eq!(low.apply(40.0), 0.0);
    }

    #[test]
    fn fit_apply_matches_apply_row_by_row() {
        let values = vec![Some(3.0), None, Some(1.0), Some(3.0), Some(2.0), Some(7.5)];
        for kind in [Normalize::Percentile, Normalize::Minmax, Normalize::Raw] {
            for lower in [false, true] {
                let column = Column::Num(values.clone());
                let (norm, all) = Normalizer::fit_apply(kind, lower, &column);
                for (r, v) in values.iter().enumerate() {
                    assert_eq!(
                        all[r],
                        v.map(|v| norm.apply(v)),
                        "{kind:?} lower={lower} row {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn apply_column_matches_apply_row_by_row() {
        let fitted = [3.0, 1.0, 3.0, 2.0, 7.5, -0.0, 0.0];
        // Values fitted on, between, beyond both ends, missing and not finite.
        let queried = vec![
            Some(3.0),
            None,
            Some(2.5),
            Some(-4.0),
            Some(9.0),
            Some(f64::NAN),
            Some(0.0),
            Some(-0.0),
            Some(7.5),
            Some(1.0),
        ];
        for kind in [Normalize::Percentile, Normalize::Minmax, Normalize::Raw] {
            for lower in [false, true] {
                for n in [0, 1, fitted.len()] {
                    let norm = Normalizer::fit(kind, lower, fitted[..n].iter().copied().map(Some));
                    let all = norm.apply_column(&Column::Num(queried.clone()));
                    for (r, v) in queried.iter().enumerate() {
                        assert_eq!(
                            all[r],
                            v.filter(|v| v.is_finite()).map(|v| norm.apply(v)),
                            "{kind:?} lower={lower} fitted on {n}, row {r}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn minmax_and_constant_columns() {
        let n = Normalizer::fit(
            Normalize::Minmax,
            false,
            [0.0, 50.0, 100.0].map(Some).into_iter(),
        );
        assert_eq!(n.apply(50.0), 0.5);
        let c = Normalizer::fit(Normalize::Minmax, false, [7.0, 7.0].map(Some).into_iter());
        assert_eq!(c.apply(7.0), 1.0);
    }

    #[test]
    fn quintiles_put_ties_together() {
        let values: Vec<Option<f64>> = (1..=10).map(|v| Some(f64::from(v))).collect();
        let n = Normalizer::fit(Normalize::Percentile, false, values.into_iter());
        let bins: Vec<f64> = (1..=10)
            .map(|v| quantile_bin(&n, f64::from(v), 5))
            .collect();
        assert_eq!(bins, [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0]);
    }

    #[test]
    fn a_band_dimension_can_give_points_for_a_missing_value() {
        use crate::policy::{Band, Dimension};
        let d = Dimension {
            name: "growth".into(),
            metric: "revenue_growth".into(),
            max_points: Some(30.0),
            categories: None,
            bands: Some(vec![Band {
                min: Some(0.2),
                max: None,
                points: 30.0,
                label: Some("fast".into()),
            }]),
            missing: Some(15.0),
        };
        assert_eq!(
            dimension_points(&d, Value::Null),
            (15.0, "no value → 15 points".to_string())
        );
        assert_eq!(dimension_points(&d, Value::Num(0.5)).0, 30.0);
        let without = Dimension { missing: None, ..d };
        assert_eq!(dimension_points(&without, Value::Null).0, 0.0);
    }
}
