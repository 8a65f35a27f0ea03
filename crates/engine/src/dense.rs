//! Stage one's per-customer aggregation without a hash table, where the customer key is an
//! integer.
//!
//! Stage one groups every event row by customer. DataFusion plans that as a hash aggregation:
//! each row hashes its key, probes a table the size of the customer base and then updates
//! accumulators kept elsewhere — two or three cache misses per row at a million customers.
//! Customer keys in exports are mostly small integers close together (1..n, or an offset
//! range), so the key itself can be the slot: `key - lowest key` indexes one flat array that
//! holds every accumulator of a customer side by side, one cache line per row.
//!
//! [`DenseAggregation`] is a physical optimizer rule: DataFusion still parses, plans and
//! optimises the SQL (projections, filters and row-group pruning are its own); the rule swaps
//! the aggregation of a plan whose grouping is one integer column and whose aggregates are
//! plain `count`, `sum`, `avg`, `min` or `max` for a [`DenseAggregateExec`] with the same
//! output schema. Anything else (text keys, `DISTINCT`, `FILTER`, ordered or user-defined
//! aggregates, decimal sums) keeps DataFusion's own operator. Keys spread too thinly for a
//! flat array (phone numbers) switch to a hash map while running; the results are the same.
//!
//! The output is in key order and deterministic: every worker reads fixed input partitions in
//! order and the workers' partial results are merged in an order fixed by the input, so float
//! sums add up the same way on every run.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBufferBuilder, Float64Array, Int64Array, PrimitiveArray,
    RecordBatch,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, SchemaRef,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ColumnarValue, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    Partitioning, PlanProperties, SendableRecordBatchStream,
};
use futures_util::StreamExt;

/// Slots a flat array may have beyond the groups it is expected to hold before the keys count
/// as too sparse for one (and the aggregation switches to a hash map).
const SPARE_SLOTS: usize = 1 << 16;
/// How many times the expected groups a flat array may span.
const MAX_SPREAD: usize = 2;

/// The environment variable that turns the rule off (`off`), for comparing with
/// DataFusion's own aggregation or working around a problem; `on` (the default) keeps it.
pub const SWITCH: &str = "STRATUM_DENSE_AGGREGATION";

/// Whether stage one plans dense aggregations ([`SWITCH`]).
pub fn enabled() -> Result<bool, crate::EngineError> {
    match std::env::var(SWITCH).as_deref() {
        Err(_) | Ok("on") => Ok(true),
        Ok("off") => Ok(false),
        Ok(other) => Err(crate::EngineError::User(crate::UserError::Config(format!(
            "environment variable {SWITCH}={other}: neither on nor off"
        )))),
    }
}

/// The rule that plans [`DenseAggregateExec`] where it applies.
#[derive(Debug)]
pub struct DenseAggregation {
    /// Threads that aggregate at once; each holds its own table.
    pub workers: usize,
    /// Groups the aggregations are expected to produce (the customers): keys spanning more
    /// than [`MAX_SPREAD`] times as many slots are kept in a hash map instead.
    pub expected_groups: usize,
}

