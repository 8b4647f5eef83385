//! The gRPC services over one [`Store`], split by who calls them: [`users`] (the `Ladder`
//! service: sweeps, jobs, curves, datasets), [`workers`] (the `WorkerService`: register,
//! heartbeat, acquire, report) and [`uploads`] (the byte streams both services move: datasets
//! in, checkpoints in and out). Wire messages become domain values through `ladder_proto::convert`
//! and every refusal becomes a `Status` through the one map in [`crate::error`].
mod uploads;
pub mod users;
mod workers;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ladder_core::status::JobStatus;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, broadcast};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status};

use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::records::{JobRecord, JobState};
use crate::store::Store;
use crate::{queue, workers as registry};

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
    /// TLS (rustls); with a client CA root, clients must present a certificate (mTLS).
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// Leases found at start are renewed to now + this, so the coordinator's own downtime
    /// charges no restart (workers reconnect within it).
    pub startup_grace: Duration,
    /// A connection must send its first bytes (the HTTP/2 preface or a TLS ClientHello) within
    /// this, and finish a TLS handshake within it.
    pub first_bytes: Duration,
    /// Where lease times come from.
    pub clock: Arc<dyn Clock>,
    /// How often expired leases are reaped (default: a quarter of the lease length).
    pub reap_every: Option<Duration>,
    /// The folder of the store, whose disk uploads must not fill; None: no check (in memory).
    pub data_dir: Option<std::path::PathBuf>,
    /// An upload is refused when storing it would leave less than this free on that disk.
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
pub use crate::attempts::CURVE_PAGE_MAX;
pub const SWEEP_PAGE: usize = 500;

/// Shared state of both services.
#[derive(Clone)]
pub struct Coordinator {
    pub store: Store,
    pub cfg: Config,
    work: Arc<Notify>,
    updates: broadcast::Sender<JobStatus>,
    shutdown: CancellationToken,
    pub counters: Arc<crate::metrics::Counters>,
    /// Lease renewals of heartbeats, held in memory (see [`crate::renewals`]).
    pub renewals: Arc<crate::renewals::Renewals>,
    /// Each sweep's fits, kept current (see [`crate::fits`]).
    pub fits: Arc<crate::fits::LiveFits>,
    /// Points as they are stored, for live views.
    points: broadcast::Sender<Arc<StoredPoints>>,
}

/// Points of one report, just stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredPoints {
    pub sweep_id: u64,
    pub job_id: u64,
    pub points: Vec<ladder_core::status::RecordedPoint>,
    /// Wall-clock milliseconds at the commit.
    pub stored_ms: i64,
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The caller's credential: sha256 of its bearer token ("" without one), and of its client
/// certificate under mTLS.
fn credential<T>(req: &Request<T>) -> String {
    let token = req
        .metadata()
        .get(ladder_proto::auth::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start_matches("Bearer ").trim().to_string())
        .unwrap_or_default();
    let cert = req.peer_certs().and_then(|c| c.first().map(|c| hex::encode(Sha256::digest(c.as_ref()))));
    match (token.is_empty(), cert) {
        (true, None) => String::new(),
        (_, c) => {
            let mut h = Sha256::new();
            h.update(token.as_bytes());
            if let Some(c) = c {
                h.update(b"\\0cert:");
                h.update(c.as_bytes());
            }
            hex::encode(h.finalize())
        }
    }
}

impl Coordinator {
    pub fn new(store: Store, cfg: Config, shutdown: CancellationToken) -> Self {
        let (updates, _) = broadcast::channel(4096);
        Self {
            store,
            cfg,
            work: Arc::new(Notify::new()),
            updates,
            shutdown,
            counters: Arc::default(),
            renewals: Arc::default(),
            fits: Arc::default(),
            points: broadcast::channel(4096).0,
        }
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.cfg.lease_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    fn now_ms(&self) -> i64 {
        self.cfg.clock.now_ms()
    }

    fn publish(&self, jobs: &[JobRecord]) {
        for j in jobs {
            if j.state.is_final() {
                self.fits.job_ended(j.sweep_id);
            } else {
                self.fits.mark(j.sweep_id);
            }
            let _ = self.updates.send(j.status());
        }
        // One waiting Acquire per job that became queued, not every idle long-poll.
        for _ in jobs.iter().filter(|j| j.state == JobState::Queued) {
            self.work.notify_one();
        }
    }

    /// Job changes as they happen.
    pub fn subscribe_jobs(&self) -> broadcast::Receiver<JobStatus> {
        self.updates.subscribe()
    }

    /// Points as they are stored.
    pub fn subscribe_points(&self) -> broadcast::Receiver<Arc<StoredPoints>> {
        self.points.subscribe()
    }

    /// Announces points just stored (when anyone listens), and marks their sweep's fits due.
    fn stored(&self, sweep_id: u64, job_id: u64, attempt: u32, events: &[ladder_core::attempt::AttemptEvent]) {
        self.fits.mark(sweep_id);
        if self.points.receiver_count() == 0 {
            return;
        }
        let points: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ladder_core::attempt::AttemptEvent::Point(p) => {
                    Some(ladder_core::status::RecordedPoint { point: p.clone(), attempt })
                }
                _ => None,
            })
            .collect();
        if !points.is_empty() {
            let stored_ms = SystemClock.now_ms();
            let _ = self.points.send(Arc::new(StoredPoints { sweep_id, job_id, points, stored_ms }));
        }
    }

    /// Renews the leases found at start (see [`Config::startup_grace`]).
    pub async fn grace_leases(&self) -> Result<usize> {
        let grace = u64::try_from(self.cfg.startup_grace.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_ms();
        self.store.write(move |txn| queue::grace(txn, now, grace)).await
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

    /// Logs and counts `n` events of a report refused (invalid at the wire, or past the job's
    /// last step), `why` the first reason; nothing when none was.
    fn count_refused(&self, job_id: u64, attempt: u32, n: u32, why: Option<&str>) {
        if let Some(why) = why {
            tracing::warn!(job = job_id, attempt, refused = n, "refused events: {why}");
            self.counters.refused.fetch_add(u64::from(n), Ordering::Relaxed);
        }
    }

    /// Refuses an upload of `bytes` that would leave less than [`Config::min_free_bytes`] free on
    /// the store's disk (it is staged, then moved: counted twice). A full disk would fail a commit
    /// and stop the coordinator; a refused upload stops nothing.
    fn room_for(&self, bytes: u64) -> Result<()> {
        let Some(dir) = &self.cfg.data_dir else { return Ok(()) };
        let st = nix::sys::statvfs::statvfs(dir).map_err(|e| {
            crate::error::CoordError::Storage(format!("checking the free space of {}: {e}", dir.display()))
        })?;
        let free = st.blocks_available().saturating_mul(st.fragment_size());
        let need = bytes.saturating_mul(2).saturating_add(self.cfg.min_free_bytes);
        if free < need {
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            return Err(crate::error::CoordError::Exhausted(format!(
                "storing {:.2} GiB would leave less than {:.2} GiB free on the store's disk ({:.2} GiB free): free some space, or lower --min-free-bytes",
                gib(bytes),
                gib(self.cfg.min_free_bytes),
                gib(free)
            )));
        }
        Ok(())
    }

    /// Refuses a worker call whose credential is not the one its worker id registered with.
    fn check_worker<T>(&self, req: &Request<T>, worker_id: &str) -> Result<()> {
        registry::check_credential(&self.store.read()?, worker_id, &credential(req))
    }
}
