//! Waiting, between two systems, for the machine to be quiet again.
//!
//! A child's lab dies with it, but the kernel frees its namespaces in the
//! background (`cleanup_net`), taking the routing lock for each veth it
//! unregisters: after 10,000 sandboxes, for tens of seconds of CPU. The
//! next system would be charged for it, so the parent waits until the CPUs
//! have been nearly idle for a few seconds in a row. (The count of live
//! namespaces is no guide: /proc/slabinfo counts freed `net_namespace`
//! objects still held in per-CPU slabs as active.)

use std::time::{Duration, Instant};

/// Longest wait: beyond it the next system runs anyway, and says so.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Length of one sample.
const SAMPLE: Duration = Duration::from_secs(1);
/// Quiet samples in a row that count as settled.
const QUIET_SAMPLES: usize = 3;
/// Busy share of all CPUs below which a sample is quiet.
const QUIET_BUSY: f64 = 0.10;

/// (busy, total) jiffies of all CPUs, from the first line of /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(text.lines().next()?)
}

/// `cpu user nice system idle iowait irq softirq steal ...`: idle and
/// iowait are not busy.
fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    (fields.next()? == "cpu").then_some(())?;
    let values: Vec<u64> = fields.map(|f| f.parse().ok()).collect::<Option<_>>()?;
    // guest and guest_nice are already counted in user and nice.
    let counted = &values[..values.len().min(8)];
    let total: u64 = counted.iter().sum();
    let idle = counted.get(3)? + counted.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Blocks until the CPUs have been quiet for [`QUIET_SAMPLES`] samples in
/// a row, or for [`MAX_WAIT`]; a no-op where /proc/stat cannot be read.
pub fn wait_until_quiet() {
    let start = Instant::now();
    let mut quiet = 0;
    let Some(mut last) = cpu_jiffies() else {
        return;
    };
    while quiet < QUIET_SAMPLES {
        if start.elapsed() > MAX_WAIT {
            eprintln!(
                "palisade-bench: the machine is still busy after {} s; going on",
                MAX_WAIT.as_secs()
            );
            return;
        }
        std::thread::sleep(SAMPLE);
        let Some(now) = cpu_jiffies() else {
            return;
        };
        let (busy, total) = (now.0 - last.0, now.1 - last.1);
        last = now;
        let share = if total == 0 {
            0.0
        } else {
            busy as f64 / total as f64
        };
        quiet = if share < QUIET_BUSY { quiet + 1 } else { 0 };
    }
    eprintln!(
        "palisade-bench: quiet after {:.0} s",
        start.elapsed().as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_iowait_are_not_busy_and_guests_are_not_counted_twice() {
        let line = "cpu  100 5 20 800 50 3 2 0 40 0";
        assert_eq!(parse_cpu_line(line), Some((130, 980)));
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4"), None);
        assert_eq!(parse_cpu_line("intr 1 2"), None);
    }
}
