//! nf_tables kernel I/O for palisade.
//!
//! Two paths, matching how often things change:
//! - whole tables (init, reconcile) go through the `nft` binary:
//!   [`apply_script`] ([`list_table_json`] and [`canonical_listing`] list
//!   them as nft prints them);
//! - per-sandbox set elements go over a persistent netlink socket,
//!   [`NftSocket`], one atomic batch per change, without spawning anything;
//! - reading back for `verify` is netlink too ([`NftSocket::snapshot`],
//!   [`NftSocket::list_set_elements`], [`canonical_snapshot`]): no JSON of
//!   every element.
//!
//! The netlink encoding is written by hand; nothing GPL is linked.

mod conntrack;
mod counters;
mod elements;
mod error;
mod netlink;
mod netns;
mod script;
mod snapshot;
mod socket;
mod tables;

pub use counters::{RuleCounter, Verdict};
pub use elements::{ElementBytes, SetElement};
pub use error::{NftError, SetOp};
pub use netns::with_throwaway_netns;
pub use script::{apply_script, canonical_listing, list_table_json, nft_available};
pub use snapshot::{canonical_snapshot, SetInfo, TableSnapshot};
pub use socket::NftSocket;
