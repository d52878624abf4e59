//! Rows: how [`HubState`] is written to and read from SQLite.

use std::collections::HashSet;

use c2d::timestamp::{from_unix_millis, to_unix_millis};
use c2d::{Device, FeedbackRecord, Message};
use rusqlite::{params, Connection, Transaction};

use crate::state::feedback::FeedbackBatch;
use crate::state::limits::Limits;
use crate::state::registry::{default_policies, Policy, Rights};
use crate::state::{Dirty, HubState, MessageState, QueuedMessage};

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// Creates the default policies in a new store.
pub(super) fn init_policies(conn: &mut Connection) -> rusqlite::Result<()> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM policies", [], |r| r.get(0))?;
    if count > 0 {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for p in default_policies() {
        tx.execute(
            "INSERT INTO policies (name, primary_key, secondary_key, rights) VALUES (?1, ?2, ?3, ?4)",
            params![p.name, p.primary_key, p.secondary_key, p.rights.bits()],
        )?;
    }
    tx.commit()
}

fn token_blob(l: Option<&crate::state::Lock>) -> (Option<Vec<u8>>, Option<i64>) {
    match l {
        Some(l) => (
            Some(l.token.as_bytes().to_vec()),
            Some(to_unix_millis(l.expires)),
        ),
        None => (None, None),
    }
}

/// The entries of `journal` that still change a row: a message that was sent and has gone
/// again (completed, rejected, expired, purged) since the journal's last commit never had a
/// row, so neither its insert nor its delete is written.
pub(super) fn live<'a>(state: &HubState, journal: &'a [Dirty]) -> Vec<&'a Dirty> {
    let gone: HashSet<u64> = journal
        .iter()
        .filter_map(|d| match d {
            Dirty::NewMessage(dev, seq) if state.message(dev, *seq).is_none() => Some(*seq),
            _ => None,
        })
        .collect();
    journal
        .iter()
        .filter(|d| match d {
            Dirty::NewMessage(_, seq) | Dirty::Message(_, seq) => !gone.contains(seq),
            _ => true,
        })
        .collect()
}

/// Writes the rows named by `journal`, as they now are in `state`.
pub(super) fn write(
    tx: &Transaction<'_>,
    state: &HubState,
    journal: &[&Dirty],
) -> rusqlite::Result<()> {
    for &dirty in journal {
        match dirty {
            Dirty::Device(id) => match state.registry.device(id) {
                Some(d) => {
                    let json = serde_json::to_string(d).map_err(json_err)?;
                    tx.prepare_cached("INSERT OR REPLACE INTO devices (id, json) VALUES (?1, ?2)")?
                        .execute(params![id, json])?;
                }
                None => {
                    tx.prepare_cached("DELETE FROM devices WHERE id = ?1")?
                        .execute(params![id])?;
                }
            },
            Dirty::NewMessage(dev, seq) => match state.message(dev, *seq) {
                Some(m) => {
                    let meta = serde_json::to_string(&m.message).map_err(json_err)?;
                    let (token, lock_expiry) = token_blob(m.lock.as_ref());
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO messages (seq, device_id, state, delivery_count, lock_token, \
                         lock_expiry_ms, enqueued_ms, expiry_ms, meta, body) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )?
                    .execute(params![
                        *seq as i64,
                        dev,
                        state_code(m.state),
                        m.delivery_count,
                        token,
                        lock_expiry,
                        to_unix_millis(m.enqueued),
                        to_unix_millis(m.expires),
                        meta,
                        m.message.body
                    ])?;
                }
                None => delete_message(tx, *seq)?,
            },
            Dirty::Message(dev, seq) => match state.message(dev, *seq) {
                Some(m) => {
                    let (token, lock_expiry) = token_blob(m.lock.as_ref());
                    tx.prepare_cached(
                        "UPDATE messages SET state = ?2, delivery_count = ?3, lock_token = ?4, lock_expiry_ms = ?5 \
                         WHERE seq = ?1",
                    )?
                    .execute(params![*seq as i64, state_code(m.state), m.delivery_count, token, lock_expiry])?;
                }
                None => delete_message(tx, *seq)?,
            },
            Dirty::DeviceMessages(dev) => {
                tx.prepare_cached("DELETE FROM messages WHERE device_id = ?1")?
                    .execute(params![dev])?;
            }
            Dirty::FeedbackRecord(id) => match state.feedback.pending.get(id) {
                Some(r) => insert_record(tx, *id, None, r)?,
                None => {
                    tx.prepare_cached("DELETE FROM feedback_records WHERE id = ?1")?
                        .execute(params![*id as i64])?;
                }
            },
            Dirty::FeedbackBatch(id) => match state.feedback.batches.get(id) {
                Some(b) => {
                    let (token, lock_expiry) = token_blob(b.lock.as_ref());
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO feedback_batches (id, delivery_count, lock_token, lock_expiry_ms, \
                         enqueued_ms, expiry_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        *id as i64,
                        b.delivery_count,
                        token,
                        lock_expiry,
                        to_unix_millis(b.enqueued),
                        to_unix_millis(b.expires)
                    ])?;
                    for (rid, r) in &b.records {
                        insert_record(tx, *rid, Some(*id), r)?;
                    }
                }
                None => {
                    tx.prepare_cached("DELETE FROM feedback_batches WHERE id = ?1")?
                        .execute(params![*id as i64])?;
                    tx.prepare_cached("DELETE FROM feedback_records WHERE batch_id = ?1")?
                        .execute(params![*id as i64])?;
                }
            },
        }
    }
    Ok(())
}

