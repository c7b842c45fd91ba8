//! Probes: try to reach a destination from inside a namespace and report
//! what happened.
//!
//! The outcome distinguishes *how* a packet was stopped, because that is
//! what tells a policy `reject` (Refused/Unreachable: the sender learns at
//! once) from a `drop` (TimedOut). Only setup failures (entering the
//! namespace, opening a socket) are errors; everything the network does
//! to the probe is an outcome.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use palisade_link::run_in_netns;

use super::listener::REPLY;
use super::packet::echo_request;
use crate::error::{Context, LabError, Result};
use crate::sys;

/// What happened to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// TCP: the handshake completed (the listener's reply was then read,
    /// if it came within the timeout).
    Connected,
    /// UDP or ICMP echo: an answer came back.
    Replied,
    /// The destination actively refused: TCP RST or ICMP port unreachable
    /// (also what an nftables `reject with tcp reset` looks like).
    Refused,
    /// Nothing came back within the timeout: the packet (or its answer)
    /// was dropped somewhere.
    TimedOut,
    /// Any other network failure, described: no route, ICMP
    /// host/net/admin unreachable, `EPERM` from a local firewall drop...
    Unreachable(String),
}

impl ProbeOutcome {
    /// True for [`ProbeOutcome::Connected`] and [`ProbeOutcome::Replied`]:
    /// the destination was reached and answered.
    pub fn reached(&self) -> bool {
        matches!(self, ProbeOutcome::Connected | ProbeOutcome::Replied)
    }
}

fn check_timeout(timeout: Duration) -> Result<()> {
    if timeout.is_zero() {
        return Err(LabError::Invalid("probe timeout must not be zero".into()));
    }
    Ok(())
}

/// Classify a socket error seen while probing.
fn outcome_of(e: &io::Error) -> ProbeOutcome {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ProbeOutcome::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ProbeOutcome::TimedOut,
        _ => ProbeOutcome::Unreachable(e.to_string()),
    }
}

/// Open a TCP connection to `dst` from inside the namespace at `netns`.
/// On success, reads the listener's reply (up to `timeout`) and closes.
pub fn tcp_connect(netns: &Path, dst: SocketAddr, timeout: Duration) -> Result<ProbeOutcome> {
    check_timeout(timeout)?;
    run_in_netns(netns, move || {
        match TcpStream::connect_timeout(&dst, timeout) {
            Ok(mut stream) => {
                let _ = stream.set_read_timeout(Some(timeout));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 64];
                while buf.len() < REPLY.len() {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                ProbeOutcome::Connected
            }
            Err(e) => outcome_of(&e),
        }
    })
    .ctx(|| format!("TCP probe to {dst} from {}", netns.display()))
}

/// Send one UDP datagram to `dst` from inside the namespace at `netns` and
/// wait up to `timeout` for an answer from `dst`.
///
/// The socket is connected, so an ICMP port unreachable comes back as
/// [`ProbeOutcome::Refused`] and other ICMP errors as
/// [`ProbeOutcome::Unreachable`].
pub fn udp_exchange(netns: &Path, dst: SocketAddr, timeout: Duration) -> Result<ProbeOutcome> {
    check_timeout(timeout)?;
    let context = || format!("UDP probe to {dst} from {}", netns.display());
    run_in_netns(netns, move || -> io::Result<ProbeOutcome> {
        let any: SocketAddr = if dst.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(any)?;
        if let Err(e) = sock.connect(dst) {
            return Ok(outcome_of(&e));
        }
        if let Err(e) = sock.send(b"palisade-lab probe\n") {
            return Ok(outcome_of(&e));
        }
        sock.set_read_timeout(Some(timeout))?;
        let mut buf = [0u8; 512];
        Ok(match sock.recv(&mut buf) {
            Ok(_) => ProbeOutcome::Replied,
            Err(e) => outcome_of(&e),
        })
    })
    .ctx(context)?
    .ctx(context)
}

static PING_IDENT: AtomicU16 = AtomicU16::new(0);

/// Send one ICMP/ICMPv6 echo request to `dst` from inside the namespace at
/// `netns` over a raw socket (needs root) and wait up to `timeout` for the
/// echo reply carrying our identifier.
///
/// An ICMP error about our request (destination unreachable, time
/// exceeded) gives [`ProbeOutcome::Unreachable`] naming type, code and
/// sender.
pub fn ping(netns: &Path, dst: IpAddr, timeout: Duration) -> Result<ProbeOutcome> {
    check_timeout(timeout)?;
    // Distinct per process and per call, so concurrent pings in one
    // namespace never take each other's replies.
    let ident = (std::process::id() as u16)
        .wrapping_mul(31)
        .wrapping_add(PING_IDENT.fetch_add(1, Ordering::Relaxed));
    let context = || format!("ping {dst} from {}", netns.display());
    run_in_netns(netns, move || ping_here(dst, timeout, ident))
        .ctx(context)?
        .ctx(context)
}

