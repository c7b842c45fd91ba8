//! Forgetting connections: conntrack entries of an address that goes away.
//!
//! When a sandbox is destroyed its address returns to the pool. Connections
//! it had (an exposure's DNAT, internet egress) live on in conntrack, and
//! `ct state established` would hand their packets to the next sandbox that
//! gets the address. Deleting the entries closes that door.

use std::net::IpAddr;

use crate::error::NftError;
use crate::netlink::{
    attrs, find_attr, parse_ack, Writer, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use crate::socket::NftSocket;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;

/// The parts of a dumped entry needed to delete it again.
struct Entry {
    family: u8,
    orig_tuple: Vec<u8>,
    zone: Option<Vec<u8>>,
}

/// Whether a tuple (`CTA_TUPLE_ORIG` or `_REPLY` payload) names `addr`.
fn tuple_has(tuple: &[u8], addrs: &[IpAddr]) -> bool {
    let Some(ip) = find_attr(tuple, CTA_TUPLE_IP) else {
        return false;
    };
    attrs(ip).any(|(ty, data)| {
        let addr = match (ty, data.len()) {
            (CTA_IP_V4_SRC | CTA_IP_V4_DST, 4) => {
                IpAddr::from(<[u8; 4]>::try_from(data).expect("length checked"))
            }
            (CTA_IP_V6_SRC | CTA_IP_V6_DST, 16) => {
                IpAddr::from(<[u8; 16]>::try_from(data).expect("length checked"))
            }
            _ => return false,
        };
        addrs.contains(&addr)
    })
}

impl NftSocket {
    /// Deletes every conntrack entry with one of `addrs` as source or
    /// destination, in either direction. Returns how many went. Entries that
    /// vanish by themselves meanwhile are not an error.
    pub fn forget_connections(&mut self, addrs: &[IpAddr]) -> Result<usize, NftError> {
        if addrs.is_empty() {
            return Ok(0);
        }
        let doomed = self.dump_conntrack(addrs)?;
        let mut forgotten = 0;
        for entry in &doomed {
            let seq = self.next_seq(1);
            let mut w = Writer::new();
            let m = w.begin_msg(
                (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
                NLM_F_REQUEST | NLM_F_ACK,
                seq,
                entry.family,
                0,
            );
            let t = w.begin_nest(CTA_TUPLE_ORIG);
            w.raw(&entry.orig_tuple);
            w.end_nest(t);
            if let Some(zone) = &entry.zone {
                w.attr(CTA_ZONE, zone);
            }
            w.end_msg(m);
            self.send(w.as_bytes())?;
            match self.wait_ack(seq, "delete a conntrack entry") {
                Ok(()) => forgotten += 1,
                Err(e) if e.errno() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(forgotten)
    }

    /// Dumps the conntrack table (all families) and keeps the entries that
    /// name one of `addrs`.
    fn dump_conntrack(&mut self, addrs: &[IpAddr]) -> Result<Vec<Entry>, NftError> {
        let seq = self.next_seq(1);
        let mut w = Writer::new();
        let m = w.begin_msg(
            (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            libc::AF_UNSPEC as u8,
            0,
        );
        w.end_msg(m);
        self.send(w.as_bytes())?;
        let mut out = Vec::new();
        let (failure, _) = self.finish_dump(seq, |msg| {
            if msg.payload.len() < 4 {
                return Ok(());
            }
            let body = &msg.payload[4..];
            let orig = find_attr(body, CTA_TUPLE_ORIG);
            let reply = find_attr(body, CTA_TUPLE_REPLY);
            let named = orig.is_some_and(|t| tuple_has(t, addrs))
                || reply.is_some_and(|t| tuple_has(t, addrs));
            if let (true, Some(orig)) = (named, orig) {
                out.push(Entry {
                    family: msg.payload[0],
                    orig_tuple: orig.to_vec(),
                    zone: find_attr(body, CTA_ZONE).map(<[u8]>::to_vec),
                });
            }
            Ok(())
        })?;
        match failure {
            Some(ack) => Err(NftError::Conntrack {
                op: "list connections",
                errno: ack.errno,
                message: ack.message,
            }),
            None => Ok(out),
        }
    }

    /// Waits for the ack of request `seq`.
    fn wait_ack(&mut self, seq: u32, op: &'static str) -> Result<(), NftError> {
        let mut result = None;
        while result.is_none() {
            self.recv_with(false, |msg| {
                if msg.seq == seq && msg.ty == NLMSG_ERROR {
                    let ack = parse_ack(msg).map_err(NftError::Protocol)?;
                    result = Some(if ack.errno == 0 {
                        Ok(())
                    } else {
                        Err(NftError::Conntrack {
                            op,
                            errno: ack.errno,
                            message: ack.message,
                        })
                    });
                }
                Ok(())
            })?;
        }
        result.expect("loop ends with a result")
    }
}
