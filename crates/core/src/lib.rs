//! The pure core of palisade: configuration, names, the model, IPAM and the
//! compilation of policy to an nftables ruleset. Nothing here does I/O, so all
//! of it is tested without root.

pub mod bridge_shard;
pub mod compile;
pub mod config;
pub mod element;
pub mod exposure;
pub mod ipam;
pub mod model;
pub mod names;
pub mod policy;
pub mod server_config;
pub mod tenant_rule;
