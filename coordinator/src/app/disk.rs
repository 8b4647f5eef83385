//! The store's disk, watched so that it never fills: a full disk would fail a commit. Below
//! [`super::Config::min_free_bytes`] free, uploads (checkpoints, datasets) and log lines are
//! refused; below a quarter of it, every write that grows the store is refused (points wait on
//! the workers, who retry; no new lease is granted) while reads, heartbeats and the page go on.
//! Once space is freed, everything goes on by itself.
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::App;
use crate::error::{CoordError, Result};

/// How long a reading of the free space is trusted.
const FRESH: Duration = Duration::from_millis(250);

/// How full the store's disk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Room for everything (or no disk to watch: a store in memory).
    Ample,
    /// Below the floor for uploads: bytes free.
    Low(u64),
    /// Below a quarter of it: bytes free.
    Full(u64),
}

/// The last reading of the free space.
#[derive(Debug, Default)]
pub struct DiskWatch(Mutex<Option<(Instant, u64)>>);

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

impl App {
    /// Bytes free on the store's disk (a reading up to [`FRESH`] old, unless `fresh`); None
    /// without a folder.
    fn free_bytes(&self, fresh: bool) -> Result<Option<u64>> {
        let Some(dir) = &self.cfg.data_dir else { return Ok(None) };
        let mut g = self.disk.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, free)) = *g
            && at.elapsed() < FRESH
            && !fresh
        {
            return Ok(Some(free));
        }
        let st = nix::sys::statvfs::statvfs(dir)
            .map_err(|e| CoordError::Storage(format!("checking the free space of {}: {e}", dir.display())))?;
        let free = st.blocks_available().saturating_mul(st.fragment_size());
        *g = Some((Instant::now(), free));
        Ok(Some(free))
    }

    /// The error of a write that ran out of space anyway (the disk filled meanwhile).
    pub(crate) fn out_of_space(what: &str, e: &std::io::Error) -> Option<CoordError> {
        (e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(nix::libc::ENOSPC)).then(|| {
            CoordError::Exhausted(format!("{what}: the store's disk is full ({e}); free some space (it is retried)"))
        })
    }

    /// How full the store's disk is now.
    pub fn room(&self) -> Room {
        let floor = self.cfg.min_free_bytes;
        match self.free_bytes(false) {
            Ok(Some(free)) if free < floor / 4 => Room::Full(free),
            Ok(Some(free)) if free < floor => Room::Low(free),
            Ok(_) => Room::Ample,
            Err(e) => {
                tracing::warn!("{e}");
                Room::Ample
            }
        }
    }

    /// Refuses a write that grows the store (`what`) when the disk is full.
    pub(crate) fn refuse_if_full(&self, what: &str) -> Result<()> {
        match self.room() {
            Room::Full(free) => Err(CoordError::Exhausted(format!(
                "{what} waits: the store's disk has {:.2} GiB free, under a quarter of --min-free-bytes ({:.2} GiB); free some space and it goes on",
                gib(free),
                gib(self.cfg.min_free_bytes)
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses an upload of `bytes` that would leave less than [`super::Config::min_free_bytes`]
    /// free on the store's disk (read afresh: uploads are large and few).
    pub(crate) fn room_for(&self, bytes: u64) -> Result<()> {
        let Some(free) = self.free_bytes(true)? else { return Ok(()) };
        let need = bytes.saturating_add(self.cfg.min_free_bytes);
        if free < need {
            return Err(CoordError::Exhausted(format!(
                "storing {:.2} GiB would leave less than {:.2} GiB free on the store's disk ({:.2} GiB free): free some space (it is retried), or lower --min-free-bytes",
                gib(bytes),
                gib(self.cfg.min_free_bytes),
                gib(free)
            )));
        }
        Ok(())
    }
}
