//! `ladder fit --backtest`: every law refitted on the k smallest model sizes, for every k from
//! the least the laws need to one fewer than all, and asked to predict every larger size. Each
//! prediction is scored by its distance beyond what was fitted, in decades of N and of compute
//! (6·N·D), beside persistence's and the two-point line's errors on the same runs, and with
//! whether its 95% prediction interval held the measured loss. One hold-out says how a law did
//! at one distance; a backtest says how its error grows with the distance.

use crate::error::{AnalysisError, Result};
use crate::inputs::Inputs;
use crate::options::Options;
use crate::report::{BacktestRow, Report};
use crate::select::distinct_values;

/// A law's record in a backtest lives with the report that carries it.
pub use crate::report::{BIAS_FROM_DECADES, BIAS_MIN_ROWS, BacktestBin, Bias, ONE_SIDED};

/// The fewest sizes a backtest fits: L(N) needs three points and Chinchilla two sizes.
pub const LEAST_SIZES: usize = 3;

/// Refits on the k smallest sizes for every k ≥ [`LEAST_SIZES`] below all of them and scores
/// each law on every larger size (`refit` is the pipeline without a hold-out or backtest).
pub fn backtest(
    inputs: &Inputs,
    full: &Report,
    opts: &Options,
    refit: impl Fn(&Inputs, &Options) -> Result<Report> + Copy,
) -> Result<Vec<BacktestRow>> {
    let deep = inputs.deep_enough(opts.min_layers());
    let inputs = &*deep;
    let sizes = distinct_values(inputs.runs.iter().filter_map(|r| r.n));
    if sizes.len() <= LEAST_SIZES {
        return Err(AnalysisError::input(
            "--backtest",
            format!(
                "{} has {} model sizes; a backtest fits at least {LEAST_SIZES} and predicts a larger one",
                inputs.source,
                sizes.len()
            ),
        ));
    }
    let mut rows = Vec::new();
    for k in LEAST_SIZES..sizes.len() {
        let n_max = sizes[k - 1];
        let c_max = inputs
            .runs
            .iter()
            .filter(|r| r.n.is_some_and(|n| n <= n_max))
            .filter_map(|r| Some(6.0 * r.n? * r.d?))
            .fold(f64::NAN, f64::max);
        // A refit that cannot be made on this few sizes leaves its k out; the others go on.
        let scored = match crate::holdout::holdout(inputs, full, opts, sizes.len() - k, refit) {
            Ok(s) => s,
            Err(AnalysisError::NoFit(_)) => continue,
            Err(e) => return Err(e),
        };
        // L(C_min) predicts one point on its own compute axis: the hold-out reports it.
        for score in scored.into_iter().filter(|s| s.law != ladder_laws::Law::CMin) {
            let decades_n = (score.x / n_max).log10();
            let decades_c = score.x2.map_or(f64::NAN, |d| (6.0 * score.x * d / c_max).log10());
            rows.push(BacktestRow { sizes_fitted: k, decades_n, decades_c, score });
        }
    }
    Ok(rows)
}

/// The bins' edges, in decades.
pub const BINS: [(f64, f64); 4] = [(0.0, 0.25), (0.25, 0.5), (0.5, 1.0), (1.0, f64::INFINITY)];

/// Each law's rows summarised per distance bin, in the order the laws first appear.
pub fn summarise(rows: &[BacktestRow]) -> Vec<BacktestBin> {
    let laws = laws_of(rows.iter());
    let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
    let mut out = Vec::new();
    for law in laws {
        for (from, to) in BINS {
            let at: Vec<&BacktestRow> =
                rows.iter().filter(|r| r.score.law == law && (from..to).contains(&r.decades_n)).collect();
            if at.is_empty() {
                continue;
            }
            let errs: Vec<f64> = at.iter().map(|r| r.score.error.value.abs()).collect();
            let pers: Vec<f64> = at.iter().filter_map(|r| r.score.baseline_errors().0).collect();
            let two: Vec<f64> = at.iter().filter_map(|r| r.score.baseline_errors().1).collect();
            out.push(BacktestBin {
                law,
                from,
                to,
                rows: at.len(),
                law_error: mean(&errs),
                persistence_error: mean(&pers),
                two_point_error: mean(&two),
                coverage: coverage(at.iter().map(|r| &r.score.error)).unwrap_or(f64::NAN),
            });
        }
    }
    out
}

/// Each law's [`Bias`] over the rows at least `from` decades of N beyond the fit, in the order
/// the laws first appear.
pub fn biases(rows: &[BacktestRow], from: f64) -> Vec<Bias> {
    let far: Vec<&BacktestRow> =
        rows.iter().filter(|r| r.decades_n >= from && r.score.error.value.is_finite()).collect();
    laws_of(far.iter().copied())
        .into_iter()
        .map(|law| {
            let errors: Vec<&ladder_laws::Estimate> =
                far.iter().filter(|r| r.score.law == law).map(|r| &r.score.error).collect();
            Bias {
                law,
                from,
                rows: errors.len(),
                high: errors.iter().filter(|e| e.value > 0.0).count(),
                low: errors.iter().filter(|e| e.value < 0.0).count(),
                mean_error: errors.iter().map(|e| e.value).sum::<f64>() / errors.len() as f64,
                coverage: coverage(errors.iter().copied()),
                too_narrow: false,
            }
            .judged()
        })
        .collect()
}

/// Each law's record in a backtest of `rows`: over all its predictions, then from
/// [`BIAS_FROM_DECADES`] of N on (where it reached that far). A lock keeps it.
pub fn record(rows: &[BacktestRow]) -> Vec<Bias> {
    [0.0, BIAS_FROM_DECADES].into_iter().flat_map(|from| biases(rows, from)).collect()
}

/// The share of `errors` with a 95% interval whose interval held the measured loss (error 0);
/// None where none has an interval.
fn coverage<'a>(errors: impl Iterator<Item = &'a ladder_laws::Estimate>) -> Option<f64> {
    let (mut with_interval, mut held) = (0usize, 0usize);
    for e in errors.filter(|e| e.lo.is_finite() && e.hi.is_finite()) {
        with_interval += 1;
        held += usize::from(e.lo <= 0.0 && 0.0 <= e.hi);
    }
    (with_interval > 0).then(|| held as f64 / with_interval as f64)
}

/// The laws of `rows`, in the order they first appear.
fn laws_of<'a>(rows: impl Iterator<Item = &'a BacktestRow>) -> Vec<ladder_laws::Law> {
    let mut laws = Vec::new();
    for r in rows {
        if !laws.contains(&r.score.law) {
            laws.push(r.score.law);
        }
    }
    laws
}
