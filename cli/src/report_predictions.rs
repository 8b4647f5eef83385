//! The parts of a fit report that test the laws beyond their data: the hold-out (each law
//! beside persistence and a two-point line), the backtest (its error against the distance in
//! decades), and `--predict`'s predictions with their 95% prediction intervals.
use std::fmt::Write;

use ladder_analysis::Report;
use ladder_analysis::predict::num;
use ladder_laws::Law;

/// The hold-out: each law's prediction of the sizes left out, with its 95% prediction interval,
/// and beside it the naive guesses' errors. A law predicted at several D prints one line (its
/// errors' range and the worst) unless `verbose`.
pub fn holdout(out: &mut String, r: &Report, verbose: bool) {
    if r.holdout.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nHold-out: each law refitted without the largest size(s), predicting them (95% prediction intervals);\n\
         beside each, two naive guesses: persistence (the largest fitted size's loss at that D, or the largest fitted \
         compute's) and a line in log-log through the two largest:"
    );
    let mut laws: Vec<Law> = Vec::new();
    for h in &r.holdout {
        if !laws.contains(&h.law) {
            laws.push(h.law);
        }
    }
    for law in laws {
        let rows: Vec<_> = r.holdout.iter().filter(|h| h.law == law).collect();
        let covered = rows.iter().filter(|h| h.error.lo <= 0.0 && 0.0 <= h.error.hi).count();
        if verbose || rows.len() == 1 {
            for h in &rows {
                let _ = writeln!(
                    out,
                    "  {:<26} at {:<10} measured {:.4}, predicted {:.4}: error {:+.2}% [{:+.2}%, {:+.2}%]",
                    h.label(),
                    num(h.x),
                    h.actual,
                    h.predicted,
                    100.0 * h.error.value,
                    100.0 * h.error.lo,
                    100.0 * h.error.hi
                );
            }
        } else if let Some(w) = rows.iter().max_by(|a, b| a.error.value.abs().total_cmp(&b.error.value.abs())) {
            let (lo, hi) = rows
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), h| (a.min(h.error.value), b.max(h.error.value)));
            let _ = writeln!(
                out,
                "  {:<26} at {:<10} {} points: error {:+.2}% to {:+.2}%, worst {}; {covered} of {} within their interval (--verbose lists each)",
                law.to_string(),
                num(w.x),
                rows.len(),
                100.0 * lo,
                100.0 * hi,
                w.label(),
                rows.len()
            );
        }
        if let Some(line) = against_baselines(&rows) {
            let _ = writeln!(out, "  {:<26} {line}", "");
        }
    }
}

/// A law's mean |error| on the held-out points against persistence's and the two-point line's on
/// the same points; None where no point has a persistence baseline.
fn against_baselines(rows: &[&ladder_laws::HoldoutError]) -> Option<String> {
    let with: Vec<_> = rows.iter().filter(|h| h.baselines.persistence.is_some()).collect();
    if with.is_empty() {
        return None;
    }
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let law = mean(with.iter().map(|h| h.error.value.abs()).collect());
    let persistence = mean(with.iter().filter_map(|h| h.baseline_errors().0).collect());
    let two: Vec<f64> = with.iter().filter_map(|h| h.baseline_errors().1).collect();
    let two =
        if two.len() == with.len() { format!(", two-point line {:.2}%", 100.0 * mean(two)) } else { String::new() };
    Some(format!(
        "mean |error| {:.2}% vs persistence {:.2}%: ratio {:.2}{two}",
        100.0 * law,
        100.0 * persistence,
        law / persistence
    ))
}

/// `--predict`: each law's prediction and its 95% prediction interval.
pub fn predictions_text(at: &str, p: &std::collections::BTreeMap<Law, ladder_laws::Estimate>) -> String {
    let mut out = format!(
        "\nPredictions at {at} (95% prediction intervals: the law's bootstrap spread and a run's scatter about it):\n"
    );
    for (law, e) in p {
        let interval = if e.lo.is_finite() && e.hi.is_finite() {
            format!("[{:.4}, {:.4}]", e.lo, e.hi)
        } else {
            "(no interval: fitted without resamples)".to_string()
        };
        let _ = writeln!(out, "  {:<12} {:.4}  {interval}", law.to_string(), e.value);
    }
    out
}

