//! The lifetime models over the engine's tables. DataFusion reduces a purchase log of any
//! size to one summary row per customer (purchase days, first and last day, spend); the
//! models are fitted and evaluated by `stratum_core::clv`, which needs nothing else.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use stratum_core::ColumnType;
use stratum_core::clv::{CustomerSummary, LifetimeFit, TimeUnit};
use stratum_core::model::Policy;
use stratum_core::policy::SourceFormat;

use crate::error::{EngineError, UserError};
use crate::load::{self, BadRows};
use crate::sql::ident;

pub use crate::sql::LIFETIME_TABLE as TABLE;

/// What the summary query reads: `key` and `time` are SQL expressions over `table`.
pub struct SummarySpec<'a> {
    pub table: &'a str,
    pub key: &'a str,
    pub time: &'a str,
    pub amount: Option<&'a str>,
    pub filter: Option<&'a str>,
    /// SQL for the first instant after `as_of` in the time column's type.
    pub end: &'a str,
}

/// One row per customer: `__k`, purchase days, first and last day, total spend and the first
/// day's spend. Several rows on one day are one purchase of their summed amount; a day whose
/// amounts are all null spends 0.
pub fn summary_sql(spec: &SummarySpec<'_>) -> String {
    let amount = spec
        .amount
        .map(|a| format!("CAST(({a}) AS DOUBLE)"))
        .unwrap_or_else(|| "CAST(0 AS DOUBLE)".into());
    let mut conds = vec![format!("{} < {}", spec.time, spec.end)];
    if let Some(f) = spec.filter {
        conds.push(format!("({f})"));
    }
    let day = format!("CAST({} AS DATE)", spec.time);
    format!(
        "SELECT \"__k\", count(*) AS \"__days\", min(\"__d\") AS \"__first\", max(\"__d\") AS \"__last\", \
         sum(\"__s\") AS \"__total\", first_value(\"__s\" ORDER BY \"__d\") AS \"__first_amount\" \
         FROM (SELECT {key} AS \"__k\", {day} AS \"__d\", COALESCE(sum({amount}), CAST(0 AS DOUBLE)) AS \"__s\" \
         FROM {table} WHERE {conds} GROUP BY {key}, {day}) GROUP BY \"__k\"",
        key = spec.key,
        table = spec.table,
        conds = conds.join(" AND "),
    )
}

/// The summaries with the key column they came with (in its own type, for joining back).
pub struct Summaries {
    pub keys: Vec<ArrayRef>,
    pub customers: Vec<CustomerSummary>,
}

fn internal(what: &str) -> EngineError {
    EngineError::Internal(format!("lifetime summary: unexpected type of {what}"))
}

/// Builds each customer's (frequency, recency, age, spend) from the summary query's rows.
pub fn summaries(
    batches: &[RecordBatch],
    as_of: NaiveDate,
    unit: TimeUnit,
) -> Result<Summaries, EngineError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let day = |d: i32| epoch + chrono::Duration::days(i64::from(d));
    let mut out = Summaries {
        keys: Vec::new(),
        customers: Vec::new(),
    };
    for b in batches {
        let text = cast(b.column(0), &DataType::Utf8)?;
        let ids = text
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| internal("the key"))?;
        let days = cast(b.column(1), &DataType::Int64)?;
        let days = days
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| internal("the day count"))?;
        let date = |i: usize| -> Result<&Date32Array, EngineError> {
            b.column(i)
                .as_any()
                .downcast_ref::<Date32Array>()
                .ok_or_else(|| internal("a date"))
        };
        let (first, last) = (date(2)?, date(3)?);
        let float = |i: usize| -> Result<&Float64Array, EngineError> {
            b.column(i)
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| internal("an amount"))
        };
        let (total, first_amount) = (float(4)?, float(5)?);
        for i in 0..b.num_rows() {
            out.customers.push(CustomerSummary::from_days(
                ids.value(i).to_string(),
                u32::try_from(days.value(i)).unwrap_or(u32::MAX),
                day(first.value(i)),
                day(last.value(i)),
                // Rounded like metrics: the parallel sums' last bits vary from run to run.
                crate::round_metric(total.value(i)),
                crate::round_metric(first_amount.value(i)),
                as_of,
                unit,
            ));
        }
        out.keys.push(b.column(0).clone());
    }
    Ok(out)
}

