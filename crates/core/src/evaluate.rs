//! The pure heart of a run: metrics in, scores computed, every ladder placed, manual pins
//! applied; then summaries and explanations read from the result.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::diagnostic::did_you_mean;
use crate::frame::{Frame, Value, fmt_num, push_num};
use crate::hold::{self, HoldState, Standing};
use crate::ladder::{
    LadderResult, ManualPin, OverrideSource, Reason, apply_override, apply_tag_overrides, place,
};
use crate::model::{Ladder, Policy, Rule};
use crate::policy::OverrideMode;
use crate::score::{Contribution, ScoreModel};

/// Why an evaluation could not be done. `User` errors are the policy's or the data's fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{key}: {message}")]
    User { key: String, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl EvalError {
    pub fn is_user_error(&self) -> bool {
        match self {
            EvalError::User { .. } => true,
            EvalError::Internal(_) => false,
        }
    }
}

/// Everything computed for one policy over one frame.
#[derive(Debug)]
pub struct Evaluation {
    /// Shared, so that an evaluation can move to another thread with the policy it reads.
    pub policy: Arc<Policy>,
    pub frame: Frame,
    pub scores: Vec<ScoreModel>,
    /// The policy's ladders with conditions bound to `frame`.
    pub ladders: Vec<Ladder>,
    pub results: Vec<LadderResult>,
}

/// What an evaluation takes besides the metrics: manual pins, and for runs that are kept, the
/// run date and each customer's standing after the previous run (for grace and hysteresis).
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    pub pins: &'a [ManualPin],
    pub as_of: Option<NaiveDate>,
    pub prior: Option<&'a Prior>,
}

/// One ladder's standings after the previous run, aligned with this run's frame: `rows[r]`
/// is the standing of row `r`'s customer (`None`: not in that run, or no standing), its
/// level an index of `level_names`. Aligned by the caller (the runner merges both runs in
/// id order), so the holds read an array instead of looking a million ids up.
#[derive(Debug, Clone, Default)]
pub struct PriorLadder {
    pub level_names: Vec<String>,
    pub rows: Vec<Option<Standing<u32>>>,
}

/// Standings after the previous run, by ladder name.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    pub ladders: HashMap<String, PriorLadder>,
    /// Cluster ladders' clusters at the previous run: this run's are matched to them.
    pub clusters: HashMap<String, ClusterSummary>,
}

/// Evaluates a policy with manual pins and no history.
pub fn evaluate(
    policy: Arc<Policy>,
    frame: Frame,
    pins: &[ManualPin],
) -> Result<Evaluation, EvalError> {
    evaluate_with(
        policy,
        frame,
        Inputs {
            pins,
            ..Inputs::default()
        },
    )
}

