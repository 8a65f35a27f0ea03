//! Run outputs: `assignments.parquet` and `.csv` (a row per customer per ladder),
//! `metrics.parquet` (every metric and score per customer), `rejects.csv` when rows were
//! quarantined, and `summary.json`. Files are written under a temporary name and renamed, so
//! a reader never sees half a file.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, StringArray, StringBuilder, UInt32Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use stratum_core::{Column, Evaluation, LadderSummary};
use stratum_engine::Reject;

use crate::RunError;

/// Paths of what a run wrote.
#[derive(Debug, Clone, Default)]
pub struct OutputFiles {
    pub assignments_parquet: PathBuf,
    pub assignments_csv: PathBuf,
    pub metrics_parquet: PathBuf,
    /// Only with `--metrics-csv`.
    pub metrics_csv: Option<PathBuf>,
    pub rejects_csv: Option<PathBuf>,
    pub summary_json: PathBuf,
}

pub(crate) fn io_err(path: &Path, e: impl std::fmt::Display) -> RunError {
    RunError::Output {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    // The process id keeps two writers (say, an export and a run) off each other's files.
    name.push(format!(".{}.partial", std::process::id()));
    path.with_file_name(name)
}

/// Creates the output folder and checks that files can be made in it, before any work.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), RunError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let probe = dir.join(format!(".stratum-probe.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| io_err(dir, e))?;
    std::fs::remove_file(&probe).map_err(|e| io_err(&probe, e))
}

/// A run's output files written under their `.partial` names. `commit` renames them into
/// place; dropped without a commit (the run's recording failed) they are removed, so the
/// output directory keeps the previous run's files.
#[derive(Debug)]
pub struct StagedOutputs {
    files: OutputFiles,
    committed: bool,
}

impl StagedOutputs {
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [
            &self.files.assignments_parquet,
            &self.files.assignments_csv,
            &self.files.metrics_parquet,
            &self.files.summary_json,
        ]
        .into_iter()
        .chain(self.files.metrics_csv.as_ref())
        .chain(self.files.rejects_csv.as_ref())
    }

    pub fn commit(mut self) -> Result<OutputFiles, RunError> {
        let renamed: Result<(), RunError> = self.paths().try_for_each(|path| {
            std::fs::rename(tmp_path(path), path).map_err(|e| io_err(path, e))
        });
        if let Err(e) = renamed {
            // The run may be recorded by now: keep what is staged for the operator.
            self.committed = true;
            return Err(e);
        }
        // An optional file this run did not write must not pass for this run's.
        for (written, name) in [
            (self.files.rejects_csv.is_some(), "rejects.csv"),
            (self.files.metrics_csv.is_some(), "metrics.csv"),
        ] {
            let stale = self.files.summary_json.with_file_name(name);
            if !written && stale.exists() {
                std::fs::remove_file(&stale).map_err(|e| io_err(&stale, e))?;
            }
        }
        self.committed = true;
        Ok(std::mem::take(&mut self.files))
    }
}

impl Drop for StagedOutputs {
    fn drop(&mut self) {
        if !self.committed {
            for path in self.paths() {
                let _ = std::fs::remove_file(tmp_path(path));
            }
        }
    }
}

/// Writes batches (all of one schema) to `path`'s `.partial` file as they come, so the
/// caller need not hold them all.
fn write_parquet(
    path: &Path,
    batches: impl IntoIterator<Item = RecordBatch>,
) -> Result<(), RunError> {
    let mut batches = batches.into_iter();
    let first = batches
        .next()
        .ok_or_else(|| io_err(path, "nothing to write"))?;
    let tmp = tmp_path(path);
    let file = File::create(&tmp).map_err(|e| io_err(path, e))?;
    // Row groups of 128Ki rows: the writer holds a whole row group encoded in memory, so
    // the default (1Mi rows) kept all of a million-customer file until the end.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024));
    // Dictionary encoding pays for levels, ladders and text metrics; customer ids and numbers
    // are nearly all distinct, and trying it interned every one of them before falling back.
    for field in first.schema().fields() {
        let column = ColumnPath::from(field.name().as_str());
        if field.name() == "customer_id" || field.data_type().is_numeric() {
            props = props.set_column_dictionary_enabled(column.clone(), false);
        }
        // Min and max of free text prune nothing, and finding them compared every string.
        if field.name() == "explanation" {
            props = props.set_column_statistics_enabled(column, EnabledStatistics::None);
        }
    }
    let mut writer = ArrowWriter::try_new(file, first.schema(), Some(props.build()))
        .map_err(|e| io_err(path, e))?;
    for batch in std::iter::once(first).chain(batches) {
        writer.write(&batch).map_err(|e| io_err(path, e))?;
    }
    writer.close().map_err(|e| io_err(path, e))?;
    Ok(())
}

