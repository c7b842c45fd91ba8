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
        // Linux 6.3 reports every link's IPv4 packet size limit.
        let big_tcp = self
            .rtnl
            .link("lo")
            .ok()
            .flatten()
            .is_some_and(|lo| lo.gso_ipv4_max_size.is_some());
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
                name: "big-tcp".into(),
                available: big_tcp,
                detail: match (big_tcp, self.config.network.big_tcp) {
                    (true, true) => {
                        "veths and bridges pass IPv4 packets of up to 512 KiB (network.big_tcp)"
                            .into()
                    }
                    (true, false) => "off: network.big_tcp = false; links keep 64 KiB".into(),
                    (false, _) => "kernel before 6.3: links keep 64 KiB packets".into(),
                },
            },
            Feature {
                name: "br_netfilter".into(),
                available: std::path::Path::new("/proc/sys/net/bridge").exists(),
                detail: "not needed: bridge mode filters in the bridge family".into(),
            },
        ];
        Ok(StatusView {
            mode: self.config.network.mode,
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
