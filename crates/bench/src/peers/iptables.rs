//! Per-sandbox iptables chains, the pattern of many VM orchestrators: one
//! chain per sandbox holding its rule, jumped to from FORWARD by source
//! address; three `iptables` calls to add, three to remove. Firewall rules
//! only: no interface is made, so this peer does less than the others.

use super::pool_addr;
use crate::proc::run_timed;
use crate::series::Subject;
use anyhow::Result;
use std::path::Path;

pub struct Iptables;

fn chain(i: usize) -> String {
    format!("SBX-{i}")
}

fn iptables(args: &[&str]) -> Result<()> {
    let mut full = vec!["-w"];
    full.extend_from_slice(args);
    run_timed(Path::new("iptables"), &full, &[], None)?;
    Ok(())
}

impl Subject for Iptables {
    fn prepare(&mut self, _i: usize) -> Result<()> {
        Ok(())
    }
    fn attach(&mut self, i: usize) -> Result<()> {
        let (c, ip) = (chain(i), pool_addr([10, 90], i).to_string());
        iptables(&["-N", &c])?;
        iptables(&["-A", &c, "-p", "tcp", "--dport", "443", "-j", "ACCEPT"])?;
        iptables(&["-A", "FORWARD", "-s", &ip, "-j", &c])
    }
    fn detach(&mut self, i: usize) -> Result<()> {
        let (c, ip) = (chain(i), pool_addr([10, 90], i).to_string());
        iptables(&["-D", "FORWARD", "-s", &ip, "-j", &c])?;
        iptables(&["-F", &c])?;
        iptables(&["-X", &c])
    }
    fn unprepare(&mut self, _i: usize) -> Result<()> {
        Ok(())
    }
}