fn fit_error(e: stratum_core::clv::ClvError) -> EngineError {
    EngineError::User(UserError::Lifetime(e.to_string()))
}

/// Fits the models to the policy's `[lifetime]` purchases and registers [`TABLE`]: the key
/// and one column `__m_<metric>` per lifetime metric. `None` when the policy has none.
pub(crate) async fn register_policy_table(
    ctx: &SessionContext,
    policy: &Policy,
    spec: &SummarySpec<'_>,
    as_of: NaiveDate,
) -> Result<Option<LifetimeFit>, EngineError> {
    let Some((lifetime, metrics)) = policy.lifetime_metrics() else {
        return Ok(None);
    };
    let df = ctx.sql(&summary_sql(spec)).await.map_err(|e| {
        EngineError::User(UserError::Lifetime(format!(
            "source `{}`: {}",
            lifetime.source,
            crate::clean(&e)
        )))
    })?;
    let summaries = summaries(&df.collect().await?, as_of, lifetime.unit)?;
    if summaries.customers.is_empty() {
        return Err(EngineError::User(UserError::Lifetime(format!(
            "source `{}` has no purchases through {as_of} to fit the models to",
            lifetime.source
        ))));
    }
    let with_spend = metrics.iter().any(|(_, m)| m.needs_spend());
    let measures: Vec<_> = metrics.iter().map(|(_, m)| *m).collect();
    let (unit, customers) = (lifetime.unit, summaries.customers);
    // Fitting and predicting are the CPU-heavy part: off the executor, in one go.
    let (fitted, customers) = crate::blocking::blocking(move || {
        let fitted = LifetimeFit::fit(&customers, unit, with_spend).map(|fit| {
            let values: Vec<_> = measures
                .iter()
                .map(|m| fit.measure_all(*m, &customers))
                .collect();
            (fit, values)
        });
        (fitted, customers)
    })
    .await;
    let (fit, values) = fitted.map_err(fit_error)?;
    let key_refs: Vec<&dyn Array> = summaries.keys.iter().map(|k| k.as_ref()).collect();
    let key = concat(&key_refs)?;
    let mut fields = vec![Field::new("__k", key.data_type().clone(), true)];
    let mut columns: Vec<ArrayRef> = vec![key];
    for ((name, _), values) in metrics.iter().zip(values) {
        let values = values.map_err(|(i, e)| {
            EngineError::User(UserError::Metric {
                metric: name.to_string(),
                message: format!("customer {}: {e}", customers[i].customer_id),
            })
        })?;
        fields.push(Field::new(format!("__m_{name}"), DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from(values)));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let table = MemTable::try_new(schema, vec![vec![batch]])?;
    ctx.register_table(TABLE, Arc::new(table))?;
    Ok(Some(fit))
}

/// A transaction log given on the command line (`stratum clv`).
pub struct TransactionFile<'a> {
    pub path: &'a Path,
    pub customer: &'a str,
    pub time: &'a str,
    pub amount: &'a str,
    /// SQL predicate choosing the rows that are purchases (e.g. `amount > 0`).
    pub filter: Option<&'a str>,
}

