//! PostgreSQL: several batches stored in one transaction and one insert statement (the group commit of
//! [`crate::ingest::pg_group`]). Each batch keeps its own answer: its punches are routed by
//! [`super::device_guard`] as when it is stored alone (in order, so a device two batches name for the first time is
//! registered at the first one's site), and its new punches are counted by what the statement returned for its agent
//! and sequence range. The statement is the single-batch one ([`super::ingest`]) with the site, agent and batch
//! range per row, so the attendance days of the whole group are marked once, in key order. The rows are sorted here,
//! in the unique index's order, and inserted in array order (no sort in the statement).
//!
//! A punch that two batches of the group both carry is stored once and counted new for the first of them. If the
//! group's transaction fails, the caller stores each batch alone (then one batch's failure is never reported for
//! another).

use std::collections::HashMap;

use chrono::Utc;

use super::device_guard;
use super::ingest::{counts, Inserted, PunchColumns};
use super::quarantine;
use super::rows::{BatchRows, PunchRow};
use super::StoreError;

const PG_GROUP_INSERT: &str = r"
WITH input AS (
    SELECT * FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::timestamp[], $5::timestamptz[], $6::int2[],
                         $7::int2[], $8::int8[], $9::text[], $10::text[], $11::int8[], $12::int8[], $13::int8[],
                         $14::text[], $15::text[], $16::int8[], $17::int8[])
        AS t(punch_key, device_serial, pin, local_time, utc_time, state, verify, work_code, source, direction,
             agent_seq, raw_state, raw_verify, site_id, agent_id, batch_first_seq, batch_last_seq)
), inserted AS (
    INSERT INTO all_logs (punch_key, site_id, device_serial, pin, local_time, utc_time, state, verify, work_code,
                          source, direction, agent_id, agent_seq, batch_first_seq, batch_last_seq, received_at,
                          raw_state, raw_verify)
    SELECT punch_key, site_id, device_serial, pin, local_time, utc_time, state, verify, work_code, source, direction,
           agent_id, agent_seq, batch_first_seq, batch_last_seq, $18, raw_state, raw_verify
    FROM input
    ON CONFLICT (device_serial, local_time, pin) DO NOTHING
    RETURNING agent_id, batch_first_seq, batch_last_seq, pin, local_date
), dirty AS (
    INSERT INTO attendance_dirty (employee_id, work_date)
    SELECT DISTINCT pin, day FROM (SELECT DISTINCT pin, local_date FROM inserted) AS n,
        LATERAL (VALUES (local_date), (local_date - 1)) AS d(day)
    ORDER BY 1, 2
    ON CONFLICT (employee_id, work_date) DO UPDATE SET marked_at = excluded.marked_at WHERE false
)
SELECT agent_id, batch_first_seq, batch_last_seq, count(*) FROM inserted GROUP BY 1, 2, 3";

/// Stores `batches` in one transaction. The outer error is the transaction's (nothing of the group is stored); the
/// inner results are per batch, in order.
///
/// # Errors
/// [`StoreError::Database`] when the transaction fails.
pub async fn insert_group_postgres(
    pool: &sqlx::PgPool,
    batches: &[&BatchRows],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let mut tx = pool.begin().await?;
    let mut sites = HashMap::new();
    let mut routed = Vec::with_capacity(batches.len());
    for batch in batches {
        routed.push(device_guard::route_postgres_known(&mut tx, batch, &mut sites).await?);
    }
    let mut stored: Vec<(usize, &PunchRow)> =
        routed.iter().enumerate().flat_map(|(b, r)| r.stored.iter().map(move |row| (b, row))).collect();
    // The unique index's order (each batch is sorted already; a stable sort keeps the earlier batch first among equal
    // keys, so it is the one that stores the punch): the statement inserts in array order.
    stored.sort_by(|(_, a), (_, b)| (&a.device, a.local_time, &a.pin).cmp(&(&b.device, b.local_time, &b.pin)));
    let new_by_batch = insert_rows(&mut tx, batches, &stored).await?;
    for (batch, r) in batches.iter().zip(&routed) {
        quarantine::insert_held_postgres(&mut tx, batch, &r.held).await?;
    }
    tx.commit().await?;
    let mut results = Vec::with_capacity(batches.len());
    let mut claimed: HashMap<(&str, i64, i64), bool> = HashMap::new();
    for (batch, mut r) in batches.iter().zip(routed) {
        let key = (batch.agent.as_str(), batch.first_seq, batch.last_seq);
        // Two identical batches in one group: the rows count as new for the first only.
        let new = if claimed.insert(key, true).is_none() { new_by_batch.get(&key).copied().unwrap_or(0) } else { 0 };
        let offered = std::mem::take(&mut r.stored).len();
        results.push(counts(offered, new, r));
    }
    Ok(results)
}

/// The one-statement insert of `rows` (batch index, row); returns the new rows per (agent, first seq, last seq).
async fn insert_rows<'b>(
    tx: &mut sqlx::PgConnection,
    batches: &[&'b BatchRows],
    rows: &[(usize, &PunchRow)],
) -> Result<HashMap<(&'b str, i64, i64), u64>, StoreError> {
    let mut out = HashMap::new();
    if rows.is_empty() {
        return Ok(out);
    }
    let c = PunchColumns::of(rows.iter().map(|&(_, row)| row));
    let n = rows.len();
    let mut site_ids = Vec::with_capacity(n);
    let mut agents = Vec::with_capacity(n);
    let mut firsts = Vec::with_capacity(n);
    let mut lasts = Vec::with_capacity(n);
    for &(b, _) in rows {
        let batch = batches[b];
        site_ids.push(batch.site.as_str());
        agents.push(batch.agent.as_str());
        firsts.push(batch.first_seq);
        lasts.push(batch.last_seq);
    }
    let counted: Vec<(String, i64, i64, i64)> = sqlx::query_as(PG_GROUP_INSERT)
        .bind(c.keys)
        .bind(c.devices)
        .bind(c.pins)
        .bind(c.locals)
        .bind(c.utcs)
        .bind(c.states)
        .bind(c.verifies)
        .bind(c.work_codes)
        .bind(c.sources)
        .bind(c.directions)
        .bind(c.seqs)
        .bind(c.raw_states)
        .bind(c.raw_verifies)
        .bind(site_ids)
        .bind(agents)
        .bind(firsts)
        .bind(lasts)
        .bind(Utc::now())
        .fetch_all(&mut *tx)
        .await?;
    for (agent, first, last, new) in counted {
        // Map back to the batch's own strings (the key borrows from the batches, not from the answer).
        let found = batches.iter().copied().find(|b| b.agent == agent && b.first_seq == first && b.last_seq == last);
        if let Some(batch) = found {
            out.insert((batch.agent.as_str(), first, last), u64::try_from(new).unwrap_or_default());
        }
    }
    Ok(out)
}
