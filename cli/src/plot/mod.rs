//! `ladder plot`: log–log charts of a sweep and its fits, each written as SVG and PNG. The
//! figure builders ([`curves`], [`laws`], [`batch`]) are pure functions from the inputs and the
//! report to [`figure::Chart`]s, unit-tested on data; [`render`] draws them with plotters.
use std::path::{Path, PathBuf};

use ladder_analysis::{Inputs, Report};

use crate::error::{CliError, Result};

pub mod batch;
pub mod curves;
pub mod figure;
pub mod laws;
pub mod render;
pub mod style;

/// Every chart the data supports, built but not drawn. A chart with no positive points (e.g.
/// B_simple without gradient accumulation) is left out.
pub(crate) fn charts(inputs: &Inputs, report: &Report) -> Vec<figure::Chart> {
    let mut charts = curves::curve_charts(inputs, report);
    charts.extend(laws::law_charts(inputs, report));
    charts.extend(laws::n_opt_chart(report));
    charts.extend(batch::bcrit_chart(inputs, report));
    charts.extend(laws::kaplan_nd(inputs, report));
    charts.extend(laws::c_vs_cmin(inputs, report));
    charts.retain(|c| c.series.iter().any(|s| s.points.iter().any(figure::positive)));
    charts
}

/// Writes every chart the data supports into `dir`; returns the files written.
pub fn plot_all(inputs: &Inputs, report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
    let mut written = Vec::new();
    for c in charts(inputs, report) {
        written.extend(render::write(dir, &c)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