impl PhysicalOptimizerRule for DenseAggregation {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            Ok(match DenseAggregateExec::replacing(&node, self)? {
                Some(dense) => Transformed::yes(Arc::new(dense) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "dense_aggregation"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// What one aggregate computes, and over which values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Count,
    SumFloat,
    SumInt,
    Avg,
    MinFloat,
    MaxFloat,
    /// Over whole numbers and dates, kept as i64 and written back as `Output`.
    MinInt(IntType),
    MaxInt(IntType),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum IntType {
    Int64,
    Int32,
    Date32,
}

impl IntType {
    fn of(t: &DataType) -> Option<IntType> {
        match t {
            DataType::Int64 => Some(IntType::Int64),
            DataType::Int32 => Some(IntType::Int32),
            DataType::Date32 => Some(IntType::Date32),
            _ => None,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            IntType::Int64 => DataType::Int64,
            IntType::Int32 => DataType::Int32,
            IntType::Date32 => DataType::Date32,
        }
    }
}

impl Kind {
    /// The kind for a DataFusion aggregate `name` over `arg`, if this operator computes it.
    fn of(name: &str, arg: &DataType) -> Option<Kind> {
        Some(match (name, arg) {
            ("count", _) => Kind::Count,
            ("sum", DataType::Float64) => Kind::SumFloat,
            ("sum", DataType::Int64) => Kind::SumInt,
            ("avg", DataType::Float64) => Kind::Avg,
            ("min", DataType::Float64) => Kind::MinFloat,
            ("max", DataType::Float64) => Kind::MaxFloat,
            ("min", t) => Kind::MinInt(IntType::of(t)?),
            ("max", t) => Kind::MaxInt(IntType::of(t)?),
            _ => return None,
        })
    }

    fn output_type(self) -> DataType {
        match self {
            Kind::Count | Kind::SumInt => DataType::Int64,
            Kind::SumFloat | Kind::Avg | Kind::MinFloat | Kind::MaxFloat => DataType::Float64,
            Kind::MinInt(t) | Kind::MaxInt(t) => t.data_type(),
        }
    }
}

/// One aggregate: its argument, what it computes, and where its state lives in a slot.
#[derive(Debug, Clone)]
struct Aggregate {
    arg: Arc<dyn PhysicalExpr>,
    kind: Kind,
    /// Whether the argument can be null; if not, the slot's row count is its count.
    nullable: bool,
    /// The word holding the value (sum, min, max; for `Count` the count).
    value: usize,
    /// The word counting the non-null values seen (0: the row count, for arguments that
    /// cannot be null in `count`, `sum` and `avg`).
    count: usize,
    name: String,
}

/// What every worker needs to aggregate: the grouping key, the aggregates and the slot layout.
#[derive(Debug)]
struct Spec {
    key: Arc<dyn PhysicalExpr>,
    key_type: IntType,
    key_name: String,
    aggregates: Vec<Aggregate>,
    /// 64-bit words per slot; word 0 counts the slot's rows.
    width: usize,
    expected_groups: usize,
}

/// A per-customer aggregation over an integer key, by slot instead of by hash; see the module.
#[derive(Debug)]
pub struct DenseAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<Spec>,
    workers: usize,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl DenseAggregateExec {
    /// The operator that can stand in for `node` (an aggregation and, for a two-phase one,
    /// its partial phase beneath), if `node` is one it can compute.
    fn replacing(
        node: &Arc<dyn ExecutionPlan>,
        rule: &DenseAggregation,
    ) -> Result<Option<DenseAggregateExec>> {
        let Some(top) = node.downcast_ref::<AggregateExec>() else {
            return Ok(None);
        };
        let first = match top.mode() {
            AggregateMode::Single | AggregateMode::SinglePartitioned => top,
            AggregateMode::Final | AggregateMode::FinalPartitioned => {
                let mut below = Arc::clone(top.input());
                while below.is::<RepartitionExec>() || below.is::<CoalescePartitionsExec>() {
                    below = Arc::clone(below.children()[0]);
                }
                match below.downcast_ref::<AggregateExec>() {
                    Some(partial) if *partial.mode() == AggregateMode::Partial => {
                        // `top` is borrowed from `node`; `partial` from `below`, which lives
                        // in the plan as long as `node` does.
                        return Self::from_first(top, partial, rule);
                    }
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        Self::from_first(top, first, rule)
    }

    /// `top` gives the output schema; `first` (the same node, or the partial phase) the
    /// input, the grouping and the aggregates' arguments.
    fn from_first(
        top: &AggregateExec,
        first: &AggregateExec,
        rule: &DenseAggregation,
    ) -> Result<Option<DenseAggregateExec>> {
        if top.limit_options().is_some() || first.limit_options().is_some() {
            return Ok(None);
        }
        let group = first.group_expr();
        if group.has_grouping_set() || group.expr().len() != 1 {
            return Ok(None);
        }
        let input_schema = first.input().schema();
        let (key, key_name) = &group.expr()[0];
        let Some(key_type) = IntType::of(&key.data_type(&input_schema)?) else {
            return Ok(None);
        };
        if matches!(key_type, IntType::Date32) {
            return Ok(None);
        }
        if first.filter_expr().iter().any(Option::is_some) {
            return Ok(None);
        }
        let schema = top.schema();
        if schema.fields().len() != 1 + first.aggr_expr().len()
            || schema.field(0).data_type() != &key_type.data_type()
        {
            return Ok(None);
        }
        let mut aggregates = Vec::new();
        let mut width = 1;
        for (i, agg) in first.aggr_expr().iter().enumerate() {
            let args = agg.expressions();
            if agg.is_distinct() || !agg.order_bys().is_empty() || args.len() != 1 {
                return Ok(None);
            }
            let arg = Arc::clone(&args[0]);
            let Some(kind) = Kind::of(agg.fun().name(), &arg.data_type(&input_schema)?) else {
                return Ok(None);
            };
            if schema.field(1 + i).data_type() != &kind.output_type() {
                return Ok(None);
            }
            let nullable = arg.nullable(&input_schema)?;
            let value = width;
            width += 1;
            // Min and max need to know the first value of a slot even without nulls.
            let first_matters = matches!(
                kind,
                Kind::MinFloat | Kind::MaxFloat | Kind::MinInt(_) | Kind::MaxInt(_)
            );
            let count = if (nullable || first_matters) && kind != Kind::Count {
                width += 1;
                width - 1
            } else {
                0
            };
            aggregates.push(Aggregate {
                arg,
                kind,
                nullable,
                value,
                count,
                name: agg.name().to_string(),
            });
        }
        let spec = Spec {
            key: Arc::clone(key),
            key_type,
            key_name: key_name.clone(),
            aggregates,
            width,
            expected_groups: rule.expected_groups,
        };
        Ok(Some(DenseAggregateExec::new(
            Arc::clone(first.input()),
            Arc::new(spec),
            rule.workers,
            schema,
        )))
    }

    fn new(
        input: Arc<dyn ExecutionPlan>,
        spec: Arc<Spec>,
        workers: usize,
        schema: SchemaRef,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        DenseAggregateExec {
            input,
            spec,
            workers: workers.max(1),
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for DenseAggregateExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let aggregates: Vec<&str> = self
            .spec
            .aggregates
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "DenseAggregateExec: gby=[{}], aggr=[{}], workers={}",
                self.spec.key_name,
                aggregates.join(", "),
                self.workers
            ),
            DisplayFormatType::TreeRender => write!(f, "gby={}", self.spec.key_name),
        }
    }
}

impl ExecutionPlan for DenseAggregateExec {
    fn name(&self) -> &str {
        "DenseAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut recursion = f(&self.spec.key)?;
        for a in &self.spec.aggregates {
            if recursion == TreeNodeRecursion::Stop {
                break;
            }
            recursion = f(&a.arg)?;
        }
        Ok(recursion)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "DenseAggregateExec has one input".into(),
            ));
        }
        Ok(Arc::new(DenseAggregateExec::new(
            children.remove(0),
            Arc::clone(&self.spec),
            self.workers,
            Arc::clone(&self.schema),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "DenseAggregateExec has one output partition, not {partition}"
            )));
        }
        let partitions = self.input.output_partitioning().partition_count();
        let workers = self.workers.min(partitions).max(1);
        let mut tasks = Vec::with_capacity(workers);
        for worker in 0..workers {
            let streams = (worker..partitions)
                .step_by(workers)
                .map(|p| self.input.execute(p, Arc::clone(&context)))
                .collect::<Result<Vec<_>>>()?;
            let reservation = MemoryConsumer::new(format!("DenseAggregateExec[{worker}]"))
                .register(context.memory_pool());
            let spec = Arc::clone(&self.spec);
            tasks.push(async move {
                let started = std::time::Instant::now();
                let mut table = Table::new(spec, reservation);
                let mut aggregating = std::time::Duration::ZERO;
                let mut rows = 0;
                for mut stream in streams {
                    while let Some(batch) = stream.next().await {
                        let batch = batch?;
                        let t = std::time::Instant::now();
                        rows += batch.num_rows();
                        table.update(&batch)?;
                        aggregating += t.elapsed();
                    }
                }
                tracing::debug!(
                    worker,
                    rows,
                    slots = table.words.len() / table.spec.width.max(1),
                    map = matches!(table.index, Index::Map(_)),
                    elapsed = ?started.elapsed(),
                    aggregating = ?aggregating,
                    "dense aggregation"
                );
                Ok::<Table, DataFusionError>(table)
            });
        }
        let schema = Arc::clone(&self.schema);
        let spec = Arc::clone(&self.spec);
        let output = futures_util::stream::once(async move {
            let spawned: Vec<_> = tasks.into_iter().map(SpawnedTask::spawn).collect();
            let mut tables = Vec::with_capacity(spawned.len());
            for task in spawned {
                tables.push(
                    task.join()
                        .await
                        .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??,
                );
            }
            finish(&spec, tables, schema)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            output,
        )))
    }
}

/// Where a key's slot is. Slot 0 holds the rows whose key is null.
#[derive(Debug)]
enum Index {
    /// Slot `1 + key - base`, for `len` keys from `base`.
    Flat { base: i64, len: usize },
    /// Slot by hash map, in first-seen order from 1.
    Map(HashMap<i64, usize, ahash::RandomState>),
}

/// One worker's aggregation state.
struct Table {
    spec: Arc<Spec>,
    index: Index,
    /// `width` words per slot, slot 0 first.
    words: Vec<u64>,
    /// Each row's slot in the batch being added (kept to reuse its allocation).
    slots: Vec<usize>,
    reservation: MemoryReservation,
}

/// One aggregate's argument values in a batch, typed once per batch.
enum Values<'a> {
    /// Never null (a non-null literal, as in `count(*)`, or a column that cannot be null
    /// counted by `count`): the row count says it all.
    Rows,
    /// A null literal: never present.
    Absent,
    /// Only which rows are null matters (`count(x)`).
    Nulls(&'a NullBuffer),
    Float(&'a [f64], Option<&'a NullBuffer>),
    Int(&'a [i64], Option<&'a NullBuffer>),
    Int32(&'a [i32], Option<&'a NullBuffer>),
}

/// An evaluated argument, kept alive while [`Values`] borrows it.
enum Evaluated {
    Array(ArrayRef),
    /// What `count` needs of an array: its nulls, if it has any.
    Nulls(Option<NullBuffer>),
    Literal {
        present: bool,
    },
}

impl Table {
    fn new(spec: Arc<Spec>, reservation: MemoryReservation) -> Table {
        let words = vec![0; spec.width];
        Table {
            spec,
            index: Index::Flat { base: 0, len: 0 },
            words,
            slots: Vec::new(),
            reservation,
        }
    }

