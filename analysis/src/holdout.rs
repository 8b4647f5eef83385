//! `ladder fit --holdout K`: every law refitted without the runs of the K largest model sizes,
//! then scored on them: the relative error of its prediction for each held-out run, with the
//! interval that the refit's bootstrap band gives. The check to run before trusting an
//! extrapolation.
use ladder_laws::{HoldoutError, Law, chinchilla_band};

use crate::error::{AnalysisError, Result};
use crate::inputs::Inputs;
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
    };
    let sub_opts = Options { holdout: None, law: Vec::new(), ..opts.clone() };
    let fit = refit(&sub, &sub_opts).map_err(|e| match e {
        AnalysisError::NoFit(m) => AnalysisError::NoFit(format!("--holdout {k}: {m}")),
        other => other,
    })?;

    let mut out = Vec::new();
    if let Some(law) = &fit.l_n {
        // The held-out sizes' points of the full L(N) fit: what the refit should predict.
        for &(n, loss) in full.l_n_points.iter().filter(|p| held.contains(&p.0)) {
            out.push(HoldoutError::new(Law::N, (n, None), loss, law.predict(n), law.band(n)));
        }
    }
    // L(N, D) and Chinchilla describe the runs at the shared batch size, as they were fitted.
    let held_runs: Vec<_> =
        inputs.runs.iter().filter(|r| is_held(r.n) && (full.base_batch.is_none() || r.b == full.base_batch)).collect();
    for r in &held_runs {
        let (Some(n), Some(d)) = (r.n, r.d) else { continue };
        if let Some(law) = &fit.l_nd {
            out.push(HoldoutError::new(Law::ND, (n, Some(d)), r.loss, law.predict(n, d), law.band(n, d)));
        }
        if let Some(ch) = &fit.chinchilla {
            let band = chinchilla_band(&ch.draws, n, d);
            out.push(HoldoutError::new(Law::Chinchilla, (n, Some(d)), r.loss, ch.fit.predict(n, d), band));
        }
    }
    if let (Some(all), Some(part)) = (&full.frontier, &fit.frontier)
        && let Some(last) = all.envelope.last()
    {
        let c = last.compute;
        out.push(HoldoutError::new(Law::CMin, (c, None), last.loss, part.l_cmin.predict(c), part.l_cmin.band(c)));
    }
    Ok(out)
}
