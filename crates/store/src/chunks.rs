//! A run's per-customer results as compressed columnar chunks.
//!
//! One SQL row per customer per run made recording a million customers cost more than the
//! run itself (SQLite's B-tree work on ~200-byte rows; see BENCHMARKS.md). So a run's results
//! are kept per ladder in chunks of [`CHUNK_ROWS`] customers in customer-id order: each
//! chunk is one row of `assignment_chunks` holding its first customer id (the key a
//! customer's chunk is found by) and two blobs, each a zstd-compressed Arrow IPC stream of
//! one record batch: `standings` (level, scores, hold state: what migrations, reports and
//! the next run read) and `explanations` (the text, read only when asked for).
//!
//! The blobs are standard formats on purpose: outside Stratum, `zstd -d` and any Arrow
//! reader (`pyarrow.ipc.open_stream`) decode them; `stratum export-run` writes a whole run as
//! Parquet or CSV.

use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    Date32Builder, Float64Builder, Int64Builder, StringBuilder, UInt32Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, Date32Type, Float64Type, Int64Type, UInt32Type};
use arrow_array::{Array, ArrayRef, PrimitiveArray, RecordBatch, StringArray};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use stratum_core::Standing;

use crate::StoreError;

/// One customer's result on one ladder, as recorded. Borrowed, so a million rows cost no
/// copies.
#[derive(Debug, Clone)]
pub struct AssignmentRow<'a> {
    pub ladder: &'a str,
    pub customer_id: &'a str,
    pub level: &'a str,
    pub rule_level: &'a str,
    pub score: Option<f64>,
    pub rank: Option<i64>,
    pub value: Option<f64>,
    /// The policy's activity metric (purchases in the window), for repeat and churn rates.
    pub activity: Option<f64>,
    /// The standing for the next run's holds, the level by name.
    pub state: Option<Standing<&'a str>>,
    pub explanation: &'a str,
}

/// Customers per chunk: large enough to compress well and keep a million-customer run to a
/// thousand SQL rows, small enough that finding one customer decodes little.
pub(crate) const CHUNK_ROWS: usize = 1000;

/// zstd's fastest levels compress this data almost as well as the default and several
/// times faster.
const ZSTD_LEVEL: i32 = 1;

/// Compresses one chunk's IPC stream at [`ZSTD_LEVEL`] with this thread's zstd context: a
/// context made (and its tables zeroed) for each of a run's few thousand chunks cost about
/// what compressing a small chunk does.
pub(crate) fn compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        let compressor = match context.as_mut() {
            Some(compressor) => compressor,
            None => context.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        compressor.compress(data)
    })
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

fn standings_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("customer_id", DataType::Utf8, false),
                Field::new("level", DataType::Utf8, false),
                Field::new("rule_level", DataType::Utf8, false),
                Field::new("score", DataType::Float64, true),
                Field::new("rank", DataType::Int64, true),
                Field::new("value", DataType::Float64, true),
                Field::new("activity", DataType::Float64, true),
                Field::new("held_level", DataType::Utf8, true),
                Field::new("since", DataType::Date32, true),
                Field::new("last_qualified", DataType::Date32, true),
                Field::new("below_runs", DataType::UInt32, true),
                Field::new("below_since", DataType::Date32, true),
                Field::new("above_runs", DataType::UInt32, true),
            ]))
        })
        .clone()
}

fn explanations_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![Field::new(
                "explanation",
                DataType::Utf8,
                false,
            )]))
        })
        .clone()
}

fn days(date: NaiveDate) -> i32 {
    (date - EPOCH).num_days() as i32
}

fn from_days(days: i32) -> NaiveDate {
    EPOCH + chrono::TimeDelta::days(i64::from(days))
}

/// One chunk ready to insert.
pub(crate) struct EncodedChunk<'a> {
    pub ladder: &'a str,
    pub first_customer: &'a str,
    pub customers: usize,
    pub standings: Vec<u8>,
    pub explanations: Vec<u8>,
}

/// The index of `id` in `ids`, which every chunk keeps in byte order.
pub(crate) fn find_sorted(ids: &StringArray, id: &str) -> Option<usize> {
    let (mut lo, mut hi) = (0, ids.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        match ids.value(mid).cmp(id) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(mid),
        }
    }
    None
}

