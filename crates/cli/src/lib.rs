//! palisade: network isolation for untrusted sandboxes.
//!
//! The library holds the engine (requests to store rows, compiled elements
//! and kernel plumbing), the CNI plugin front end and the demo; the
//! `palisade` binary is a thin CLI over it, and the CNI plugin when a
//! runtime runs it with `CNI_COMMAND` set.

#![recursion_limit = "256"]

pub mod cni;
pub mod config_file;
pub mod daemon;
pub mod demo;
pub mod engine;
