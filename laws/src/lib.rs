//! `ladder-laws`: the pure mathematics of scaling laws: fits of Hoffmann et al. 2022
//! (Chinchilla) and Kaplan et al. 2020 to measured runs, with bootstrap confidence intervals.
//! No I/O, no RPC, no libtorch.
pub mod additivity;
pub mod bcrit;
pub mod bootstrap;
pub mod chinchilla;
pub mod contradiction;
pub mod error;
pub mod form;
pub mod frontier;
pub mod holdout;
pub mod interval;
pub mod kaplan;
pub mod law;
pub mod optimize;
pub mod power;
pub mod range;
pub mod residual;

pub use additivity::{Additivity, SizeGain, additivity};
pub use bcrit::{BcritAtLoss, BcritLaw, c_min, fit_bcrit_at, fit_bcrit_law, s_min, steps_to_loss};
pub use bootstrap::{Bootstrap, Estimate, Resampled, SplitMix64, Tally, Unit};
pub use chinchilla::{
    ChinchillaFit, ChinchillaOptions, Run, chinchilla_band, chinchilla_bootstrap, chinchilla_draws,
    chinchilla_interval, chinchilla_intervals, chinchilla_resampled, compute_optimal, fit_chinchilla,
};
pub use contradiction::{Contradiction, contradiction};
pub use error::LawsError;
pub use form::{Floor, FormChoice, aicc};
pub use frontier::{ComputeCurve, Frontier, FrontierPoint, IsoFlop, fit_frontier, loss_at};
pub use holdout::{Baselines, HoldoutError, relative_error};
pub use interval::{prediction_interval, residual_sd};
pub use kaplan::{TwoVarLaw, fit_l_nd, fit_l_ns, published};
pub use law::{Law, LawInfo};
pub use optimize::r_squared;
pub use power::{PowerLaw, fit_power_law};
pub use range::FitRange;
pub use residual::{WorstPoint, worst_point};
