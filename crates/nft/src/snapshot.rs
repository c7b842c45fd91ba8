//! palisade's table in one family read back over netlink, in a form that
//! compares: the table, its chains, its rules by position and its sets,
//! without handles, counter values or anything else that differs between
//! two loads of the same ruleset. Elements are listed per set apart
//! ([`NftSocket::list_set_elements`]), so reading the structure costs the
//! same whatever the number of sandboxes.

use std::collections::BTreeMap;

use palisade_core::element::{Family, TABLE};

use crate::elements::SetElement;
use crate::error::{NftError, SetOp};
use crate::netlink::*;
use crate::socket::NftSocket;

const NFT_MSG_GETTABLE: u8 = 1;
const NFT_MSG_GETCHAIN: u8 = 4;
const NFT_MSG_GETRULE: u8 = 7;
const NFT_MSG_GETSET: u8 = 10;

/// `NFTA_*_TABLE` (the table name) is attribute 1 of chains, rules and
/// sets alike; `NFTA_TABLE_NAME` is attribute 1 of a table.
const ATTR_TABLE: u16 = 1;

// Attributes that differ between two loads of one ruleset, per object.
const NFTA_TABLE_USE: u16 = 3;
const NFTA_TABLE_HANDLE: u16 = 4;
const NFTA_TABLE_PAD: u16 = 5;
const NFTA_TABLE_OWNER: u16 = 7;
const NFTA_CHAIN_HANDLE: u16 = 2;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_USE: u16 = 6;
const NFTA_CHAIN_COUNTERS: u16 = 8;
const NFTA_CHAIN_PAD: u16 = 9;
const NFTA_CHAIN_ID: u16 = 11;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_POSITION: u16 = 6;
const NFTA_RULE_PAD: u16 = 8;
const NFTA_RULE_ID: u16 = 9;
const NFTA_RULE_POSITION_ID: u16 = 10;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_DESC: u16 = 9;
const NFTA_SET_DESC_SIZE: u16 = 1;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_PAD: u16 = 14;
const NFTA_SET_HANDLE: u16 = 16;
/// The number of elements (Linux 6.x): compared element by element instead.
const NFTA_SET_COUNT: u16 = 20;
const NFTA_EXPR_NAME: u16 = 1;
const NFT_SET_ANONYMOUS: u32 = 0x1;

/// One family's table as read back (elements not included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSnapshot {
    /// The table exists.
    pub present: bool,
    /// The table's own attributes, normalised.
    pub table: Vec<u8>,
    /// Chain name -> attributes, normalised.
    pub chains: BTreeMap<String, Vec<u8>>,
    /// Chain name -> its rules in kernel order, normalised (counters
    /// zeroed).
    pub rules: BTreeMap<String, Vec<Vec<u8>>>,
    /// Set (or map) name -> attributes, normalised.
    pub sets: BTreeMap<String, SetInfo>,
}

/// A set's declaration as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetInfo {
    /// Normalised attributes: key and data types and lengths, flags...
    pub attrs: Vec<u8>,
    /// An anonymous set (`{ 22, 80 }` inside a rule).
    pub anonymous: bool,
}

impl TableSnapshot {
    /// Rules in all chains.
    pub fn rule_count(&self) -> usize {
        self.rules.values().map(Vec::len).sum()
    }
}

fn name_attr(body: &[u8], ty: u16) -> String {
    find_attr(body, ty)
        .map(|v| String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default()).into())
        .unwrap_or_default()
}

