//! Evaluating rules: [`RuleKind::Threshold`] rules over labelled samples
//! from a [`MetricSource`] (in the manner of Prometheus alerting rules), and
//! [`RuleKind::Sla`] rules over items with deadlines from a
//! [`DeadlineSource`]. Alerts are raised, escalated and resolved through
//! the engine; a job calls [`RuleEvaluator::evaluate`] on a schedule.
//!
//! # Threshold conditions
//! ```json
//! {
//!   "metric": "open_items",          // asked of the MetricSource
//!   "op": ">",                       // >, >=, <, <=, ==, !=
//!   "value": 10,
//!   "labels": {"team": "support"},   // only samples with these labels (optional)
//!   "for_evaluations": 3,            // consecutive breaches before firing (default 1)
//!   "audience": ["user:{assignee}", "group:managers"]  // optional; labels fill {placeholders}
//! }
//! ```
//! One alert per rule and label set (dedup key `rule:{rule id}:{labels}`),
//! from the rule's template: `{label}`, `{value}` and `{threshold}` in its
//! title and message are filled in. The rule's `for_secs` adds a minimum
//! breach duration; `cooldown_secs` spaces raises of a firing label set.
//! While it stays breached it stays one alert; when the label set clears
//! (or disappears), the alert is resolved.
//!
//! # SLA conditions
//! ```json
//! { "at_risk_secs": 3600, "audience": ["user:{assignee}", "group:managers"] }
//! ```
//! For each open item: within `at_risk_secs` (default 1 h) of its deadline,
//! a **high** alert "SLA at risk: {title}"; past it, the same alert escalated
//! in place to **critical** "SLA breached: {title}" (dedup key
//! `sla:{rule id}:{item id}`). Closed items, and items no longer near their
//! deadline, have it resolved. The audience defaults to the assignee.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alert::NewAlert;
use crate::audience::{Audience, Target};
use crate::engine::AlertKit;
use crate::error::{Error, Result};
use crate::principal::Principal;
use crate::rule::{AlertRule, RuleKind};
use crate::severity::Severity;

/// One labelled value of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Its labels (`assignee`, `series`, …).
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// A sample of `value` with `labels`.
    pub fn new<K: Into<String>, V: Into<String>>(
        labels: impl IntoIterator<Item = (K, V)>,
        value: f64,
    ) -> Self {
        Sample {
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            value,
        }
    }
}

/// Where threshold rules read their metrics.
#[async_trait]
pub trait MetricSource: Send + Sync + 'static {
    /// The current samples of `metric` (empty for an unknown metric).
    async fn samples(&self, metric: &str) -> Result<Vec<Sample>>;
}

/// An item with a deadline, for SLA rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadlineItem {
    /// Stable id (a ticket number).
    pub id: String,
    /// What it is, for the alert's title.
    pub title: String,
    /// When it must be closed.
    pub deadline: DateTime<Utc>,
    /// Who works on it.
    pub assignee: Option<String>,
    /// Whether it is closed.
    pub closed: bool,
}

/// Where SLA rules read their items: the open ones, and those closed
/// recently enough that their alerts still need resolving.
#[async_trait]
pub trait DeadlineSource: Send + Sync + 'static {
    /// The items to check.
    async fn items(&self) -> Result<Vec<DeadlineItem>>;
}

/// A comparison of a sample with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

impl Comparison {
    /// Whether `value op threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
            Comparison::Eq => value == threshold,
            Comparison::Ne => value != threshold,
        }
    }
}

/// The conditions of a threshold rule (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConditions {
    /// The metric.
    pub metric: String,
    /// The comparison.
    pub op: Comparison,
    /// The threshold.
    pub value: f64,
    /// Only samples carrying these labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Consecutive breaching evaluations before the alert fires (default 1).
    #[serde(default = "one", deserialize_with = "crate::whole::u32")]
    pub for_evaluations: u32,
    /// Audience templates (`user:{assignee}`); the rule template's audience
    /// when empty.
    #[serde(default)]
    pub audience: Vec<String>,
}

/// The conditions of an SLA rule (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaConditions {
    /// How long before the deadline an item is at risk (default 3600 s).
    #[serde(default = "hour", deserialize_with = "crate::whole::u64")]
    pub at_risk_secs: u64,
    /// Audience templates (`user:{assignee}`, `group:managers`); the
    /// assignee when empty.
    #[serde(default)]
    pub audience: Vec<String>,
}

fn one() -> u32 {
    1
}

fn hour() -> u64 {
    3600
}

impl ThresholdConditions {
    /// Reads and checks a rule's conditions.
    pub fn of(rule: &AlertRule) -> Result<Self> {
        let c: ThresholdConditions = serde_json::from_value(rule.conditions.clone())
            .map_err(|e| Error::invalid(format!("threshold rule `{}`: {e}", rule.name)))?;
        if c.metric.trim().is_empty() || !c.value.is_finite() {
            return Err(Error::invalid(format!(
                "threshold rule `{}` needs a metric and a finite value",
                rule.name
            )));
        }
        Ok(c)
    }
}

