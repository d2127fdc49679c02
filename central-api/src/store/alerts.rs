//! Alert rules, the state of each (rule, subject), the history of raised and cleared alerts and their deliveries.
//!
//! A raise and a clear are each one transaction that changes the state row only if it is still what the evaluator
//! saw (`raised_at IS NULL` to raise, the row's presence to clear), so when several replicas evaluate at once only
//! one of them records the event and queues its notifications. The rule's row is locked first (a no-op update), so
//! replicas count the rule's recent raises for the rate limit one after the other.
//!
//! Deliveries are claimed like tracked jobs: pending and due, or sending with an expired claim (the replica died
//! mid-send); PostgreSQL skips rows another replica is claiming.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{on_pool, on_reader, on_tx, Store, StoreError};
use crate::alerts::rules::{AlertRule, RuleKind, RuleSettings};

const RULE_COLUMNS: &str = "id, site_id, kind, for_secs, threshold, buffer_limit, webhook_url, webhook_secret, \
     email_to, max_per_hour, enabled, created_by, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    site_id: String,
    kind: String,
    for_secs: i64,
    threshold: Option<f64>,
    buffer_limit: Option<i64>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    email_to: Option<String>,
    max_per_hour: i64,
    enabled: bool,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl RuleRow {
    fn into_rule(self) -> Result<AlertRule, StoreError> {
        let kind =
            RuleKind::parse(&self.kind).map_err(|m| StoreError::Invalid(format!("alert rule {}: {m}", self.id)))?;
        Ok(AlertRule {
            id: self.id,
            site_id: self.site_id,
            kind,
            #[allow(clippy::cast_precision_loss)]
            for_minutes: self.for_secs as f64 / 60.0,
            threshold: self.threshold,
            buffer_limit: self.buffer_limit,
            webhook_url: self.webhook_url,
            webhook_secret: self.webhook_secret,
            email_to: self
                .email_to
                .map(|e| e.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            max_per_hour: self.max_per_hour,
            enabled: self.enabled,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn rules(rows: Vec<RuleRow>) -> Result<Vec<AlertRule>, StoreError> {
    rows.into_iter().map(RuleRow::into_rule).collect()
}

fn email_column(list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| list.join(","))
}

/// The state of a (rule, subject) whose condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    pub subject: String,
    pub condition_since: DateTime<Utc>,
    pub raised_at: Option<DateTime<Utc>>,
}

/// An alert whose condition holds now, raised or waiting for its rule's time.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OpenAlert {
    pub rule_id: i64,
    pub site_id: String,
    pub kind: RuleKind,
    /// `device:<serial>` or `agent:<id>`.
    pub subject: String,
    pub condition_since: DateTime<Utc>,
    /// `None`: the condition has not held for the rule's time yet.
    pub raised_at: Option<DateTime<Utc>>,
    pub message: String,
}

/// A delivery as listed with its event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    /// `webhook` or `email`.
    pub channel: String,
    pub target: String,
    /// `pending`, `sending`, `sent` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A raise or clear, with its deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertEvent {
    pub id: i64,
    pub rule_id: i64,
    pub site_id: String,
    pub kind: String,
    pub subject: String,
    /// `raised` or `cleared`.
    pub event: String,
    pub message: String,
    /// Since when the condition held.
    pub since: DateTime<Utc>,
    pub at: DateTime<Utc>,
    /// Over the rule's rate limit (or the clear of such a raise): recorded, not sent.
    pub suppressed: bool,
    pub deliveries: Vec<DeliveryView>,
}

/// A delivery claimed for sending, with what the notification says.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub channel: String,
    pub target: String,
    pub attempts: i32,
    pub event: AlertEvent,
    /// The rule's webhook secret (`None`: the rule was deleted, or has none).
    pub secret: Option<String>,
}

/// How sending a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent,
    /// Try again at the given time.
    Retry(String, DateTime<Utc>),
    Failed(String),
}

/// condition_since, raised_at, raised_event_id, message of a state being cleared.
type ClearedState = (DateTime<Utc>, Option<DateTime<Utc>>, Option<i64>, String);
type EventRow = (i64, i64, String, String, String, String, String, DateTime<Utc>, DateTime<Utc>, bool);
const EVENT_COLUMNS: &str = "id, rule_id, site_id, kind, subject, event, message, since, at, suppressed";

fn event_of(row: EventRow) -> AlertEvent {
    let (id, rule_id, site_id, kind, subject, event, message, since, at, suppressed) = row;
    AlertEvent { id, rule_id, site_id, kind, subject, event, message, since, at, suppressed, deliveries: vec![] }
}

