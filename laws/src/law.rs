//! The laws, as one type: every fit, skip, hold-out, prediction and plot names its law by a
//! [`Law`], never by a string. Its serde name is how JSON (the report, the page) spells it; with
//! the `clap` feature it is also the value of `--law`; [`Law::formula`] is the one written form
//! the report, the plots and the page print.
use serde::{Deserialize, Serialize};

/// A scaling law, or a measurement the report lists beside the laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Law {
    /// Kaplan eq. 1.1: loss against non-embedding parameters.
    #[serde(rename = "L(N)")]
    N,
    /// Kaplan eq. 1.2: loss against training tokens.
    #[serde(rename = "L(D)")]
    D,
    /// Loss against training compute (CSV points with C).
    #[serde(rename = "L(C)")]
    C,
    /// Kaplan eq. 1.3: the compute frontier's loss against C_min.
    #[serde(rename = "L(C_min)")]
    CMin,
    /// Kaplan eq. 1.5.
    #[serde(rename = "L(N,D)")]
    #[cfg_attr(feature = "clap", value(name = "nd"))]
    ND,
    /// Kaplan eq. 1.6.
    #[serde(rename = "L(N,S)")]
    #[cfg_attr(feature = "clap", value(name = "ns"))]
    NS,
    /// Hoffmann et al. 2022.
    #[serde(rename = "Chinchilla")]
    Chinchilla,
    /// N_opt ∝ C^a along the compute frontier.
    #[serde(rename = "frontier")]
    Frontier,
    /// B_crit at a target loss, from runs that differ only in B (Kaplan eq. 5.4).
    #[serde(rename = "B_crit")]
    #[cfg_attr(feature = "clap", value(name = "bcrit"))]
    BCrit,
    /// Kaplan eq. 1.4.
    #[serde(rename = "B_crit(L)")]
    #[cfg_attr(feature = "clap", value(name = "bcrit-l"))]
    BCritL,
    /// The critical batch size by branching, at each branch point.
    #[serde(rename = "CBS")]
    Cbs,
    /// The CBS against the loss at its branch point.
    #[serde(rename = "CBS(L)")]
    #[cfg_attr(feature = "clap", value(name = "cbs-l"))]
    CbsL,
    /// The CBS against the tokens seen at its branch point.
    #[serde(rename = "CBS(D)")]
    #[cfg_attr(feature = "clap", value(name = "cbs-d"))]
    CbsD,
}

impl Law {
    /// Every law, in the order the report lists them.
    pub const ALL: [Law; 13] = [
        Law::N,
        Law::D,
        Law::C,
        Law::CMin,
        Law::ND,
        Law::NS,
        Law::Chinchilla,
        Law::Frontier,
        Law::BCrit,
        Law::BCritL,
        Law::Cbs,
        Law::CbsL,
        Law::CbsD,
    ];

    /// How it is named in print and in JSON (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            Law::N => "L(N)",
            Law::D => "L(D)",
            Law::C => "L(C)",
            Law::CMin => "L(C_min)",
            Law::ND => "L(N,D)",
            Law::NS => "L(N,S)",
            Law::Chinchilla => "Chinchilla",
            Law::Frontier => "frontier",
            Law::BCrit => "B_crit",
            Law::BCritL => "B_crit(L)",
            Law::Cbs => "CBS",
            Law::CbsL => "CBS(L)",
            Law::CbsD => "CBS(D)",
        }
    }

    /// The variables it is a function of, as printed: ("N", None), ("N", Some("D")), …
    pub fn variables(self) -> (&'static str, Option<&'static str>) {
        match self {
            Law::N => ("N", None),
            Law::D => ("D", None),
            Law::C => ("C", None),
            Law::CMin | Law::Frontier => ("C_min", None),
            Law::ND | Law::Chinchilla => ("N", Some("D")),
            Law::NS => ("N", Some("S")),
            Law::BCrit | Law::BCritL | Law::Cbs | Law::CbsL => ("L", None),
            Law::CbsD => ("D", None),
        }
    }

    /// The right-hand side, with an irreducible loss E when `with_e` (Chinchilla always has one).
    pub fn formula(self, with_e: bool) -> String {
        let reducible = match self {
            Law::N => "(N_c/N)^α_N",
            Law::D => "(D_c/D)^α_D",
            Law::C => "(C_c/C)^α_C",
            Law::CMin => "(C_c/C_min)^α_C",
            Law::ND => "[(N_c/N)^(α_N/α_D) + D_c/D]^α_D",
            Law::NS => "(N_c/N)^α_N + (S_c/S_min)^α_S",
            Law::Chinchilla => return "E + A/N^α + B/D^β".into(),
            Law::Frontier => return "k·C_min^a".into(),
            Law::BCrit => return "E_min/S_min".into(),
            Law::BCritL | Law::CbsL => return "B*/L^(1/α_B)".into(),
            Law::Cbs => return "the largest k·B within the rule's tolerance".into(),
            Law::CbsD => return "k·D^γ".into(),
        };
        if with_e { format!("E + {reducible}") } else { reducible.to_string() }
    }

    /// What the formula gives: the loss for the loss laws, else what the law measures.
    pub fn quantity(self) -> &'static str {
        match self {
            Law::Frontier => "N_opt",
            Law::BCrit | Law::BCritL => "B_crit",
            Law::Cbs | Law::CbsL | Law::CbsD => "CBS",
            _ => "L",
        }
    }

    /// `L(N) = E + (N_c/N)^α_N`: the law's name, then its formula.
    pub fn equation(self, with_e: bool) -> String {
        format!("{} = {}", self.name(), self.formula(with_e))
    }
}

impl std::fmt::Display for Law {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// What the page needs to print one law: its name, formula (with and without E) and variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LawInfo {
    pub law: Law,
    pub quantity: String,
    pub formula: String,
    pub formula_with_e: String,
    pub x: String,
    pub x2: Option<String>,
}

impl From<Law> for LawInfo {
    fn from(l: Law) -> Self {
        let (x, x2) = l.variables();
        LawInfo {
            law: l,
            quantity: l.quantity().to_string(),
            formula: l.formula(false),
            formula_with_e: l.formula(true),
            x: x.to_string(),
            x2: x2.map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_printed_names_and_read_back() {
        for l in Law::ALL {
            let json = serde_json::to_string(&l).expect("json");
            assert_eq!(json, format!("\"{}\"", l.name()));
            assert_eq!(serde_json::from_str::<Law>(&json).expect("reads"), l);
        }
        assert_eq!(Law::ND.equation(true), "L(N,D) = E + [(N_c/N)^(α_N/α_D) + D_c/D]^α_D");
        assert_eq!(Law::Chinchilla.formula(false), "E + A/N^α + B/D^β", "Chinchilla always has E");
    }
}
