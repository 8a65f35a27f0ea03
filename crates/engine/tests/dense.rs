//! The dense aggregation gives exactly what DataFusion's own hash aggregation gives: the same
//! queries run in a session with the rule and in one without, over keys that are dense,
//! sparse, negative, null, split over partitions and workers, and values with nulls and NaNs.
//! Values are multiples of 1/4 so that sums are exact in any order and results compare as text.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
};
use datafusion::arrow::compute::{SortColumn, lexsort_to_indices, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stratum_engine::dense::DenseAggregation;

/// `partitions` partitions of `batches` batches of `rows` rows, keys from `key`.
fn table(
    seed: u64,
    partitions: usize,
    batches: usize,
    rows: usize,
    key: &dyn Fn(&mut StdRng) -> Option<i64>,
) -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, true),
        Field::new("i", DataType::Int64, true),
        Field::new("d", DataType::Date32, false),
        Field::new("s", DataType::Int32, true),
    ]));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut parts = Vec::new();
    for _ in 0..partitions {
        let mut part = Vec::new();
        for _ in 0..batches {
            let k: Int64Array = (0..rows).map(|_| key(&mut rng)).collect();
            let x: Float64Array = (0..rows)
                .map(|_| Some(rng.random_range(-400..4000) as f64 / 4.0))
                .collect();
            let y: Float64Array = (0..rows)
                .map(|_| {
                    rng.random_bool(0.8)
                        .then(|| rng.random_range(-40..40) as f64 / 4.0)
                })
                .collect();
            let i: Int64Array = (0..rows)
                .map(|_| rng.random_bool(0.9).then(|| rng.random_range(-1000..1000)))
                .collect();
            let d: Date32Array = (0..rows)
                .map(|_| Some(rng.random_range(19000..20000)))
                .collect();
            let s: Int32Array = (0..rows)
                .map(|_| rng.random_bool(0.5).then(|| rng.random_range(-50..50)))
                .collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(k),
                Arc::new(x),
                Arc::new(y),
                Arc::new(i),
                Arc::new(d),
                Arc::new(s),
            ];
            part.push(RecordBatch::try_new(schema.clone(), columns).unwrap());
        }
        parts.push(part);
    }
    MemTable::try_new(schema, parts).unwrap()
}

fn session(rule: Option<DenseAggregation>, partitions: usize) -> SessionContext {
    let config = SessionConfig::new().with_target_partitions(partitions);
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    if let Some(rule) = rule {
        builder = builder.with_physical_optimizer_rule(Arc::new(rule));
    }
    SessionContext::new_with_state(builder.build())
}

/// The query's result sorted by every column, as a table of text; and its plan.
async fn run(ctx: &SessionContext, sql: &str) -> (String, String) {
    let df = ctx.sql(sql).await.unwrap();
    let plan = format!(
        "{}",
        datafusion::physical_plan::displayable(
            df.clone().create_physical_plan().await.unwrap().as_ref()
        )
        .indent(true)
    );
    let batches = df.collect().await.unwrap();
    let batch = datafusion::arrow::compute::concat_batches(
        &batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| Arc::new(Schema::empty())),
        &batches,
    )
    .unwrap();
    let columns: Vec<SortColumn> = batch
        .columns()
        .iter()
        .map(|c| SortColumn {
            values: c.clone(),
            options: None,
        })
        .collect();
    let order = lexsort_to_indices(&columns, None).unwrap();
    let sorted: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| take(c, &order, None).unwrap())
        .collect();
    let sorted = RecordBatch::try_new(batch.schema(), sorted).unwrap();
    (pretty_format_batches(&[sorted]).unwrap().to_string(), plan)
}

const EVERY_AGGREGATE: &str = "SELECT k, count(*) AS n, count(y) AS ny, sum(x) AS sx, \
     sum(y) AS sy, avg(x) AS ax, avg(y) AS ay, min(x) AS lo, max(y) AS hi, sum(i) AS si, \
     min(i) AS li, max(i) AS hi_i, min(d) AS first, max(d) AS last, min(s) AS ls, max(s) AS hs, \
     sum(x - y) AS diff, avg(CASE WHEN y IS NOT NULL AND y <= x THEN 1.0 ELSE 0.0 END) AS rate \
     FROM t GROUP BY k";

/// Runs `sql` with and without the rule; they must agree, and the rule must have applied
/// exactly when `dense` says.
async fn agree(
    t: fn() -> MemTable,
    expected_groups: usize,
    workers: usize,
    sql: &str,
    dense: bool,
) {
    let with = session(
        Some(DenseAggregation {
            workers,
            expected_groups,
        }),
        4,
    );
    let without = session(None, 4);
    with.register_table("t", Arc::new(t())).unwrap();
    without.register_table("t", Arc::new(t())).unwrap();
    let (ours, plan) = run(&with, sql).await;
    let (theirs, their_plan) = run(&without, sql).await;
    assert!(!their_plan.contains("DenseAggregateExec"));
    assert_eq!(
        plan.contains("DenseAggregateExec"),
        dense,
        "dense aggregation {} for {sql}:\n{plan}",
        if dense { "expected" } else { "not expected" }
    );
    assert_eq!(ours, theirs, "results differ for {sql}");
    assert!(ours.lines().count() > 4, "a result to compare:\n{ours}");
}