/// Inserts an event and, unless suppressed, one pending delivery per channel of the rule; evaluates to its id.
macro_rules! insert_event {
    ($conn:expr, $rule:expr, $subject:expr, $event:expr, $message:expr, $since:expr, $now:expr, $suppressed:expr) => {{
        let rule: &AlertRule = $rule;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO alert_events (rule_id, site_id, kind, subject, event, message, since, at, suppressed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(rule.id)
        .bind(&rule.site_id)
        .bind(rule.kind.as_str())
        .bind($subject)
        .bind($event)
        .bind($message)
        .bind($since)
        .bind($now)
        .bind($suppressed)
        .fetch_one(&mut *$conn)
        .await?;
        if !$suppressed {
            let mut targets: Vec<(&str, String)> = Vec::new();
            if let Some(url) = &rule.webhook_url {
                targets.push(("webhook", url.clone()));
            }
            if !rule.email_to.is_empty() {
                targets.push(("email", rule.email_to.join(",")));
            }
            for (channel, target) in targets {
                sqlx::query(
                    "INSERT INTO alert_deliveries (event_id, channel, target, state, attempts, next_attempt_at) \
                     VALUES ($1, $2, $3, 'pending', 0, $4)",
                )
                .bind(id)
                .bind(channel)
                .bind(target)
                .bind($now)
                .execute(&mut *$conn)
                .await?;
            }
        }
        id
    }};
}

impl Store {
    /// Stores a new rule.
    ///
    /// # Errors
    /// [`StoreError::Database`] (a site that does not exist is a foreign key violation).
    pub async fn create_alert_rule(
        &self,
        site: &str,
        kind: RuleKind,
        settings: &RuleSettings,
        created_by: &str,
    ) -> Result<AlertRule, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO alert_rules (site_id, kind, for_secs, threshold, buffer_limit, webhook_url, webhook_secret, \
             email_to, max_per_hour, enabled, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING {RULE_COLUMNS}"
        );
        let row: RuleRow = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(site)
            .bind(kind.as_str())
            .bind(crate::alerts::rules::minutes_to_secs(settings.for_minutes))
            .bind(settings.threshold)
            .bind(settings.buffer_limit)
            .bind(&settings.webhook_url)
            .bind(&settings.webhook_secret)
            .bind(email_column(&settings.email_to))
            .bind(settings.max_per_hour)
            .bind(settings.enabled)
            .bind(created_by)
            .bind(now)
            .fetch_one(pool)
            .await)?;
        row.into_rule()
    }

    /// Replaces a rule's settings; a rule switched off forgets its open alerts (without notifying).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Database`].
    pub async fn update_alert_rule(&self, id: i64, settings: &RuleSettings) -> Result<AlertRule, StoreError> {
        let sql = format!(
            "UPDATE alert_rules SET for_secs = $2, threshold = $3, buffer_limit = $4, webhook_url = $5, \
             webhook_secret = $6, email_to = $7, max_per_hour = $8, enabled = $9, updated_at = $10 \
             WHERE id = $1 RETURNING {RULE_COLUMNS}"
        );
        let row: Option<RuleRow> = on_pool!(self, |pool| {
            let row = sqlx::query_as(&sql)
                .bind(id)
                .bind(crate::alerts::rules::minutes_to_secs(settings.for_minutes))
                .bind(settings.threshold)
                .bind(settings.buffer_limit)
                .bind(&settings.webhook_url)
                .bind(&settings.webhook_secret)
                .bind(email_column(&settings.email_to))
                .bind(settings.max_per_hour)
                .bind(settings.enabled)
                .bind(Utc::now())
                .fetch_optional(pool)
                .await?;
            if !settings.enabled {
                sqlx::query("DELETE FROM alert_states WHERE rule_id = $1").bind(id).execute(pool).await?;
            }
            Ok::<_, sqlx::Error>(row)
        })?;
        row.ok_or_else(|| StoreError::NotFound { what: "alert rule", id: id.to_string() })?.into_rule()
    }

    /// Deletes a rule and its open alerts; its history stays.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn delete_alert_rule(&self, id: i64) -> Result<bool, StoreError> {
        let done = on_pool!(self, |pool| sqlx::query("DELETE FROM alert_rules WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// One rule, whatever its site (callers check the caller's scope on its `site_id`).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn alert_rule(&self, id: i64) -> Result<Option<AlertRule>, StoreError> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = $1");
        let row: Option<RuleRow> = on_reader!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.map(RuleRow::into_rule).transpose()
    }

    /// Rules in scope (`None`: every site), optionally of one site, by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn alert_rules(&self, scope: Option<&str>, site: Option<&str>) -> Result<Vec<AlertRule>, StoreError> {
        let sql = format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules \
             WHERE ($1 IS NULL OR site_id IN (SELECT site_id FROM admin_sites WHERE username = $1)) \
             AND ($2 IS NULL OR site_id = $2) ORDER BY id"
        );
        let rows: Vec<RuleRow> =
            on_reader!(self, |pool| sqlx::query_as(&sql).bind(scope).bind(site).fetch_all(pool).await)?;
        rules(rows)
    }

    /// Every enabled rule (the evaluator's).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn enabled_alert_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE enabled = TRUE ORDER BY id");
        let rows: Vec<RuleRow> = on_reader!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        rules(rows)
    }

    /// The states of one rule.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn alert_states(&self, rule_id: i64) -> Result<Vec<AlertState>, StoreError> {
        let rows: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT subject, condition_since, raised_at FROM alert_states WHERE rule_id = $1"
        )
        .bind(rule_id)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(subject, condition_since, raised_at)| AlertState { subject, condition_since, raised_at })
            .collect())
    }

    /// Records that `subject` meets `rule_id`'s condition since `since` (nothing when already recorded).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn open_alert_state(
        &self,
        rule_id: i64,
        subject: &str,
        since: DateTime<Utc>,
        message: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO alert_states (rule_id, subject, condition_since, message) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (rule_id, subject) DO NOTHING"
        )
        .bind(rule_id)
        .bind(subject)
        .bind(since)
        .bind(message)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Raises the alert of (`rule`, `subject`) if its state is still waiting: records the event (suppressed when
    /// the rule already notified `max_per_hour` raises in the last hour) and queues its deliveries. Returns the
    /// event's id when this call raised it.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn raise_alert(
        &self,
        rule: &AlertRule,
        subject: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin().await?;
        let raised = on_tx!(&mut tx, |conn| {
            // Lock the rule: replicas raising for it count its recent raises one at a time.
            sqlx::query("UPDATE alert_rules SET id = id WHERE id = $1").bind(rule.id).execute(&mut *conn).await?;
            let state: Option<(DateTime<Utc>,)> = sqlx::query_as(
                "UPDATE alert_states SET raised_at = $3, message = $4 \
                 WHERE rule_id = $1 AND subject = $2 AND raised_at IS NULL RETURNING condition_since",
            )
            .bind(rule.id)
            .bind(subject)
            .bind(now)
            .bind(message)
            .fetch_optional(&mut *conn)
            .await?;
            match state {
                None => None,
                Some((since,)) => {
                    let (recent,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM alert_events WHERE rule_id = $1 AND event = 'raised' \
                         AND suppressed = FALSE AND at > $2",
                    )
                    .bind(rule.id)
                    .bind(now - Duration::hours(1))
                    .fetch_one(&mut *conn)
                    .await?;
                    let suppressed = recent >= rule.max_per_hour;
                    let id = insert_event!(conn, rule, subject, "raised", message, since, now, suppressed);
                    sqlx::query("UPDATE alert_states SET raised_event_id = $3 WHERE rule_id = $1 AND subject = $2")
                        .bind(rule.id)
                        .bind(subject)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    Some(id)
                }
            }
        });
        tx.commit().await?;
        Ok(raised)
    }

    /// Forgets the state of (`rule`, `subject`), whose condition no longer holds; when it was raised, records the
    /// clear and queues its deliveries (unless the raise was suppressed). Returns the clear event's id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn clear_alert(
        &self,
        rule: &AlertRule,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin().await?;
        let cleared = on_tx!(&mut tx, |conn| {
            let state: Option<ClearedState> = sqlx::query_as(
                "DELETE FROM alert_states WHERE rule_id = $1 AND subject = $2 \
                 RETURNING condition_since, raised_at, raised_event_id, message",
            )
            .bind(rule.id)
            .bind(subject)
            .fetch_optional(&mut *conn)
            .await?;
            match state {
                Some((since, Some(_), raised_event, message)) => {
                    let suppressed: Option<(bool,)> =
                        sqlx::query_as("SELECT suppressed FROM alert_events WHERE id = $1")
                            .bind(raised_event)
                            .fetch_optional(&mut *conn)
                            .await?;
                    let suppressed = suppressed.is_some_and(|(s,)| s);
                    let message = format!("cleared: {message}");
                    Some(insert_event!(conn, rule, subject, "cleared", &message, since, now, suppressed))
                }
                _ => None,
            }
        });
        tx.commit().await?;
        Ok(cleared)
    }

    /// Alerts whose condition holds, in scope, optionally of one site.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn open_alerts(&self, scope: Option<&str>, site: Option<&str>) -> Result<Vec<OpenAlert>, StoreError> {
        type Row = (i64, String, String, String, DateTime<Utc>, Option<DateTime<Utc>>, String);
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT r.id, r.site_id, r.kind, s.subject, s.condition_since, s.raised_at, s.message \
             FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id \
             WHERE ($1 IS NULL OR r.site_id IN (SELECT site_id FROM admin_sites WHERE username = $1)) \
             AND ($2 IS NULL OR r.site_id = $2) ORDER BY r.id, s.subject"
        )
        .bind(scope)
        .bind(site)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(rule_id, site_id, kind, subject, condition_since, raised_at, message)| {
                Ok(OpenAlert {
                    rule_id,
                    site_id,
                    kind: RuleKind::parse(&kind).map_err(StoreError::Invalid)?,
                    subject,
                    condition_since,
                    raised_at,
                    message,
                })
            })
            .collect()
    }

    /// Raises and clears in scope, newest first, ids below `before`, with their deliveries.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn alert_events(
        &self,
        scope: Option<&str>,
        site: Option<&str>,
        rule: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AlertEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM alert_events \
             WHERE ($1 IS NULL OR site_id IN (SELECT site_id FROM admin_sites WHERE username = $1)) \
             AND ($2 IS NULL OR site_id = $2) AND ($3 IS NULL OR rule_id = $3) AND id < $4 ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<EventRow> = on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(scope)
            .bind(site)
            .bind(rule)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        let mut events: Vec<AlertEvent> = rows.into_iter().map(event_of).collect();
        for event in &mut events {
            event.deliveries = self.deliveries_of(event.id).await?;
        }
        Ok(events)
    }

    async fn deliveries_of(&self, event_id: i64) -> Result<Vec<DeliveryView>, StoreError> {
        type Row = (i64, String, String, String, i32, Option<String>, Option<DateTime<Utc>>);
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT id, channel, target, state, attempts, last_error, sent_at FROM alert_deliveries \
             WHERE event_id = $1 ORDER BY id"
        )
        .bind(event_id)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, channel, target, state, attempts, last_error, sent_at)| DeliveryView {
                id,
                channel,
                target,
                state,
                attempts: i64::from(attempts),
                last_error,
                sent_at,
            })
            .collect())
    }

    /// Claims up to `limit` deliveries that are due (or whose claim expired) until `now + lease`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let lock = match self {
            Self::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Self::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE alert_deliveries SET state = 'sending', attempts = attempts + 1, claimed_until = $2 \
             WHERE id IN (SELECT id FROM alert_deliveries WHERE (state = 'pending' AND next_attempt_at <= $1) \
             OR (state = 'sending' AND claimed_until < $1) ORDER BY id LIMIT $3{lock}) \
             RETURNING id, event_id, channel, target, attempts"
        );
        let claimed: Vec<(i64, i64, String, String, i32)> =
            on_pool!(self, |pool| sqlx::query_as(&sql).bind(now).bind(now + lease).bind(limit).fetch_all(pool).await)?;
        let mut out = Vec::with_capacity(claimed.len());
        for (id, event_id, channel, target, attempts) in claimed {
            let sql = format!(
                "SELECT {}, r.webhook_secret FROM alert_events e LEFT JOIN alert_rules r ON r.id = e.rule_id \
                 WHERE e.id = $1",
                EVENT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ")
            );
            type Row =
                (i64, i64, String, String, String, String, String, DateTime<Utc>, DateTime<Utc>, bool, Option<String>);
            let row: Row = on_pool!(self, |pool| sqlx::query_as(&sql).bind(event_id).fetch_one(pool).await)?;
            let (eid, rule_id, site_id, kind, subject, event, message, since, at, suppressed, secret) = row;
            out.push(ClaimedDelivery {
                id,
                channel,
                target,
                attempts,
                event: event_of((eid, rule_id, site_id, kind, subject, event, message, since, at, suppressed)),
                secret,
            });
        }
        Ok(out)
    }

    /// Records how sending delivery `id` (claimed for attempt `attempts`) went; nothing when another replica took
    /// it over meanwhile.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn finish_delivery(
        &self,
        id: i64,
        attempts: i32,
        outcome: &DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (state, error, next, sent_at) = match outcome {
            DeliveryOutcome::Sent => ("sent", None, now, Some(now)),
            DeliveryOutcome::Retry(e, at) => ("pending", Some(e.as_str()), *at, None),
            DeliveryOutcome::Failed(e) => ("failed", Some(e.as_str()), now, None),
        };
        on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE alert_deliveries SET state = $3, last_error = COALESCE($4, last_error), next_attempt_at = $5, sent_at = $6, \
             claimed_until = NULL WHERE id = $1 AND attempts = $2 AND state = 'sending'"
        )
        .bind(id)
        .bind(attempts)
        .bind(state)
        .bind(error)
        .bind(next)
        .bind(sent_at)
        .execute(pool)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }
}
