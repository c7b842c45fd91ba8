//! The measurement loop every system goes through: grow to k - 1 present
//! attachments, then time attaching and detaching the k-th one several
//! times, for each k, until the system's time budget would be exceeded.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One system under test, driven by attachment index.
pub trait Subject {
    /// Untimed preparation of attachment `i` (e.g. the namespace a runtime
    /// would hand over).
    fn prepare(&mut self, i: usize) -> Result<()>;
    /// The timed setup of attachment `i`.
    fn attach(&mut self, i: usize) -> Result<()>;
    /// The timed teardown of attachment `i`.
    fn detach(&mut self, i: usize) -> Result<()>;
    /// Untimed removal of what `prepare` made.
    fn unprepare(&mut self, i: usize) -> Result<()>;
    /// Called at each level after the fill and before the timed runs, with
    /// the number of attachments present; extra measurements go in `point`.
    fn at_level(&mut self, _present: usize, _point: &mut Point) -> Result<()> {
        Ok(())
    }
}

/// Medians at one k.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub k: usize,
    pub attach_ms: f64,
    pub detach_ms: f64,
    pub reps: usize,
    /// Further medians measured at this k, by name (ms unless named).
    pub extra: Vec<(String, f64)>,
}

/// A system's figures over k.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    pub system: String,
    pub points: Vec<Point>,
    /// Why the series stops before the largest k, if it does.
    pub stopped: Option<String>,
}

pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the levels for one subject. `budget` bounds the time spent filling
/// and measuring; a level whose fill is predicted to overrun it is skipped
/// and the series says so.
pub fn run(
    system: &str,
    subject: &mut dyn Subject,
    levels: &[usize],
    reps: usize,
    budget: Duration,
) -> Result<Series> {
    let start = Instant::now();
    let mut present = 0usize;
    let mut per_attach = Duration::from_millis(1);
    let mut series = Series {
        system: system.to_string(),
        points: Vec::new(),
        stopped: None,
    };
    for &k in levels {
        let to_fill = k.saturating_sub(1).saturating_sub(present);
        let predicted = per_attach * to_fill as u32;
        if start.elapsed() + predicted > budget {
            series.stopped = Some(format!(
                "k = {k} not reached: filling {to_fill} more at {:.1} ms each would overrun the {} s budget",
                ms(per_attach),
                budget.as_secs()
            ));
            eprintln!(
                "[{system}] {}",
                series.stopped.as_deref().unwrap_or_default()
            );
            break;
        }
        if to_fill > 0 {
            eprintln!("[{system}] filling to {} present ...", k - 1);
        }
        let fill_start = Instant::now();
        let mut last_report = Instant::now();
        while present < k - 1 {
            subject
                .prepare(present)
                .with_context(|| format!("{system}: prepare #{present}"))?;
            subject
                .attach(present)
                .with_context(|| format!("{system}: attach #{present} (fill)"))?;
            present += 1;
            if last_report.elapsed() > Duration::from_secs(10) {
                eprintln!("[{system}]   {present} / {}", k - 1);
                last_report = Instant::now();
            }
        }
        if to_fill > 0 {
            per_attach = fill_start.elapsed() / to_fill as u32;
            // The kernel works on for seconds after a fill (each sandbox's
            // delayed multicast reports, deferred frees): nothing is timed
            // before it is done.
            crate::settle::wait_until_quiet();
        }
        let mut point = Point {
            k,
            attach_ms: 0.0,
            detach_ms: 0.0,
            reps,
            extra: Vec::new(),
        };
        subject.at_level(present, &mut point)?;
        let i = present;
        subject
            .prepare(i)
            .with_context(|| format!("{system}: prepare #{i}"))?;
        let (mut attach, mut detach) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let t0 = Instant::now();
            subject
                .attach(i)
                .with_context(|| format!("{system}: attach #{i} at k = {k}"))?;
            let t1 = Instant::now();
            subject
                .detach(i)
                .with_context(|| format!("{system}: detach #{i} at k = {k}"))?;
            attach.push(ms(t1 - t0));
            detach.push(ms(t1.elapsed()));
        }
        subject.unprepare(i)?;
        point.attach_ms = median(&mut attach);
        point.detach_ms = median(&mut detach);
        eprintln!(
            "[{system}] k = {k}: attach {:.2} ms, detach {:.2} ms (medians of {reps})",
            point.attach_ms, point.detach_ms
        );
        per_attach = per_attach.max(Duration::from_secs_f64(point.attach_ms / 1000.0));
        series.points.push(point);
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    /// Records calls; attach of index 7 fails once to test the error path.
    struct Recorder {
        calls: Vec<String>,
    }

    impl Subject for Recorder {
        fn prepare(&mut self, i: usize) -> Result<()> {
            self.calls.push(format!("prepare {i}"));
            Ok(())
        }
        fn attach(&mut self, i: usize) -> Result<()> {
            self.calls.push(format!("attach {i}"));
            Ok(())
        }
        fn detach(&mut self, i: usize) -> Result<()> {
            self.calls.push(format!("detach {i}"));
            Ok(())
        }
        fn unprepare(&mut self, i: usize) -> Result<()> {
            self.calls.push(format!("unprepare {i}"));
            Ok(())
        }
    }

    #[test]
    fn fills_to_k_minus_one_then_times_the_kth() {
        let mut r = Recorder { calls: Vec::new() };
        let s = run("rec", &mut r, &[1, 3], 2, Duration::from_secs(60)).unwrap();
        assert_eq!(s.points.len(), 2);
        assert_eq!(
            r.calls,
            [
                // k = 1: nothing present, index 0 timed twice.
                "prepare 0",
                "attach 0",
                "detach 0",
                "attach 0",
                "detach 0",
                "unprepare 0",
                // k = 3: 0 and 1 filled, index 2 timed.
                "prepare 0",
                "attach 0",
                "prepare 1",
                "attach 1",
                "prepare 2",
                "attach 2",
                "detach 2",
                "attach 2",
                "detach 2",
                "unprepare 2",
            ]
        );
    }

    #[test]
    fn a_level_beyond_the_budget_is_reported_not_run() {
        let mut r = Recorder { calls: Vec::new() };
        let s = run(
            "rec",
            &mut r,
            &[1, 1_000_000_000],
            1,
            Duration::from_millis(1),
        )
        .unwrap();
        assert_eq!(s.points.len(), 1);
        assert!(s.stopped.unwrap().contains("not reached"));
    }
}
