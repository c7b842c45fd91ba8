//! The SQLite schema and its queries.

use palisade_core::config::Mode;
use palisade_core::exposure::{Exposure, PortRange};
use palisade_core::ipam::{self, OffsetRange};
use palisade_core::model::{CniAttachment, SandboxKind};
use palisade_core::names::{SandboxName, TenantName};
use palisade_core::policy::PortRule;
use palisade_core::tenant_rule::TenantRule;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::{Path, PathBuf};

pub const DB_FILE: &str = "palisade.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database: {context}: {source}")]
    Query {
        context: String,
        source: rusqlite::Error,
    },
    #[error("a sandbox named {0} already exists")]
    NameTaken(String),
    #[error("the address pool {pool} is full: all {size} addresses are in use")]
    PoolFull { pool: String, size: u64 },
    #[error("host port {wanted} is taken: sandbox {holder} already exposes {held}")]
    PortTaken {
        wanted: Exposure,
        holder: String,
        held: Exposure,
    },
    #[error("container {container_id} already has an attachment {ifname}, or host port {host_port} is already in use by another")]
    AttachmentTaken {
        container_id: String,
        ifname: String,
        host_port: String,
    },
    #[error("a user named {0} already exists")]
    UserExists(String),
    #[error("no user named {0}")]
    UserMissing(String),
    /// The tenant already has exactly this rule.
    #[error("tenant {tenant} already has this rule: rule {id}, {rule}")]
    RuleExists {
        tenant: String,
        id: u64,
        rule: TenantRule,
    },
    /// The rule overlaps another of the tenant's rules with the same action
    /// and protocol: an nf_tables interval set cannot hold both.
    #[error("{rule} overlaps rule {id} of tenant {tenant} ({existing}): rules with the same action and protocol may not overlap; remove rule {id} first, or make the ports or CIDRs disjoint")]
    RuleOverlaps {
        tenant: String,
        rule: TenantRule,
        id: u64,
        existing: TenantRule,
    },
    #[error("state database holds a malformed value for sandbox {sandbox}: {what}")]
    Corrupt { sandbox: String, what: String },
    #[error("state database holds a malformed {key}: {value:?}")]
    CorruptMeta { key: &'static str, value: String },
}

pub(crate) fn q(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Query { context, source }
}

/// Lifecycle state of a sandbox row; anything but `Ready` is an unfinished
/// operation to repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Creating,
    Ready,
    Destroying,
}

impl SandboxState {
    fn as_str(self) -> &'static str {
        match self {
            SandboxState::Creating => "creating",
            SandboxState::Ready => "ready",
            SandboxState::Destroying => "destroying",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "creating" => Some(SandboxState::Creating),
            "ready" => Some(SandboxState::Ready),
            "destroying" => Some(SandboxState::Destroying),
            _ => None,
        }
    }
}

impl std::fmt::Display for SandboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a new sandbox row needs.
#[derive(Debug, Clone)]
pub struct NewSandbox {
    pub name: SandboxName,
    pub tenant: TenantName,
    pub kind: SandboxKind,
    pub internet: bool,
    pub allow: Vec<PortRule>,
    /// True when palisade makes the namespace (and so removes it on destroy).
    pub netns_created: bool,
    /// The interface a CNI runtime made (kind `cni`), stored with the row.
    pub cni: Option<CniAttachment>,
}

/// A sandbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRecord {
    pub id: u64,
    pub name: SandboxName,
    pub tenant: TenantName,
    pub tenant_id: u32,
    pub kind: SandboxKind,
    pub internet: bool,
    pub allow: Vec<PortRule>,
    /// Generation of the policy (see `Sandbox::policy_epoch`).
    pub policy_epoch: u32,
    pub state: SandboxState,
    pub netns_created: bool,
    /// Host offset in the pools; `None` for sandboxes without networking.
    pub offset: Option<u32>,
    pub created_at: String,
    /// Host ports forwarded to this sandbox, in the order they were added.
    pub exposures: Vec<Exposure>,
    /// The interface a CNI runtime made (kind `cni`).
    pub cni: Option<CniAttachment>,
}

/// A tenant rule row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRuleRecord {
    /// Never reused.
    pub id: u64,
    pub tenant: TenantName,
    /// The tenant's mark in the ruleset.
    pub tenant_id: u32,
    pub rule: TenantRule,
    pub created_at: String,
}

/// The policy columns of a sandbox that `sandbox update` changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyColumns {
    pub internet: bool,
    pub allow: Vec<PortRule>,
    /// The policy's generation (see `Sandbox::policy_epoch`).
    pub epoch: u32,
}