    /// Adds a batch a column at a time: first every row's slot and row count (the only
    /// pass whose reads miss the cache), then each aggregate over the same slots, by then in
    /// cache — a row-at-a-time loop over all aggregates kept one miss in flight.
    fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let keys = self.spec.key.evaluate(batch)?.into_array(rows)?;
        let (values, nulls): (std::borrow::Cow<[i64]>, Option<&NullBuffer>) =
            match self.spec.key_type {
                IntType::Int64 => {
                    let k = keys.as_primitive::<Int64Type>();
                    (std::borrow::Cow::Borrowed(k.values().as_ref()), k.nulls())
                }
                IntType::Int32 | IntType::Date32 => {
                    let k = keys.as_primitive::<Int32Type>();
                    (
                        std::borrow::Cow::Owned(k.values().iter().map(|v| i64::from(*v)).collect()),
                        k.nulls(),
                    )
                }
            };
        let mut slots = std::mem::take(&mut self.slots);
        self.find_slots(&values, nulls, &mut slots)?;
        let width = self.spec.width;
        let words = &mut self.words;
        for &s in &slots {
            words[s * width] += 1;
        }
        for a in &self.spec.aggregates {
            let evaluated = match a.arg.evaluate(batch)? {
                ColumnarValue::Array(array) if a.kind == Kind::Count => {
                    Evaluated::Nulls(array.logical_nulls().filter(|n| n.null_count() > 0))
                }
                ColumnarValue::Array(array) => Evaluated::Array(array),
                ColumnarValue::Scalar(s) if a.kind == Kind::Count => Evaluated::Literal {
                    present: !s.is_null(),
                },
                scalar => Evaluated::Array(scalar.into_array(rows)?),
            };
            let values = match &evaluated {
                Evaluated::Literal { present: true } => Values::Rows,
                Evaluated::Literal { present: false } => Values::Absent,
                Evaluated::Nulls(None) => Values::Rows,
                Evaluated::Nulls(Some(nulls)) => Values::Nulls(nulls),
                Evaluated::Array(array) => match a.kind {
                    Kind::Count => unreachable!("evaluated to its nulls"),
                    Kind::SumFloat | Kind::Avg | Kind::MinFloat | Kind::MaxFloat => {
                        let a = array.as_primitive::<Float64Type>();
                        Values::Float(a.values().as_ref(), a.nulls())
                    }
                    Kind::SumInt | Kind::MinInt(IntType::Int64) | Kind::MaxInt(IntType::Int64) => {
                        let a = array.as_primitive::<Int64Type>();
                        Values::Int(a.values().as_ref(), a.nulls())
                    }
                    Kind::MinInt(IntType::Int32) | Kind::MaxInt(IntType::Int32) => {
                        let a = array.as_primitive::<Int32Type>();
                        Values::Int32(a.values().as_ref(), a.nulls())
                    }
                    Kind::MinInt(IntType::Date32) | Kind::MaxInt(IntType::Date32) => {
                        let a = array.as_primitive::<Date32Type>();
                        Values::Int32(a.values().as_ref(), a.nulls())
                    }
                },
            };
            accumulate(words, width, &slots, a, &values);
        }
        self.slots = slots;
        Ok(())
    }

