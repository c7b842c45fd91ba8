//! palisade as a CNI plugin (spec 1.1.0, and 0.3.0 to 1.0.0).
//!
//! A runtime runs the `palisade` binary with `CNI_COMMAND` in the
//! environment and the network configuration on stdin. palisade is a
//! chained plugin: an earlier plugin (`bridge`) makes the veth, the bridge
//! and the addresses; palisade records the attachment in the same store as
//! the CLI and adds its policy to the same table, failing closed, and passes
//! the previous result through unchanged.

mod error;
mod kernel;
mod request;
mod version;

pub use error::CniError;
pub use request::{Command, Environment, NetConf};
pub use version::SUPPORTED as SUPPORTED_VERSIONS;

use crate::engine::{CniAttachRequest, Engine, DEFAULT_STATE_DIR};
use error::{INCOMPATIBLE_VERSION, INVALID_CONFIG, IO_FAILURE, NOT_AVAILABLE, POLICY_FAILED};
use palisade_core::config::Config;
use palisade_core::model::CniAttachment;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// True when a runtime runs this binary as a CNI plugin: `CNI_COMMAND` is
/// set and there are no command-line arguments.
pub fn invoked_as_plugin() -> bool {
    std::env::var_os("CNI_COMMAND").is_some() && std::env::args_os().len() == 1
}

/// Runs one CNI invocation from the process environment and stdin, prints
/// the result or the error the spec asks for, and returns the exit status.
pub fn run() -> ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    let outcome = match read {
        Err(e) => Err(CniError::new(
            IO_FAILURE,
            "cannot read stdin",
            e.to_string(),
        )),
        Ok(_) => handle(&command, &Environment::from_process(), &stdin),
    };
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(Some(text)) => {
            let _ = writeln!(out, "{text}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            // The version of the request when it could be read.
            let v = serde_json::from_slice::<serde_json::Value>(&stdin)
                .ok()
                .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
                .filter(|v| version::is_supported(v))
                .unwrap_or_else(|| version::LATEST.to_string());
            eprintln!("palisade (CNI {command}): {e}");
            let _ = writeln!(out, "{}", e.to_json(&v));
            ExitCode::from(1)
        }
    }
}

/// One invocation: `Some(stdout)` on success with output, `None` on
/// success without.
pub fn handle(command: &str, env: &Environment, stdin: &[u8]) -> Result<Option<String>, CniError> {
    let command = Command::parse(command)?;
    if command == Command::Version {
        return Ok(Some(version_result(stdin)?));
    }
    let conf = NetConf::parse(stdin)?;
    let need = |min: &str, what: &str| {
        if version::at_least(&conf.cni_version, min) {
            Ok(())
        } else {
            Err(CniError::new(
                INCOMPATIBLE_VERSION,
                format!("{what} needs cniVersion {min} or later"),
                format!("the configuration says {}", conf.cni_version),
            ))
        }
    };
    match command {
        Command::Add => add(env, &conf).map(Some),
        Command::Del => del(env, &conf).map(|()| None),
        Command::Check => {
            need("0.4.0", "CHECK")?;
            check(env, &conf).map(|()| None)
        }
        Command::Status => {
            need("1.1.0", "STATUS")?;
            status(&conf).map(|()| None)
        }
        Command::Gc => {
            need("1.1.0", "GC")?;
            gc(&conf).map(|()| None)
        }
        Command::Version => unreachable!("answered above"),
    }
}

/// `VERSION`: the versions palisade speaks, in the version asked for.
fn version_result(stdin: &[u8]) -> Result<String, CniError> {
    let asked = serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
        .unwrap_or_else(|| version::LATEST.to_string());
    Ok(serde_json::json!({
        "cniVersion": asked,
        "supportedVersions": version::SUPPORTED,
    })
    .to_string())
}

fn config_of(conf: &NetConf) -> Result<Config, CniError> {
    crate::config_file::load(conf.config_file.as_deref()).map_err(|e| {
        CniError::new(
            INVALID_CONFIG,
            "invalid palisade configuration",
            e.to_string(),
        )
    })
}

