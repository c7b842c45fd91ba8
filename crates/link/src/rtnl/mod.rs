//! A small synchronous rtnetlink client.
//!
//! Sandbox setup is a short, strictly ordered list of kernel requests, so a
//! blocking request/ack socket is both the simplest and the fastest model:
//! no runtime, no background task, one `sendto` and usually one `recv` per
//! step. Requests are built with `netlink-packet-route`; replies are walked
//! by hand where the crate does not help (extended-ack TLVs).
//!
//! A netlink socket belongs to the network namespace of the thread that
//! created it, forever. [`Rtnl::open_in`] exploits that: it creates the
//! socket inside a namespace on a helper thread and hands it back, after
//! which every request from any thread acts on that namespace. Two device
//! queries (index by name, link state) go over ioctl on a second socket
//! made alongside, in the same namespace (see `device_ioctl`).

mod bridge_port;
mod device_ioctl;
mod link;
mod neighbour;
mod netns_id;
mod route;

pub use bridge_port::{BridgeEntry, BridgePort};
pub use link::{LinkSummary, VethSpec, BIG_PACKET_SIZE, DEFAULT_PACKET_SIZE};
pub use route::RouteSpec;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{LinkError, Result};
use crate::netns::run_in_netns;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
/// Large enough for any single rtnetlink datagram the kernel sends us
/// (dumps are chunked to at most 32 KiB plus a page).
const RECV_BUF: usize = 64 * 1024;
/// Kernel limit on interface names, excluding the NUL (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// Requests [`Rtnl::request_batch`] sends in one datagram. The kernel
/// answers them all before the socket is read, and drops answers (the
/// read then fails with `ENOBUFS`) once they fill the socket's receive
/// buffer, 208 KiB by default: forwarding-entry lookups overflowed it at
/// 256 to a datagram and fit at 128, so 32 leave a wide margin.
const BATCH: usize = 32;

/// A synchronous `NETLINK_ROUTE` socket bound to one network namespace.
pub struct Rtnl {
    sock: Socket,
    /// For the device ioctls of `device_ioctl`, in the same namespace.
    devices: OwnedFd,
    seq: u32,
    netns: String,
    buf: Vec<u8>,
    /// A veth creation found the kernel cannot pass big packets.
    big_packets_refused: bool,
}

impl std::fmt::Debug for Rtnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtnl")
            .field("fd", &self.sock.as_raw_fd())
            .field("netns", &self.netns)
            .finish()
    }
}

/// What a request is about, for error messages.
struct Ctx<'a> {
    op: &'static str,
    what: &'a str,
}

