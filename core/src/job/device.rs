//! Devices: what a job asks for ([`DeviceRequest`]) and what a worker's slot is ([`Slot`]). A
//! request of `cuda` means any GPU, everywhere: a slot of any GPU takes it, and a trainer run by
//! hand picks the first. Both are written `cpu`, `cuda:N` (N a GPU index, no leading zeros),
//! and a request also `cuda` or `auto`.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{DomainError, Result};

/// What a job asks to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceRequest {
    /// A GPU when the slot has one, else the CPU: any slot.
    #[default]
    Auto,
    Cpu,
    /// Any GPU.
    AnyGpu,
    /// GPU `i` only.
    Gpu(u32),
}

/// A worker's slot: one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    Cpu,
    Gpu(u32),
}

/// `N` of `cuda:N`, written as GPU indices are: digits without a leading zero.
fn gpu_index(s: &str) -> Option<u32> {
    let i = s.strip_prefix("cuda:")?;
    let canonical = !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) && (i == "0" || !i.starts_with('0'));
    canonical.then(|| i.parse().ok()).flatten()
}

impl FromStr for DeviceRequest {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::AnyGpu),
            other => gpu_index(other).map(Self::Gpu).ok_or_else(|| DomainError::UnknownDevice {
                given: s.to_string(),
                what: "cpu, cuda (any GPU), cuda:N (GPU N) or auto",
            }),
        }
    }
}

impl FromStr for Slot {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "cpu" => Ok(Self::Cpu),
            other => gpu_index(other)
                .map(Self::Gpu)
                .ok_or_else(|| DomainError::UnknownDevice { given: s.to_string(), what: "a slot: cpu or cuda:N" }),
        }
    }
}

impl fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::AnyGpu => f.write_str("cuda"),
            Self::Gpu(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Gpu(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceRequest {
    /// Whether a job that asks for this may run on `slot`.
    pub fn fits(self, slot: Slot) -> bool {
        match (self, slot) {
            (Self::Auto, _) | (Self::Cpu, Slot::Cpu) | (Self::AnyGpu, Slot::Gpu(_)) => true,
            (Self::Gpu(want), Slot::Gpu(i)) => want == i,
            _ => false,
        }
    }

    /// Whether it can only run on a GPU.
    pub fn needs_gpu(self) -> bool {
        matches!(self, Self::AnyGpu | Self::Gpu(_))
    }
}

impl Serialize for DeviceRequest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Slot {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Slot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_slots_parse_strictly_and_match_one_way() {
        assert_eq!("cuda:3".parse::<DeviceRequest>().ok(), Some(DeviceRequest::Gpu(3)));
        assert_eq!(" cuda ".parse::<DeviceRequest>().ok(), Some(DeviceRequest::AnyGpu));
        for bad in ["cuda:01", "cuda:x", "cuda:", "cuda:-1", "gpu", "", "cuda:99999999999"] {
            assert!(bad.parse::<DeviceRequest>().is_err(), "{bad:?} must be refused");
        }
        assert!("cuda".parse::<Slot>().is_err() && "auto".parse::<Slot>().is_err(), "a slot is one device");
        let (gpu0, gpu1, cpu) = (Slot::Gpu(0), Slot::Gpu(1), Slot::Cpu);
        assert!(DeviceRequest::AnyGpu.fits(gpu1) && !DeviceRequest::AnyGpu.fits(cpu));
        assert!(DeviceRequest::Gpu(1).fits(gpu1) && !DeviceRequest::Gpu(1).fits(gpu0));
        assert!(DeviceRequest::Auto.fits(cpu) && DeviceRequest::Auto.fits(gpu0) && !DeviceRequest::Cpu.fits(gpu0));
        for d in [DeviceRequest::Auto, DeviceRequest::Cpu, DeviceRequest::AnyGpu, DeviceRequest::Gpu(12)] {
            assert_eq!(d.to_string().parse::<DeviceRequest>().ok(), Some(d), "{d} reads back");
        }
    }
}