    /// Every row's slot, widening the flat range or switching to a map as the keys need.
    fn find_slots(
        &mut self,
        keys: &[i64],
        nulls: Option<&NullBuffer>,
        slots: &mut Vec<usize>,
    ) -> Result<()> {
        slots.clear();
        let valid = |i: usize| nulls.is_none_or(|n| n.is_valid(i));
        if let Index::Flat { .. } = self.index {
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for (i, k) in keys.iter().enumerate() {
                if valid(i) {
                    lo = lo.min(*k);
                    hi = hi.max(*k);
                }
            }
            if lo <= hi && !self.widen(lo, hi)? {
                self.switch_to_map();
            }
        }
        match &mut self.index {
            Index::Flat { base, .. } => {
                let base = *base;
                match nulls {
                    None => slots.extend(keys.iter().map(|k| 1 + (k - base) as usize)),
                    Some(n) => slots.extend(keys.iter().enumerate().map(|(i, k)| {
                        if n.is_valid(i) {
                            1 + (k - base) as usize
                        } else {
                            0
                        }
                    })),
                }
            }
            Index::Map(map) => {
                let before = map.len();
                for (i, k) in keys.iter().enumerate() {
                    if !valid(i) {
                        slots.push(0);
                        continue;
                    }
                    let next = map.len() + 1;
                    slots.push(*map.entry(*k).or_insert(next));
                }
                let added = map.len() - before;
                if added > 0 {
                    let width = self.spec.width;
                    // A map entry costs about a key, a slot number and the table's spare room.
                    self.reservation.try_grow(added * (width * 8 + 32))?;
                    self.words.resize((1 + map.len()) * width, 0);
                }
            }
        }
        Ok(())
    }

