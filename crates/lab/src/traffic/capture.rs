//! Packet captures: every frame an interface sees, for attack tests.
//!
//! Listeners only notice what a socket would be handed. Attacks such as a
//! rogue router advertisement, a forged ARP reply or an ICMP echo to the
//! metadata address never reach a socket even when they do reach a
//! namespace, so the question "did anything of the attacker's arrive here?"
//! needs the raw frames. A [`Capture`] records them from an `AF_PACKET`
//! socket until it is dropped.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use palisade_link::run_in_netns;

use crate::error::{Context, Result};
use crate::sys;

/// How often the capture loop checks whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(50);
/// A capture keeps at most this many frames (the oldest ones), so a flood
/// cannot exhaust memory; [`Capture::dropped`] counts the rest.
const MAX_FRAMES: usize = 100_000;
/// Frames are kept up to this many bytes.
const SNAPLEN: usize = 2048;
/// `PACKET_OUTGOING`: a frame the capturing namespace itself sent.
const PACKET_OUTGOING: u8 = 4;

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    /// True when the namespace sent the frame; false when it arrived.
    pub outgoing: bool,
    /// The Ethernet frame (without FCS), cut at 2048 bytes.
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Recorded {
    frames: Vec<CapturedFrame>,
    dropped: usize,
}

/// Records every frame sent or received on one interface of a namespace
/// until dropped (needs root).
#[derive(Debug)]
pub struct Capture {
    recorded: Arc<Mutex<Recorded>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Start capturing on `iface` in the namespace at `netns`. Frames are
    /// recorded from the moment this returns.
    pub fn start(netns: &Path, iface: &str) -> Result<Capture> {
        let context = || format!("capture on {iface} in {}", netns.display());
        let name = iface.to_string();
        let fd: OwnedFd = run_in_netns(netns, move || -> std::io::Result<OwnedFd> {
            let index = sys::if_index(&name)?;
            sys::packet_capture_socket(index)
        })
        .ctx(context)?
        .ctx(context)?;
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&recorded), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name(format!("lab-capture-{iface}"))
            .spawn(move || capture_loop(fd, r, s))
            .ctx(context)?;
        Ok(Capture {
            recorded,
            stop,
            thread: Some(thread),
        })
    }

    /// Everything recorded so far, oldest first.
    pub fn frames(&self) -> Vec<CapturedFrame> {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .frames
            .clone()
    }

    /// Number of frames recorded so far (a cheap mark for "what arrived
    /// after this point": `frames()[mark..]`).
    pub fn len(&self) -> usize {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .frames
            .len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames seen but not kept because the capture was full.
    pub fn dropped(&self) -> usize {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dropped
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn capture_loop(fd: OwnedFd, recorded: Arc<Mutex<Recorded>>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        match sys::poll_readable(fd.as_fd(), STOP_POLL) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                eprintln!("palisade-lab: capture poll: {e}");
                std::thread::sleep(STOP_POLL);
                continue;
            }
        }
        // Drain everything queued before polling again.
        while let Ok((n, pkttype)) = sys::packet_recv(fd.as_fd(), &mut buf) {
            let mut r = recorded.lock().unwrap_or_else(|p| p.into_inner());
            if r.frames.len() >= MAX_FRAMES {
                r.dropped += 1;
                continue;
            }
            r.frames.push(CapturedFrame {
                outgoing: pkttype == PACKET_OUTGOING,
                data: buf[..n.min(SNAPLEN)].to_vec(),
            });
        }
    }
}