fn allow_text(allow: &[PortRule]) -> String {
    allow
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn read_retired_links(conn: &rusqlite::Connection) -> Result<u64, StoreError> {
    conn.query_row(
        "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'retired_links'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|n| n.unwrap_or(0).max(0) as u64)
    .map_err(q("count the retired interfaces"))
}

/// What a destroy did with the sandbox's veth, for the reap to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetiredLink<'a> {
    /// No veth was retired (a tap, or nothing there).
    None,
    /// Set down in the graveyard group: the reap deletes it with the group.
    SetDown,
    /// Left up with its routes and policy gone (routed mode: setting it
    /// down would cost a walk of the host's IPv6 routes on the destroy's
    /// path). The reap sets it down into the group first.
    LeftUp(&'a str),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS links_left_up (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS sandboxes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    internet INTEGER NOT NULL,
    allow TEXT NOT NULL,
    state TEXT NOT NULL,
    netns_created INTEGER NOT NULL,
    addr_offset INTEGER UNIQUE,
    created_at TEXT NOT NULL,
    policy_epoch INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS sandboxes_unfinished ON sandboxes(state) WHERE state != 'ready';
CREATE INDEX IF NOT EXISTS sandboxes_by_tenant ON sandboxes(tenant_id);
CREATE TABLE IF NOT EXISTS exposures (
    sandbox_id INTEGER NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
    proto TEXT NOT NULL,
    host_ip TEXT,
    host_first INTEGER NOT NULL,
    host_last INTEGER NOT NULL,
    guest_first INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS exposures_by_port ON exposures(proto, host_first);
CREATE INDEX IF NOT EXISTS exposures_by_sandbox ON exposures(sandbox_id);
CREATE TABLE IF NOT EXISTS released (
    addr_offset INTEGER PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS cni_attachments (
    sandbox_id INTEGER PRIMARY KEY REFERENCES sandboxes(id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    container_id TEXT NOT NULL,
    ifname TEXT NOT NULL,
    netns TEXT NOT NULL,
    host_port TEXT NOT NULL UNIQUE,
    bridge TEXT NOT NULL,
    mac TEXT NOT NULL,
    addrs TEXT NOT NULL,
    UNIQUE(container_id, ifname)
);
CREATE INDEX IF NOT EXISTS cni_by_network ON cni_attachments(network);
CREATE INDEX IF NOT EXISTS cni_by_bridge ON cni_attachments(bridge);
CREATE TABLE IF NOT EXISTS tenant_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    action TEXT NOT NULL,
    proto TEXT NOT NULL,
    port_first INTEGER NOT NULL,
    port_last INTEGER NOT NULL,
    cidr TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE(tenant_id, action, proto, port_first, port_last, cidr)
);
";

const SELECT_RULE: &str = "SELECT r.id, t.name, r.tenant_id, r.action, r.proto, r.port_first, r.port_last, r.cidr, r.created_at
    FROM tenant_rules r JOIN tenants t ON t.id = r.tenant_id";

const SELECT: &str =
    "SELECT s.id, s.name, t.name, s.tenant_id, s.kind, s.internet, s.allow, s.state,
    s.netns_created, s.addr_offset, s.created_at,
    c.network, c.container_id, c.ifname, c.netns, c.host_port, c.bridge, c.mac, c.addrs,
    s.policy_epoch
    FROM sandboxes s JOIN tenants t ON t.id = s.tenant_id
    LEFT JOIN cni_attachments c ON c.sandbox_id = s.id";

/// Opens a connection to the state database in `dir` (creating both if
/// needed) with the settings every part of the store uses.
pub(crate) fn open_connection(dir: &Path) -> Result<(Connection, PathBuf), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(DB_FILE);
    let conn = Connection::open(&path).map_err(|source| StoreError::Open {
        path: path.clone(),
        source,
    })?;
    // WAL with NORMAL sync survives a killed process (the kill -9 case);
    // busy_timeout covers readers racing the one writer.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
    )
    .map_err(|source| StoreError::Open {
        path: path.clone(),
        source,
    })?;
    Ok((conn, path))
}

/// An open state database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// A write transaction that takes the database's write lock at BEGIN
    /// (waiting up to the busy timeout). A deferred one that reads first
    /// fails at once with SQLITE_BUSY when another connection (the audit
    /// log, the accounts) committed in between.
    fn write_transaction(&mut self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(q("begin"))
    }

    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let (conn, path) = open_connection(dir)?;
        conn.execute_batch(SCHEMA)
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        let mut store = Store { conn };
        store.add_missing_columns()?;
        Ok(store)
    }

    /// Adds the columns a database made by an earlier version lacks, with
    /// their defaults (`CREATE TABLE IF NOT EXISTS` leaves its tables as
    /// they are). One read when there is nothing to add.
    fn add_missing_columns(&mut self) -> Result<(), StoreError> {
        const ADDED: &[(&str, &str, &str)] =
            &[("sandboxes", "policy_epoch", "INTEGER NOT NULL DEFAULT 1")];
        let has = |conn: &Connection, table: &str, column: &str| {
            conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
                [table, column],
                |r| r.get::<_, bool>(0),
            )
            .map_err(q(format!("look up column {table}.{column}")))
        };
        for (table, column, decl) in ADDED {
            if has(&self.conn, table, column)? {
                continue;
            }
            // Checked again under the write lock: another process may have
            // added it meanwhile.
            let tx = self.write_transaction()?;
            if !has(&tx, table, column)? {
                tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))
                    .map_err(q(format!("add column {table}.{column}")))?;
            }
            tx.commit().map_err(q("commit"))?;
        }
        Ok(())
    }

    /// Inserts a sandbox in state `creating`, with its tenant (created on
    /// first use) and, if it has networking, a free offset of `range`; all in
    /// one transaction, so an offset is never handed out twice.
    pub fn insert_sandbox(
        &mut self,
        new: &NewSandbox,
        range: OffsetRange,
    ) -> Result<SandboxRecord, StoreError> {
        let tx = self.write_transaction()?;
        let taken: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM sandboxes WHERE name = ?1)",
                [new.name.as_str()],
                |r| r.get(0),
            )
            .map_err(q("look up name"))?;
        if taken {
            return Err(StoreError::NameTaken(new.name.to_string()));
        }
        tx.execute(
            "INSERT OR IGNORE INTO tenants(name) VALUES (?1)",
            [new.tenant.as_str()],
        )
        .map_err(q("insert tenant"))?;
        let tenant_id: u32 = tx
            .query_row(
                "SELECT id FROM tenants WHERE name = ?1",
                [new.tenant.as_str()],
                |r| r.get(0),
            )
            .map_err(q("read tenant"))?;
        // A CNI sandbox's addresses come from the runtime's IPAM.
        let offset = if new.kind.has_network() && new.kind != SandboxKind::Cni {
            let cursor: u32 = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = 'ipam_cursor'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(q("read IPAM cursor"))?
                .and_then(|v| v.parse().ok())
                .unwrap_or(range.first);
            let mut stmt = tx
                .prepare_cached("SELECT EXISTS(SELECT 1 FROM sandboxes WHERE addr_offset = ?1)")
                .map_err(q("prepare"))?;
            let mut failure = None;
            let found = ipam::next_free(range, cursor, |o| {
                match stmt.query_row([o], |r| r.get::<_, bool>(0)) {
                    Ok(used) => used,
                    Err(e) => {
                        failure.get_or_insert(e);
                        true
                    }
                }
            });
            drop(stmt);
            if let Some(e) = failure {
                return Err(q("check address in use")(e));
            }
            let Some(offset) = found else {
                return Err(StoreError::PoolFull {
                    pool: format!("{} offsets {}..={}", "IPv4/IPv6", range.first, range.last),
                    size: range.len(),
                });
            };
            let next = if offset >= range.last {
                range.first
            } else {
                offset + 1
            };
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('ipam_cursor', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [next.to_string()],
            )
            .map_err(q("write IPAM cursor"))?;
            Some(offset)
        } else {
            None
        };
        let allow = allow_text(&new.allow);
        tx.execute(
            "INSERT INTO sandboxes(name, tenant_id, kind, internet, allow, state, netns_created, addr_offset, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'creating', ?6, ?7, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
            params![
                new.name.as_str(),
                tenant_id,
                new.kind.to_string(),
                new.internet,
                allow,
                new.netns_created,
                offset
            ],
        )
        .map_err(q("insert sandbox"))?;
        let id = tx.last_insert_rowid();
        if let Some(c) = &new.cni {
            let addrs: Vec<String> = c.addresses().map(|a| a.to_string()).collect();
            tx.execute(
                "INSERT INTO cni_attachments(sandbox_id, network, container_id, ifname, netns, host_port, bridge, mac, addrs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    id,
                    c.network,
                    c.container_id,
                    c.ifname,
                    c.netns,
                    c.host_port,
                    c.bridge,
                    c.mac.to_string(),
                    addrs.join(",")
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::AttachmentTaken {
                        container_id: c.container_id.clone(),
                        ifname: c.ifname.clone(),
                        host_port: c.host_port.clone(),
                    }
                }
                e => q("insert CNI attachment")(e),
            })?;
        }
        let record = tx
            .query_row(&format!("{SELECT} WHERE s.id = ?1"), [id], row_to_record)
            .map_err(q("read back sandbox"))??;
        tx.commit().map_err(q("commit"))?;
        Ok(record)
    }

    pub fn set_state(&mut self, id: u64, state: SandboxState) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sandboxes SET state = ?1 WHERE id = ?2",
                params![state.as_str(), id],
            )
            .map_err(q(format!("set sandbox {id} {state}")))?;
        Ok(())
    }

    /// Removes a sandbox row, releasing its allocation. The address is
    /// marked released in the same transaction: connections of the old
    /// sandbox may still be tracked, and must be forgotten before the
    /// address is handed out again ([`Store::is_released`]).
    pub fn delete_sandbox(
        &mut self,
        id: u64,
        retired_link: RetiredLink<'_>,
    ) -> Result<u64, StoreError> {
        let tx = self.write_transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO released(addr_offset)
             SELECT addr_offset FROM sandboxes WHERE id = ?1 AND addr_offset IS NOT NULL",
            [id],
        )
        .map_err(q(format!("mark the address of sandbox {id} released")))?;
        tx.execute("DELETE FROM sandboxes WHERE id = ?1", [id])
            .map_err(q(format!("delete sandbox {id}")))?;
        if let RetiredLink::LeftUp(name) = retired_link {
            tx.execute(
                "INSERT OR IGNORE INTO links_left_up(name) VALUES (?1)",
                [name],
            )
            .map_err(q(format!("record retired interface {name}")))?;
        }
        if retired_link != RetiredLink::None {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('retired_links', '1')
                 ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                [],
            )
            .map_err(q("count a retired interface"))?;
        }
        let waiting = read_retired_links(&tx)?;
        tx.commit().map_err(q("commit"))?;
        Ok(waiting)
    }

    /// How many retired interfaces wait to be deleted (see
    /// [`Store::delete_sandbox`]).
    pub fn retired_links(&self) -> Result<u64, StoreError> {
        read_retired_links(&self.conn)
    }

    /// Bridge mode: the `network.sandboxes_per_bridge` the sandboxes here
    /// were placed with; `None` before any was recorded.
    pub fn bridge_layout(&self) -> Result<Option<u32>, StoreError> {
        self.conn
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'bridge_layout'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|n| n.and_then(|n| u32::try_from(n).ok()))
            .map_err(q("read the bridge layout"))
    }

    /// Records the layout the sandboxes are placed with.
    pub fn set_bridge_layout(&mut self, sandboxes_per_bridge: u32) -> Result<(), StoreError> {
        self.set_meta(
            "bridge_layout",
            &sandboxes_per_bridge.to_string(),
            "record the bridge layout",
        )
    }

    /// Sets one `meta` row in its own transaction.
    fn set_meta(&mut self, key: &str, value: &str, what: &str) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = ?2",
            [key, value],
        )
        .map_err(q(what))?;
        tx.commit().map_err(q("commit"))
    }

    /// The attachment mode the sandboxes here were made in; `None` before
    /// any palisade recorded one (the first command of a version that
    /// records it, or a new host).
    pub fn network_mode(&self) -> Result<Option<Mode>, StoreError> {
        let name = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'network_mode'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(q("read the network mode"))?;
        name.map(|n| {
            Mode::from_name(&n).ok_or(StoreError::CorruptMeta {
                key: "network mode",
                value: n,
            })
        })
        .transpose()
    }

    /// Records the mode the sandboxes are made in.
    pub fn set_network_mode(&mut self, mode: Mode) -> Result<(), StoreError> {
        self.set_meta("network_mode", mode.name(), "record the network mode")
    }

    /// How many sandboxes have an interface palisade attached in the
    /// network mode (every kind but networking disabled), in any state.
    pub fn attached_sandboxes(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM sandboxes WHERE kind != 'none'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(q("count the attached sandboxes"))
    }

    /// Retired interfaces still up, for the reap to set down first.
    pub fn links_left_up(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM links_left_up ORDER BY name")
            .map_err(q("list the retired interfaces left up"))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(q("list the retired interfaces left up"))?;
        Ok(names)
    }

    /// The retired interfaces have been deleted.
    pub fn reset_retired_links(&mut self) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        tx.execute("DELETE FROM meta WHERE key = 'retired_links'", [])
            .map_err(q("reset the count of retired interfaces"))?;
        tx.execute("DELETE FROM links_left_up", [])
            .map_err(q("forget the retired interfaces left up"))?;
        tx.commit().map_err(q("commit"))
    }

    /// True when `offset` belonged to a destroyed sandbox whose connections
    /// have not been forgotten yet.
    pub fn is_released(&self, offset: u32) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM released WHERE addr_offset = ?1)")
            .and_then(|mut s| s.query_row([offset], |r| r.get(0)))
            .map_err(q("look up a released address"))
    }

    /// Every released offset (see [`Store::delete_sandbox`]).
    pub fn released(&self) -> Result<Vec<u32>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT addr_offset FROM released ORDER BY addr_offset")
            .map_err(q("prepare"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(q("list released addresses"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(q("read released address"))
    }

    /// Forgets the released mark of these offsets (their connections have
    /// been deleted).
    pub fn clear_released(&mut self, offsets: &[u32]) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM released WHERE addr_offset = ?1")
                .map_err(q("prepare"))?;
            for o in offsets {
                stmt.execute([o]).map_err(q("clear a released address"))?;
            }
        }
        tx.commit().map_err(q("commit"))
    }

    /// Every sandbox, ordered by id.
    pub fn sandboxes(&self) -> Result<Vec<SandboxRecord>, StoreError> {
        self.query(&format!("{SELECT} ORDER BY s.id"), [])
    }

    /// The ready sandboxes of one tenant, ordered by id: found through an
    /// index on the tenant rather than by reading every sandbox.
    pub fn ready_sandboxes_of(
        &self,
        tenant: &TenantName,
    ) -> Result<Vec<SandboxRecord>, StoreError> {
        const OF_TENANT: &str = "t.name = ?1 AND s.state = 'ready'";
        let mut out = self.query_rows(
            &format!("{SELECT} WHERE {OF_TENANT} ORDER BY s.id"),
            [tenant.as_str()],
        )?;
        // Their exposures only, not every exposure of the host.
        let rows = self.exposure_rows(
            &format!(
                "{SELECT_EXPOSURE} WHERE e.sandbox_id IN (SELECT s.id FROM sandboxes s \
                 JOIN tenants t ON t.id = s.tenant_id WHERE {OF_TENANT}) ORDER BY e.rowid"
            ),
            [tenant.as_str()],
        )?;
        attach_exposure_rows(&mut out, rows)?;
        Ok(out)
    }

    /// Sandboxes with an unfinished operation (the intent journal), ordered
    /// by id. Every command asks, so it must stay O(1) when all is well:
    /// the partial index `sandboxes_unfinished` answers it, and the rows
    /// are sorted here because an `ORDER BY s.id` makes SQLite scan the
    /// whole table in id order instead (0.4 ms at 10,000 sandboxes).
    pub fn unfinished(&self) -> Result<Vec<SandboxRecord>, StoreError> {
        let mut rows = self.query(&unfinished_sql(), [])?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    pub fn sandbox_by_id(&self, id: u64) -> Result<Option<SandboxRecord>, StoreError> {
        Ok(self
            .query(&format!("{SELECT} WHERE s.id = ?1"), [id])?
            .pop())
    }

    /// The sandbox of a CNI attachment, `(CNI_CONTAINERID, CNI_IFNAME)`.
    pub fn cni_sandbox(
        &self,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<SandboxRecord>, StoreError> {
        Ok(self
            .query(
                &format!("{SELECT} WHERE c.container_id = ?1 AND c.ifname = ?2"),
                [container_id, ifname],
            )?
            .pop())
    }

    /// The CNI sandbox whose bridge port has this name.
    pub fn cni_sandbox_by_port(
        &self,
        host_port: &str,
    ) -> Result<Option<SandboxRecord>, StoreError> {
        Ok(self
            .query(&format!("{SELECT} WHERE c.host_port = ?1"), [host_port])?
            .pop())
    }

    /// The CNI sandboxes holding this address (the runtime's IPAM hands
    /// addresses out again; a row that outlived its container still holds
    /// it).
    pub fn cni_sandboxes_with_address(
        &self,
        addr: std::net::IpAddr,
    ) -> Result<Vec<SandboxRecord>, StoreError> {
        self.query(
            &format!("{SELECT} WHERE ',' || c.addrs || ',' LIKE '%,' || ?1 || ',%' ORDER BY s.id"),
            [addr.to_string()],
        )
    }

    /// Every CNI sandbox of one CNI network, ordered by id.
    pub fn cni_sandboxes(&self, network: &str) -> Result<Vec<SandboxRecord>, StoreError> {
        self.query(
            &format!("{SELECT} WHERE c.network = ?1 ORDER BY s.id"),
            [network],
        )
    }

    /// Whether a sandbox other than `except` has a port on `bridge`.
    pub fn bridge_in_use(&self, bridge: &str, except: u64) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM cni_attachments WHERE bridge = ?1 AND sandbox_id != ?2)",
            )
            .and_then(|mut st| st.query_row(params![bridge, except], |r| r.get(0)))
            .map_err(q(format!("look up the sandboxes on bridge {bridge}")))
    }

    pub fn sandbox(&self, name: &SandboxName) -> Result<Option<SandboxRecord>, StoreError> {
        Ok(self
            .query(&format!("{SELECT} WHERE s.name = ?1"), [name.as_str()])?
            .pop())
    }

    fn query<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<SandboxRecord>, StoreError> {
        let mut out = self.query_rows(sql, params)?;
        self.attach_exposures(&mut out)?;
        Ok(out)
    }

    /// The sandboxes a query selects, without their exposures.
    fn query_rows<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<SandboxRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(q("prepare"))?;
        let rows = stmt
            .query_map(params, row_to_record)
            .map_err(q("list sandboxes"))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(q("read sandbox"))??);
        }
        Ok(out)
    }

    /// Fills in `exposures`: one indexed query for a single sandbox, one
    /// scan of the exposures for many.
    fn attach_exposures(&self, records: &mut [SandboxRecord]) -> Result<(), StoreError> {
        let rows: Vec<ExposureRow> = match records {
            [] => return Ok(()),
            [one] => self.exposure_rows(
                &format!("{SELECT_EXPOSURE} WHERE e.sandbox_id = ?1 ORDER BY e.rowid"),
                [one.id],
            )?,
            _ => self.exposure_rows(&format!("{SELECT_EXPOSURE} ORDER BY e.rowid"), [])?,
        };
        attach_exposure_rows(records, rows)
    }

    fn exposure_rows<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<ExposureRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(q("prepare"))?;
        let rows = stmt
            .query_map(params, row_to_exposure)
            .map_err(q("list exposures"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(q("read exposure"))
    }

    /// Records an exposure of sandbox `id`, unless another exposure (of any
    /// sandbox) already claims one of its host ports on a common address;
    /// checked and inserted in one transaction.
    pub fn add_exposure(&mut self, id: u64, exposure: &Exposure) -> Result<(), StoreError> {
        let (proto, host_ip, host_first, host_last, guest_first) = columns(exposure);
        let tx = self.write_transaction()?;
        let holder = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT e.sandbox_id, e.proto, e.host_ip, e.host_first, e.host_last, e.guest_first, s.name
                     FROM exposures e JOIN sandboxes s ON s.id = e.sandbox_id
                     WHERE e.proto = ?1 AND e.host_first <= ?3 AND e.host_last >= ?2
                       AND (e.host_ip IS NULL OR ?4 IS NULL OR e.host_ip = ?4)
                     LIMIT 1",
                )
                .map_err(q("prepare"))?;
            stmt.query_row(params![proto, host_first, host_last, host_ip], |r| {
                Ok((row_to_exposure(r)?, r.get::<_, String>(6)?))
            })
            .optional()
            .map_err(q("check host ports"))?
        };
        if let Some(((_, held), holder)) = holder {
            let held = held.map_err(|what| StoreError::Corrupt {
                sandbox: holder.clone(),
                what: format!("exposure: {what}"),
            })?;
            return Err(StoreError::PortTaken {
                wanted: *exposure,
                holder,
                held,
            });
        }
        tx.execute(
            "INSERT INTO exposures(sandbox_id, proto, host_ip, host_first, host_last, guest_first)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, proto, host_ip, host_first, host_last, guest_first],
        )
        .map_err(q("insert exposure"))?;
        tx.commit().map_err(q("commit"))
    }

    /// Records a policy change of sandbox `id` (internet, allow list) and,
    /// in the same transaction, a journal entry holding the policy it
    /// replaces. The caller applies the kernel side, then calls
    /// [`Store::finish_policy_update`]; a crash in between leaves the entry
    /// for the next run's repair ([`Store::pending_policy_update`]).
    pub fn begin_policy_update(
        &mut self,
        id: u64,
        previous: &PolicyColumns,
        next: &PolicyColumns,
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        tx.execute(
            "UPDATE sandboxes SET internet = ?1, allow = ?2, policy_epoch = ?3 WHERE id = ?4",
            params![next.internet, allow_text(&next.allow), next.epoch, id],
        )
        .map_err(q(format!("update the policy of sandbox {id}")))?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('pending_policy', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [format!(
                "{id}|{}|{}|{}",
                u8::from(previous.internet),
                previous.epoch,
                allow_text(&previous.allow)
            )],
        )
        .map_err(q("write the policy journal"))?;
        tx.commit().map_err(q("commit"))
    }

    /// Clears the journal entry of [`Store::begin_policy_update`]; with
    /// `restore`, also puts the sandbox's previous policy back (the kernel
    /// refused the change).
    pub fn finish_policy_update(
        &mut self,
        restore: Option<(u64, &PolicyColumns)>,
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        if let Some((id, previous)) = restore {
            tx.execute(
                "UPDATE sandboxes SET internet = ?1, allow = ?2, policy_epoch = ?3 WHERE id = ?4",
                params![
                    previous.internet,
                    allow_text(&previous.allow),
                    previous.epoch,
                    id
                ],
            )
            .map_err(q(format!("restore the policy of sandbox {id}")))?;
        }
        tx.execute("DELETE FROM meta WHERE key = 'pending_policy'", [])
            .map_err(q("clear the policy journal"))?;
        tx.commit().map_err(q("commit"))
    }

    /// The policy change an interrupted run left: the sandbox's id and the
    /// policy the change replaced. O(1): one primary-key lookup.
    pub fn pending_policy_update(&self) -> Result<Option<(u64, PolicyColumns)>, StoreError> {
        let value: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'pending_policy'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(q("read the policy journal"))?;
        let Some(value) = value else { return Ok(None) };
        let corrupt = || StoreError::Corrupt {
            sandbox: "(policy journal)".into(),
            what: format!("pending_policy = {value:?}"),
        };
        // `id|internet|epoch|allow`; a journal written before policy
        // generations existed lacks the epoch, which was then the first.
        let parts: Vec<&str> = value.split('|').collect();
        let (id, internet, epoch, allow) = match parts[..] {
            [id, internet, epoch, allow] => (id, internet, Some(epoch), allow),
            [id, internet, allow] => (id, internet, None, allow),
            _ => return Err(corrupt()),
        };
        let epoch = match epoch {
            None => palisade_core::model::FIRST_POLICY_EPOCH,
            Some(e) => e.parse::<u32>().map_err(|_| corrupt())?,
        };
        let id: u64 = id.parse().map_err(|_| corrupt())?;
        let internet = match internet {
            "0" => false,
            "1" => true,
            _ => return Err(corrupt()),
        };
        let allow = allow
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<PortRule>().map_err(|_| corrupt()))
            .collect::<Result<_, _>>()?;
        Ok(Some((
            id,
            PolicyColumns {
                internet,
                allow,
                epoch,
            },
        )))
    }

    /// Records a rule of `tenant` (creating the tenant on first use), unless
    /// the tenant has it already or it overlaps one of the tenant's rules of
    /// the same action and protocol; checked and inserted in one
    /// transaction. With `journal`, the same transaction records the rule as
    /// a change the kernel has yet to get ([`Store::pending_rule_change`]).
    pub fn add_tenant_rule(
        &mut self,
        tenant: &TenantName,
        rule: &TenantRule,
        journal: bool,
    ) -> Result<TenantRuleRecord, StoreError> {
        self.add_tenant_rule_setting_epochs(tenant, rule, journal, &[])
    }

    /// [`Store::add_tenant_rule`], and in the same transaction each listed
    /// sandbox (id, generation) moved to that policy generation: a rule
    /// that narrows the tenant's policy moves its sandboxes on.
    pub fn add_tenant_rule_setting_epochs(
        &mut self,
        tenant: &TenantName,
        rule: &TenantRule,
        journal: bool,
        epochs: &[(u64, u32)],
    ) -> Result<TenantRuleRecord, StoreError> {
        let tx = self.write_transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO tenants(name) VALUES (?1)",
            [tenant.as_str()],
        )
        .map_err(q("insert tenant"))?;
        let tenant_id: u32 = tx
            .query_row(
                "SELECT id FROM tenants WHERE name = ?1",
                [tenant.as_str()],
                |r| r.get(0),
            )
            .map_err(q("read tenant"))?;
        let existing = rule_rows(
            &tx,
            &format!("{SELECT_RULE} WHERE r.tenant_id = ?1 ORDER BY r.id"),
            [tenant_id],
        )?;
        if let Some(same) = existing.iter().find(|e| e.rule == *rule) {
            return Err(StoreError::RuleExists {
                tenant: tenant.to_string(),
                id: same.id,
                rule: *rule,
            });
        }
        if let Some(other) = existing.iter().find(|e| e.rule.overlaps(rule)) {
            return Err(StoreError::RuleOverlaps {
                tenant: tenant.to_string(),
                rule: *rule,
                id: other.id,
                existing: other.rule,
            });
        }
        let (first, last) = rule.port_span();
        tx.execute(
            "INSERT INTO tenant_rules(tenant_id, action, proto, port_first, port_last, cidr, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
            params![
                tenant_id,
                rule.action.to_string(),
                rule.proto.to_string(),
                first,
                last,
                rule.cidr.to_string()
            ],
        )
        .map_err(q("insert tenant rule"))?;
        let id = tx.last_insert_rowid();
        let record = rule_rows(&tx, &format!("{SELECT_RULE} WHERE r.id = ?1"), [id])?
            .pop()
            .ok_or_else(|| StoreError::Corrupt {
                sandbox: format!("(tenant rule {id})"),
                what: "the inserted row is gone".into(),
            })?;
        if journal {
            set_rule_journal(&tx, &record)?;
        }
        set_epochs(&tx, epochs)?;
        tx.commit().map_err(q("commit"))?;
        Ok(record)
    }

    /// Tenant rules, ordered by id: all of them, or one tenant's.
    pub fn tenant_rules(
        &self,
        tenant: Option<&TenantName>,
    ) -> Result<Vec<TenantRuleRecord>, StoreError> {
        match tenant {
            Some(t) => rule_rows(
                &self.conn,
                &format!("{SELECT_RULE} WHERE t.name = ?1 ORDER BY r.id"),
                [t.as_str()],
            ),
            None => rule_rows(&self.conn, &format!("{SELECT_RULE} ORDER BY r.id"), []),
        }
    }

    /// One tenant rule by id.
    pub fn tenant_rule(&self, id: u64) -> Result<Option<TenantRuleRecord>, StoreError> {
        Ok(rule_rows(&self.conn, &format!("{SELECT_RULE} WHERE r.id = ?1"), [id])?.pop())
    }

    /// Deletes a tenant rule, and with it the journal entry of a change to
    /// it; false if there was no such rule.
    pub fn remove_tenant_rule(&mut self, id: u64) -> Result<bool, StoreError> {
        self.remove_tenant_rule_setting_epochs(id, &[])
    }

    /// [`Store::remove_tenant_rule`], and in the same transaction each
    /// listed sandbox (id, generation) set to that policy generation (put
    /// back, when a refused batch undoes a rule that moved them on).
    pub fn remove_tenant_rule_setting_epochs(
        &mut self,
        id: u64,
        epochs: &[(u64, u32)],
    ) -> Result<bool, StoreError> {
        let tx = self.write_transaction()?;
        let n = tx
            .execute("DELETE FROM tenant_rules WHERE id = ?1", [id])
            .map_err(q(format!("delete tenant rule {id}")))?;
        tx.execute("DELETE FROM meta WHERE key = 'pending_rule'", [])
            .map_err(q("clear the rule journal"))?;
        set_epochs(&tx, epochs)?;
        tx.commit().map_err(q("commit"))?;
        Ok(n > 0)
    }

    /// Deletes a tenant rule and, in the same transaction, records the
    /// change in the journal ([`Store::begin_rule_change`]) and sets each
    /// listed sandbox (id, generation) to that policy generation. The
    /// store is then ahead of the kernel: a crash before
    /// [`Store::finish_rule_change`] is finished by the next run's repair
    /// (the rule is gone, so its element goes too).
    pub fn remove_tenant_rule_journaled(
        &mut self,
        record: &TenantRuleRecord,
        epochs: &[(u64, u32)],
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        tx.execute("DELETE FROM tenant_rules WHERE id = ?1", [record.id])
            .map_err(q(format!("delete tenant rule {}", record.id)))?;
        set_rule_journal(&tx, record)?;
        set_epochs(&tx, epochs)?;
        tx.commit().map_err(q("commit"))
    }

    /// Undoes [`Store::remove_tenant_rule_journaled`] after the kernel
    /// refused the change: the rule again, with its id and creation time,
    /// the generations as they were, and no journal entry.
    pub fn restore_tenant_rule(
        &mut self,
        record: &TenantRuleRecord,
        epochs: &[(u64, u32)],
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        let (first, last) = record.rule.port_span();
        tx.execute(
            "INSERT INTO tenant_rules(id, tenant_id, action, proto, port_first, port_last, cidr, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.id,
                record.tenant_id,
                record.rule.action.to_string(),
                record.rule.proto.to_string(),
                first,
                last,
                record.rule.cidr.to_string(),
                record.created_at
            ],
        )
        .map_err(q(format!("restore tenant rule {}", record.id)))?;
        tx.execute("DELETE FROM meta WHERE key = 'pending_rule'", [])
            .map_err(q("clear the rule journal"))?;
        set_epochs(&tx, epochs)?;
        tx.commit().map_err(q("commit"))
    }

    /// Records that the kernel's elements of this rule may not match the
    /// store until [`Store::finish_rule_change`]: the next run's repair
    /// brings them in line with the store if a crash comes first.
    pub fn begin_rule_change(&mut self, record: &TenantRuleRecord) -> Result<(), StoreError> {
        set_rule_journal(&self.conn, record)
    }

    /// Clears the journal entry of [`Store::begin_rule_change`].
    pub fn finish_rule_change(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM meta WHERE key = 'pending_rule'", [])
            .map_err(q("clear the rule journal"))?;
        Ok(())
    }

    /// The rule change an interrupted run left: the rule as it was recorded
    /// (whether it is still stored decides what the kernel must hold).
    /// O(1): one primary-key lookup.
    pub fn pending_rule_change(&self) -> Result<Option<TenantRuleRecord>, StoreError> {
        let value: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'pending_rule'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(q("read the rule journal"))?;
        let Some(value) = value else { return Ok(None) };
        let corrupt = || StoreError::Corrupt {
            sandbox: "(rule journal)".into(),
            what: format!("pending_rule = {value:?}"),
        };
        let mut parts = value.splitn(4, '|');
        let (Some(id), Some(tenant_id), Some(tenant), Some(rule)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt());
        };
        Ok(Some(TenantRuleRecord {
            id: id.parse().map_err(|_| corrupt())?,
            tenant_id: tenant_id.parse().map_err(|_| corrupt())?,
            tenant: TenantName::new(tenant).map_err(|_| corrupt())?,
            rule: rule.parse().map_err(|_| corrupt())?,
            created_at: String::new(),
        }))
    }

    /// Removes one exposure of sandbox `id`; false if it had no such one.
    pub fn remove_exposure(&mut self, id: u64, exposure: &Exposure) -> Result<bool, StoreError> {
        let (proto, host_ip, host_first, host_last, guest_first) = columns(exposure);
        let n = self
            .conn
            .execute(
                "DELETE FROM exposures WHERE sandbox_id = ?1 AND proto = ?2 AND host_ip IS ?3
                   AND host_first = ?4 AND host_last = ?5 AND guest_first = ?6",
                params![id, proto, host_ip, host_first, host_last, guest_first],
            )
            .map_err(q("delete exposure"))?;
        Ok(n > 0)
    }
}

