//! The ids a namespace gives the other namespaces it refers to.
//!
//! Every notification about a veth whose peer is in another namespace names
//! that namespace by its id here, and the kernel finds the id with a walk
//! over every id this namespace has handed out, in ascending order, that
//! stops at the one it looks for (`peernet2id_alloc`). A namespace given no
//! id gets the lowest free one the first time it is named, so with k
//! sandboxes the newest is found last, after k others. Choosing the id
//! beforehand ([`Rtnl::assign_netns_id`]) decides where the walk stops.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::RouteNetlinkMessage;

use super::{Ctx, Rtnl};
use crate::error::{LinkError, Result};

impl Rtnl {
    /// Give the namespace open at `netns` the id `id` in this socket's
    /// namespace (`RTM_NEWNSID`). Returns false, changing nothing, when it
    /// has an id already or `id` names another namespace: an id, once
    /// given, lasts as long as the namespace.
    pub fn assign_netns_id(&mut self, netns: BorrowedFd<'_>, id: i32) -> Result<bool> {
        let mut msg = NsidMessage::default();
        msg.attributes.push(NsidAttribute::Fd(fd_number(netns)));
        msg.attributes.push(NsidAttribute::Id(id));
        let ctx = Ctx {
            op: "assign the id of",
            what: "",
        };
        match self.request(RouteNetlinkMessage::NewNsId(msg), 0, &ctx) {
            Ok(_) => Ok(true),
            Err(LinkError::AlreadyExists { .. }) => Ok(false),
            // Older kernels answer ENOSPC for an id that is taken.
            Err(e) if e.errno() == Some(libc::ENOSPC) => Ok(false),
            // The namespace is named (a readlink) only here, off the
            // path of every attach.
            Err(e) => Err(e.about(format!(
                "{} as id {id}",
                super::link::describe_netns_fd(netns)
            ))),
        }
    }

    /// The id the namespace open at `netns` has in this socket's
    /// namespace (`RTM_GETNSID`), or `None` if it has none yet.
    pub fn netns_id(&mut self, netns: BorrowedFd<'_>) -> Result<Option<i32>> {
        let mut msg = NsidMessage::default();
        msg.attributes.push(NsidAttribute::Fd(fd_number(netns)));
        let what = super::link::describe_netns_fd(netns);
        let ctx = Ctx {
            op: "look up the id of",
            what: &what,
        };
        let replies = self.request(RouteNetlinkMessage::GetNsId(msg), 0, &ctx)?;
        let id = replies.iter().find_map(|reply| match reply {
            RouteNetlinkMessage::NewNsId(m) => m.attributes.iter().find_map(|a| match a {
                NsidAttribute::Id(id) => Some(*id),
                _ => None,
            }),
            _ => None,
        });
        // The kernel answers -1 (NETNSA_NSID_NOT_ASSIGNED) for none.
        Ok(id.filter(|id| *id >= 0))
    }
}

fn fd_number(fd: BorrowedFd<'_>) -> u32 {
    // A borrowed descriptor is open, so never negative.
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}
