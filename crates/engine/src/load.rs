//! Reading text sources (CSV, JSON lines) into Arrow with exact error locations. DataFusion's
//! own CSV reader stops at the first bad row and, when it splits a file across threads, cannot
//! say which line of the file was bad; customer data needs "file, line, column" and a
//! quarantine mode that keeps going, so text files are parsed here, row by row.

use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use stratum_core::ColumnType;

use crate::error::{EngineError, UserError};

const BATCH_ROWS: usize = 65_536;
/// Rows buffered for type inference: until each column has `INFER_VALUES` non-empty values,
/// or `INFER_MAX_ROWS` rows.
const INFER_VALUES: usize = 200;
const INFER_MAX_ROWS: usize = 100_000;
const JSON_HEADER_ROWS: usize = 1_000;

/// A row that could not be read, kept with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub source: String,
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
    pub record: String,
}

/// What loading one source did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadStats {
    pub read: u64,
    pub accepted: u64,
    pub rejected: u64,
}

/// How the loader treats rows it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadRows {
    /// Stop at the first bad row with an error naming file, line and column.
    #[default]
    Fail,
    /// Keep going; every bad row goes to the rejects list with its reason.
    Quarantine,
}

/// What the loader must know about one source.
pub struct TextSpec<'a> {
    pub source: &'a str,
    pub path: &'a Path,
    pub display: &'a str,
    pub key: &'a str,
    pub time: Option<&'a str>,
    pub declared: &'a [(String, ColumnType)],
    pub delimiter: u8,
    /// One row per key (customers and attribute sources).
    pub unique_key: bool,
}

pub struct Loaded {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub stats: LoadStats,
    pub rejects: Vec<Reject>,
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y/%m/%d"))
        .ok()
        .or_else(|| compact_date(s))
}

/// `YYYYMMDD`, as many exports write dates (CDNOW among them). Only eight digits: a longer
/// or shorter number is not a date.
fn compact_date(s: &str) -> Option<NaiveDate> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| NaiveDate::parse_from_str(s, "%Y%m%d").ok())
        .flatten()
}

/// A timestamp as sources write them (`2026-11-24 09:00:00`, `…T09:00`, `2026/11/24 09:00:00`,
/// RFC 3339, or a date alone), without a time zone: the caller says which zone it is in.
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
    ];
    let trimmed = s.trim_end_matches('Z');
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(trimmed, f).ok())
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.naive_utc())
        })
        .or_else(|| parse_date(s).and_then(|d| d.and_hms_opt(0, 0, 0)))
}

fn parses_as(ty: ColumnType, s: &str) -> bool {
    match ty {
        ColumnType::String => true,
        ColumnType::Int => s.parse::<i64>().is_ok(),
        ColumnType::Float => s.parse::<f64>().is_ok_and(f64::is_finite),
        ColumnType::Bool => matches!(s.to_ascii_lowercase().as_str(), "true" | "false"),
        ColumnType::Date => parse_date(s).is_some(),
        ColumnType::Timestamp => parse_timestamp(s).is_some(),
    }
}

/// The narrowest type that most non-empty sample values parse as. A stray bad value must not
/// turn an amount column into text: it becomes a bad row, reported with its line, instead.
/// `None` when there is no value to go by.
fn infer(samples: &[&str]) -> Option<ColumnType> {
    let non_empty: Vec<&&str> = samples.iter().filter(|s| !s.is_empty()).collect();
    if non_empty.is_empty() {
        return None;
    }
    let needed = non_empty.len() / 2 + 1;
    // Numbers are inferred as floats: an amount column that holds whole numbers in its first
    // rows may hold decimals later. Declare `int` under `columns` where it matters.
    for ty in [
        ColumnType::Float,
        ColumnType::Bool,
        ColumnType::Date,
        ColumnType::Timestamp,
    ] {
        if non_empty.iter().filter(|s| parses_as(ty, s)).count() >= needed {
            return Some(ty);
        }
    }
    Some(ColumnType::String)
}

pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::String => DataType::Utf8,
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

enum Builder {
    /// A column with no values at all in the sampled rows.
    Null(usize),
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
}

impl Builder {
    fn new(ty: ColumnType) -> Self {
        match ty {
            ColumnType::String => Self::Str(StringBuilder::new()),
            ColumnType::Int => Self::Int(Int64Builder::new()),
            ColumnType::Float => Self::Float(Float64Builder::new()),
            ColumnType::Bool => Self::Bool(BooleanBuilder::new()),
            ColumnType::Date => Self::Date(Date32Builder::new()),
            ColumnType::Timestamp => Self::Ts(TimestampMicrosecondBuilder::new()),
        }
    }
    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Null(n) => Arc::new(datafusion::arrow::array::NullArray::new(std::mem::take(n))),
            Self::Str(b) => Arc::new(b.finish()),
            Self::Int(b) => Arc::new(b.finish()),
            Self::Float(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Ts(b) => Arc::new(b.finish()),
        }
    }
}

/// A parsed cell, checked before anything is appended so a bad row leaves no trace.
enum Cell<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(i32),
    Ts(i64),
}

fn parse_cell(ty: ColumnType, s: &str) -> Option<Cell<'_>> {
    if s.is_empty() {
        return Some(Cell::Null);
    }
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    Some(match ty {
        ColumnType::String => Cell::Str(s),
        ColumnType::Int => Cell::Int(s.parse().ok()?),
        ColumnType::Float => Cell::Float(s.parse::<f64>().ok().filter(|f| f.is_finite())?),
        ColumnType::Bool => match s.to_ascii_lowercase().as_str() {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => return None,
        },
        ColumnType::Date => Cell::Date((parse_date(s)? - epoch).num_days() as i32),
        ColumnType::Timestamp => Cell::Ts(parse_timestamp(s)?.and_utc().timestamp_micros()),
    })
}

fn append(b: &mut Builder, c: &Cell<'_>) {
    match (b, c) {
        (Builder::Null(n), _) => *n += 1,
        (Builder::Str(b), Cell::Str(s)) => b.append_value(s),
        (Builder::Int(b), Cell::Int(v)) => b.append_value(*v),
        (Builder::Float(b), Cell::Float(v)) => b.append_value(*v),
        (Builder::Float(b), Cell::Int(v)) => b.append_value(*v as f64),
        (Builder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
        (Builder::Date(b), Cell::Date(v)) => b.append_value(*v),
        (Builder::Ts(b), Cell::Ts(v)) => b.append_value(*v),
        (Builder::Str(b), _) => b.append_null(),
        (Builder::Int(b), _) => b.append_null(),
        (Builder::Float(b), _) => b.append_null(),
        (Builder::Bool(b), _) => b.append_null(),
        (Builder::Date(b), _) => b.append_null(),
        (Builder::Ts(b), _) => b.append_null(),
    }
}

/// A line that could not be split into fields: where it is, why, and its text as the file
/// holds it (for rejects.csv).
pub(crate) struct BadText {
    pub line: u64,
    pub reason: String,
    pub record: String,
}

/// One text row: its line and fields, or why it cannot be split into fields.
type TextRow = Result<(u64, Vec<String>), BadText>;

/// Rows as lists of text fields, with their line numbers: the common shape of CSV and JSONL.
pub(crate) struct TextRows {
    pub header: Vec<String>,
    pub rows: Box<dyn Iterator<Item = TextRow>>,
}

/// A quoted field may hold line breaks (an address, a note), but never more than this many:
/// a stray quote otherwise turns the rest of the file into one field of one record.
pub const MAX_RECORD_LINES: u64 = 32;

/// CSV records with exact lines. The csv crate reads a quote that is never closed as a field
/// running to the end of the file; here a record that spans lines is kept only when it has
/// the header's width and at most [`MAX_RECORD_LINES`] lines. Otherwise its first line is a
/// bad row (with its text) and reading starts again on the line after it, so every line of
/// the file is either accepted or rejected.
struct CsvRows {
    reader: csv::Reader<std::fs::File>,
    /// A second handle on the file, to read a bad record's raw text and find line ends.
    raw: std::fs::File,
    width: usize,
    record: csv::StringRecord,
    done: bool,
}

impl CsvRows {
    /// The bytes from `from` up to `to` (exclusive), or to the end of the line at `from`
    /// when `to` is `None`; and the offset just past that line.
    fn raw_text(&mut self, from: u64, to: Option<u64>) -> std::io::Result<(String, u64)> {
        use std::io::{BufRead, Seek, SeekFrom};
        self.raw.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::new();
        match to {
            Some(to) => {
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(&mut self.raw, to.saturating_sub(from)),
                    &mut buf,
                )?;
            }
            None => {
                std::io::BufReader::new(&mut self.raw).read_until(b'\n', &mut buf)?;
            }
        }
        let next = from + buf.len() as u64;
        let text = String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        Ok((text, next))
    }

    fn bad(&mut self, line: u64, from: u64, to: Option<u64>, reason: String) -> TextRow {
        let record = self.raw_text(from, to).map(|(t, _)| t).unwrap_or_default();
        Err(BadText {
            line,
            reason,
            record,
        })
    }
}

