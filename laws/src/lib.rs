//! `ladder-laws`: the pure mathematics of scaling laws: fits of Hoffmann et al. 2022
//! (Chinchilla) and Kaplan et al. 2020 to measured runs. No I/O, no RPC, no libtorch.
pub mod chinchilla;
pub mod error;

pub use chinchilla::{ChinchillaFit, ChinchillaOptions, Run, fit_chinchilla};
pub use error::LawsError;
