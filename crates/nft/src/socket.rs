//! The persistent `NETLINK_NETFILTER` socket.
//!
//! A netlink socket belongs to the network namespace of the thread that
//! created it, for its whole life: open it in the namespace whose tables it
//! should change. This module only moves bytes; what the bytes mean lives in
//! `elements`.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::NftError;
use crate::netlink::{
    parse_ack, parse_messages, Ack, Msg, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN,
};

/// `NETLINK_CAP_ACK`: error acks carry only the failed message's header,
/// not the whole message (keeps acks of big batches small).
const NETLINK_CAP_ACK: libc::c_int = 10;
/// `NETLINK_EXT_ACK`: the kernel adds a text explaining an error.
const NETLINK_EXT_ACK: libc::c_int = 11;

/// Receive buffer asked for: room for the acks of a large batch.
const RCVBUF_BYTES: usize = 8 << 20;
/// Size of one `recv`: above the kernel's largest dump skb (32 KiB).
const RECV_CHUNK: usize = 256 << 10;
/// A blocking receive gives up after this long instead of hanging forever.
const RECV_TIMEOUT_SECS: libc::time_t = 30;

/// A `NETLINK_NETFILTER` socket speaking nf_tables, kept open across calls
/// so per-sandbox updates cost one round trip and no process spawn.
#[derive(Debug)]
pub struct NftSocket {
    fd: OwnedFd,
    seq: u32,
    sndbuf: usize,
    /// Cached result of the `DESTROYSETELEM` probe.
    pub(crate) destroy: Option<bool>,
    rbuf: Vec<u8>,
}

fn sys_err(op: &'static str) -> NftError {
    NftError::Socket {
        op,
        source: io::Error::last_os_error(),
    }
}

