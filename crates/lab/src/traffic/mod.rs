//! Real packets: listeners that record arrivals, probes that report what
//! happened to a connection attempt, and forged packets for attack tests.
//!
//! Everything takes the namespace to act in as a path (`/run/netns/NAME`,
//! e.g. [`crate::Lab::path`]); sockets are opened on a helper thread inside
//! that namespace and stay there.

mod capture;
mod listener;
mod packet;
mod probe;
mod spoof;

pub use capture::{Capture, CapturedFrame};
pub use listener::{Arrival, Listener, ListenerSet, L4};
pub use packet::{
    build_arp_reply, build_arp_request, build_icmpv6_frame, build_neighbor_advert, build_udp_frame,
    build_udp_packet, internet_checksum, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6,
};
pub use probe::{ping, tcp_connect, udp_exchange, ProbeOutcome};
pub use spoof::{link_mac, send_frame, send_udp_spoofed};
