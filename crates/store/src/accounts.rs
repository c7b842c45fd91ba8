//! The daemon's accounts: users, their refresh tokens and revoked access
//! tokens, failed-login counters and the security policy in force.
//!
//! They live in the state database beside the sandboxes but on their own
//! connection: logging in never waits for the state lock that serialises
//! kernel changes. Times are Unix seconds, given by the caller, so the
//! rules that depend on them are tested without waiting.

use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;

use crate::store::{open_connection, q, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    tenant TEXT,
    totp_secret TEXT,
    totp_pending TEXT,
    token_epoch INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_by_user ON refresh_tokens(user_id);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')";

/// A user row. The password hash is a PHC string (argon2id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: u64,
    pub name: String,
    pub password_hash: String,
    pub role: String,
    /// The one tenant the user is scoped to, if any.
    pub tenant: Option<String>,
    /// Base32 TOTP secret in force.
    pub totp_secret: Option<String>,
    /// Base32 TOTP secret enrolled but not yet confirmed with a code.
    pub totp_pending: Option<String>,
    /// Tokens carry the epoch they were issued in; raising it revokes them.
    pub token_epoch: u32,
    pub created_at: String,
    pub password_changed_at: String,
}

/// The failed-login state of an account name after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    pub failures: u32,
    /// Unix seconds until which logins are refused; 0 when not locked.
    pub locked_until: i64,
}

pub struct Accounts {
    conn: Connection,
}

const USER_COLUMNS: &str = "id, name, password_hash, role, tenant, totp_secret, totp_pending, token_epoch, created_at, password_changed_at";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        tenant: r.get(4)?,
        totp_secret: r.get(5)?,
        totp_pending: r.get(6)?,
        token_epoch: r.get(7)?,
        created_at: r.get(8)?,
        password_changed_at: r.get(9)?,
    })
}

impl Accounts {
    /// A write transaction that takes the database's write lock at BEGIN
    /// (waiting up to the busy timeout). A deferred one that reads first
    /// fails at once with SQLITE_BUSY when another connection (the audit
    /// log, the accounts) committed in between.
    fn write_transaction(&mut self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(q("begin"))
    }

    /// Opens the accounts in the state database of `dir`.
    pub fn open(dir: &Path) -> Result<Accounts, StoreError> {
        let (conn, path) = open_connection(dir)?;
        conn.execute_batch(SCHEMA)
            .map_err(|source| StoreError::Open { path, source })?;
        Ok(Accounts { conn })
    }

