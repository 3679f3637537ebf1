//! Parquet uploads (feature `parquet`): columns `timestamp` (a timestamp
//! of any unit, epoch seconds as an integer, or RFC 3339 text), `series`
//! (text) and `value` (a number), read in batches off the spooled file.
//! Errors name the 1-based data row.

use std::path::Path;

use alertkit::Point;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::upload::{Row, parse_time};

/// Rows per batch read.
const BATCH: usize = 8_192;

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, String> {
    batch.column_by_name(name).ok_or_else(|| {
        format!("the file must have the columns timestamp, series and value; {name} is missing")
    })
}

fn time_at(col: &ArrayRef, i: usize) -> Result<DateTime<Utc>, String> {
    if col.is_null(i) {
        return Err("timestamp is missing".into());
    }
    let out = match col.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            DateTime::from_timestamp(col.as_primitive::<TimestampSecondType>().value(i), 0)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            DateTime::from_timestamp_millis(col.as_primitive::<TimestampMillisecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            DateTime::from_timestamp_micros(col.as_primitive::<TimestampMicrosecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(DateTime::from_timestamp_nanos(
            col.as_primitive::<TimestampNanosecondType>().value(i),
        )),
        DataType::Int64 => {
            return parse_time(&col.as_primitive::<Int64Type>().value(i).to_string());
        }
        DataType::Utf8 => return parse_time(col.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => return parse_time(col.as_string::<i64>().value(i)),
        other => {
            return Err(format!(
                "timestamp has the type {other}; use a timestamp, an integer or text"
            ));
        }
    };
    out.ok_or_else(|| "timestamp is out of range".into())
}

fn text_at(col: &ArrayRef, i: usize) -> Result<String, String> {
    if col.is_null(i) {
        return Err("series is missing".into());
    }
    match col.data_type() {
        DataType::Utf8 => Ok(col.as_string::<i32>().value(i).to_owned()),
        DataType::LargeUtf8 => Ok(col.as_string::<i64>().value(i).to_owned()),
        other => Err(format!("series has the type {other}; use text")),
    }
}

fn value_at(col: &ArrayRef, i: usize) -> Result<f64, String> {
    if col.is_null(i) {
        return Err("value is missing".into());
    }
    match col.data_type() {
        DataType::Float64 => Ok(col.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => Ok(f64::from(col.as_primitive::<Float32Type>().value(i))),
        DataType::Int64 => Ok(col.as_primitive::<Int64Type>().value(i) as f64),
        DataType::Int32 => Ok(f64::from(col.as_primitive::<Int32Type>().value(i))),
        other => Err(format!("value has the type {other}; use a number")),
    }
}

/// Reads the file batch by batch, handing each batch's rows to `each`
/// (which returns `false` to stop). A file that is not Parquet, or lacks a
/// column, is one error at row 0.
pub fn read(path: &Path, mut each: impl FnMut(Vec<Row>) -> bool) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("not a readable Parquet file: {e}"))?
        .with_batch_size(BATCH)
        .build()
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let mut row = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| format!("reading row group after row {row}: {e}"))?;
        let (ts, series, value) = (
            column(&batch, "timestamp")?,
            column(&batch, "series")?,
            column(&batch, "value")?,
        );
        let rows: Vec<Row> = (0..batch.num_rows())
            .map(|i| {
                let n = row + i as u64 + 1;
                let point = (|| {
                    let p = Point {
                        at: time_at(ts, i)?,
                        series: text_at(series, i)?,
                        value: value_at(value, i)?,
                    };
                    p.validate().map_err(|e| e.to_string())?;
                    Ok(p)
                })();
                point.map_err(|m: String| (n, m))
            })
            .collect();
        row += batch.num_rows() as u64;
        if !each(rows) {
            break;
        }
    }
    Ok(())
}
