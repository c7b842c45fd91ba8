//! Whole-table operations through the `nft` binary.
//!
//! Creating, replacing and listing whole tables is rare (init, reconcile,
//! verify) and `nft` already knows how to compile a ruleset text into one
//! transaction and how to print what the kernel holds, so these go through
//! the binary (run as a separate process: nothing GPL is linked).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use palisade_core::element::{Family, TABLE};

use crate::error::NftError;
use crate::netns::with_throwaway_netns;

/// Locates `nft`: on `PATH`, else in the sbin directories that a non-root
/// `PATH` often lacks.
fn nft_program() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("nft");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    for dir in ["/usr/sbin", "/sbin", "/usr/local/sbin"] {
        let candidate = PathBuf::from(dir).join("nft");
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from("nft")
}

/// Runs `nft` with `args`, feeding `stdin` if given.
fn run_nft(args: &[&str], stdin: Option<&str>) -> Result<Output, NftError> {
    let program = nft_program();
    let spawn_err = |source| NftError::Spawn {
        program: program.display().to_string(),
        source,
    };
    let mut child = Command::new(&program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(text) = stdin {
        // nft reads all of its input before it prints anything, so writing
        // first and collecting output afterwards cannot deadlock.
        let mut pipe = child.stdin.take().expect("stdin was piped");
        let written = pipe.write_all(text.as_bytes());
        drop(pipe);
        if let Err(e) = written {
            let _ = child.wait();
            return Err(spawn_err(e));
        }
    }
    child.wait_with_output().map_err(spawn_err)
}

fn failure(args: &[&str], out: &Output) -> NftError {
    NftError::Nft {
        args: args.join(" "),
        status: match out.status.code() {
            Some(code) => format!("exit status {code}"),
            None => out.status.to_string(),
        },
        stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
    }
}

/// Whether the `nft` binary can be run.
pub fn nft_available() -> bool {
    run_nft(&["--version"], None)
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// Applies an nft script (`nft -f -`) in the calling thread's network
/// namespace. nft applies a whole file as one transaction: on error nothing
/// changed, and the error carries nft's stderr.
pub fn apply_script(script: &str) -> Result<(), NftError> {
    let args = ["-f", "-"];
    let out = run_nft(&args, Some(script))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failure(&args, &out))
    }
}

/// `nft -j list table <family> palisade` as JSON, or `None` when that
/// table does not exist.
pub fn list_table_json(family: Family) -> Result<Option<serde_json::Value>, NftError> {
    let args = ["-j", "list", "table", family.keyword(), TABLE];
    let out = run_nft(&args, None)?;
    if !out.status.success() {
        // nft 1.0.x reports a missing table as the kernel's ENOENT text,
        // "Error: No such file or directory", with exit status 1.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(1) && stderr.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(failure(&args, &out));
    }
    serde_json::from_slice(&out.stdout)
        .map(Some)
        .map_err(|source| NftError::Json {
            args: args.join(" "),
            source,
        })
}

/// Applies `script` in a fresh throwaway network namespace and returns
/// what the kernel lists for each of `families` there: the canonical form
/// of a compiled ruleset, to compare with the live listing.
pub fn canonical_listing(
    script: &str,
    families: &[Family],
) -> Result<Vec<(Family, Option<serde_json::Value>)>, NftError> {
    with_throwaway_netns(|| {
        apply_script(script)?;
        families
            .iter()
            .map(|&family| list_table_json(family).map(|json| (family, json)))
            .collect()
    })?
}
