//! `POST /api/forecast/upload`: actuals as CSV (`timestamp,series,value`,
//! with that header, columns in any order; RFC 3339 or epoch seconds), or
//! Parquet with those columns (feature `parquet`; see `parquet.rs`).
//!
//! The body is streamed to a temporary file (never held in memory) up to
//! the size limit, checked row by row, and written only if every row is
//! good: a file with bad rows changes nothing and gets 422 with the first
//! 100 errors by line number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alertkit::{Point, SeriesStore};
use axum::body::Body;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

/// Errors listed in a 422 answer, at most.
pub const MAX_ERRORS: usize = 100;
/// How much of an oversized body is read (and dropped) before the 413.
const DRAIN: u64 = 8 * 1024 * 1024;
/// Points written per store call.
const BATCH: usize = 20_000;

/// A rejected row.
#[derive(Debug, Serialize, PartialEq)]
pub struct RowError {
    /// 1-based line in a CSV file (the header is line 1); 1-based data row
    /// in a Parquet file; 0 for the file as a whole.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

/// What an upload did.
#[derive(Debug, Serialize, Default)]
pub struct Summary {
    /// Data rows read (and, when accepted, written).
    pub rows: u64,
    /// Rows per series.
    pub series: BTreeMap<String, u64>,
    /// The oldest and newest instants.
    pub from: Option<DateTime<Utc>>,
    /// The newest instant.
    pub to: Option<DateTime<Utc>>,
}

/// Why an upload was refused.
#[derive(Debug)]
pub enum Refused {
    /// Over the size limit (413).
    TooLarge(u64),
    /// Bad rows, an empty file or a bad header (422).
    Rows {
        /// Rows read.
        rows: u64,
        /// Rows rejected.
        bad_rows: u64,
        /// The first [`MAX_ERRORS`] of them.
        errors: Vec<RowError>,
    },
    /// The body could not be read, or the store failed.
    Failed(StatusCode, String),
}

/// A temporary file removed when dropped.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Streams `body` to a temporary file, at most `max` bytes.
async fn spool(body: Body, max: u64) -> Result<Spool, Refused> {
    let path = std::env::temp_dir().join(format!(
        "alertkit-upload-{}.csv",
        uuid::Uuid::now_v7().simple()
    ));
    let spool = Spool(path);
    let mut file = tokio::fs::File::create(&spool.0)
        .await
        .map_err(|e| Refused::Failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Refused::Failed(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
        })?;
        size += chunk.len() as u64;
        if size > max {
            // Read on a little (discarding), so a client still sending gets
            // the 413 rather than a closed connection.
            while size <= max + DRAIN
                && let Some(Ok(more)) = stream.next().await
            {
                size += more.len() as u64;
            }
            return Err(Refused::TooLarge(max));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| Refused::Failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    file.flush()
        .await
        .map_err(|e| Refused::Failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(spool)
}

/// Parses a timestamp: RFC 3339, or whole/fractional seconds since the epoch.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() => {
            let ms = (secs * 1000.0).round();
            // Years 1970..=9999.
            if (0.0..=253_402_300_799_000.0).contains(&ms)
                && let Some(t) = DateTime::from_timestamp_millis(ms as i64)
            {
                return Ok(t);
            }
            Err(format!("timestamp {} is out of range", truncate(s)))
        }
        _ => Err(format!(
            "timestamp {:?} is neither RFC 3339 nor seconds since the epoch",
            truncate(s)
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Column positions, from the header.
struct Columns {
    timestamp: usize,
    series: usize,
    value: usize,
}

fn columns(header: &csv_async::StringRecord) -> Result<Columns, String> {
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!("the header must name the columns timestamp, series and value; {name} is missing")
            })
    };
    Ok(Columns {
        timestamp: find("timestamp")?,
        series: find("series")?,
        value: find("value")?,
    })
}

fn point(cols: &Columns, record: &csv_async::StringRecord) -> Result<Point, String> {
    let field = |i: usize, name: &str| {
        record
            .get(i)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{name} is missing"))
    };
    let at = parse_time(field(cols.timestamp, "timestamp")?)?;
    let series = field(cols.series, "series")?.to_owned();
    let raw = field(cols.value, "value")?;
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("value {:?} is not a number", truncate(raw)))?;
    let p = Point { series, at, value };
    p.validate().map_err(|e| e.to_string())?;
    Ok(p)
}

/// One data row: its point, or its (1-based) line and what is wrong.
pub type Row = Result<Point, (u64, String)>;

/// The formats an upload may have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    /// `text/csv`.
    Csv,
    /// `application/vnd.apache.parquet` (feature `parquet`).
    #[cfg(feature = "parquet")]
    Parquet,
}