    /// Makes the flat range cover `lo..=hi`; false if that would be too sparse for one.
    fn widen(&mut self, lo: i64, hi: i64) -> Result<bool> {
        let Index::Flat { base, len } = self.index else {
            return Ok(false);
        };
        let (cur_lo, cur_hi) = if len == 0 {
            (lo, hi)
        } else {
            (base, base + len as i64 - 1)
        };
        if len > 0 && lo >= cur_lo && hi <= cur_hi {
            return Ok(true);
        }
        let limit = self
            .spec
            .expected_groups
            .saturating_mul(MAX_SPREAD)
            .saturating_add(SPARE_SLOTS);
        let (new_lo, new_hi) = (lo.min(cur_lo), hi.max(cur_hi));
        let span = new_hi as i128 - new_lo as i128 + 1;
        if span > limit as i128 {
            return Ok(false);
        }
        // The first batch of shuffled keys spans nearly all of them: a margin of 1/32 on
        // each side takes in the rest. Growing by an eighth at least keeps sorted input from
        // regrowing at every batch.
        let span = span as usize;
        let (grown, new_base) = if len == 0 {
            // Neither end of the margin may pass the ends of i64.
            let room = (i64::MAX as i128 - new_hi as i128).min(new_lo as i128 - i64::MIN as i128);
            let margin = (((span / 32).min((limit - span) / 2)) as i128).min(room) as usize;
            (span + 2 * margin, new_lo - margin as i64)
        } else {
            let grown = span.max(len + len / 8).min(limit);
            let base = if lo < cur_lo {
                new_hi - grown as i64 + 1
            } else {
                new_lo
            };
            (grown, base)
        };
        let width = self.spec.width;
        self.reservation
            .try_grow(grown.saturating_sub(len) * width * 8)?;
        let mut words = vec![0u64; (1 + grown) * width];
        words[..width].copy_from_slice(&self.words[..width]);
        if len > 0 {
            let offset = (1 + (base - new_base) as usize) * width;
            words[offset..offset + len * width].copy_from_slice(&self.words[width..]);
        }
        self.words = words;
        self.index = Index::Flat {
            base: new_base,
            len: grown,
        };
        Ok(true)
    }