impl SlaConditions {
    /// Reads a rule's conditions.
    pub fn of(rule: &AlertRule) -> Result<Self> {
        serde_json::from_value(rule.conditions.clone())
            .map_err(|e| Error::invalid(format!("SLA rule `{}`: {e}", rule.name)))
    }
}

/// Checks a rule's conditions against the schema of its kind (event rules
/// take any object).
pub fn check_conditions(rule: &AlertRule) -> Result<()> {
    match rule.kind {
        RuleKind::Threshold => ThresholdConditions::of(rule).map(|_| ()),
        RuleKind::Sla => SlaConditions::of(rule).map(|_| ()),
        RuleKind::Event => Ok(()),
    }
}

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Rules evaluated.
    pub rules: usize,
    /// Alerts raised (new, repeated or escalated).
    pub raised: usize,
    /// Alerts resolved.
    pub resolved: usize,
    /// Rules that could not be evaluated, with why.
    pub errors: Vec<String>,
}

#[derive(Debug, Default)]
struct LabelState {
    breaches: u32,
    since: Option<DateTime<Utc>>,
    firing: bool,
    last_raised: Option<DateTime<Utc>>,
}

/// Evaluates the store's enabled threshold and SLA rules; keeps, per rule
/// and label set, how many evaluations in a row breached and whether its
/// alert fires. Cheap to share (`Arc`).
pub struct RuleEvaluator {
    kit: AlertKit,
    metrics: Option<Arc<dyn MetricSource>>,
    deadlines: Option<Arc<dyn DeadlineSource>>,
    state: Mutex<HashMap<(Uuid, String), LabelState>>,
}

impl std::fmt::Debug for RuleEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleEvaluator")
            .field("metrics", &self.metrics.is_some())
            .field("deadlines", &self.deadlines.is_some())
            .finish_non_exhaustive()
    }
}

/// Who raises and resolves rule alerts.
fn rules_principal() -> Principal {
    Principal::admin("rules")
}

