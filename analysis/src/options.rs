//! How to fit ([`Options`]), and the context a fit carries while it runs: the bootstrap, and
//! the list of laws it could not fit with the reason for each.
use ladder_laws::{Bootstrap, Floor, Law, PowerLaw, fit_power_law};
use serde::Serialize;

/// A law that was not fitted, and why.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Skipped {
    pub law: Law,
    pub reason: String,
}

/// How to fit.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Bootstrap resamples for the intervals (at least 20 are drawn).
    pub bootstrap: usize,
    /// The fewest resamples for the one-variable laws, whose fits are cheap (a point per size):
    /// `ladder fit` draws [`CHEAP_RESAMPLES`], where percentile intervals from 200 would rest on
    /// 5 draws in each tail; the coordinator's live fits, refitted every few seconds, none extra.
    pub cheap_resamples: usize,
    /// An irreducible term E in L(N), L(D), L(C), L(C_min) and L(N,D): chosen by AICc (the
    /// default), always, or never.
    pub floor: Floor,
    /// Leave out the K highest-loss runs from the Chinchilla fit.
    pub exclude_top: usize,
    /// The fits leave out model sizes with fewer layers than this (None: [`MIN_LAYERS`]; runs
    /// of unknown depth stay in).
    pub min_layers: Option<u32>,
    /// Refit without the K largest model sizes and score each law on them.
    pub holdout: Option<usize>,
    /// Refit on the k smallest sizes for every k and score each law on every larger size.
    pub backtest: bool,
    /// Laws that must be fitted.
    pub law: Vec<Law>,
    /// The CBS rule's token overhead (None: [`crate::cbs::OVERHEAD`], 20%).
    pub cbs_overhead: Option<f64>,
}

/// The fits leave out 1-layer models: Kaplan et al. 2020 (Fig. 6) find them off the trend that
/// deeper models share, and on the demo sweeps' backtests every law extrapolates better without
/// them (docs/predictable-demo.md).
pub const MIN_LAYERS: u32 = 2;

impl Options {
    /// The fewest layers a fitted size has.
    pub fn min_layers(&self) -> u32 {
        self.min_layers.unwrap_or(MIN_LAYERS)
    }
}

/// What `ladder fit` draws for the one-variable laws at least.
pub const CHEAP_RESAMPLES: usize = 1000;

/// Where fitting laws notes what it could not fit.
pub(crate) struct Ctx<'a> {
    pub boot: Bootstrap,
    pub floor: Floor,
    pub cheap_resamples: usize,
    pub skipped: &'a mut Vec<Skipped>,
}

impl Ctx<'_> {
    pub fn skip(&mut self, law: Law, reason: impl Into<String>) {
        self.skipped.push(Skipped { law, reason: reason.into() });
    }

    /// A one-variable law; with an irreducible term as `floor` says, and at least
    /// `cheap_resamples` resamples.
    pub(crate) fn power(&mut self, law: Law, x: &[f64], y: &[f64]) -> Option<PowerLaw> {
        let boot = Bootstrap { resamples: self.boot.resamples.max(self.cheap_resamples), ..self.boot };
        match fit_power_law(law, x, y, self.floor, &boot) {
            Ok(f) => Some(f),
            Err(e) => {
                self.skip(law, e.to_string());
                None
            }
        }
    }

    /// A one-variable law over `(x, y)` when it has ≥ 3 distinct x.
    pub(crate) fn power_of(&mut self, law: Law, x: &[f64], y: &[f64]) -> Option<PowerLaw> {
        if x.len() >= 3 {
            self.power(law, x, y)
        } else {
            self.skip(law, format!("{} distinct {}; needs ≥ 3", x.len(), law.variables().0));
            None
        }
    }
}
