//! Listeners that record every arrival.
//!
//! An isolation test asks two questions of a destination: did anything get
//! here, and with which source address? So a listener does not serve
//! anything useful; it records each TCP connection or UDP datagram with its
//! peer address, answers `ok\n` (so probes can tell "reached" from
//! "blocked") and goes on.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palisade_link::run_in_netns;

use crate::error::{Context, LabError, Result};
use crate::sys;

/// How often a listener's loop checks whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(50);
/// The reply every listener sends.
pub(crate) const REPLY: &[u8] = b"ok\n";

/// Transport protocol of a listener or arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    /// TCP: an arrival is an accepted connection.
    Tcp,
    /// UDP: an arrival is a received datagram.
    Udp,
}

/// One connection or datagram that reached a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Transport protocol.
    pub l4: L4,
    /// The listener's address (for a TCP wildcard bind, the address the
    /// connection was actually made to).
    pub local: SocketAddr,
    /// The source address and port the packet arrived with: the thing
    /// isolation tests assert on (masqueraded or not, spoofed or not).
    pub peer: SocketAddr,
    /// The datagram's payload (UDP); empty for TCP.
    pub payload: Vec<u8>,
}

type Arrivals = Arc<Mutex<Vec<Arrival>>>;

/// A TCP or UDP listener running inside a namespace, recording arrivals
/// until dropped.
#[derive(Debug)]
pub struct Listener {
    l4: L4,
    local: SocketAddr,
    arrivals: Arrivals,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Bind `addr` inside the namespace at `netns` and start recording.
    ///
    /// Wildcard addresses (`0.0.0.0`, `[::]`) are allowed; IPv6 sockets are
    /// `IPV6_V6ONLY`, so `[::]` and `0.0.0.0` on one port can coexist and
    /// IPv4 arrivals never show up as mapped IPv6 addresses. Port 0 picks a
    /// free port ([`Listener::local_addr`] tells which). Note that a UDP
    /// listener on a wildcard address replies from whatever source the
    /// kernel picks, which may not be the address the probe sent to; bind
    /// concrete addresses for [`crate::traffic::udp_exchange`] round trips.
    pub fn start(netns: &Path, l4: L4, addr: SocketAddr) -> Result<Listener> {
        let context = || format!("start {l4:?} listener on {addr} in {}", netns.display());
        let fd: OwnedFd = run_in_netns(netns, move || bound_socket(l4, addr))
            .ctx(context)?
            .ctx(context)?;
        let arrivals: Arrivals = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (local, thread) = match l4 {
            L4::Tcp => {
                let sock = TcpListener::from(fd);
                let local = sock.local_addr().ctx(context)?;
                let (a, s) = (Arc::clone(&arrivals), Arc::clone(&stop));
                let t = std::thread::Builder::new()
                    .name(format!("lab-tcp-{local}"))
                    .spawn(move || serve_tcp(sock, a, s))
                    .ctx(context)?;
                (local, t)
            }
            L4::Udp => {
                let sock = UdpSocket::from(fd);
                let local = sock.local_addr().ctx(context)?;
                let (a, s) = (Arc::clone(&arrivals), Arc::clone(&stop));
                let t = std::thread::Builder::new()
                    .name(format!("lab-udp-{local}"))
                    .spawn(move || serve_udp(sock, local, a, s))
                    .ctx(context)?;
                (local, t)
            }
        };
        Ok(Listener {
            l4,
            local,
            arrivals,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (with the real port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The transport protocol.
    pub fn l4(&self) -> L4 {
        self.l4
    }

    /// Everything recorded so far, oldest first.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wait until at least `count` arrivals are recorded or `limit` has
    /// passed, and return what was recorded. For packets that get no
    /// answer (spoofed ones), where the sender cannot know when they land;
    /// `limit` is an upper bound on waiting, not something to assert on.
    pub fn wait_for_arrivals(&self, count: usize, limit: Duration) -> Vec<Arrival> {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.arrivals();
            if now.len() >= count || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Create, configure and bind the socket; runs inside the target netns.
fn bound_socket(l4: L4, addr: SocketAddr) -> std::io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let ty = match l4 {
        L4::Tcp => libc::SOCK_STREAM,
        L4::Udp => libc::SOCK_DGRAM,
    } | libc::SOCK_NONBLOCK;
    let fd = sys::socket(domain, ty, 0)?;
    sys::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if addr.is_ipv6() {
        sys::setsockopt_int(fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    sys::bind(fd.as_fd(), &addr)?;
    if l4 == L4::Tcp {
        sys::listen(fd.as_fd(), 128)?;
    }
    Ok(fd)
}

fn record(arrivals: &Arrivals, arrival: Arrival) {
    arrivals
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(arrival);
}

fn serve_tcp(sock: TcpListener, arrivals: Arrivals, stop: Arc<AtomicBool>) {
    let bound = sock.local_addr().ok();
    while !stop.load(Ordering::SeqCst) {
        match sys::poll_readable(sock.as_fd(), STOP_POLL) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                eprintln!("palisade-lab: tcp listener poll: {e}");
                std::thread::sleep(STOP_POLL);
                continue;
            }
        }
        match sock.accept() {
            Ok((stream, peer)) => {
                let local = stream.local_addr().ok().or(bound).unwrap_or(peer);
                // Recorded before replying: a probe that read the reply
                // can rely on the arrival being visible.
                record(
                    &arrivals,
                    Arrival {
                        l4: L4::Tcp,
                        local,
                        peer,
                        payload: Vec::new(),
                    },
                );
                // A slow or silent client must not hold up the next accept.
                let _ = std::thread::Builder::new()
                    .name("lab-tcp-conn".into())
                    .spawn(move || answer_tcp(stream));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                eprintln!("palisade-lab: tcp accept: {e}");
                std::thread::sleep(STOP_POLL);
            }
        }
    }
}

/// Reply and close politely: half-close, then drain what the client sent
/// so closing does not turn into a reset that would hide our reply.
fn answer_tcp(mut stream: TcpStream) {
    let limit = Some(Duration::from_secs(2));
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(limit);
    let _ = stream.set_read_timeout(limit);
    let _ = stream.write_all(REPLY);
    let _ = stream.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while let Ok(n) = stream.read(&mut sink) {
        total += n;
        if n == 0 || total > 1 << 20 {
            break;
        }
    }
}

fn serve_udp(sock: UdpSocket, local: SocketAddr, arrivals: Arrivals, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        match sys::poll_readable(sock.as_fd(), STOP_POLL) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                eprintln!("palisade-lab: udp listener poll: {e}");
                std::thread::sleep(STOP_POLL);
                continue;
            }
        }
        // Errors are WouldBlock, or an ICMP error queued by an earlier
        // reply to an unreachable source; neither stops the listener.
        if let Ok((n, peer)) = sock.recv_from(&mut buf) {
            record(
                &arrivals,
                Arrival {
                    l4: L4::Udp,
                    local,
                    peer,
                    payload: buf[..n].to_vec(),
                },
            );
            // Best effort: a forged source may well be unreachable.
            let _ = sock.send_to(REPLY, peer);
        }
    }
}

/// Many listeners at once, looked up by protocol and local address.
///
/// A typical isolation test starts TCP and UDP listeners on every world
/// destination, probes them all from a sandbox and then checks exactly
/// which ones saw arrivals.
#[derive(Debug, Default)]
pub struct ListenerSet {
    listeners: BTreeMap<(L4, SocketAddr), Listener>,
}

impl ListenerSet {
    /// An empty set.
    pub fn new() -> ListenerSet {
        ListenerSet::default()
    }

    /// Start one listener per `(protocol, address)` in the namespace at
    /// `netns`. On error, the ones already started are stopped.
    pub fn start(netns: &Path, specs: &[(L4, SocketAddr)]) -> Result<ListenerSet> {
        let mut set = ListenerSet::new();
        for &(l4, addr) in specs {
            set.add(netns, l4, addr)?;
        }
        Ok(set)
    }

    /// Start a listener for every combination of protocol, address and
    /// port.
    pub fn start_grid(
        netns: &Path,
        l4s: &[L4],
        ips: &[IpAddr],
        ports: &[u16],
    ) -> Result<ListenerSet> {
        let mut set = ListenerSet::new();
        for &l4 in l4s {
            for &ip in ips {
                for &port in ports {
                    set.add(netns, l4, SocketAddr::new(ip, port))?;
                }
            }
        }
        Ok(set)
    }

    /// Start one more listener; returns its actual local address.
    pub fn add(&mut self, netns: &Path, l4: L4, addr: SocketAddr) -> Result<SocketAddr> {
        let l = Listener::start(netns, l4, addr)?;
        let local = l.local_addr();
        if self.listeners.insert((l4, local), l).is_some() {
            return Err(LabError::Invalid(format!(
                "two {l4:?} listeners on {local} in one set"
            )));
        }
        Ok(local)
    }

    /// The listener for `l4` on `local`, if the set has one.
    pub fn get(&self, l4: L4, local: SocketAddr) -> Option<&Listener> {
        self.listeners.get(&(l4, local))
    }

    /// Arrivals at the listener for `l4` on `local` (empty if there is no
    /// such listener).
    pub fn arrivals_at(&self, l4: L4, local: SocketAddr) -> Vec<Arrival> {
        self.get(l4, local)
            .map(Listener::arrivals)
            .unwrap_or_default()
    }

    /// Every arrival at every listener, grouped by listener.
    pub fn all_arrivals(&self) -> Vec<Arrival> {
        self.listeners
            .values()
            .flat_map(Listener::arrivals)
            .collect()
    }

    /// All listeners, ordered by protocol and address.
    pub fn iter(&self) -> impl Iterator<Item = &Listener> {
        self.listeners.values()
    }

    /// Number of listeners.
    pub fn len(&self) -> usize {
        self.listeners.len()
    }

    /// True when the set has no listeners.
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }
}