/// Rules first, then the ladder's hold against the prior standing, then tag overrides, then
/// manual pins: an override always has the last word, and a hold never lifts a customer over
/// a ceiling.
pub fn evaluate_with(
    policy: Arc<Policy>,
    mut frame: Frame,
    inputs: Inputs<'_>,
) -> Result<Evaluation, EvalError> {
    let pins = inputs.pins;
    for m in &policy.metrics {
        if frame.index_of(&m.name).is_none() {
            return Err(EvalError::Internal(format!(
                "metric `{}` missing from the metrics frame",
                m.name
            )));
        }
    }
    let mut scores = Vec::new();
    for s in &policy.scores {
        let model = ScoreModel::compute(s, &mut frame).map_err(|message| EvalError::User {
            key: format!("scores.{}", s.name),
            message,
        })?;
        scores.push(model);
    }

    let mut ladders = Vec::new();
    let mut results = Vec::new();
    for ladder in &policy.ladders {
        let bound = bind_ladder(ladder, &frame)?;
        let col = |name: &Option<String>| -> Result<Option<usize>, EvalError> {
            match name {
                None => Ok(None),
                Some(n) => match frame.index_of(n) {
                    Some(i) if frame.column_at(i).kind() == "number" => Ok(Some(i)),
                    Some(_) => Err(EvalError::User {
                        key: format!("ladders.{}.rank_by", ladder.name),
                        message: format!("`{n}` is text; ranking needs a number"),
                    }),
                    None => Err(EvalError::Internal(format!("`{n}` missing from the frame"))),
                },
            }
        };
        let rank_col = col(&bound.rank_by)?;
        let value_col = col(&bound.value_measure().map(str::to_string))?;
        let mut result = match (&bound.cluster, value_col) {
            (Some(rule), Some(value_col)) => crate::segment::place(
                &bound,
                rule,
                &frame,
                rank_col,
                value_col,
                inputs.prior.and_then(|p| p.clusters.get(&ladder.name)),
            )
            .map_err(|message| EvalError::User {
                key: format!("ladders.{}.cluster", ladder.name),
                message,
            })?,
            _ => place(&bound, &frame, rank_col, value_col),
        };
        if let Some(as_of) = inputs.as_of {
            let prior = inputs.prior.and_then(|p| p.ladders.get(&ladder.name));
            apply_holds(&bound, &frame, &mut result, prior, as_of);
        }
        apply_tag_overrides(&bound, &frame, &mut result);
        results.push(result);
        ladders.push(bound);
    }

    if !pins.is_empty() {
        let rows: HashMap<&str, usize> = frame
            .ids()
            .iter()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        for pin in pins {
            let user = |message: String| EvalError::User {
                key: pin.origin.clone(),
                message,
            };
            let Some(li) = ladders.iter().position(|l| l.name == pin.ladder) else {
                let hint = did_you_mean(&pin.ladder, ladders.iter().map(|l| l.name.as_str()))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(user(format!("unknown ladder `{}`{hint}", pin.ladder)));
            };
            let Some(target) = ladders[li].level_index(&pin.level) else {
                let hint = did_you_mean(
                    &pin.level,
                    ladders[li].levels.iter().map(|l| l.name.as_str()),
                )
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
                return Err(user(format!(
                    "unknown level `{}` in ladder `{}`{hint}",
                    pin.level, pin.ladder
                )));
            };
            let Some(&row) = rows.get(pin.customer_id.as_str()) else {
                return Err(user(format!("unknown customer `{}`", pin.customer_id)));
            };
            let r = &mut results[li];
            apply_override(
                &mut r.level[row],
                &mut r.reason[row],
                target,
                pin.mode,
                OverrideSource::Manual {
                    reason: pin.reason.clone(),
                },
            );
        }
    }

    Ok(Evaluation {
        policy,
        frame,
        scores,
        ladders,
        results,
    })
}

/// Runs every graded customer through the ladder's hold and records its new standing.
fn apply_holds(
    ladder: &Ladder,
    frame: &Frame,
    result: &mut LadderResult,
    prior: Option<&PriorLadder>,
    as_of: NaiveDate,
) {
    let unplaced = ladder.levels.len();
    let index_of = |name: &str| {
        if name == UNPLACED {
            Some(unplaced)
        } else {
            ladder.level_index(name)
        }
    };
    // The previous run's level names on this ladder (`None`: a level the policy no longer
    // has, so the customer starts afresh).
    let levels: Vec<Option<usize>> = prior
        .map(|p| p.level_names.iter().map(|n| index_of(n)).collect())
        .unwrap_or_default();
    let mut state = Vec::with_capacity(frame.len());
    for row in 0..frame.len() {
        let rule_level = result.level[row];
        if rule_level > unplaced {
            state.push(None);
            continue;
        }
        let before: Option<HoldState> = prior
            .and_then(|p| p.rows.get(row))
            .and_then(Option::as_ref)
            .and_then(|p| Some(p.with_level(levels.get(p.level as usize).copied().flatten()?)));
        let out = hold::decide(ladder, rule_level, before.as_ref(), as_of);
        if let Some(h) = out.hold {
            result.level[row] = out.level;
            let rule_reason = std::mem::replace(&mut result.reason[row], Reason::Rest);
            result.reason[row] = Reason::Held {
                hold: Box::new(h),
                rule_reason: Box::new(rule_reason),
            };
        }
        state.push(Some(out.state));
    }
    result.state = state;
}