impl Iterator for CsvRows {
    type Item = TextRow;

    fn next(&mut self) -> Option<TextRow> {
        if self.done {
            return None;
        }
        let read = self.reader.read_record(&mut self.record);
        let end = self.reader.position().clone();
        match read {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let start = self
                    .record
                    .position()
                    .cloned()
                    .unwrap_or_else(|| end.clone());
                // Lines this record covers: its own and one per line break inside its fields.
                let spanned = 1 + self
                    .record
                    .iter()
                    .map(|f| f.bytes().filter(|b| *b == b'\n').count() as u64)
                    .sum::<u64>();
                // A quote never closed runs to the end of the file, and the csv crate hands
                // that back as a record; its raw text then holds an odd number of quotes.
                let runaway = spanned > 1
                    && (self.record.len() != self.width
                        || spanned > MAX_RECORD_LINES
                        || self
                            .raw_text(start.byte(), Some(end.byte()))
                            .map_or(true, |(text, _)| text.matches('"').count() % 2 == 1));
                if runaway {
                    // Start again on the line after this record's first line.
                    let row = match self.raw_text(start.byte(), None) {
                        Ok((text, next)) => {
                            let mut resume = csv::Position::new();
                            resume.set_byte(next).set_line(start.line() + 1);
                            if let Err(e) = self.reader.seek(resume) {
                                self.done = true;
                                return Some(Err(BadText {
                                    line: start.line(),
                                    reason: format!("cannot read on: {e}"),
                                    record: text,
                                }));
                            }
                            Err(BadText {
                                line: start.line(),
                                reason: "has a quoted field that is never closed (a quote opens a field on this line and no record ends within the next lines)".to_string(),
                                record: text,
                            })
                        }
                        Err(e) => {
                            self.done = true;
                            Err(BadText {
                                line: start.line(),
                                reason: format!("cannot be read: {e}"),
                                record: String::new(),
                            })
                        }
                    };
                    return Some(row);
                }
                if self.record.len() != self.width {
                    let len = self.record.len();
                    let width = self.width;
                    return Some(self.bad(
                        start.line(),
                        start.byte(),
                        Some(end.byte()),
                        format!("has {len} fields, the header has {width}"),
                    ));
                }
                Some(Ok((
                    start.line(),
                    self.record.iter().map(|f| f.trim().to_string()).collect(),
                )))
            }
            Err(e) => {
                let start = e.position().cloned().unwrap_or_else(|| end.clone());
                let reason = match e.kind() {
                    csv::ErrorKind::Utf8 { err, .. } => format!(
                        "is not valid UTF-8 (field {}); save the export as UTF-8",
                        err.field() + 1
                    ),
                    _ => e.to_string(),
                };
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    // An I/O error: nothing more can be read.
                    self.done = true;
                }
                Some(self.bad(start.line(), start.byte(), Some(end.byte()), reason))
            }
        }
    }
}

