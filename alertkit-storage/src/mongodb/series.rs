//! [`SeriesStore`]: points, settings and predictions, in the collections
//! `series`, `series_points` and `series_predictions` (unique on series and
//! instant; instants in milliseconds).

use super::*;
use alertkit_core::{Point, Prediction, SeriesInfo, SeriesSettings, SeriesStore};
use mongodb::error::ErrorKind;

/// Documents per `insert_many`.
const CHUNK: usize = 10_000;

fn get_f64(d: &Document, key: &str) -> Result<f64> {
    match d.get(key) {
        Some(Bson::Double(v)) => Ok(*v),
        Some(Bson::Int32(v)) => Ok(f64::from(*v)),
        other => Err(corrupt(BACKEND, format!("{key}: {other:?}"))),
    }
}

fn get_opt_f64(d: &Document, key: &str) -> Result<Option<f64>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        _ => get_f64(d, key).map(Some),
    }
}

fn info_from(d: &Document) -> Result<SeriesInfo> {
    Ok(SeriesInfo {
        name: get_str(d, "_id")?,
        capacity: get_opt_f64(d, "capacity")?,
        unit: get_opt_str(d, "unit")?,
        last_at: get_opt_time(d, "last_at")?,
    })
}

fn point_doc(p: &Point) -> Document {
    doc! { "series": &p.series, "at": time_bson(p.at), "value": p.value }
}

fn prediction_doc(p: &Prediction) -> Document {
    doc! {
        "series": &p.series, "at": time_bson(p.at), "value": p.value,
        "lower": p.lower, "upper": p.upper, "made_at": time_bson(p.made_at),
    }
}

fn prediction_from(d: &Document) -> Result<Prediction> {
    Ok(Prediction {
        series: get_str(d, "series")?,
        at: get_time(d, "at")?,
        value: get_f64(d, "value")?,
        lower: get_f64(d, "lower")?,
        upper: get_f64(d, "upper")?,
        made_at: get_time(d, "made_at")?,
    })
}

/// The documents of a series in `[from, to)`, oldest first.
async fn in_range(
    coll: Collection<Document>,
    series: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Document>> {
    collect(
        coll.find(
            doc! { "series": series, "at": { "$gte": time_bson(from), "$lt": time_bson(to) } },
        )
        .sort(doc! { "at": 1 })
        .limit(i64::from(limit))
        .await
        .mongo()?,
    )
    .await
}

impl MongoAlertStore {
    /// Inserts documents unique on (series, at); those already stored are
    /// replaced one by one (a re-upload), so the common case is one insert.
    async fn upsert_by_instant(
        &self,
        coll: Collection<Document>,
        docs: Vec<Document>,
    ) -> Result<u64> {
        let mut written = 0;
        for chunk in docs.chunks(CHUNK) {
            let dups: Vec<usize> = match coll.insert_many(chunk.iter()).ordered(false).await {
                Ok(r) => {
                    written += r.inserted_ids.len() as u64;
                    continue;
                }
                Err(e) => {
                    let ErrorKind::InsertMany(m) = e.kind.as_ref() else {
                        return Err(error::map_err(e));
                    };
                    if m.write_concern_error.is_some() {
                        return Err(error::map_err(e));
                    }
                    let mut dups = Vec::new();
                    for w in m.write_errors.iter().flatten() {
                        if w.code != DUPLICATE_KEY {
                            return Err(error::map_err(e));
                        }
                        dups.push(w.index);
                    }
                    written += (chunk.len() - dups.len()) as u64;
                    dups
                }
            };
            for i in dups {
                let Some(d) = chunk.get(i) else {
                    continue;
                };
                let key = doc! { "series": d.get("series"), "at": d.get("at") };
                coll.replace_one(key, d).await.mongo()?;
                written += 1;
            }
        }
        Ok(written)
    }
}

#[async_trait]
impl SeriesStore for MongoAlertStore {
    async fn put_points(&self, points: &[Point]) -> Result<u64> {
        if points.is_empty() {
            return Ok(0);
        }
        let written = self
            .upsert_by_instant(self.points_coll(), points.iter().map(point_doc).collect())
            .await?;
        let mut newest: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for p in points {
            let e = newest.entry(p.series.as_str()).or_insert(p.at);
            *e = (*e).max(p.at);
        }
        for (name, at) in newest {
            self.series_coll()
                .update_one(
                    doc! { "_id": name },
                    doc! { "$max": { "last_at": time_bson(at) } },
                )
                .upsert(true)
                .await
                .mongo()?;
        }
        Ok(written)
    }

    async fn points(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Point>> {
        in_range(self.points_coll(), series, from, to, limit)
            .await?
            .iter()
            .map(|d| {
                Ok(Point {
                    series: get_str(d, "series")?,
                    at: get_time(d, "at")?,
                    value: get_f64(d, "value")?,
                })
            })
            .collect()
    }

    async fn put_series(&self, name: &str, settings: &SeriesSettings) -> Result<SeriesInfo> {
        let set = doc! {
            "capacity": settings.capacity.map_or(Bson::Null, Bson::Double),
            "unit": settings.unit.as_deref().map_or(Bson::Null, |u| Bson::String(u.into())),
        };
        self.series_coll()
            .update_one(doc! { "_id": name }, doc! { "$set": set })
            .upsert(true)
            .await
            .mongo()?;
        let d = self
            .series_coll()
            .find_one(doc! { "_id": name })
            .await
            .mongo()?
            .ok_or_else(|| corrupt(BACKEND, format!("series {name} vanished")))?;
        info_from(&d)
    }

    async fn series(&self) -> Result<Vec<SeriesInfo>> {
        collect(
            self.series_coll()
                .find(doc! {})
                .sort(doc! { "_id": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(info_from)
        .collect()
    }

    async fn put_predictions(&self, predictions: &[Prediction]) -> Result<u64> {
        if predictions.is_empty() {
            return Ok(0);
        }
        self.upsert_by_instant(
            self.predictions_coll(),
            predictions.iter().map(prediction_doc).collect(),
        )
        .await
    }

    async fn predictions(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Prediction>> {
        in_range(self.predictions_coll(), series, from, to, limit)
            .await?
            .iter()
            .map(prediction_from)
            .collect()
    }

    async fn purge_series(&self, before: DateTime<Utc>, batch: u32) -> Result<u64> {
        let mut gone = 0;
        for coll in [self.points_coll(), self.predictions_coll()] {
            let left = u64::from(batch).saturating_sub(gone);
            if left == 0 {
                break;
            }
            let ids: Vec<Bson> = collect(
                coll.find(doc! { "at": { "$lt": time_bson(before) } })
                    .projection(doc! { "_id": 1 })
                    .limit(i64::try_from(left).unwrap_or(i64::MAX))
                    .await
                    .mongo()?,
            )
            .await?
            .into_iter()
            .filter_map(|mut d| d.remove("_id"))
            .collect();
            if ids.is_empty() {
                continue;
            }
            gone += coll
                .delete_many(doc! { "_id": { "$in": ids } })
                .await
                .mongo()?
                .deleted_count;
        }
        Ok(gone)
    }
}