/// One row of a ladder's report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LevelRow {
    pub level: String,
    pub count: usize,
    pub share: f64,
    pub value: f64,
    pub value_share: Option<f64>,
}

/// The count pyramid beside the value pyramid, and the Pareto figure.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LadderSummary {
    pub ladder: String,
    pub title: Option<String>,
    pub value_name: Option<String>,
    pub rows: Vec<LevelRow>,
    /// Share of total value held by the top 20% of customers by value.
    pub pareto_top20: Option<f64>,
    /// A cluster ladder's clusters: kept with the run, so the next run can match its
    /// clusters to these and pages can draw the centres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<ClusterSummary>,
}

pub use crate::cluster::{ClusterCentre, ClusterSummary};

pub use crate::model::{NOT_APPLICABLE, Placeholder, UNPLACED};

/// A ladder's summary as a recorded run keeps it, for pages that must not recompute: the
/// pyramids and the Pareto figure, and the Lorenz curve of the value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedSummary {
    pub summary: LadderSummary,
    /// (share of customers, share of value they hold), customers by value largest first,
    /// from (0, 0) to (1, 1) in [`LORENZ_POINTS`] steps; empty without a value measure.
    pub lorenz: Vec<(f64, f64)>,
    /// The run compared with: the policy's previous run, when there was one.
    #[serde(default)]
    pub previous_run: Option<i64>,
    /// The migration matrix from the previous run: (level then, level now, customers, value
    /// now); `None` on the left: not in the previous run.
    #[serde(default)]
    pub moves: Vec<(Option<String>, String, u64, f64)>,
    #[serde(default)]
    pub upgrades: u64,
    #[serde(default)]
    pub downgrades: u64,
    /// The first [`MOVERS_KEPT`] customers (by id) who moved up, and down: (customer, from,
    /// to).
    #[serde(default)]
    pub upgraded: Vec<(String, String, String)>,
    #[serde(default)]
    pub downgraded: Vec<(String, String, String)>,
    /// Per level, the rank measure of the last customer a rank rule (`top_share`, `top_n`,
    /// `value_share`) took: how far a customer is from entering it.
    #[serde(default)]
    pub cutoffs: Vec<Option<f64>>,
    /// Per level, the activity behind the report's repeat-purchase and churn rates; empty
    /// without the policy's `activity` metric.
    #[serde(default)]
    pub activity: Vec<LevelActivity>,
}

/// A level's activity at a run, as `stratum report` defines its rates.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LevelActivity {
    pub level: String,
    /// Customers on the level with a purchase in the window (activity above 0).
    pub active: u64,
    /// Of those, customers with two or more.
    pub repeat: u64,
    /// Customers on the level at the previous run who were active then (`None`: no previous
    /// run), and how many of them are not active now (or gone).
    pub active_before: Option<u64>,
    pub churned: u64,
}

impl LevelActivity {
    pub fn repeat_rate(&self) -> Option<f64> {
        (self.active > 0).then(|| self.repeat as f64 / self.active as f64)
    }
    pub fn churn_rate(&self) -> Option<f64> {
        match self.active_before {
            Some(0) => Some(0.0),
            Some(n) => Some(self.churned as f64 / n as f64),
            None => None,
        }
    }
}

/// Customers kept in each of a recorded summary's upgrade and downgrade lists.
pub const MOVERS_KEPT: usize = 20;

/// Steps of a recorded Lorenz curve (every 5% of customers).
pub const LORENZ_POINTS: usize = 20;

impl Evaluation {
    pub fn level_name(&self, ladder: usize, level: usize) -> &str {
        let levels = &self.ladders[ladder].levels;
        match levels.get(level) {
            Some(l) => l.name.as_str(),
            None if level == levels.len() => UNPLACED,
            None => NOT_APPLICABLE,
        }
    }

