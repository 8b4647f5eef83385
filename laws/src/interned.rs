//! Reading back `&'static str` fields (law names, kinds) from JSON: each distinct name is
//! leaked once and shared after, so a process that reads many reports holds each name once.
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Deserializer};

fn intern(s: String) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&n) = names.get(s.as_str()) {
        return n;
    }
    let n: &'static str = Box::leak(s.into_boxed_str());
    names.insert(n);
    n
}

/// `#[serde(deserialize_with = "ladder_laws::interned::name")]`
pub fn name<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    String::deserialize(d).map(intern)
}

/// The same for an optional name.
pub fn name_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
    Option::<String>::deserialize(d).map(|s| s.map(intern))
}

/// A `&'static str` field read back with [`name`]: spelled as this alias, serde does not take
/// it for a string borrowed from the input (which would tie the whole struct to `'static`).
pub type Name = &'static str;
