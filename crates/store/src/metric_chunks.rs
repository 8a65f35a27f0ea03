//! A run's metrics per customer, kept with the run so that an explanation over the API
//! reads what the run computed instead of computing the policy again. Same layout as the
//! results (`chunks`): [`CHUNK_ROWS`] customers in customer-id order per row of
//! `metric_chunks`, a zstd-compressed Arrow IPC stream each; its columns are `customer_id`
//! and the policy's metrics (numbers as Float64, text as Utf8), so the schema travels with
//! the blob.

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::DataType;

use crate::StoreError;
use crate::chunks::CHUNK_ROWS;

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("metric chunk: {e}"))
}

/// `batch` (first column `customer_id`, in byte order of the id) cut into chunks: each
/// chunk's first customer and its blob.
pub(crate) fn encode(batch: &RecordBatch) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let ids = batch
        .column(0)
        .as_string_opt::<i32>()
        .ok_or_else(|| StoreError::Internal("metrics must start with customer_id text".into()))?;
    if (1..ids.len()).any(|i| ids.value(i - 1) >= ids.value(i)) {
        return Err(StoreError::Internal(
            "metrics must be in customer-id order, each customer once".into(),
        ));
    }
    let mut out = Vec::with_capacity(batch.num_rows().div_ceil(CHUNK_ROWS));
    let mut start = 0;
    while start < batch.num_rows() {
        let len = CHUNK_ROWS.min(batch.num_rows() - start);
        let chunk = batch.slice(start, len);
        let mut writer = StreamWriter::try_new(Vec::new(), &chunk.schema()).map_err(corrupt)?;
        writer.write(&chunk).map_err(corrupt)?;
        let ipc = writer.into_inner().map_err(corrupt)?;
        let blob = crate::chunks::compress(&ipc).map_err(corrupt)?;
        out.push((ids.value(start).to_string(), blob));
        start += len;
    }
    Ok(out)
}

/// A chunk's record batch (the same encoding holds the facts, `fact_chunks`).
pub(crate) fn decode(blob: &[u8]) -> Result<RecordBatch, StoreError> {
    let ipc = zstd::stream::decode_all(blob).map_err(corrupt)?;
    let mut reader = StreamReader::try_new(&ipc[..], None).map_err(corrupt)?;
    reader
        .next()
        .ok_or_else(|| corrupt("empty"))?
        .map_err(corrupt)
}

/// A customer's metrics from a chunk, in the policy's order; `None` when the chunk does not
/// hold the customer.
pub(crate) fn find(
    blob: &[u8],
    customer_id: &str,
) -> Result<Option<Vec<(String, serde_json::Value)>>, StoreError> {
    let batch = decode(blob)?;
    let ids = batch
        .column(0)
        .as_string_opt::<i32>()
        .ok_or_else(|| corrupt("no customer_id column"))?;
    let Ok(row) = (0..ids.len())
        .collect::<Vec<_>>()
        .binary_search_by(|&i| ids.value(i).cmp(customer_id))
    else {
        return Ok(None);
    };
    let schema = batch.schema();
    let mut out = Vec::with_capacity(batch.num_columns() - 1);
    for (field, column) in schema.fields().iter().zip(batch.columns()).skip(1) {
        let value = if column.is_null(row) {
            serde_json::Value::Null
        } else {
            match field.data_type() {
                DataType::Float64 => {
                    serde_json::json!(column.as_primitive::<Float64Type>().value(row))
                }
                DataType::Utf8 => serde_json::json!(column.as_string::<i32>().value(row)),
                other => return Err(corrupt(format!("column {} is {other}", field.name()))),
            }
        };
        out.push((field.name().clone(), value));
    }
    Ok(Some(out))
}

/// A run's text metrics for every customer (customer-id order), column by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextMetrics {
    /// The text metrics' names, in the policy's order.
    pub names: Vec<String>,
    pub customers: Vec<String>,
    /// Per metric of `names`, one value per customer of `customers`.
    pub values: Vec<Vec<Option<String>>>,
}

/// Appends a chunk's customers and text columns to `out` (the first chunk sets the names).
pub(crate) fn append_texts(blob: &[u8], out: &mut TextMetrics) -> Result<(), StoreError> {
    let ipc = zstd::stream::decode_all(blob).map_err(corrupt)?;
    let reader = StreamReader::try_new(&ipc[..], None).map_err(corrupt)?;
    for batch in reader {
        let batch = batch.map_err(corrupt)?;
        let schema = batch.schema();
        let texts: Vec<usize> = (1..batch.num_columns())
            .filter(|&i| schema.field(i).data_type() == &DataType::Utf8)
            .collect();
        if out.customers.is_empty() && out.names.is_empty() {
            out.names = texts
                .iter()
                .map(|&i| schema.field(i).name().clone())
                .collect();
            out.values = vec![Vec::new(); texts.len()];
        }
        let ids = batch
            .column(0)
            .as_string_opt::<i32>()
            .ok_or_else(|| corrupt("no customer_id column"))?;
        out.customers
            .extend((0..ids.len()).map(|i| ids.value(i).to_string()));
        for &i in &texts {
            let name = schema.field(i).name();
            let Some(at) = out.names.iter().position(|n| n == name) else {
                return Err(corrupt(format!("chunks disagree on text metric {name}")));
            };
            let column = batch.column(i).as_string::<i32>();
            out.values[at].extend(
                (0..column.len())
                    .map(|r| (!column.is_null(r)).then(|| column.value(r).to_string())),
            );
        }
    }
    Ok(())
}