    /// The value's Lorenz curve on ladder `li` over the customers it grades (see
    /// [`RecordedSummary::lorenz`]).
    pub fn lorenz(&self, li: usize) -> Vec<(f64, f64)> {
        use rayon::slice::ParallelSliceMut;
        let ladder = &self.ladders[li];
        let result = &self.results[li];
        let Some(col) = ladder.value_measure().and_then(|v| self.frame.column(v)) else {
            return Vec::new();
        };
        let mut values: Vec<f64> = (0..self.frame.len())
            .filter(|&r| result.level[r] <= ladder.levels.len())
            .map(|r| col.num(r).filter(|v| v.is_finite()).unwrap_or(0.0))
            .collect();
        let total: f64 = values.iter().sum();
        if values.is_empty() || total <= 0.0 {
            return Vec::new();
        }
        values.par_sort_unstable_by(|a, b| b.total_cmp(a));
        let n = values.len();
        let mut points = vec![(0.0, 0.0)];
        let (mut sum, mut taken) = (0.0, 0);
        for step in 1..=LORENZ_POINTS {
            let upto = (n * step).div_ceil(LORENZ_POINTS);
            sum += values[taken..upto].iter().sum::<f64>();
            taken = upto;
            points.push((step as f64 / LORENZ_POINTS as f64, sum / total));
        }
        points
    }

    pub fn summary(&self, li: usize) -> LadderSummary {
        let ladder = &self.ladders[li];
        let result = &self.results[li];
        let n = self.frame.len();
        let value_col = ladder.value_measure().and_then(|v| self.frame.column(v));
        let value_of = |row: usize| {
            value_col
                .and_then(|c| c.num(row))
                .filter(|v| v.is_finite())
                .unwrap_or(0.0)
        };
        let total: f64 = (0..n).map(value_of).sum();
        let slots = ladder.levels.len() + 2;
        let mut counts = vec![0usize; slots];
        let mut values = vec![0.0; slots];
        for row in 0..n {
            counts[result.level[row]] += 1;
            values[result.level[row]] += value_of(row);
        }
        // Shares are of the customers the ladder grades; the not-applicable row shows counts only.
        let graded = n - counts[ladder.levels.len() + 1];
        let total: f64 = total - values[ladder.levels.len() + 1];
        let rows = (0..slots)
            .filter(|&i| i < ladder.levels.len() || counts[i] > 0)
            .map(|i| {
                let in_scope = i <= ladder.levels.len();
                LevelRow {
                    level: self.level_name(li, i).to_string(),
                    count: counts[i],
                    share: if graded == 0 || !in_scope {
                        0.0
                    } else {
                        counts[i] as f64 / graded as f64
                    },
                    value: values[i],
                    value_share: (in_scope && value_col.is_some() && total != 0.0)
                        .then(|| values[i] / total),
                }
            })
            .collect();
        let pareto_top20 = value_col.and_then(|_| {
            let mut v: Vec<f64> = (0..n)
                .filter(|&r| result.level[r] <= ladder.levels.len())
                .map(value_of)
                .collect();
            let top = ((v.len() as f64) * 0.2).round() as usize;
            // Only the top fifth is ordered (it is summed largest first): a selection, then
            // a sort of a fifth, instead of sorting everyone.
            if top < v.len() {
                v.select_nth_unstable_by(top, |a, b| b.total_cmp(a));
            }
            let top = &mut v[..top];
            top.sort_unstable_by(|a, b| b.total_cmp(a));
            (total > 0.0).then(|| top.iter().sum::<f64>() / total)
        });
        LadderSummary {
            ladder: ladder.name.clone(),
            title: ladder.title.clone(),
            value_name: ladder.value_measure().map(str::to_string),
            rows,
            pareto_top20,
            clusters: result
                .clusters
                .as_deref()
                .map(|c| cluster_summary(c, ladder)),
        }
    }

    /// One line saying why the customer is on its level.
    pub fn explanation(&self, li: usize, row: usize) -> String {
        let mut text = String::new();
        self.write_explanation(li, row, &mut text);
        text
    }