fn dense_keys() -> MemTable {
    table(1, 3, 4, 500, &|r| Some(r.random_range(1..300)))
}

#[tokio::test]
async fn every_aggregate_over_dense_keys_matches_datafusion() {
    for workers in [1, 2, 3, 5] {
        agree(dense_keys, 300, workers, EVERY_AGGREGATE, true).await;
    }
}

#[tokio::test]
async fn null_and_negative_keys_match_datafusion() {
    fn keys() -> MemTable {
        table(2, 2, 3, 400, &|r| {
            r.random_bool(0.9).then(|| r.random_range(-150..150))
        })
    }
    agree(keys, 300, 2, EVERY_AGGREGATE, true).await;
}

#[tokio::test]
async fn sparse_keys_switch_to_a_map_and_still_match() {
    // Keys a billion apart: far more slots than the 100 groups expected, from the first batch.
    fn keys() -> MemTable {
        table(3, 2, 3, 300, &|r| {
            Some(r.random_range(0..100) * 1_000_000_007)
        })
    }
    agree(keys, 100, 2, EVERY_AGGREGATE, true).await;
    // Dense at first, then one key far away: the flat slots move into a map mid-stream.
    fn late() -> MemTable {
        table(4, 1, 5, 300, &|r| {
            let k = r.random_range(0..200);
            Some(if k == 7 && r.random_bool(0.2) {
                i64::MAX - 3
            } else {
                k
            })
        })
    }
    agree(late, 200, 1, EVERY_AGGREGATE, true).await;
    agree(late, 200, 3, EVERY_AGGREGATE, true).await;
}

#[tokio::test]
async fn distinct_counts_are_grouped_by_datafusion_then_counted_densely() {
    // DataFusion rewrites count(DISTINCT i) as a grouping by (k, i) under a count by k.
    agree(
        dense_keys,
        300,
        2,
        "SELECT k, count(DISTINCT i) AS n FROM t GROUP BY k",
        true,
    )
    .await;
}

#[tokio::test]
async fn filters_and_window_conditions_are_datafusions() {
    let sql = "SELECT k AS __k, count(*) AS __rows, sum(x) AS m FROM t \
               WHERE d >= DATE '2022-01-01' AND y IS NOT NULL GROUP BY k";
    agree(dense_keys, 300, 2, sql, true).await;
}

#[tokio::test]
async fn what_it_cannot_compute_stays_with_datafusion() {
    for sql in [
        "SELECT k, sum(x) FILTER (WHERE y > 0) FROM t GROUP BY k",
        "SELECT k, stddev(x) FROM t GROUP BY k",
        "SELECT k, array_agg(i ORDER BY i) FROM t GROUP BY k",
        "SELECT k, s, sum(x) FROM t GROUP BY k, s",
        "SELECT d, sum(x) FROM t GROUP BY d",
        "SELECT sum(x) FROM t",
    ] {
        agree(dense_keys, 300, 2, sql, false).await;
    }
}

#[tokio::test]
async fn a_nan_makes_min_and_max_nan_in_any_order() {
    fn with_nan() -> MemTable {
        table(5, 2, 2, 200, &|r| Some(r.random_range(0..20)))
    }
    // NaN (from inf * 0) in the rows of some groups.
    let v = "CASE WHEN i > 900 OR i < -900 THEN x / 0.0 * 0.0 ELSE x END";
    let ours = format!("SELECT k, min({v}) AS lo, max({v}) AS hi FROM t GROUP BY k");
    // DataFusion's own min and max keep whichever value follows the last NaN; the dense
    // ones say NaN, as a sum would.
    let expected = format!(
        "SELECT k, CASE WHEN bool_or(isnan({v})) THEN CAST('NaN' AS DOUBLE) ELSE min({v}) END AS lo, \
         CASE WHEN bool_or(isnan({v})) THEN CAST('NaN' AS DOUBLE) ELSE max({v}) END AS hi \
         FROM t GROUP BY k"
    );
    for workers in [1, 2] {
        let with = session(
            Some(DenseAggregation {
                workers,
                expected_groups: 20,
            }),
            4,
        );
        with.register_table("t", Arc::new(with_nan())).unwrap();
        let without = session(None, 4);
        without.register_table("t", Arc::new(with_nan())).unwrap();
        let (got, plan) = run(&with, &ours).await;
        assert!(plan.contains("DenseAggregateExec"), "{plan}");
        let (want, _) = run(&without, &expected).await;
        assert_eq!(got, want);
        assert!(
            got.contains("NaN") && got.matches("NaN").count() < 40,
            "{got}"
        );
    }
}
