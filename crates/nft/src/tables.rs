//! Whether one of palisade's tables exists: one `NFT_MSG_GETTABLE` request,
//! O(1) whatever the table holds.

use palisade_core::element::{Family, TABLE};

use crate::error::{NftError, SetOp};
use crate::netlink::*;
use crate::socket::NftSocket;

const NFT_MSG_GETTABLE: u8 = 1;
const NFTA_TABLE_NAME: u16 = 1;

impl NftSocket {
    /// True when `table FAMILY palisade` exists in this namespace.
    pub fn table_exists(&mut self, family: Family) -> Result<bool, NftError> {
        let seq = self.next_seq(1);
        let mut w = Writer::new();
        let m = w.begin_msg(
            nft_type(NFT_MSG_GETTABLE),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            family.nfproto(),
            0,
        );
        w.attr_strz(NFTA_TABLE_NAME, TABLE);
        w.end_msg(m);
        self.send(w.as_bytes())?;
        let mut found = None;
        while found.is_none() {
            self.recv_with(false, |msg| {
                if msg.seq != seq {
                    return Ok(());
                }
                if msg.ty == NLMSG_ERROR {
                    let ack = parse_ack(msg).map_err(NftError::Protocol)?;
                    found = Some(match ack.errno {
                        0 => Ok(true),
                        libc::ENOENT => Ok(false),
                        errno => Err(NftError::Kernel {
                            op: SetOp::List,
                            family,
                            set: "(table)".into(),
                            errno,
                            message: ack.message,
                        }),
                    });
                } else if found.is_none() {
                    // The table itself; its ack follows.
                    found = Some(Ok(true));
                }
                Ok(())
            })?;
        }
        let exists = found.expect("loop ends with an answer")?;
        if exists {
            // Drain the ack that follows the table message.
            let _ = self.recv_with(true, |_| Ok(()));
        }
        Ok(exists)
    }
}
