//! The frameworks and the controls evaluated for each.

use std::fmt;
use std::str::FromStr;

use crate::facts::Fact;

/// A compliance framework palisade reports against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framework {
    /// AICPA SOC 2 (Trust Services Criteria), `soc2`.
    Soc2,
    /// PCI DSS v4.0, `pci-dss-4.0`.
    PciDss4,
    /// NIST SP 800-53 Rev. 5, `nist-800-53`.
    Nist80053,
    /// ISO/IEC 27001:2022 Annex A, `iso27001-2022`.
    Iso27001,
}

/// A framework name that is not one of [`Framework::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown framework {given:?}: expected one of soc2, pci-dss-4.0 (or pci-dss, pci), nist-800-53 (or nist), iso27001-2022 (or iso27001)")]
pub struct UnknownFramework {
    /// The name as given.
    pub given: String,
}

impl Framework {
    /// Every framework, in the order reports list them.
    pub const ALL: [Framework; 4] = [
        Framework::Soc2,
        Framework::PciDss4,
        Framework::Nist80053,
        Framework::Iso27001,
    ];

    /// The canonical id (`soc2`, `pci-dss-4.0`, `nist-800-53`, `iso27001-2022`).
    pub fn id(self) -> &'static str {
        match self {
            Framework::Soc2 => "soc2",
            Framework::PciDss4 => "pci-dss-4.0",
            Framework::Nist80053 => "nist-800-53",
            Framework::Iso27001 => "iso27001-2022",
        }
    }

    /// The human title.
    pub fn title(self) -> &'static str {
        match self {
            Framework::Soc2 => "SOC 2 Trust Services Criteria",
            Framework::PciDss4 => "PCI DSS v4.0",
            Framework::Nist80053 => "NIST SP 800-53 Rev. 5",
            Framework::Iso27001 => "ISO/IEC 27001:2022 Annex A",
        }
    }

    /// The ids and titles of the controls evaluated for this framework.
    pub fn controls(self) -> Vec<(&'static str, &'static str)> {
        self.defs().iter().map(|c| (c.id, c.title)).collect()
    }

    pub(crate) fn defs(self) -> &'static [ControlDef] {
        match self {
            Framework::Soc2 => SOC2,
            Framework::PciDss4 => PCI,
            Framework::Nist80053 => NIST,
            Framework::Iso27001 => ISO,
        }
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Framework {
    type Err = UnknownFramework;

    /// Accepts the canonical ids and the short aliases, ignoring case and
    /// surrounding white space.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "soc2" => Ok(Framework::Soc2),
            "pci-dss-4.0" | "pci-dss" | "pci" => Ok(Framework::PciDss4),
            "nist-800-53" | "nist" => Ok(Framework::Nist80053),
            "iso27001-2022" | "iso27001" => Ok(Framework::Iso27001),
            _ => Err(UnknownFramework {
                given: s.to_string(),
            }),
        }
    }
}

/// One control: what it is called and which facts it is computed from.
pub(crate) struct ControlDef {
    pub id: &'static str,
    pub title: &'static str,
    pub facts: &'static [Fact],
}

use Fact::*;

/// The facts that show the firewall as compiled is the one in the kernel.
/// Every network control depends on them.
macro_rules! boundary {
    ($($f:expr),* $(,)?) => { &[$($f,)* Verify, Probes] };
}

const SOC2: &[ControlDef] = &[
    ControlDef {
        id: "CC6.1",
        title: "Logical access: authentication, roles and least privilege",
        facts: &[
            Roles,
            TenantScoping,
            PasswordPolicy,
            AdminAuth,
            BruteForce,
            TokenLifetime,
            SocketMode,
        ],
    },
    ControlDef {
        id: "CC6.6",
        title: "Boundary protection against threats from outside the system",
        facts: boundary!(DefaultDeny, Ipv6, Metadata, PrivateRanges, Host, Transport),
    },
    ControlDef {
        id: "CC7.2",
        title: "Monitoring: security events recorded and the firewall checked",
        facts: &[AuditChain, AuditEvents, Verify],
    },
];

const PCI: &[ControlDef] = &[
    ControlDef {
        id: "1.3",
        title: "Network access to and from the cardholder data environment is restricted",
        facts: boundary!(DefaultDeny, Ipv6, InterSandbox),
    },
    ControlDef {
        id: "1.4",
        title: "Connections between trusted and untrusted networks are controlled",
        facts: boundary!(Metadata, PrivateRanges, Host, Exposures, AntiSpoofing),
    },
    ControlDef {
        id: "10.2",
        title: "Audit logs record user activity",
        facts: &[AuditChain, AuditEvents, AuditRetention],
    },
];

const NIST: &[ControlDef] = &[
    ControlDef {
        id: "SC-7",
        title: "Boundary protection",
        facts: boundary!(
            DefaultDeny,
            Ipv6,
            Metadata,
            PrivateRanges,
            Host,
            InterSandbox,
            AntiSpoofing,
            Exposures
        ),
    },
    ControlDef {
        id: "AC-3",
        title: "Access enforcement",
        facts: &[Roles, TenantScoping, SocketMode],
    },
    ControlDef {
        id: "AU-9",
        title: "Protection of audit information",
        facts: &[AuditChain, AuditMac, AuditKey],
    },
];

const ISO: &[ControlDef] = &[
    ControlDef {
        id: "A.8.20",
        title: "Networks security",
        facts: boundary!(
            DefaultDeny,
            Ipv6,
            Metadata,
            PrivateRanges,
            Host,
            AntiSpoofing,
            Transport
        ),
    },
    ControlDef {
        id: "A.8.22",
        title: "Segregation of networks",
        facts: boundary!(InterSandbox),
    },
];
