//! Benchmark-size data (`stratum gen`): millions of customers and transactions written in
//! batches straight to Parquet (or CSV), with the same heavy-tailed shape as the demo, and
//! the benchmark policy beside them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, Float64Builder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Pareto};

use crate::{DemoError, write_err};

/// The benchmark policy: the 10/30/60 weighted composite and the 1/19/30/50 pyramid.
pub const BENCH_POLICY: &str = include_str!("policies/bench.toml");

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub customers: usize,
    pub transactions: usize,
    pub invoices: usize,
    pub parquet: bool,
    pub seed: u64,
}

const AS_OF_DAYS: i32 = 20_757; // 2026-10-31 as days since 1970-01-01
const SPAN_DAYS: i32 = 730;
const BATCH: usize = 1 << 20;

enum Sink {
    Parquet(ArrowWriter<File>),
    Csv(arrow::csv::Writer<File>),
}

impl Sink {
    fn new(path: &Path, schema: SchemaRef, parquet: bool) -> Result<Self, DemoError> {
        let file = File::create(path).map_err(|e| write_err(path, e))?;
        Ok(if parquet {
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(BATCH))
                .build();
            Sink::Parquet(
                ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| write_err(path, e))?,
            )
        } else {
            Sink::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(file),
            )
        })
    }
    fn write(&mut self, path: &Path, batch: &RecordBatch) -> Result<(), DemoError> {
        match self {
            Sink::Parquet(w) => w.write(batch).map_err(|e| write_err(path, e)),
            Sink::Csv(w) => w.write(batch).map_err(|e| write_err(path, e)),
        }
    }
    fn close(self, path: &Path) -> Result<(), DemoError> {
        match self {
            Sink::Parquet(w) => w.close().map(|_| ()).map_err(|e| write_err(path, e)),
            Sink::Csv(_) => Ok(()),
        }
    }
}

/// Picks customers in proportion to heavy-tailed weights, by binary search on the cumulative sum.
struct Picker {
    cumulative: Vec<f64>,
}

impl Picker {
    fn pick(&self, rng: &mut StdRng) -> usize {
        let total = *self.cumulative.last().expect("at least one customer");
        let x = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|c| *c <= x)
            .min(self.cumulative.len() - 1)
    }
}

