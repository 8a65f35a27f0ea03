//! # stratum-core
//!
//! The pure part of Stratum: the policy language (model, parsing, checking, lint), scoring
//! (weighted composites, scorecards, RFM), ladder placement with rank quotas and value shares,
//! overrides, and explanations. It exists so that the rules of customer tiering can be read,
//! tested and reasoned about without a query engine, a database or an async runtime: the engine
//! hands it a [`Frame`] of per-customer metrics and it hands back levels and reasons.

pub mod assign;
pub mod calendar;
pub mod churn;
pub mod cluster;
pub mod clv;
pub mod compile;
pub mod cond;
pub mod diagnostic;
pub mod evaluate;
pub mod frame;
pub mod guard;
pub mod hold;
pub mod ladder;
pub mod lint;
pub mod model;
pub mod pipeline;
pub mod policy;
pub mod score;
pub mod segment;
pub mod service;
pub mod source_map;
pub mod teams;
pub mod time;

pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};
pub use evaluate::{
    CustomerExplanation, EvalError, Evaluation, Inputs, LadderSummary, LevelActivity, LevelRow,
    Prior, PriorLadder, RecordedSummary, UNPLACED, bind_ladder, evaluate, evaluate_with,
    gap_to_next,
};
pub use frame::{Column, Frame, Ids, Value, fmt_num};
pub use guard::{Guards, RejectLimit};
pub use hold::{Hold, HoldState, PriorState, Standing};
pub use ladder::{LadderResult, ManualPin, Reason};
pub use model::{
    Ladder, Level, Metric, MetricKind, Policy, PolicySettings, Rule, Score, ScoreSpec, Source,
    Window,
};
pub use policy::{
    ColumnType, Label, Lang, Literal, OverrideMode, PolicyFile, SourceDef, SourceFormat,
};
pub use service::{Benefit, Call, QueuePlace, Quota, QuotaPeriod, Service, SlaRow, Waiting};