    /// Appends [`Self::explanation`] to `out`. The output files explain every customer, so
    /// the pieces go straight into one reused buffer rather than through a string each.
    pub fn write_explanation(&self, li: usize, row: usize, out: &mut String) {
        let result = &self.results[li];
        self.write_reason(li, row, result.level[row], &result.reason[row], out);
        let ladder = &self.ladders[li];
        if let Some(state) = result.state.get(row).and_then(Option::as_ref)
            && let Some(days) = ladder.levels.get(state.level).and_then(|l| l.valid_days)
        {
            let _ = write!(
                out,
                "; {} valid until {}",
                self.level_name(li, state.level),
                state.since + chrono::Days::new(u64::from(days) - 1)
            );
        }
    }

    /// "rank 12 of 1,000 by score (87.5)", when the ladder ranks.
    fn write_rank(&self, li: usize, row: usize, out: &mut String) {
        let (result, ladder) = (&self.results[li], &self.ladders[li]);
        let (Some(rank), Some(by)) = (&result.rank, &ladder.rank_by) else {
            return;
        };
        out.push_str("rank ");
        push_num(out, f64::from(rank[row]));
        out.push_str(" of ");
        push_num(out, result.graded as f64);
        let _ = write!(out, " by {by} (");
        match self.frame.column(by).map(|c| c.value(row)) {
            Some(Value::Num(v)) => push_num(out, v),
            Some(other) => {
                let _ = write!(out, "{other}");
            }
            None => {}
        }
        out.push(')');
    }

