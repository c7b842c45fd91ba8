//! palisade as a CNI plugin, called exactly as a runtime calls it: the
//! `CNI_*` environment and the network configuration on stdin, chained
//! after the reference `bridge` plugin (containernetworking-plugins), in a
//! throwaway lab host. Real traffic shows what the policy allows.

mod common;

use common::Env;
use palisade_lab::traffic::{tcp_connect, ProbeOutcome};
use palisade_lab::World;
use serde_json::{json, Value};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_millis(700);
const CNI_BIN: &str = "/usr/lib/cni";
const CONFIG: &str = "[network]\nuplink = \"up0\"\n[isolation]\ninter_sandbox = \"same-tenant\"\n";

/// A CNI network of the test: a bridge plugin configuration and palisade's
/// entry chained after it.
struct Net<'a> {
    env: &'a Env,
    name: String,
    bridge: String,
    subnet: String,
    palisade: Value,
}

/// One plugin invocation's outcome.
struct Call {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Call {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }

    /// Asserts a failure with this CNI error code, printed as the spec says.
    fn error(&self, code: u64) -> Value {
        assert_ne!(
            self.code,
            Some(0),
            "expected error {code}, got success: {}",
            self.stdout
        );
        let v = self.json();
        assert_eq!(v["code"], code, "wrong error: {v}\n{}", self.stderr);
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(v["cniVersion"].is_string(), "{v}");
        v
    }

    fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "plugin failed: {}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs a plugin binary inside the lab with this environment and stdin.
fn invoke(env: &Env, program: &Path, vars: &[(&str, String)], stdin: &str) -> Call {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_PATH", CNI_BIN)
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = stdin.to_string();
    let out: Output = env
        .lab
        .run(move || {
            let mut child = cmd.spawn().expect("spawn plugin");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            child.wait_with_output().expect("wait for plugin")
        })
        .unwrap();
    Call {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn palisade_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_palisade"))
}

fn cni_env(command: &str, container: &str, netns: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("CNI_COMMAND", command.to_string()),
        ("CNI_CONTAINERID", container.to_string()),
        ("CNI_NETNS", netns.display().to_string()),
        ("CNI_IFNAME", "eth0".to_string()),
    ]
}

impl<'a> Net<'a> {
    fn new(env: &'a Env, short: &str, subnet: &str, palisade: Value) -> Net<'a> {
        let mut palisade = palisade;
        palisade["type"] = json!("palisade");
        palisade["configFile"] = json!(env.dir.join("palisade.toml"));
        palisade["stateDir"] = json!(env.dir.join("state"));
        Net {
            env,
            name: format!("net-{short}"),
            bridge: format!("br{short}{}", std::process::id() % 10000),
            subnet: subnet.to_string(),
            palisade,
        }
    }

    fn bridge_conf(&self) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "dataDir": self.env.dir.join("ipam"),
                "ranges": [[{"subnet": self.subnet}]],
                "routes": [{"dst": "0.0.0.0/0"}]
            }
        })
    }

    /// palisade's configuration for one call, as a runtime derives it.
    fn conf(&self, version: &str, prev: Option<&Value>, runtime: Option<Value>) -> String {
        let mut c = self.palisade.clone();
        c["cniVersion"] = json!(version);
        c["name"] = json!(self.name);
        if let Some(p) = prev {
            c["prevResult"] = p.clone();
        }
        if let Some(r) = runtime {
            c["runtimeConfig"] = r;
        }
        c.to_string()
    }

    /// The whole chain's ADD: bridge, then palisade. Returns palisade's call
    /// and the bridge's result.
    fn add(&self, container: &str, netns: &Path, runtime: Option<Value>) -> (Call, Value) {
        let bridge = invoke(
            self.env,
            &Path::new(CNI_BIN).join("bridge"),
            &cni_env("ADD", container, netns),
            &self.bridge_conf().to_string(),
        );
        let prev = bridge.ok().json();
        let call = invoke(
            self.env,
            &palisade_bin(),
            &cni_env("ADD", container, netns),
            &self.conf("1.0.0", Some(&prev), runtime),
        );
        (call, prev)
    }

    /// The chain's DEL, in reverse order: palisade, then bridge.
    fn del(&self, container: &str, netns: &Path, prev: Option<&Value>) -> Call {
        let call = invoke(
            self.env,
            &palisade_bin(),
            &cni_env("DEL", container, netns),
            &self.conf("1.0.0", prev, None),
        );
        invoke(
            self.env,
            &Path::new(CNI_BIN).join("bridge"),
            &cni_env("DEL", container, netns),
            &self.bridge_conf().to_string(),
        )
        .ok();
        call
    }

    fn palisade(&self, vars: &[(&str, String)], stdin: &str) -> Call {
        invoke(self.env, &palisade_bin(), vars, stdin)
    }
}

