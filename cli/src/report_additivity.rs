//! The test of Chinchilla's additivity in words: each size's gain from D_lo to D_hi, its slope
//! against log N, and what a rejection means for Chinchilla's predictions. `ladder fit` prints it
//! under Chinchilla's constants, `ladder predict` as it stood at the lock.
use std::fmt::Write;

use ladder_analysis::predict::num;
use ladder_laws::{Additivity, Law};

/// `{lead} rejected|holds: …`, and when rejected the line that says which way Chinchilla will
/// err; `fitted`: Chinchilla's own fall over the same D, where it was fitted.
pub fn text(out: &mut String, lead: &str, a: &Additivity, fitted: Option<f64>) {
    let (Some(first), Some(last)) = (a.sizes.first(), a.sizes.last()) else { return };
    let s = &a.slope;
    let verdict = if a.rejected { "rejected" } else { "holds" };
    let fit = fitted.map_or(String::new(), |f| format!("; the fit's fall is {f:.3} at every N"));
    let _ = writeln!(
        out,
        "{lead} {verdict}: from D = {} to {} the loss falls {:.3} at N = {} and {:.3} at N = {} ({} sizes): \
         {:+.3} [{:+.3}, {:+.3}] nats per decade of N{fit}",
        num(a.d_lo),
        num(a.d_hi),
        first.gain,
        num(first.n),
        last.gain,
        num(last.n),
        a.sizes.len(),
        s.value,
        s.lo,
        s.hi,
    );
    if a.rejected {
        let (who, way) = if s.value > 0.0 { ("larger", "over") } else { ("smaller", "under") };
        // Kaplan's coupled form lets larger sizes gain more, never less.
        let coupled = if s.value > 0.0 { format!(" ({} couples N and D)", Law::ND) } else { String::new() };
        let pad = " ".repeat(lead.len() - lead.trim_start().len());
        let _ = writeln!(
            out,
            "{pad}{who} sizes gain more from data than an additive form allows: expect {} to {way}-predict \
             sizes beyond the fitted ones at large D{coupled}",
            Law::Chinchilla,
        );
    }
}