/// Gives each record its exposures from `rows` (in their order); rows of
/// other sandboxes are skipped.
fn attach_exposure_rows(
    records: &mut [SandboxRecord],
    rows: Vec<ExposureRow>,
) -> Result<(), StoreError> {
    let by_id: std::collections::HashMap<u64, usize> =
        records.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    for (id, exposure) in rows {
        let Some(&i) = by_id.get(&id) else { continue };
        let record = &mut records[i];
        let exposure = exposure.map_err(|what| StoreError::Corrupt {
            sandbox: record.name.to_string(),
            what: format!("exposure: {what}"),
        })?;
        record.exposures.push(exposure);
    }
    Ok(())
}

fn unfinished_sql() -> String {
    format!("{SELECT} WHERE s.state != 'ready'")
}

/// Sets the policy generation of each listed sandbox (id, generation).
fn set_epochs(conn: &Connection, epochs: &[(u64, u32)]) -> Result<(), StoreError> {
    if epochs.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached("UPDATE sandboxes SET policy_epoch = ?1 WHERE id = ?2")
        .map_err(q("prepare"))?;
    for (id, epoch) in epochs {
        stmt.execute(params![epoch, id])
            .map_err(q(format!("set the policy generation of sandbox {id}")))?;
    }
    Ok(())
}