/// The blob (`column` of `table`: `metric_chunks`, `fact_chunks`) of the chunk of run `$1`
/// that would hold customer `$2`: the one with the greatest first customer not after it.
pub(crate) async fn holding_blob(
    store: &crate::Store,
    table: &str,
    column: &str,
    run_id: i64,
    customer_id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let query = match store.backend() {
        crate::Backend::Postgres => format!(
            "SELECT {column} FROM {table} WHERE run_id = $1 AND first_customer <= $2 \
             ORDER BY first_customer DESC LIMIT 1"
        ),
        // `$1` once: sqlx binds SQLite's parameters by position.
        crate::Backend::Sqlite => format!(
            "SELECT c.{column} FROM {table} c WHERE c.run_id = $1 AND c.first_customer = \
             (SELECT max(x.first_customer) FROM {table} x \
             WHERE x.run_id = c.run_id AND x.first_customer <= $2)"
        ),
    };
    Ok(sqlx::query_scalar(&query)
        .bind(run_id)
        .bind(customer_id)
        .fetch_optional(store.pool())
        .await?)
}

/// Inserts a run's encoded chunks into `table` (`metric_chunks`, `fact_chunks`: run id,
/// first customer, and the blob in `column`).
pub(crate) async fn insert_blobs(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    column: &str,
    run_id: i64,
    chunks: Vec<(String, Vec<u8>)>,
) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO {table} (run_id, first_customer, {column}) VALUES ($1, $2, $3)");
    for (first, blob) in chunks {
        sqlx::query(&sql)
            .bind(run_id)
            .bind(first)
            .bind(blob)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn internal(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn write_batch(columns: Vec<ArrayRef>, schema: SchemaRef) -> Result<Vec<u8>, StoreError> {
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| internal("chunk", e))?;
    let mut writer =
        StreamWriter::try_new(Vec::new(), &schema).map_err(|e| internal("chunk", e))?;
    writer.write(&batch).map_err(|e| internal("chunk", e))?;
    let ipc = writer.into_inner().map_err(|e| internal("chunk", e))?;
    compress(&ipc).map_err(|e| internal("chunk compression", e))
}

/// Encodes rows of one ladder, already in customer-id order.
pub(crate) fn encode<'a>(rows: &[AssignmentRow<'a>]) -> Result<EncodedChunk<'a>, StoreError> {
    let n = rows.len();
    let first = rows.first().ok_or_else(|| internal("chunk", "no rows"))?;
    let mut customer = StringBuilder::with_capacity(n, n * 8);
    let mut level = StringBuilder::with_capacity(n, n * 8);
    let mut rule_level = StringBuilder::with_capacity(n, n * 8);
    let mut score = Float64Builder::with_capacity(n);
    let mut rank = Int64Builder::with_capacity(n);
    let mut value = Float64Builder::with_capacity(n);
    let mut activity = Float64Builder::with_capacity(n);
    let mut held_level = StringBuilder::with_capacity(n, n * 8);
    let mut since = Date32Builder::with_capacity(n);
    let mut last_qualified = Date32Builder::with_capacity(n);
    let mut below_runs = UInt32Builder::with_capacity(n);
    let mut below_since = Date32Builder::with_capacity(n);
    let mut above_runs = UInt32Builder::with_capacity(n);
    let mut explanation = StringBuilder::with_capacity(n, n * 128);
    for r in rows {
        customer.append_value(r.customer_id);
        level.append_value(r.level);
        rule_level.append_value(r.rule_level);
        score.append_option(r.score);
        rank.append_option(r.rank);
        value.append_option(r.value);
        activity.append_option(r.activity);
        let st = r.state.as_ref();
        held_level.append_option(st.map(|s| s.level));
        since.append_option(st.map(|s| days(s.since)));
        last_qualified.append_option(st.map(|s| days(s.last_qualified)));
        below_runs.append_option(st.map(|s| s.below_runs));
        below_since.append_option(st.and_then(|s| s.below_since).map(days));
        above_runs.append_option(st.map(|s| s.above_runs));
        explanation.append_value(r.explanation);
    }
    let standings: Vec<ArrayRef> = vec![
        Arc::new(customer.finish()),
        Arc::new(level.finish()),
        Arc::new(rule_level.finish()),
        Arc::new(score.finish()),
        Arc::new(rank.finish()),
        Arc::new(value.finish()),
        Arc::new(activity.finish()),
        Arc::new(held_level.finish()),
        Arc::new(since.finish()),
        Arc::new(last_qualified.finish()),
        Arc::new(below_runs.finish()),
        Arc::new(below_since.finish()),
        Arc::new(above_runs.finish()),
    ];
    Ok(EncodedChunk {
        ladder: first.ladder,
        first_customer: first.customer_id,
        customers: n,
        standings: write_batch(standings, standings_schema())?,
        explanations: write_batch(vec![Arc::new(explanation.finish())], explanations_schema())?,
    })
}