    /// Moves the occupied slots of the flat array into a hash-map layout.
    fn switch_to_map(&mut self) {
        let width = self.spec.width;
        let Index::Flat { base, len } = self.index else {
            return;
        };
        let mut map = HashMap::with_hasher(ahash::RandomState::new());
        let mut words = self.words[..width].to_vec();
        for at in 0..len {
            let slot = &self.words[(1 + at) * width..(2 + at) * width];
            if slot[0] > 0 {
                map.insert(base + at as i64, map.len() + 1);
                words.extend_from_slice(slot);
            }
        }
        self.words = words;
        self.index = Index::Map(map);
    }

    /// The occupied slots but the null key's as (key, slot words), in key order.
    fn slots(&self) -> Vec<(i64, &[u64])> {
        let width = self.spec.width;
        let slot = |at: usize| &self.words[at * width..(at + 1) * width];
        let mut slots: Vec<(i64, &[u64])> = match &self.index {
            Index::Flat { base, len } => (0..*len)
                .map(|at| (base + at as i64, slot(1 + at)))
                .collect(),
            Index::Map(map) => map.iter().map(|(k, at)| (*k, slot(*at))).collect(),
        };
        slots.retain(|(_, s)| s[0] > 0);
        if matches!(self.index, Index::Map(_)) {
            slots.sort_unstable_by_key(|(k, _)| *k);
        }
        slots
    }
}

/// Adds aggregate `a`'s values to the slots (whose row counts are already added), one tight
/// loop per case.
fn accumulate(words: &mut [u64], width: usize, slots: &[usize], a: &Aggregate, values: &Values) {
    let (v, c) = (a.value, a.count);
    let valid = |nulls: Option<&NullBuffer>, i: usize| nulls.is_none_or(|n| n.is_valid(i));
    match (a.kind, values) {
        (_, Values::Absent) => {}
        // A count of an argument that cannot be null is the row count (word 0).
        (Kind::Count, Values::Rows) if !a.nullable => {}
        (Kind::Count, Values::Rows) => {
            for &s in slots {
                words[s * width + v] += 1;
            }
        }
        (Kind::Count, Values::Nulls(n)) => {
            for (i, &s) in slots.iter().enumerate() {
                words[s * width + v] += u64::from(n.is_valid(i));
            }
        }
        (Kind::SumFloat | Kind::Avg, Values::Float(x, nulls)) => match nulls {
            None if c == 0 => {
                for (&s, x) in slots.iter().zip(x.iter()) {
                    let w = &mut words[s * width + v];
                    *w = (f64::from_bits(*w) + x).to_bits();
                }
            }
            _ => {
                for (i, (&s, x)) in slots.iter().zip(x.iter()).enumerate() {
                    if valid(*nulls, i) {
                        let w = &mut words[s * width + v];
                        *w = (f64::from_bits(*w) + x).to_bits();
                        words[s * width + c] += u64::from(c != 0);
                    }
                }
            }
        },
        (Kind::SumInt, Values::Int(x, nulls)) => {
            for (i, (&s, x)) in slots.iter().zip(x.iter()).enumerate() {
                if valid(*nulls, i) {
                    let w = &mut words[s * width + v];
                    *w = (*w as i64).wrapping_add(*x) as u64;
                    words[s * width + c] += u64::from(c != 0);
                }
            }
        }
        (Kind::MinFloat | Kind::MaxFloat, Values::Float(x, nulls)) => {
            let min = a.kind == Kind::MinFloat;
            for (i, (&s, &x)) in slots.iter().zip(x.iter()).enumerate() {
                if !valid(*nulls, i) {
                    continue;
                }
                let slot = &mut words[s * width..(s + 1) * width];
                slot[c] += 1;
                let current = f64::from_bits(slot[v]);
                // A NaN among the values makes the result NaN, whatever order the rows come
                // in (DataFusion's own min and max keep whichever value follows the last NaN).
                let replace = slot[c] == 1
                    || (!current.is_nan()
                        && (x.is_nan() || if min { x < current } else { x > current }));
                if replace {
                    slot[v] = x.to_bits();
                }
            }
        }
        (Kind::MinInt(_) | Kind::MaxInt(_), Values::Int(..) | Values::Int32(..)) => {
            let min = matches!(a.kind, Kind::MinInt(_));
            let mut add = |s: usize, x: i64| {
                let slot = &mut words[s * width..(s + 1) * width];
                slot[c] += 1;
                let current = slot[v] as i64;
                if slot[c] == 1 || if min { x < current } else { x > current } {
                    slot[v] = x as u64;
                }
            };
            match values {
                Values::Int(x, nulls) => {
                    for (i, (&s, &x)) in slots.iter().zip(x.iter()).enumerate() {
                        if valid(*nulls, i) {
                            add(s, x);
                        }
                    }
                }
                Values::Int32(x, nulls) => {
                    for (i, (&s, &x)) in slots.iter().zip(x.iter()).enumerate() {
                        if valid(*nulls, i) {
                            add(s, i64::from(x));
                        }
                    }
                }
                _ => unreachable!("matched above"),
            }
        }
        _ => unreachable!("values are typed by the aggregate's kind"),
    }
}

