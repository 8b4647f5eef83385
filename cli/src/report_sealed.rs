//! `ladder predict SWEEP`: a sweep's sealed targets, each law's locked prediction with its 95%
//! prediction interval, the naive baselines, and once a target has succeeded its measured loss,
//! each prediction's error, whether its interval covered it, and its error against persistence's.
use std::fmt::Write;

use ladder_analysis::backtest::Bias;
use ladder_analysis::predict::num;
use ladder_analysis::sealed::{LockCause, Predictions, TargetScore};

use crate::table::render;

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |e| format!("{:+.2}%", 100.0 * e))
}

/// Unix milliseconds as a UTC date and time.
fn when(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// What the backtest of the fitted runs said of each law at the lock: from 0.5 decades of N
/// where its predictions reached that far, else over all of them.
fn backtest(out: &mut String, record: &[Bias]) {
    if record.is_empty() {
        let _ = writeln!(out, "  backtest at the lock: none (it needs at least 4 fitted sizes)");
        return;
    }
    let _ = writeln!(out, "  backtest at the lock (refits on the smallest sizes, predicting each larger one):");
    for all in record.iter().filter(|b| b.from == 0.0) {
        let b = record.iter().find(|b| b.law == all.law && b.from > 0.0).unwrap_or(all);
        let from = if b.from > 0.0 { format!("from {} decades of N", b.from) } else { "at every distance".into() };
        let held = b.coverage.map_or("no intervals".into(), |c| format!("intervals held {:.0}%", 100.0 * c));
        let flag = if b.under_covered() { ": too narrow" } else { "" };
        let _ = writeln!(
            out,
            "    {:<12} {from}: {held} of {}{flag}; {} above the measured loss, {} below, mean error {:+.2}%",
            b.law.to_string(),
            b.rows,
            b.high,
            b.low,
            100.0 * b.mean_error
        );
    }
}

/// The predictions as text.
pub fn text(p: &Predictions) -> String {
    let mut out = String::new();
    let n = p.targets.len();
    let _ = write!(out, "sweep {}: {n} sealed target{}", p.sweep, if n == 1 { "" } else { "s" });
    match &p.lock {
        None => {
            let _ = writeln!(
                out,
                "; predictions not locked yet: they lock once every job the fits use has ended, or with \
                 `ladder predict {} --lock`. Until then no target's loss can be read.",
                p.sweep
            );
        }
        Some(l) => {
            let cause = match l.cause {
                LockCause::FitsEnded => "every job the fits use had ended",
                LockCause::Asked => "`ladder predict --lock`",
            };
            let _ =
                writeln!(out, "; predictions locked {} ({cause}), fitted on {} runs", when(l.locked_ms), l.fitted_runs);
            let _ = writeln!(out, "  options sha256 {}\n  points sha256  {}", l.options_sha256, l.points_sha256);
            match p.revealed_ms {
                Some(ms) => {
                    let _ = writeln!(out, "  a target was first read {}: the lock is final", when(ms));
                }
                None => {
                    let _ = writeln!(out, "  no target has been read since: `--lock` may still replace it");
                }
            }
            backtest(&mut out, &l.backtest);
            if let Some(a) = &l.additivity {
                crate::report_additivity::text(&mut out, "  Chinchilla's additivity at the lock", a, None);
            }
        }
    }
    for t in &p.targets {
        target(&mut out, t);
    }
    out
}

fn target(out: &mut String, t: &TargetScore) {
    let g = &t.target;
    let measured = t.measured.map_or_else(|| t.state.name().to_string(), |m| format!("measured {m:.4}"));
    let _ = writeln!(
        out,
        "\ntarget job {}: {} (N = {}, D = {}, C = {}): {measured}",
        g.job,
        g.label,
        num(g.n),
        num(g.d),
        num(g.c)
    );
    if t.laws.is_empty() {
        return;
    }
    let mut rows: Vec<Vec<String>> = t
        .laws
        .iter()
        .map(|l| {
            let band = match (l.predicted.lo, l.predicted.hi) {
                (Some(lo), Some(hi)) => format!("[{lo:.4}, {hi:.4}]"),
                _ => "-".into(),
            };
            let covered = l.covered.map_or("-", |c| if c { "yes" } else { "no" });
            let vs = l.vs_persistence.map_or("-".into(), |v| format!("{v:.2}"));
            vec![l.law.to_string(), format!("{:.4}", l.predicted.value), band, pct(l.error), covered.into(), vs]
        })
        .collect();
    for (name, v, e) in [
        ("persistence", t.baselines.persistence, t.persistence_error),
        ("two-point line", t.baselines.two_point, t.two_point_error),
    ] {
        if let Some(v) = v {
            rows.push(vec![name.into(), format!("{v:.4}"), "-".into(), pct(e), "-".into(), "-".into()]);
        }
    }
    let header = ["law", "predicted", "95% prediction interval", "error", "covered", "|error| / persistence's"];
    for line in render(&header, &rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn lock_times_print_as_utc_dates() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(1_796_601_600_000 + 3_723_000), "2026-12-07 01:02:03 UTC");
    }
}
