//! A tamper-evident audit log: who did what to which sandbox or tenant, and
//! how it ended, in the same SQLite file as the rest of the state.
//!
//! # Design
//!
//! Records form a hash chain. Each record stores `prev_hash` (the hash of the
//! record before it) and `hash = SHA-256(v1 tag, seq, time, actor, source,
//! action, target, tenant, outcome, details, prev_hash)`, every field
//! length-prefixed so that no two different records encode to the same bytes.
//! `seq` is consecutive, so a missing number is a deleted record, a record
//! whose contents no longer give its hash was edited, and a record whose
//! `prev_hash` is not its predecessor's hash sits in the wrong place.
//!
//! SHA-256 is unkeyed, so on its own the chain only catches careless
//! tampering: whoever can write the database can also recompute every hash
//! after an edit. Two things close that gap, both keyed with the 32-byte
//! [`AuditKey`] kept in a 0600 file beside the database:
//!
//! * **A MAC per record**, `HMAC-SHA256(key, tag || hash)`. A recomputed
//!   chain has hashes that agree with their contents but MACs that do not, so
//!   an edit, insertion or renumbering made without the key is found, and
//!   where it starts. Records that were only renumbered around an inserted one
//!   still carry their original MAC; [`AuditLog::verify`] recognises them and
//!   reports the insertion rather than every record after it.
//! * **A chain head row** (`audit_head`): the last seq and hash, with a MAC,
//!   rewritten in the same transaction as every append. A hash chain alone
//!   cannot notice records cut off its end, or a log emptied of all records:
//!   what is left is still a valid chain. The head says where the chain must
//!   end, and cannot be moved back without the key.
//!
//! Retention ([`AuditLog::prune_before`]) removes the oldest records and
//! writes a MACed checkpoint (last pruned seq and hash, running count), from
//! which the remaining chain verifies. It always keeps the newest record, and
//! refuses to prune a log that does not verify, so pruning never erases the
//! evidence of tampering.
//!
//! Appends run under `BEGIN IMMEDIATE`, so reading the head and writing the
//! next record are one step even with several threads and processes (the
//! daemon and the CLI) appending to one file.
//!
//! What the design cannot see: someone holding the key can forge anything,
//! and someone who deletes every audit row *including* the head (or the whole
//! database) leaves a log indistinguishable from a new one; exporting the
//! head ([`AuditLog::head`]) elsewhere from time to time covers that.

use crate::DB_FILE;
use hmac::{Hmac, Mac};
use rusqlite::types::ValueRef;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The key file's name in the state directory.
pub const AUDIT_KEY_FILE: &str = "audit.key";
/// Records per page when [`AuditFilter::limit`] is 0.
pub const DEFAULT_PAGE: usize = 100;
/// The largest page [`AuditLog::query`] returns.
pub const MAX_PAGE: usize = 10_000;
/// [`AuditLog::verify`] lists at most this many problems.
pub const MAX_PROBLEMS: usize = 100;

const KEY_LEN: usize = 32;
const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const TIME_FMT: &str = "%Y-%m-%dT%H:%M:%fZ";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot create the state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the audit log in {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("audit log: {context}: {source}")]
    Query {
        context: String,
        source: rusqlite::Error,
    },
    #[error("audit key {path}: {context}: {source}")]
    KeyIo {
        path: PathBuf,
        context: &'static str,
        source: std::io::Error,
    },
    #[error("audit key {path} is readable or writable by group or others (mode {mode:04o}); it must be 0600: run `chmod 600 {path}`")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("audit key {path} is {len} bytes long, not {KEY_LEN}: it is not an audit key or was truncated")]
    KeyLength { path: PathBuf, len: u64 },
    #[error("audit key {path} is not a regular file")]
    KeyNotFile { path: PathBuf },
    #[error("cannot generate an audit key: {0}")]
    Random(String),
    #[error("{what} {value:?} is not an RFC 3339 time (like 2026-11-23T19:20:01.123Z)")]
    BadTime { what: &'static str, value: String },
    #[error("the audit chain head is not authentic ({0}): the log was tampered with or the audit key is not this log's; nothing was appended, run the audit verification")]
    BadHead(String),
    #[error("refusing to prune: the audit log does not verify ({count} problem(s), first: {first}); pruning would erase the evidence")]
    Tampered { count: usize, first: String },
    #[error("audit record {seq} holds a malformed {what}")]
    Corrupt { seq: u64, what: String },
    #[error("audit log: cannot serialize {context}: {source}")]
    Json {
        context: &'static str,
        source: serde_json::Error,
    },
    #[error("cannot write the audit export: {0}")]
    Write(std::io::Error),
}

fn q(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> AuditError {
    let context = context.into();
    move |source| AuditError::Query { context, source }
}

/// The secret that authenticates the chain: 32 random bytes in
/// `<state dir>/audit.key`, mode 0600.
#[derive(Clone)]
pub struct AuditKey([u8; KEY_LEN]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    /// Reads the key in `dir`, creating it (and `dir`) on first use.
    ///
    /// The key is written to a private temporary file and hard-linked into
    /// place, so a process racing this one sees either no key or a whole one.
    pub fn load_or_create(dir: &Path) -> Result<AuditKey, AuditError> {
        match Self::load(dir) {
            Err(AuditError::KeyIo { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        std::fs::create_dir_all(dir).map_err(|source| AuditError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|e| AuditError::Random(e.to_string()))?;
        let path = dir.join(AUDIT_KEY_FILE);
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| AuditError::Random(e.to_string()))?;
        let tmp = dir.join(format!(
            ".{AUDIT_KEY_FILE}.{}.{}",
            std::process::id(),
            hex(&nonce)
        ));
        let key_io = |context: &'static str| {
            let path = path.clone();
            move |source| AuditError::KeyIo {
                path,
                context,
                source,
            }
        };
        let written = (|| -> Result<(), AuditError> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(key_io("cannot create"))?;
            f.write_all(&bytes).map_err(key_io("cannot write"))?;
            f.sync_all().map_err(key_io("cannot sync"))?;
            Ok(())
        })();
        let linked = written.and_then(|()| match std::fs::hard_link(&tmp, &path) {
            Ok(()) => {
                // Make the new name durable before the key authenticates anything.
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(key_io("cannot create")(e)),
        });
        let _ = std::fs::remove_file(&tmp);
        if linked? {
            Ok(AuditKey(bytes))
        } else {
            // Another process created it first: use theirs.
            Self::load(dir)
        }
    }

    /// Reads the key in `dir`; never creates one.
    pub fn load(dir: &Path) -> Result<AuditKey, AuditError> {
        let path = dir.join(AUDIT_KEY_FILE);
        let key_io = |context: &'static str| {
            let path = path.clone();
            move |source| AuditError::KeyIo {
                path,
                context,
                source,
            }
        };
        let mut f = File::open(&path).map_err(key_io("cannot open"))?;
        // fstat of the opened file: what is checked is what is read.
        let meta = f.metadata().map_err(key_io("cannot stat"))?;
        if !meta.is_file() {
            return Err(AuditError::KeyNotFile { path });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(AuditError::KeyPermissions { path, mode });
        }
        if meta.len() != KEY_LEN as u64 {
            return Err(AuditError::KeyLength {
                path,
                len: meta.len(),
            });
        }
        let mut bytes = [0u8; KEY_LEN];
        f.read_exact(&mut bytes).map_err(key_io("cannot read"))?;
        Ok(AuditKey(bytes))
    }

    fn mac(&self, tag: &[u8], parts: &[&[u8]]) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(tag);
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m
    }

    fn sign(&self, tag: &[u8], parts: &[&[u8]]) -> String {
        hex(&self.mac(tag, parts).finalize().into_bytes())
    }

    /// Constant-time check of a hex MAC as stored.
    fn check(&self, tag: &[u8], parts: &[&[u8]], stored: &str) -> bool {
        match unhex(stored) {
            Some(raw) => self.mac(tag, parts).verify_slice(&raw).is_ok(),
            None => false,
        }
    }

    fn sign_record(&self, hash: &str) -> String {
        self.sign(TAG_RECORD_MAC, &[hash.as_bytes()])
    }

    fn check_record(&self, hash: &[u8], mac: &str) -> bool {
        self.check(TAG_RECORD_MAC, &[hash], mac)
    }

    fn sign_head(&self, seq: u64, hash: &str) -> String {
        self.sign(TAG_HEAD_MAC, &[&seq.to_be_bytes(), hash.as_bytes()])
    }

    fn check_head(&self, seq: u64, hash: &str, mac: &str) -> bool {
        self.check(TAG_HEAD_MAC, &[&seq.to_be_bytes(), hash.as_bytes()], mac)
    }

    fn checkpoint_parts(c: &CheckpointView) -> [Vec<u8>; 4] {
        [
            c.last_pruned_seq.to_be_bytes().to_vec(),
            c.last_pruned_hash.as_bytes().to_vec(),
            c.pruned_at.as_bytes().to_vec(),
            c.pruned_count.to_be_bytes().to_vec(),
        ]
    }

    fn sign_checkpoint(&self, c: &CheckpointView) -> String {
        let p = Self::checkpoint_parts(c);
        self.sign(TAG_CHECKPOINT_MAC, &[&p[0], &p[1], &p[2], &p[3]])
    }

    fn check_checkpoint(&self, c: &CheckpointView, mac: &str) -> bool {
        let p = Self::checkpoint_parts(c);
        self.check(TAG_CHECKPOINT_MAC, &[&p[0], &p[1], &p[2], &p[3]], mac)
    }
}