/// Writes batches of any shape to `path`, Parquet or CSV by its extension, under its
/// `.partial` name first and renamed when complete (`stratum export-run`, and the Parquet
/// form of `diff --export`).
pub(crate) fn write_export(path: &Path, batches: &[RecordBatch]) -> Result<(), RunError> {
    if batches.is_empty() {
        return Err(io_err(path, "the run has no results"));
    }
    let is_parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let written = if is_parquet {
        write_parquet(path, batches.iter().cloned())
    } else {
        write_any_csv(path, batches)
    };
    let done =
        written.and_then(|()| std::fs::rename(tmp_path(path), path).map_err(|e| io_err(path, e)));
    if done.is_err() {
        let _ = std::fs::remove_file(tmp_path(path));
    }
    done
}

/// A CSV file with the batches' column names as header and arrow's display of each value
/// (empty for null).
fn write_any_csv(path: &Path, batches: &[RecordBatch]) -> Result<(), RunError> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let mut w = csv::Writer::from_path(tmp_path(path)).map_err(|e| io_err(path, e))?;
    let schema = batches[0].schema();
    w.write_record(schema.fields().iter().map(|f| f.name().as_str()))
        .map_err(|e| io_err(path, e))?;
    let options = FormatOptions::default();
    let mut record: Vec<String> = Vec::new();
    for b in batches {
        let columns = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io_err(path, e))?;
        for row in 0..b.num_rows() {
            record.clear();
            record.extend(columns.iter().map(|c| c.value(row).to_string()));
            w.write_record(&record).map_err(|e| io_err(path, e))?;
        }
    }
    w.flush().map_err(|e| io_err(path, e))?;
    Ok(())
}

/// What a run's files say beside its rows: the ladder summaries, the rejected rows, the
/// metrics that were not finite, the date, and whether `metrics.csv` is wanted.
#[derive(Debug, Clone, Copy)]
pub struct RunReport<'a> {
    pub summaries: &'a [LadderSummary],
    pub rejects: &'a [Reject],
    pub non_finite: &'a [stratum_engine::NonFinite],
    pub as_of: NaiveDate,
    pub metrics_csv: bool,
}

