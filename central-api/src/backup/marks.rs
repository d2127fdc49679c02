//! Marking the attendance a restore affects for recomputation, in the restore's transaction.
//!
//! - A restored punch or manual log marks, as ingest does, every day it may belong to
//!   ([`days_a_punch_may_belong_to`](crate::attendance::engine::days_a_punch_may_belong_to)); a leave its days (at
//!   most [`MAX_MARK_DAYS`](crate::store::attendance::MAX_MARK_DAYS)).
//! - A changed employee, shift, week-off rule or site re-marks the computed days (`attendance` rows) of the
//!   employees it concerns; a holiday the computed rows on its date at its site (every site when it has none).
//!
//! A marked day gets a new `marks` (PostgreSQL: the sequence's next value; SQLite: one more), as every admin change
//! does, so a worker that claimed it before the restore does not release it.

use chrono::NaiveDate;

use crate::store::{StoreError, Tx};

/// What a restore changed that computed attendance depends on.
#[derive(Debug, Default)]
pub struct Effects {
    /// (employee, day) pairs waiting to be marked.
    pub pairs: Vec<(String, NaiveDate)>,
    pub employees: Vec<String>,
    pub shifts: Vec<String>,
    pub week_off_rules: Vec<String>,
    pub sites: Vec<String>,
    pub holidays: Vec<(NaiveDate, Option<String>)>,
    /// Employee-days marked so far.
    pub marked: u64,
}

const PG_UPSERT: &str = "ON CONFLICT (employee_id, work_date) DO UPDATE \
                         SET marked_at = excluded.marked_at, marks = excluded.marks";
const SQLITE_UPSERT: &str = "ON CONFLICT (employee_id, work_date) DO UPDATE \
                             SET marked_at = excluded.marked_at, marks = attendance_dirty.marks + 1";

fn json(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

impl Effects {
    /// Marks the pairs collected so far.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn flush_pairs(&mut self, tx: &mut Tx) -> Result<(), StoreError> {
        if self.pairs.is_empty() {
            return Ok(());
        }
        self.pairs.sort_unstable();
        self.pairs.dedup();
        let pairs = std::mem::take(&mut self.pairs);
        let n = match tx {
            Tx::Postgres(t) => {
                let (ids, days): (Vec<String>, Vec<NaiveDate>) = pairs.into_iter().unzip();
                sqlx::query(&format!(
                    "INSERT INTO attendance_dirty (employee_id, work_date) \
                     SELECT e, d FROM UNNEST($1::text[], $2::date[]) AS x(e, d) ORDER BY 1, 2 {PG_UPSERT}"
                ))
                .bind(ids)
                .bind(days)
                .execute(&mut **t)
                .await?
                .rows_affected()
            }
            Tx::Sqlite(t) => sqlx::query(&format!(
                "INSERT INTO attendance_dirty (employee_id, work_date) \
                 SELECT value ->> 0, value ->> 1 FROM json_each(?1) WHERE true {SQLITE_UPSERT}"
            ))
            .bind(json(&pairs)?)
            .execute(&mut **t)
            .await?
            .rows_affected(),
        };
        self.marked += n;
        Ok(())
    }

    /// Marks everything still collected: the pairs, then the computed days of the employees the changed masters
    /// concern.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn finish(&mut self, tx: &mut Tx) -> Result<(), StoreError> {
        self.flush_pairs(tx).await?;
        let lists: [(&str, Vec<String>); 4] = [
            ("a.employee_id", std::mem::take(&mut self.employees)),
            ("e.shift_code", std::mem::take(&mut self.shifts)),
            ("e.site_id", std::mem::take(&mut self.sites)),
            ("e.week_off_rule", std::mem::take(&mut self.week_off_rules)),
        ];
        for (column, ids) in lists {
            if ids.is_empty() {
                continue;
            }
            let rule = column == "e.week_off_rule";
            self.marked += match tx {
                Tx::Postgres(t) => {
                    let also = if rule {
                        " OR (e.week_off_rule IS NULL AND e.site_id IN \
                         (SELECT site_id FROM sites WHERE default_week_off_rule = ANY($1::text[])))"
                    } else {
                        ""
                    };
                    sqlx::query(&format!(
                        "INSERT INTO attendance_dirty (employee_id, work_date) \
                         SELECT a.employee_id, a.work_date FROM attendance a \
                         JOIN employees e ON e.employee_id = a.employee_id \
                         WHERE {column} = ANY($1::text[]){also} ORDER BY 1, 2 {PG_UPSERT}"
                    ))
                    .bind(&ids)
                    .execute(&mut **t)
                    .await?
                    .rows_affected()
                }
                Tx::Sqlite(t) => {
                    let also = if rule {
                        " OR (e.week_off_rule IS NULL AND e.site_id IN (SELECT site_id FROM sites \
                         WHERE default_week_off_rule IN (SELECT value FROM json_each(?1))))"
                    } else {
                        ""
                    };
                    sqlx::query(&format!(
                        "INSERT INTO attendance_dirty (employee_id, work_date) \
                         SELECT a.employee_id, a.work_date FROM attendance a \
                         JOIN employees e ON e.employee_id = a.employee_id \
                         WHERE {column} IN (SELECT value FROM json_each(?1)){also} {SQLITE_UPSERT}"
                    ))
                    .bind(json(&ids)?)
                    .execute(&mut **t)
                    .await?
                    .rows_affected()
                }
            };
        }
        for (day, site) in std::mem::take(&mut self.holidays) {
            let sql = "INSERT INTO attendance_dirty (employee_id, work_date) \
                       SELECT a.employee_id, a.work_date FROM attendance a \
                       JOIN employees e ON e.employee_id = a.employee_id \
                       WHERE a.work_date = $1 AND ($2 IS NULL OR e.site_id = $2) ORDER BY 1, 2 ";
            self.marked += match tx {
                Tx::Postgres(t) => sqlx::query(&format!("{} {PG_UPSERT}", sql.replace("$2", "$2::text")))
                    .bind(day)
                    .bind(&site)
                    .execute(&mut **t)
                    .await?
                    .rows_affected(),
                Tx::Sqlite(t) => sqlx::query(&format!("{sql} {SQLITE_UPSERT}"))
                    .bind(day)
                    .bind(&site)
                    .execute(&mut **t)
                    .await?
                    .rows_affected(),
            };
        }
        Ok(())
    }
}