fn open_csv(spec: &TextSpec<'_>) -> Result<TextRows, EngineError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(spec.delimiter)
        .flexible(true)
        .from_path(spec.path)
        .map_err(|e| io_error(spec, e))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| io_error(spec, e))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let raw = std::fs::File::open(spec.path).map_err(|e| io_error(spec, e))?;
    Ok(TextRows {
        rows: Box::new(CsvRows {
            reader,
            raw,
            width: header.len(),
            record: csv::StringRecord::new(),
            done: false,
        }),
        header,
    })
}

/// A JSON object's members in the order written, duplicates kept, so a key given twice is
/// a bad row instead of silently keeping the last value.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// One JSON line as its members, or why it is not a row.
fn json_members(line: &str) -> Result<Vec<(String, serde_json::Value)>, String> {
    match serde_json::from_str::<Members>(line) {
        Ok(Members(members)) => {
            for (i, (k, _)) in members.iter().enumerate() {
                if members[..i].iter().any(|(seen, _)| seen == k) {
                    return Err(format!("has the key \"{k}\" twice"));
                }
            }
            Ok(members)
        }
        Err(e) if e.is_data() => match serde_json::from_str::<serde_json::Value>(line) {
            Ok(_) => Err("is not a JSON object".to_string()),
            Err(e) => Err(format!("is not valid JSON: {e}")),
        },
        Err(e) => Err(format!("is not valid JSON: {e}")),
    }
}

fn open_jsonl(spec: &TextSpec<'_>) -> Result<TextRows, EngineError> {
    let bytes = std::fs::read(spec.path).map_err(|e| io_error(spec, e))?;
    // Lines are split as bytes: one line that is not UTF-8 is a bad row, not a bad file.
    let lines: Vec<Result<String, String>> = bytes
        .split(|b| *b == b'\n')
        .map(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            String::from_utf8(l.to_vec()).map_err(|_| String::from_utf8_lossy(l).into_owned())
        })
        .collect();
    drop(bytes);
    // The header is every key seen in the first rows, in order of appearance.
    let mut header: Vec<String> = Vec::new();
    for line in lines
        .iter()
        .filter_map(|l| l.as_ref().ok())
        .filter(|l| !l.trim().is_empty())
        .take(JSON_HEADER_ROWS)
    {
        if let Ok(members) = json_members(line) {
            for (k, _) in members {
                if !header.contains(&k) {
                    header.push(k);
                }
            }
        }
    }
    let cols = header.clone();
    let rows = lines
        .into_iter()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(move |(i, line)| {
            let n = i as u64 + 1;
            let line = match line {
                Ok(line) => line,
                Err(lossy) => {
                    return Err(BadText {
                        line: n,
                        reason: "is not valid UTF-8; save the export as UTF-8".to_string(),
                        record: lossy,
                    });
                }
            };
            match json_members(&line) {
                Ok(members) => Ok((
                    n,
                    cols.iter()
                        .map(
                            |c| match members.iter().find(|(k, _)| k == c).map(|(_, v)| v) {
                                None | Some(serde_json::Value::Null) => String::new(),
                                Some(serde_json::Value::String(s)) => s.trim().to_string(),
                                Some(other) => other.to_string(),
                            },
                        )
                        .collect(),
                )),
                Err(reason) => Err(BadText {
                    line: n,
                    reason,
                    record: line,
                }),
            }
        });
    Ok(TextRows {
        header,
        rows: Box::new(rows),
    })
}

fn io_error(spec: &TextSpec<'_>, e: impl std::fmt::Display) -> EngineError {
    EngineError::User(UserError::Unreadable {
        source_name: spec.source.to_string(),
        file: spec.display.to_string(),
        message: e.to_string(),
    })
}