fn set_rule_journal(conn: &Connection, record: &TenantRuleRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('pending_rule', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [format!(
            "{}|{}|{}|{}",
            record.id, record.tenant_id, record.tenant, record.rule
        )],
    )
    .map_err(q("write the rule journal"))?;
    Ok(())
}

/// Runs a [`SELECT_RULE`] query.
fn rule_rows<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> Result<Vec<TenantRuleRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(q("prepare"))?;
    let rows = stmt
        .query_map(params, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, u16>(5)?,
                r.get::<_, u16>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
            ))
        })
        .map_err(q("list tenant rules"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, tenant, tenant_id, action, proto, first, last, cidr, created_at) =
            row.map_err(q("read tenant rule"))?;
        let corrupt = |what: String| StoreError::Corrupt {
            sandbox: format!("(tenant rule {id})"),
            what,
        };
        // All ports are stored as 0-65535 (a UNIQUE index treats NULLs as
        // distinct); port 0 is never a rule's own port.
        let ports = if (first, last) == (0, u16::MAX) {
            "all".to_string()
        } else if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        };
        let rule: TenantRule = format!("{action} {proto} {ports} {cidr}")
            .parse()
            .map_err(|e: palisade_core::tenant_rule::TenantRuleError| corrupt(e.to_string()))?;
        out.push(TenantRuleRecord {
            id: id as u64,
            tenant: TenantName::new(&tenant).map_err(|e| corrupt(e.to_string()))?,
            tenant_id,
            rule,
            created_at,
        });
    }
    Ok(out)
}