/// Writes every output file under its `.partial` name; the caller commits them once the run
/// is recorded. `assignments` are consumed as they come (see [`assignments`]): both
/// assignment files are written side by side from each batch, and `metrics.parquet` beside
/// them, so a million-customer run holds a few batches at a time, not its whole output.
pub fn write_all(
    dir: &Path,
    ev: &Evaluation,
    assignments: impl Iterator<Item = RecordBatch>,
    report: &RunReport<'_>,
) -> Result<StagedOutputs, RunError> {
    let RunReport {
        summaries,
        rejects,
        non_finite,
        as_of,
        metrics_csv,
    } = *report;
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    // Built first so that a failed write below cleans up what was written.
    let staged = StagedOutputs {
        files: OutputFiles {
            assignments_parquet: dir.join("assignments.parquet"),
            assignments_csv: dir.join("assignments.csv"),
            metrics_parquet: dir.join("metrics.parquet"),
            metrics_csv: metrics_csv.then(|| dir.join("metrics.csv")),
            rejects_csv: (!rejects.is_empty()).then(|| dir.join("rejects.csv")),
            summary_json: dir.join("summary.json"),
        },
        committed: false,
    };
    let files = &staged.files;
    std::thread::scope(|scope| -> Result<(), RunError> {
        // Two batches in flight per writer: enough to keep both busy, little to hold.
        let (to_parquet, parquet_rx) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
        let (to_csv, csv_rx) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
        let parquet = scope.spawn(move || write_parquet(&files.assignments_parquet, parquet_rx));
        let csv = scope.spawn(move || write_assignments_csv(&files.assignments_csv, csv_rx));
        let metrics_file = scope.spawn(|| match &files.metrics_csv {
            // One pass over the metrics feeds both files.
            Some(csv_path) => {
                let (to_csv, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
                std::thread::scope(|inner| {
                    let csv = inner.spawn(move || write_metrics_csv(csv_path, rx));
                    let parquet = write_parquet(
                        &files.metrics_parquet,
                        metrics(ev).inspect(|b| {
                            let _ = to_csv.send(b.clone());
                        }),
                    );
                    drop(to_csv);
                    parquet.and(csv.join().expect("metrics csv writer thread"))
                })
            }
            None => write_parquet(&files.metrics_parquet, metrics(ev)),
        });
        for batch in assignments {
            // A writer that stopped has failed: stop feeding; its error is returned below.
            if to_parquet.send(batch.clone()).is_err() || to_csv.send(batch).is_err() {
                break;
            }
        }
        drop((to_parquet, to_csv));
        let parquet = parquet.join().expect("parquet writer thread");
        let csv = csv.join().expect("csv writer thread");
        let metrics_file = metrics_file.join().expect("metrics writer thread");
        parquet.and(csv).and(metrics_file)
    })?;
    if let Some(path) = &files.rejects_csv {
        write_rejects(path, rejects)?;
    }
    write_summary(
        &files.summary_json,
        ev,
        summaries,
        as_of,
        rejects.len(),
        non_finite,
    )?;
    Ok(staged)
}

/// Rows per output batch: what a writer holds at a time.
const BATCH_ROWS: usize = 64 * 1024;

/// One row per customer per ladder, ladder by ladder, customers in id order within each,
/// built lazily [`BATCH_ROWS`] customers at a time (the explanations are most of a run's
/// output work and memory), each step split across all cores, a batch per core.
pub fn assignments<'a>(ev: &'a Evaluation) -> impl Iterator<Item = RecordBatch> + 'a {
    let n = ev.frame.len();
    let workers = std::thread::available_parallelism().map_or(1, |p| p.get());
    let slices: Vec<(usize, usize, usize)> = (0..ev.ladders.len())
        .flat_map(|li| {
            (0..n)
                .step_by(BATCH_ROWS)
                .map(move |s| (li, s, (s + BATCH_ROWS).min(n)))
        })
        .collect();
    let empty = slices
        .is_empty()
        .then(|| assignment_rows(ev, usize::MAX, 0, 0));
    slices
        .into_iter()
        .flat_map(move |(li, start, end)| {
            let part = (end - start).div_ceil(workers).max(1);
            std::thread::scope(|scope| {
                let handles: Vec<_> = (start..end)
                    .step_by(part)
                    .map(|s| scope.spawn(move || assignment_rows(ev, li, s, (s + part).min(end))))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("assignment thread"))
                    .collect::<Vec<_>>()
            })
        })
        .chain(empty)
}

