//! Set element transactions: the per-sandbox fast path.
//!
//! Adding or removing a sandbox changes a handful of elements in a few sets.
//! Doing that as one nf_tables batch over a kept-open socket makes the
//! change atomic (all or nothing, like `nft -f`) without spawning `nft`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use palisade_core::element::{encode_key, Element, Family, KeyPart, TABLE};

use crate::error::{NftError, SetOp};
use crate::netlink::*;
use crate::socket::NftSocket;

/// Largest payload of one `NFTA_SET_ELEM_LIST_ELEMENTS` nest. Its length
/// field is 16 bits, so bigger element lists are split over several
/// messages of the same batch.
const MAX_ELEMENTS_NEST: usize = 60_000;

/// Table used by the `DESTROYSETELEM` probe; it must not exist.
const PROBE_TABLE: &str = "palisade-destroy-probe";

/// A listed element: raw key bytes and, for maps, raw data bytes.
pub type ElementBytes = (Vec<u8>, Option<Vec<u8>>);

/// A listed element in full, as comparable bytes: what `verify` compares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetElement {
    /// Key bytes (concatenations padded as in [`encode_key`]).
    pub key: Vec<u8>,
    /// Last key of a range in a set with concatenated intervals.
    pub key_end: Option<Vec<u8>>,
    /// Data bytes of a map element.
    pub data: Option<Vec<u8>>,
    /// The closing element of a range in an interval set without
    /// concatenations, which the kernel keeps as two elements.
    pub interval_end: bool,
}

impl SetElement {
    /// What the kernel lists for an element palisade adds.
    pub fn of(e: &Element) -> SetElement {
        SetElement {
            key: e.wire_key(),
            key_end: (!e.key_end.is_empty()).then(|| e.wire_key_end()),
            data: (!e.value.is_empty()).then(|| encode_key(&e.value)),
            interval_end: false,
        }
    }
}

/// `NFTA_SET_ELEM_FLAGS` and its `NFT_SET_ELEM_INTERVAL_END` bit.
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;

/// How many dumps [`NftSocket::list_elements`] tries before giving up.
const MAX_DUMP_ATTEMPTS: usize = 10;

/// Result of one element dump.
#[derive(Default)]
struct Dump {
    elems: Vec<SetElement>,
    /// Datagrams that carried elements.
    datagrams: usize,
    /// The kernel flagged a ruleset change during the dump.
    interrupted: bool,
}

/// Elements of one set, all with the same operation.
struct Group<'a> {
    op: SetOp,
    family: Family,
    table: &'a str,
    set: &'a str,
    elems: Vec<&'a Element>,
}

/// What one message of a sent batch was about, to explain its error.
struct Sent {
    op: SetOp,
    family: Family,
    set: String,
}

/// Groups elements per (family, set) in a stable order. Deletes are
/// de-duplicated by key: a second delete of the same key in one batch
/// would fail.
fn group(op: SetOp, elems: &[Element]) -> Vec<Group<'_>> {
    let mut by_set: BTreeMap<(Family, &str), Vec<&Element>> = BTreeMap::new();
    for e in elems {
        by_set.entry((e.family, e.set)).or_default().push(e);
    }
    by_set
        .into_iter()
        .map(|((family, set), mut elems)| {
            if op != SetOp::Add {
                let mut seen = BTreeSet::new();
                elems.retain(|e| seen.insert((e.wire_key(), e.wire_key_end())));
            }
            Group {
                op,
                family,
                table: TABLE,
                set,
                elems,
            }
        })
        .collect()
}

/// Encodes one `NFTA_LIST_ELEM`: the key, and for adds to maps the data.
#[cfg(test)]
fn encode_element(e: &Element, with_data: bool) -> Result<Vec<u8>, NftError> {
    let mut w = Writer::new();
    encode_element_to(e, with_data, &mut w)?;
    Ok(w.into_bytes())
}