/// Each law whose intervals held too few of its backtest's predictions from 0.5 decades of N on,
/// with the sign of its errors: a mean |error| hides whether a law errs one way.
fn bias(out: &mut String, record: &[ladder_analysis::backtest::Bias]) {
    for b in record.iter().filter(|b| b.from > 0.0 && b.under_covered()) {
        let sides = match (b.one_sided(), b.high >= b.low) {
            (true, true) => format!("{} of them above the measured loss", b.high),
            (true, false) => format!("{} of them below the measured loss", b.low),
            (false, _) => format!("{} above the measured loss and {} below", b.high, b.low),
        };
        let held = b.coverage.map_or("are missing".to_string(), |c| format!("held {:.0}%", 100.0 * c));
        let _ = writeln!(
            out,
            "  {}: from {} decades of N on, its 95% intervals {held} of {} predictions ({sides}, \
             mean error {:+.2}%): too narrow at these distances.",
            b.law,
            b.from,
            b.rows,
            100.0 * b.mean_error
        );
    }
}

/// `--backtest`: per law and distance bin, the mean |error| beside persistence's and the
/// two-point line's, and the intervals' coverage; `verbose` lists every prediction.
pub fn backtest(out: &mut String, r: &Report, verbose: bool) {
    if r.backtest.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nBacktest: each law refitted on the k smallest sizes (k = {} to {}), predicting every larger size:",
        r.backtest.iter().map(|b| b.sizes_fitted).min().unwrap_or(0),
        r.backtest.iter().map(|b| b.sizes_fitted).max().unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "  {:<12} {:<14} {:>5} {:>10} {:>12} {:>7} {:>10} {:>9}",
        "law", "decades of N", "preds", "|error|", "persistence", "ratio", "two-point", "coverage"
    );
    // A report read back from JSON has no bins (they are written, not read): summarise again.
    let bins = if r.backtest_bins.is_empty() {
        ladder_analysis::backtest::summarise(&r.backtest)
    } else {
        r.backtest_bins.clone()
    };
    for b in &bins {
        let to = if b.to.is_finite() { format!("{:.2}", b.to) } else { "".to_string() };
        let pct = |v: f64| if v.is_finite() { format!("{:.2}%", 100.0 * v) } else { "-".to_string() };
        let ratio = b.law_error / b.persistence_error;
        let ratio = if ratio.is_finite() { format!("{ratio:.2}") } else { "-".to_string() };
        let coverage = if b.coverage.is_finite() { format!("{:.0}%", 100.0 * b.coverage) } else { "-".to_string() };
        let _ = writeln!(
            out,
            "  {:<12} {:<14} {:>5} {:>10} {:>12} {:>7} {:>10} {:>9}",
            b.law.to_string(),
            format!("{:.2}-{to}", b.from),
            b.rows,
            pct(b.law_error),
            pct(b.persistence_error),
            ratio,
            pct(b.two_point_error),
            coverage
        );
    }
    bias(out, &r.backtest_record);
    if verbose {
        for b in &r.backtest {
            let c = if b.decades_c.is_finite() { format!(", {:+.2} decades of C", b.decades_c) } else { String::new() };
            let _ = writeln!(
                out,
                "  {} sizes fitted: {:<26} at {:<10} {:+.2} decades of N{c}: error {:+.2}% [{:+.2}%, {:+.2}%]",
                b.sizes_fitted,
                b.score.label(),
                num(b.score.x),
                b.decades_n,
                100.0 * b.score.error.value,
                100.0 * b.score.error.lo,
                100.0 * b.score.error.hi
            );
        }
    } else {
        let _ = writeln!(out, "  (--verbose lists each prediction with its distance in N and in compute)");
    }
}
