//! The CNI reference plugins (Debian's containernetworking-plugins):
//! bridge (with host-local IPAM), firewall and portmap, chained by the CNI
//! convention as a runtime does it: each plugin gets the network config
//! with the previous plugin's result on stdin and the CNI_* environment;
//! DEL runs the chain in reverse with the cached final result.

use super::{host_port, make_netns, remove_netns};
use crate::proc::run_timed;
use crate::series::Subject;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

pub const PLUGIN_DIR: &str = "/usr/lib/cni";
pub const PLUGINS: [&str; 4] = ["bridge", "host-local", "firewall", "portmap"];

const VERSION: &str = "1.0.0";

pub struct Cni {
    /// Final ADD result per attachment, as a runtime caches it for DEL.
    results: HashMap<usize, Value>,
}

fn name(i: usize) -> String {
    format!("cni{i}")
}

impl Cni {
    pub fn new() -> Cni {
        Cni {
            results: HashMap::new(),
        }
    }

    /// The conflist's plugins, with attachment `i`'s runtime config.
    fn chain(i: usize) -> Vec<Value> {
        vec![
            json!({
                "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.89.0.0/16"}]],
                         "routes": [{"dst": "0.0.0.0/0"}]}
            }),
            json!({"type": "firewall", "backend": "iptables"}),
            json!({
                "type": "portmap", "capabilities": {"portMappings": true}, "snat": true,
                "runtimeConfig": {"portMappings": [
                    {"hostPort": host_port(i), "containerPort": 80, "protocol": "tcp"}
                ]}
            }),
        ]
    }

    fn invoke(i: usize, command: &str, plugin: &Value, prev: Option<&Value>) -> Result<Value> {
        let mut conf = plugin.clone();
        conf["cniVersion"] = json!(VERSION);
        conf["name"] = json!("bench");
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        let kind = plugin["type"].as_str().expect("type").to_string();
        let netns = palisade_link::netns_path(&name(i));
        let id = format!("bench{i:08}");
        let (out, _) = run_timed(
            &Path::new(PLUGIN_DIR).join(&kind),
            &[],
            &[
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", &id),
                ("CNI_NETNS", netns.to_str().expect("utf-8")),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", PLUGIN_DIR),
            ],
            Some(conf.to_string().as_bytes()),
        )
        .with_context(|| format!("CNI {command} of plugin {kind}"))?;
        if command == "DEL" || out.iter().all(u8::is_ascii_whitespace) {
            return Ok(prev.cloned().unwrap_or(Value::Null));
        }
        serde_json::from_slice(&out).with_context(|| format!("CNI {kind} printed no JSON result"))
    }
}

impl Subject for Cni {
    fn prepare(&mut self, i: usize) -> Result<()> {
        make_netns(&name(i))
    }
    fn attach(&mut self, i: usize) -> Result<()> {
        let mut prev: Option<Value> = None;
        for plugin in Self::chain(i) {
            prev = Some(Self::invoke(i, "ADD", &plugin, prev.as_ref())?);
        }
        self.results.insert(i, prev.unwrap_or(Value::Null));
        Ok(())
    }
    fn detach(&mut self, i: usize) -> Result<()> {
        let result = self.results.remove(&i).unwrap_or(Value::Null);
        for plugin in Self::chain(i).iter().rev() {
            Self::invoke(i, "DEL", plugin, Some(&result))?;
        }
        Ok(())
    }
    fn unprepare(&mut self, i: usize) -> Result<()> {
        remove_netns(&name(i))
    }
}
