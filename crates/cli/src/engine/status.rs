//! `palisade status`: tables, counts, tenants, drift and kernel features.

use super::view::{Feature, StatusView, TableStatus};
use super::{table_name, Engine, EngineError};
use std::collections::BTreeMap;

impl Engine {
    pub fn status(&mut self) -> Result<StatusView, EngineError> {
        let wanted = palisade_core::compile::families(&self.config);
        let tables = self
            .live_counts()?
            .into_iter()
            .map(|(family, present, rules, elements)| TableStatus {
                table: table_name(family),
                present,
                expected: wanted.contains(&family),
                rules,
                elements,
            })
            .collect();
        let mut per_tenant = BTreeMap::new();
        let records = self.store.sandboxes()?;
        for r in &records {
            *per_tenant.entry(r.tenant.to_string()).or_insert(0) += 1;
        }
        let verify = self.verify(None)?;
        let destroy = self.nft.supports_destroy();
        let features = vec![
            Feature {
                name: "nf_tables".into(),
                available: true,
                detail: "netlink socket open".into(),
            },
            Feature {
                name: "nft".into(),
                available: palisade_nft::nft_available(),
                detail: "nft binary, used for whole-table apply and read-back".into(),
            },
            Feature {
                name: "destroy-set-element".into(),
                available: destroy,
                detail: if destroy {
                    "idempotent element removal in one message (kernel >= 6.3)".into()
                } else {
                    "older kernel: removal lists the set first".into()
                },
            },
            Feature {
                name: "tun".into(),
                available: std::path::Path::new("/dev/net/tun").exists(),
                detail: "/dev/net/tun, needed for --kind tap".into(),
            },
            Feature {
                name: "br_netfilter".into(),
                available: std::path::Path::new("/proc/sys/net/bridge").exists(),
                detail: "not needed: bridge mode filters in the bridge family".into(),
            },
        ];
        Ok(StatusView {
            tables,
            sandboxes: records.len(),
            sandboxes_per_tenant: per_tenant,
            drift: !verify.ok(),
            differences: verify.differences.len(),
            retired_interfaces: self.store.retired_links()?,
            features,
        })
    }
}