fn state_dir_of(conf: &NetConf) -> PathBuf {
    conf.state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

fn open_engine(conf: &NetConf) -> Result<Engine, CniError> {
    open_engine_with(conf, config_of(conf)?)
}

fn open_engine_with(conf: &NetConf, config: Config) -> Result<Engine, CniError> {
    let (engine, report) = Engine::open(config, &state_dir_of(conf))?;
    for line in report.lines() {
        eprintln!("palisade: {line}");
    }
    Ok(engine)
}

/// `ADD`: police the interface the previous plugin made.
fn add(env: &Environment, conf: &NetConf) -> Result<String, CniError> {
    let network = conf.network()?;
    let container_id = env.container_id()?;
    let ifname = env.ifname()?;
    let netns = env.netns()?;
    let Some(prev) = &conf.prev_result else {
        return Err(CniError::new(
            INVALID_CONFIG,
            "palisade is a chained plugin",
            "there is no prevResult: list palisade after a plugin that creates the interface, such as bridge",
        ));
    };
    let policy = conf.effective_policy(&env.args()?)?;
    let Some(tenant) = policy.tenant else {
        return Err(CniError::new(
            INVALID_CONFIG,
            "no tenant",
            "set \"tenant\" in palisade's entry of the network configuration, in args.palisade, or PALISADE_TENANT in CNI_ARGS",
        ));
    };
    let found = kernel::discover(netns, ifname, &request::gateways_for(prev, ifname))?;
    let (mut ipv4, mut ipv6) = (Vec::new(), Vec::new());
    for a in request::addresses_for(prev, ifname)? {
        match a {
            IpAddr::V4(v4) => ipv4.push(v4),
            IpAddr::V6(v6) => ipv6.push(v6),
        }
    }
    let req = CniAttachRequest {
        attachment: CniAttachment {
            network: network.to_string(),
            container_id: container_id.to_string(),
            ifname: ifname.to_string(),
            netns: netns.to_string(),
            host_port: found.host_port,
            bridge: found.bridge,
            mac: found.mac,
            ipv4,
            ipv6,
        },
        tenant,
        internet: policy.internet.unwrap_or(false),
        allow: policy.allow.unwrap_or_default(),
        exposures: policy.exposures,
    };
    let mut engine = open_engine(conf)?;
    let view = engine.cni_attach(&req)?;
    eprintln!(
        "palisade: container {container_id} interface {ifname} is sandbox {} (tenant {})",
        view.name, view.tenant
    );
    // The result is the previous one: palisade creates no interface,
    // address or route, only policy.
    let mut result = prev.clone();
    result["cniVersion"] = serde_json::Value::String(conf.cni_version.clone());
    Ok(result.to_string())
}

/// `DEL`: remove the attachment's policy; nothing there is success.
fn del(env: &Environment, conf: &NetConf) -> Result<(), CniError> {
    let container_id = env.container_id()?;
    let ifname = env.ifname()?;
    let state_dir = state_dir_of(conf);
    if !state_dir.join(palisade_store::DB_FILE).exists() {
        return Ok(()); // palisade never recorded anything here
    }
    // DEL must not fail for good over a configuration that broke since the
    // ADD, nor rebuild tables from a guessed one. The record stays; its
    // address is reclaimed when the runtime hands that address out again
    // (see `Engine::cni_attach`), or by GC.
    let config = match config_of(conf) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("palisade: DEL: {e}; the attachment's record stays until its address is reused or GC runs");
            return Ok(());
        }
    };
    let mut engine = open_engine_with(conf, config)?;
    if let Some(view) = engine.cni_detach(container_id, ifname)? {
        eprintln!("palisade: removed sandbox {}", view.name);
    }
    Ok(())
}

/// `CHECK`: the attachment's policy is in the kernel exactly as compiled.
fn check(env: &Environment, conf: &NetConf) -> Result<(), CniError> {
    let container_id = env.container_id()?;
    let ifname = env.ifname()?;
    env.netns()?;
    if conf.prev_result.is_none() {
        return Err(CniError::new(
            INVALID_CONFIG,
            "CHECK needs prevResult",
            "the runtime must pass the result of the ADD as prevResult",
        ));
    }
    let mut engine = open_engine(conf)?;
    let report = engine
        .cni_check(container_id, ifname)
        .map_err(|e| match e {
            crate::engine::EngineError::NotFound(what) => CniError::new(
                POLICY_FAILED,
                "palisade has no policy for this attachment",
                format!("{what} is not recorded: its isolation is missing"),
            ),
            other => other.into(),
        })?;
    if report.ok() {
        return Ok(());
    }
    let lines: Vec<String> = report.differences.iter().map(|d| d.to_string()).collect();
    Err(CniError::new(
        POLICY_FAILED,
        format!(
            "palisade's rules for container {container_id} differ from its policy ({} differences)",
            lines.len()
        ),
        lines.join("; "),
    ))
}

/// `STATUS`: whether an `ADD` could be served now, without changing
/// anything: the configuration loads, the store opens, nf_tables and
/// rtnetlink answer.
fn status(conf: &NetConf) -> Result<(), CniError> {
    let unavailable = |why: String| CniError::new(NOT_AVAILABLE, "palisade cannot serve ADD", why);
    let config = config_of(conf).map_err(|e| unavailable(e.details))?;
    let state_dir = state_dir_of(conf);
    // Only an existing store is opened: the first ADD creates it.
    if state_dir.join(palisade_store::DB_FILE).exists() {
        palisade_store::Store::open(&state_dir)
            .map_err(|e| unavailable(format!("state directory {}: {e}", state_dir.display())))?;
    }
    let mut nft =
        palisade_nft::NftSocket::open().map_err(|e| unavailable(format!("nf_tables: {e}")))?;
    for family in palisade_core::compile::families(&config) {
        nft.table_exists(family)
            .map_err(|e| unavailable(format!("nf_tables ({} family): {e}", family.keyword())))?;
    }
    palisade_link::Rtnl::open().map_err(|e| unavailable(format!("rtnetlink: {e}")))?;
    Ok(())
}

/// `GC`: remove every attachment of this network the runtime no longer
/// knows; carry on past failures and report them all.
fn gc(conf: &NetConf) -> Result<(), CniError> {
    let network = conf.network()?;
    let Some(valid) = &conf.valid_attachments else {
        return Err(CniError::new(
            INVALID_CONFIG,
            "GC needs cni.dev/valid-attachments",
            "the runtime must list the attachments that are still valid",
        ));
    };
    if !state_dir_of(conf).join(palisade_store::DB_FILE).exists() {
        return Ok(());
    }
    let mut engine = open_engine(conf)?;
    let report = engine.cni_gc(network, valid)?;
    for name in &report.removed {
        eprintln!("palisade: GC removed sandbox {name}");
    }
    if report.failed.is_empty() {
        return Ok(());
    }
    Err(CniError::new(
        POLICY_FAILED,
        format!("GC could not remove {} attachment(s)", report.failed.len()),
        report.failed.join("; "),
    ))
}