/// A container network namespace, deleted with the lab.
fn container(env: &Env, short: &str) -> PathBuf {
    let name = env.name(short);
    palisade_link::create_named_netns(&name).unwrap();
    palisade_link::netns_path(&name)
}

fn ipv4_of(result: &Value) -> Ipv4Addr {
    let cidr = result["ips"][0]["address"].as_str().unwrap();
    cidr.split('/').next().unwrap().parse().unwrap()
}

/// A lab for `test`, or `None` (after a loud SKIPPED) without root or the
/// reference plugins.
fn lab(test: &str) -> Option<Env> {
    let env = Env::new(test, CONFIG)?;
    plugins_present(test).then_some(env)
}

fn plugins_present(test: &str) -> bool {
    let ok = Path::new(CNI_BIN).join("bridge").exists();
    if !ok {
        eprintln!("SKIPPED {test}: {CNI_BIN}/bridge is missing (apt-get install containernetworking-plugins)");
    }
    ok
}

/// TCP listeners answering any connection, inside a namespace.
fn serve(netns: &Path, addr: SocketAddr) {
    let l = palisade_link::run_in_netns(netns, move || TcpListener::bind(addr).unwrap()).unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
}

fn connects(netns: &Path, dst: SocketAddr) -> bool {
    matches!(tcp_connect(netns, dst, T).unwrap(), ProbeOutcome::Connected)
}

