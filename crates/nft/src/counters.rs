//! Rule counters read over netlink: the evidence `verify --probe` uses to
//! show that a packet was dropped by one of palisade's own rules.
//!
//! Only the rules of palisade's table in one family are dumped (no sets, no
//! elements), so a snapshot is cheap whatever the number of sandboxes.

use palisade_core::element::{Family, TABLE};

use crate::error::{NftError, SetOp};
use crate::netlink::*;
use crate::socket::NftSocket;

const NFT_MSG_GETRULE: u8 = 7;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

/// What a rule does with a packet it matches, as far as probes care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    /// Jump, goto, return, continue, or no verdict.
    Other,
}

/// One rule of a chain with a counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCounter {
    pub family: Family,
    pub chain: String,
    /// Position in its chain, from 0, in kernel order.
    pub index: usize,
    pub handle: u64,
    pub packets: u64,
    pub verdict: Verdict,
}

fn u64_be(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// Decodes one `NFT_MSG_NEWRULE` of a dump; rules without a counter are
/// still counted for positions but yield `None`.
/// A dumped rule: its chain, handle and, if it has a counter, packets and
/// verdict.
type DumpedRule = (String, u64, Option<(u64, Verdict)>);

fn parse_rule(payload: &[u8]) -> Option<DumpedRule> {
    let body = payload.get(NFGENMSG_LEN..)?;
    let chain = find_attr(body, NFTA_RULE_CHAIN)?;
    let chain = String::from_utf8_lossy(chain.split(|b| *b == 0).next()?).into_owned();
    let handle = u64_be(find_attr(body, NFTA_RULE_HANDLE)?)?;
    let exprs = find_attr(body, NFTA_RULE_EXPRESSIONS)?;
    let mut packets = None;
    let mut verdict = Verdict::Other;
    for (_, expr) in attrs(exprs) {
        let name = find_attr(expr, NFTA_EXPR_NAME).unwrap_or_default();
        let data = find_attr(expr, NFTA_EXPR_DATA).unwrap_or_default();
        match name.split(|b| *b == 0).next().unwrap_or_default() {
            b"counter" => packets = find_attr(data, NFTA_COUNTER_PACKETS).and_then(u64_be),
            b"immediate" => {
                let code = find_attr(data, NFTA_IMMEDIATE_DATA)
                    .and_then(|d| find_attr(d, NFTA_DATA_VERDICT))
                    .and_then(|v| find_attr(v, NFTA_VERDICT_CODE))
                    .and_then(|c| Some(i32::from_be_bytes(c.get(..4)?.try_into().ok()?)));
                verdict = match code {
                    Some(0) => Verdict::Drop,
                    Some(1) => Verdict::Accept,
                    _ => Verdict::Other,
                };
            }
            _ => {}
        }
    }
    Some((chain, handle, packets.map(|p| (p, verdict))))
}

impl NftSocket {
    /// The counters of every rule in palisade's table of `family`, chain by
    /// chain in kernel order.
    pub fn rule_counters(&mut self, family: Family) -> Result<Vec<RuleCounter>, NftError> {
        let seq = self.next_seq(1);
        let mut w = Writer::new();
        let m = w.begin_msg(
            nft_type(NFT_MSG_GETRULE),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family.nfproto(),
            0,
        );
        w.attr_strz(NFTA_RULE_TABLE, TABLE);
        w.end_msg(m);
        self.send(w.as_bytes())?;

        let mut out = Vec::new();
        let mut positions: std::collections::HashMap<String, usize> = Default::default();
        let (failure, _) = self.finish_dump(seq, |msg| {
            let Some((chain, handle, counted)) = parse_rule(msg.payload) else {
                return Err(NftError::Protocol("malformed rule in dump".into()));
            };
            let index = positions.entry(chain.clone()).or_default();
            if let Some((packets, verdict)) = counted {
                out.push(RuleCounter {
                    family,
                    chain,
                    index: *index,
                    handle,
                    packets,
                    verdict,
                });
            }
            *index += 1;
            Ok(())
        })?;
        match failure {
            Some(ack) => Err(NftError::Kernel {
                op: SetOp::List,
                family,
                set: "(rules)".into(),
                errno: ack.errno,
                message: ack.message,
            }),
            None => Ok(out),
        }
    }
}
