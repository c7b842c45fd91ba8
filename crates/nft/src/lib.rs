//! nf_tables kernel I/O for palisade.
//!
//! Two paths, matching how often things change:
//! - whole tables (init, reconcile, verify) go through the `nft` binary:
//!   [`apply_script`], [`list_table_json`], [`canonical_listing`];
//! - per-sandbox set elements go over a persistent netlink socket,
//!   [`NftSocket`], one atomic batch per change, without spawning anything.
//!
//! The netlink encoding is written by hand; nothing GPL is linked.

mod conntrack;
mod counters;
mod elements;
mod error;
mod netlink;
mod netns;
mod script;
mod socket;
mod tables;

pub use counters::{RuleCounter, Verdict};
pub use elements::ElementBytes;
pub use error::{NftError, SetOp};
pub use netns::with_throwaway_netns;
pub use script::{apply_script, canonical_listing, list_table_json, nft_available};
pub use socket::NftSocket;
