//! The coordinator's application layer: every operation a caller can ask for, over one
//! [`Store`], in domain types only. The gRPC services (`crate::service`) and the page
//! (`crate::web`) are thin adapters over [`App`]: they convert the wire to domain values, call
//! one method, and convert the answer back.
//!
//! - [`state`]: the one function that changes a job's state, and the moves it allows;
//! - the store operations, each run inside one write or read transaction: [`sweeps`] (submit,
//!   find, cancel, list), [`queue`] (claim, reap, grace), [`attempts`] (heartbeats, reports,
//!   curves), [`lifecycle`] (an attempt's end, a job's settling), [`branches`], [`blobs`]
//!   (checkpoints and datasets), [`retention`] (which checkpoints a job keeps), [`registry`]
//!   (workers and credentials), [`logs`];
//! - [`renewals`]: lease renewals held in memory; [`fits`]: each sweep's live fits, over
//!   [`summary`]: each job's curve, summarised in a bounded size;
//! - [`broadcast`]: job changes and stored points, as they happen; [`disk`]: the store's disk,
//!   watched so that it never fills;
//! - [`views`]: what callers are shown of a job;
//! - the operations by caller: [`users`] (sweeps, jobs, curves, fits, logs), [`work`]
//!   (register, heartbeat, acquire, report) and [`transfer`] (the byte streams of checkpoints
//!   and datasets).
pub mod attempts;
pub mod blobs;
pub mod branches;
pub mod broadcast;
pub mod counters;
pub mod disk;
pub mod fits;
pub mod lifecycle;
pub mod logs;
pub mod predictions;
pub mod queue;
pub mod registry;
pub mod renewals;
pub mod retention;
pub mod state;
pub mod summary;
pub mod sweeps;
pub mod transfer;
pub mod users;
pub mod views;
pub mod work;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ladder_core::status::JobStatus;
use tokio::sync::{Notify, broadcast as bus};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::error::{CoordError, Result};
use crate::records::JobRecord;
use crate::store::Store;

pub use broadcast::StoredPoints;

/// The coordinator's TLS, as PEM: the same certificate serves gRPC and the page, and with a
/// client CA both require a client certificate that chains to it (mTLS).
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Option<Vec<u8>>,
}

/// Settings that shape scheduling and limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// A lease lasts this long without a heartbeat.
    pub lease_ttl: Duration,
    /// Longest long-poll an Acquire may ask for.
    pub max_wait: Duration,
    /// Largest checkpoint accepted per upload.
    pub max_checkpoint_bytes: u64,
    /// Largest dataset accepted per registration.
    pub max_dataset_bytes: u64,
    /// Bearer tokens and their roles; when any is set, every RPC must carry one.
    pub tokens: Vec<(crate::auth::Role, String)>,
    /// TLS for gRPC and the page; with a client CA, clients must present a certificate (mTLS).
    pub tls: Option<Tls>,
    /// Leases found at start are renewed to now + this, so the coordinator's own downtime
    /// charges no restart (workers reconnect within it).
    pub startup_grace: Duration,
    /// A connection must send its first bytes (the HTTP/2 preface or a TLS ClientHello) within
    /// this, and finish a TLS handshake within it.
    pub first_bytes: Duration,
    /// With tokens configured, a connection that has made no authenticated call within this is
    /// closed.
    pub auth_within: Duration,
    /// Where lease times come from.
    pub clock: Arc<dyn Clock>,
    /// How often expired leases are reaped (default: a quarter of the lease length).
    pub reap_every: Option<Duration>,
    /// The folder of the store, whose disk uploads must not fill; None: no check (in memory).
    pub data_dir: Option<PathBuf>,
    /// An upload or a log line is refused when storing it would leave less than this free on
    /// that disk; below a quarter of it, every write that grows the store waits (see [`disk`]).
    pub min_free_bytes: u64,
    /// Refuse a sweep with a job that no registered slot can hold (`ladder local`, whose slots
    /// are fixed); otherwise such a job waits for a slot that fits.
    pub refuse_unplaceable: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            max_wait: Duration::from_secs(30),
            max_checkpoint_bytes: 8 << 30,
            max_dataset_bytes: 16 << 30,
            tokens: Vec::new(),
            tls: None,
            startup_grace: Duration::from_secs(30),
            first_bytes: Duration::from_secs(10),
            auth_within: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            reap_every: None,
            data_dir: None,
            min_free_bytes: 1 << 30,
            refuse_unplaceable: false,
        }
    }
}

/// The page sizes of listings.
pub const CURVE_PAGE: usize = 10_000;
pub use attempts::CURVE_PAGE_MAX;
pub const SWEEP_PAGE: usize = 500;

/// The application: the store, the settings, and what is shared in memory (the broadcasts,
/// renewals, live fits, counters). Clones share all of it.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub cfg: Config,
    /// Wakes one waiting Acquire per job that became queued.
    work: Arc<Notify>,
    /// The queue as claims last found it (see [`work`]): which asks it had nothing for.
    idle: Arc<work::Idle>,
    /// Wakes the janitor: checkpoint files are doomed.
    janitor: Arc<Notify>,
    updates: bus::Sender<JobStatus>,
    points: bus::Sender<Arc<StoredPoints>>,
    shutdown: CancellationToken,
    pub counters: Arc<counters::Counters>,
    /// Lease renewals of heartbeats, held in memory (see [`renewals`]).
    pub renewals: Arc<renewals::Renewals>,
    /// Each sweep's fits, kept current (see [`fits`]).
    pub fits: Arc<fits::LiveFits>,
    /// The free space of the store's disk (see [`disk`]).
    disk: Arc<disk::DiskWatch>,
}

