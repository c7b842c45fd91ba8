//! netavark (Podman's network backend, Debian's package), called as Podman
//! calls it: `netavark setup NETNS` and `teardown NETNS` with the network
//! options on stdin. One bridge network, a static address per container
//! (Podman does the IPAM) and one published port each, as in the figures
//! DESIGN.md quotes.

use super::{host_port, make_netns, pool_addr, remove_netns};
use crate::lab::SCRATCH;
use crate::proc::run_timed;
use crate::series::Subject;
use anyhow::Result;
use std::path::{Path, PathBuf};

pub const BINARY: &str = "/usr/lib/podman/netavark";

pub struct Netavark {
    config_dir: PathBuf,
}

fn name(i: usize) -> String {
    format!("nv{i}")
}

impl Netavark {
    pub fn new() -> Result<Netavark> {
        let config_dir = Path::new(SCRATCH).join("netavark");
        std::fs::create_dir_all(&config_dir)?;
        Ok(Netavark { config_dir })
    }

    fn options(i: usize) -> String {
        serde_json::json!({
            "container_id": format!("{:064x}", i + 1),
            "container_name": name(i),
            "port_mappings": [{
                "host_ip": "", "container_port": 80, "host_port": host_port(i),
                "range": 1, "protocol": "tcp"
            }],
            "networks": {"bench": {"static_ips": [pool_addr([10, 88], i).to_string()], "interface_name": "eth0"}},
            "network_info": {"bench": {
                "name": "bench", "id": format!("{:064x}", 0xbe7c4u32), "driver": "bridge",
                "network_interface": "bench0",
                "subnets": [{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}],
                "ipv6_enabled": false, "internal": false, "dns_enabled": false,
                "ipam_options": {"driver": "host-local"}
            }}
        })
        .to_string()
    }

    fn call(&self, verb: &str, i: usize) -> Result<()> {
        let netns = palisade_link::netns_path(&name(i));
        run_timed(
            Path::new(BINARY),
            &[
                "--config",
                self.config_dir.to_str().expect("utf-8"),
                verb,
                netns.to_str().expect("utf-8"),
            ],
            &[],
            Some(Self::options(i).as_bytes()),
        )?;
        Ok(())
    }
}

impl Subject for Netavark {
    fn prepare(&mut self, i: usize) -> Result<()> {
        make_netns(&name(i))
    }
    fn attach(&mut self, i: usize) -> Result<()> {
        self.call("setup", i)
    }
    fn detach(&mut self, i: usize) -> Result<()> {
        self.call("teardown", i)
    }
    fn unprepare(&mut self, i: usize) -> Result<()> {
        remove_netns(&name(i))
    }
}