fn row_to_record(r: &Row<'_>) -> rusqlite::Result<Result<SandboxRecord, StoreError>> {
    let id: i64 = r.get(0)?;
    let name: String = r.get(1)?;
    let tenant: String = r.get(2)?;
    let tenant_id: u32 = r.get(3)?;
    let kind: String = r.get(4)?;
    let internet: bool = r.get(5)?;
    let allow: String = r.get(6)?;
    let state: String = r.get(7)?;
    let netns_created: bool = r.get(8)?;
    let offset: Option<u32> = r.get(9)?;
    let created_at: String = r.get(10)?;
    let policy_epoch: u32 = r.get(19)?;
    let cni_columns: Option<[String; 8]> = match r.get::<_, Option<String>>(11)? {
        None => None,
        Some(network) => Some([
            network,
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
            r.get(15)?,
            r.get(16)?,
            r.get(17)?,
            r.get(18)?,
        ]),
    };
    let corrupt = |what: String| StoreError::Corrupt {
        sandbox: name.clone(),
        what,
    };
    Ok((|| {
        let cni = cni_columns
            .map(|c| parse_cni(c).map_err(|what| corrupt(format!("CNI attachment: {what}"))))
            .transpose()?;
        Ok(SandboxRecord {
            id: id as u64,
            name: SandboxName::new(&name).map_err(|e| corrupt(e.to_string()))?,
            tenant: TenantName::new(&tenant).map_err(|e| corrupt(e.to_string()))?,
            tenant_id,
            kind: kind.parse().map_err(corrupt)?,
            internet,
            allow: allow
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<PortRule>().map_err(|e| corrupt(e.to_string())))
                .collect::<Result<_, _>>()?,
            policy_epoch,
            state: SandboxState::parse(&state)
                .ok_or_else(|| corrupt(format!("state {state:?}")))?,
            netns_created,
            offset,
            created_at,
            exposures: Vec::new(),
            cni,
        })
    })())
}

