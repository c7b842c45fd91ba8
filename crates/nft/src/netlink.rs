//! Byte-level netlink / nfnetlink encoding and decoding.
//!
//! Hand written (instead of linking libnftnl, which is GPL) and deliberately
//! tiny: palisade only sends set element messages and reads acks and
//! element dumps. Everything is aligned to 4 bytes (`NLMSG_ALIGNTO`,
//! `NLA_ALIGNTO`) and in host byte order unless the protocol says otherwise.

/// Length of `struct nlmsghdr`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// Length of `struct nfgenmsg`.
pub(crate) const NFGENMSG_LEN: usize = 4;
/// Length of `struct nlattr`.
const NLA_HDRLEN: usize = 4;

pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_OVERRUN: u16 = 4;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_ROOT | NLM_F_MATCH`.
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
/// Set on an error ack when the original message was not echoed in full.
pub(crate) const NLM_F_CAPPED: u16 = 0x100;
/// Set on an error ack that carries extended-ack TLVs.
pub(crate) const NLM_F_ACK_TLVS: u16 = 0x200;

/// `NLMSGERR_ATTR_MSG`: human readable error text (extended ack).
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Flag on nested attributes.
const NLA_F_NESTED: u16 = 0x8000;
/// Mask of the attribute type bits.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// `NFNL_MSG_BATCH_BEGIN` (`NLMSG_MIN_TYPE`).
pub(crate) const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
/// `NFNL_MSG_BATCH_END`.
pub(crate) const NFNL_MSG_BATCH_END: u16 = 0x11;
/// `NFNL_SUBSYS_NFTABLES`.
pub(crate) const NFNL_SUBSYS_NFTABLES: u16 = 10;

// enum nf_tables_msg_types (include/uapi/linux/netfilter/nf_tables.h).
pub(crate) const NFT_MSG_NEWSETELEM: u8 = 12;
pub(crate) const NFT_MSG_GETSETELEM: u8 = 13;
pub(crate) const NFT_MSG_DELSETELEM: u8 = 14;
/// Added in Linux 6.3; older kernels answer `EINVAL` (unknown message).
pub(crate) const NFT_MSG_DESTROYSETELEM: u8 = 30;

// enum nft_set_elem_list_attributes.
pub(crate) const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub(crate) const NFTA_SET_ELEM_LIST_SET: u16 = 2;
pub(crate) const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
// enum nft_list_attributes.
pub(crate) const NFTA_LIST_ELEM: u16 = 1;
// enum nft_set_elem_attributes.
pub(crate) const NFTA_SET_ELEM_KEY: u16 = 1;
pub(crate) const NFTA_SET_ELEM_DATA: u16 = 2;
pub(crate) const NFTA_SET_ELEM_KEY_END: u16 = 10;
// enum nft_data_attributes.
pub(crate) const NFTA_DATA_VALUE: u16 = 1;

/// `NFT_DATA_VALUE_MAXLEN`: longest key or data value nf_tables accepts.
pub(crate) const NFT_DATA_VALUE_MAXLEN: usize = 64;

/// Netlink alignment (4 bytes).
pub(crate) const fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// nfnetlink message type of an nf_tables message.
pub(crate) const fn nft_type(msg: u8) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg as u16
}

/// Appends netlink messages and attributes to one buffer (a whole batch).
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A writer that will not reallocate before `bytes` are written.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Forgets what was written, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// Bytes written so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Starts a message: `nlmsghdr` (length patched by [`Writer::end_msg`])
    /// followed by `nfgenmsg`. `res_id` is written in network byte order as
    /// the kernel expects. Returns the message's start offset.
    pub(crate) fn begin_msg(
        &mut self,
        ty: u16,
        flags: u16,
        seq: u32,
        family: u8,
        res_id: u16,
    ) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: kernel fills in
        self.buf.push(family); // nfgen_family
        self.buf.push(0); // version: NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    /// Patches the length of the message started at `start`.
    pub(crate) fn end_msg(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends one attribute with its payload, padded to 4 bytes.
    pub(crate) fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = NLA_HDRLEN + data.len();
        debug_assert!(len <= u16::MAX as usize);
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    /// Appends a NUL terminated string attribute (`NLA_STRING` as libmnl's
    /// `mnl_attr_put_strz` sends it).
    pub(crate) fn attr_strz(&mut self, ty: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(ty, &data);
    }

    /// Opens a nested attribute; close it with [`Writer::end_nest`].
    pub(crate) fn begin_nest(&mut self, ty: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        start
    }

    /// Closes a nested attribute. The caller keeps nests below 64 KiB (the
    /// length field is 16 bits); that is checked in debug builds.
    pub(crate) fn end_nest(&mut self, start: usize) {
        let len = self.buf.len() - start;
        debug_assert!(len <= u16::MAX as usize, "nested attribute too long: {len}");
        self.buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
    }

    /// Appends already encoded attributes (e.g. a pre-encoded element).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pad();
    }

    fn pad(&mut self) {
        let padded = align(self.buf.len());
        self.buf.resize(padded, 0);
    }
}

/// One received netlink message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg<'a> {
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    /// Everything after the `nlmsghdr`.
    pub(crate) payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Splits a receive buffer into messages. Fails on a truncated or
/// malformed header rather than guessing.
pub(crate) fn parse_messages(mut buf: &[u8]) -> Result<Vec<Msg<'_>>, String> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32_at(buf, 0) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(format!(
                "bad netlink message length {len} ({} bytes left)",
                buf.len()
            ));
        }
        out.push(Msg {
            ty: u16_at(buf, 4),
            flags: u16_at(buf, 6),
            seq: u32_at(buf, 8),
            payload: &buf[NLMSG_HDRLEN..len],
        });
        buf = &buf[align(len).min(buf.len())..];
    }
    Ok(out)
}

/// Iterates over the attributes in `buf` as `(type, payload)`, type without
/// the nested / byte-order flag bits. Stops at the first malformed header.
pub(crate) fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLA_HDRLEN {
            return None;
        }
        let len = u16_at(rest, 0) as usize;
        let ty = u16_at(rest, 2) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > rest.len() {
            rest = &[];
            return None;
        }
        let data = &rest[NLA_HDRLEN..len];
        rest = &rest[align(len).min(rest.len())..];
        Some((ty, data))
    })
}

/// First attribute of type `ty` in `buf`.
pub(crate) fn find_attr(buf: &[u8], ty: u16) -> Option<&[u8]> {
    attrs(buf).find(|(t, _)| *t == ty).map(|(_, d)| d)
}

/// A decoded `NLMSG_ERROR`: `errno` is 0 for a positive ack, otherwise the
/// positive errno value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) errno: i32,
    /// Extended ack message, if `NETLINK_EXT_ACK` is on and the kernel set one.
    pub(crate) message: Option<String>,
}

/// Decodes the payload of an `NLMSG_ERROR` message.
pub(crate) fn parse_ack(msg: &Msg<'_>) -> Result<Ack, String> {
    let p = msg.payload;
    if p.len() < 4 {
        return Err(format!("short NLMSG_ERROR ({} bytes)", p.len()));
    }
    let error = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
    let mut message = None;
    if msg.flags & NLM_F_ACK_TLVS != 0 && p.len() >= 4 + NLMSG_HDRLEN {
        // The TLVs follow the echoed request: only its header when capped,
        // the whole request otherwise.
        let echoed = if msg.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            align(u32_at(p, 4) as usize)
        };
        if let Some(tlvs) = p.get(4 + echoed..) {
            message = find_attr(tlvs, NLMSGERR_ATTR_MSG).map(|m| {
                let end = m.iter().position(|&b| b == 0).unwrap_or(m.len());
                String::from_utf8_lossy(&m[..end]).into_owned()
            });
        }
    }
    Ok(Ack {
        errno: error.saturating_neg(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_measured() {
        let mut w = Writer::new();
        let m = w.begin_msg(nft_type(NFT_MSG_NEWSETELEM), NLM_F_REQUEST, 7, 1, 0);
        w.attr_strz(NFTA_SET_ELEM_LIST_TABLE, "palisade"); // 4 + 9 -> 16
        let n = w.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
        w.attr(NFTA_DATA_VALUE, &[1, 2, 3]); // 4 + 3 -> 8
        w.end_nest(n);
        w.end_msg(m);
        let b = w.as_bytes();
        assert_eq!(b.len(), 16 + 4 + 16 + 4 + 8);
        assert_eq!(u32_at(b, 0) as usize, b.len());
        assert_eq!(u16_at(b, 4), 0x0a0c);
        assert_eq!(u32_at(b, 8), 7);
        assert_eq!(b[16], 1); // family
        let nest_at = 16 + 4 + 16;
        assert_eq!(u16_at(b, nest_at), 12);
        assert_eq!(
            u16_at(b, nest_at + 2),
            NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED
        );

        let msgs = parse_messages(b).unwrap();
        assert_eq!(msgs.len(), 1);
        let body = &msgs[0].payload[NFGENMSG_LEN..];
        let got: Vec<_> = attrs(body).map(|(t, d)| (t, d.to_vec())).collect();
        assert_eq!(got[0], (NFTA_SET_ELEM_LIST_TABLE, b"palisade\0".to_vec()));
        assert_eq!(got[1].0, NFTA_SET_ELEM_LIST_ELEMENTS);
        assert_eq!(
            find_attr(&got[1].1, NFTA_DATA_VALUE),
            Some(&[1u8, 2, 3][..])
        );
    }

    #[test]
    fn res_id_is_big_endian() {
        let mut w = Writer::new();
        let m = w.begin_msg(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            1,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        w.end_msg(m);
        assert_eq!(&w.as_bytes()[18..20], &[0, 10]);
    }

    #[test]
    fn error_ack_with_extended_message() {
        // nlmsgerr { error = -ENOENT, capped header } + NLMSGERR_ATTR_MSG.
        let mut p = Vec::new();
        p.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        p.extend_from_slice(&[0u8; NLMSG_HDRLEN]);
        let mut w = Writer::new();
        w.attr_strz(NLMSGERR_ATTR_MSG, "no such set");
        p.extend_from_slice(w.as_bytes());
        let msg = Msg {
            ty: NLMSG_ERROR,
            flags: NLM_F_CAPPED | NLM_F_ACK_TLVS,
            seq: 3,
            payload: &p,
        };
        let ack = parse_ack(&msg).unwrap();
        assert_eq!(ack.errno, libc::ENOENT);
        assert_eq!(ack.message.as_deref(), Some("no such set"));
    }

    #[test]
    fn malformed_messages_are_rejected() {
        assert!(parse_messages(&[200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert_eq!(attrs(&[2, 0, 1, 0]).count(), 0);
    }
}
