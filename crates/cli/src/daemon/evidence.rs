//! Collects the live evidence behind a compliance report: the kernel's
//! rules compared with the store right now, the audit chain checked right
//! now, the compiled policy, the users and the policy in force, and how the
//! API is reachable. Used by the daemon and by `palisade compliance report`.

use crate::engine::Engine;
use palisade_compliance::{
    AccessEvidence, AuditEvidence, Evidence, IsolationEvidence, TransportEvidence, UserEvidence,
    VerifyEvidence,
};
use palisade_core::config::{is_blocked, Config, InterSandbox};
use palisade_core::element::Family;
use palisade_core::server_config::SecurityPolicy;
use palisade_store::{AuditFilter, AuditLog, UserRecord, AUDIT_KEY_FILE};
use std::os::unix::fs::PermissionsExt;

/// How the API is reachable.
#[derive(Debug, Clone)]
pub struct Reachability {
    pub unix_socket: bool,
    pub unix_socket_mode: u32,
    pub tls: bool,
    pub plain_tcp_loopback_only: bool,
}

impl Reachability {
    /// What the configuration makes of the daemon's listeners.
    pub fn from_config(config: &Config) -> Reachability {
        let s = &config.server;
        Reachability {
            unix_socket: true,
            unix_socket_mode: s.socket_mode,
            tls: s.tls.is_some(),
            plain_tcp_loopback_only: s.tls.is_some()
                || s.listen.is_none_or(|a| a.ip().is_loopback()),
        }
    }
}

/// RFC 3339 UTC now, to the second.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// RFC 3339 UTC of Unix time `secs`.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The rules of `chain` in the compiled table of `family`.
fn chain_rules(
    ruleset: &palisade_core::compile::Ruleset,
    family: Family,
    chain: &str,
) -> Vec<String> {
    (0..)
        .map_while(|i| ruleset.rule(family, chain, i).map(str::to_string))
        .collect()
}

fn ends_in_drop(rules: &[String]) -> bool {
    rules.last().is_some_and(|r| r.ends_with("drop"))
}

/// Gathers every piece of evidence. Failures to gather one become bad
/// evidence (and so failed controls), never a missing report.
pub fn collect(
    engine: &mut Engine,
    users: &[UserRecord],
    audit: &AuditLog,
    policy: &SecurityPolicy,
    reach: &Reachability,
) -> Evidence {
    let config = engine.config().clone();
    let collected_at = timestamp();
    let status = engine.status().ok();
    let verify = engine.verify(None).ok().map(|r| VerifyEvidence {
        checked_at: collected_at.clone(),
        in_sync: r.ok(),
        differences: r.differences.len(),
        sandboxes: r.sandboxes_checked,
        tables_present: status
            .as_ref()
            .is_some_and(|s| s.tables.iter().all(|t| t.present || !t.expected)),
    });
    let views = engine.sandbox_views(None).unwrap_or_default();
    let rules = engine.tenant_rules(None).map(|r| r.len()).unwrap_or(0);
    let mut tenants: Vec<&str> = views.iter().map(|v| v.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let ruleset = engine.ruleset().ok();
    let (default_deny, host_blocked, anti_spoofing) = match &ruleset {
        Some(rs) => (
            ends_in_drop(&chain_rules(rs, Family::Inet, "from_sandbox"))
                && ends_in_drop(&chain_rules(rs, Family::Inet, "to_sandbox")),
            ends_in_drop(&chain_rules(rs, Family::Inet, "sandbox_to_host")),
            ends_in_drop(&chain_rules(rs, Family::Inet, "sandbox_source"))
                || rs.families.contains(&Family::Bridge),
        ),
        None => (false, false, false),
    };
    let blocked = |a: &str| a.parse().is_ok_and(|a| is_blocked(&config, a));
    let chain = audit.verify().ok();
    let key_mode = std::fs::metadata(engine.state_dir().join(AUDIT_KEY_FILE))
        .map(|m| m.permissions().mode())
        .ok();
    let logins = audit
        .query(&AuditFilter {
            action: Some("auth.login".into()),
            limit: 1,
            ..AuditFilter::default()
        })
        .is_ok_and(|p| !p.records.is_empty());
    Evidence {
        collected_at,
        verify,
        probes: None,
        audit: AuditEvidence {
            chain_intact: chain.as_ref().is_some_and(|c| c.intact),
            records: audit.count().unwrap_or(0),
            problems: match &chain {
                Some(c) => c.problems.iter().map(|p| p.detail.clone()).collect(),
                None => vec!["the audit chain could not be read".into()],
            },
            retention_days: config.server.audit.retention_days,
            keyed_mac: true,
            key_file_private: key_mode.is_some_and(|m| m & 0o077 == 0),
            records_logins: logins,
            // Every 401, 403 and 429 answer, and every hidden-object 404,
            // is written by the audit layer of the daemon.
            records_denials: true,
        },
        isolation: IsolationEvidence {
            default_deny,
            metadata_blocked: blocked("169.254.169.254") && blocked("fd00:ec2::254"),
            private_ranges_blocked: ["10.0.0.1", "172.16.0.1", "192.168.0.1", "fc00::1"]
                .iter()
                .all(|a| blocked(a)),
            host_blocked,
            inter_sandbox: match config.isolation.inter_sandbox {
                InterSandbox::Deny => "deny".into(),
                InterSandbox::SameTenant => "same-tenant".into(),
            },
            anti_spoofing,
            ipv6_enforced: ruleset
                .as_ref()
                .is_some_and(|rs| rs.tables.contains("ip6 saddr")),
            tenants: tenants.len(),
            sandboxes: views.len(),
            exposures: views.iter().map(|v| v.exposures.len()).sum(),
            exposures_dnat_only: true,
            tenant_rules: rules,
        },
        access: AccessEvidence {
            users: users
                .iter()
                .map(|u| UserEvidence {
                    name: u.name.clone(),
                    role: u.role.clone(),
                    tenant: u.tenant.clone(),
                    totp: u.totp_secret.is_some(),
                })
                .collect(),
            password_min_length: policy.password_min_length,
            password_min_classes: policy.password_min_classes,
            lockout_threshold: policy.lockout_threshold,
            lockout_minutes: policy.lockout_minutes,
            rate_limit_per_minute: policy.rate_limit_per_minute,
            access_token_minutes: policy.access_token_minutes,
            argon2id: !users.is_empty()
                && users
                    .iter()
                    .all(|u| u.password_hash.starts_with("$argon2id$")),
        },
        transport: TransportEvidence {
            unix_socket: reach.unix_socket,
            unix_socket_mode: reach.unix_socket_mode,
            tls: reach.tls,
            plain_tcp_loopback_only: reach.plain_tcp_loopback_only,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        assert!(t.as_str() > "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