fn read_batch(blob: &[u8], schema: &SchemaRef, what: &str) -> Result<RecordBatch, StoreError> {
    let ipc = zstd::stream::decode_all(blob).map_err(|e| internal(what, e))?;
    let mut reader = StreamReader::try_new(&ipc[..], None).map_err(|e| internal(what, e))?;
    let batch = reader
        .next()
        .ok_or_else(|| internal(what, "empty chunk"))?
        .map_err(|e| internal(what, e))?;
    if batch.schema().fields() != schema.fields() {
        return Err(internal(what, "unexpected columns"));
    }
    Ok(batch)
}

/// The standings of up to [`CHUNK_ROWS`] customers of one ladder, in customer-id order.
pub(crate) struct StandingsChunk {
    customer: StringArray,
    level: StringArray,
    rule_level: StringArray,
    score: PrimitiveArray<Float64Type>,
    rank: PrimitiveArray<Int64Type>,
    value: PrimitiveArray<Float64Type>,
    activity: PrimitiveArray<Float64Type>,
    held_level: StringArray,
    since: PrimitiveArray<Date32Type>,
    last_qualified: PrimitiveArray<Date32Type>,
    below_runs: PrimitiveArray<UInt32Type>,
    below_since: PrimitiveArray<Date32Type>,
    above_runs: PrimitiveArray<UInt32Type>,
}

/// Row `i` of a nullable column.
fn nullable<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>, i: usize) -> Option<T::Native> {
    array.is_valid(i).then(|| array.value(i))
}