/// Re-encodes `body`'s attributes without the types in `drop`, in kernel
/// order; `map` may rewrite a kept attribute's payload.
fn keep_attrs(body: &[u8], drop: &[u16], mut map: impl FnMut(u16, &[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for (ty, data) in attrs(body) {
        if drop.contains(&ty) {
            continue;
        }
        let data = map(ty, data);
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(&(data.len() as u32).to_ne_bytes());
        out.extend_from_slice(&data);
    }
    out
}

/// A rule's expressions with the values of `counter` expressions removed.
fn expressions_without_counts(exprs: &[u8]) -> Vec<u8> {
    keep_attrs(exprs, &[], |_, expr| {
        let name = find_attr(expr, NFTA_EXPR_NAME).unwrap_or_default();
        if name.split(|b| *b == 0).next() == Some(b"counter") {
            b"counter".to_vec()
        } else {
            expr.to_vec()
        }
    })
}

impl NftSocket {
    /// Reads palisade's table of `family` back: table, chains, rules and
    /// set declarations (no elements).
    pub fn snapshot(&mut self, family: Family) -> Result<TableSnapshot, NftError> {
        let mut snap = TableSnapshot::default();
        let tables = self.dump_objects(family, NFT_MSG_GETTABLE, "(table)")?;
        let Some(table) = tables
            .iter()
            .find(|body| name_attr(body, ATTR_TABLE) == TABLE)
        else {
            return Ok(snap);
        };
        snap.present = true;
        snap.table = keep_attrs(
            table,
            &[
                NFTA_TABLE_USE,
                NFTA_TABLE_HANDLE,
                NFTA_TABLE_PAD,
                NFTA_TABLE_OWNER,
            ],
            |_, d| d.to_vec(),
        );
        for body in self.dump_objects(family, NFT_MSG_GETCHAIN, "(chains)")? {
            if name_attr(&body, ATTR_TABLE) != TABLE {
                continue;
            }
            let attrs = keep_attrs(
                &body,
                &[
                    NFTA_CHAIN_HANDLE,
                    NFTA_CHAIN_USE,
                    NFTA_CHAIN_COUNTERS,
                    NFTA_CHAIN_PAD,
                    NFTA_CHAIN_ID,
                ],
                |_, d| d.to_vec(),
            );
            snap.chains.insert(name_attr(&body, NFTA_CHAIN_NAME), attrs);
        }
        for body in self.dump_objects(family, NFT_MSG_GETRULE, "(rules)")? {
            if name_attr(&body, ATTR_TABLE) != TABLE {
                continue;
            }
            let attrs = keep_attrs(
                &body,
                &[
                    NFTA_RULE_HANDLE,
                    NFTA_RULE_POSITION,
                    NFTA_RULE_PAD,
                    NFTA_RULE_ID,
                    NFTA_RULE_POSITION_ID,
                ],
                |ty, d| {
                    if ty == NFTA_RULE_EXPRESSIONS {
                        expressions_without_counts(d)
                    } else {
                        d.to_vec()
                    }
                },
            );
            snap.rules
                .entry(name_attr(&body, NFTA_RULE_CHAIN))
                .or_default()
                .push(attrs);
        }
        for body in self.dump_objects(family, NFT_MSG_GETSET, "(sets)")? {
            if name_attr(&body, ATTR_TABLE) != TABLE {
                continue;
            }
            let flags = find_attr(&body, NFTA_SET_FLAGS)
                .and_then(|f| Some(u32::from_be_bytes(f.get(..4)?.try_into().ok()?)))
                .unwrap_or(0);
            // The size in the description is a sizing hint nft derives
            // from the elements a set is created with, not its type.
            let attrs = keep_attrs(
                &body,
                &[NFTA_SET_ID, NFTA_SET_PAD, NFTA_SET_HANDLE, NFTA_SET_COUNT],
                |ty, d| {
                    if ty == NFTA_SET_DESC {
                        keep_attrs(d, &[NFTA_SET_DESC_SIZE], |_, d| d.to_vec())
                    } else {
                        d.to_vec()
                    }
                },
            );
            snap.sets.insert(
                name_attr(&body, NFTA_SET_NAME),
                SetInfo {
                    attrs,
                    anonymous: flags & NFT_SET_ANONYMOUS != 0,
                },
            );
        }
        Ok(snap)
    }

    /// One dump of a kind of object in `family`, restricted to palisade's
    /// table where the kernel supports that; the bodies after the nfgenmsg
    /// header.
    fn dump_objects(
        &mut self,
        family: Family,
        msg: u8,
        what: &str,
    ) -> Result<Vec<Vec<u8>>, NftError> {
        let seq = self.next_seq(1);
        let mut w = Writer::new();
        let m = w.begin_msg(
            nft_type(msg),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family.nfproto(),
            0,
        );
        if msg != NFT_MSG_GETTABLE {
            w.attr_strz(ATTR_TABLE, TABLE);
        }
        w.end_msg(m);
        self.send(w.as_bytes())?;
        let mut out = Vec::new();
        let (failure, _) = self.finish_dump(seq, |m| {
            out.push(m.payload.get(NFGENMSG_LEN..).unwrap_or_default().to_vec());
            Ok(())
        })?;
        match failure {
            // No table: nothing of it to list.
            Some(ack) if ack.errno == libc::ENOENT => Ok(Vec::new()),
            Some(ack) => Err(NftError::Kernel {
                op: SetOp::List,
                family,
                set: what.to_string(),
                errno: ack.errno,
                message: ack.message,
            }),
            None => Ok(out),
        }
    }
}

/// One family's table as loaded in a throwaway namespace, with the
/// elements of each of its sets.
pub type CanonicalTable = (Family, TableSnapshot, BTreeMap<String, Vec<SetElement>>);

/// Applies `script` in a fresh throwaway network namespace and reads each
/// of `families` back there, with every set's elements: the kernel's own
/// form of a compiled ruleset, to compare with the live tables.
pub fn canonical_snapshot(
    script: &str,
    families: &[Family],
) -> Result<Vec<CanonicalTable>, NftError> {
    crate::netns::with_throwaway_netns(|| {
        crate::script::apply_script(script)?;
        let mut sock = NftSocket::open()?;
        families
            .iter()
            .map(|&family| {
                let snap = sock.snapshot(family)?;
                let mut elements = BTreeMap::new();
                for set in snap.sets.keys() {
                    elements.insert(set.clone(), sock.list_set_elements(family, set)?);
                }
                Ok((family, snap, elements))
            })
            .collect()
    })?
}
