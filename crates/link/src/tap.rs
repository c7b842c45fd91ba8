//! Persistent tap devices for VMMs.
//!
//! Firecracker, QEMU and Cloud Hypervisor open a tap *by name* and attach to
//! it with `TUNSETIFF`. For that to work after our setup code has returned,
//! the device must outlive the file descriptor that created it, hence
//! `TUNSETPERSIST`. The tap lands in the calling thread's network namespace
//! (use [`crate::run_in_netns`] to put it elsewhere) and is removed with
//! [`crate::Rtnl::delete_link`].

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::error::{LinkError, Result};
use crate::rtnl::validate_ifname;

const TUN_PATH: &str = "/dev/net/tun";

/// `struct ifreq` as the tun driver reads it: a name, then a union whose
/// first member we use as `short ifr_flags`. Padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Attaches to the tap `name` (creating it if absent, as `TUNSETIFF` does)
/// and returns the queue's file: frames written to it enter the host as if
/// the guest had sent them. Fails with an `EBUSY` [`LinkError::Tun`] when a
/// VMM holds the tap.
pub fn attach_tap(name: &str) -> Result<File> {
    validate_ifname("attach_tap", name)?;
    let tun_err = |op: &'static str, e: io::Error| LinkError::Tun {
        op,
        name: name.to_string(),
        source: e,
    };
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(TUN_PATH)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                LinkError::TunUnavailable {
                    name: name.to_string(),
                }
            } else {
                tun_err("open /dev/net/tun", e)
            }
        })?;

    let mut req = IfReqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    // validate_ifname guarantees <= 15 bytes, so a NUL always remains.
    for (dst, src) in req.name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    let fd = dev.as_raw_fd();
    // SAFETY: `fd` is an open /dev/net/tun descriptor and `req` is a live,
    // properly sized and initialised ifreq; TUNSETIFF only reads/writes it.
    let rc = unsafe { libc::ioctl(fd, libc::TUNSETIFF, &mut req as *mut IfReqFlags) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        let op = match e.raw_os_error() {
            Some(libc::EINVAL) => {
                "TUNSETIFF (is there a non-tun interface with that name already?)"
            }
            Some(libc::EBUSY) => "TUNSETIFF (is that tap already attached to a process?)",
            Some(libc::EPERM) => "TUNSETIFF (needs CAP_NET_ADMIN, or ownership of the tap)",
            _ => "TUNSETIFF",
        };
        return Err(tun_err(op, e));
    }
    Ok(dev)
}

/// Create a persistent tap (`IFF_TAP | IFF_NO_PI`) called `name`, optionally
/// owned by uid `owner` so an unprivileged VMM may open it.
///
/// Fails with [`LinkError::TunUnavailable`] if `/dev/net/tun` does not
/// exist (nothing is loaded on the caller's behalf), and with an `EINVAL`
/// [`LinkError::Tun`] if a non-tun interface of that name already exists.
/// Calling it again for an existing, unattached persistent tap with the same
/// flags succeeds (the kernel just re-attaches), so it is idempotent.
pub fn create_tap(name: &str, owner: Option<u32>) -> Result<()> {
    let dev = attach_tap(name)?;
    let tun_err = |op: &'static str, e: io::Error| LinkError::Tun {
        op,
        name: name.to_string(),
        source: e,
    };
    let fd = dev.as_raw_fd();
    if let Some(uid) = owner {
        // SAFETY: TUNSETOWNER takes its argument by value; fd is valid.
        let rc = unsafe { libc::ioctl(fd, libc::TUNSETOWNER, uid as libc::c_ulong) };
        if rc < 0 {
            return Err(tun_err("TUNSETOWNER", io::Error::last_os_error()));
        }
    }
    // SAFETY: TUNSETPERSIST takes its argument by value; fd is valid.
    let rc = unsafe { libc::ioctl(fd, libc::TUNSETPERSIST, 1 as libc::c_ulong) };
    if rc < 0 {
        return Err(tun_err("TUNSETPERSIST", io::Error::last_os_error()));
    }
    // Closing `dev` detaches us; the persistent device stays.
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ifreq_has_kernel_size() {
        assert_eq!(std::mem::size_of::<super::IfReqFlags>(), 40);
    }
}