// Domain separation: a MAC of one kind never passes as another.
const TAG_RECORD_HASH: &[u8] = b"palisade-audit-record-v1\0";
const TAG_RECORD_MAC: &[u8] = b"palisade-audit-record-mac-v1\0";
const TAG_HEAD_MAC: &[u8] = b"palisade-audit-head-mac-v1\0";
const TAG_CHECKPOINT_MAC: &[u8] = b"palisade-audit-checkpoint-mac-v1\0";

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    /// Refused by authorization or policy before anything was done.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

/// A record to append; the log adds seq, time and the chain fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewAuditRecord {
    /// Who: a user, a uid, a token's name.
    pub actor: String,
    /// Through what: `cli`, `api`, `cni`, a peer address.
    pub source: String,
    /// What, as a stable dotted verb: `sandbox.create`.
    pub action: String,
    /// On what: a sandbox or tenant name.
    pub target: String,
    pub tenant: Option<String>,
    pub outcome: Outcome,
    /// The request's essentials (never secrets).
    pub details: serde_json::Value,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds: `2026-11-23T19:20:01.123Z`.
    pub time: String,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub target: String,
    pub tenant: Option<String>,
    pub outcome: Outcome,
    pub details: serde_json::Value,
    /// Hex SHA-256 of the previous record (or of the checkpoint, or zeros).
    pub prev_hash: String,
    /// Hex SHA-256 of this record.
    pub hash: String,
}

/// Which records [`AuditLog::query`] returns. All conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Records at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Records strictly before this RFC 3339 time.
    pub until: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub tenant: Option<String>,
    pub outcome: Option<Outcome>,
    /// Cursor: records with a seq greater than this (a page's `next_after`).
    pub after_seq: Option<u64>,
    /// Records per page; 0 means [`DEFAULT_PAGE`], at most [`MAX_PAGE`].
    pub limit: usize,
}

/// One page of a query, in ascending seq.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// `Some(cursor)` when more records match: pass it as `after_seq`.
    pub next_after: Option<u64>,
}

/// The retention checkpoint: where the remaining chain starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckpointView {
    pub last_pruned_seq: u64,
    pub last_pruned_hash: String,
    pub pruned_at: String,
    /// Records pruned over the log's life.
    pub pruned_count: u64,
}

/// What kind of tampering a [`ChainProblem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A record's contents (or its hash) were changed.
    Edited,
    /// A record whose hash matches its contents but not its MAC: written or
    /// rewritten without the key (an edit with the chain recomputed).
    Forged,
    /// A record written without the key in between authentic records.
    Inserted,
    /// Records missing from the chain.
    Deleted,
    /// Two authentic records that do not follow each other.
    BrokenLink,
    /// The records do not end where the head says.
    HeadMismatch,
    /// The head row is missing or its MAC does not match.
    BadHead,
    /// The checkpoint's MAC does not match, or it cannot be read.
    BadCheckpoint,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainProblem {
    pub seq: u64,
    pub kind: ProblemKind,
    /// A sentence for people: "record 17 was edited: ...".
    pub detail: String,
}

/// The result of [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    pub intact: bool,
    pub records_checked: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoint: Option<CheckpointView>,
    /// In seq order, at most [`MAX_PROBLEMS`]; empty when intact.
    pub problems: Vec<ChainProblem>,
    /// Problems found beyond [`MAX_PROBLEMS`] and not listed.
    pub problems_omitted: u64,
}

/// The result of [`AuditLog::prune_before`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    /// Records removed by this call.
    pub pruned: u64,
    /// The checkpoint after the call (unchanged when nothing was pruned).
    pub checkpoint: Option<CheckpointView>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    tenant TEXT,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log(time);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log(actor, seq);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log(action, seq);
CREATE INDEX IF NOT EXISTS audit_log_tenant ON audit_log(tenant, seq);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    pruned_at TEXT NOT NULL,
    pruned_count INTEGER NOT NULL,
    mac TEXT NOT NULL
);
";

const RECORD_COLUMNS: &str =
    "seq, time, actor, source, action, target, tenant, outcome, details, prev_hash, hash";

