//! Facts: single judgements on one part of the evidence.
//!
//! Each fact produces one evidence line (naming the fact and its value) and
//! an outcome. Controls are built from facts, so a fact is judged the same
//! way in every control and every framework.

use crate::evidence::Evidence;

/// Minimum password length required of every account.
pub const BASELINE_PASSWORD_LENGTH: u32 = 8;
/// Password length that, with [`STRONG_PASSWORD_CLASSES`], makes the policy
/// strong enough for an admin account without TOTP.
pub const STRONG_PASSWORD_LENGTH: u32 = 12;
/// Character classes that, with [`STRONG_PASSWORD_LENGTH`], make the policy
/// strong enough for an admin account without TOTP.
pub const STRONG_PASSWORD_CLASSES: u32 = 3;
/// Most failed logins allowed before an account is locked.
pub const MAX_LOCKOUT_THRESHOLD: u32 = 10;
/// Longest acceptable access token lifetime.
pub const MAX_ACCESS_TOKEN_MINUTES: u32 = 60;
/// Shortest acceptable audit retention (PCI DSS asks for twelve months).
pub const MIN_RETENTION_DAYS: u32 = 365;
/// Problems listed by name in an evidence line before the rest are counted.
const PROBLEMS_SHOWN: usize = 5;

/// The roles the API knows.
const ROLES: [&str; 3] = ["admin", "operator", "viewer"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fact {
    Verify,
    Probes,
    DefaultDeny,
    Ipv6,
    Metadata,
    PrivateRanges,
    Host,
    InterSandbox,
    AntiSpoofing,
    Exposures,
    Transport,
    SocketMode,
    Roles,
    TenantScoping,
    PasswordPolicy,
    AdminAuth,
    BruteForce,
    TokenLifetime,
    AuditChain,
    AuditEvents,
    AuditRetention,
    AuditMac,
    AuditKey,
}

/// How a fact came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The fact holds.
    Holds,
    /// The fact is known and does not hold; the text says why.
    Bad(String),
    /// The evidence needed to judge the fact is absent; the text says what.
    Missing(String),
    /// The fact does not apply to this deployment; the text says why.
    NotApplicable(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// Short name used in rationales.
    pub name: &'static str,
    /// The evidence line: the fact and its value.
    pub line: String,
    pub outcome: Outcome,
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn flag(name: &'static str, line: &str, value: bool, bad: &str) -> Check {
    Check {
        name,
        line: format!("{line}: {}", yes_no(value)),
        outcome: if value {
            Outcome::Holds
        } else {
            Outcome::Bad(bad.to_string())
        },
    }
}

fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Fact {
    pub(crate) fn check(self, ev: &Evidence) -> Check {
        let iso = &ev.isolation;
        let access = &ev.access;
        let audit = &ev.audit;
        match self {
            Fact::Verify => verify(ev),
            Fact::Probes => probes(ev),
            Fact::DefaultDeny => flag(
                "default deny",
                "default deny for sandbox traffic",
                iso.default_deny,
                "sandbox traffic is not denied by default",
            ),
            Fact::Ipv6 => flag(
                "IPv6 enforcement",
                "rules enforced for IPv6 as well as IPv4",
                iso.ipv6_enforced,
                "the rules do not cover IPv6, so IPv6 traffic bypasses them",
            ),
            Fact::Metadata => flag(
                "metadata blocking",
                "cloud metadata endpoints blocked",
                iso.metadata_blocked,
                "cloud metadata endpoints are reachable from sandboxes",
            ),
            Fact::PrivateRanges => flag(
                "private range blocking",
                "private and special-purpose ranges blocked",
                iso.private_ranges_blocked,
                "private and special-purpose ranges are reachable from sandboxes",
            ),
            Fact::Host => flag(
                "host blocking",
                "host addresses blocked from sandboxes",
                iso.host_blocked,
                "the host's own addresses are reachable from sandboxes",
            ),
            Fact::AntiSpoofing => flag(
                "anti-spoofing",
                "anti-spoofing (sandboxes send only from their own addresses)",
                iso.anti_spoofing,
                "sandboxes can send from addresses that are not theirs",
            ),
            Fact::InterSandbox => inter_sandbox(ev),
            Fact::Exposures => exposures(ev),
            Fact::Transport => transport(ev),
            Fact::SocketMode => socket_mode(ev),
            Fact::Roles => roles(ev),
            Fact::TenantScoping => tenant_scoping(ev),
            Fact::PasswordPolicy => password_policy(ev),
            Fact::AdminAuth => admin_auth(ev),
            Fact::BruteForce => brute_force(ev),
            Fact::TokenLifetime => {
                let m = access.access_token_minutes;
                Check {
                    name: "token lifetime",
                    line: format!("access token lifetime: {}", plural(m, "minute", "minutes")),
                    outcome: if m == 0 {
                        Outcome::Bad("the access token lifetime is 0 minutes (unset)".into())
                    } else if m > MAX_ACCESS_TOKEN_MINUTES {
                        Outcome::Bad(format!(
                            "access tokens live {m} minutes, longer than {MAX_ACCESS_TOKEN_MINUTES}"
                        ))
                    } else {
                        Outcome::Holds
                    },
                }
            }
            Fact::AuditChain => audit_chain(ev),
            Fact::AuditEvents => {
                let line = format!(
                    "audit events: logins recorded: {}; authorisation denials recorded: {}",
                    yes_no(audit.records_logins),
                    yes_no(audit.records_denials)
                );
                let missing: Vec<&str> = [
                    (!audit.records_logins).then_some("logins"),
                    (!audit.records_denials).then_some("authorisation denials"),
                ]
                .into_iter()
                .flatten()
                .collect();
                Check {
                    name: "audit event coverage",
                    line,
                    outcome: if missing.is_empty() {
                        Outcome::Holds
                    } else {
                        Outcome::Bad(format!(
                            "{} are not recorded in the audit log",
                            missing.join(" and ")
                        ))
                    },
                }
            }
            Fact::AuditRetention => match audit.retention_days {
                None => Check {
                    name: "audit retention",
                    line: "audit retention: not configured".into(),
                    outcome: Outcome::Missing("no audit retention period is configured".into()),
                },
                Some(d) => Check {
                    name: "audit retention",
                    line: format!("audit retention: {}", plural(d, "day", "days")),
                    outcome: if d >= MIN_RETENTION_DAYS {
                        Outcome::Holds
                    } else {
                        Outcome::Bad(format!(
                            "audit records are kept {d} days, less than {MIN_RETENTION_DAYS}"
                        ))
                    },
                },
            },
            Fact::AuditMac => flag(
                "keyed audit MACs",
                "audit records chained with a keyed MAC",
                audit.keyed_mac,
                "audit records are not protected by a keyed MAC, so the chain can be recomputed by anyone who can write the log",
            ),
            Fact::AuditKey => flag(
                "audit key protection",
                "audit MAC key file readable by its owner only",
                audit.key_file_private,
                "the audit MAC key file is readable by others",
            ),
        }
    }
}

fn verify(ev: &Evidence) -> Check {
    let Some(v) = &ev.verify else {
        return Check {
            name: "firewall verification",
            line: "verify: not run (no result available)".into(),
            outcome: Outcome::Missing(
                "no firewall verification result (palisade verify could not be run), so the kernel rules are not shown to match the policy".into(),
            ),
        };
    };
    let line = format!(
        "verify: {} between kernel and compiled rules (checked {}, {}); in sync: {}; palisade tables present: {}",
        plural(v.differences as u64, "difference", "differences"),
        v.checked_at,
        plural(v.sandboxes as u64, "sandbox", "sandboxes"),
        yes_no(v.in_sync),
        yes_no(v.tables_present)
    );
    let outcome = if !v.tables_present {
        Outcome::Bad("firewall verification found palisade's tables missing from the kernel".into())
    } else if !v.in_sync || v.differences > 0 {
        Outcome::Bad(format!(
            "firewall verification found the kernel out of sync with the compiled rules ({})",
            plural(v.differences as u64, "difference", "differences")
        ))
    } else {
        Outcome::Holds
    };
    Check {
        name: "firewall verification",
        line,
        outcome,
    }
}

fn probes(ev: &Evidence) -> Check {
    let name = "active probes";
    match &ev.probes {
        None => Check {
            name,
            line: "probes: not run (optional)".into(),
            outcome: Outcome::NotApplicable(
                "active probes were not run (they are optional)".into(),
            ),
        },
        Some(p) if p.probes == 0 => Check {
            name,
            line: format!("probes: none sent (checked {})", p.checked_at),
            outcome: Outcome::NotApplicable("no active probe was sent".into()),
        },
        Some(p) => Check {
            name,
            line: format!(
                "probes: {} of {} matched their expectation (checked {})",
                p.matched,
                plural(p.probes as u64, "probe", "probes"),
                p.checked_at
            ),
            outcome: if p.matched >= p.probes {
                Outcome::Holds
            } else {
                Outcome::Bad(format!(
                    "{} of {} active probes did not match their expectation",
                    p.probes - p.matched,
                    p.probes
                ))
            },
        },
    }
}

fn inter_sandbox(ev: &Evidence) -> Check {
    let iso = &ev.isolation;
    let line = format!(
        "inter-sandbox policy: {} ({}, {}, {})",
        iso.inter_sandbox,
        plural(iso.tenants as u64, "tenant", "tenants"),
        plural(iso.sandboxes as u64, "sandbox", "sandboxes"),
        plural(iso.tenant_rules as u64, "tenant rule", "tenant rules"),
    );
    let outcome = match iso.inter_sandbox.as_str() {
        "deny" | "same-tenant" => Outcome::Holds,
        other => Outcome::Bad(format!(
            "the inter-sandbox policy {other:?} is neither \"deny\" nor \"same-tenant\", so tenants are not shown to be isolated"
        )),
    };
    Check {
        name: "inter-sandbox isolation",
        line,
        outcome,
    }
}

fn exposures(ev: &Evidence) -> Check {
    let iso = &ev.isolation;
    let name = "exposures via DNAT";
    if iso.exposures == 0 {
        return Check {
            name,
            line: "port exposures: 0".into(),
            outcome: Outcome::NotApplicable("no port is exposed".into()),
        };
    }
    Check {
        name,
        line: format!(
            "port exposures: {}; every one a DNAT to a single sandbox port: {}",
            iso.exposures,
            yes_no(iso.exposures_dnat_only)
        ),
        outcome: if iso.exposures_dnat_only {
            Outcome::Holds
        } else {
            Outcome::Bad(
                "some exposed ports are not implemented as a DNAT to a single sandbox port".into(),
            )
        },
    }
}

fn transport(ev: &Evidence) -> Check {
    let t = &ev.transport;
    let line = format!(
        "API transport: TLS listener: {}; plain TCP: {}; Unix socket: {}",
        yes_no(t.tls),
        if t.plain_tcp_loopback_only {
            "none or loopback only"
        } else {
            "on a non-loopback address"
        },
        yes_no(t.unix_socket)
    );
    let outcome = if !t.plain_tcp_loopback_only {
        Outcome::Bad(
            "the API is served as plain HTTP on a non-loopback address, unencrypted in transit"
                .into(),
        )
    } else if t.tls {
        Outcome::Holds
    } else {
        Outcome::NotApplicable(
            "the API is reachable only through a Unix socket or loopback, so no API traffic crosses a network".into(),
        )
    };
    Check {
        name: "API encryption in transit",
        line,
        outcome,
    }
}

fn socket_mode(ev: &Evidence) -> Check {
    let t = &ev.transport;
    let name = "Unix socket permissions";
    if !t.unix_socket {
        return Check {
            name,
            line: "API Unix socket: none".into(),
            outcome: Outcome::NotApplicable("the API has no Unix socket".into()),
        };
    }
    let mode = t.unix_socket_mode & 0o7777;
    Check {
        name,
        line: format!("API Unix socket mode: {mode:04o}"),
        outcome: if mode & 0o007 == 0 {
            Outcome::Holds
        } else {
            Outcome::Bad(format!(
                "the API Unix socket (mode {mode:04o}) is open to every local user"
            ))
        },
    }
}

fn roles(ev: &Evidence) -> Check {
    let users = &ev.access.users;
    let name = "role assignment";
    if users.is_empty() {
        return Check {
            name,
            line: "users: none".into(),
            outcome: Outcome::Missing(
                "no API user is reported, so role assignment cannot be shown".into(),
            ),
        };
    }
    let count = |r: &str| users.iter().filter(|u| u.role == r).count();
    let unknown: Vec<String> = users
        .iter()
        .filter(|u| !ROLES.contains(&u.role.as_str()))
        .map(|u| format!("{} ({})", u.name, u.role))
        .collect();
    let mut line = format!(
        "users: {} (admin {}, operator {}, viewer {})",
        users.len(),
        count("admin"),
        count("operator"),
        count("viewer")
    );
    if !unknown.is_empty() {
        line.push_str(&format!("; unknown role: {}", unknown.join(", ")));
    }
    Check {
        name,
        line,
        outcome: if unknown.is_empty() {
            Outcome::Holds
        } else {
            Outcome::Bad(format!(
                "users with a role other than admin, operator or viewer: {}",
                unknown.join(", ")
            ))
        },
    }
}

fn tenant_scoping(ev: &Evidence) -> Check {
    let users = &ev.access.users;
    let name = "tenant scoping";
    let non_admin: Vec<_> = users.iter().filter(|u| u.role != "admin").collect();
    let unscoped: Vec<&str> = non_admin
        .iter()
        .filter(|u| u.tenant.is_none())
        .map(|u| u.name.as_str())
        .collect();
    let tenants = ev.isolation.tenants;
    let line = format!(
        "tenant scoping: {} of {} non-admin users bound to a tenant ({})",
        non_admin.len() - unscoped.len(),
        non_admin.len(),
        plural(tenants as u64, "tenant", "tenants")
    );
    let outcome = if users.is_empty() {
        Outcome::Missing("no API user is reported, so tenant scoping cannot be shown".into())
    } else if unscoped.is_empty() {
        Outcome::Holds
    } else if tenants <= 1 {
        // Nothing to separate: a global user sees the same as a scoped one.
        Outcome::Holds
    } else {
        Outcome::Bad(format!(
            "non-admin users not bound to a tenant while there are {tenants} tenants: {}",
            unscoped.join(", ")
        ))
    };
    Check {
        name,
        line,
        outcome,
    }
}

fn strong_policy(ev: &Evidence) -> bool {
    ev.access.password_min_length >= STRONG_PASSWORD_LENGTH
        && ev.access.password_min_classes >= STRONG_PASSWORD_CLASSES
}

fn password_policy(ev: &Evidence) -> Check {
    let a = &ev.access;
    let line = format!(
        "password policy: minimum length {}, minimum {} character classes; Argon2id hashing: {}",
        a.password_min_length,
        a.password_min_classes,
        yes_no(a.argon2id)
    );
    let mut bad = Vec::new();
    if a.password_min_length < BASELINE_PASSWORD_LENGTH {
        bad.push(format!(
            "the minimum password length {} is below {BASELINE_PASSWORD_LENGTH}",
            a.password_min_length
        ));
    }
    if !a.argon2id {
        bad.push("passwords are not stored as Argon2id hashes".to_string());
    }
    Check {
        name: "password policy",
        line,
        outcome: if bad.is_empty() {
            Outcome::Holds
        } else {
            Outcome::Bad(bad.join("; "))
        },
    }
}

fn admin_auth(ev: &Evidence) -> Check {
    let admins: Vec<_> = ev
        .access
        .users
        .iter()
        .filter(|u| u.role == "admin")
        .collect();
    let name = "admin authentication";
    if admins.is_empty() {
        return Check {
            name,
            line: "admin accounts: none".into(),
            outcome: Outcome::NotApplicable("there is no admin account".into()),
        };
    }
    let strong = strong_policy(ev);
    let list: Vec<String> = admins
        .iter()
        .map(|u| format!("{} ({})", u.name, if u.totp { "TOTP" } else { "no TOTP" }))
        .collect();
    let line = format!(
        "admin accounts: {}; password policy strong (length at least {STRONG_PASSWORD_LENGTH}, at least {STRONG_PASSWORD_CLASSES} classes): {}",
        list.join(", "),
        yes_no(strong)
    );
    let weak: Vec<&str> = admins
        .iter()
        .filter(|u| !u.totp)
        .map(|u| u.name.as_str())
        .collect();
    Check {
        name,
        line,
        outcome: if strong || weak.is_empty() {
            Outcome::Holds
        } else {
            Outcome::Bad(format!(
                "admin accounts without TOTP under a password policy that is not strong: {}",
                weak.join(", ")
            ))
        },
    }
}

fn brute_force(ev: &Evidence) -> Check {
    let a = &ev.access;
    let line = format!(
        "brute-force protection: lockout after {} for {}; rate limit {} requests per minute",
        plural(a.lockout_threshold, "failed login", "failed logins"),
        plural(a.lockout_minutes, "minute", "minutes"),
        a.rate_limit_per_minute
    );
    let mut bad = Vec::new();
    if a.lockout_threshold == 0 || a.lockout_minutes == 0 {
        bad.push("accounts are never locked after failed logins".to_string());
    } else if a.lockout_threshold > MAX_LOCKOUT_THRESHOLD {
        bad.push(format!(
            "accounts lock only after {} failed logins, more than {MAX_LOCKOUT_THRESHOLD}",
            a.lockout_threshold
        ));
    }
    if a.rate_limit_per_minute == 0 {
        bad.push("API requests are not rate limited".to_string());
    }
    Check {
        name: "brute-force protection",
        line,
        outcome: if bad.is_empty() {
            Outcome::Holds
        } else {
            Outcome::Bad(bad.join("; "))
        },
    }
}

fn audit_chain(ev: &Evidence) -> Check {
    let a = &ev.audit;
    let mut line = format!(
        "audit chain: verified intact: {}; {}; {}",
        yes_no(a.chain_intact),
        plural(a.records, "record", "records"),
        plural(a.problems.len() as u64, "problem", "problems")
    );
    if !a.problems.is_empty() {
        let shown: Vec<&str> = a
            .problems
            .iter()
            .take(PROBLEMS_SHOWN)
            .map(String::as_str)
            .collect();
        line.push_str(": ");
        line.push_str(&shown.join("; "));
        if a.problems.len() > PROBLEMS_SHOWN {
            line.push_str(&format!("; and {} more", a.problems.len() - PROBLEMS_SHOWN));
        }
    }
    let problems = plural(a.problems.len() as u64, "problem", "problems");
    let outcome = if !a.chain_intact {
        Outcome::Bad(format!("the audit chain is broken ({problems})"))
    } else if !a.problems.is_empty() {
        Outcome::Bad(format!("the audit chain verification reported {problems}"))
    } else if a.records == 0 {
        Outcome::Missing("the audit log holds no records, so an empty chain proves nothing".into())
    } else {
        Outcome::Holds
    };
    Check {
        name: "audit chain integrity",
        line,
        outcome,
    }
}
