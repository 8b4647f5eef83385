//! `ladder fit --holdout K`: every law refitted without the runs of the K largest model sizes,
//! then scored on them: the relative error of its prediction for each held-out run, with the
//! refit's 95% prediction interval, beside what persistence and a two-point line in log–log
//! predicted from the same fitted runs. The check to run before trusting an extrapolation.
use ladder_laws::{Baselines, HoldoutError, Law, chinchilla_interval};

use crate::error::{AnalysisError, Result};
use crate::inputs::{Inputs, RunPoint};
use crate::options::Options;
use crate::report::Report;
use crate::select::distinct_values;

/// Refits (with `refit`) without the K largest sizes and scores each law on the runs left out.
pub fn holdout(
    inputs: &Inputs,
    full: &Report,
    opts: &Options,
    k: usize,
    refit: impl Fn(&Inputs, &Options) -> Result<Report>,
) -> Result<Vec<HoldoutError>> {
    // The sizes the full fit left out stay out of the refit's count and points.
    let deep = inputs.deep_enough(opts.min_layers());
    let inputs = &*deep;
    let sizes = distinct_values(inputs.runs.iter().filter_map(|r| r.n));
    if k == 0 || k >= sizes.len() {
        return Err(AnalysisError::input(
            "--holdout",
            format!(
                "{k} must leave at least one of the {} model sizes of {} to fit: give 1 to {}",
                sizes.len(),
                inputs.source,
                sizes.len().saturating_sub(1)
            ),
        ));
    }
    let held = &sizes[sizes.len() - k..];
    let is_held = |n: Option<f64>| n.is_some_and(|n| held.contains(&n));
    let sub = Inputs {
        source: format!("{} without its {k} largest size(s)", inputs.source),
        runs: inputs.runs.iter().filter(|r| !is_held(r.n)).cloned().collect(),
        curves: inputs.curves.iter().filter(|c| !held.contains(&c.n)).cloned().collect(),
        excluded: Vec::new(),
        windows: inputs.windows.iter().filter(|w| !held.contains(&w.n)).cloned().collect(),
        compute: inputs.compute,
        shallow_sizes: inputs.shallow_sizes.clone(),
    };
    let sub_opts = Options { holdout: None, backtest: false, law: Vec::new(), ..opts.clone() };
    let fit = refit(&sub, &sub_opts).map_err(|e| match e {
        AnalysisError::NoFit(m) => AnalysisError::NoFit(format!("--holdout {k}: {m}")),
        other => other,
    })?;

    let mut out = Vec::new();
    if let Some(law) = &fit.l_n {
        // The held-out sizes' points of the full L(N) fit: what the refit should predict.
        let fitted: Vec<(f64, f64)> = full.l_n_points.iter().copied().filter(|p| !held.contains(&p.0)).collect();
        for &(n, loss) in full.l_n_points.iter().filter(|p| held.contains(&p.0)) {
            let baselines = Baselines::from_fitted(fitted.iter().copied(), n);
            out.push(
                HoldoutError::new(Law::N, (n, None), loss, law.predict(n), law.interval(n)).with_baselines(baselines),
            );
        }
    }
    // L(N, D) and Chinchilla describe the runs at the shared batch size, as they were fitted.
    let at_base = |r: &&RunPoint| full.at_base_batch(r);
    let fitted_at = |d: f64| -> Vec<(f64, f64)> {
        inputs
            .runs
            .iter()
            .filter(at_base)
            .filter(|r| !is_held(r.n) && r.d == Some(d))
            .filter_map(|r| Some((r.n?, r.loss)))
            .collect()
    };
    for r in inputs.runs.iter().filter(at_base).filter(|r| is_held(r.n)) {
        let (Some(n), Some(d)) = (r.n, r.d) else { continue };
        let baselines = Baselines::from_fitted(fitted_at(d), n);
        if let Some(law) = &fit.l_nd {
            let e = HoldoutError::new(Law::ND, (n, Some(d)), r.loss, law.predict(n, d), law.interval(n, d));
            out.push(e.with_baselines(baselines));
        }
        if let Some(ch) = &fit.chinchilla {
            let interval = chinchilla_interval(&ch.fit, &ch.draws, n, d);
            let e = HoldoutError::new(Law::Chinchilla, (n, Some(d)), r.loss, ch.fit.predict(n, d), interval);
            out.push(e.with_baselines(baselines));
        }
    }
    if let (Some(all), Some(part)) = (&full.frontier, &fit.frontier)
        && let Some(last) = all.envelope.last()
    {
        let c = last.compute;
        let baselines = Baselines::from_fitted(part.envelope.iter().map(|p| (p.compute, p.loss)), c);
        let e = HoldoutError::new(Law::CMin, (c, None), last.loss, part.l_cmin.predict(c), part.l_cmin.interval(c));
        out.push(e.with_baselines(baselines));
    }
    Ok(out)
}