    fn write_reason(&self, li: usize, row: usize, level: usize, reason: &Reason, out: &mut String) {
        let ladder = &self.ladders[li];
        match reason {
            Reason::Held { hold, rule_reason } => {
                let here = self.level_name(li, level);
                let there = self.level_name(li, hold.rule_level);
                let wait = match (hold.until, hold.runs_left) {
                    (Some(d), 0) => format!("until {d}"),
                    (None, r) => format!("for {r} more run{}", if r == 1 { "" } else { "s" }),
                    (Some(d), r) => format!(
                        "until {d} and for {r} more run{}",
                        if r == 1 { "" } else { "s" }
                    ),
                };
                if hold.upgrade {
                    let _ = write!(
                        out,
                        "upgrade to {there} pending {wait}; stays {here} (rules: "
                    );
                } else {
                    let _ = write!(
                        out,
                        "held at {here} by grace {wait}; the rules give {there} ("
                    );
                }
                self.write_reason(li, row, hold.rule_level, rule_reason, out);
                out.push(')');
            }
            Reason::Condition => {
                if let Rule::When(c) = &ladder.levels[level].rule {
                    out.push_str(&c.reasons(&self.frame, row).join(" and "));
                }
            }
            Reason::Quota => {
                self.write_rank(li, row, out);
                match &ladder.levels[level].rule {
                    Rule::TopShare { share, .. } => {
                        out.push_str(": within the next ");
                        push_num(out, share * 100.0);
                        out.push_str("% by rank");
                    }
                    Rule::TopN { n: top, .. } => {
                        let _ = write!(out, ": within the next {top} by rank");
                    }
                    _ => {}
                }
            }
            Reason::ValueShare {
                value_before,
                total,
            } => {
                let share: f64 = match &ladder.levels[level].rule {
                    Rule::ValueShare { .. } => ladder.levels[..=level]
                        .iter()
                        .filter_map(|l| match l.rule {
                            Rule::ValueShare { share, .. } => Some(share),
                            _ => None,
                        })
                        .sum(),
                    _ => 0.0,
                };
                self.write_rank(li, row, out);
                let _ = write!(
                    out,
                    ": customers ranked above hold {:.1}% of {}, under the ",
                    if *total > 0.0 {
                        value_before / total * 100.0
                    } else {
                        0.0
                    },
                    ladder.value_measure().unwrap_or("value"),
                );
                push_num(out, share * 100.0);
                out.push_str("% mark");
            }
            Reason::Rest => out.push_str("matched no level above"),
            Reason::Cluster => self.write_cluster(li, row, level, out),
            Reason::MissingFeatures => {
                let features = ladder
                    .cluster
                    .as_ref()
                    .map(|c| c.features.join(", "))
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    "lacks a value of the clustering features ({features}), so is not clustered"
                );
            }
            Reason::Unplaced => {
                out.push_str("matched no level, and the ladder has no `rest` level");
            }
            Reason::NotApplicable => match &ladder.applies_to {
                Some(c) => {
                    let _ = write!(
                        out,
                        "not graded by this ladder: {} does not hold",
                        c.render(Some((&self.frame, row)))
                    );
                }
                None => out.push_str("not graded by this ladder"),
            },
            Reason::Override {
                source,
                mode,
                rule_level,
            } => {
                let what = match mode {
                    OverrideMode::Pin => "pinned",
                    OverrideMode::Floor => "raised to its floor",
                    OverrideMode::Ceiling => "held at its ceiling",
                };
                let _ = match source.as_ref() {
                    OverrideSource::Tag(t) => write!(out, "{what} by tag '{t}'"),
                    OverrideSource::Manual { reason } => {
                        write!(out, "{what} by manual override ({reason})")
                    }
                };
                let _ = write!(
                    out,
                    "; the rules alone gave {}",
                    self.level_name(li, *rule_level)
                );
            }
        }
    }

    /// A clustered customer: its cluster by value order, how firmly it sits there, and what
    /// sets the cluster apart.
    fn write_cluster(&self, li: usize, row: usize, level: usize, out: &mut String) {
        let ladder = &self.ladders[li];
        let Some(clusters) = self.results[li].clusters.as_deref() else {
            return;
        };
        let Some(position) = clusters.levels.iter().position(|c| c.level == level) else {
            return;
        };
        let cluster = &clusters.levels[position];
        let overall = clusters.levels.iter().map(|c| c.value_total).sum::<f64>()
            / clusters.levels.iter().map(|c| c.size).sum::<usize>().max(1) as f64;
        let _ = write!(
            out,
            "k-means cluster {} of {} (mean {} {} against {} overall)",
            position + 1,
            clusters.levels.len(),
            ladder.value_measure().unwrap_or("value"),
            fmt_num(crate::frame::round4(cluster.value_mean)),
            fmt_num(crate::frame::round4(overall)),
        );
        let (own, next) = clusters.distances[row];
        if own.is_finite() {
            let _ = write!(
                out,
                ": {} from its centre, {} from the next nearest",
                fmt_num(crate::frame::round4(own as f64)),
                fmt_num(crate::frame::round4(next as f64))
            );
        }
        let standouts: Vec<String> = clusters
            .standouts(level, 2)
            .into_iter()
            .map(|(f, c, m)| {
                format!(
                    "{f} {} against {}",
                    fmt_num(crate::frame::round4(c)),
                    fmt_num(crate::frame::round4(m))
                )
            })
            .collect();
        if !standouts.is_empty() {
            let _ = write!(out, "; the cluster stands out by {}", standouts.join(", "));
        }
    }

    /// What it takes to reach the next better level, in words.
    pub fn next_level_gap(&self, li: usize, row: usize) -> String {
        let result = &self.results[li];
        gap_to_next(
            &self.ladders[li],
            result.level[row],
            matches!(result.reason[row], Reason::Override { .. }),
            &result.cutoff,
            &self.frame,
            row,
        )
    }

    /// A full explanation of one customer: metrics, score contributions, placements, gaps.
    pub fn explain(&self, row: usize) -> CustomerExplanation {
        let metrics = self
            .policy
            .metrics
            .iter()
            .map(|m| {
                let v = self
                    .frame
                    .column(&m.name)
                    .map(|c| c.value(row).to_string())
                    .unwrap_or_default();
                (m.name.clone(), v)
            })
            .collect();
        let scores = self
            .scores
            .iter()
            .map(|s| {
                let total = self
                    .frame
                    .column(&s.score.name)
                    .and_then(|c| c.num(row))
                    .unwrap_or(0.0);
                (
                    s.score.name.clone(),
                    total,
                    s.contributions(&self.frame, row),
                )
            })
            .collect();
        let placements = (0..self.ladders.len())
            .map(|li| Placement {
                ladder: self.ladders[li].name.clone(),
                level: self.level_name(li, self.results[li].level[row]).to_string(),
                rank: self.results[li].rank.as_ref().map(|r| r[row]),
                because: self.explanation(li, row),
                next: self.next_level_gap(li, row),
            })
            .collect();
        CustomerExplanation {
            customer_id: self.frame.ids()[row].to_string(),
            tags: self.frame.tags(row).to_vec(),
            metrics,
            scores,
            placements,
            models: Vec::new(),
        }
    }
}