/// Reads a CSV, JSON lines or Parquet log (by extension) and summarises each customer as of
/// `as_of`. Text files go through the strict reader, so a bad row is named by file, line and
/// column.
pub async fn summarise_file(
    file: &TransactionFile<'_>,
    as_of: NaiveDate,
    unit: TimeUnit,
) -> Result<Vec<CustomerSummary>, EngineError> {
    const NAME: &str = "transactions";
    let display = file.path.display().to_string();
    if !file.path.exists() {
        return Err(EngineError::User(UserError::FileNotFound {
            source_name: NAME.into(),
            file: display,
        }));
    }
    let def = stratum_core::SourceDef {
        description: None,
        path: display.clone(),
        format: None,
        key: file.customer.into(),
        time: Some(file.time.into()),
        columns: Default::default(),
        tags: None,
        tag_separator: None,
        delimiter: None,
        from: None,
    };
    let ctx = SessionContext::new();
    let missing = |column: &str, available: Vec<String>| {
        EngineError::User(UserError::MissingColumn {
            source_name: NAME.into(),
            file: display.clone(),
            column: column.into(),
            available,
        })
    };
    match def.resolved_format() {
        Some(SourceFormat::Parquet) => {
            ctx.register_parquet(NAME, &display, ParquetReadOptions::default())
                .await
                .map_err(|e| {
                    EngineError::User(UserError::Unreadable {
                        source_name: NAME.into(),
                        file: display.clone(),
                        message: crate::clean(&e),
                    })
                })?;
            let schema = ctx.table(NAME).await?.schema().as_arrow().clone();
            let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            for c in [file.customer, file.time, file.amount] {
                if schema.field_with_name(c).is_err() {
                    return Err(missing(c, names));
                }
            }
        }
        Some(format @ (SourceFormat::Csv | SourceFormat::Jsonl)) => {
            let declared = vec![(file.amount.to_string(), ColumnType::Float)];
            let spec = load::TextSpec {
                source: NAME,
                path: file.path,
                display: &display,
                key: file.customer,
                time: Some(file.time),
                declared: &declared,
                delimiter: if display.to_lowercase().ends_with(".tsv") {
                    b'\t'
                } else {
                    b','
                },
                unique_key: false,
            };
            let loaded = match format {
                SourceFormat::Csv => load::load_csv(&spec, BadRows::Fail)?,
                _ => load::load_jsonl(&spec, BadRows::Fail)?,
            };
            let table = MemTable::try_new(loaded.schema, vec![loaded.batches])?;
            ctx.register_table(NAME, Arc::new(table))?;
        }
        _ => {
            return Err(EngineError::User(UserError::Unreadable {
                source_name: NAME.into(),
                file: display,
                message: "cannot tell the format; name the file .csv, .jsonl or .parquet".into(),
            }));
        }
    }
    let schema = ctx.table(NAME).await?.schema().as_arrow().clone();
    let time_type = schema
        .field_with_name(file.time)
        .map(|f| f.data_type().clone())
        .unwrap_or(DataType::Null);
    let end = as_of + chrono::Days::new(1);
    let end = match time_type {
        DataType::Date32 | DataType::Date64 => format!("DATE '{end}'"),
        DataType::Timestamp(_, _) => format!("CAST('{end}T00:00:00' AS TIMESTAMP)"),
        other => {
            return Err(EngineError::User(UserError::WrongType {
                source_name: NAME.into(),
                file: display,
                column: file.time.into(),
                found: other.to_string(),
                expected: "the time column must hold dates or timestamps".into(),
            }));
        }
    };
    let key = format!("CAST({} AS VARCHAR)", ident(file.customer));
    let time = ident(file.time);
    let amount = ident(file.amount);
    let sql = summary_sql(&SummarySpec {
        table: NAME,
        key: &key,
        time: &time,
        amount: Some(&amount),
        filter: file.filter,
        end: &end,
    });
    // A planning error here is the user's (a bad --filter, an amount that is not a number).
    let df = ctx.sql(&sql).await.map_err(|e| {
        EngineError::User(UserError::Config(format!(
            "{display}: {}",
            crate::clean(&e)
        )))
    })?;
    let batches = df.collect().await?;
    let mut customers = summaries(&batches, as_of, unit)?.customers;
    // Partitions finish in any order; the output is by customer.
    customers.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    Ok(customers)
}