fn ping_here(dst: IpAddr, timeout: Duration, ident: u16) -> io::Result<ProbeOutcome> {
    const SEQ: u16 = 1;
    let v6 = dst.is_ipv6();
    let fd = if v6 {
        sys::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6)?
    } else {
        sys::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)?
    };
    let request = echo_request(v6, ident, SEQ, b"palisade-lab ping");
    if let Err(e) = sys::send_to(fd.as_fd(), &request, &SocketAddr::new(dst, 0)) {
        return Ok(ProbeOutcome::Unreachable(format!("send: {e}")));
    }
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !sys::poll_readable(fd.as_fd(), left)? {
            if Instant::now() >= deadline {
                return Ok(ProbeOutcome::TimedOut);
            }
            continue;
        }
        let (n, from) = match sys::recv_from(fd.as_fd(), &mut buf) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let Some(from) = from else { continue };
        let verdict = if v6 {
            classify_icmp6(&buf[..n], ident, SEQ)
        } else {
            classify_icmp4(&buf[..n], ident, SEQ)
        };
        match verdict {
            Some(Icmp::EchoReply) if from == dst => return Ok(ProbeOutcome::Replied),
            Some(Icmp::Error(ty, code)) => {
                return Ok(ProbeOutcome::Unreachable(format!(
                    "ICMP{} type {ty} code {code} from {from}",
                    if v6 { "v6" } else { "" }
                )))
            }
            _ => {}
        }
    }
}

/// What a received ICMP message means for our echo request.
#[derive(Debug, PartialEq, Eq)]
enum Icmp {
    EchoReply,
    Error(u8, u8),
}

/// Parse an IPv4 raw-socket read (IP header included).
fn classify_icmp4(pkt: &[u8], ident: u16, seq: u16) -> Option<Icmp> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    let icmp = pkt.get(ihl..)?;
    let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
    match ty {
        0 if echo_matches(icmp, ident, seq) => Some(Icmp::EchoReply),
        // Destination unreachable, time exceeded: quote our request.
        3 | 11 => {
            let inner = icmp.get(8..)?;
            let inner_ihl = usize::from(inner.first()? & 0x0f) * 4;
            let quoted = inner.get(inner_ihl..)?;
            (*inner.get(9)? == libc::IPPROTO_ICMP as u8
                && quoted.first() == Some(&8)
                && echo_matches(quoted, ident, seq))
            .then_some(Icmp::Error(ty, code))
        }
        _ => None,
    }
}

/// Parse an ICMPv6 raw-socket read (no IP header).
fn classify_icmp6(icmp: &[u8], ident: u16, seq: u16) -> Option<Icmp> {
    let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
    match ty {
        129 if echo_matches(icmp, ident, seq) => Some(Icmp::EchoReply),
        // Destination unreachable, time exceeded: quote our request.
        1 | 3 => {
            let inner = icmp.get(8..)?;
            let quoted = inner.get(40..)?;
            (*inner.get(6)? == libc::IPPROTO_ICMPV6 as u8
                && quoted.first() == Some(&128)
                && echo_matches(quoted, ident, seq))
            .then_some(Icmp::Error(ty, code))
        }
        _ => None,
    }
}

fn echo_matches(icmp: &[u8], ident: u16, seq: u16) -> bool {
    icmp.len() >= 8
        && u16::from_be_bytes([icmp[4], icmp[5]]) == ident
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp4_reply_and_error_are_recognised() {
        let mut reply = vec![0x45; 1];
        reply.resize(20, 0);
        reply.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 1]);
        assert_eq!(classify_icmp4(&reply, 0x1234, 1), Some(Icmp::EchoReply));
        assert_eq!(classify_icmp4(&reply, 0x1235, 1), None);

        let mut inner = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1];
        inner.resize(20, 0);
        inner.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let mut err = vec![0x45];
        err.resize(20, 0);
        err.extend_from_slice(&[3, 13, 0, 0, 0, 0, 0, 0]);
        err.extend_from_slice(&inner);
        assert_eq!(classify_icmp4(&err, 0x1234, 1), Some(Icmp::Error(3, 13)));
        assert_eq!(classify_icmp4(&err, 0x9999, 1), None);
    }

    #[test]
    fn icmp6_reply_is_recognised() {
        let reply = [129, 0, 0, 0, 0xab, 0xcd, 0, 1];
        assert_eq!(classify_icmp6(&reply, 0xabcd, 1), Some(Icmp::EchoReply));
        assert_eq!(classify_icmp6(&reply, 0xabcd, 2), None);
        assert_eq!(classify_icmp6(&[135, 0], 0xabcd, 1), None);
    }
}