fn state_code(s: MessageState) -> i64 {
    match s {
        MessageState::Enqueued => 0,
        MessageState::Invisible => 1,
    }
}

fn delete_message(tx: &Transaction<'_>, seq: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM messages WHERE seq = ?1")?
        .execute(params![seq as i64])?;
    Ok(())
}

fn insert_record(
    tx: &Transaction<'_>,
    id: u64,
    batch: Option<u64>,
    r: &FeedbackRecord,
) -> rusqlite::Result<()> {
    let json = c2d::service::feedback::encode_batch(std::slice::from_ref(r));
    tx.prepare_cached("INSERT OR REPLACE INTO feedback_records (id, batch_id, device_id, json) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![id as i64, batch.map(|b| b as i64), r.device_id, json])?;
    Ok(())
}

fn decode_record(json: &[u8]) -> rusqlite::Result<FeedbackRecord> {
    c2d::service::feedback::decode_batch(json)
        .ok()
        .and_then(|mut v| v.pop())
        .ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(
                0,
                "feedback record".into(),
                rusqlite::types::Type::Blob,
            )
        })
}

/// The shared access policies.
pub(super) fn load_policies(conn: &Connection) -> rusqlite::Result<Vec<Policy>> {
    let mut stmt = conn.prepare("SELECT name, primary_key, secondary_key, rights FROM policies")?;
    let policies = stmt.query_map([], |r| {
        Ok(Policy {
            name: r.get(0)?,
            primary_key: r.get(1)?,
            secondary_key: r.get(2)?,
            rights: Rights::from_bits(r.get(3)?),
        })
    })?;
    policies.collect()
}

/// Loads the whole state. Messages and feedback batches that were locked are unlocked: their
/// receivers are gone with the process that handed them out.
pub(super) fn load(conn: &Connection, limits: Limits) -> rusqlite::Result<HubState> {
    let mut state = HubState::new(limits);
    for p in load_policies(conn)? {
        state.registry.policies.insert(p.name.clone(), p);
    }
    let mut stmt = conn.prepare("SELECT id, json FROM devices")?;
    let devices = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for d in devices {
        let (id, json) = d?;
        let device: Device = serde_json::from_str(&json).map_err(json_err)?;
        state.registry.devices.insert(id, device);
    }
    let mut stmt = conn.prepare(
        "SELECT seq, device_id, delivery_count, enqueued_ms, expiry_ms, meta, body FROM messages ORDER BY seq",
    )?;
    let messages = stmt.query_map([], |r| {
        let meta: String = r.get(5)?;
        let mut message: Message = serde_json::from_str(&meta).map_err(json_err)?;
        message.body = r.get(6)?;
        Ok(QueuedMessage {
            seq: r.get::<_, i64>(0)? as u64,
            device_id: r.get(1)?,
            message,
            state: MessageState::Enqueued,
            delivery_count: r.get(2)?,
            lock: None,
            enqueued: from_unix_millis(r.get(3)?),
            expires: from_unix_millis(r.get(4)?),
        })
    })?;
    for m in messages {
        state.restore_message(m?);
    }
    let mut stmt = conn.prepare(
        "SELECT id, delivery_count, enqueued_ms, expiry_ms FROM feedback_batches ORDER BY id",
    )?;
    let batches = stmt.query_map([], |r| {
        Ok(FeedbackBatch {
            id: r.get::<_, i64>(0)? as u64,
            records: Vec::new(),
            delivery_count: r.get(1)?,
            lock: None,
            enqueued: from_unix_millis(r.get(2)?),
            expires: from_unix_millis(r.get(3)?),
        })
    })?;
    let mut batches: std::collections::BTreeMap<u64, FeedbackBatch> = batches
        .map(|b| b.map(|b| (b.id, b)))
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare("SELECT id, batch_id, json FROM feedback_records ORDER BY id")?;
    let records = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    for rec in records {
        let (id, batch, json) = rec?;
        let record = decode_record(&json)?;
        match batch.and_then(|b| batches.get_mut(&(b as u64))) {
            Some(b) => b.records.push((id, record)),
            None => state.feedback.restore_record(id, record),
        }
    }
    for (_, b) in batches {
        if !b.records.is_empty() {
            state.feedback.restore_batch(b);
        }
    }
    Ok(state)
}