/// On a ladder where down is better (a risk ladder): what keeps the customer on its
/// level, i.e. the rule it would have to stop meeting to move to a better one.
fn way_down(ladder: &Ladder, level: usize) -> String {
    let Some(current) = ladder.levels.get(level) else {
        return "matched no level".to_string();
    };
    if level + 1 == ladder.levels.len() || matches!(current.rule, Rule::Rest) {
        return "already on the best level".to_string();
    }
    let better = &ladder.levels[level + 1].name;
    match &current.rule {
        Rule::When(cond) => format!(
            "to improve to {better}, stop meeting {}'s rule: {}",
            current.name,
            cond.render(None)
        ),
        _ => format!(
            "to improve to {better}, leave the customers {} takes by rank",
            current.name
        ),
    }
}

/// What it takes to reach the next better level, in words, from any frame holding the
/// customer's metrics and scores: an evaluation's, or one row rebuilt from what a run
/// recorded (the console's card). `level`: the customer's level index (past the end: not
/// graded); `cutoffs`: per level, the rank measure of the last customer a rank rule took.
pub fn gap_to_next(
    ladder: &Ladder,
    level: usize,
    overridden: bool,
    cutoffs: &[Option<f64>],
    frame: &Frame,
    row: usize,
) -> String {
    if level > ladder.levels.len() {
        return "not graded by this ladder".to_string();
    }
    if overridden {
        return "placed by an override; rules do not apply until it is removed".to_string();
    }
    if ladder.better == crate::policy::Better::Down {
        return way_down(ladder, level);
    }
    if level == 0 {
        return "already on the top level".to_string();
    }
    let target_idx = level.min(ladder.levels.len()) - 1;
    let target = &ladder.levels[target_idx];
    let rank_gap = |when: &Option<crate::cond::Cond>| -> String {
        let by = ladder.rank_by.as_deref().unwrap_or("rank");
        let has = frame.column(by).and_then(|c| c.num(row));
        let mut text = match (cutoffs.get(target_idx).copied().flatten(), has) {
            (Some(cut), Some(h)) if cut > h => format!(
                "needs {} more {by} for {} (has {}, the lowest in {} now has {})",
                fmt_num(cut - h),
                target.name,
                fmt_num(h),
                target.name,
                fmt_num(cut)
            ),
            (Some(cut), _) => format!(
                "needs to rank above others with {by} {} to enter {}",
                fmt_num(cut),
                target.name
            ),
            (None, _) => format!("{} took no one by rank this run", target.name),
        };
        if let Some(c) = when
            && !c.eval(frame, row)
        {
            text.push_str(&format!(", and to meet: {}", c.render(None)));
        }
        text
    };
    match &target.rule {
        Rule::When(cond) => match cond.needs(frame, row) {
            Some(needs) if !needs.is_empty() => {
                let parts: Vec<String> = needs
                    .iter()
                    .map(|need| match (need.delta, need.has) {
                        (Some(d), Some(h)) => format!(
                            "{} {} {} (has {}, {} requires {} {})",
                            fmt_num(d.abs()),
                            if d >= 0.0 { "more" } else { "less" },
                            need.name,
                            fmt_num(h),
                            target.name,
                            need.op.symbol(),
                            fmt_num(need.target)
                        ),
                        _ => format!(
                            "{} {} {} (has no value)",
                            need.name,
                            need.op.symbol(),
                            fmt_num(need.target)
                        ),
                    })
                    .collect();
                format!("needs {} for {}", parts.join(" and "), target.name)
            }
            _ => format!("needs to meet {} for {}", cond.render(None), target.name),
        },
        Rule::TopShare { when, .. } | Rule::TopN { when, .. } | Rule::ValueShare { when, .. } => {
            rank_gap(when)
        }
        Rule::Rest => format!("{} is a rest level", target.name),
        Rule::Cluster { .. } => format!(
            "{} is a k-means cluster: customers join it by behaving like its members, not by a threshold",
            target.name
        ),
        Rule::MissingFeatures => format!(
            "{} takes customers lacking a clustering feature",
            target.name
        ),
    }
}