#[test]
fn chained_after_bridge_palisade_enforces_tenancy_blocks_and_egress() {
    let Some(env) = lab("chained_after_bridge_palisade_enforces_tenancy_blocks_and_egress") else {
        return;
    };
    let world = env.lab.add_world().unwrap();
    let net = Net::new(
        &env,
        "a",
        "10.89.0.0/24",
        json!({"tenant": "blue", "internet": true, "overridable": ["tenant", "internet"]}),
    );
    let (a1, a2, b1) = (
        container(&env, "a1"),
        container(&env, "a2"),
        container(&env, "b1"),
    );
    let (add1, prev1) = net.add("ctr-a1", &a1, None);
    // The result is the bridge's, passed through.
    assert_eq!(add1.ok().json(), prev1);
    let (add2, prev2) = net.add("ctr-a2", &a2, None);
    add2.ok();
    // Another tenant on the same bridge, through CNI_ARGS.
    let bridge = invoke(
        &env,
        &Path::new(CNI_BIN).join("bridge"),
        &cni_env("ADD", "ctr-b1", &b1),
        &net.bridge_conf().to_string(),
    );
    let prev_b = bridge.ok().json();
    let mut vars = cni_env("ADD", "ctr-b1", &b1);
    vars.push((
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAME=x;PALISADE_TENANT=red;PALISADE_INTERNET=false".into(),
    ));
    net.palisade(&vars, &net.conf("1.0.0", Some(&prev_b), None))
        .ok();

    let list = env.json(&["sandbox", "list", "--json"]);
    let kinds: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["tenant"].as_str().unwrap(), v["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![("blue", "cni"), ("blue", "cni"), ("red", "cni")]
    );
    env.ok(&["verify"]);

    let (ip1, ip2, ipb) = (ipv4_of(&prev1), ipv4_of(&prev2), ipv4_of(&prev_b));
    for (ns, ip) in [(&a1, ip1), (&a2, ip2), (&b1, ipb)] {
        serve(ns, SocketAddr::new(ip.into(), 9));
    }
    // Bridged traffic is seen by the bridge table, and by the inet table
    // too while br_netfilter passes it there (this kernel's default): both
    // ways must hold on their own.
    for br_netfilter in ["1", "0"] {
        env.lab
            .run(move || {
                for key in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
                    palisade_link::set_sysctl(&format!("net/bridge/{key}"), br_netfilter).unwrap();
                }
            })
            .unwrap();
        // Same tenant, same bridge: layer 2 allowed.
        let same = connects(&a1, SocketAddr::new(ip2.into(), 9));
        assert!(same, "same tenant must reach (br_netfilter {br_netfilter})");
        // Other tenant, same bridge: no path either way.
        let red_blue = connects(&b1, SocketAddr::new(ip1.into(), 9));
        assert!(!red_blue, "red reached blue (br_netfilter {br_netfilter})");
        let blue_red = connects(&a1, SocketAddr::new(ipb.into(), 9));
        assert!(!blue_red, "blue reached red (br_netfilter {br_netfilter})");
    }
    // The host (the bridge's gateway address, the uplink) and metadata.
    let gateway: Ipv4Addr = prev1["ips"][0]["gateway"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let host = common::tcp_listener(&env.lab.path(), gateway, 22);
    let uplink = common::tcp_listener(&env.lab.path(), World::LAB4, 22);
    let metadata = common::tcp_listener(&world.path(), World::METADATA4, 80);
    let internet = common::tcp_listener(&world.path(), World::INTERNET4, 443);
    for ns in [&a1, &b1] {
        for dst in [
            host.local_addr(),
            uplink.local_addr(),
            metadata.local_addr(),
        ] {
            assert!(!connects(ns, dst), "{} reached {dst}", ns.display());
        }
    }
    assert!(
        host.arrivals().is_empty()
            && uplink.arrivals().is_empty()
            && metadata.arrivals().is_empty()
    );
    // Internet: blue has it, red does not; blue arrives masqueraded.
    assert!(
        connects(&a1, internet.local_addr()),
        "blue must reach the internet"
    );
    assert!(
        !connects(&b1, internet.local_addr()),
        "red reached the internet"
    );
    let arrived: Vec<IpAddr> = internet.arrivals().iter().map(|a| a.peer.ip()).collect();
    assert_eq!(
        arrived,
        vec![IpAddr::from(World::LAB4)],
        "only blue, masqueraded"
    );

    // CHECK passes, then fails once one of the attachment's elements is
    // gone from the kernel.
    let check = net.palisade(
        &cni_env("CHECK", "ctr-a1", &a1),
        &net.conf("1.0.0", Some(&prev1), None),
    );
    check.ok();
    let port = env.json(&["sandbox", "list", "--json"])[0]["cni"]["host_port"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env
        .lab
        .command(
            Path::new("nft"),
            &[
                "delete",
                "element",
                "bridge",
                "palisade",
                "cni_ports",
                &format!("{{ \"{port}\" }}"),
            ],
            &[],
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drifted = net.palisade(
        &cni_env("CHECK", "ctr-a1", &a1),
        &net.conf("1.0.0", Some(&prev1), None),
    );
    let e = drifted.error(100);
    assert!(e["details"].as_str().unwrap().contains("cni_ports"), "{e}");
    // An older protocol version has no CHECK.
    let old = net.palisade(
        &cni_env("CHECK", "ctr-a1", &a1),
        &net.conf("0.3.1", Some(&prev1), None),
    );
    old.error(1);

    // DEL removes all of it; the next command's repair is not needed.
    for (id, ns, prev) in [
        ("ctr-a1", &a1, &prev1),
        ("ctr-a2", &a2, &prev2),
        ("ctr-b1", &b1, &prev_b),
    ] {
        net.del(id, ns, Some(prev)).ok();
        // Idempotent: again, without prevResult, after the interface is gone.
        net.del(id, ns, None).ok();
    }
    env.assert_empty();
    let text = env.table_text();
    assert!(
        !text.contains(&net.bridge),
        "bridge element left behind:\n{text}"
    );
}

#[test]
fn port_mappings_are_exposures_reachable_from_outside() {
    let Some(env) = lab("port_mappings_are_exposures_reachable_from_outside") else {
        return;
    };
    let world = env.lab.add_world().unwrap();
    let net = Net::new(
        &env,
        "p",
        "10.90.0.0/24",
        json!({"tenant": "web", "capabilities": {"portMappings": true}}),
    );
    let c = container(&env, "p1");
    let mappings =
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]});
    let (add, prev) = net.add("ctr-p1", &c, Some(mappings));
    add.ok();
    let ip = ipv4_of(&prev);
    let web = common::tcp_listener(&c, ip, 80);
    let show = env.json(&["sandbox", "list", "--json"]);
    assert_eq!(show[0]["exposures"].as_array().unwrap().len(), 1, "{show}");
    // From the world, to the lab's uplink address: forwarded to the container.
    assert!(connects(
        &world.path(),
        SocketAddr::new(World::LAB4.into(), 8080)
    ));
    assert_eq!(web.wait_for_arrivals(1, T).len(), 1);
    net.del("ctr-p1", &c, Some(&prev)).ok();
    assert!(!connects(
        &world.path(),
        SocketAddr::new(World::LAB4.into(), 8080)
    ));
    env.assert_empty();
}