impl NftSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NftError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(sys_err("socket(NETLINK_NETFILTER)"));
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = NftSocket {
            fd,
            seq: initial_seq(),
            sndbuf: 0,
            destroy: None,
            rbuf: vec![0u8; RECV_CHUNK],
        };

        // SAFETY: an all-zero sockaddr_nl is valid; pid 0 lets the kernel
        // pick the port id.
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a valid sockaddr_nl and the length matches it.
        let rc = unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(sys_err("bind"));
        }

        // Optional features: older kernels lack them, which only costs
        // bigger acks / no error text.
        let _ = sock.set_int(libc::SOL_NETLINK, NETLINK_CAP_ACK, 1);
        let _ = sock.set_int(libc::SOL_NETLINK, NETLINK_EXT_ACK, 1);
        sock.grow_buffer(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, RCVBUF_BYTES)?;
        let timeout = libc::timeval {
            tv_sec: RECV_TIMEOUT_SECS,
            tv_usec: 0,
        };
        // SAFETY: `timeout` is a valid timeval and the length matches it.
        let rc = unsafe {
            libc::setsockopt(
                sock.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &timeout as *const libc::timeval as *const libc::c_void,
                mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(sys_err("setsockopt(SO_RCVTIMEO)"));
        }
        Ok(sock)
    }

    fn set_int(&self, level: libc::c_int, opt: libc::c_int, value: libc::c_int) -> io::Result<()> {
        // SAFETY: `value` is a valid c_int and the length matches it.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                opt,
                &value as *const libc::c_int as *const libc::c_void,
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Sets a socket buffer size, with the `*FORCE` variant (ignores
    /// `rmem_max`/`wmem_max`, needs CAP_NET_ADMIN which nf_tables needs
    /// anyway) and the capped plain variant as fallback.
    fn grow_buffer(
        &self,
        force: libc::c_int,
        plain: libc::c_int,
        bytes: usize,
    ) -> Result<(), NftError> {
        let value = bytes.min(libc::c_int::MAX as usize) as libc::c_int;
        if self.set_int(libc::SOL_SOCKET, force, value).is_ok() {
            return Ok(());
        }
        self.set_int(libc::SOL_SOCKET, plain, value)
            .map_err(|source| NftError::Socket {
                op: "setsockopt(socket buffer size)",
                source,
            })
    }

    /// Reserves `n` consecutive sequence numbers, returns the first.
    pub(crate) fn next_seq(&mut self, n: u32) -> u32 {
        let first = self.seq;
        self.seq = self.seq.wrapping_add(n);
        first
    }

    /// Sends one datagram to the kernel. A netlink datagram must fit the
    /// send buffer, so the buffer is grown for big batches.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<(), NftError> {
        // The kernel refuses datagrams longer than sk_sndbuf - 32, and
        // sk_sndbuf is twice the value set.
        if bytes.len() + 64 > self.sndbuf {
            let want = (bytes.len() + 4096).max(256 << 10);
            self.grow_buffer(libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, want)?;
            self.sndbuf = want * 2;
        }
        // SAFETY: an all-zero sockaddr_nl addresses the kernel (pid 0).
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: `bytes` is a valid buffer of the given length and
            // `addr` a valid sockaddr_nl of the given length.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    bytes.as_ptr() as *const libc::c_void,
                    bytes.len(),
                    0,
                    &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                    mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NftError::Socket {
                    op: "sendto",
                    source: err,
                });
            }
            if rc as usize != bytes.len() {
                return Err(NftError::Protocol(format!(
                    "short netlink send: {rc} of {} bytes",
                    bytes.len()
                )));
            }
            return Ok(());
        }
    }

    /// Receives one datagram and hands its messages to `each`. With
    /// `nonblocking`, returns `Ok(false)` when nothing is queued.
    pub(crate) fn recv_with(
        &mut self,
        nonblocking: bool,
        mut each: impl FnMut(&Msg<'_>) -> Result<(), NftError>,
    ) -> Result<bool, NftError> {
        let flags = libc::MSG_TRUNC | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        let n = loop {
            // SAFETY: `rbuf` is a valid writable buffer of the given length.
            let rc = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.rbuf.as_mut_ptr() as *mut libc::c_void,
                    self.rbuf.len(),
                    flags,
                )
            };
            if rc >= 0 {
                break rc as usize;
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock if nonblocking => return Ok(false),
                _ => {
                    return Err(NftError::Socket {
                        op: "recv",
                        source: err,
                    })
                }
            }
        };
        if n > self.rbuf.len() {
            return Err(NftError::Protocol(format!(
                "netlink datagram of {n} bytes exceeds the {} byte receive buffer",
                self.rbuf.len()
            )));
        }
        let msgs = parse_messages(&self.rbuf[..n]).map_err(NftError::Protocol)?;
        for msg in &msgs {
            if msg.ty == NLMSG_OVERRUN {
                return Err(NftError::Protocol("netlink overrun".into()));
            }
            each(msg)?;
        }
        Ok(true)
    }
}

impl NftSocket {
    /// Receives the answers to the dump request `seq` until the dump ends,
    /// handing every data message to `each`. Returns the kernel's error ack
    /// if the dump failed, and how many datagrams carried data.
    pub(crate) fn finish_dump(
        &mut self,
        seq: u32,
        mut each: impl FnMut(&Msg<'_>) -> Result<(), NftError>,
    ) -> Result<(Option<Ack>, usize), NftError> {
        let mut done = false;
        let mut failure = None;
        let mut datagrams = 0;
        while !done {
            let mut had_data = false;
            self.recv_with(false, |msg| {
                if msg.seq != seq || done {
                    return Ok(()); // stale answer to an earlier request
                }
                match msg.ty {
                    NLMSG_DONE => done = true,
                    NLMSG_NOOP => {}
                    NLMSG_ERROR => {
                        let ack = parse_ack(msg).map_err(NftError::Protocol)?;
                        if ack.errno != 0 {
                            failure = Some(ack);
                        }
                        done = true;
                    }
                    _ => {
                        had_data = true;
                        each(msg)?
                    }
                }
                Ok(())
            })?;
            datagrams += usize::from(had_data);
        }
        Ok((failure, datagrams))
    }
}

/// Starting sequence number: varied per socket so that a stray answer to a
/// previous socket's request can never match.
fn initial_seq() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    nanos | 1
}