/// The ladder with its conditions (levels' rules, `applies_to`) bound to `frame`'s columns:
/// what placing customers, and telling one what the next level needs, evaluate.
pub fn bind_ladder(ladder: &Ladder, frame: &Frame) -> Result<Ladder, EvalError> {
    let mut bound = ladder.clone();
    for (i, level) in bound.levels.iter_mut().enumerate() {
        let cond = match &mut level.rule {
            Rule::When(c) => Some(c),
            Rule::TopShare { when, .. }
            | Rule::TopN { when, .. }
            | Rule::ValueShare { when, .. } => when.as_mut(),
            Rule::Rest | Rule::Cluster { .. } | Rule::MissingFeatures => None,
        };
        if let Some(c) = cond {
            c.resolve(frame).map_err(|message| EvalError::User {
                key: format!("ladders.{}.levels[{i}].when", ladder.name),
                message,
            })?;
        }
    }
    if let Some(scope) = &mut bound.applies_to {
        scope.resolve(frame).map_err(|message| EvalError::User {
            key: format!("ladders.{}.applies_to", ladder.name),
            message,
        })?;
    }
    Ok(bound)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub ladder: String,
    pub level: String,
    pub rank: Option<u32>,
    pub because: String,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerExplanation {
    pub customer_id: String,
    pub tags: Vec<String>,
    pub metrics: Vec<(String, String)>,
    pub scores: Vec<(String, f64, Vec<Contribution>)>,
    pub placements: Vec<Placement>,
    /// The fitted lifetime models behind `lifetime` metrics, one line each (filled in by
    /// whoever fitted them).
    pub models: Vec<String>,
}

impl std::fmt::Display for CustomerExplanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "customer {}", self.customer_id)?;
        if !self.tags.is_empty() {
            writeln!(f, "  tags: {}", self.tags.join(", "))?;
        }
        writeln!(f, "\nmetrics")?;
        let width = self.metrics.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, value) in &self.metrics {
            writeln!(f, "  {name:<width$}  {value}")?;
        }
        for (name, total, parts) in &self.scores {
            writeln!(f, "\nscore {name} = {}", fmt_num(*total))?;
            for c in parts {
                writeln!(
                    f,
                    "  {:<24} {:>8}  {}",
                    c.label,
                    fmt_num(c.points),
                    c.detail
                )?;
            }
        }
        for p in &self.placements {
            writeln!(f, "\nladder {}: {}", p.ladder, p.level)?;
            if let Some(r) = p.rank {
                writeln!(f, "  rank:    {}", fmt_num(f64::from(r)))?;
            }
            writeln!(f, "  because: {}", p.because)?;
            writeln!(f, "  next:    {}", p.next)?;
        }
        if !self.models.is_empty() {
            writeln!(f, "\nlifetime models")?;
            for m in &self.models {
                writeln!(f, "  {m}")?;
            }
        }
        Ok(())
    }
}

/// What a run keeps of a cluster ladder's k-means.
fn cluster_summary(clusters: &crate::cluster::Clusters, ladder: &Ladder) -> ClusterSummary {
    ClusterSummary {
        features: clusters.features.clone(),
        mean: clusters.mean.clone(),
        sd: clusters.sd.clone(),
        inertia: clusters.inertia,
        iterations: clusters.iterations,
        imputed: clusters.imputed,
        choices: clusters.choices.clone(),
        clusters: clusters
            .levels
            .iter()
            .map(|c| ClusterCentre {
                level: ladder.levels[c.level].name.clone(),
                customers: c.size,
                centre: c.centre.clone(),
                value_mean: c.value_mean,
                moved: c.moved,
            })
            .collect(),
    }
}