impl App {
    pub fn new(store: Store, cfg: Config, shutdown: CancellationToken) -> Self {
        Self {
            store,
            cfg,
            work: Arc::new(Notify::new()),
            idle: Arc::default(),
            janitor: Arc::new(Notify::new()),
            updates: bus::channel(4096).0,
            // The ring keeps its last 256 reports' points alive (about 16 MiB at 500 points
            // each; 4096 held 260 MiB at real size); a page further behind reloads.
            points: bus::channel(256).0,
            shutdown,
            counters: Arc::default(),
            renewals: Arc::default(),
            fits: Arc::default(),
            disk: Arc::default(),
        }
    }

    /// Cancelled when the coordinator stops.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.cfg.lease_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    fn now_ms(&self) -> i64 {
        self.cfg.clock.now_ms()
    }

    /// Renews the leases found at start (see [`Config::startup_grace`]).
    pub async fn grace_leases(&self) -> Result<usize> {
        let grace = u64::try_from(self.cfg.startup_grace.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_ms();
        self.store.write(move |txn| queue::grace(txn, now, grace)).await
    }

    /// Drops the uploads a previous process left staged; returns the chunks dropped.
    pub async fn clear_abandoned(&self) -> Result<usize> {
        self.store.write(blobs::clear_abandoned).await
    }

    /// Deletes the checkpoint files no record names (a crash left them) and the staging files
    /// of uploads that died with the previous process; returns how many.
    pub async fn sweep_files(&self) -> Result<usize> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let named = blobs::named_files(&store.read()?)?;
            let mut n = store.files().clear_staging()?;
            for f in store.files().names()?.into_iter().filter(|f| !named.contains(f)) {
                store.files().remove(&f)?;
                n += 1;
            }
            Ok(n)
        })
        .await
        .map_err(|e| CoordError::Server(format!("sweeping checkpoint files: {e}")))?
    }

    /// Unlinks the doomed checkpoint files (see [`crate::files`]) whenever some are, until
    /// shutdown; returns how many it deleted in all.
    pub async fn janitor_loop(self) -> u64 {
        let mut deleted = 0;
        loop {
            match self.unlink_doomed().await {
                Ok(0) => {}
                Ok(n) => {
                    deleted += n as u64;
                    continue;
                }
                Err(e) => tracing::warn!("deleting checkpoint files: {e}"),
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return deleted,
                _ = self.janitor.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
        }
    }

    /// One pass of the janitor: up to 256 doomed files unlinked, then struck from the list.
    async fn unlink_doomed(&self) -> Result<usize> {
        let doomed = blobs::doomed(&self.store.read()?, 256)?;
        if doomed.is_empty() {
            return Ok(0);
        }
        let (store, names) = (self.store.clone(), doomed.clone());
        tokio::task::spawn_blocking(move || names.iter().try_for_each(|f| store.files().remove(f)))
            .await
            .map_err(|e| CoordError::Server(format!("deleting checkpoint files: {e}")))??;
        let n = doomed.len();
        self.store.write(move |txn| blobs::forget_doomed(txn, &doomed)).await?;
        Ok(n)
    }

    /// Wakes the janitor (a write doomed checkpoint files).
    pub(crate) fn files_doomed(&self) {
        self.janitor.notify_one();
    }

    /// Expires the leases past their time once; returns the jobs it changed.
    pub async fn reap_once(&self) -> Result<Vec<JobRecord>> {
        let now = self.now_ms();
        self.renewals.prune(now);
        let renewed = self.renewals.snapshot();
        // Looked for on a read: the writer is asked only when a lease has run out.
        if queue::expired(&self.store.read()?, now, &renewed)?.is_empty() {
            return Ok(Vec::new());
        }
        let changed = self.store.write(move |txn| queue::reap(txn, now, &renewed)).await?;
        if !changed.is_empty() {
            self.counters.lease_expiries.fetch_add(changed.len() as u64, Ordering::Relaxed);
            for j in &changed {
                tracing::warn!(job = j.id, attempt = j.attempt, state = ?j.state, "lease expired");
            }
            self.publish(&changed);
        }
        Ok(changed)
    }

    /// Expires leases every [`Config::reap_every`] until shutdown.
    pub async fn reap_loop(self) {
        let period = self.cfg.reap_every.unwrap_or((self.cfg.lease_ttl / 4).max(Duration::from_millis(20)));
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            if let Err(e) = self.reap_once().await {
                tracing::error!("reaping leases: {e}");
            }
        }
    }

    /// Refuses a worker call whose credential is not the one its worker id registered with.
    fn check_worker(&self, credential: &str, worker_id: &str) -> Result<()> {
        registry::check_credential(&self.store.read()?, worker_id, credential)
    }
}
