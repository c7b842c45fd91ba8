//! The `palisade` command line.

mod admin;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use palisade::engine::{
    CreateRequest, DestroyOutcome, Engine, Expect, ExposeRequest, ProbeOptions, ProbeReport,
    SandboxView, TenantRuleView, UpdateRequest, DEFAULT_INTERNET_TARGETS, DEFAULT_STATE_DIR,
};
use palisade_core::config::Config;
use palisade_core::model::SandboxKind;
use palisade_core::tenant_rule::{RuleAction, TenantRule};
use std::path::PathBuf;
use std::process::ExitCode;

/// Network isolation for untrusted sandboxes (microVMs on taps, containers in
/// network namespaces), enforced by one atomic nftables table.
#[derive(Parser)]
#[command(name = "palisade", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Default: $PALISADE_CONFIG, else
    /// /etc/palisade/palisade.toml if it exists, else built-in defaults.
    #[arg(long, global = true, env = "PALISADE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory holding palisade's state database and lock.
    #[arg(long, global = true, env = "PALISADE_STATE_DIR", value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create palisade's tables and host plumbing in the current network
    /// namespace, and reconcile the kernel with the store. Idempotent.
    Init,
    /// Create, destroy and inspect sandboxes.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Forward a host port (or range) to a sandbox's port: reachable from
    /// outside through the uplink and from the host itself, never by another
    /// sandbox that could not reach the target directly.
    Expose(ExposeArgs),
    /// Remove exposures of a sandbox: those matching --port / --host-port /
    /// --host-ip, or all of the protocol's when none is given.
    Unexpose(UnexposeArgs),
    /// Allow or deny rules for every sandbox of a tenant (existing and
    /// future): by protocol, destination port range and CIDR. Deny rules win
    /// over internet egress and --allow; allow rules open internet egress to
    /// their destination even without --internet. No rule ever re-opens what
    /// palisade always denies (metadata, host, loopback, link-local, private
    /// and reserved ranges, isolation.blocked, the sandbox pools).
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Delete the interfaces of destroyed sandboxes now. A destroy retires a
    /// sandbox's veth (its policy and routes gone, it passes nothing);
    /// retired interfaces are deleted 64 at a time, by init, by the daemon
    /// within a second, or by this command.
    Reap,
    /// Print the compiled ruleset as nft text: exactly what is applied.
    Ruleset,
    /// Tables, rule and element counts, sandboxes per tenant, drift, kernel
    /// features.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read the kernel's state back and compare it with what the store
    /// compiles to. Exit status 0 only when nothing differs.
    Verify {
        /// Verify only this sandbox.
        name: Option<String>,
        /// Also send real traffic from inside each sandbox (metadata, host
        /// addresses, other sandboxes, private ranges, allowed internet) and
        /// prove each outcome with palisade's rule counters.
        #[arg(long)]
        probe: bool,
        /// With --probe: how long each probe waits for an answer or a
        /// counted rule.
        #[arg(long, value_name = "MS", default_value_t = 500)]
        timeout_ms: u64,
        /// With --probe: internet destination for sandboxes with --internet
        /// (repeatable). Default: 192.0.2.1 and 2001:db8::1 (documentation
        /// addresses; palisade's accept counter is the evidence).
        #[arg(long, value_name = "ADDR")]
        internet_target: Vec<std::net::IpAddr>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build a throwaway lab (never touching this host's network), isolate
    /// two tenants' sandboxes, send real traffic for each cell of the policy
    /// matrix and print it. Exit status 0 only if every cell matches.
    Demo(palisade::demo::DemoArgs),
    /// Run the daemon: the REST API under /api/v1 on a Unix socket (and on
    /// TCP with TLS when configured), until SIGTERM.
    Serve,
    /// Manage the API's users on this host (the first admin is made here).
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Check and export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Compliance reports from live evidence.
    #[command(subcommand)]
    Compliance(admin::ComplianceCommand),
}

#[derive(Subcommand)]
enum SandboxCommand {
    /// Create a sandbox and its isolated network attachment.
    Create(CreateArgs),
    /// Change the policy of an existing sandbox (internet egress, allowed
    /// ports) in one atomic update; its interface and address stay. A change
    /// that narrows the policy also ends the connections it no longer allows.
    Update(UpdateArgs),
    /// Remove a sandbox and everything it had (idempotent).
    Destroy {
        /// Sandbox name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List sandboxes.
    List {
        /// Only this tenant's sandboxes.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one sandbox.
    Show {
        /// Sandbox name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RuleCommand {
    /// Add a rule for every sandbox of a tenant. It applies at once, in one
    /// atomic update, whatever the number of sandboxes.
    Add(RuleAddArgs),
    /// List tenant rules with their ids.
    List {
        /// Only this tenant's rules.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a tenant's rule by id (see `rule list`).
    Remove {
        /// The tenant the rule belongs to.
        #[arg(long)]
        tenant: String,
        /// The rule's id.
        id: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct RuleAddArgs {
    /// The tenant (created if it has no sandboxes yet).
    #[arg(long)]
    tenant: String,
    /// Accept matching egress to the internet (through the uplink,
    /// masqueraded), even for sandboxes without --internet. The CIDR must
    /// not overlap any always-denied range.
    #[arg(long, conflicts_with = "deny", required_unless_present = "deny")]
    allow: bool,
    /// Drop matching egress, even when --internet or --allow would accept
    /// it. May cover anything.
    #[arg(long)]
    deny: bool,
    /// Transport protocol.
    #[arg(long, value_parser = ["tcp", "udp"])]
    proto: String,
    /// Destination port or range FIRST-LAST (1-65535). Default: all ports.
    #[arg(long, value_name = "P[-LAST]")]
    port: Option<String>,
    /// Destination network, e.g. 203.0.113.0/24 or 2001:db8::/32 (an address
    /// alone is a /32 or /128). Host bits must be zero.
    #[arg(long)]
    cidr: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CreateArgs {
    /// Sandbox name: 1-63 characters of a-z, 0-9 and '-', starting with a
    /// letter or digit. For --kind netns it is also the namespace's name.
    name: String,
    /// Tenant the sandbox belongs to (same charset as names).
    #[arg(long)]
    tenant: String,
    /// netns: a network namespace with a veth (created, or adopted if it
    /// exists); tap: a tap device for a VMM; none: networking disabled.
    #[arg(long, default_value = "netns", value_parser = parse_kind)]
    kind: SandboxKind,
    /// Allow egress to public addresses through the uplink (masqueraded).
    #[arg(long)]
    internet: bool,
    /// Narrow internet egress to this destination, PROTO:PORT (tcp or udp),
    /// e.g. tcp:443. Repeatable.
    #[arg(long, value_name = "PROTO:PORT")]
    allow: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct UpdateArgs {
    /// Sandbox name.
    name: String,
    /// Turn internet egress on.
    #[arg(long, conflicts_with = "no_internet")]
    internet: bool,
    /// Turn internet egress off.
    #[arg(long)]
    no_internet: bool,
    /// Add PROTO:PORT (tcp or udp) to the ports internet egress is narrowed
    /// to. Repeatable.
    #[arg(long, value_name = "PROTO:PORT")]
    allow: Vec<String>,
    /// Remove PROTO:PORT from that list. Repeatable. Removing the last one
    /// is refused: an empty list means every port (see --all-ports).
    #[arg(long, value_name = "PROTO:PORT")]
    revoke: Vec<String>,
    /// Empty the list: internet egress to every port.
    #[arg(long)]
    all_ports: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExposeArgs {
    /// Sandbox name.
    name: String,
    /// Port inside the sandbox, or a range FIRST-LAST (at most 1024 ports).
    #[arg(long, value_name = "GUEST_PORT")]
    port: String,
    /// Port on the host, or a range as long as --port. Default: --port.
    #[arg(long, value_name = "P")]
    host_port: Option<String>,
    /// Transport protocol.
    #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp"])]
    proto: String,
    /// Expose on this host address only (default: every IPv4 and IPv6
    /// address of the host except loopback).
    #[arg(long, value_name = "ADDR")]
    host_ip: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct UnexposeArgs {
    /// Sandbox name.
    name: String,
    /// Only the exposure of this sandbox port (or range).
    #[arg(long, value_name = "GUEST_PORT")]
    port: Option<String>,
    /// Only the exposure of this host port (or range).
    #[arg(long, value_name = "P")]
    host_port: Option<String>,
    /// Transport protocol.
    #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp"])]
    proto: String,
    /// Only the exposure on this host address.
    #[arg(long, value_name = "ADDR")]
    host_ip: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_kind(s: &str) -> Result<SandboxKind, String> {
    s.parse()
}

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    Ok(palisade::config_file::load(path.map(PathBuf::as_path))?)
}

fn open(cli: &Cli) -> Result<Engine> {
    let config = load_config(cli.config.as_ref())?;
    let (engine, report) = Engine::open(config, &cli.state_dir)?;
    for line in report.lines() {
        eprintln!("palisade: {line}");
    }
    Ok(engine)
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_sandbox(v: &SandboxView) {
    println!("sandbox     {}", v.name);
    println!("tenant      {}", v.tenant);
    println!("kind        {}", v.kind);
    if v.state != "ready" {
        println!("state       {}", v.state);
    }
    if let Some(ns) = &v.netns {
        let how = if ns.created {
            "created by palisade"
        } else {
            "adopted"
        };
        println!(
            "namespace   {} ({how}), interface {}",
            ns.path, ns.interface
        );
    }
    match &v.network {
        Some(n) => {
            let label = if v.kind == "tap" { "tap" } else { "host side" };
            match &n.bridge {
                Some(bridge) => println!("{label:<11} {} on bridge {bridge}", n.host_interface),
                None => println!("{label:<11} {}", n.host_interface),
            }
            println!("mac         {}", n.mac);
            println!(
                "ipv4        {} gateway {} (on-link)",
                n.ipv4, n.ipv4_gateway
            );
            println!("ipv6        {} gateway {}", n.ipv6, n.ipv6_gateway);
        }
        None => match &v.cni {
            Some(c) => {
                println!(
                    "cni         network {}, container {}, interface {}",
                    c.network, c.container_id, c.ifname
                );
                println!("namespace   {}", c.netns);
                println!("host side   {} on bridge {}", c.host_port, c.bridge);
                println!("mac         {}", c.mac);
                let addrs: Vec<String> = c.addresses().map(|a| a.to_string()).collect();
                println!("addresses   {}", addrs.join(", "));
            }
            None => println!("network     disabled"),
        },
    }
    let internet = match (v.internet, v.allow.is_empty()) {
        (false, _) => "no".to_string(),
        (true, true) => "yes".to_string(),
        (true, false) => format!("only {}", v.allow.join(", ")),
    };
    println!("internet    {internet}");
    for (i, e) in v.exposures.iter().enumerate() {
        let label = if i == 0 { "exposed" } else { "" };
        println!("{label:<11} {e}");
    }
}

fn print_rules(rules: &[TenantRuleView]) {
    if rules.is_empty() {
        println!("no tenant rules");
        return;
    }
    println!(
        "{:<6} {:<16} {:<6} {:<5} {:<12} {:<24} CREATED",
        "ID", "TENANT", "ACTION", "PROTO", "PORTS", "CIDR"
    );
    for r in rules {
        let ports = r.ports.map_or("all".to_string(), |p| p.to_string());
        println!(
            "{:<6} {:<16} {:<6} {:<5} {:<12} {:<24} {}",
            r.id,
            r.tenant,
            r.action.to_string(),
            r.proto.to_string(),
            ports,
            r.cidr.to_string(),
            r.created_at
        );
    }
}

fn print_probe_report(r: &ProbeReport) {
    for d in &r.rules.differences {
        println!("{d}");
    }
    for sb in &r.sandboxes {
        println!(
            "sandbox {} (tenant {}, {}, {})",
            sb.name, sb.tenant, sb.kind, sb.method
        );
        if let Some(why) = &sb.not_probed {
            println!("  not probed: {why}");
        }
        for p in &sb.probes {
            let expect = match p.expect {
                Expect::Reach => "reach",
                Expect::Blocked => "blocked",
            };
            println!(
                "  {:<4} {:<34} {:<26} expect {:<7} {:<11} {}",
                if p.matched { "ok" } else { "FAIL" },
                p.target,
                format!("{} {}", p.destination, p.transport),
                expect,
                p.observed,
                p.evidence
            );
        }
    }
    println!(
        "rules: {}; probes: {} sent, {} matched, {} did not; {} sandboxes not probed",
        if r.rules.ok() {
            "kernel matches the store".to_string()
        } else {
            format!("{} differences", r.rules.differences.len())
        },
        r.probes,
        r.matched,
        r.probes - r.matched,
        r.unprobed
    );
}

fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Demo(args) => return palisade::demo::run(args),
        Command::Serve => return admin::serve(load_config(cli.config.as_ref())?, &cli.state_dir),
        Command::User(cmd) => {
            return admin::user(&load_config(cli.config.as_ref())?, &cli.state_dir, cmd)
        }
        Command::Audit(cmd) => return admin::audit(&cli.state_dir, cmd),
        Command::Compliance(cmd) => {
            return admin::compliance(load_config(cli.config.as_ref())?, &cli.state_dir, cmd)
        }
        Command::Init => {
            let config = load_config(cli.config.as_ref())?;
            let (_engine, report) = Engine::open_init(config, &cli.state_dir)?;
            for line in report.lines() {
                println!("{line}");
            }
            println!("palisade is initialised in this network namespace");
        }
        Command::Sandbox(SandboxCommand::Create(args)) => {
            let mut engine = open(&cli)?;
            let view = engine.create(&CreateRequest {
                name: args.name.clone(),
                tenant: args.tenant.clone(),
                kind: args.kind,
                internet: args.internet,
                allow: args.allow.clone(),
            })?;
            if args.json {
                print_json(&view)?;
            } else {
                print_sandbox(&view);
            }
        }
        Command::Sandbox(SandboxCommand::Update(args)) => {
            let mut engine = open(&cli)?;
            let internet = match (args.internet, args.no_internet) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let outcome = engine.update(
                &args.name,
                &UpdateRequest {
                    internet,
                    allow: args.allow.clone(),
                    revoke: args.revoke.clone(),
                    all_ports: args.all_ports,
                },
            )?;
            if args.json {
                print_json(&serde_json::json!({
                    "changed": outcome.changed,
                    "narrowed": outcome.narrowed,
                    "sandbox": outcome.sandbox,
                }))?;
            } else {
                if !outcome.changed {
                    println!(
                        "sandbox {} already has this policy; nothing changed",
                        args.name
                    );
                } else if outcome.narrowed {
                    println!(
                        "policy narrowed: established connections it no longer allows are dropped from their next packet on"
                    );
                }
                print_sandbox(&outcome.sandbox);
            }
        }
        Command::Sandbox(SandboxCommand::Destroy { name, json }) => {
            let mut engine = open(&cli)?;
            let outcome = engine.destroy(name)?;
            match (outcome, json) {
                (DestroyOutcome::Destroyed(v), true) => {
                    print_json(&serde_json::json!({"destroyed": true, "sandbox": v}))?
                }
                (DestroyOutcome::NotFound, true) => {
                    print_json(&serde_json::json!({"destroyed": false, "name": name}))?
                }
                (DestroyOutcome::Destroyed(_), false) => println!("destroyed sandbox {name}"),
                (DestroyOutcome::NotFound, false) => {
                    println!("no sandbox named {name}; nothing to do")
                }
            }
        }
        Command::Sandbox(SandboxCommand::List { tenant, json }) => {
            let engine = open(&cli)?;
            let views = engine.sandbox_views(tenant.as_deref())?;
            if *json {
                print_json(&views)?;
            } else if views.is_empty() {
                println!("no sandboxes");
            } else {
                println!(
                    "{:<24} {:<16} {:<6} {:<16} {:<22} INTERNET",
                    "NAME", "TENANT", "KIND", "IPV4", "IPV6"
                );
                for v in views {
                    let first = |addrs: Vec<String>| addrs.into_iter().next();
                    let (v4, v6) = match (&v.network, &v.cni) {
                        (Some(n), _) => (n.ipv4.clone(), n.ipv6.clone()),
                        (None, Some(c)) => (
                            first(c.ipv4.iter().map(|a| a.to_string()).collect())
                                .unwrap_or("-".into()),
                            first(c.ipv6.iter().map(|a| a.to_string()).collect())
                                .unwrap_or("-".into()),
                        ),
                        (None, None) => ("-".into(), "-".into()),
                    };
                    let internet = match (v.internet, v.allow.is_empty()) {
                        (false, _) => "no".to_string(),
                        (true, true) => "yes".to_string(),
                        (true, false) => v.allow.join(","),
                    };
                    println!(
                        "{:<24} {:<16} {:<6} {:<16} {:<22} {internet}",
                        v.name, v.tenant, v.kind, v4, v6
                    );
                }
            }
        }
        Command::Sandbox(SandboxCommand::Show { name, json }) => {
            let engine = open(&cli)?;
            let view = engine.sandbox_view(name)?;
            if *json {
                print_json(&view)?;
            } else {
                print_sandbox(&view);
            }
        }
        Command::Expose(args) => {
            let mut engine = open(&cli)?;
            let (view, exposure) = engine.expose(&ExposeRequest {
                sandbox: args.name.clone(),
                port: Some(args.port.clone()),
                host_port: args.host_port.clone(),
                proto: args.proto.clone(),
                host_ip: args.host_ip.clone(),
            })?;
            if args.json {
                print_json(&serde_json::json!({"exposed": exposure, "sandbox": view}))?;
            } else {
                println!("exposed {exposure} of sandbox {}", args.name);
            }
        }
        Command::Unexpose(args) => {
            let mut engine = open(&cli)?;
            let removed = engine.unexpose(&ExposeRequest {
                sandbox: args.name.clone(),
                port: args.port.clone(),
                host_port: args.host_port.clone(),
                proto: args.proto.clone(),
                host_ip: args.host_ip.clone(),
            })?;
            if args.json {
                print_json(&serde_json::json!({"removed": removed}))?;
            } else {
                for e in removed {
                    println!("removed exposure {e} of sandbox {}", args.name);
                }
            }
        }
        Command::Rule(RuleCommand::Add(args)) => {
            let action = if args.allow {
                RuleAction::Allow
            } else {
                RuleAction::Deny
            };
            let proto = args.proto.parse().map_err(anyhow::Error::msg)?;
            let rule = TenantRule::parse(action, proto, args.port.as_deref(), &args.cidr)?;
            // Refused before the engine opens: a bad rule touches nothing.
            rule.validate(&load_config(cli.config.as_ref())?)?;
            let mut engine = open(&cli)?;
            let view = engine.add_tenant_rule(&args.tenant, rule)?;
            if args.json {
                print_json(&view)?;
            } else {
                println!(
                    "added rule {} of tenant {}: {}",
                    view.id,
                    view.tenant,
                    view.rule()
                );
            }
        }
        Command::Rule(RuleCommand::List { tenant, json }) => {
            let engine = open(&cli)?;
            let rules = engine.tenant_rules(tenant.as_deref())?;
            if *json {
                print_json(&rules)?;
            } else {
                print_rules(&rules);
            }
        }
        Command::Rule(RuleCommand::Remove { tenant, id, json }) => {
            let mut engine = open(&cli)?;
            let view = engine.remove_tenant_rule(tenant, *id)?;
            if *json {
                print_json(&serde_json::json!({"removed": view}))?;
            } else {
                println!(
                    "removed rule {} of tenant {}: {}",
                    view.id,
                    view.tenant,
                    view.rule()
                );
            }
        }
        Command::Ruleset => {
            let config = load_config(cli.config.as_ref())?;
            let ruleset = palisade::engine::stored_ruleset(&config, &cli.state_dir)?;
            print!("{}", ruleset.replace_script());
        }
        Command::Reap => {
            let mut engine = open(&cli)?;
            let waiting = engine.retired_links_waiting()?;
            if engine.reap_retired_links()? {
                println!("deleted the retired interfaces of {waiting} destroyed sandbox(es)");
            } else {
                println!("no retired interfaces: nothing to do");
            }
        }
        Command::Status { json } => {
            let mut engine = open(&cli)?;
            let s = engine.status()?;
            if *json {
                print_json(&s)?;
            } else {
                println!("mode             {}", s.mode);
                for t in &s.tables {
                    let state = match (t.present, t.expected) {
                        (true, _) => format!("present, {} rules, {} elements", t.rules, t.elements),
                        (false, true) => "MISSING".to_string(),
                        (false, false) => "absent (not used in this mode)".to_string(),
                    };
                    println!("table {:<16} {state}", t.table);
                }
                println!("sandboxes        {}", s.sandboxes);
                for (tenant, n) in &s.sandboxes_per_tenant {
                    println!("  tenant {tenant:<12} {n}");
                }
                let drift = if s.drift {
                    format!("YES ({} differences; run palisade verify)", s.differences)
                } else {
                    "no".to_string()
                };
                println!("drift            {drift}");
                println!(
                    "retired          {} interface(s) waiting to be reaped",
                    s.retired_interfaces
                );
                println!("kernel features:");
                for f in &s.features {
                    println!(
                        "  {:<20} {:<4} {}",
                        f.name,
                        if f.available { "yes" } else { "no" },
                        f.detail
                    );
                }
            }
        }
        Command::Verify {
            name,
            probe: true,
            timeout_ms,
            internet_target,
            json,
        } => {
            if *timeout_ms == 0 {
                anyhow::bail!("--timeout-ms must be at least 1");
            }
            let mut engine = open(&cli)?;
            let opts = ProbeOptions {
                timeout: std::time::Duration::from_millis(*timeout_ms),
                internet_targets: if internet_target.is_empty() {
                    DEFAULT_INTERNET_TARGETS.to_vec()
                } else {
                    internet_target.clone()
                },
            };
            let report = engine.probe(name.as_deref(), &opts)?;
            if *json {
                print_json(&report)?;
            } else {
                print_probe_report(&report);
            }
            if !report.ok() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Verify { name, json, .. } => {
            let mut engine = open(&cli)?;
            let report = engine.verify(name.as_deref())?;
            if *json {
                print_json(&report)?;
            } else {
                for d in &report.differences {
                    println!("{d}");
                }
                let scope = name
                    .as_deref()
                    .map(|n| format!("sandbox {n}"))
                    .unwrap_or("all sandboxes".into());
                println!(
                    "verified {scope}: {} sandboxes, {} rules, {} elements: {}",
                    report.sandboxes_checked,
                    report.rules_checked,
                    report.elements_checked,
                    if report.ok() {
                        "kernel matches the store".to_string()
                    } else {
                        format!("{} differences", report.differences.len())
                    }
                );
            }
            if !report.ok() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // Run by a container runtime as a CNI plugin: the protocol is the
    // environment and stdin, not arguments.
    if palisade::cni::invoked_as_plugin() {
        return palisade::cni::run();
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("palisade: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