fn parse_cni(columns: [String; 8]) -> Result<CniAttachment, String> {
    let [network, container_id, ifname, netns, host_port, bridge, mac, addrs] = columns;
    let mut ipv4 = Vec::new();
    let mut ipv6 = Vec::new();
    for a in addrs.split(',').filter(|a| !a.is_empty()) {
        match a.parse().map_err(|_| format!("address {a:?}"))? {
            std::net::IpAddr::V4(v4) => ipv4.push(v4),
            std::net::IpAddr::V6(v6) => ipv6.push(v6),
        }
    }
    Ok(CniAttachment {
        mac: mac.parse()?,
        network,
        container_id,
        ifname,
        netns,
        host_port,
        bridge,
        ipv4,
        ipv6,
    })
}

const SELECT_EXPOSURE: &str =
    "SELECT e.sandbox_id, e.proto, e.host_ip, e.host_first, e.host_last, e.guest_first FROM exposures e";

/// The columns of an exposure row: protocol, host address (`NULL` for
/// all), first and last host port, first sandbox port.
fn columns(e: &Exposure) -> (String, Option<String>, u16, u16, u16) {
    (
        e.proto.to_string(),
        e.host_ip.map(|a| a.to_string()),
        e.host_ports.first,
        e.host_ports.last,
        e.guest_ports.first,
    )
}

/// An exposure row: its sandbox id and the exposure (or why it is corrupt).
type ExposureRow = (u64, Result<Exposure, String>);