/// Appends one `NFTA_LIST_ELEM` to `w`: the key, and for adds to maps the
/// data.
fn encode_element_to(e: &Element, with_data: bool, w: &mut Writer) -> Result<(), NftError> {
    let invalid = |reason: String| NftError::InvalidElement {
        family: e.family,
        set: e.set.to_string(),
        reason,
    };
    let key = e.wire_key();
    if key.is_empty() || key.len() > NFT_DATA_VALUE_MAXLEN {
        return Err(invalid(format!(
            "key of {} bytes (nf_tables accepts 1 to {NFT_DATA_VALUE_MAXLEN})",
            key.len()
        )));
    }
    let elem = w.begin_nest(NFTA_LIST_ELEM);
    let k = w.begin_nest(NFTA_SET_ELEM_KEY);
    w.attr(NFTA_DATA_VALUE, &key);
    w.end_nest(k);
    if !e.key_end.is_empty() {
        // An element of an interval set with concatenations: the kernel
        // (nft_set_pipapo) takes the range as first and last key, field by
        // field, both laid out like the key.
        let end = e.wire_key_end();
        if end.len() != key.len() {
            return Err(invalid(format!(
                "range end of {} bytes for a key of {}",
                end.len(),
                key.len()
            )));
        }
        let k = w.begin_nest(NFTA_SET_ELEM_KEY_END);
        w.attr(NFTA_DATA_VALUE, &end);
        w.end_nest(k);
    }
    if with_data && !e.value.is_empty() {
        let data = encode_key(&e.value);
        if data.len() > NFT_DATA_VALUE_MAXLEN {
            return Err(invalid(format!("map value of {} bytes", data.len())));
        }
        let d = w.begin_nest(NFTA_SET_ELEM_DATA);
        w.attr(NFTA_DATA_VALUE, &data);
        w.end_nest(d);
    }
    w.end_nest(elem);
    Ok(())
}

/// The elements of one set under one operation, encoded as nests of at
/// most [`MAX_ELEMENTS_NEST`] bytes; each nest is one message of the batch.
struct Encoded<'a> {
    op: SetOp,
    family: Family,
    table: &'a str,
    set: &'a str,
    nests: Vec<Vec<u8>>,
}

impl<'a> Encoded<'a> {
    fn new(op: SetOp, family: Family, table: &'a str, set: &'a str) -> Self {
        Encoded {
            op,
            family,
            table,
            set,
            nests: Vec::new(),
        }
    }

    /// Encodes `e` (in `scratch`) and appends it to the last nest, or to a
    /// new one when it would not fit.
    fn push(&mut self, e: &Element, scratch: &mut Writer) -> Result<(), NftError> {
        scratch.clear();
        encode_element_to(e, self.op == SetOp::Add, scratch)?;
        let bytes = scratch.as_bytes();
        match self.nests.last_mut() {
            Some(nest) if nest.len() + bytes.len() <= MAX_ELEMENTS_NEST => {
                nest.extend_from_slice(bytes)
            }
            _ => {
                let mut nest = Vec::with_capacity(MAX_ELEMENTS_NEST.min(bytes.len() * 64));
                nest.extend_from_slice(bytes);
                self.nests.push(nest);
            }
        }
        Ok(())
    }
}

/// Encodes additions one at a time into groups per (family, set), in the
/// order [`group`] gives them.
fn encode_additions(
    elems: impl IntoIterator<Item = Element>,
) -> Result<Vec<Encoded<'static>>, NftError> {
    let mut by_set: BTreeMap<(Family, &'static str), Encoded<'static>> = BTreeMap::new();
    let mut scratch = Writer::new();
    for e in elems {
        by_set
            .entry((e.family, e.set))
            .or_insert_with(|| Encoded::new(SetOp::Add, e.family, TABLE, e.set))
            .push(&e, &mut scratch)?;
    }
    Ok(by_set.into_values().collect())
}

/// Encodes groups of elements for [`build_batch`].
fn encode_groups<'a>(groups: &[Group<'a>]) -> Result<Vec<Encoded<'a>>, NftError> {
    let mut scratch = Writer::new();
    groups
        .iter()
        .map(|g| {
            let mut out = Encoded::new(g.op, g.family, g.table, g.set);
            for e in &g.elems {
                out.push(e, &mut scratch)?;
            }
            Ok(out)
        })
        .collect()
}