#[test]
fn spec_errors_versions_status_and_gc() {
    let Some(env) = lab("spec_errors_versions_status_and_gc") else {
        return;
    };
    let net = Net::new(&env, "s", "10.91.0.0/24", json!({"tenant": "t"}));
    let c1 = container(&env, "s1");
    let c2 = container(&env, "s2");

    // VERSION: in the version asked for, with or without a configuration.
    for v in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let call = net.palisade(
            &[("CNI_COMMAND", "VERSION".into())],
            &format!("{{\"cniVersion\":\"{v}\"}}"),
        );
        let out = call.ok().json();
        assert_eq!(out["cniVersion"], v);
        assert_eq!(
            out["supportedVersions"],
            json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        );
    }
    let bare = net.palisade(&[("CNI_COMMAND", "VERSION".into())], "");
    assert_eq!(bare.ok().json()["cniVersion"], "1.1.0");

    // Environment and decoding errors.
    net.palisade(&[("CNI_COMMAND", "FROB".into())], "{}")
        .error(4);
    let mut no_id = cni_env("ADD", "x", &c1);
    no_id.retain(|(k, _)| *k != "CNI_CONTAINERID");
    net.palisade(&no_id, &net.conf("1.0.0", Some(&json!({})), None))
        .error(4);
    net.palisade(&cni_env("ADD", "x", &c1), "{not json")
        .error(6);
    net.palisade(
        &cni_env("ADD", "x", &c1),
        &net.conf("0.2.0", Some(&json!({})), None),
    )
    .error(1);
    let gone = PathBuf::from("/run/netns/palisade-no-such-netns");
    let prev_empty = json!({"cniVersion": "1.0.0", "interfaces": [], "ips": []});
    net.palisade(
        &cni_env("ADD", "x", &gone),
        &net.conf("1.0.0", Some(&prev_empty), None),
    )
    .error(4);
    // Not chained: no prevResult.
    let e = net
        .palisade(&cni_env("ADD", "x", &c1), &net.conf("1.0.0", None, None))
        .error(7);
    assert!(e["details"].as_str().unwrap().contains("bridge"), "{e}");
    // No tenant anywhere.
    let mut untenanted = Net::new(&env, "s", "10.91.0.0/24", json!({}));
    untenanted.bridge = net.bridge.clone();
    let (call, prev) = untenanted.add("ctr-u", &c1, None);
    call.error(7);
    untenanted.del("ctr-u", &c1, Some(&prev)).ok();
    // A bridge named like palisade's own (bridge mode filters every
    // `palisade...` interface as one of them).
    let mut lookalike = Net::new(&env, "p", "10.92.0.0/24", json!({"tenant": "t"}));
    lookalike.bridge = "palisade9".into();
    let (call, prev) = lookalike.add("ctr-p", &c1, None);
    let e = call.error(7);
    assert!(
        e["details"]
            .as_str()
            .unwrap()
            .contains("palisade's own bridges"),
        "{e}"
    );
    lookalike.del("ctr-p", &c1, Some(&prev)).ok();
    // In bridge mode (the default) palisade takes `palisade...` bridges for
    // its own and may already have deleted this one.
    let out = env
        .lab
        .command(Path::new("ip"), &["link", "delete", "palisade9"], &[])
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("Cannot find device"),
        "{out:?}"
    );
    // An interface that is no bridge port: a veth pair of our own.
    let loose = container(&env, "s3");
    let loose_path = loose.clone();
    env.lab
        .run(move || {
            let ns = palisade_link::open_netns(&loose_path).unwrap();
            let spec = palisade_link::VethSpec {
                host_name: format!("lv{}", std::process::id() % 100000),
                peer_name: "eth0".into(),
                peer_netns: Some(std::os::fd::AsFd::as_fd(&ns)),
                ..Default::default()
            };
            palisade_link::Rtnl::open()
                .unwrap()
                .create_veth(&spec)
                .map(|_| ())
        })
        .unwrap()
        .unwrap();
    let e = net
        .palisade(
            &cni_env("ADD", "ctr-l", &loose),
            &net.conf("1.0.0", Some(&prev_empty), None),
        )
        .error(7);
    assert!(
        e["details"].as_str().unwrap().contains("not a bridge port"),
        "{e}"
    );
    env.assert_empty();

    // Fail closed: the policy cannot be applied, so ADD fails and nothing
    // is recorded.
    let bridge = invoke(
        &env,
        &Path::new(CNI_BIN).join("bridge"),
        &cni_env("ADD", "ctr-f", &c1),
        &net.bridge_conf().to_string(),
    );
    let prev_f = bridge.ok().json();
    let mut vars = cni_env("ADD", "ctr-f", &c1);
    vars.push(("PALISADE_FAIL_AT", "elements".into()));
    net.palisade(&vars, &net.conf("1.0.0", Some(&prev_f), None))
        .error(100);
    env.assert_empty();
    net.del("ctr-f", &c1, Some(&prev_f)).ok();

    // STATUS: ready; not for older versions; unavailable with a broken
    // palisade configuration.
    net.palisade(
        &[("CNI_COMMAND", "STATUS".into())],
        &net.conf("1.1.0", None, None),
    )
    .ok();
    net.palisade(
        &[("CNI_COMMAND", "STATUS".into())],
        &net.conf("1.0.0", None, None),
    )
    .error(1);
    let broken = env.dir.join("broken.toml");
    std::fs::write(&broken, "[network]\nmode = \"sideways\"\n").unwrap();
    let mut conf: Value = serde_json::from_str(&net.conf("1.1.0", None, None)).unwrap();
    conf["configFile"] = json!(broken);
    let e = net
        .palisade(&[("CNI_COMMAND", "STATUS".into())], &conf.to_string())
        .error(50);
    assert!(e["details"].as_str().unwrap().contains("sideways"), "{e}");

    // Two ADDs at once: both succeed, on distinct sandboxes.
    let (bridge1, bridge2) = (
        invoke(
            &env,
            &Path::new(CNI_BIN).join("bridge"),
            &cni_env("ADD", "ctr-1", &c1),
            &net.bridge_conf().to_string(),
        ),
        invoke(
            &env,
            &Path::new(CNI_BIN).join("bridge"),
            &cni_env("ADD", "ctr-2", &c2),
            &net.bridge_conf().to_string(),
        ),
    );
    let (p1, p2) = (bridge1.ok().json(), bridge2.ok().json());
    let conf1 = net.conf("1.1.0", Some(&p1), None);
    let conf2 = net.conf("1.1.0", Some(&p2), None);
    let (env1, env2) = (cni_env("ADD", "ctr-1", &c1), cni_env("ADD", "ctr-2", &c2));
    let calls = std::thread::scope(|s| {
        let h1 = s.spawn(|| net.palisade(&env1, &conf1));
        let h2 = s.spawn(|| net.palisade(&env2, &conf2));
        [h1.join().unwrap(), h2.join().unwrap()]
    });
    for c in &calls {
        c.ok();
    }
    let list = env.json(&["sandbox", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    env.ok(&["verify"]);
    // The same attachment twice is an error.
    net.palisade(&env1, &conf1).error(7);

    // GC: only ctr-1 is still valid; GC of another network removes nothing.
    let mut gc: Value = serde_json::from_str(&net.conf("1.1.0", None, None)).unwrap();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "ctr-1", "ifname": "eth0"}]);
    let mut other = gc.clone();
    other["name"] = json!("some-other-net");
    other["cni.dev/valid-attachments"] = json!([]);
    net.palisade(&[("CNI_COMMAND", "GC".into())], &other.to_string())
        .ok();
    assert_eq!(
        env.json(&["sandbox", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    net.palisade(&[("CNI_COMMAND", "GC".into())], &gc.to_string())
        .ok();
    let list = env.json(&["sandbox", "list", "--json"]);
    let left: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cni"]["container_id"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec!["ctr-1"]);
    gc["cni.dev/valid-attachments"] = json!([]);
    net.palisade(&[("CNI_COMMAND", "GC".into())], &gc.to_string())
        .ok();
    net.palisade(
        &[("CNI_COMMAND", "GC".into())],
        &net.conf("1.0.0", None, None),
    )
    .error(1);
    env.assert_empty();
    for (id, ns, prev) in [("ctr-1", &c1, &p1), ("ctr-2", &c2, &p2)] {
        net.del(id, ns, Some(prev)).ok();
    }
    // DEL with no state at all (a fresh state directory) is success.
    let mut fresh: Value = serde_json::from_str(&net.conf("1.0.0", None, None)).unwrap();
    fresh["stateDir"] = json!(env.dir.join("never-used"));
    net.palisade(&cni_env("DEL", "ctr-x", &c1), &fresh.to_string())
        .ok();
    assert!(!env.dir.join("never-used").exists());
}

#[test]
fn a_record_that_outlived_its_container_gives_its_address_up() {
    let Some(env) = lab("a_record_that_outlived_its_container_gives_its_address_up") else {
        return;
    };
    // One address in the pool: the next container gets the same one.
    let net = Net::new(&env, "r", "10.93.0.0/24", json!({"tenant": "t"}));
    let mut conf = net.bridge_conf();
    conf["ipam"]["ranges"] =
        json!([[{"subnet": "10.93.0.0/24", "rangeStart": "10.93.0.5", "rangeEnd": "10.93.0.5"}]]);
    let first = container(&env, "r1");
    let bridge = |command: &str, id: &str, ns: &Path| {
        invoke(
            &env,
            &Path::new(CNI_BIN).join("bridge"),
            &cni_env(command, id, ns),
            &conf.to_string(),
        )
    };
    let prev = bridge("ADD", "ctr-old", &first).ok().json();
    net.palisade(
        &cni_env("ADD", "ctr-old", &first),
        &net.conf("1.0.0", Some(&prev), None),
    )
    .ok();
    // The runtime lost palisade's DEL: only the bridge plugin's ran.
    bridge("DEL", "ctr-old", &first).ok();
    let second = container(&env, "r2");
    let prev2 = bridge("ADD", "ctr-new", &second).ok().json();
    assert_eq!(
        ipv4_of(&prev2),
        ipv4_of(&prev),
        "the pool hands the address out again"
    );
    net.palisade(
        &cni_env("ADD", "ctr-new", &second),
        &net.conf("1.0.0", Some(&prev2), None),
    )
    .ok();
    let list = env.json(&["sandbox", "list", "--json"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cni"]["container_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["ctr-new"],
        "the stale record must be gone: {list}"
    );
    env.ok(&["verify"]);
    net.palisade(
        &cni_env("DEL", "ctr-new", &second),
        &net.conf("1.0.0", Some(&prev2), None),
    )
    .ok();
    bridge("DEL", "ctr-new", &second).ok();
    env.assert_empty();
}