/// One exposure row: its sandbox id and the exposure.
fn row_to_exposure(r: &Row<'_>) -> rusqlite::Result<ExposureRow> {
    let id: i64 = r.get(0)?;
    let proto: String = r.get(1)?;
    let host_ip: Option<String> = r.get(2)?;
    let host_first: u16 = r.get(3)?;
    let host_last: u16 = r.get(4)?;
    let guest_first: u16 = r.get(5)?;
    let parsed = (|| {
        let proto = proto.parse()?;
        let host_ip = match host_ip {
            Some(a) => Some(a.parse().map_err(|_| format!("host address {a:?}"))?),
            None => None,
        };
        let host = PortRange {
            first: host_first,
            last: host_last,
        };
        let guest_last = u32::from(guest_first) + host.len() - 1;
        let guest = PortRange {
            first: guest_first,
            last: u16::try_from(guest_last).map_err(|_| format!("sandbox port {guest_last}"))?,
        };
        Exposure::new(proto, host_ip, host, guest).map_err(|e| e.to_string())
    })();
    Ok((id as u64, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn new(name: &str, tenant: &str, kind: SandboxKind) -> NewSandbox {
        NewSandbox {
            name: SandboxName::new(name).unwrap(),
            tenant: TenantName::new(tenant).unwrap(),
            kind,
            internet: true,
            allow: vec!["tcp:443".parse().unwrap()],
            netns_created: true,
            cni: None,
        }
    }

    const RANGE: OffsetRange = OffsetRange { first: 2, last: 6 };

    fn cni(container_id: &str, port: &str, bridge: &str) -> NewSandbox {
        NewSandbox {
            cni: Some(CniAttachment {
                network: "net1".into(),
                container_id: container_id.into(),
                ifname: "eth0".into(),
                netns: format!("/run/netns/{container_id}"),
                host_port: port.into(),
                bridge: bridge.into(),
                mac: "02:00:00:00:00:09".parse().unwrap(),
                ipv4: vec!["10.89.0.9".parse().unwrap()],
                ipv6: vec!["fd89::9".parse().unwrap()],
            }),
            ..new(&format!("cni-{container_id}"), "t1", SandboxKind::Cni)
        }
    }

    #[test]
    fn cni_attachments_round_trip_and_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let a = s
            .insert_sandbox(&cni("aaa", "veth1", "br0"), RANGE)
            .unwrap();
        assert_eq!(a.offset, None, "CNI addresses come from the runtime");
        assert_eq!(a.cni, cni("aaa", "veth1", "br0").cni);
        assert_eq!(s.cni_sandbox("aaa", "eth0").unwrap().unwrap().id, a.id);
        assert!(s.cni_sandbox("aaa", "eth1").unwrap().is_none());
        assert_eq!(s.cni_sandbox_by_port("veth1").unwrap().unwrap().id, a.id);
        // The same attachment, or the same port, twice: refused, and the
        // failed insert leaves no row.
        let twice = cni("aaa", "veth2", "br0");
        let twice = NewSandbox {
            name: SandboxName::new("other").unwrap(),
            ..twice
        };
        assert!(matches!(
            s.insert_sandbox(&twice, RANGE),
            Err(StoreError::AttachmentTaken { .. })
        ));
        assert!(s
            .sandbox(&SandboxName::new("other").unwrap())
            .unwrap()
            .is_none());
        assert!(matches!(
            s.insert_sandbox(&cni("bbb", "veth1", "br0"), RANGE),
            Err(StoreError::AttachmentTaken { .. })
        ));
        let b = s
            .insert_sandbox(&cni("bbb", "veth2", "br0"), RANGE)
            .unwrap();
        assert!(s.bridge_in_use("br0", a.id).unwrap());
        assert_eq!(s.cni_sandboxes("net1").unwrap().len(), 2);
        let holders = s
            .cni_sandboxes_with_address("10.89.0.9".parse().unwrap())
            .unwrap();
        assert_eq!(holders.len(), 2);
        assert!(s
            .cni_sandboxes_with_address("10.89.0.90".parse().unwrap())
            .unwrap()
            .is_empty());
        assert_eq!(
            s.cni_sandboxes_with_address("fd89::9".parse().unwrap())
                .unwrap()
                .len(),
            2
        );
        assert!(s.cni_sandboxes("net2").unwrap().is_empty());
        s.delete_sandbox(b.id, RetiredLink::None).unwrap();
        assert!(!s.bridge_in_use("br0", a.id).unwrap());
        assert!(s.cni_sandbox("bbb", "eth0").unwrap().is_none());
    }

    #[test]
    fn the_unfinished_sandboxes_come_from_their_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        for name in ["b", "a", "c"] {
            let r = s
                .insert_sandbox(&new(name, "t1", SandboxKind::Netns), RANGE)
                .unwrap();
            if name == "a" {
                s.set_state(r.id, SandboxState::Ready).unwrap();
            }
        }
        let plan: Vec<String> = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", unfinished_sql()))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("sandboxes_unfinished")),
            "{plan:?}"
        );
        let names: Vec<String> = s
            .unfinished()
            .unwrap()
            .iter()
            .map(|r| r.name.to_string())
            .collect();
        assert_eq!(names, ["b", "c"], "in id order");
    }

    #[test]
    fn a_tenants_ready_sandboxes_and_rule_epochs_move_together() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for (name, tenant) in [("a", "t1"), ("b", "t2"), ("c", "t1"), ("d", "t1")] {
            let r = s
                .insert_sandbox(&new(name, tenant, SandboxKind::Netns), RANGE)
                .unwrap();
            if name != "d" {
                s.set_state(r.id, SandboxState::Ready).unwrap();
            }
            ids.push(r.id);
        }
        // Exposures come with their own sandbox only.
        let exposure = |port: &str| {
            Exposure::new(
                palisade_core::policy::Proto::Tcp,
                None,
                port.parse().unwrap(),
                "80".parse().unwrap(),
            )
            .unwrap()
        };
        s.add_exposure(ids[2], &exposure("8080")).unwrap();
        s.add_exposure(ids[1], &exposure("8081")).unwrap();
        s.add_exposure(ids[2], &exposure("8082")).unwrap();
        let t1 = TenantName::new("t1").unwrap();
        let of_t1 = s.ready_sandboxes_of(&t1).unwrap();
        assert!(of_t1[0].exposures.is_empty());
        assert_eq!(of_t1[1].exposures, [exposure("8080"), exposure("8082")]);
        let names = |s: &Store| -> Vec<String> {
            s.ready_sandboxes_of(&t1)
                .unwrap()
                .iter()
                .map(|r| r.name.to_string())
                .collect()
        };
        assert_eq!(names(&s), ["a", "c"]);
        assert!(s
            .ready_sandboxes_of(&TenantName::new("nobody").unwrap())
            .unwrap()
            .is_empty());

        // The rule and the generations land in one transaction, and a
        // refused batch puts the generations back with the rule's removal.
        let deny: TenantRule = "deny tcp 443 203.0.113.0/24".parse().unwrap();
        let rule = s
            .add_tenant_rule_setting_epochs(&t1, &deny, true, &[(ids[0], 7), (ids[2], 9)])
            .unwrap();
        let epochs = |s: &Store| -> Vec<u32> {
            s.ready_sandboxes_of(&t1)
                .unwrap()
                .iter()
                .map(|r| r.policy_epoch)
                .collect()
        };
        assert_eq!(epochs(&s), [7, 9]);
        assert!(s.pending_rule_change().unwrap().is_some());
        s.remove_tenant_rule_setting_epochs(rule.id, &[(ids[0], 1), (ids[2], 1)])
            .unwrap();
        assert_eq!(epochs(&s), [1, 1]);
        assert!(s.pending_rule_change().unwrap().is_none());
        assert!(s.tenant_rule(rule.id).unwrap().is_none());

        // A removal is journaled with the rule gone; restoring it brings
        // back the same id and creation time, and the generations.
        let allow: TenantRule = "allow tcp 443 203.0.113.0/24".parse().unwrap();
        let rule = s.add_tenant_rule(&t1, &allow, false).unwrap();
        s.remove_tenant_rule_journaled(&rule, &[(ids[0], 2)])
            .unwrap();
        assert!(s.tenant_rule(rule.id).unwrap().is_none());
        let pending = s.pending_rule_change().unwrap().unwrap();
        assert_eq!((pending.id, &pending.rule), (rule.id, &rule.rule));
        assert_eq!(epochs(&s), [2, 1]);
        s.restore_tenant_rule(&rule, &[(ids[0], 1)]).unwrap();
        assert_eq!(s.tenant_rule(rule.id).unwrap(), Some(rule));
        assert!(s.pending_rule_change().unwrap().is_none());
        assert_eq!(epochs(&s), [1, 1]);
    }

    #[test]
    fn destroyed_addresses_stay_released_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let a = s
            .insert_sandbox(&new("a", "t1", SandboxKind::Netns), RANGE)
            .unwrap();
        let off = s
            .insert_sandbox(&new("off", "t1", SandboxKind::None), RANGE)
            .unwrap();
        let o = a.offset.unwrap();
        assert!(!s.is_released(o).unwrap());
        s.delete_sandbox(a.id, RetiredLink::None).unwrap();
        s.delete_sandbox(off.id, RetiredLink::None).unwrap();
        assert!(s.is_released(o).unwrap());
        assert_eq!(s.released().unwrap(), vec![o]);
        s.clear_released(&[o]).unwrap();
        assert!(!s.is_released(o).unwrap());
        assert!(s.released().unwrap().is_empty());
    }

    #[test]
    fn policy_update_journal_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let a = s
            .insert_sandbox(&new("a", "t1", SandboxKind::Netns), RANGE)
            .unwrap();
        assert_eq!(s.pending_policy_update().unwrap(), None);
        assert_eq!(a.policy_epoch, 1);
        let previous = PolicyColumns {
            internet: a.internet,
            allow: a.allow.clone(),
            epoch: a.policy_epoch,
        };
        let next = PolicyColumns {
            internet: true,
            allow: vec!["tcp:443".parse().unwrap(), "udp:53".parse().unwrap()],
            epoch: 2,
        };
        s.begin_policy_update(a.id, &previous, &next).unwrap();
        let stored = s.sandbox(&a.name).unwrap().unwrap();
        assert_eq!(stored.allow, next.allow);
        assert_eq!(stored.policy_epoch, 2);
        assert_eq!(
            s.pending_policy_update().unwrap(),
            Some((a.id, previous.clone()))
        );
        // Kernel refused: the previous policy comes back, the journal goes.
        s.finish_policy_update(Some((a.id, &previous))).unwrap();
        let restored = s.sandbox(&a.name).unwrap().unwrap();
        assert_eq!(restored.allow, previous.allow);
        assert_eq!(restored.policy_epoch, 1);
        assert_eq!(s.pending_policy_update().unwrap(), None);
        // Success: the new policy stays.
        let open_all = PolicyColumns {
            internet: true,
            allow: vec![],
            epoch: 1,
        };
        s.begin_policy_update(a.id, &previous, &open_all).unwrap();
        s.finish_policy_update(None).unwrap();
        let stored = s.sandbox(&a.name).unwrap().unwrap();
        assert!(stored.internet && stored.allow.is_empty());
        assert_eq!(s.pending_policy_update().unwrap(), None);
    }

    #[test]
    fn a_database_from_before_policy_generations_gains_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let a = s
            .insert_sandbox(&new("a", "t1", SandboxKind::Netns), RANGE)
            .unwrap();
        // As an earlier version left it: no column, and a journal entry in
        // the old format.
        s.conn
            .execute_batch(
                "ALTER TABLE sandboxes DROP COLUMN policy_epoch;
                 INSERT INTO meta(key, value) VALUES ('pending_policy', '1|1|tcp:80');",
            )
            .unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.sandbox(&a.name).unwrap().unwrap().policy_epoch, 1);
        let (id, previous) = s.pending_policy_update().unwrap().unwrap();
        assert_eq!(id, 1);
        assert_eq!(previous.epoch, 1);
        assert_eq!(previous.allow, vec!["tcp:80".parse().unwrap()]);
        // Opening again finds the column and adds nothing.
        drop(s);
        Store::open(dir.path()).unwrap();
    }

    #[test]
    fn retired_links_are_counted_and_those_left_up_named_until_reset() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let ids: Vec<u64> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                s.insert_sandbox(&new(n, "t1", SandboxKind::Netns), RANGE)
                    .unwrap()
                    .id
            })
            .collect();
        assert_eq!(s.delete_sandbox(ids[0], RetiredLink::None).unwrap(), 0);
        assert_eq!(s.delete_sandbox(ids[1], RetiredLink::SetDown).unwrap(), 1);
        assert_eq!(
            s.delete_sandbox(ids[2], RetiredLink::LeftUp("pal-3"))
                .unwrap(),
            2
        );
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.retired_links().unwrap(), 2);
        assert_eq!(s.links_left_up().unwrap(), vec!["pal-3".to_string()]);
        s.reset_retired_links().unwrap();
        assert_eq!(s.retired_links().unwrap(), 0);
        assert_eq!(s.links_left_up().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn insert_list_state_delete() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let a = s
            .insert_sandbox(&new("a", "t1", SandboxKind::Netns), RANGE)
            .unwrap();
        assert_eq!(a.state, SandboxState::Creating);
        assert_eq!(a.offset, Some(2));
        assert_eq!(a.allow.len(), 1);
        let b = s
            .insert_sandbox(&new("b", "t1", SandboxKind::None), RANGE)
            .unwrap();
        assert_eq!(b.offset, None);
        assert_eq!(a.tenant_id, b.tenant_id);
        let c = s
            .insert_sandbox(&new("c", "t2", SandboxKind::Tap), RANGE)
            .unwrap();
        assert_ne!(c.tenant_id, a.tenant_id);
        assert_eq!(s.unfinished().unwrap().len(), 3);
        s.set_state(a.id, SandboxState::Ready).unwrap();
        assert_eq!(s.unfinished().unwrap().len(), 2);
        assert!(matches!(
            s.insert_sandbox(&new("a", "t1", SandboxKind::Netns), RANGE),
            Err(StoreError::NameTaken(_))
        ));
        s.delete_sandbox(a.id, RetiredLink::None).unwrap();
        assert!(s
            .sandbox(&SandboxName::new("a").unwrap())
            .unwrap()
            .is_none());
        // Ids are never reused.
        let d = s
            .insert_sandbox(&new("a", "t1", SandboxKind::Netns), RANGE)
            .unwrap();
        assert!(d.id > c.id);
    }

    #[test]
    fn exposures_conflict_check_and_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let a = s
            .insert_sandbox(&new("a", "t1", SandboxKind::Netns), RANGE)
            .unwrap();
        let b = s
            .insert_sandbox(&new("b", "t2", SandboxKind::Netns), RANGE)
            .unwrap();
        let exp = |ip: Option<&str>, host: &str, guest: &str| {
            Exposure::new(
                palisade_core::policy::Proto::Tcp,
                ip.map(|i| i.parse().unwrap()),
                host.parse().unwrap(),
                guest.parse().unwrap(),
            )
            .unwrap()
        };
        let wide = exp(Some("198.51.100.1"), "8000-8009", "9000-9009");
        s.add_exposure(a.id, &wide).unwrap();
        s.add_exposure(b.id, &exp(Some("198.51.100.2"), "8005", "80"))
            .unwrap();
        let err = s.add_exposure(b.id, &exp(None, "8009", "80")).unwrap_err();
        match &err {
            StoreError::PortTaken { holder, held, .. } => {
                assert_eq!(holder, "a");
                assert_eq!(held, &wide);
            }
            other => panic!("{other}"),
        }
        assert!(
            err.to_string().contains("sandbox a already exposes"),
            "{err}"
        );
        s.add_exposure(b.id, &exp(None, "8010", "80")).unwrap();
        let got = s.sandbox(&a.name).unwrap().unwrap();
        assert_eq!(got.exposures, vec![wide]);
        assert_eq!(s.sandboxes().unwrap()[1].exposures.len(), 2);
        assert!(s.remove_exposure(a.id, &wide).unwrap());
        assert!(!s.remove_exposure(a.id, &wide).unwrap());
        s.delete_sandbox(b.id, RetiredLink::None).unwrap();
        // The rows went with the sandbox: the port is free again.
        s.add_exposure(a.id, &exp(None, "8005-8010", "1-6"))
            .unwrap();
    }

    #[test]
    fn tenant_rules_round_trip_refuse_duplicates_and_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let acme = TenantName::new("acme").unwrap();
        let beta = TenantName::new("beta").unwrap();
        let rule = |t: &str| t.parse::<TenantRule>().unwrap();
        // A tenant without sandboxes is created by its first rule.
        let a = s
            .add_tenant_rule(&acme, &rule("allow tcp 443 203.0.113.0/24"), false)
            .unwrap();
        assert_eq!(a.tenant, acme);
        assert!(a.created_at.ends_with('Z'));
        let sb = s
            .insert_sandbox(&new("x", "acme", SandboxKind::Netns), RANGE)
            .unwrap();
        assert_eq!(
            sb.tenant_id, a.tenant_id,
            "the sandbox joins the rule's tenant"
        );
        let all = s
            .add_tenant_rule(&acme, &rule("deny udp all 2001:db8::/32"), false)
            .unwrap();
        assert_eq!(all.rule.ports, None);
        let b = s
            .add_tenant_rule(&beta, &rule("allow tcp 443 203.0.113.0/24"), false)
            .unwrap();
        assert_ne!(a.tenant_id, b.tenant_id);
        assert!(b.id > all.id);
        // The same rule twice: refused, naming the existing one.
        let e = s
            .add_tenant_rule(&acme, &rule("allow tcp 443 203.0.113.0/24"), false)
            .unwrap_err();
        assert!(
            matches!(e, StoreError::RuleExists { id, .. } if id == a.id),
            "{e}"
        );
        // Overlapping one of the same action and protocol: refused.
        let e = s
            .add_tenant_rule(&acme, &rule("allow tcp 400-500 203.0.113.128/25"), false)
            .unwrap_err();
        assert!(
            matches!(e, StoreError::RuleOverlaps { id, .. } if id == a.id),
            "{e}"
        );
        assert!(e.to_string().contains("may not overlap"), "{e}");
        // Other action, protocol or ports: fine.
        s.add_tenant_rule(&acme, &rule("deny tcp 443 203.0.113.0/24"), false)
            .unwrap();
        s.add_tenant_rule(&acme, &rule("allow tcp 444 203.0.113.0/24"), false)
            .unwrap();
        assert_eq!(s.tenant_rules(Some(&acme)).unwrap().len(), 4);
        assert_eq!(s.tenant_rules(Some(&beta)).unwrap(), vec![b.clone()]);
        assert_eq!(s.tenant_rules(None).unwrap().len(), 5);
        assert_eq!(s.tenant_rule(a.id).unwrap(), Some(a.clone()));
        // Survives a reopen.
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.tenant_rule(all.id).unwrap(), Some(all.clone()));
        assert!(s.remove_tenant_rule(a.id).unwrap());
        assert!(!s.remove_tenant_rule(a.id).unwrap());
        assert_eq!(s.tenant_rule(a.id).unwrap(), None);
        // Ids are never reused.
        let again = s
            .add_tenant_rule(&acme, &rule("allow tcp 443 203.0.113.0/24"), false)
            .unwrap();
        assert!(again.id > b.id);
    }

    #[test]
    fn rule_journal_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let acme = TenantName::new("acme").unwrap();
        assert_eq!(s.pending_rule_change().unwrap(), None);
        let r = s
            .add_tenant_rule(
                &acme,
                &"deny tcp 1-1024 198.51.100.0/24".parse().unwrap(),
                true,
            )
            .unwrap();
        let pending = s.pending_rule_change().unwrap().unwrap();
        assert_eq!((pending.id, pending.tenant_id), (r.id, r.tenant_id));
        assert_eq!((pending.tenant, pending.rule), (r.tenant.clone(), r.rule));
        s.finish_rule_change().unwrap();
        assert_eq!(s.pending_rule_change().unwrap(), None);
        s.begin_rule_change(&r).unwrap();
        assert!(s.pending_rule_change().unwrap().is_some());
        // Removing the rule clears its journal entry in the same transaction.
        s.remove_tenant_rule(r.id).unwrap();
        assert_eq!(s.pending_rule_change().unwrap(), None);
    }

    #[test]
    fn allocations_survive_reopen_and_pool_fills() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = BTreeSet::new();
        for i in 0..5 {
            let mut s = Store::open(dir.path()).unwrap();
            let r = s
                .insert_sandbox(&new(&format!("s{i}"), "t", SandboxKind::Netns), RANGE)
                .unwrap();
            assert!(seen.insert(r.offset.unwrap()), "offset reused after reopen");
        }
        let mut s = Store::open(dir.path()).unwrap();
        let err = s
            .insert_sandbox(&new("full", "t", SandboxKind::Netns), RANGE)
            .unwrap_err();
        assert!(matches!(err, StoreError::PoolFull { .. }), "{err}");
        // A networkless sandbox needs no address.
        s.insert_sandbox(&new("nonet", "t", SandboxKind::None), RANGE)
            .unwrap();
        // Freeing one makes it available again.
        let first = s
            .sandbox(&SandboxName::new("s0").unwrap())
            .unwrap()
            .unwrap();
        s.delete_sandbox(first.id, RetiredLink::None).unwrap();
        let again = s
            .insert_sandbox(&new("again", "t", SandboxKind::Netns), RANGE)
            .unwrap();
        assert_eq!(again.offset, first.offset);
    }

    #[test]
    fn the_network_mode_is_kept_and_attached_sandboxes_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.network_mode().unwrap(), None);
        store.set_network_mode(Mode::Routed).unwrap();
        store.set_network_mode(Mode::Bridge).unwrap();
        assert_eq!(store.attached_sandboxes().unwrap(), 0);
        store
            .insert_sandbox(&new("nonet", "t", SandboxKind::None), RANGE)
            .unwrap();
        assert_eq!(store.attached_sandboxes().unwrap(), 0);
        store
            .insert_sandbox(&new("vm", "t", SandboxKind::Tap), RANGE)
            .unwrap();
        store
            .insert_sandbox(&new("ct", "t", SandboxKind::Netns), RANGE)
            .unwrap();
        assert_eq!(store.attached_sandboxes().unwrap(), 2);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.network_mode().unwrap(), Some(Mode::Bridge));
        store
            .conn
            .execute(
                "UPDATE meta SET value = 'mesh' WHERE key = 'network_mode'",
                [],
            )
            .unwrap();
        let err = store.network_mode().unwrap_err();
        assert!(err.to_string().contains("\"mesh\""), "{err}");
    }

    #[test]
    fn the_bridge_layout_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.bridge_layout().unwrap(), None);
        store.set_bridge_layout(512).unwrap();
        store.set_bridge_layout(64).unwrap();
        drop(store);
        assert_eq!(
            Store::open(dir.path()).unwrap().bridge_layout().unwrap(),
            Some(64)
        );
    }
}
