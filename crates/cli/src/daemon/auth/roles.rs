//! Roles and what they may do. Pure: the handlers ask, this answers.
//!
//! - `admin`: everything, including users and the security policy.
//! - `operator`: sandboxes, exposures, tenant rules and verification.
//! - `viewer`: reading only.
//!
//! Any user may also be scoped to one tenant: it then sees and touches only
//! that tenant's objects, and objects of other tenants do not exist for it
//! (404, never 403, so it learns nothing of them). Objects that belong to no
//! tenant (the security policy, the compliance report, the host's status)
//! are for unscoped users only.

use std::str::FromStr;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        match p {
            Permission::Read => true,
            Permission::Operate => self >= Role::Operator,
            Permission::Administer => self == Role::Admin,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: one of admin, operator, viewer"))
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Look at sandboxes, tenants, rules, status, audit records.
    Read,
    /// Change sandboxes, exposures and tenant rules; run verification.
    Operate,
    /// Manage users and the security policy.
    Administer,
}

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: u64,
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
    /// The access token's id and expiry, for logout.
    pub token_id: String,
    pub token_expires: i64,
}

/// Why a principal may not do something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The role does not allow it (403).
    Role(String),
    /// The object belongs to another tenant: answer as if it did not exist.
    Hidden,
}

impl Principal {
    pub fn require(&self, p: Permission) -> Result<(), Refusal> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(Refusal::Role(format!(
                "role {} may not {}",
                self.role,
                match p {
                    Permission::Read => "read",
                    Permission::Operate => "change sandboxes, exposures, rules or run verification",
                    Permission::Administer => "manage users or the security policy",
                }
            )))
        }
    }

    /// May this principal see objects of `tenant`?
    pub fn sees(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
    }

    /// `require(p)` on an object of `tenant`: other tenants' objects are
    /// hidden before the role is even considered.
    pub fn require_on(&self, p: Permission, tenant: &str) -> Result<(), Refusal> {
        if !self.sees(tenant) {
            return Err(Refusal::Hidden);
        }
        self.require(p)
    }

    /// For objects of no tenant: unscoped users only.
    pub fn require_global(&self, p: Permission) -> Result<(), Refusal> {
        if let Some(t) = &self.tenant {
            return Err(Refusal::Role(format!(
                "user {} is scoped to tenant {t}; this is not a tenant's object",
                self.name
            )));
        }
        self.require(p)
    }

    /// The tenant a list is limited to: the scope wins over the filter; a
    /// filter naming another tenant yields nothing.
    pub fn list_scope<'a>(&'a self, filter: Option<&'a str>) -> Result<Option<&'a str>, Refusal> {
        match (&self.tenant, filter) {
            (Some(t), Some(f)) if t != f => Err(Refusal::Hidden),
            (Some(t), _) => Ok(Some(t)),
            (None, f) => Ok(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, tenant: Option<&str>) -> Principal {
        Principal {
            user_id: 1,
            name: "u".into(),
            role,
            tenant: tenant.map(String::from),
            token_id: "j".into(),
            token_expires: 0,
        }
    }

    #[test]
    fn role_matrix() {
        use Permission::*;
        let table = [
            (Role::Admin, [true, true, true]),
            (Role::Operator, [true, true, false]),
            (Role::Viewer, [true, false, false]),
        ];
        for (role, expected) in table {
            for (p, want) in [Read, Operate, Administer].into_iter().zip(expected) {
                assert_eq!(role.allows(p), want, "{role} {p:?}");
            }
        }
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn scoped_users_see_only_their_tenant() {
        let op = user(Role::Operator, Some("acme"));
        assert!(op.require_on(Permission::Operate, "acme").is_ok());
        assert_eq!(
            op.require_on(Permission::Read, "globex"),
            Err(Refusal::Hidden)
        );
        // Hidden wins over the role: a scoped viewer learns nothing either.
        let v = user(Role::Viewer, Some("acme"));
        assert_eq!(
            v.require_on(Permission::Operate, "globex"),
            Err(Refusal::Hidden)
        );
        assert!(matches!(
            v.require_on(Permission::Operate, "acme"),
            Err(Refusal::Role(_))
        ));
        assert!(op.require_global(Permission::Read).is_err());
        assert_eq!(op.list_scope(None), Ok(Some("acme")));
        assert_eq!(op.list_scope(Some("globex")), Err(Refusal::Hidden));
        let admin = user(Role::Admin, None);
        assert_eq!(admin.list_scope(Some("globex")), Ok(Some("globex")));
        assert!(admin.require_global(Permission::Administer).is_ok());
    }
}