/// What reading a file found, and the points waiting to be written.
struct Tally<'a> {
    summary: Summary,
    bad: u64,
    errors: Vec<RowError>,
    batch: Vec<Point>,
    store: Option<&'a dyn SeriesStore>,
}

impl Tally<'_> {
    async fn take(&mut self, row: Row) -> Result<(), Refused> {
        self.summary.rows += 1;
        match row {
            Ok(p) => {
                *self.summary.series.entry(p.series.clone()).or_default() += 1;
                self.summary.from = Some(self.summary.from.map_or(p.at, |f| f.min(p.at)));
                self.summary.to = Some(self.summary.to.map_or(p.at, |t| t.max(p.at)));
                if let Some(store) = self.store {
                    self.batch.push(p);
                    if self.batch.len() >= BATCH {
                        write(store, &mut self.batch).await?;
                    }
                }
            }
            Err((line, message)) => {
                self.bad += 1;
                if self.errors.len() < MAX_ERRORS {
                    self.errors.push(RowError { line, message });
                }
            }
        }
        Ok(())
    }
}

/// Reads a spooled CSV file into `tally`.
async fn read_csv(path: &Path, tally: &mut Tally<'_>) -> Result<(), Refused> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Refused::Failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut reader = csv_async::AsyncReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .create_reader(file);
    let header = match reader.headers().await {
        Ok(h) if !h.is_empty() => h.clone(),
        Ok(_) => return Err(empty()),
        Err(e) => return Err(one_error(1, format!("unreadable header: {e}"))),
    };
    let cols = columns(&header).map_err(|m| one_error(1, m))?;
    let mut records = reader.records();
    while let Some(record) = records.next().await {
        let row = match &record {
            Ok(r) => point(&cols, r).map_err(|m| (r.position().map_or(0, |p| p.line()), m)),
            Err(e) => Err((
                e.position().map_or(0, |p| p.line()),
                format!("unreadable row: {e}"),
            )),
        };
        tally.take(row).await?;
    }
    Ok(())
}

/// Reads a spooled Parquet file into `tally`: batches are decoded on a
/// blocking thread and handed over through a short channel.
#[cfg(feature = "parquet")]
async fn read_parquet(path: &Path, tally: &mut Tally<'_>) -> Result<(), Refused> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Row>>(2);
    let path = path.to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        super::parquet::read(&path, |rows| tx.blocking_send(rows).is_ok())
    });
    while let Some(rows) = rx.recv().await {
        for row in rows {
            tally.take(row).await?;
        }
    }
    match reader.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(one_error(0, message)),
        Err(e) => Err(Refused::Failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}

/// Reads the spooled file once; with a store, writes its points.
async fn read(
    path: &Path,
    format: Format,
    store: Option<&dyn SeriesStore>,
) -> Result<(Summary, u64, Vec<RowError>), Refused> {
    let mut tally = Tally {
        summary: Summary::default(),
        bad: 0,
        errors: Vec::new(),
        batch: Vec::with_capacity(BATCH),
        store,
    };
    match format {
        Format::Csv => read_csv(path, &mut tally).await?,
        #[cfg(feature = "parquet")]
        Format::Parquet => read_parquet(path, &mut tally).await?,
    }
    if let Some(store) = store {
        write(store, &mut tally.batch).await?;
    }
    Ok((tally.summary, tally.bad, tally.errors))
}

async fn write(store: &dyn SeriesStore, batch: &mut Vec<Point>) -> Result<(), Refused> {
    if batch.is_empty() {
        return Ok(());
    }
    store
        .put_points(batch)
        .await
        .map_err(|e| Refused::Failed(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    batch.clear();
    Ok(())
}

fn empty() -> Refused {
    one_error(
        1,
        "the file is empty: expected a header timestamp,series,value and rows".into(),
    )
}

fn one_error(line: u64, message: String) -> Refused {
    Refused::Rows {
        rows: 0,
        bad_rows: 0,
        errors: vec![RowError { line, message }],
    }
}

/// Spools, checks and (if every row is good) stores an upload.
pub async fn upload(
    body: Body,
    format: Format,
    max: u64,
    store: &dyn SeriesStore,
) -> Result<Summary, Refused> {
    let spooled = spool(body, max).await?;
    let (summary, bad, errors) = read(&spooled.0, format, None).await?;
    if bad > 0 {
        return Err(Refused::Rows {
            rows: summary.rows,
            bad_rows: bad,
            errors,
        });
    }
    if summary.rows == 0 {
        return Err(empty());
    }
    let (summary, _, _) = read(&spooled.0, format, Some(store)).await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_both_ways() {
        let t = parse_time("2026-11-24T10:00:00Z").unwrap();
        assert_eq!(parse_time("1795514400").unwrap(), t);
        assert_eq!(parse_time("2026-11-24T17:00:00+07:00").unwrap(), t);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("-5").is_err());
        assert!(parse_time("1e30").is_err());
    }
}