/// The audit log of one state directory.
pub struct AuditLog {
    conn: Connection,
    key: AuditKey,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating if needed) the audit tables in `dir`'s database.
    pub fn open(dir: &Path, key: AuditKey) -> Result<AuditLog, AuditError> {
        std::fs::create_dir_all(dir).map_err(|source| AuditError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let open_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditError::Open { path, source }
        };
        let mut conn = Connection::open(&path).map_err(open_err(&path))?;
        // The pragmas of Store::open; busy_timeout first so that switching to
        // WAL waits for a concurrent opener instead of failing.
        conn.execute_batch(
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )
        .map_err(open_err(&path))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(open_err(&path))?;
        tx.execute_batch(SCHEMA).map_err(open_err(&path))?;
        // A new log gets its genesis head. A log that has records or a
        // checkpoint but no head keeps it missing, for verify to report.
        let blank: bool = tx
            .query_row(
                "SELECT NOT EXISTS(SELECT 1 FROM audit_head)
                    AND NOT EXISTS(SELECT 1 FROM audit_log)
                    AND NOT EXISTS(SELECT 1 FROM audit_checkpoint)",
                [],
                |r| r.get(0),
            )
            .map_err(open_err(&path))?;
        if blank {
            tx.execute(
                "INSERT INTO audit_head(id, last_seq, last_hash, mac) VALUES (1, 0, ?1, ?2)",
                params![ZERO_HASH, key.sign_head(0, ZERO_HASH)],
            )
            .map_err(open_err(&path))?;
        }
        tx.commit().map_err(open_err(&path))?;
        Ok(AuditLog { conn, key })
    }

    /// Appends a record to the chain, atomically with respect to every other
    /// writer of the file, and returns it as stored.
    ///
    /// Refuses (with [`AuditError::BadHead`]) to extend a chain whose head is
    /// missing or not authentic.
    pub fn append(&mut self, rec: &NewAuditRecord) -> Result<AuditRecord, AuditError> {
        let details = serde_json::to_string(&rec.details).map_err(|source| AuditError::Json {
            context: "the record's details",
            source,
        })?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(q("begin append"))?;
        let head: Option<(i64, String, String)> = tx
            .query_row(
                "SELECT last_seq, last_hash, mac FROM audit_head WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(q("read the chain head"))?;
        let (last_seq, prev_hash) = match head {
            None => return Err(AuditError::BadHead("the head row is missing".into())),
            Some((seq, hash, mac)) => {
                let seq = u64::try_from(seq)
                    .map_err(|_| AuditError::BadHead(format!("negative last seq {seq}")))?;
                if !self.key.check_head(seq, &hash, &mac) {
                    return Err(AuditError::BadHead(format!(
                        "its MAC does not match (last seq {seq})"
                    )));
                }
                (seq, hash)
            }
        };
        let seq = last_seq + 1;
        let time: String = tx
            .query_row("SELECT strftime(?1, 'now')", [TIME_FMT], |r| r.get(0))
            .map_err(q("read the clock"))?;
        let hash = hex(&record_hash(&RawRecord {
            seq,
            time: time.as_bytes(),
            actor: rec.actor.as_bytes(),
            source: rec.source.as_bytes(),
            action: rec.action.as_bytes(),
            target: rec.target.as_bytes(),
            tenant: rec.tenant.as_deref().map(str::as_bytes),
            outcome: rec.outcome.as_str().as_bytes(),
            details: details.as_bytes(),
            prev_hash: prev_hash.as_bytes(),
        }));
        tx.execute(
            "INSERT INTO audit_log(seq, time, actor, source, action, target, tenant, outcome,
                details, prev_hash, hash, mac)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                seq as i64,
                time,
                rec.actor,
                rec.source,
                rec.action,
                rec.target,
                rec.tenant,
                rec.outcome.as_str(),
                details,
                prev_hash,
                hash,
                self.key.sign_record(&hash),
            ],
        )
        .map_err(q(format!("insert record {seq}")))?;
        tx.execute(
            "UPDATE audit_head SET last_seq = ?1, last_hash = ?2, mac = ?3 WHERE id = 1",
            params![seq as i64, hash, self.key.sign_head(seq, &hash)],
        )
        .map_err(q("move the chain head"))?;
        tx.commit().map_err(q(format!("commit record {seq}")))?;
        Ok(AuditRecord {
            seq,
            time,
            actor: rec.actor.clone(),
            source: rec.source.clone(),
            action: rec.action.clone(),
            target: rec.target.clone(),
            tenant: rec.tenant.clone(),
            outcome: rec.outcome,
            details: rec.details.clone(),
            prev_hash,
            hash,
        })
    }

    /// One page of matching records in ascending seq.
    pub fn query(&self, f: &AuditFilter) -> Result<AuditPage, AuditError> {
        query_on(&self.conn, f)
    }

    /// Writes every record matching `f` (from `f.after_seq` on, ignoring
    /// `f.limit`) as one JSON object per line, from one consistent snapshot;
    /// returns how many.
    pub fn export_jsonl(&self, f: &AuditFilter, out: &mut dyn Write) -> Result<u64, AuditError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(q("begin export"))?;
        let mut page_filter = f.clone();
        page_filter.limit = 1000;
        let mut n = 0u64;
        loop {
            let page = query_on(&tx, &page_filter)?;
            for r in &page.records {
                serde_json::to_writer(&mut *out, r).map_err(|source| AuditError::Json {
                    context: "a record for export",
                    source,
                })?;
                out.write_all(b"\n").map_err(AuditError::Write)?;
                n += 1;
            }
            match page.next_after {
                Some(after) => page_filter.after_seq = Some(after),
                None => break,
            }
        }
        out.flush().map_err(AuditError::Write)?;
        Ok(n)
    }

    /// Checks the whole chain, its head and its checkpoint, reporting every
    /// problem found (up to [`MAX_PROBLEMS`]), not just the first.
    pub fn verify(&self) -> Result<ChainReport, AuditError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(q("begin verify"))?;
        verify_on(&tx, &self.key)
    }

    /// Removes the records older than `cutoff` (RFC 3339), oldest first and
    /// never the newest record, and moves the checkpoint to the last one
    /// removed; one transaction. Refuses with [`AuditError::Tampered`] if the
    /// log does not verify.
    pub fn prune_before(&mut self, cutoff: &str) -> Result<PruneReport, AuditError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(q("begin prune"))?;
        let cutoff = normalize_time(&tx, "cutoff", cutoff)?;
        let report = verify_on(&tx, &self.key)?;
        if !report.intact {
            let first = report
                .problems
                .first()
                .map(|p| p.detail.clone())
                .unwrap_or_default();
            return Err(AuditError::Tampered {
                count: report.problems.len() + report.problems_omitted as usize,
                first,
            });
        }
        let (Some(first_seq), Some(last_seq)) = (report.first_seq, report.last_seq) else {
            return Ok(PruneReport {
                pruned: 0,
                checkpoint: report.checkpoint,
            });
        };
        // Prune a prefix: up to the first record at or after the cutoff
        // (times follow seq but a clock may step back), keeping the newest.
        let first_kept: Option<i64> = tx
            .query_row(
                "SELECT MIN(seq) FROM audit_log WHERE time >= ?1",
                [&cutoff],
                |r| r.get(0),
            )
            .map_err(q("find the first record to keep"))?;
        let first_kept = first_kept.map_or(last_seq, |s| (s as u64).min(last_seq));
        if first_kept <= first_seq {
            return Ok(PruneReport {
                pruned: 0,
                checkpoint: report.checkpoint,
            });
        }
        let last_pruned = first_kept - 1;
        let last_pruned_hash: String = tx
            .query_row(
                "SELECT hash FROM audit_log WHERE seq = ?1",
                [last_pruned as i64],
                |r| r.get(0),
            )
            .map_err(q(format!("read record {last_pruned}")))?;
        let pruned = tx
            .execute(
                "DELETE FROM audit_log WHERE seq <= ?1",
                [last_pruned as i64],
            )
            .map_err(q("delete pruned records"))? as u64;
        let pruned_at: String = tx
            .query_row("SELECT strftime(?1, 'now')", [TIME_FMT], |r| r.get(0))
            .map_err(q("read the clock"))?;
        let checkpoint = CheckpointView {
            last_pruned_seq: last_pruned,
            last_pruned_hash,
            pruned_at,
            pruned_count: report.checkpoint.as_ref().map_or(0, |c| c.pruned_count) + pruned,
        };
        tx.execute(
            "INSERT OR REPLACE INTO audit_checkpoint(id, last_seq, last_hash, pruned_at,
                pruned_count, mac) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![
                checkpoint.last_pruned_seq as i64,
                checkpoint.last_pruned_hash,
                checkpoint.pruned_at,
                checkpoint.pruned_count as i64,
                self.key.sign_checkpoint(&checkpoint),
            ],
        )
        .map_err(q("write the checkpoint"))?;
        tx.commit().map_err(q("commit prune"))?;
        Ok(PruneReport {
            pruned,
            checkpoint: Some(checkpoint),
        })
    }

    /// The chain head as stored: last seq and its hash; `None` for a log
    /// that never had a record. Not authenticated: see [`AuditLog::verify`].
    pub fn head(&self) -> Result<Option<(u64, String)>, AuditError> {
        let head: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT last_seq, last_hash FROM audit_head WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(q("read the chain head"))?;
        Ok(head.filter(|(s, _)| *s > 0).map(|(s, h)| (s as u64, h)))
    }

    /// Records currently stored (pruned ones not counted).
    pub fn count(&self) -> Result<u64, AuditError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(q("count records"))
    }
}

/// Normalizes an RFC 3339 time (any offset, or a bare date) to the stored
/// form, through SQLite so that comparisons agree with what it stores.
fn normalize_time(
    conn: &Connection,
    what: &'static str,
    value: &str,
) -> Result<String, AuditError> {
    let t: Option<String> = conn
        .query_row("SELECT strftime(?1, ?2)", [TIME_FMT, value], |r| r.get(0))
        .map_err(q(format!("parse the {what}")))?;
    // SQLite also takes Julian day numbers and 'now'; only dates are wanted.
    let looks_like_date = value.len() >= 10
        && value.as_bytes()[4] == b'-'
        && value.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    match t {
        Some(t) if looks_like_date => Ok(t),
        _ => Err(AuditError::BadTime {
            what,
            value: value.to_string(),
        }),
    }
}