/// Folds slot `from` (a later worker's) into slot `into`.
fn merge(spec: &Spec, into: &mut [u64], from: &[u64]) {
    if from[0] == 0 {
        return;
    }
    let into_empty = into[0] == 0;
    into[0] += from[0];
    for a in &spec.aggregates {
        let (v, c) = (a.value, a.count);
        if a.kind == Kind::Count {
            into[v] += from[v];
            continue;
        }
        // Whether each side has a value: for a count-less argument, whether it has rows.
        let (had, has) = if c == 0 {
            (!into_empty, true)
        } else {
            let had = into[c] > 0;
            into[c] += from[c];
            (had, from[c] > 0)
        };
        if !has {
            continue;
        }
        if !had {
            into[v] = from[v];
            continue;
        }
        into[v] = match a.kind {
            Kind::Count => unreachable!("handled above"),
            Kind::SumFloat | Kind::Avg => {
                (f64::from_bits(into[v]) + f64::from_bits(from[v])).to_bits()
            }
            Kind::SumInt => (into[v] as i64).wrapping_add(from[v] as i64) as u64,
            Kind::MinFloat | Kind::MaxFloat => {
                let (x, y) = (f64::from_bits(into[v]), f64::from_bits(from[v]));
                let take_y = y.is_nan()
                    || (!x.is_nan()
                        && match a.kind {
                            Kind::MinFloat => y < x,
                            _ => y > x,
                        });
                if take_y { y } else { x }.to_bits()
            }
            Kind::MinInt(_) => (into[v] as i64).min(from[v] as i64) as u64,
            Kind::MaxInt(_) => (into[v] as i64).max(from[v] as i64) as u64,
        };
    }
}