    /// Adds a user; [`StoreError::UserExists`] when the name is taken.
    pub fn add_user(
        &mut self,
        name: &str,
        password_hash: &str,
        role: &str,
        tenant: Option<&str>,
    ) -> Result<UserRecord, StoreError> {
        let done = self.conn.execute(
            &format!(
                "INSERT INTO users(name, password_hash, role, tenant, created_at, password_changed_at)
                 VALUES (?1, ?2, ?3, ?4, {NOW}, {NOW})"
            ),
            params![name, password_hash, role, tenant],
        );
        match done {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::UserExists(name.to_string()))
            }
            other => other.map_err(q("insert user"))?,
        };
        self.user(name)?
            .ok_or_else(|| StoreError::UserMissing(name.to_string()))
    }

    pub fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
                [name],
                user_row,
            )
            .optional()
            .map_err(q("read user"))
    }

    pub fn user_by_id(&self, id: u64) -> Result<Option<UserRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [id],
                user_row,
            )
            .optional()
            .map_err(q("read user"))
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
            .map_err(q("list users"))?;
        let rows = stmt
            .query_map([], user_row)
            .map_err(q("list users"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(q("list users"))?;
        Ok(rows)
    }

    /// Changes a user's role and tenant scope; raises the token epoch so
    /// tokens issued under the old role stop working.
    pub fn set_role(
        &mut self,
        name: &str,
        role: &str,
        tenant: Option<&str>,
    ) -> Result<UserRecord, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE users SET role = ?2, tenant = ?3, token_epoch = token_epoch + 1 WHERE name = ?1",
                params![name, role, tenant],
            )
            .map_err(q("update user"))?;
        if n == 0 {
            return Err(StoreError::UserMissing(name.to_string()));
        }
        self.revoke_refresh_tokens_of(name)?;
        self.user(name)?
            .ok_or_else(|| StoreError::UserMissing(name.to_string()))
    }

    /// Replaces the password hash and revokes every token of the user.
    pub fn set_password(&mut self, name: &str, password_hash: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                &format!("UPDATE users SET password_hash = ?2, token_epoch = token_epoch + 1, password_changed_at = {NOW} WHERE name = ?1"),
                params![name, password_hash],
            )
            .map_err(q("update password"))?;
        if n == 0 {
            return Err(StoreError::UserMissing(name.to_string()));
        }
        self.revoke_refresh_tokens_of(name)
    }

    fn revoke_refresh_tokens_of(&mut self, name: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM refresh_tokens WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                [name],
            )
            .map_err(q("revoke refresh tokens"))?;
        Ok(())
    }

    /// Deletes a user and its refresh tokens; false when there was none.
    pub fn delete_user(&mut self, name: &str) -> Result<bool, StoreError> {
        let tx = self.write_transaction()?;
        tx.execute(
            "DELETE FROM refresh_tokens WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
            [name],
        )
        .map_err(q("delete refresh tokens"))?;
        let n = tx
            .execute("DELETE FROM users WHERE name = ?1", [name])
            .map_err(q("delete user"))?;
        tx.commit().map_err(q("commit"))?;
        Ok(n > 0)
    }

    /// Stores a TOTP secret awaiting confirmation (replacing any earlier one).
    pub fn set_totp_pending(&mut self, name: &str, secret: &str) -> Result<(), StoreError> {
        self.update_one(
            name,
            "UPDATE users SET totp_pending = ?2 WHERE name = ?1",
            Some(secret),
        )
    }

    /// Makes the pending TOTP secret the one in force.
    pub fn confirm_totp(&mut self, name: &str) -> Result<(), StoreError> {
        self.update_one(
            name,
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL WHERE name = ?1 AND totp_pending IS NOT NULL",
            None,
        )
    }

    /// Removes the second factor of a user.
    pub fn clear_totp(&mut self, name: &str) -> Result<(), StoreError> {
        self.update_one(
            name,
            "UPDATE users SET totp_secret = NULL, totp_pending = NULL WHERE name = ?1",
            None,
        )
    }

    fn update_one(&mut self, name: &str, sql: &str, arg: Option<&str>) -> Result<(), StoreError> {
        let n = match arg {
            Some(a) => self.conn.execute(sql, params![name, a]),
            None => self.conn.execute(sql, params![name]),
        }
        .map_err(q("update user"))?;
        if n == 0 {
            return Err(StoreError::UserMissing(name.to_string()));
        }
        Ok(())
    }

    /// Unix seconds until which logins as `name` are refused, if locked now.
    pub fn locked_until(&self, name: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let until: Option<i64> = self
            .conn
            .query_row(
                "SELECT locked_until FROM login_failures WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(q("read login failures"))?;
        Ok(until.filter(|&u| u > now))
    }

    /// Starts a login attempt for `name` (a user or not: the answer must
    /// not tell which). The attempt counts as a failure until
    /// [`Accounts::clear_login_failures`] says otherwise, so parallel
    /// guesses cannot all slip in before the first is counted. Returns the
    /// time the name is locked until when it is locked (now or by this
    /// attempt, when more than `threshold` are under way).
    pub fn begin_login_attempt(
        &mut self,
        name: &str,
        now: i64,
        threshold: u32,
        lock_seconds: i64,
    ) -> Result<Option<i64>, StoreError> {
        let tx = self.write_transaction()?;
        let (failures, locked_until): (u32, i64) = tx
            .query_row(
                "SELECT failures, locked_until FROM login_failures WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(q("read login failures"))?
            .unwrap_or((0, 0));
        if locked_until > now {
            return Ok(Some(locked_until));
        }
        let failures = failures + 1;
        let (failures, locked_until) = if failures > threshold {
            (0, now + lock_seconds)
        } else {
            (failures, 0)
        };
        tx.execute(
            "INSERT INTO login_failures(name, failures, locked_until) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until",
            params![name, failures, locked_until],
        )
        .map_err(q("write login failures"))?;
        tx.commit().map_err(q("commit"))?;
        Ok((locked_until > 0).then_some(locked_until))
    }

    /// Ends a failed attempt begun with [`Accounts::begin_login_attempt`]:
    /// at `threshold` failures in a row the name is locked for
    /// `lock_seconds` and the count starts again.
    pub fn fail_login_attempt(
        &mut self,
        name: &str,
        now: i64,
        threshold: u32,
        lock_seconds: i64,
    ) -> Result<LoginFailures, StoreError> {
        let tx = self.write_transaction()?;
        let (failures, locked_until): (u32, i64) = tx
            .query_row(
                "SELECT failures, locked_until FROM login_failures WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(q("read login failures"))?
            .unwrap_or((1, 0));
        let (failures, locked_until) = if failures >= threshold {
            (0, now + lock_seconds)
        } else {
            (failures, locked_until)
        };
        tx.execute(
            "INSERT INTO login_failures(name, failures, locked_until) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until",
            params![name, failures, locked_until],
        )
        .map_err(q("write login failures"))?;
        tx.commit().map_err(q("commit"))?;
        Ok(LoginFailures {
            failures,
            locked_until,
        })
    }

    /// Forgets the failures of `name` after a successful login.
    pub fn clear_login_failures(&mut self, name: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM login_failures WHERE name = ?1", [name])
            .map_err(q("clear login failures"))?;
        Ok(())
    }

    /// Takes back one attempt counted by
    /// [`Accounts::begin_login_attempt`] that turned out not to be a guess
    /// (a right password still missing its second factor), leaving earlier
    /// failures counted.
    pub fn uncount_login_attempt(&mut self, name: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE login_failures SET failures = MAX(failures - 1, 0) WHERE name = ?1",
                [name],
            )
            .map_err(q("write login failures"))?;
        Ok(())
    }

    /// Unlocks an account name (an admin's decision).
    pub fn unlock(&mut self, name: &str) -> Result<(), StoreError> {
        self.clear_login_failures(name)
    }

    /// Records a refresh token by its hash.
    pub fn insert_refresh(
        &mut self,
        token_hash: &str,
        user_id: u64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO refresh_tokens(token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![token_hash, user_id, expires_at],
            )
            .map_err(q("insert refresh token"))?;
        Ok(())
    }

    /// Uses up a refresh token: returns its user when it exists and has not
    /// expired, and deletes it either way (tokens rotate on every refresh).
    pub fn take_refresh(&mut self, token_hash: &str, now: i64) -> Result<Option<u64>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(q("begin"))?;
        let row: Option<(u64, i64)> = tx
            .query_row(
                "SELECT user_id, expires_at FROM refresh_tokens WHERE token_hash = ?1",
                [token_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(q("read refresh token"))?;
        tx.execute(
            "DELETE FROM refresh_tokens WHERE token_hash = ?1",
            [token_hash],
        )
        .map_err(q("delete refresh token"))?;
        tx.commit().map_err(q("commit"))?;
        Ok(row.filter(|&(_, exp)| exp > now).map(|(user, _)| user))
    }

    /// Revokes one refresh token (logout).
    pub fn revoke_refresh(&mut self, token_hash: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM refresh_tokens WHERE token_hash = ?1",
                [token_hash],
            )
            .map_err(q("revoke refresh token"))?;
        Ok(())
    }

    /// Revokes one access token until it would have expired anyway.
    pub fn revoke_access(&mut self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO revoked_tokens(jti, expires_at) VALUES (?1, ?2)",
                params![jti, expires_at],
            )
            .map_err(q("revoke access token"))?;
        Ok(())
    }

    pub fn access_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM revoked_tokens WHERE jti = ?1)",
                [jti],
                |r| r.get(0),
            )
            .map_err(q("read revoked tokens"))
    }

    /// Drops revocations and refresh tokens that have expired.
    pub fn prune_expired(&mut self, now: i64) -> Result<(), StoreError> {
        self.conn
            .execute_batch(&format!(
                "DELETE FROM revoked_tokens WHERE expires_at <= {now};
                 DELETE FROM refresh_tokens WHERE expires_at <= {now};"
            ))
            .map_err(q("prune expired tokens"))
    }

    /// A stored setting (JSON text), e.g. the security policy in force.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(q("read setting"))
    }

    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(q("write setting"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open(dir.path()).unwrap();
        (dir, a)
    }

    #[test]
    fn users_are_unique_and_password_changes_revoke_tokens() {
        let (_d, mut a) = accounts();
        let u = a.add_user("alice", "h1", "admin", None).unwrap();
        assert_eq!(u.token_epoch, 0);
        assert!(matches!(
            a.add_user("alice", "h2", "viewer", None),
            Err(StoreError::UserExists(_))
        ));
        a.insert_refresh("r1", u.id, 100).unwrap();
        a.set_password("alice", "h3").unwrap();
        let u = a.user("alice").unwrap().unwrap();
        assert_eq!((u.password_hash.as_str(), u.token_epoch), ("h3", 1));
        assert_eq!(
            a.take_refresh("r1", 0).unwrap(),
            None,
            "refresh token survived"
        );
        assert!(matches!(
            a.set_password("bob", "x"),
            Err(StoreError::UserMissing(_))
        ));
    }

    #[test]
    fn refresh_tokens_rotate_and_expire() {
        let (_d, mut a) = accounts();
        let u = a.add_user("op", "h", "operator", Some("acme")).unwrap();
        a.insert_refresh("r1", u.id, 100).unwrap();
        a.insert_refresh("r2", u.id, 100).unwrap();
        assert_eq!(a.take_refresh("r1", 50).unwrap(), Some(u.id));
        assert_eq!(a.take_refresh("r1", 50).unwrap(), None, "reused");
        assert_eq!(a.take_refresh("r2", 100).unwrap(), None, "expired");
    }

    #[test]
    fn failures_lock_after_the_threshold() {
        let (_d, mut a) = accounts();
        let fail = |a: &mut Accounts| {
            assert_eq!(a.begin_login_attempt("nobody", 1000, 3, 60).unwrap(), None);
            a.fail_login_attempt("nobody", 1000, 3, 60).unwrap()
        };
        for i in 1..3 {
            assert_eq!(fail(&mut a).failures, i);
            assert_eq!(a.locked_until("nobody", 1000).unwrap(), None);
        }
        assert_eq!(fail(&mut a).locked_until, 1060);
        assert_eq!(a.locked_until("nobody", 1059).unwrap(), Some(1060));
        assert_eq!(
            a.begin_login_attempt("nobody", 1059, 3, 60).unwrap(),
            Some(1060)
        );
        assert_eq!(a.locked_until("nobody", 1060).unwrap(), None);
        a.clear_login_failures("nobody").unwrap();
        assert_eq!(a.locked_until("nobody", 1000).unwrap(), None);
    }

    #[test]
    fn parallel_attempts_count_before_they_finish() {
        let (_d, mut a) = accounts();
        // Three attempts under way at once, none finished: the fourth is
        // already refused.
        for _ in 0..3 {
            assert_eq!(a.begin_login_attempt("admin", 0, 3, 60).unwrap(), None);
        }
        assert_eq!(a.begin_login_attempt("admin", 0, 3, 60).unwrap(), Some(60));
        // A success forgets the count.
        a.clear_login_failures("nobody-else").unwrap();
        assert_eq!(a.locked_until("admin", 1).unwrap(), Some(60));
    }

    #[test]
    fn deleting_a_user_removes_its_tokens() {
        let (_d, mut a) = accounts();
        let u = a.add_user("v", "h", "viewer", None).unwrap();
        a.insert_refresh("r", u.id, 100).unwrap();
        assert!(a.delete_user("v").unwrap());
        assert!(!a.delete_user("v").unwrap());
        assert_eq!(a.take_refresh("r", 0).unwrap(), None);
        assert!(a.user_by_id(u.id).unwrap().is_none());
    }

    #[test]
    fn totp_needs_confirmation_and_revocations_expire() {
        let (_d, mut a) = accounts();
        a.add_user("t", "h", "viewer", None).unwrap();
        a.set_totp_pending("t", "SECRET").unwrap();
        assert_eq!(a.user("t").unwrap().unwrap().totp_secret, None);
        a.confirm_totp("t").unwrap();
        let u = a.user("t").unwrap().unwrap();
        assert_eq!(
            (u.totp_secret.as_deref(), u.totp_pending),
            (Some("SECRET"), None)
        );
        a.revoke_access("j1", 10).unwrap();
        assert!(a.access_revoked("j1").unwrap());
        a.prune_expired(10).unwrap();
        assert!(!a.access_revoked("j1").unwrap());
        a.set_setting("k", "v").unwrap();
        a.set_setting("k", "w").unwrap();
        assert_eq!(a.setting("k").unwrap().as_deref(), Some("w"));
    }
}