fn assignment_rows(ev: &Evaluation, li: usize, start: usize, end: usize) -> RecordBatch {
    let rows = end - start;
    let mut ids = StringBuilder::with_capacity(rows, rows * 8);
    let mut ladders = StringBuilder::with_capacity(rows, rows * 8);
    let mut levels = StringBuilder::with_capacity(rows, rows * 8);
    let mut scores: Vec<Option<f64>> = Vec::with_capacity(rows);
    let mut ranks: Vec<Option<u32>> = Vec::with_capacity(rows);
    // Explanations run to about 80 bytes ("rank 446,628 of 1,000,000 by composite (50.71):
    // within the next 30% by rank").
    let mut why = StringBuilder::with_capacity(rows, rows * 96);
    let mut rule_levels = StringBuilder::with_capacity(rows, rows * 8);
    let mut owners = StringBuilder::with_capacity(rows, rows * 8);
    let mut tags = StringBuilder::with_capacity(rows, rows);
    let mut text = String::with_capacity(128);
    if let Some(ladder) = ev.ladders.get(li) {
        let result = &ev.results[li];
        let score_col = ladder.rank_by.as_deref().and_then(|r| ev.frame.column(r));
        let owner_col = ev.policy.service.as_ref().and_then(|s| {
            match s.owner.as_deref().and_then(|o| ev.frame.column(o)) {
                Some(Column::Text(values)) => Some(values),
                _ => None,
            }
        });
        for row in start..end {
            ids.append_value(&ev.frame.ids()[row]);
            ladders.append_value(&ladder.name);
            let level = result.level[row];
            levels.append_value(ev.level_name(li, level));
            rule_levels.append_value(ev.level_name(li, result.reason[row].rule_level(level)));
            owners.append_option(owner_col.and_then(|o| o[row].as_deref()));
            text.clear();
            for (i, tag) in ev.frame.tags(row).iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(tag);
            }
            tags.append_value(&text);
            scores.push(score_col.and_then(|c| c.num(row)));
            let in_scope = result.level[row] <= ladder.levels.len();
            ranks.push(result.rank.as_ref().filter(|_| in_scope).map(|r| r[row]));
            text.clear();
            ev.write_explanation(li, row, &mut text);
            why.append_value(&text);
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("ladder", DataType::Utf8, false),
        Field::new("level", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
        Field::new("rank", DataType::UInt32, true),
        Field::new("explanation", DataType::Utf8, false),
        Field::new("rule_level", DataType::Utf8, false),
        Field::new("owner", DataType::Utf8, true),
        Field::new("tags", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ids.finish()),
        Arc::new(ladders.finish()),
        Arc::new(levels.finish()),
        Arc::new(Float64Array::from(scores)),
        Arc::new(UInt32Array::from(ranks)),
        Arc::new(why.finish()),
        Arc::new(rule_levels.finish()),
        Arc::new(owners.finish()),
        Arc::new(tags.finish()),
    ];
    RecordBatch::try_new(schema, columns).expect("columns match the schema")
}

fn write_assignments_csv(
    path: &Path,
    batches: impl IntoIterator<Item = RecordBatch>,
) -> Result<(), RunError> {
    let tmp = tmp_path(path);
    let mut w = csv::Writer::from_path(&tmp).map_err(|e| io_err(path, e))?;
    w.write_record([
        "customer_id",
        "ladder",
        "level",
        "score",
        "rank",
        "explanation",
        "rule_level",
        "owner",
        "tags",
    ])
    .map_err(|e| io_err(path, e))?;
    for batch in batches {
        write_csv_rows(&mut w, path, &batch)?;
    }
    w.flush().map_err(|e| io_err(path, e))?;
    drop(w);
    Ok(())
}

fn write_csv_rows(
    w: &mut csv::Writer<File>,
    path: &Path,
    batch: &RecordBatch,
) -> Result<(), RunError> {
    let s = |i: usize| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8")
    };
    let (ids, ladders, levels, why) = (s(0), s(1), s(2), s(5));
    let (rule_levels, owners, tags) = (s(6), s(7), s(8));
    let scores = batch
        .column(3)
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("f64");
    let ranks = batch
        .column(4)
        .as_any()
        .downcast_ref::<UInt32Array>()
        .expect("u32");
    let mut score_buf = String::new();
    let mut rank_buf = String::new();
    for r in 0..batch.num_rows() {
        score_buf.clear();
        rank_buf.clear();
        // Written into reused buffers: a million rows.
        if scores.is_valid(r) {
            push_six_decimals(&mut score_buf, scores.value(r));
        }
        if ranks.is_valid(r) {
            let _ = write!(rank_buf, "{}", ranks.value(r));
        }
        w.write_record([
            ids.value(r),
            ladders.value(r),
            levels.value(r),
            &score_buf,
            &rank_buf,
            why.value(r),
            rule_levels.value(r),
            if owners.is_valid(r) {
                owners.value(r)
            } else {
                ""
            },
            tags.value(r),
        ])
        .map_err(|e| io_err(path, e))?;
    }
    Ok(())
}

/// Appends `v` rounded to six decimals exactly as `{}` prints `(v * 1e6).round() / 1e6` (the
/// shortest text that reads back as that number), in integer arithmetic: the float formatter
/// was a tenth of the CSV writer's time. Below 10⁹ a double is finer than a millionth, so
/// the millionths themselves are that shortest text; beyond, the formatter does it.
fn push_six_decimals(out: &mut String, v: f64) {
    let micros = (v * 1e6).round();
    let negative_zero = micros == 0.0 && micros.is_sign_negative();
    if micros.abs() >= 1e15 || micros.is_nan() || negative_zero {
        let _ = write!(out, "{}", micros / 1e6);
        return;
    }
    let micros = micros as i64;
    if micros < 0 {
        out.push('-');
    }
    let (whole, mut fraction) = (
        micros.unsigned_abs() / 1_000_000,
        micros.unsigned_abs() % 1_000_000,
    );
    let _ = write!(out, "{whole}");
    if fraction != 0 {
        let mut width = 6;
        while fraction % 10 == 0 {
            fraction /= 10;
            width -= 1;
        }
        let _ = write!(out, ".{fraction:0width$}");
    }
}

/// Every metric and score per customer, plus tags, a batch of customers at a time.
pub fn metrics<'a>(ev: &'a Evaluation) -> impl Iterator<Item = RecordBatch> + 'a {
    let n = ev.frame.len();
    // One (empty) batch even for no customers: the file still gets its columns.
    (0..n.max(1))
        .step_by(BATCH_ROWS)
        .map(move |start| metrics_rows(ev, start, (start + BATCH_ROWS).min(n)))
}