pub fn load_csv(spec: &TextSpec<'_>, mode: BadRows) -> Result<Loaded, EngineError> {
    load_rows(spec, open_csv(spec)?, mode)
}

pub fn load_jsonl(spec: &TextSpec<'_>, mode: BadRows) -> Result<Loaded, EngineError> {
    load_rows(spec, open_jsonl(spec)?, mode)
}

fn load_rows(spec: &TextSpec<'_>, text: TextRows, mode: BadRows) -> Result<Loaded, EngineError> {
    let header = text.header;
    for required in std::iter::once(spec.key).chain(spec.time) {
        if !header.iter().any(|h| h == required) {
            return Err(EngineError::User(UserError::MissingColumn {
                source_name: spec.source.to_string(),
                file: spec.display.to_string(),
                column: required.to_string(),
                available: header.clone(),
            }));
        }
    }
    for (declared, _) in spec.declared {
        if !header.iter().any(|h| h == declared) {
            return Err(EngineError::User(UserError::MissingColumn {
                source_name: spec.source.to_string(),
                file: spec.display.to_string(),
                column: declared.clone(),
                available: header.clone(),
            }));
        }
    }

    // Buffer rows until every column has enough values to infer its type (bounded).
    let mut rows = text.rows;
    let mut head: Vec<TextRow> = Vec::new();
    let mut seen = vec![0usize; header.len()];
    for r in rows.by_ref() {
        if let Ok((_, fields)) = &r {
            for (count, f) in seen.iter_mut().zip(fields) {
                if !f.is_empty() {
                    *count += 1;
                }
            }
        }
        head.push(r);
        if head.len() >= INFER_MAX_ROWS || seen.iter().all(|c| *c >= INFER_VALUES) {
            break;
        }
    }
    // `None`: no value anywhere in the sample; such a column is all nulls.
    let types: Vec<Option<ColumnType>> = header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if name == spec.key {
                return Some(ColumnType::String);
            }
            if let Some((_, t)) = spec.declared.iter().find(|(n, _)| n == name) {
                return Some(*t);
            }
            let samples: Vec<&str> = head
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .map(|(_, f)| f[i].as_str())
                .collect();
            let t = infer(&samples);
            if Some(name.as_str()) == spec.time
                && !matches!(t, Some(ColumnType::Date | ColumnType::Timestamp))
            {
                // A time column is dates or timestamps whatever most values look like; the row
                // check below names the first value that is neither.
                let readable: Vec<&&str> = samples
                    .iter()
                    .filter(|s| parses_as(ColumnType::Timestamp, s))
                    .collect();
                if !readable.is_empty() && readable.iter().all(|s| parses_as(ColumnType::Date, s)) {
                    Some(ColumnType::Date)
                } else {
                    Some(ColumnType::Timestamp)
                }
            } else {
                t
            }
        })
        .collect();
    let key_idx = header
        .iter()
        .position(|h| h == spec.key)
        .expect("checked above");
    let time_idx = spec.time.and_then(|t| header.iter().position(|h| h == t));

    let schema: SchemaRef = Arc::new(Schema::new(
        header
            .iter()
            .zip(&types)
            .map(|(name, ty)| Field::new(name, ty.map_or(DataType::Null, arrow_type), true))
            .collect::<Vec<_>>(),
    ));
    let mut builders: Vec<Builder> = types
        .iter()
        .map(|t| t.map_or(Builder::Null(0), Builder::new))
        .collect();
    let mut batches = Vec::new();
    let mut in_batch = 0usize;
    let mut stats = LoadStats::default();
    let mut rejects = Vec::new();
    let mut seen_keys: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let head_len = head.len();

    for row in head.into_iter().chain(rows) {
        stats.read += 1;
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(header.len());
        let problem: Option<(u64, Option<String>, String, String)> = match &row {
            Err(bad) => Some((
                bad.line,
                None,
                format!("row {}", bad.reason),
                bad.record.clone(),
            )),
            Ok((line, fields)) => {
                let mut bad = None;
                for (i, (value, ty)) in fields.iter().zip(&types).enumerate() {
                    let parsed = match ty {
                        Some(t) => parse_cell(*t, value),
                        None if value.is_empty() => Some(Cell::Null),
                        None => None,
                    };
                    match parsed {
                        Some(c) => cells.push(c),
                        None => {
                            let reason = match ty {
                                Some(t) => format!("value '{value}' is not a valid {}", t.name()),
                                None => format!(
                                    "value '{value}' in a column that was empty in the first {} rows; declare its type under `columns`",
                                    head_len
                                ),
                            };
                            bad = Some((
                                *line,
                                Some(header[i].clone()),
                                reason,
                                record_text(fields, spec.delimiter),
                            ));
                            break;
                        }
                    }
                }
                if bad.is_none() && fields[key_idx].is_empty() {
                    bad = Some((
                        *line,
                        Some(spec.key.to_string()),
                        "customer key is empty".into(),
                        record_text(fields, spec.delimiter),
                    ));
                }
                if bad.is_none()
                    && let Some(t) = time_idx
                    && fields[t].is_empty()
                {
                    bad = Some((
                        *line,
                        Some(header[t].clone()),
                        "time is empty".into(),
                        record_text(fields, spec.delimiter),
                    ));
                }
                if bad.is_none() && spec.unique_key {
                    if let Some(first) = seen_keys.get(&fields[key_idx]) {
                        bad = Some((
                            *line,
                            Some(spec.key.to_string()),
                            format!(
                                "duplicate key '{}' (first seen on line {first})",
                                fields[key_idx]
                            ),
                            record_text(fields, spec.delimiter),
                        ));
                    } else {
                        seen_keys.insert(fields[key_idx].clone(), *line);
                    }
                }
                bad
            }
        };
        match problem {
            None => {
                for (b, c) in builders.iter_mut().zip(&cells) {
                    append(b, c);
                }
                stats.accepted += 1;
                in_batch += 1;
                if in_batch == BATCH_ROWS {
                    batches.push(finish_batch(&schema, &mut builders)?);
                    in_batch = 0;
                }
            }
            Some((line, column, reason, record)) => {
                if mode == BadRows::Fail {
                    return Err(EngineError::User(UserError::BadRow {
                        file: spec.display.to_string(),
                        line,
                        column,
                        message: reason,
                    }));
                }
                stats.rejected += 1;
                rejects.push(Reject {
                    source: spec.source.to_string(),
                    file: spec.display.to_string(),
                    line,
                    column,
                    reason,
                    record,
                });
            }
        }
    }
    if in_batch > 0 || batches.is_empty() {
        batches.push(finish_batch(&schema, &mut builders)?);
    }
    Ok(Loaded {
        schema,
        batches,
        stats,
        rejects,
    })
}

/// A row's fields as one line of its file's format (quoted where needed), for rejects.csv.
fn record_text(fields: &[String], delimiter: u8) -> String {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    if writer.write_record(fields).is_err() {
        return fields.join(",");
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\n')
        .to_string()
}

fn finish_batch(schema: &SchemaRef, builders: &mut [Builder]) -> Result<RecordBatch, EngineError> {
    let columns: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| EngineError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_narrowest_types() {
        assert_eq!(infer(&["1", "2", ""]), Some(ColumnType::Float));
        assert_eq!(infer(&["1", "2.5"]), Some(ColumnType::Float));
        assert_eq!(infer(&["2026-01-01", "2026/02/01"]), Some(ColumnType::Date));
        assert_eq!(infer(&["2026-01-01 10:00:00"]), Some(ColumnType::Timestamp));
        assert_eq!(infer(&["a", "b", "1"]), Some(ColumnType::String));
        assert_eq!(infer(&["", ""]), None);
        // A bad value among good ones keeps the column numeric; the bad row is reported on load.
        assert_eq!(infer(&["12.5", "3", "abc"]), Some(ColumnType::Float));
    }
}