/// Merges the workers' tables (in worker order) and writes one batch in key order, the null
/// key (if any row had one) last.
fn finish(spec: &Spec, mut tables: Vec<Table>, schema: SchemaRef) -> Result<RecordBatch> {
    let width = spec.width;
    let mut null_key = vec![0u64; width];
    for t in &tables {
        merge(spec, &mut null_key, &t.words[..width]);
    }
    let flat: Option<Vec<(i64, usize)>> = tables
        .iter()
        .map(|t| match t.index {
            Index::Flat { base, len } => Some((base, len)),
            Index::Map(_) => None,
        })
        .collect();
    // All the groups' words (`width` a slot), where each group's slot starts, and its key,
    // in key order.
    let (words, starts, keys): (Vec<u64>, Vec<usize>, Vec<i64>) = match flat {
        Some(bounds) => {
            let used = bounds.iter().filter(|(_, len)| *len > 0);
            let lo = used.clone().map(|(b, _)| *b).min().unwrap_or(0);
            let hi = used.map(|(b, len)| b + *len as i64).max().unwrap_or(0);
            let len = (hi - lo).max(0) as usize;
            // Merged into the first table that spans every other (usually all of them span
            // the same keys), else into a new array.
            let covering = bounds.iter().position(|(b, n)| *b == lo && *n == len);
            let mut into = match covering {
                Some(i) => std::mem::take(&mut tables[i].words),
                None => vec![0u64; (1 + len) * width],
            };
            for (i, t) in tables.iter().enumerate() {
                if Some(i) == covering {
                    continue;
                }
                if let Index::Flat { base, len: n } = t.index {
                    let offset = 1 + (base - lo) as usize;
                    for at in 0..n {
                        let from = &t.words[(1 + at) * width..(2 + at) * width];
                        if from[0] > 0 {
                            let to = &mut into[(offset + at) * width..(offset + at + 1) * width];
                            merge(spec, to, from);
                        }
                    }
                }
            }
            // Which table covers the rest depends only on the input, so the order float sums
            // are merged in is still the same on every run.
            let occupied: Vec<usize> = (1..=len).filter(|at| into[at * width] > 0).collect();
            let keys = occupied.iter().map(|at| lo + *at as i64 - 1).collect();
            let starts = occupied.iter().map(|at| at * width).collect();
            (into, starts, keys)
        }
        None => {
            let mut merged: HashMap<i64, Vec<u64>, ahash::RandomState> =
                HashMap::with_hasher(ahash::RandomState::new());
            for t in &tables {
                for (k, slot) in t.slots() {
                    let into = merged.entry(k).or_insert_with(|| vec![0; width]);
                    merge(spec, into, slot);
                }
            }
            let mut keys: Vec<i64> = merged.keys().copied().collect();
            keys.sort_unstable();
            let words = keys
                .iter()
                .flat_map(|k| merged[k].iter().copied())
                .collect();
            let starts = (0..keys.len()).map(|g| g * width).collect();
            (words, starts, keys)
        }
    };
    drop(tables);
    let with_null = null_key[0] > 0;
    let groups = keys.len() + usize::from(with_null);
    let slot = |g: usize| -> &[u64] {
        match starts.get(g) {
            Some(&start) => &words[start..start + width],
            None => &null_key,
        }
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(1 + spec.aggregates.len());
    let key_values = keys.iter().copied();
    let key_nulls = with_null.then(|| {
        let mut valid = BooleanBufferBuilder::new(groups);
        valid.append_n(keys.len(), true);
        valid.append(false);
        NullBuffer::new(valid.finish())
    });
    let pad = usize::from(with_null);
    columns.push(match spec.key_type {
        IntType::Int64 => Arc::new(Int64Array::new(
            key_values.chain(std::iter::repeat_n(0, pad)).collect(),
            key_nulls,
        )),
        IntType::Int32 | IntType::Date32 => Arc::new(PrimitiveArray::<Int32Type>::new(
            key_values
                .map(|k| k as i32)
                .chain(std::iter::repeat_n(0, pad))
                .collect(),
            key_nulls,
        )),
    });
    for a in &spec.aggregates {
        let present = |s: &[u64]| {
            if a.count == 0 {
                s[0] > 0
            } else {
                s[a.count] > 0
            }
        };
        let nulls = |f: &dyn Fn(&[u64]) -> bool| {
            // Every group has rows: a value wherever the argument cannot be null.
            if a.count == 0 {
                return None;
            }
            let valid: Vec<bool> = (0..groups).map(|g| f(slot(g))).collect();
            if valid.iter().all(|v| *v) {
                None
            } else {
                Some(NullBuffer::from(valid))
            }
        };
        let column: ArrayRef = match a.kind {
            Kind::Count => Arc::new(Int64Array::from_iter_values(
                (0..groups).map(|g| slot(g)[if a.nullable { a.value } else { 0 }] as i64),
            )),
            Kind::SumFloat | Kind::MinFloat | Kind::MaxFloat => Arc::new(Float64Array::new(
                (0..groups)
                    .map(|g| f64::from_bits(slot(g)[a.value]))
                    .collect(),
                nulls(&present),
            )),
            Kind::Avg => Arc::new(Float64Array::new(
                (0..groups)
                    .map(|g| {
                        let s = slot(g);
                        let n = if a.count == 0 { s[0] } else { s[a.count] };
                        f64::from_bits(s[a.value]) / n as f64
                    })
                    .collect(),
                nulls(&present),
            )),
            Kind::SumInt | Kind::MinInt(IntType::Int64) | Kind::MaxInt(IntType::Int64) => {
                Arc::new(Int64Array::new(
                    (0..groups).map(|g| slot(g)[a.value] as i64).collect(),
                    nulls(&present),
                ))
            }
            Kind::MinInt(t) => int32_column(t, groups, &slot, a, nulls(&present)),
            Kind::MaxInt(t) => int32_column(t, groups, &slot, a, nulls(&present)),
        };
        columns.push(column);
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn int32_column<'a>(
    t: IntType,
    groups: usize,
    slot: &dyn Fn(usize) -> &'a [u64],
    a: &Aggregate,
    nulls: Option<NullBuffer>,
) -> ArrayRef {
    let values = (0..groups).map(|g| slot(g)[a.value] as i64 as i32);
    match t {
        IntType::Date32 => Arc::new(PrimitiveArray::<Date32Type>::new(values.collect(), nulls)),
        _ => Arc::new(PrimitiveArray::<Int32Type>::new(values.collect(), nulls)),
    }
}