impl StandingsChunk {
    pub(crate) fn decode(blob: &[u8]) -> Result<StandingsChunk, StoreError> {
        let b = read_batch(blob, &standings_schema(), "stored standings")?;
        let c = |i: usize| b.column(i).clone();
        Ok(StandingsChunk {
            customer: c(0).as_string::<i32>().clone(),
            level: c(1).as_string::<i32>().clone(),
            rule_level: c(2).as_string::<i32>().clone(),
            score: c(3).as_primitive::<Float64Type>().clone(),
            rank: c(4).as_primitive::<Int64Type>().clone(),
            value: c(5).as_primitive::<Float64Type>().clone(),
            activity: c(6).as_primitive::<Float64Type>().clone(),
            held_level: c(7).as_string::<i32>().clone(),
            since: c(8).as_primitive::<Date32Type>().clone(),
            last_qualified: c(9).as_primitive::<Date32Type>().clone(),
            below_runs: c(10).as_primitive::<UInt32Type>().clone(),
            below_since: c(11).as_primitive::<Date32Type>().clone(),
            above_runs: c(12).as_primitive::<UInt32Type>().clone(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.customer.len()
    }

    /// The row of a customer, by binary search over the chunk's id order.
    pub(crate) fn find(&self, customer_id: &str) -> Option<usize> {
        find_sorted(&self.customer, customer_id)
    }

    pub(crate) fn customer(&self, i: usize) -> &str {
        self.customer.value(i)
    }
    pub(crate) fn level(&self, i: usize) -> &str {
        self.level.value(i)
    }
    pub(crate) fn rule_level(&self, i: usize) -> &str {
        self.rule_level.value(i)
    }
    pub(crate) fn score(&self, i: usize) -> Option<f64> {
        nullable(&self.score, i)
    }
    pub(crate) fn rank(&self, i: usize) -> Option<i64> {
        nullable(&self.rank, i)
    }
    pub(crate) fn value(&self, i: usize) -> Option<f64> {
        nullable(&self.value, i)
    }
    pub(crate) fn activity(&self, i: usize) -> Option<f64> {
        nullable(&self.activity, i)
    }

    /// The standing kept for the next run's holds, if the customer has one.
    pub(crate) fn state(&self, i: usize) -> Option<Standing<&str>> {
        if self.held_level.is_null(i) {
            return None;
        }
        Some(Standing {
            level: self.held_level.value(i),
            since: from_days(nullable(&self.since, i)?),
            last_qualified: from_days(nullable(&self.last_qualified, i)?),
            below_runs: nullable(&self.below_runs, i).unwrap_or(0),
            below_since: nullable(&self.below_since, i).map(from_days),
            above_runs: nullable(&self.above_runs, i).unwrap_or(0),
        })
    }
}

/// A chunk as one record batch for export: `ladder`, the standings columns (dates as
/// dates), then `explanation`.
pub(crate) fn export_batch(
    ladder: &str,
    standings: &[u8],
    explanations: &[u8],
) -> Result<RecordBatch, StoreError> {
    let standings = read_batch(standings, &standings_schema(), "stored standings")?;
    let why = read_batch(explanations, &explanations_schema(), "stored explanations")?;
    let n = standings.num_rows();
    let mut fields = vec![Field::new("ladder", DataType::Utf8, false)];
    fields.extend(
        standings
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone()),
    );
    fields.push(Field::new("explanation", DataType::Utf8, false));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        std::iter::repeat_n(ladder, n),
    ))];
    columns.extend(standings.columns().iter().cloned());
    columns.push(why.column(0).clone());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| internal("stored chunk", e))
}

/// The explanations of a chunk, row for row.
pub(crate) fn decode_explanations(blob: &[u8]) -> Result<StringArray, StoreError> {
    let b = read_batch(blob, &explanations_schema(), "stored explanations")?;
    Ok(b.column(0).as_string::<i32>().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(customer: &'a str, state: Option<Standing<&'a str>>) -> AssignmentRow<'a> {
        AssignmentRow {
            ladder: "value",
            customer_id: customer,
            level: "gold",
            rule_level: "silver",
            score: Some(0.1 + 0.2),
            rank: None,
            value: Some(-12.5),
            activity: None,
            state,
            explanation: "rank 1 of 2 · 评分 91",
        }
    }

    #[test]
    fn a_chunk_reads_back_what_was_written() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let held = Standing {
            level: "gold",
            since: d("1969-12-31"),
            last_qualified: d("2026-11-30"),
            below_runs: 2,
            below_since: Some(d("2026-09-30")),
            above_runs: 0,
        };
        let rows = [row("a", Some(held.clone())), row("b", None)];
        let encoded = encode(&rows).unwrap();
        assert_eq!(
            (encoded.ladder, encoded.first_customer, encoded.customers),
            ("value", "a", 2)
        );
        let chunk = StandingsChunk::decode(&encoded.standings).unwrap();
        assert_eq!(chunk.len(), 2);
        assert_eq!(chunk.find("b"), Some(1));
        assert_eq!(chunk.find("ab"), None);
        assert_eq!(chunk.customer(0), "a");
        assert_eq!((chunk.level(0), chunk.rule_level(0)), ("gold", "silver"));
        assert_eq!(chunk.score(0), Some(0.1 + 0.2));
        assert_eq!((chunk.rank(0), chunk.activity(0)), (None, None));
        assert_eq!(chunk.value(1), Some(-12.5));
        assert_eq!(chunk.state(0), Some(held));
        assert_eq!(chunk.state(1), None);
        let why = decode_explanations(&encoded.explanations).unwrap();
        assert_eq!(why.value(1), "rank 1 of 2 · 评分 91");
        assert!(StandingsChunk::decode(&encoded.explanations).is_err());
        assert!(StandingsChunk::decode(b"not a chunk").is_err());
    }
}
