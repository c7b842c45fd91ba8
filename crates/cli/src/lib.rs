//! palisade: network isolation for untrusted sandboxes.
//!
//! The library holds the engine (requests to store rows, compiled elements
//! and kernel plumbing) and the demo; the `palisade` binary is a thin CLI
//! over it.

pub mod demo;
pub mod engine;