/// Writes customers, transactions and invoices, and `bench.toml`.
pub fn generate_bench(dir: &Path, o: &GenOptions) -> Result<Vec<PathBuf>, DemoError> {
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let ext = if o.parquet { "parquet" } else { "csv" };
    let mut rng = StdRng::seed_from_u64(o.seed);
    let n = o.customers;
    let sizes = Pareto::<f64>::new(1.0, 1.16).expect("valid");
    let mut cumulative = Vec::with_capacity(n);
    let mut margins = Vec::with_capacity(n);
    let mut reliability = Vec::with_capacity(n);
    // Days before `as_of` after which a customer no longer buys: a third of the customers
    // stopped at some point of the two years (0: still active). Without dropouts, lifetime
    // models have nothing to find (and lifetimes' BG/NBD fit does not converge).
    let mut stopped_days_ago = Vec::with_capacity(n);
    let mut total = 0.0;
    let mut written = Vec::new();

    // Customers.
    let path = dir.join(format!("customers.{ext}"));
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("customer_type", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
    ]));
    let mut sink = Sink::new(&path, schema.clone(), o.parquet)?;
    let mut start = 0;
    while start < n {
        let end = (start + BATCH).min(n);
        let mut ids = Int64Builder::with_capacity(end - start);
        let mut types = StringBuilder::new();
        let mut regions = StringBuilder::new();
        for i in start..end {
            total += sizes.sample(&mut rng).min(1000.0);
            cumulative.push(total);
            margins.push(rng.random_range(0.04..0.45f64));
            reliability.push(rng.random_range(0.5..1.0f64));
            stopped_days_ago.push(if rng.random_bool(1.0 / 3.0) {
                rng.random_range(1..SPAN_DAYS - 30)
            } else {
                0
            });
            ids.append_value(i as i64 + 1);
            types.append_value(["person", "person", "company", "dealer"][rng.random_range(0..4)]);
            regions.append_value(["north", "south", "east", "west"][rng.random_range(0..4)]);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(ids.finish()),
            Arc::new(types.finish()),
            Arc::new(regions.finish()),
        ];
        sink.write(
            &path,
            &RecordBatch::try_new(schema.clone(), cols).map_err(|e| write_err(&path, e))?,
        )?;
        start = end;
    }
    sink.close(&path)?;
    written.push(path);
    let picker = Picker { cumulative };

    // Transactions.
    let path = dir.join(format!("transactions.{ext}"));
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("date", DataType::Date32, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("cost", DataType::Float64, false),
    ]));
    let ticket = LogNormal::<f64>::new(5.5, 1.0).expect("valid");
    let mut sink = Sink::new(&path, schema.clone(), o.parquet)?;
    let mut left = o.transactions;
    while left > 0 {
        let rows = left.min(BATCH);
        let mut ids = Int64Builder::with_capacity(rows);
        let mut dates = Date32Builder::with_capacity(rows);
        let mut amounts = Float64Builder::with_capacity(rows);
        let mut costs = Float64Builder::with_capacity(rows);
        for _ in 0..rows {
            let c = picker.pick(&mut rng);
            let mut amount = (ticket.sample(&mut rng) * 100.0).round() / 100.0;
            if rng.random_bool(0.02) {
                amount = -amount;
            }
            ids.append_value(c as i64 + 1);
            dates.append_value(AS_OF_DAYS - rng.random_range(stopped_days_ago[c]..SPAN_DAYS));
            amounts.append_value(amount);
            costs.append_value((amount * (1.0 - margins[c]) * 100.0).round() / 100.0);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(ids.finish()),
            Arc::new(dates.finish()),
            Arc::new(amounts.finish()),
            Arc::new(costs.finish()),
        ];
        sink.write(
            &path,
            &RecordBatch::try_new(schema.clone(), cols).map_err(|e| write_err(&path, e))?,
        )?;
        left -= rows;
    }
    sink.close(&path)?;
    written.push(path);

    // Invoices.
    let path = dir.join(format!("invoices.{ext}"));
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("issued", DataType::Date32, false),
        Field::new("due_date", DataType::Date32, false),
        Field::new("paid_date", DataType::Date32, true),
        Field::new("amount", DataType::Float64, false),
    ]));
    let mut sink = Sink::new(&path, schema.clone(), o.parquet)?;
    let mut left = o.invoices;
    while left > 0 {
        let rows = left.min(BATCH);
        let mut ids = Int64Builder::with_capacity(rows);
        let mut issued = Date32Builder::with_capacity(rows);
        let mut due = Date32Builder::with_capacity(rows);
        let mut paid = Date32Builder::with_capacity(rows);
        let mut amounts = Float64Builder::with_capacity(rows);
        for _ in 0..rows {
            let c = picker.pick(&mut rng);
            let day = AS_OF_DAYS - rng.random_range(30..SPAN_DAYS);
            ids.append_value(c as i64 + 1);
            issued.append_value(day);
            due.append_value(day + 30);
            if rng.random_bool(reliability[c]) {
                paid.append_value(day + 30 - rng.random_range(0..15));
            } else if rng.random_bool(0.9) {
                paid.append_value(day + 30 + rng.random_range(1..90));
            } else {
                paid.append_null();
            }
            amounts.append_value((ticket.sample(&mut rng) * 1000.0).round() / 100.0);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(ids.finish()),
            Arc::new(issued.finish()),
            Arc::new(due.finish()),
            Arc::new(paid.finish()),
            Arc::new(amounts.finish()),
        ];
        sink.write(
            &path,
            &RecordBatch::try_new(schema.clone(), cols).map_err(|e| write_err(&path, e))?,
        )?;
        left -= rows;
    }
    sink.close(&path)?;
    written.push(path);

    let policy = dir.join("bench.toml");
    std::fs::write(&policy, BENCH_POLICY.replace("{ext}", ext))
        .map_err(|e| write_err(&policy, e))?;
    written.push(policy);
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn as_of_constant_is_2026_10_31() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        assert_eq!((d - epoch).num_days(), i64::from(super::AS_OF_DAYS));
    }
}
