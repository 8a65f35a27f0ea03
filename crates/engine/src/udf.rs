//! `days_between(start, end)`: whole days from one date (or timestamp) to another, as a
//! float. Payment delay and recency are the most common metrics in tiering and plain SQL date
//! arithmetic differs between engines; one function with one meaning keeps policies portable.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Date32Array, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DaysBetween {
    signature: Signature,
}

impl DaysBetween {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(Self {
            signature: Signature::any(2, Volatility::Immutable),
        })
    }
}

fn as_dates(v: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    let array = v.to_array(rows)?;
    match array.data_type() {
        DataType::Date32 => Ok(array),
        DataType::Date64
        | DataType::Timestamp(_, _)
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Null => Ok(cast(&array, &DataType::Date32)?),
        other => exec_err!("days_between takes dates or timestamps, not {other}"),
    }
}

impl ScalarUDFImpl for DaysBetween {
    fn name(&self) -> &str {
        "days_between"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let start = as_dates(&args.args[0], rows)?;
        let end = as_dates(&args.args[1], rows)?;
        let start = start
            .as_any()
            .downcast_ref::<Date32Array>()
            .expect("cast to Date32");
        let end = end
            .as_any()
            .downcast_ref::<Date32Array>()
            .expect("cast to Date32");
        let out: Float64Array = start
            .iter()
            .zip(end.iter())
            .map(|(s, e)| Some(f64::from(e? - s?)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