fn query_on(conn: &Connection, f: &AuditFilter) -> Result<AuditPage, AuditError> {
    let limit = match f.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(s) = &f.since {
        clauses.push("time >= ?");
        args.push(normalize_time(conn, "since", s)?.into());
    }
    if let Some(u) = &f.until {
        clauses.push("time < ?");
        args.push(normalize_time(conn, "until", u)?.into());
    }
    for (col, v) in [
        ("action = ?", &f.action),
        ("actor = ?", &f.actor),
        ("tenant = ?", &f.tenant),
    ] {
        if let Some(v) = v {
            clauses.push(col);
            args.push(v.clone().into());
        }
    }
    if let Some(o) = f.outcome {
        clauses.push("outcome = ?");
        args.push(o.as_str().to_string().into());
    }
    if let Some(a) = f.after_seq {
        clauses.push("seq > ?");
        args.push((a.min(i64::MAX as u64) as i64).into());
    }
    let mut sql = format!("SELECT {RECORD_COLUMNS} FROM audit_log");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY seq LIMIT ?");
    args.push(((limit + 1) as i64).into());
    let mut stmt = conn.prepare(&sql).map_err(q("prepare query"))?;
    let rows = stmt
        .query_map(params_from_iter(args), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
                r.get::<_, String>(10)?,
            ))
        })
        .map_err(q("query records"))?;
    let mut records = Vec::new();
    for row in rows {
        let (seq, time, actor, source, action, target, tenant, outcome, details, prev, hash) =
            row.map_err(q("read a record"))?;
        let seq = seq as u64;
        let outcome = Outcome::parse(&outcome).ok_or_else(|| AuditError::Corrupt {
            seq,
            what: format!("outcome {outcome:?}"),
        })?;
        let details = serde_json::from_str(&details).map_err(|e| AuditError::Corrupt {
            seq,
            what: format!("details ({e})"),
        })?;
        records.push(AuditRecord {
            seq,
            time,
            actor,
            source,
            action,
            target,
            tenant,
            outcome,
            details,
            prev_hash: prev,
            hash,
        });
    }
    let next_after = if records.len() > limit {
        records.truncate(limit);
        records.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(AuditPage {
        records,
        next_after,
    })
}

/// The hashed fields of a record, as stored.
struct RawRecord<'a> {
    seq: u64,
    time: &'a [u8],
    actor: &'a [u8],
    source: &'a [u8],
    action: &'a [u8],
    target: &'a [u8],
    tenant: Option<&'a [u8]>,
    outcome: &'a [u8],
    details: &'a [u8],
    prev_hash: &'a [u8],
}

/// SHA-256 over a tag, the seq, and each field length-prefixed (the tenant
/// with a presence byte first), so the encoding is unambiguous.
fn record_hash(r: &RawRecord<'_>) -> [u8; 32] {
    fn field(h: &mut Sha256, b: &[u8]) {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    }
    let mut h = Sha256::new();
    h.update(TAG_RECORD_HASH);
    h.update(r.seq.to_be_bytes());
    for b in [r.time, r.actor, r.source, r.action, r.target] {
        field(&mut h, b);
    }
    match r.tenant {
        None => h.update([0u8]),
        Some(t) => {
            h.update([1u8]);
            field(&mut h, t);
        }
    }
    for b in [r.outcome, r.details, r.prev_hash] {
        field(&mut h, b);
    }
    h.finalize().into()
}

/// A stored row read for verification, whatever types an attacker left in
/// its columns: text stays text, NULL is `None`, and anything else is
/// remembered as odd (and so cannot verify).
struct StoredRow {
    seq: u64,
    cols: Vec<Option<Vec<u8>>>,
    odd: bool,
}

impl StoredRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
        let seq = r.get::<_, i64>(0)? as u64;
        let mut cols = Vec::with_capacity(11);
        let mut odd = false;
        for i in 1..=11 {
            cols.push(match r.get_ref(i)? {
                ValueRef::Text(t) => Some(t.to_vec()),
                ValueRef::Null => None,
                other => {
                    odd = true;
                    Some(format!("{other:?}").into_bytes())
                }
            });
        }
        // Only the tenant may be NULL.
        odd |= cols.iter().enumerate().any(|(i, c)| c.is_none() && i != 5);
        Ok(StoredRow { seq, cols, odd })
    }

    fn col(&self, i: usize) -> &[u8] {
        self.cols[i].as_deref().unwrap_or_default()
    }

    /// The hash of these contents, placed at `seq` after `prev_hash`.
    fn hash_at(&self, seq: u64, prev_hash: &[u8]) -> [u8; 32] {
        record_hash(&RawRecord {
            seq,
            time: self.col(0),
            actor: self.col(1),
            source: self.col(2),
            action: self.col(3),
            target: self.col(4),
            tenant: self.cols[5].as_deref(),
            outcome: self.col(6),
            details: self.col(7),
            prev_hash,
        })
    }

    fn prev_hash(&self) -> &[u8] {
        self.col(8)
    }

    fn hash(&self) -> &[u8] {
        self.col(9)
    }

    fn mac(&self) -> &str {
        std::str::from_utf8(self.col(10)).unwrap_or("")
    }
}

/// Collects problems up to the cap and counts the rest.
struct Problems {
    list: Vec<ChainProblem>,
    omitted: u64,
}

impl Problems {
    /// Adds a problem; returns its index if it was kept.
    fn push(&mut self, seq: u64, kind: ProblemKind, detail: String) -> Option<usize> {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(ChainProblem { seq, kind, detail });
            Some(self.list.len() - 1)
        } else {
            self.omitted += 1;
            None
        }
    }
}

/// "record 5 is" / "records 5 to 7 are", or with `past`, "was" / "were".
fn range(a: u64, b: u64, past: bool) -> String {
    match (a == b, past) {
        (true, false) => format!("record {a} is"),
        (true, true) => format!("record {a} was"),
        (false, false) => format!("records {a} to {b} are"),
        (false, true) => format!("records {a} to {b} were"),
    }
}

/// The checkpoint and its stored MAC, or why its row cannot be read.
type CheckpointRow = Result<(CheckpointView, String), String>;

fn read_checkpoint(conn: &Connection) -> Result<Option<CheckpointRow>, AuditError> {
    conn.query_row(
        "SELECT last_seq, last_hash, pruned_at, pruned_count, mac FROM audit_checkpoint WHERE id = 1",
        [],
        |r| {
            let parsed = (|| -> rusqlite::Result<(CheckpointView, String)> {
                Ok((
                    CheckpointView {
                        last_pruned_seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(u64::MAX),
                        last_pruned_hash: r.get(1)?,
                        pruned_at: r.get(2)?,
                        pruned_count: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(u64::MAX),
                    },
                    r.get(4)?,
                ))
            })();
            Ok(parsed.map_err(|e| e.to_string()))
        },
    )
    .optional()
    .map_err(q("read the checkpoint"))
}