impl Rtnl {
    /// Open a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self> {
        let netns = std::fs::read_link("/proc/thread-self/ns/net")
            .map(|p| format!("netns {}", p.display()))
            .unwrap_or_else(|_| "the current netns".to_string());
        Self::open_described(netns)
    }

    /// Open a socket inside the namespace at `netns` (e.g. `/run/netns/X`).
    /// The returned socket keeps acting on that namespace from any thread.
    pub fn open_in(netns: &Path) -> Result<Self> {
        let desc = format!("netns {}", netns.display());
        run_in_netns(netns, move || Self::open_described(desc))?
    }

    fn open_described(netns: String) -> Result<Self> {
        let sock_err = |op, e| LinkError::Socket {
            op,
            what: "NETLINK_ROUTE".to_string(),
            netns: netns.clone(),
            source: e,
        };
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| sock_err("socket", e))?;
        sock.bind_auto().map_err(|e| sock_err("bind", e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| sock_err("connect", e))?;
        // Both are best effort: old kernels just give terser errors.
        // EXT_ACK gets us the kernel's human-readable reason; CAP_ACK stops
        // the kernel from echoing our whole request back inside each ack.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let devices = device_ioctl::device_socket().map_err(|e| LinkError::Socket {
            op: "socket",
            what: "device ioctls".to_string(),
            netns: netns.clone(),
            source: e,
        })?;
        Ok(Rtnl {
            sock,
            devices,
            seq: 0,
            netns: netns.clone(),
            buf: Vec::with_capacity(RECV_BUF),
            big_packets_refused: false,
        })
    }

    /// Send one request and collect the replies up to its ack (or, for a
    /// dump, up to NLMSG_DONE). A NACK becomes an error carrying errno and
    /// extended-ack text.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        extra_flags: u16,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut replies = Vec::new();
        self.request_raw(msg, extra_flags, ctx, |socket_err, one| {
            let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(one).map_err(|e| {
                socket_err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            })?;
            if let NetlinkPayload::InnerMessage(inner) = parsed.payload {
                replies.push(inner);
            }
            Ok(())
        })?;
        Ok(replies)
    }

    /// Every object of one kind in this namespace (`op` names it in
    /// errors): a dump of `msg`.
    fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &'static str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let ctx = Ctx { op, what: "(all)" };
        self.request(msg, NLM_F_DUMP, &ctx)
    }

    /// Like [`Rtnl::request`], but hands each reply's payload (after the
    /// netlink header) to `each` as bytes. Dumps of every link are read
    /// this way: the crate's full parse of 10,000 link messages, stats and
    /// per-family blocks included, cost most of `verify` at that scale.
    fn request_raw(
        &mut self,
        msg: RouteNetlinkMessage,
        extra_flags: u16,
        ctx: &Ctx<'_>,
        mut each: impl FnMut(&dyn Fn(io::Error) -> LinkError, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let dump = extra_flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        let seq = self.append_request(msg, extra_flags, &mut out);
        let socket_err = self.socket_err_for(ctx);
        self.sock.send(&out, 0).map_err(&socket_err)?;
        self.receive(&socket_err, |me, datagram| {
            me.walk_datagram(datagram, seq, dump, ctx, &socket_err, &mut each)
        })
    }

    /// Sends `messages` as requests, up to [`BATCH`] in one datagram,
    /// without waiting for each answer in turn, and hands `each` every
    /// request's outcome by its position in `messages`: its reply (netlink
    /// header included), or the errno of its NACK. For thousands of small
    /// lookups, which one round trip each would spend most of their time
    /// on. A request that succeeds without a reply reports nothing.
    fn request_batch(
        &mut self,
        messages: impl IntoIterator<Item = RouteNetlinkMessage>,
        ctx: &Ctx<'_>,
        mut each: impl FnMut(usize, std::result::Result<&[u8], i32>),
    ) -> Result<()> {
        let socket_err = self.socket_err_for(ctx);
        let mut messages = messages.into_iter().enumerate().peekable();
        while messages.peek().is_some() {
            let first = self.seq.wrapping_add(1);
            let mut out = Vec::new();
            let mut positions = Vec::with_capacity(BATCH);
            for (position, msg) in messages.by_ref().take(BATCH) {
                self.append_request(msg, 0, &mut out);
                positions.push(position);
            }
            self.sock.send(&out, 0).map_err(&socket_err)?;
            // Each request ends with its ack or its NACK.
            let mut pending = positions.len();
            self.receive(&socket_err, |_, datagram| {
                for message in messages_of(datagram).map_err(&socket_err)? {
                    let Some(&position) = positions.get(message.seq.wrapping_sub(first) as usize)
                    else {
                        continue; // stale reply to an earlier, abandoned request
                    };
                    if message.kind != NLMSG_ERROR {
                        each(position, Ok(message.bytes));
                        continue;
                    }
                    if message.error_code() != 0 {
                        each(position, Err(-message.error_code()));
                    }
                    pending = pending.saturating_sub(1);
                }
                Ok(pending == 0)
            })?;
        }
        Ok(())
    }

    /// Appends `msg` to `out` as the next request (acked, with
    /// `extra_flags`), aligned for another to follow; returns its sequence
    /// number.
    fn append_request(
        &mut self,
        msg: RouteNetlinkMessage,
        extra_flags: u16,
        out: &mut Vec<u8>,
    ) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | extra_flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let start = out.len();
        out.resize(start + align4(packet.buffer_len()), 0);
        packet.serialize(&mut out[start..start + packet.buffer_len()]);
        self.seq
    }

    fn socket_err_for(&self, ctx: &Ctx<'_>) -> impl Fn(io::Error) -> LinkError {
        let netns = self.netns.clone();
        let op = ctx.op;
        let what = ctx.what.to_string();
        move |e: io::Error| LinkError::Socket {
            op,
            what: what.clone(),
            netns: netns.clone(),
            source: e,
        }
    }

    /// Reads datagrams, each handed to `walk`, until it says the exchange
    /// is over.
    fn receive(
        &mut self,
        socket_err: &dyn Fn(io::Error) -> LinkError,
        mut walk: impl FnMut(&Self, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        let outcome = loop {
            buf.clear();
            let n = loop {
                match self.sock.recv(&mut buf, libc::MSG_TRUNC) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => break Err(socket_err(e)),
            };
            if n > buf.len() {
                break Err(socket_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "netlink reply truncated",
                )));
            }
            match walk(self, &buf) {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
        };
        self.buf = buf;
        outcome
    }

    /// The messages of one datagram: `Ok(true)` once the request is over.
    fn walk_datagram(
        &self,
        datagram: &[u8],
        seq: u32,
        dump: bool,
        ctx: &Ctx<'_>,
        socket_err: &dyn Fn(io::Error) -> LinkError,
        each: &mut impl FnMut(&dyn Fn(io::Error) -> LinkError, &[u8]) -> Result<()>,
    ) -> Result<bool> {
        for message in messages_of(datagram).map_err(socket_err)? {
            if message.seq != seq {
                continue; // stale reply to an earlier, abandoned request
            }
            match message.kind {
                NLMSG_ERROR | NLMSG_DONE => {
                    let code = message.error_code();
                    if code != 0 {
                        let payload = &message.bytes[NLMSG_HDRLEN..];
                        let ext = if message.kind == NLMSG_ERROR {
                            error_ext_ack(payload, message.flags)
                        } else {
                            payload.get(4..).and_then(parse_ext_ack_tlvs)
                        };
                        return Err(self.nack(ctx, -code, ext));
                    }
                    // An ack ends a plain request; DONE ends a dump.
                    if message.kind == NLMSG_DONE || !dump {
                        return Ok(true);
                    }
                }
                _ => each(socket_err, message.bytes)?,
            }
        }
        Ok(false)
    }

    fn nack(&self, ctx: &Ctx<'_>, errno: i32, ext_ack: Option<String>) -> LinkError {
        if errno == libc::EEXIST {
            LinkError::AlreadyExists {
                op: ctx.op,
                what: ctx.what.to_string(),
                netns: self.netns.clone(),
                ext_ack,
            }
        } else {
            LinkError::Netlink {
                op: ctx.op,
                what: ctx.what.to_string(),
                netns: self.netns.clone(),
                errno,
                ext_ack,
            }
        }
    }
}