pub(crate) fn metrics_rows(ev: &Evaluation, start: usize, end: usize) -> RecordBatch {
    let mut fields = vec![Field::new("customer_id", DataType::Utf8, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        (start..end).map(|row| &ev.frame.ids()[row]),
    ))];
    let tags: StringArray = (start..end)
        .map(|r| Some(ev.frame.tags(r).join(";")))
        .collect();
    fields.push(Field::new("tags", DataType::Utf8, false));
    columns.push(Arc::new(tags));
    for (name, col) in ev.frame.columns() {
        match col {
            Column::Num(v) => {
                fields.push(Field::new(name, DataType::Float64, true));
                columns.push(Arc::new(
                    v[start..end].iter().copied().collect::<Float64Array>(),
                ));
            }
            Column::Text(v) => {
                fields.push(Field::new(name, DataType::Utf8, true));
                columns.push(Arc::new(
                    v[start..end]
                        .iter()
                        .map(|x| x.as_deref())
                        .collect::<StringArray>(),
                ));
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("columns match the schema")
}

/// `metrics.csv`: the same columns as `metrics.parquet`, for spreadsheets.
fn write_metrics_csv(
    path: &Path,
    batches: std::sync::mpsc::Receiver<RecordBatch>,
) -> Result<(), RunError> {
    let tmp = tmp_path(path);
    let file = File::create(&tmp).map_err(|e| io_err(path, e))?;
    let mut writer = datafusion::arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(std::io::BufWriter::new(file));
    for batch in batches {
        writer.write(&batch).map_err(|e| io_err(path, e))?;
    }
    let mut inner = writer.into_inner();
    std::io::Write::flush(&mut inner).map_err(|e| io_err(path, e))?;
    Ok(())
}

fn write_rejects(path: &Path, rejects: &[Reject]) -> Result<(), RunError> {
    let tmp = tmp_path(path);
    let mut w = csv::Writer::from_path(&tmp).map_err(|e| io_err(path, e))?;
    w.write_record(["source", "file", "line", "column", "reason", "record"])
        .map_err(|e| io_err(path, e))?;
    for r in rejects {
        w.write_record([
            r.source.as_str(),
            r.file.as_str(),
            &r.line.to_string(),
            r.column.as_deref().unwrap_or(""),
            r.reason.as_str(),
            r.record.as_str(),
        ])
        .map_err(|e| io_err(path, e))?;
    }
    w.flush().map_err(|e| io_err(path, e))?;
    drop(w);
    Ok(())
}

fn write_summary(
    path: &Path,
    ev: &Evaluation,
    summaries: &[LadderSummary],
    as_of: NaiveDate,
    rejected: usize,
    non_finite: &[stratum_engine::NonFinite],
) -> Result<(), RunError> {
    let ladders: Vec<serde_json::Value> = summaries
        .iter()
        .map(|s| {
            serde_json::json!({
                "ladder": s.ladder,
                "value": s.value_name,
                "pareto_top20": s.pareto_top20,
                "clusters": s.clusters,
                "levels": s.rows.iter().map(|r| serde_json::json!({
                    "level": r.level, "count": r.count, "share": r.share,
                    "value": r.value, "value_share": r.value_share,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut doc = serde_json::json!({
        "as_of": as_of.to_string(),
        "policy": ev.policy.map.file(),
        "customers": ev.frame.len(),
        "rejected_rows": rejected,
        "ladders": ladders,
    });
    if !non_finite.is_empty() {
        doc["non_finite_metrics"] = non_finite
            .iter()
            .map(|n| {
                serde_json::json!({
                    "metric": n.metric, "customers": n.customers, "examples": n.examples,
                })
            })
            .collect();
    }
    let tmp = tmp_path(path);
    std::fs::write(&tmp, serde_json::to_string_pretty(&doc).expect("json"))
        .map_err(|e| io_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::push_six_decimals;

    #[test]
    fn six_decimals_read_as_the_float_formatter_writes_them() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            50.705371,
            86.397106,
            99.9999995,
            1e-7,
            -4e-7,
            123456.7,
            999_999_999.999_999,
            1e9,
            1e12,
            -3.25e10,
            f64::INFINITY,
            f64::NAN,
        ];
        // And a spread of magnitudes from a fixed-seed generator.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            let scale = 10f64.powi((state % 13) as i32 - 3);
            values.push((unit - 0.3) * scale);
        }
        for v in values {
            let mut fast = String::new();
            push_six_decimals(&mut fast, v);
            assert_eq!(fast, format!("{}", (v * 1e6).round() / 1e6), "{v:e}");
        }
    }
}