/// Encodes a whole batch starting at sequence number `base`. Returns the
/// bytes and, per sequence number from `base`, what its message was
/// (`None` for the batch begin/end markers).
fn build_batch(base: u32, groups: &[Encoded<'_>]) -> (Vec<u8>, Vec<Option<Sent>>) {
    // Sized up front: at 10,000 sandboxes the batch is megabytes, and
    // growing it by doubling would hold up to twice that.
    const PER_MESSAGE: usize = 128; // headers and names, generously
    let size = groups
        .iter()
        .flat_map(|g| g.nests.iter().map(|n| n.len() + PER_MESSAGE))
        .sum::<usize>()
        + 2 * PER_MESSAGE;
    let mut w = Writer::with_capacity(size);
    let mut sent = Vec::new();
    let mut seq = base;

    let m = w.begin_msg(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    w.end_msg(m);
    sent.push(None);

    for g in groups {
        let (msg, flags) = match g.op {
            SetOp::Add => (NFT_MSG_NEWSETELEM, NLM_F_CREATE),
            SetOp::Delete => (NFT_MSG_DELSETELEM, 0),
            SetOp::Destroy => (NFT_MSG_DESTROYSETELEM, 0),
            SetOp::List => unreachable!("dumps are not batched"),
        };
        for nest in &g.nests {
            seq = seq.wrapping_add(1);
            let m = w.begin_msg(
                nft_type(msg),
                NLM_F_REQUEST | NLM_F_ACK | flags,
                seq,
                g.family.nfproto(),
                0,
            );
            w.attr_strz(NFTA_SET_ELEM_LIST_TABLE, g.table);
            w.attr_strz(NFTA_SET_ELEM_LIST_SET, g.set);
            let n = w.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
            w.raw(nest);
            w.end_nest(n);
            w.end_msg(m);
            sent.push(Some(Sent {
                op: g.op,
                family: g.family,
                set: g.set.to_string(),
            }));
        }
    }

    seq = seq.wrapping_add(1);
    let m = w.begin_msg(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    w.end_msg(m);
    sent.push(None);
    (w.into_bytes(), sent)
}

/// Acks received for one batch, by index from the batch's first sequence
/// number.
#[derive(Default)]
struct Acks {
    ok: HashSet<usize>,
    failures: Vec<(usize, Ack)>,
}

impl Acks {
    fn record(&mut self, base: u32, count: usize, msg: &Msg<'_>) -> Result<(), NftError> {
        let index = msg.seq.wrapping_sub(base) as usize;
        if msg.ty != NLMSG_ERROR || index >= count {
            return Ok(()); // not an answer to this batch
        }
        let ack = parse_ack(msg).map_err(NftError::Protocol)?;
        if ack.errno == 0 {
            self.ok.insert(index);
        } else {
            self.failures.push((index, ack));
        }
        Ok(())
    }
}

/// Decodes the elements of one `NFT_MSG_NEWSETELEM` dump message.
fn parse_dump_message(payload: &[u8], out: &mut Vec<SetElement>) {
    let Some(body) = payload.get(NFGENMSG_LEN..) else {
        return;
    };
    let Some(list) = find_attr(body, NFTA_SET_ELEM_LIST_ELEMENTS) else {
        return;
    };
    for (ty, elem) in attrs(list) {
        if ty != NFTA_LIST_ELEM {
            continue;
        }
        let value_of = |ty| find_attr(elem, ty).and_then(|nest| find_attr(nest, NFTA_DATA_VALUE));
        // Catch-all elements have no key; palisade never creates them.
        let Some(key) = value_of(NFTA_SET_ELEM_KEY) else {
            continue;
        };
        let flags = find_attr(elem, NFTA_SET_ELEM_FLAGS)
            .and_then(|f| Some(u32::from_be_bytes(f.get(..4)?.try_into().ok()?)))
            .unwrap_or(0);
        out.push(SetElement {
            key: key.to_vec(),
            key_end: value_of(NFTA_SET_ELEM_KEY_END).map(<[u8]>::to_vec),
            data: value_of(NFTA_SET_ELEM_DATA).map(<[u8]>::to_vec),
            interval_end: flags & NFT_SET_ELEM_INTERVAL_END != 0,
        });
    }
}

impl NftSocket {
    /// Applies element deletions and additions as ONE nf_tables
    /// transaction: either all of them take effect or none does.
    ///
    /// Deletes run before adds (so a map value can be changed by deleting
    /// and re-adding its key in one call). Deleting an absent element is
    /// not an error; adding an element that already exists identically is
    /// not an error either. `Element::value` is ignored for deletes.
    pub fn apply_elements(&mut self, add: &[Element], delete: &[Element]) -> Result<(), NftError> {
        if add.is_empty() && delete.is_empty() {
            return Ok(());
        }
        if delete.is_empty() {
            return self.transact(&group(SetOp::Add, add));
        }
        // Destroy is tried first unless known to be missing: probing for it
        // costs a refused batch, and the kernel waits for an RCU grace
        // period when it rolls one back (~20 ms here), on every process
        // start. A kernel that lacks the message refuses the batch the
        // same way, once; the fallback below then takes over.
        if self.destroy != Some(false) {
            let mut groups = group(SetOp::Destroy, delete);
            groups.extend(group(SetOp::Add, add));
            match self.transact(&groups) {
                Err(NftError::Kernel {
                    op: SetOp::Destroy,
                    errno: libc::EINVAL | libc::EOPNOTSUPP,
                    ..
                }) if self.destroy.is_none() => self.destroy = Some(false),
                result => {
                    if result.is_ok() {
                        self.destroy = Some(true);
                    }
                    return result;
                }
            }
        }
        // Kernel without DESTROYSETELEM: delete only what is present. The
        // listing and the batch are not atomic together; if an element
        // vanishes in between, the batch fails with ENOENT and is retried.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut groups = Vec::new();
            for mut g in group(SetOp::Delete, delete) {
                let present: HashSet<Vec<u8>> = self
                    .list_elements(g.family, g.set)?
                    .into_iter()
                    .map(|(key, _)| key)
                    .collect();
                g.elems.retain(|e| present.contains(&e.wire_key()));
                if !g.elems.is_empty() {
                    groups.push(g);
                }
            }
            groups.extend(group(SetOp::Add, add));
            match self.transact(&groups) {
                Err(NftError::Kernel {
                    op: SetOp::Delete,
                    errno: libc::ENOENT,
                    ..
                }) if attempt < 3 => continue,
                result => return result,
            }
        }
    }

    /// Lists a set's (or map's) elements: raw key bytes (concatenations
    /// padded as in [`encode_key`]) and, for maps, raw data bytes, sorted by
    /// key. Verdict map data and catch-all elements are not reported.
    ///
    /// A dump longer than one datagram is resumed by the kernel by skipping
    /// the elements already sent; if the hash table is resized in between
    /// (it is, shortly after many inserts) the pieces do not fit and
    /// elements come twice or not at all, without any flag saying so. So a
    /// multi-datagram listing is only returned once two consecutive dumps
    /// agree and hold no duplicate key.
    pub fn list_elements(
        &mut self,
        family: Family,
        set: &str,
    ) -> Result<Vec<ElementBytes>, NftError> {
        Ok(self
            .list_set_elements(family, set)?
            .into_iter()
            .map(|e| (e.key, e.data))
            .collect())
    }

    /// Like [`NftSocket::list_elements`], with range ends and flags: every
    /// element of the set as comparable bytes, sorted.
    pub fn list_set_elements(
        &mut self,
        family: Family,
        set: &str,
    ) -> Result<Vec<SetElement>, NftError> {
        let mut previous: Option<Vec<_>> = None;
        for _ in 0..MAX_DUMP_ATTEMPTS {
            let dump = self.dump_set(family, set)?;
            let mut elems = dump.elems;
            elems.sort();
            let duplicates = elems.windows(2).any(|w| w[0] == w[1]);
            let settled = !dump.interrupted && !duplicates;
            if settled && (dump.datagrams <= 1 || previous.as_ref() == Some(&elems)) {
                return Ok(elems);
            }
            previous = Some(elems);
        }
        Err(NftError::Protocol(format!(
            "listing of set {set} in table {} {TABLE} did not settle after {MAX_DUMP_ATTEMPTS} dumps",
            family.keyword()
        )))
    }

    /// One `NFT_MSG_GETSETELEM` dump, as the kernel sent it.
    fn dump_set(&mut self, family: Family, set: &str) -> Result<Dump, NftError> {
        let seq = self.next_seq(1);
        let mut w = Writer::new();
        let m = w.begin_msg(
            nft_type(NFT_MSG_GETSETELEM),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family.nfproto(),
            0,
        );
        w.attr_strz(NFTA_SET_ELEM_LIST_TABLE, TABLE);
        w.attr_strz(NFTA_SET_ELEM_LIST_SET, set);
        w.end_msg(m);
        self.send(w.as_bytes())?;

        let mut dump = Dump::default();
        let (failure, datagrams) = self.finish_dump(seq, |msg| {
            dump.interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
            parse_dump_message(msg.payload, &mut dump.elems);
            Ok(())
        })?;
        dump.datagrams = datagrams;
        match failure {
            Some(ack) => Err(NftError::Kernel {
                op: SetOp::List,
                family,
                set: set.to_string(),
                errno: ack.errno,
                message: ack.message,
            }),
            None => Ok(dump),
        }
    }

    /// Whether the kernel knows `NFT_MSG_DESTROYSETELEM` (Linux >= 6.3).
    /// Probed once per socket; a failed probe counts as "no".
    pub fn supports_destroy(&mut self) -> bool {
        self.probe_destroy().unwrap_or(false)
    }

    /// Overrides the probe result, to exercise the fallback path of
    /// [`NftSocket::apply_elements`] on kernels that have destroy.
    #[doc(hidden)]
    pub fn force_destroy_support(&mut self, supported: bool) {
        self.destroy = Some(supported);
    }

    /// Sends a batch destroying an element of a set in a table that does
    /// not exist. Linux 6.18 answers `ENOENT` (it parsed the message and
    /// looked the table up); a kernel without the message type answers
    /// `EINVAL` (nfnetlink finds no handler), `EOPNOTSUPP` is treated the
    /// same. Any other error is returned and nothing is cached.
    fn probe_destroy(&mut self) -> Result<bool, NftError> {
        if let Some(known) = self.destroy {
            return Ok(known);
        }
        let probe = Element {
            family: Family::Inet,
            set: "probe",
            key: vec![KeyPart::Mark(0)],
            key_end: Vec::new(),
            value: Vec::new(),
        };
        let groups = [Group {
            op: SetOp::Destroy,
            family: Family::Inet,
            table: PROBE_TABLE,
            set: probe.set,
            elems: vec![&probe],
        }];
        let supported = match self.transact(&groups) {
            Ok(()) => true,
            Err(e) => match e.errno() {
                Some(libc::ENOENT) => true,
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => false,
                _ => return Err(e),
            },
        };
        self.destroy = Some(supported);
        Ok(supported)
    }

    /// Sends one batch and collects every ack. Returns the error of the
    /// earliest failed message (the kernel aborted the whole batch then).
    fn transact(&mut self, groups: &[Group<'_>]) -> Result<(), NftError> {
        let encoded = encode_groups(groups)?;
        self.transact_encoded(&encoded)
    }

    /// Adds every element `elems` yields as ONE transaction, encoding them
    /// as they come: the caller need not hold them all (at 10,000
    /// sandboxes, `init` rebuilding the tables adds about 160,000).
    pub fn add_element_stream(
        &mut self,
        elems: impl IntoIterator<Item = Element>,
    ) -> Result<(), NftError> {
        let groups = encode_additions(elems)?;
        self.transact_encoded(&groups)
    }

    /// Sends one encoded batch and collects every ack.
    fn transact_encoded(&mut self, groups: &[Encoded<'_>]) -> Result<(), NftError> {
        if groups.is_empty() {
            return Ok(());
        }
        let base = self.next_seq(0);
        let (bytes, sent) = build_batch(base, groups);
        self.next_seq(sent.len() as u32);
        self.send(&bytes)?;

        let expected = sent.iter().filter(|s| s.is_some()).count();
        let mut acks = Acks::default();
        // nfnetlink handles a batch synchronously inside sendto(), so every
        // ack is queued by now: drain without blocking.
        while self.recv_with(true, |m| acks.record(base, sent.len(), m))? {}
        // Defensive: should acks still be missing, wait for them (bounded
        // by the socket's receive timeout).
        while acks.failures.is_empty() && acks.ok.len() < expected {
            self.recv_with(false, |m| acks.record(base, sent.len(), m))?;
        }

        let failures = acks.failures;
        let Some((index, ack)) = failures.into_iter().min_by_key(|(i, _)| *i) else {
            return Ok(());
        };
        Err(match &sent[index] {
            Some(s) => NftError::Kernel {
                op: s.op,
                family: s.family,
                set: s.set.clone(),
                errno: ack.errno,
                message: ack.message,
            },
            None => NftError::Batch {
                errno: ack.errno,
                message: ack.message,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::element::MacAddr;
    use std::net::Ipv4Addr;

    fn elem(i: u32) -> Element {
        Element {
            family: Family::Inet,
            set: "hosts",
            key: vec![
                KeyPart::IfName(format!("pal{i}")),
                KeyPart::Ipv4(Ipv4Addr::from(0x0a00_0000 + i)),
                KeyPart::Ether(MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8])),
            ],
            key_end: Vec::new(),
            value: Vec::new(),
        }
    }

    #[test]
    fn big_groups_are_split_below_the_nest_limit() {
        let elems: Vec<_> = (0..10_000).map(elem).collect();
        let groups = encode_groups(&group(SetOp::Add, &elems)).unwrap();
        let (bytes, sent) = build_batch(100, &groups);
        assert!(
            sent.len() > 4,
            "expected several messages, got {}",
            sent.len()
        );
        assert!(sent.first().unwrap().is_none() && sent.last().unwrap().is_none());
        let msgs = parse_messages(&bytes).unwrap();
        assert_eq!(msgs.len(), sent.len());
        let mut total = 0;
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.seq, 100 + i as u32);
            if sent[i].is_some() {
                assert_eq!(m.ty, nft_type(NFT_MSG_NEWSETELEM));
                let list =
                    find_attr(&m.payload[NFGENMSG_LEN..], NFTA_SET_ELEM_LIST_ELEMENTS).unwrap();
                assert!(list.len() <= MAX_ELEMENTS_NEST);
                total += attrs(list).count();
            }
        }
        assert_eq!(total, 10_000);
    }

    #[test]
    fn streamed_additions_make_the_same_batch_as_a_slice() {
        let mut elems: Vec<_> = (0..5_000).map(elem).collect();
        // Several sets, interleaved as a sandbox at a time yields them.
        for (i, e) in elems.iter_mut().enumerate() {
            e.set = ["hosts", "other", "third"][i % 3];
        }
        let from_slice = encode_groups(&group(SetOp::Add, &elems)).unwrap();
        let streamed = encode_additions(elems.clone()).unwrap();
        assert_eq!(build_batch(7, &from_slice).0, build_batch(7, &streamed).0);
        assert_eq!(streamed.len(), 3);
        assert!(streamed.iter().all(|g| g.nests.len() > 1));
    }

    #[test]
    fn deletes_are_deduplicated_and_dump_round_trips() {
        let mut e = elem(1);
        e.value = vec![KeyPart::Mark(3)];
        let twice = [e.clone(), e.clone()];
        let groups = group(SetOp::Delete, &twice);
        assert_eq!(groups[0].elems.len(), 1);

        // A dump message carries the same NFTA_LIST_ELEM encoding.
        let mut w = Writer::new();
        let m = w.begin_msg(nft_type(NFT_MSG_NEWSETELEM), 0, 1, 1, 0);
        let n = w.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
        w.raw(&encode_element(&e, true).unwrap());
        w.end_nest(n);
        w.end_msg(m);
        let bytes = w.into_bytes();
        let msgs = parse_messages(&bytes).unwrap();
        let mut out = Vec::new();
        parse_dump_message(msgs[0].payload, &mut out);
        assert_eq!(
            out,
            vec![SetElement {
                key: encode_key(&e.key),
                key_end: None,
                data: Some(3u32.to_ne_bytes().to_vec()),
                interval_end: false,
            }]
        );
        // What the kernel lists is what palisade would have sent.
        assert_eq!(out, vec![SetElement::of(&e)]);
    }

    #[test]
    fn oversized_key_is_rejected_with_context() {
        let e = Element {
            family: Family::Arp,
            set: "wide",
            key: (0..5).map(|_| KeyPart::IfName("x".into())).collect(),
            key_end: Vec::new(),
            value: Vec::new(),
        };
        let err = encode_element(&e, false).unwrap_err();
        assert!(err.to_string().contains("wide"), "{err}");
        assert!(err.to_string().contains("arp"), "{err}");
    }
}
