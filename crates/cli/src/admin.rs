//! The host-side commands of the control plane: `serve`, `user`, `audit`
//! and `compliance`. They work on the state directory directly (as root on
//! the host), so the first admin can be made before anyone can log in.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use palisade::daemon::evidence::{collect, Reachability};
use palisade::daemon::{add_user, open_records, Role, UserView};
use palisade::engine::Engine;
use palisade_compliance::{evaluate, render_html, render_markdown, Framework, Status};
use palisade_core::config::Config;
use palisade_core::server_config::SecurityPolicy;
use palisade_store::{Accounts, AuditFilter, NewAuditRecord, Outcome};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from standard input (first line),
    /// or asked for twice when standard input is a terminal; it must meet
    /// the security policy. There is no default account: make the first
    /// admin with this command.
    Add {
        /// User name: 1-64 characters of a-z, 0-9, '.', '_' and '-'.
        name: String,
        /// admin (everything, users), operator (sandboxes, exposures,
        /// rules, verify) or viewer (read only).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Scope the user to one tenant: it sees and touches only that
        /// tenant's objects.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user; its tokens stop working at once.
    Remove { name: String },
    /// Lift the lockout of an account name after failed logins.
    Unlock { name: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

#[derive(Args, Clone, Default)]
pub struct AuditFilterArgs {
    /// Records at or after this time (RFC 3339, or a date).
    #[arg(long)]
    since: Option<String>,
    /// Records before this time.
    #[arg(long)]
    until: Option<String>,
    /// Only this action (e.g. sandbox.create, auth.login).
    #[arg(long)]
    action: Option<String>,
    /// Only this actor (a user name).
    #[arg(long)]
    actor: Option<String>,
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Only this outcome: success, failure or denied.
    #[arg(long, value_parser = ["success", "failure", "denied"])]
    outcome: Option<String>,
}

impl AuditFilterArgs {
    fn filter(&self, limit: usize) -> AuditFilter {
        AuditFilter {
            since: self.since.clone(),
            until: self.until.clone(),
            action: self.action.clone(),
            actor: self.actor.clone(),
            tenant: self.tenant.clone(),
            outcome: self.outcome.as_deref().map(|o| match o {
                "success" => Outcome::Success,
                "failure" => Outcome::Failure,
                _ => Outcome::Denied,
            }),
            after_seq: None,
            limit,
        }
    }
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the audit log: every edited, inserted or
    /// deleted record is reported with where it is. Exit status 0 only when
    /// the chain is intact.
    Verify {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print matching records as JSON lines (all of them, oldest first).
    Export {
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum ComplianceCommand {
    /// Build a compliance report from live evidence (kernel rules read back,
    /// the audit chain checked, users and policy). Exit status 0 only when
    /// no control fails.
    Report {
        /// soc2, pci-dss-4.0, nist-800-53 or iso27001-2022.
        #[arg(long)]
        framework: String,
        /// json, markdown or html.
        #[arg(long, default_value = "markdown", value_parser = ["json", "markdown", "html"])]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Who runs a host command, for the audit log.
fn local_actor() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    format!("local:uid={uid}")
}

fn record(
    state_dir: &Path,
    action: &str,
    target: String,
    tenant: Option<String>,
    outcome: Outcome,
    details: serde_json::Value,
) -> Result<()> {
    let (_, mut audit) = open_records(state_dir)?;
    audit
        .append(&NewAuditRecord {
            actor: local_actor(),
            source: "cli".into(),
            action: action.into(),
            target,
            tenant,
            outcome,
            details,
        })
        .context("writing the audit record")?;
    Ok(())
}

/// The security policy in force: the stored one, else the configuration's.
fn policy(accounts: &Accounts, config: &Config) -> Result<SecurityPolicy> {
    Ok(match accounts.setting("security_policy")? {
        Some(json) => serde_json::from_str(&json).context("the stored security policy")?,
        None => config.server.security.clone(),
    })
}

fn read_password(name: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))?;
        let second = rpassword::prompt_password("again: ")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        if line.is_empty() {
            bail!("no password on standard input");
        }
        Ok(line)
    }
}

pub fn user(config: &Config, state_dir: &Path, cmd: &UserCommand) -> Result<ExitCode> {
    let (mut accounts, _) = open_records(state_dir)?;
    match cmd {
        UserCommand::Add { name, role, tenant } => {
            let password = read_password(name)?;
            let policy = policy(&accounts, config)?;
            let result = add_user(
                &mut accounts,
                &policy,
                name,
                &password,
                *role,
                tenant.as_deref(),
            );
            let outcome = if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            record(
                state_dir,
                "user.add",
                format!("user {name}"),
                tenant.clone(),
                outcome,
                serde_json::json!({ "role": role }),
            )?;
            let user = result.map_err(|e| anyhow::anyhow!(e.message))?;
            println!(
                "added user {} (role {}{})",
                user.name,
                user.role,
                user.tenant
                    .map(|t| format!(", tenant {t}"))
                    .unwrap_or_default()
            );
        }
        UserCommand::List { json } => {
            let users = accounts.users()?;
            if *json {
                let list: Vec<_> = users.iter().map(|u| UserView::new(u, None)).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if users.is_empty() {
                println!("no users");
            } else {
                println!("{:<24} {:<9} {:<16} TOTP", "NAME", "ROLE", "TENANT");
                for u in users {
                    println!(
                        "{:<24} {:<9} {:<16} {}",
                        u.name,
                        u.role,
                        u.tenant.as_deref().unwrap_or("-"),
                        if u.totp_secret.is_some() { "yes" } else { "no" }
                    );
                }
            }
        }
        UserCommand::Remove { name } => {
            let removed = accounts.delete_user(name)?;
            record(
                state_dir,
                "user.delete",
                format!("user {name}"),
                None,
                if removed {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                serde_json::json!({}),
            )?;
            if !removed {
                bail!("no user named {name}");
            }
            println!("removed user {name}");
        }
        UserCommand::Unlock { name } => {
            accounts.unlock(name)?;
            record(
                state_dir,
                "user.update",
                format!("user {name}"),
                None,
                Outcome::Success,
                serde_json::json!({"unlock": true}),
            )?;
            println!("unlocked {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_out(output: Option<&PathBuf>, bytes: &[u8]) -> Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            std::io::stdout().write_all(bytes)?;
            Ok(())
        }
    }
}

pub fn audit(state_dir: &Path, cmd: &AuditCommand) -> Result<ExitCode> {
    let (_, log) = open_records(state_dir)?;
    match cmd {
        AuditCommand::Verify { json } => {
            let report = log.verify()?;
            drop(log);
            record(
                state_dir,
                "audit.verify",
                "audit chain".into(),
                None,
                if report.intact {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                serde_json::json!({ "intact": report.intact, "records_checked": report.records_checked }),
            )?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if report.intact {
                println!(
                    "audit chain intact: {} record(s) checked{}",
                    report.records_checked,
                    report
                        .checkpoint
                        .as_ref()
                        .map(|c| format!(
                            ", after a checkpoint at record {} ({} pruned)",
                            c.last_pruned_seq, c.pruned_count
                        ))
                        .unwrap_or_default()
                );
            } else {
                println!("audit chain BROKEN:");
                for p in &report.problems {
                    println!("  record {}: {}", p.seq, p.detail);
                }
                if report.problems_omitted > 0 {
                    println!("  ... and {} more", report.problems_omitted);
                }
            }
            Ok(if report.intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Export { filter, output } => {
            let mut out = Vec::new();
            let n = log.export_jsonl(&filter.filter(0), &mut out)?;
            write_out(output.as_ref(), &out)?;
            if output.is_some() {
                eprintln!("exported {n} record(s)");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn compliance(config: Config, state_dir: &Path, cmd: &ComplianceCommand) -> Result<ExitCode> {
    let ComplianceCommand::Report {
        framework,
        format,
        output,
    } = cmd;
    let framework: Framework = framework.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let reach = Reachability::from_config(&config);
    let (mut engine, _) = Engine::open(config.clone(), state_dir)?;
    let (accounts, log) = open_records(state_dir)?;
    let policy = policy(&accounts, &config)?;
    let users = accounts.users()?;
    let evidence = collect(&mut engine, &users, &log, &policy, &reach);
    drop((engine, log));
    let report = evaluate(framework, &evidence);
    record(
        state_dir,
        "compliance.report",
        "compliance report".into(),
        None,
        if report.overall == Status::Fail {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        serde_json::json!({ "framework": framework.to_string(), "failed": report.summary.fail }),
    )?;
    let text = match format.as_str() {
        "json" => serde_json::to_string_pretty(&report)? + "\n",
        "html" => render_html(&report),
        _ => render_markdown(&report),
    };
    write_out(output.as_ref(), text.as_bytes())?;
    Ok(if report.overall == Status::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn serve(config: Config, state_dir: &Path) -> Result<ExitCode> {
    palisade::daemon::init_logging(config.server.log_format);
    palisade::daemon::serve(config, state_dir)?;
    Ok(ExitCode::SUCCESS)
}
