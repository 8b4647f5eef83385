//! Counts as TOML and JSON write them: an integer, or an integral float (`2e8`), never negative
//! or fractional.
use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum CountNum {
    Int(i64),
    Float(f64),
}

impl CountNum {
    fn count<E: serde::de::Error>(self) -> std::result::Result<u64, E> {
        match self {
            CountNum::Int(i) if i >= 0 => Ok(i as u64),
            CountNum::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(f as u64),
            CountNum::Int(i) => Err(E::custom(format!("expected a count >= 0, got {i}"))),
            CountNum::Float(f) => Err(E::custom(format!("expected a whole count >= 0, got {f}"))),
        }
    }
}

/// `#[serde(deserialize_with = "count")]`: a count written as an integer or an integral float.
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    CountNum::deserialize(d)?.count()
}

/// An optional count; absent or null is None.
pub(super) fn opt_count<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    Option::<CountNum>::deserialize(d)?.map(CountNum::count).transpose()
}
