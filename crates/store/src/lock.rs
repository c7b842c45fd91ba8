//! One writer at a time: an exclusive `flock` on a file in the state dir,
//! held for the whole command and released by the kernel if the process dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

pub const LOCK_FILE: &str = "lock";

/// Holds the state dir's lock until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock, waiting for another palisade process to finish;
    /// `on_wait` is called once if the lock is busy, to tell the user.
    pub fn acquire(dir: &Path, on_wait: impl FnOnce()) -> std::io::Result<StateLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait();
                file.lock()?;
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path(), || panic!("free lock reported busy")).unwrap();
        let path = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let mut waited = false;
            let _second = StateLock::acquire(&path, || waited = true).unwrap();
            tx.send(waited).unwrap();
        });
        // The second holder cannot get it while the first lives.
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(first);
        assert!(rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap());
        t.join().unwrap();
    }
}