/// One netlink message of a datagram.
struct Message<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    /// The whole message, netlink header included.
    bytes: &'a [u8],
}

impl Message<'_> {
    /// The code of an `NLMSG_ERROR` or `NLMSG_DONE`: 0 or a negative errno.
    fn error_code(&self) -> i32 {
        self.bytes
            .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
            .map(|b| i32::from_ne_bytes(b.try_into().unwrap_or_default()))
            .unwrap_or(0)
    }
}

/// The messages of one datagram, in order.
fn messages_of(datagram: &[u8]) -> io::Result<Vec<Message<'_>>> {
    let mut messages = Vec::new();
    let mut off = 0;
    while off + NLMSG_HDRLEN <= datagram.len() {
        let raw = &datagram[off..];
        let len = u32::from_ne_bytes(raw[0..4].try_into().unwrap_or_default()) as usize;
        if len < NLMSG_HDRLEN || len > raw.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed netlink header",
            ));
        }
        messages.push(Message {
            kind: u16::from_ne_bytes([raw[4], raw[5]]),
            flags: u16::from_ne_bytes([raw[6], raw[7]]),
            seq: u32::from_ne_bytes(raw[8..12].try_into().unwrap_or_default()),
            bytes: &raw[..len],
        });
        off += align4(len);
    }
    Ok(messages)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Skip the echoed request inside an NLMSG_ERROR payload and decode the
/// extended-ack TLVs that follow it.
fn error_ext_ack(payload: &[u8], flags: u16) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = payload.get(4..)?;
    let skip = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        align4(u32::from_ne_bytes(echoed.get(0..4)?.try_into().ok()?) as usize)
    };
    parse_ext_ack_tlvs(echoed.get(skip..)?)
}

/// Find `NLMSGERR_ATTR_MSG` among netlink attributes.
fn parse_ext_ack_tlvs(tlvs: &[u8]) -> Option<String> {
    let value = attributes(tlvs)
        .find(|(kind, _)| *kind == NLMSGERR_ATTR_MSG)?
        .1;
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    let text = String::from_utf8_lossy(&value[..end]).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The netlink attributes in `bytes` as (type without flag bits, value);
/// stops at the first malformed one.
pub(crate) fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3fff;
        if len < 4 || len > bytes.len() {
            return None;
        }
        let value = &bytes[4..len];
        bytes = bytes.get(align4(len)..).unwrap_or(&[]);
        Some((kind, value))
    })
}

/// Reject names the kernel would refuse, with a clearer message than EINVAL.
pub(crate) fn validate_ifname(op: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("interface name is empty")
    } else if name.len() > MAX_IFNAME {
        Some("interface name is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("interface name may not be . or ..")
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        Some("interface name may not contain '/', ':', NUL or whitespace")
    } else {
        None
    };
    match reason {
        Some(r) => Err(LinkError::InvalidArgument {
            op,
            reason: format!("{name:?}: {r}"),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_rules() {
        assert!(validate_ifname("t", "eth0").is_ok());
        assert!(validate_ifname("t", "abcdefghijklmno").is_ok());
        for bad in ["", "abcdefghijklmnop", "a/b", "a b", "a:b", ".", ".."] {
            assert!(validate_ifname("t", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ext_ack_tlv_parsing() {
        // NLMSGERR_ATTR_MSG "boom\0" padded to 4, then an OFFS attribute.
        let mut tlvs = Vec::new();
        tlvs.extend_from_slice(&9u16.to_ne_bytes());
        tlvs.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        tlvs.extend_from_slice(b"boom\0\0\0\0");
        assert_eq!(parse_ext_ack_tlvs(&tlvs).as_deref(), Some("boom"));
        assert_eq!(parse_ext_ack_tlvs(&[1, 0]), None);
    }
}
