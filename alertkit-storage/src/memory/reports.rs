//! [`ReportStore`]: report records and the aggregates they are made of.

use super::*;
use alertkit_core::report::CountAccumulator;
use alertkit_core::{AlertCount, DeliveryCount, Report, ReportStatus, ReportStore};

#[async_trait]
impl ReportStore for MemoryAlertStore {
    async fn create_report(&self, report: &Report) -> Result<()> {
        let mut s = self.write();
        if s.reports.contains_key(&report.id) {
            return Err(Error::Conflict(format!("report {} exists", report.id)));
        }
        s.reports.insert(report.id, report.clone());
        Ok(())
    }

    async fn report(&self, id: Uuid) -> Result<Report> {
        self.read()
            .reports
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("report {id}")))
    }

    async fn claim_reports(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Report>> {
        let mut s = self.write();
        let mut due: Vec<(DateTime<Utc>, Uuid)> = s
            .reports
            .values()
            .filter(|r| !r.status.is_final() && r.due_at <= now)
            .map(|r| (r.due_at, r.id))
            .collect();
        due.sort();
        let mut out = Vec::new();
        for (_, id) in due.into_iter().take(limit as usize) {
            if let Some(r) = s.reports.get_mut(&id) {
                r.status = ReportStatus::Running;
                r.attempts += 1;
                r.due_at = lease_until;
                r.updated_at = now;
                out.push(r.clone());
            }
        }
        Ok(out)
    }

    async fn update_report(&self, report: &Report) -> Result<()> {
        let mut s = self.write();
        let stored = s
            .reports
            .get_mut(&report.id)
            .ok_or_else(|| Error::not_found(format!("report {}", report.id)))?;
        if stored.status != ReportStatus::Running || stored.attempts != report.attempts {
            return Err(Error::Conflict(format!(
                "report {} is no longer on attempt {}",
                report.id, report.attempts
            )));
        }
        *stored = report.clone();
        Ok(())
    }

    async fn purge_reports(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>> {
        let mut s = self.write();
        let gone: Vec<Uuid> = s
            .reports
            .values()
            .filter(|r| r.status.is_final() && r.updated_at < before)
            .map(|r| r.id)
            .take(limit as usize)
            .collect();
        for id in &gone {
            s.reports.remove(id);
        }
        Ok(gone)
    }

    async fn alert_counts(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertCount>> {
        let mut acc = CountAccumulator::default();
        for (a, _) in self.read().matching(viewer, filter, now, None) {
            acc.add(
                a.created_at,
                &a.alert_type,
                a.severity,
                &a.tags,
                u64::from(a.occurrences),
            );
        }
        Ok(acc.finish())
    }

    async fn delivery_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DeliveryCount>> {
        let mut groups: BTreeMap<(Channel, &'static str), (DeliveryStatus, u64, u64)> =
            BTreeMap::new();
        let s = self.read();
        for d in s
            .deliveries
            .values()
            .filter(|d| d.created_at > from && d.created_at <= to)
        {
            let e = groups
                .entry((d.channel, d.status.as_str()))
                .or_insert((d.status, 0, 0));
            e.1 += 1;
            e.2 += u64::from(d.attempts);
        }
        Ok(groups
            .into_iter()
            .map(
                |((channel, _), (status, deliveries, attempts))| DeliveryCount {
                    channel,
                    status,
                    deliveries,
                    attempts,
                },
            )
            .collect())
    }
}