/// `a=1,b=2`: a label set as one string.
fn label_key(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Fills `{name}` placeholders from `vars`; unknown ones stay as written.
fn fill(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// The audience from templates; a target whose placeholder stays unfilled
/// (`user:{assignee}` without an assignee) is left out.
fn audience_from(templates: &[String], vars: &BTreeMap<String, String>) -> Result<Audience> {
    let mut targets = Vec::new();
    for t in templates {
        let filled = fill(t, vars);
        if filled.contains('{') {
            continue;
        }
        targets.push(filled.parse::<Target>()?);
    }
    Ok(Audience::from_targets(targets))
}

impl RuleEvaluator {
    /// An evaluator raising through `kit`.
    pub fn new(kit: AlertKit) -> Self {
        RuleEvaluator {
            kit,
            metrics: None,
            deadlines: None,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Threshold rules read `source`.
    pub fn metrics(mut self, source: Arc<dyn MetricSource>) -> Self {
        self.metrics = Some(source);
        self
    }

    /// SLA rules read `source`.
    pub fn deadlines(mut self, source: Arc<dyn DeadlineSource>) -> Self {
        self.deadlines = Some(source);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, String), LabelState>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Evaluates every enabled rule of `kind` once. A rule that fails (bad
    /// conditions, a source error) is reported and the others go on.
    pub async fn evaluate(&self, kind: RuleKind) -> Result<Evaluation> {
        let rules = self.kit.rules(&rules_principal()).await?;
        let mut out = Evaluation::default();
        for rule in rules.iter().filter(|r| r.enabled && r.kind == kind) {
            out.rules += 1;
            let result = match kind {
                RuleKind::Threshold => self.threshold(rule, &mut out).await,
                RuleKind::Sla => self.sla(rule, &mut out).await,
                RuleKind::Event => Ok(()),
            };
            if let Err(e) = result {
                out.errors.push(format!("{}: {e}", rule.name));
            }
        }
        // Forget rules that are gone or disabled.
        let live: HashSet<Uuid> = rules.iter().filter(|r| r.enabled).map(|r| r.id).collect();
        if kind == RuleKind::Threshold {
            self.state().retain(|(id, _), _| live.contains(id));
        }
        Ok(out)
    }

    async fn threshold(&self, rule: &AlertRule, out: &mut Evaluation) -> Result<()> {
        let c = ThresholdConditions::of(rule)?;
        let Some(source) = &self.metrics else {
            return Err(Error::invalid("no metric source is configured"));
        };
        let now = self.kit.now();
        let samples: Vec<Sample> = source
            .samples(&c.metric)
            .await?
            .into_iter()
            .filter(|s| c.labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .collect();
        let mut seen = HashSet::new();
        for sample in &samples {
            let key = label_key(&sample.labels);
            seen.insert(key.clone());
            let breached = c.op.holds(sample.value, c.value);
            let (fire, resolve) = {
                let mut state = self.state();
                let st = state.entry((rule.id, key.clone())).or_default();
                if breached {
                    st.breaches = st.breaches.saturating_add(1);
                    let since = *st.since.get_or_insert(now);
                    let long_enough = (now - since).num_seconds()
                        >= i64::try_from(rule.for_secs).unwrap_or(i64::MAX);
                    let cooled = st.last_raised.is_none_or(|t| {
                        (now - t).num_seconds()
                            >= i64::try_from(rule.cooldown_secs).unwrap_or(i64::MAX)
                    });
                    let fire = st.breaches >= c.for_evaluations.max(1)
                        && long_enough
                        && (!st.firing || cooled);
                    if fire {
                        st.firing = true;
                        st.last_raised = Some(now);
                    }
                    (fire, false)
                } else {
                    let resolve = st.firing;
                    *st = LabelState::default();
                    (false, resolve)
                }
            };
            let dedup = format!("rule:{}:{key}", rule.id);
            if fire {
                let mut vars = sample.labels.clone();
                vars.insert("value".into(), format_number(sample.value));
                vars.insert("threshold".into(), format_number(c.value));
                self.raise(rule, &c.audience, &vars, dedup, sample).await?;
                out.raised += 1;
            } else if resolve {
                out.resolved += self.resolve(&dedup).await?;
            }
        }
        // Label sets that vanished from the metric have cleared.
        let gone: Vec<String> = {
            let mut state = self.state();
            let gone: Vec<String> = state
                .iter()
                .filter(|((id, k), st)| *id == rule.id && !seen.contains(k) && st.firing)
                .map(|((_, k), _)| k.clone())
                .collect();
            state.retain(|(id, k), _| *id != rule.id || seen.contains(k));
            gone
        };
        for key in gone {
            out.resolved += self.resolve(&format!("rule:{}:{key}", rule.id)).await?;
        }
        Ok(())
    }

    async fn raise(
        &self,
        rule: &AlertRule,
        audience: &[String],
        vars: &BTreeMap<String, String>,
        dedup: String,
        sample: &Sample,
    ) -> Result<()> {
        let mut alert: NewAlert = rule.template.clone();
        alert.title = fill(&alert.title, vars);
        alert.message = fill(&alert.message, vars);
        if !audience.is_empty() {
            alert.audience = audience_from(audience, vars)?;
        }
        if let serde_json::Value::Object(m) = &mut alert.metadata {
            m.insert("rule".into(), serde_json::json!(rule.name));
            m.insert("labels".into(), serde_json::json!(sample.labels));
            m.insert("value".into(), serde_json::json!(sample.value));
        }
        alert.dedup_key = Some(dedup);
        self.kit.raise(&rules_principal(), alert).await?;
        Ok(())
    }

    async fn resolve(&self, dedup: &str) -> Result<usize> {
        Ok(self.kit.resolve_key(&rules_principal(), dedup).await?.len())
    }

    async fn sla(&self, rule: &AlertRule, out: &mut Evaluation) -> Result<()> {
        let c = SlaConditions::of(rule)?;
        let Some(source) = &self.deadlines else {
            return Err(Error::invalid("no deadline source is configured"));
        };
        let now = self.kit.now();
        let at_risk = chrono::Duration::seconds(i64::try_from(c.at_risk_secs).unwrap_or(i64::MAX));
        for item in source.items().await? {
            let dedup = format!("sla:{}:{}", rule.id, item.id);
            let left = item.deadline - now;
            let state = if item.closed {
                None
            } else if left <= chrono::Duration::zero() {
                Some((Severity::Critical, "SLA breached"))
            } else if left <= at_risk {
                Some((Severity::High, "SLA at risk"))
            } else {
                None
            };
            let Some((severity, what)) = state else {
                out.resolved += self.resolve(&dedup).await?;
                continue;
            };
            let mut vars = BTreeMap::from([
                ("item".to_owned(), item.id.clone()),
                ("title".to_owned(), item.title.clone()),
                ("deadline".to_owned(), item.deadline.to_rfc3339()),
            ]);
            if let Some(a) = &item.assignee {
                vars.insert("assignee".into(), a.clone());
            }
            let templates = if c.audience.is_empty() {
                vec!["user:{assignee}".to_owned()]
            } else {
                c.audience.clone()
            };
            let mut alert: NewAlert = rule.template.clone();
            alert.severity = severity;
            alert.title = format!("{what}: {}", item.title);
            alert.message = fill(&alert.message, &vars);
            let audience = audience_from(&templates, &vars)?;
            if !audience.targets().is_empty() {
                alert.audience = audience;
            }
            if let serde_json::Value::Object(m) = &mut alert.metadata {
                m.insert("rule".into(), serde_json::json!(rule.name));
                m.insert("item".into(), serde_json::json!(item.id));
                m.insert("deadline".into(), serde_json::json!(item.deadline));
            }
            alert.dedup_key = Some(dedup);
            self.kit.raise(&rules_principal(), alert).await?;
            out.raised += 1;
        }
        Ok(())
    }
}

/// `12` or `12.5`: a value for a title.
fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}