/// The chain walk behind [`AuditLog::verify`] and [`AuditLog::prune_before`].
fn verify_on(conn: &Connection, key: &AuditKey) -> Result<ChainReport, AuditError> {
    let mut problems = Problems {
        list: Vec::new(),
        omitted: 0,
    };

    // Where the chain starts: the checkpoint if there is one, else genesis.
    let mut checkpoint = None;
    let (start_seq, start_hash) = match read_checkpoint(conn)? {
        None => (0u64, ZERO_HASH.to_string()),
        Some(Err(e)) => {
            problems.push(
                0,
                ProblemKind::BadCheckpoint,
                format!("the checkpoint cannot be read ({e}): it was edited"),
            );
            (0, ZERO_HASH.to_string())
        }
        Some(Ok((c, mac))) => {
            if !key.check_checkpoint(&c, &mac) {
                problems.push(
                    c.last_pruned_seq,
                    ProblemKind::BadCheckpoint,
                    format!(
                        "the checkpoint (records up to {} pruned) is not authentic: its MAC does not match, so it was forged or edited, and records before {} may have been deleted",
                        c.last_pruned_seq,
                        c.last_pruned_seq.saturating_add(1)
                    ),
                );
            }
            let start = (c.last_pruned_seq, c.last_pruned_hash.clone());
            checkpoint = Some(c);
            start
        }
    };

    // The last authentic record (original seq and hash): relocated records
    // are recognised against it.
    let mut anchor: (u64, Vec<u8>) = (start_seq, start_hash.clone().into_bytes());
    // The row before this one: its seq, stored hash and whether it was sound.
    let mut prev: (u64, Vec<u8>, bool) = (start_seq, start_hash.into_bytes(), true);
    // Problems for records that failed their MAC since the last authentic
    // one: they become insertions if renumbered authentic records follow.
    let mut pending_forged: Vec<usize> = Vec::new();
    let mut relocated_last = false;
    let mut checked = 0u64;
    let mut first_seq = None;
    let mut last: Option<(u64, Vec<u8>)> = None;

    let mut stmt = conn
        .prepare(&format!(
            "SELECT {RECORD_COLUMNS}, mac FROM audit_log ORDER BY seq"
        ))
        .map_err(q("prepare verify"))?;
    let rows = stmt
        .query_map([], StoredRow::read)
        .map_err(q("read records"))?;
    for row in rows {
        let row = row.map_err(q("read a record"))?;
        let seq = row.seq;
        checked += 1;
        first_seq.get_or_insert(seq);

        let expected = prev.0.saturating_add(1);
        let mut gap = false;
        if seq > expected {
            gap = true;
            problems.push(
                expected,
                ProblemKind::Deleted,
                format!(
                    "{} missing: deleted from the log{}",
                    range(expected, seq - 1, false),
                    if expected == 1 && checkpoint.is_none() {
                        " (or the checkpoint of an earlier prune was removed)"
                    } else {
                        ""
                    }
                ),
            );
        } else if seq < expected {
            problems.push(
                seq,
                ProblemKind::Inserted,
                format!(
                    "record {seq} was inserted: it lies at or before the checkpoint, which pruned records up to {}",
                    prev.0
                ),
            );
        }

        let computed = hex(&row.hash_at(seq, row.prev_hash())).into_bytes();
        let content_ok = !row.odd && computed == row.hash();
        let mac_ok = key.check_record(row.hash(), row.mac());
        let mut sound = false;
        relocated_last = false;
        if content_ok && mac_ok {
            sound = true;
            if !gap && seq == expected && prev.2 && row.prev_hash() != prev.1.as_slice() {
                problems.push(
                    seq,
                    ProblemKind::BrokenLink,
                    format!(
                        "record {seq} does not follow record {}: its prev_hash is not that record's hash (records were swapped or replaced)",
                        prev.0
                    ),
                );
            }
            anchor = (seq, row.hash().to_vec());
            pending_forged.clear();
        } else {
            // An authentic record moved to another seq (records inserted
            // before it and the chain recomputed)?
            let candidate = anchor.0.saturating_add(1);
            let original = hex(&row.hash_at(candidate, &anchor.1));
            let relocated =
                !row.odd && candidate != seq && key.check_record(original.as_bytes(), row.mac());
            if relocated {
                if seq > candidate {
                    for &i in &pending_forged {
                        let p = &mut problems.list[i];
                        p.kind = ProblemKind::Inserted;
                        p.detail = format!(
                            "record {} was inserted: it was written without the audit key, and the authentic records after it were renumbered",
                            p.seq
                        );
                    }
                }
                pending_forged.clear();
                anchor = (candidate, original.into_bytes());
                relocated_last = true;
            } else if !content_ok && mac_ok {
                problems.push(
                    seq,
                    ProblemKind::Edited,
                    format!("record {seq} was edited: its hash does not match its contents"),
                );
                anchor = (seq, row.hash().to_vec());
                pending_forged.clear();
            } else if content_ok {
                let i = problems.push(
                    seq,
                    ProblemKind::Forged,
                    format!(
                        "record {seq} is not authentic: its hash matches its contents but its MAC does not, so it was written or rewritten without the audit key (edited with the chain recomputed, or inserted)"
                    ),
                );
                pending_forged.extend(i);
            } else {
                problems.push(
                    seq,
                    ProblemKind::Edited,
                    format!(
                        "record {seq} was edited: its hash does not match its contents, and its MAC does not match its hash"
                    ),
                );
            }
        }
        prev = (seq, row.hash().to_vec(), sound);
        last = Some((seq, row.hash().to_vec()));
    }
    drop(stmt);

    // The head: authentic, and where the records end.
    let head: Option<(i64, String, String)> = conn
        .query_row(
            "SELECT last_seq, last_hash, mac FROM audit_head WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(q("read the chain head"))?;
    let (end_seq, end_hash) = match &last {
        Some((s, h)) => (*s, h.clone()),
        None => (start_seq, prev.1.clone()),
    };
    match head {
        None => {
            problems.push(
                end_seq,
                ProblemKind::BadHead,
                "the chain head row is missing: it was deleted, so records may have been removed from the end".into(),
            );
        }
        Some((head_seq, head_hash, head_mac)) => {
            let head_seq = head_seq.max(0) as u64;
            if !key.check_head(head_seq, &head_hash, &head_mac) {
                problems.push(
                    head_seq,
                    ProblemKind::BadHead,
                    format!("the chain head (last seq {head_seq}) is not authentic: its MAC does not match"),
                );
            }
            if head_seq > end_seq {
                let detail = if last.is_none() {
                    format!(
                        "the log holds no records after {end_seq} but its head records {head_seq}: {} deleted",
                        range(end_seq + 1, head_seq, true)
                    )
                } else {
                    format!(
                        "the log ends at record {end_seq} but its head records {head_seq}: {} deleted from the end",
                        range(end_seq + 1, head_seq, true)
                    )
                };
                problems.push(end_seq + 1, ProblemKind::HeadMismatch, detail);
            } else if head_seq < end_seq {
                let detail = if relocated_last
                    && anchor.0 == head_seq
                    && anchor.1 == head_hash.as_bytes()
                {
                    format!(
                        "the log ends at record {end_seq} but its head records {head_seq}: records were inserted and the rest renumbered"
                    )
                } else {
                    format!(
                        "the log ends at record {end_seq} but its head records {head_seq}: records after {head_seq} were added without the audit key"
                    )
                };
                problems.push(head_seq + 1, ProblemKind::HeadMismatch, detail);
            } else if head_hash.as_bytes() != end_hash.as_slice() {
                problems.push(
                    end_seq,
                    ProblemKind::HeadMismatch,
                    format!("record {end_seq}'s hash is not the one the chain head records: it was replaced"),
                );
            }
        }
    }

    let mut list = problems.list;
    list.sort_by_key(|p| p.seq);
    Ok(ChainReport {
        intact: list.is_empty() && problems.omitted == 0,
        records_checked: checked,
        first_seq,
        last_seq: last.map(|(s, _)| s),
        checkpoint,
        problems: list,
        problems_omitted: problems.omitted,
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;
    use tempfile::TempDir;

    fn rec(i: usize) -> NewAuditRecord {
        NewAuditRecord {
            actor: ["alice", "bob"][i % 2].into(),
            source: "cli".into(),
            action: ["sandbox.create", "sandbox.destroy", "tenant.update"][i % 3].into(),
            target: format!("sb-{i}"),
            tenant: [Some("t1".to_string()), Some("t2".to_string()), None][i % 3].clone(),
            outcome: [
                Outcome::Success,
                Outcome::Failure,
                Outcome::Denied,
                Outcome::Success,
            ][i % 4],
            details: json!({"i": i, "kind": "namespace", "allow": ["10.0.0.0/8"]}),
        }
    }

    fn key(dir: &Path) -> AuditKey {
        AuditKey::load_or_create(dir).unwrap()
    }

    /// A log in a fresh directory with records 1..=n.
    fn log_with(n: usize) -> (TempDir, AuditLog) {
        let dir = TempDir::new().unwrap();
        let mut log = AuditLog::open(dir.path(), key(dir.path())).unwrap();
        for i in 1..=n {
            assert_eq!(log.append(&rec(i)).unwrap().seq, i as u64);
        }
        (dir, log)
    }

    /// What an attacker with write access but no key uses.
    fn raw(dir: &TempDir) -> Connection {
        Connection::open(dir.path().join(DB_FILE)).unwrap()
    }

    fn problems(log: &AuditLog) -> Vec<(u64, ProblemKind)> {
        let r = log.verify().unwrap();
        assert_eq!(r.intact, r.problems.is_empty());
        r.problems.iter().map(|p| (p.seq, p.kind)).collect()
    }

    fn stored_hash(c: &Connection, seq: u64) -> String {
        c.query_row(
            "SELECT hash FROM audit_log WHERE seq = ?1",
            [seq as i64],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// The attacker's move: recompute every SHA-256 hash and prev_hash from
    /// record `from` on, so the unkeyed chain is consistent again.
    fn rechain(c: &Connection, from: u64) {
        let mut prev: String = c
            .query_row(
                "SELECT hash FROM audit_log WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
                [from as i64],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
            .unwrap_or_else(|| ZERO_HASH.to_string());
        let seqs: Vec<i64> = c
            .prepare("SELECT seq FROM audit_log WHERE seq >= ?1 ORDER BY seq")
            .unwrap()
            .query_map([from as i64], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for seq in seqs {
            let row = c
                .query_row(
                    &format!("SELECT {RECORD_COLUMNS}, mac FROM audit_log WHERE seq = ?1"),
                    [seq],
                    StoredRow::read,
                )
                .unwrap();
            let hash = hex(&row.hash_at(seq as u64, prev.as_bytes()));
            c.execute(
                "UPDATE audit_log SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
                params![prev, hash, seq],
            )
            .unwrap();
            prev = hash;
        }
    }

    #[test]
    fn appended_chain_verifies() {
        let dir = TempDir::new().unwrap();
        let mut log = AuditLog::open(dir.path(), key(dir.path())).unwrap();
        assert_eq!(log.head().unwrap(), None);
        assert!(log.verify().unwrap().intact, "an empty log verifies");
        let mut prev = ZERO_HASH.to_string();
        for i in 1..=10 {
            let r = log.append(&rec(i)).unwrap();
            assert_eq!(r.prev_hash, prev);
            assert_eq!(r.hash.len(), 64);
            // 2026-11-23T19:20:01.123Z
            assert_eq!(r.time.len(), 24, "{}", r.time);
            assert!(r.time.ends_with('Z') && r.time.as_bytes()[19] == b'.');
            prev = r.hash;
        }
        let report = log.verify().unwrap();
        assert!(report.intact, "{:?}", report.problems);
        assert_eq!(report.records_checked, 10);
        assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(10)));
        assert_eq!(log.head().unwrap(), Some((10, prev)));
        assert_eq!(log.count().unwrap(), 10);
        // Reopening changes nothing.
        drop(log);
        let log = AuditLog::open(dir.path(), key(dir.path())).unwrap();
        assert!(log.verify().unwrap().intact);
        let page = log.query(&AuditFilter::default()).unwrap();
        assert_eq!(page.records[3].details, rec(4).details);
        assert_eq!(page.records[1].tenant, None);
    }

    #[test]
    fn shares_the_state_database_with_the_store() {
        let dir = TempDir::new().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let mut log = AuditLog::open(dir.path(), key(dir.path())).unwrap();
        log.append(&rec(1)).unwrap();
        drop(store);
        let _store = crate::Store::open(dir.path()).unwrap();
        assert!(log.verify().unwrap().intact);
        assert_eq!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".db"))
                .count(),
            1
        );
    }

    #[test]
    fn hash_encoding_is_unambiguous() {
        let base = RawRecord {
            seq: 1,
            time: b"t",
            actor: b"ab",
            source: b"c",
            action: b"x",
            target: b"y",
            tenant: None,
            outcome: b"success",
            details: b"{}",
            prev_hash: ZERO_HASH.as_bytes(),
        };
        let shifted = RawRecord {
            actor: b"a",
            source: b"bc",
            ..base
        };
        assert_ne!(record_hash(&base), record_hash(&shifted));
        let empty_tenant = RawRecord {
            tenant: Some(b""),
            ..base
        };
        assert_ne!(record_hash(&base), record_hash(&empty_tenant));
    }

    #[test]
    fn edits_are_found_where_they_are() {
        let (dir, log) = log_with(10);
        let c = raw(&dir);
        c.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4", [])
            .unwrap();
        // Even a change to the JSON text that keeps its meaning.
        c.execute(
            "UPDATE audit_log SET details = replace(details, ',', ', ') WHERE seq = 7",
            [],
        )
        .unwrap();
        assert_eq!(
            problems(&log),
            [(4, ProblemKind::Edited), (7, ProblemKind::Edited)]
        );
        let r = log.verify().unwrap();
        assert!(
            r.problems[0].detail.contains("record 4 was edited"),
            "{}",
            r.problems[0].detail
        );
        // Tenant NULL → text, outcome, and the time are covered too.
        c.execute("UPDATE audit_log SET actor = 'alice' WHERE seq = 4", [])
            .unwrap();
        c.execute(
            "UPDATE audit_log SET details = replace(details, ', ', ',') WHERE seq = 7",
            [],
        )
        .unwrap();
        assert!(
            log.verify().unwrap().intact,
            "undoing the edits restores the chain"
        );
        c.execute("UPDATE audit_log SET tenant = 'admin' WHERE seq = 3", [])
            .unwrap();
        c.execute("UPDATE audit_log SET outcome = 'success' WHERE seq = 6", [])
            .unwrap();
        c.execute(
            "UPDATE audit_log SET time = '2020-01-01T00:00:00.000Z' WHERE seq = 9",
            [],
        )
        .unwrap();
        assert_eq!(
            problems(&log),
            [
                (3, ProblemKind::Edited),
                (6, ProblemKind::Edited),
                (9, ProblemKind::Edited)
            ]
        );
    }

    #[test]
    fn an_edit_with_the_chain_recomputed_fails_the_macs() {
        let (dir, log) = log_with(10);
        let c = raw(&dir);
        c.execute("UPDATE audit_log SET outcome = 'success' WHERE seq = 6", [])
            .unwrap();
        rechain(&c, 6);
        let found = problems(&log);
        // The unkeyed chain is consistent again: no hash mismatch anywhere.
        assert!(
            !found.iter().any(|p| p.1 == ProblemKind::Edited),
            "{found:?}"
        );
        assert_eq!(found[0], (6, ProblemKind::Forged));
        assert!(found.iter().all(|p| p.0 >= 6));
        // Every rewritten record, and the head no longer matching.
        for seq in 6..=10 {
            assert!(found.contains(&(seq, ProblemKind::Forged)), "{found:?}");
        }
        assert!(
            found.contains(&(10, ProblemKind::HeadMismatch)),
            "{found:?}"
        );
    }

    #[test]
    fn deleting_a_record_is_found() {
        let (dir, log) = log_with(10);
        let c = raw(&dir);
        c.execute("DELETE FROM audit_log WHERE seq = 5", [])
            .unwrap();
        assert_eq!(problems(&log), [(5, ProblemKind::Deleted)]);
        c.execute("DELETE FROM audit_log WHERE seq IN (1, 8, 9)", [])
            .unwrap();
        assert_eq!(
            problems(&log),
            [
                (1, ProblemKind::Deleted),
                (5, ProblemKind::Deleted),
                (8, ProblemKind::Deleted)
            ]
        );
        let r = log.verify().unwrap();
        assert!(
            r.problems[2].detail.contains("records 8 to 9 are missing"),
            "{}",
            r.problems[2].detail
        );
    }

    #[test]
    fn deleting_the_tail_or_everything_is_found() {
        let (dir, log) = log_with(10);
        let c = raw(&dir);
        c.execute("DELETE FROM audit_log WHERE seq >= 9", [])
            .unwrap();
        assert_eq!(problems(&log), [(9, ProblemKind::HeadMismatch)]);
        c.execute("DELETE FROM audit_log", []).unwrap();
        assert_eq!(problems(&log), [(1, ProblemKind::HeadMismatch)]);
        let r = log.verify().unwrap();
        assert!(
            r.problems[0]
                .detail
                .contains("records 1 to 10 were deleted"),
            "{}",
            r.problems[0].detail
        );
    }

    #[test]
    fn moving_the_head_back_needs_the_key() {
        let (dir, mut log) = log_with(10);
        let c = raw(&dir);
        let h9 = stored_hash(&c, 9);
        c.execute("DELETE FROM audit_log WHERE seq = 10", [])
            .unwrap();
        c.execute(
            "UPDATE audit_head SET last_seq = 9, last_hash = ?1 WHERE id = 1",
            [&h9],
        )
        .unwrap();
        assert_eq!(problems(&log), [(9, ProblemKind::BadHead)]);
        assert!(matches!(log.append(&rec(11)), Err(AuditError::BadHead(_))));
        c.execute("DELETE FROM audit_head", []).unwrap();
        assert_eq!(problems(&log), [(9, ProblemKind::BadHead)]);
        // Reopening does not quietly make a new head for a log with records.
        drop(log);
        let log = AuditLog::open(dir.path(), key(dir.path())).unwrap();
        assert_eq!(problems(&log), [(9, ProblemKind::BadHead)]);
    }

    /// Shifts records `from..` up by one and writes a record at `from` that
    /// links to its predecessor, as an attacker without the key would.
    fn insert_forged(c: &Connection, from: u64) {
        c.execute_batch(&format!(
            "UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= {from};
             UPDATE audit_log SET seq = seq - 999999 WHERE seq >= 1000000;"
        ))
        .unwrap();
        let prev = stored_hash(c, from - 1);
        let forged = RawRecord {
            seq: from,
            time: b"2026-01-01T00:00:00.000Z",
            actor: b"root",
            source: b"cli",
            action: b"tenant.delete",
            target: b"t1",
            tenant: Some(b"t1"),
            outcome: b"success",
            details: b"{}",
            prev_hash: prev.as_bytes(),
        };
        let hash = hex(&record_hash(&forged));
        c.execute(
            "INSERT INTO audit_log(seq, time, actor, source, action, target, tenant, outcome,
                details, prev_hash, hash, mac)
             VALUES (?1, '2026-01-01T00:00:00.000Z', 'root', 'cli', 'tenant.delete', 't1', 't1',
                'success', '{}', ?2, ?3, ?4)",
            params![from as i64, prev, hash, "ab".repeat(32)],
        )
        .unwrap();
    }

    #[test]
    fn an_inserted_record_is_found_with_or_without_a_recomputed_chain() {
        let (dir, log) = log_with(10);
        let c = raw(&dir);
        insert_forged(&c, 4);
        assert_eq!(
            problems(&log),
            [(4, ProblemKind::Inserted), (11, ProblemKind::HeadMismatch)]
        );
        rechain(&c, 4);
        assert_eq!(
            problems(&log),
            [(4, ProblemKind::Inserted), (11, ProblemKind::HeadMismatch)]
        );
        let r = log.verify().unwrap();
        assert!(
            r.problems[0].detail.contains("record 4 was inserted"),
            "{}",
            r.problems[0].detail
        );

        // Two insertions, and one appended past the head.
        let (dir, log) = log_with(10);
        let c = raw(&dir);
        insert_forged(&c, 3);
        insert_forged(&c, 8);
        rechain(&c, 3);
        assert_eq!(
            problems(&log),
            [
                (3, ProblemKind::Inserted),
                (8, ProblemKind::Inserted),
                (11, ProblemKind::HeadMismatch)
            ]
        );
        insert_forged(&c, 13);
        let found = problems(&log);
        assert!(found.contains(&(13, ProblemKind::Forged)), "{found:?}");
    }

    #[test]
    fn concurrent_appends_keep_one_gapless_chain() {
        let dir = TempDir::new().unwrap();
        let k = key(dir.path());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = dir.path().to_path_buf();
                let k = k.clone();
                std::thread::spawn(move || {
                    let mut log = AuditLog::open(&path, k).unwrap();
                    (0..25)
                        .map(|i| log.append(&rec(t * 100 + i)).unwrap().seq)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        let log = AuditLog::open(dir.path(), k).unwrap();
        let r = log.verify().unwrap();
        assert!(r.intact, "{:?}", r.problems);
        assert_eq!((r.records_checked, r.last_seq), (100, Some(100)));
    }

    /// Appends `n` records and waits until the clock has moved on, so the
    /// next record's time is strictly later.
    fn append_batch(log: &mut AuditLog, from: usize, n: usize) -> Vec<AuditRecord> {
        let out: Vec<_> = (from..from + n)
            .map(|i| log.append(&rec(i)).unwrap())
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(5));
        out
    }

    #[test]
    fn prune_keeps_a_verifiable_chain() {
        let dir = TempDir::new().unwrap();
        let mut log = AuditLog::open(dir.path(), key(dir.path())).unwrap();
        let old = append_batch(&mut log, 1, 5);
        let new = append_batch(&mut log, 6, 5);
        let report = log.prune_before(&new[0].time).unwrap();
        assert_eq!(report.pruned, 5);
        let cp = report.checkpoint.unwrap();
        assert_eq!((cp.last_pruned_seq, cp.pruned_count), (5, 5));
        assert_eq!(cp.last_pruned_hash, old[4].hash);
        let r = log.verify().unwrap();
        assert!(r.intact, "{:?}", r.problems);
        assert_eq!(
            (r.first_seq, r.last_seq, r.records_checked),
            (Some(6), Some(10), 5)
        );
        assert_eq!(r.checkpoint, Some(cp.clone()));
        let seqs: Vec<u64> = log
            .query(&AuditFilter::default())
            .unwrap()
            .records
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, [6, 7, 8, 9, 10]);
        assert_eq!(log.append(&rec(11)).unwrap().seq, 11);
        // Nothing older than the cutoff is left: a second prune is a no-op.
        assert_eq!(log.prune_before(&new[0].time).unwrap().pruned, 0);
        // A cutoff in the future keeps the newest record, and the count adds up.
        let report = log.prune_before("2999-01-01T00:00:00Z").unwrap();
        assert_eq!(report.pruned, 5);
        assert_eq!(report.checkpoint.as_ref().unwrap().pruned_count, 10);
        assert_eq!(log.count().unwrap(), 1);
        drop(log);
        let mut log = AuditLog::open(dir.path(), key(dir.path())).unwrap();
        assert!(log.verify().unwrap().intact);
        log.append(&rec(12)).unwrap();
        assert!(log.verify().unwrap().intact);
        assert!(matches!(
            log.prune_before("yesterday"),
            Err(AuditError::BadTime { .. })
        ));
    }

    #[test]
    fn prune_refuses_to_erase_evidence() {
        let (dir, mut log) = log_with(6);
        raw(&dir)
            .execute("UPDATE audit_log SET actor = 'x' WHERE seq = 2", [])
            .unwrap();
        let err = log.prune_before("2999-01-01T00:00:00Z").unwrap_err();
        assert!(
            matches!(err, AuditError::Tampered { count: 1, .. }),
            "{err}"
        );
        assert_eq!(log.count().unwrap(), 6);
    }

    #[test]
    fn forged_or_removed_checkpoints_are_found() {
        // A checkpoint made up to cover deleted records.
        let (dir, log) = log_with(10);
        let c = raw(&dir);
        let h3 = stored_hash(&c, 3);
        c.execute("DELETE FROM audit_log WHERE seq <= 3", [])
            .unwrap();
        assert_eq!(problems(&log), [(1, ProblemKind::Deleted)]);
        c.execute(
            "INSERT INTO audit_checkpoint VALUES (1, 3, ?1, '2026-01-01T00:00:00.000Z', 3, ?2)",
            params![h3, "00".repeat(32)],
        )
        .unwrap();
        assert_eq!(problems(&log), [(3, ProblemKind::BadCheckpoint)]);

        // A real checkpoint, edited or removed.
        let dir = TempDir::new().unwrap();
        let mut log = AuditLog::open(dir.path(), key(dir.path())).unwrap();
        append_batch(&mut log, 1, 4);
        let keep = append_batch(&mut log, 5, 4);
        assert_eq!(log.prune_before(&keep[0].time).unwrap().pruned, 4);
        assert!(log.verify().unwrap().intact);
        let c = raw(&dir);
        c.execute("UPDATE audit_checkpoint SET pruned_count = 0", [])
            .unwrap();
        assert_eq!(problems(&log), [(4, ProblemKind::BadCheckpoint)]);
        c.execute("UPDATE audit_checkpoint SET pruned_count = 4", [])
            .unwrap();
        assert!(log.verify().unwrap().intact);
        c.execute("DELETE FROM audit_checkpoint", []).unwrap();
        assert_eq!(problems(&log), [(1, ProblemKind::Deleted)]);
    }

    #[test]
    fn queries_filter_and_page() {
        let dir = TempDir::new().unwrap();
        let mut log = AuditLog::open(dir.path(), key(dir.path())).unwrap();
        let a = append_batch(&mut log, 1, 6);
        let b = append_batch(&mut log, 7, 6);
        let c = append_batch(&mut log, 13, 6);
        let seqs = |f: AuditFilter| -> Vec<u64> {
            let p = log.query(&f).unwrap();
            assert_eq!(p.next_after, None);
            p.records.iter().map(|r| r.seq).collect()
        };
        let expect = |pred: &dyn Fn(&NewAuditRecord) -> bool| -> Vec<u64> {
            (1..=18)
                .filter(|&i| pred(&rec(i)))
                .map(|i| i as u64)
                .collect()
        };
        // Time range: since inclusive, until exclusive; any offset accepted.
        assert_eq!(
            seqs(AuditFilter {
                since: Some(b[0].time.clone()),
                until: Some(c[0].time.clone()),
                ..Default::default()
            }),
            (7..=12).collect::<Vec<_>>()
        );
        assert_eq!(
            seqs(AuditFilter {
                until: Some(b[0].time.replace('Z', "+00:00")),
                ..Default::default()
            }),
            a.iter().map(|r| r.seq).collect::<Vec<_>>()
        );
        assert_eq!(
            seqs(AuditFilter {
                action: Some("sandbox.destroy".into()),
                ..Default::default()
            }),
            expect(&|r| r.action == "sandbox.destroy")
        );
        assert_eq!(
            seqs(AuditFilter {
                actor: Some("bob".into()),
                ..Default::default()
            }),
            expect(&|r| r.actor == "bob")
        );
        assert_eq!(
            seqs(AuditFilter {
                tenant: Some("t2".into()),
                outcome: Some(Outcome::Success),
                ..Default::default()
            }),
            expect(&|r| r.tenant.as_deref() == Some("t2") && r.outcome == Outcome::Success)
        );
        assert_eq!(
            seqs(AuditFilter {
                outcome: Some(Outcome::Denied),
                since: Some(b[0].time.clone()),
                ..Default::default()
            }),
            expect(&|r| r.outcome == Outcome::Denied)
                .into_iter()
                .filter(|&s| s >= 7)
                .collect::<Vec<_>>()
        );
        assert!(matches!(
            log.query(&AuditFilter {
                since: Some("last tuesday".into()),
                ..Default::default()
            }),
            Err(AuditError::BadTime { what: "since", .. })
        ));

        // Pages of 4 over the 9 records by alice: 4, 4, 1.
        let mut f = AuditFilter {
            actor: Some("alice".into()),
            limit: 4,
            ..Default::default()
        };
        let mut pages = Vec::new();
        loop {
            let p = log.query(&f).unwrap();
            pages.push(p.records.iter().map(|r| r.seq).collect::<Vec<_>>());
            match p.next_after {
                Some(after) => f.after_seq = Some(after),
                None => break,
            }
        }
        assert_eq!(pages, [vec![2, 4, 6, 8], vec![10, 12, 14, 16], vec![18]]);
    }

    #[test]
    fn export_writes_every_matching_record_as_a_line() {
        let (_dir, log) = log_with(2500);
        let mut out = Vec::new();
        let f = AuditFilter {
            actor: Some("bob".into()),
            limit: 3,
            ..Default::default()
        };
        assert_eq!(log.export_jsonl(&f, &mut out).unwrap(), 1250);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1250);
        assert_eq!(lines[0]["seq"], 1);
        assert_eq!(lines[0]["actor"], "bob");
        assert_eq!(lines[0]["outcome"], "failure");
        assert_eq!(lines[1249]["seq"], 2499);
        let mut all = Vec::new();
        assert_eq!(
            log.export_jsonl(
                &AuditFilter {
                    after_seq: Some(2400),
                    ..Default::default()
                },
                &mut all
            )
            .unwrap(),
            100
        );
    }

    #[test]
    fn report_serializes_for_the_cli() {
        let (dir, log) = log_with(3);
        raw(&dir)
            .execute("DELETE FROM audit_log WHERE seq = 2", [])
            .unwrap();
        let v = serde_json::to_value(log.verify().unwrap()).unwrap();
        assert_eq!(v["intact"], false);
        assert_eq!(v["problems"][0]["kind"], "deleted");
        assert_eq!(v["problems"][0]["seq"], 2);
    }

    #[test]
    fn problems_are_capped() {
        let (dir, log) = log_with(150);
        raw(&dir)
            .execute("UPDATE audit_log SET actor = 'x'", [])
            .unwrap();
        let r = log.verify().unwrap();
        assert_eq!(r.problems.len(), MAX_PROBLEMS);
        assert_eq!(r.problems_omitted, 50);
        assert!(!r.intact);
    }

    #[test]
    fn key_is_created_private_and_reused() {
        let dir = TempDir::new().unwrap();
        let state = dir.path().join("state");
        assert!(matches!(
            AuditKey::load(&state),
            Err(AuditError::KeyIo { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound
        ));
        let k1 = AuditKey::load_or_create(&state).unwrap();
        let path = state.join(AUDIT_KEY_FILE);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let k2 = AuditKey::load_or_create(&state).unwrap();
        assert_eq!(k1.0, k2.0);
        assert_eq!(AuditKey::load(&state).unwrap().0, k1.0);
        assert_eq!(format!("{k1:?}"), "AuditKey(..)");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = AuditKey::load_or_create(&state).unwrap_err();
        assert!(
            matches!(err, AuditError::KeyPermissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("0644"), "{err}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, [0u8; 16]).unwrap();
        assert!(matches!(
            AuditKey::load(&state),
            Err(AuditError::KeyLength { len: 16, .. })
        ));
    }

    #[test]
    fn another_key_can_neither_append_nor_verify() {
        let (dir, _log) = log_with(3);
        let other = TempDir::new().unwrap();
        let mut log = AuditLog::open(dir.path(), key(other.path())).unwrap();
        assert!(matches!(log.append(&rec(4)), Err(AuditError::BadHead(_))));
        let found = problems(&log);
        assert_eq!(
            found,
            [
                (1, ProblemKind::Forged),
                (2, ProblemKind::Forged),
                (3, ProblemKind::Forged),
                (3, ProblemKind::BadHead)
            ]
        );
    }
}
