//! The `Ladder` (users) and `WorkerService` (workers) gRPC services over one [`Store`]. Wire
//! messages become domain values here (through [`crate::wire`]) and errors become `Status`
//! through the one map in [`crate::error`].
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ladder_proto::pb;
use ladder_proto::pb::ladder_server::Ladder;
use ladder_proto::pb::worker_service_server::WorkerService;
use redb::ReadTransaction;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::blobs::{self, CheckpointKey};
use crate::error::{CoordError, Result};
use crate::records::{DatasetRecord, JobRecord, JobState, now_ms};
use crate::store::{CHUNK, Store, next_id};
use crate::{attempts, queue, sweeps, wire, workers};

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
        }
    }
}

/// The page sizes of listings.
pub const CURVE_PAGE: usize = 10_000;
pub const CURVE_PAGE_MAX: usize = 100_000;
pub const SWEEP_PAGE: usize = 500;

/// Shared state of both services.
#[derive(Clone)]
pub struct Coordinator {
    pub store: Store,
    pub cfg: Config,
    work: Arc<Notify>,
    updates: broadcast::Sender<pb::Job>,
    shutdown: CancellationToken,
    pub counters: Arc<crate::metrics::Counters>,
    /// The most device memory any GPU slot has offered (bytes; 0 until one asks).
    largest_device: Arc<AtomicU64>,
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
            largest_device: Arc::default(),
        }
    }

    fn ttl_ms(&self) -> u64 {
        self.cfg.lease_ttl.as_millis() as u64
    }

    fn publish(&self, jobs: &[JobRecord]) {
        for j in jobs {
            let _ = self.updates.send(pb::Job::from(j));
        }
        // One waiting Acquire per job that became queued, not every idle long-poll.
        for _ in jobs.iter().filter(|j| j.state == JobState::Queued) {
            self.work.notify_one();
        }
    }

    /// Renews the leases found at start (see [`Config::startup_grace`]).
    pub async fn grace_leases(&self) -> Result<usize> {
        let grace = self.cfg.startup_grace.as_millis() as u64;
        self.store.write(move |txn| queue::grace(txn, now_ms(), grace)).await
    }

    /// Expires leases every quarter TTL until shutdown.
    pub async fn reap_loop(self) {
        let period = (self.cfg.lease_ttl / 4).max(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            match self.store.write(|txn| queue::reap(txn, now_ms())).await {
                Ok(changed) if !changed.is_empty() => {
                    self.counters.lease_expiries.fetch_add(changed.len() as u64, Ordering::Relaxed);
                    for j in &changed {
                        tracing::warn!(job = j.id, attempt = j.attempt, state = ?j.state, "lease expired");
                    }
                    self.publish(&changed);
                }
                Ok(_) => {}
                Err(e) => tracing::error!("reaping leases: {e}"),
            }
        }
    }

    /// Logs and counts `n` events of a report refused (invalid at the wire, or past the job's
    /// last step), `why` the first reason; nothing when none was.
    fn count_refused(&self, q: &pb::ReportEventsRequest, n: u32, why: Option<&str>) {
        if let Some(why) = why {
            tracing::warn!(job = q.job_id, attempt = q.attempt, refused = n, "refused events: {why}");
            self.counters.refused.fetch_add(u64::from(n), Ordering::Relaxed);
        }
    }

    /// Refuses a worker call whose credential is not the one its worker id registered with.
    fn check_worker<T>(&self, req: &Request<T>, worker_id: &str) -> Result<(), Status> {
        workers::check_credential(&self.store.read()?, worker_id, &credential(req)).map_err(Status::from)
    }
}

/// Streams `n` chunks read one at a time from one read transaction.
fn chunk_stream<F>(store: Store, total: u64, sha256: String, n: u32, read: F) -> Stream_<pb::Chunk>
where
    F: Fn(&ReadTransaction, u32) -> Result<Vec<u8>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let r = match store.read() {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(Status::from(e))).await;
                return;
            }
        };
        let mut offset = 0u64;
        for i in 0..n {
            let item = read(&r, i).map_err(Status::from).map(|data| {
                let c = pb::Chunk { offset, total_bytes: total, sha256: sha256.clone(), data };
                offset += c.data.len() as u64;
                c
            });
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl Ladder for Coordinator {
    async fn submit_sweep(
        &self,
        req: Request<pb::SubmitSweepRequest>,
    ) -> Result<Response<pb::SubmitSweepResponse>, Status> {
        let spec = req.into_inner().spec_toml;
        let (rec, created) = self.store.write(move |txn| sweeps::submit(txn, &spec, now_ms())).await?;
        if created {
            tracing::info!(sweep = rec.id, name = %rec.name, jobs = rec.job_ids.len(), "sweep submitted");
            self.work.notify_waiters();
        }
        let counts = sweeps::counts(&self.store.read()?, &rec)?;
        Ok(Response::new(pb::SubmitSweepResponse { sweep: Some(wire::sweep(&rec, counts)), created }))
    }

    async fn get_sweep(&self, req: Request<pb::GetSweepRequest>) -> Result<Response<pb::Sweep>, Status> {
        let r = self.store.read()?;
        let s = sweeps::find(&r, &req.into_inner().sweep)?;
        Ok(Response::new(wire::sweep(&s, sweeps::counts(&r, &s)?)))
    }

    async fn list_sweeps(
        &self,
        req: Request<pb::ListSweepsRequest>,
    ) -> Result<Response<pb::ListSweepsResponse>, Status> {
        let q = req.into_inner();
        let limit = match q.page_size as usize {
            0 => SWEEP_PAGE,
            n => n.min(SWEEP_PAGE),
        };
        let r = self.store.read()?;
        let (list, more) = sweeps::list(&r, q.after_id, limit)?;
        let mut out = Vec::with_capacity(list.len());
        for s in &list {
            out.push(wire::sweep(s, sweeps::counts(&r, s)?));
        }
        Ok(Response::new(pb::ListSweepsResponse { sweeps: out, next_after_id: more.unwrap_or(0) }))
    }

    async fn cancel_sweep(&self, req: Request<pb::CancelSweepRequest>) -> Result<Response<pb::Sweep>, Status> {
        let key = req.into_inner().sweep;
        let (s, changed) = self.store.write(move |txn| sweeps::cancel(txn, &key)).await?;
        self.publish(&changed);
        Ok(Response::new(wire::sweep(&s, sweeps::counts(&self.store.read()?, &s)?)))
    }

    async fn list_jobs(&self, req: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        let r = self.store.read()?;
        let s = sweeps::find(&r, &req.into_inner().sweep)?;
        let mut jobs = Vec::new();
        for j in sweeps::jobs_of(&r, &s)? {
            jobs.push(pb::Job::from(&j.with_config(&r)?));
        }
        Ok(Response::new(pb::ListJobsResponse { jobs }))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        let r = self.store.read()?;
        let job = JobRecord::load(&r, req.into_inner().job_id)?.with_config(&r)?;
        Ok(Response::new(pb::Job::from(&job)))
    }

    type WatchJobsStream = Stream_<pb::Job>;

    async fn watch_jobs(&self, req: Request<pb::WatchJobsRequest>) -> Result<Response<Self::WatchJobsStream>, Status> {
        let mut updates = self.updates.subscribe(); // before the snapshot: no change is missed
        let r = self.store.read()?;
        let sweep = sweeps::find(&r, &req.into_inner().sweep)?;
        let snapshot = sweeps::jobs_of(&r, &sweep)?;
        drop(r);
        // The jobs still to end, kept from the updates themselves: no re-read per update.
        let mut open: HashSet<u64> = snapshot.iter().filter(|j| !j.state.is_final()).map(|j| j.id).collect();
        let (tx, rx) = mpsc::channel(256);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            for j in &snapshot {
                if tx.send(Ok(pb::Job::from(j))).await.is_err() {
                    return;
                }
            }
            while !open.is_empty() {
                let job = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    j = updates.recv() => j,
                };
                match job {
                    Ok(j) if j.sweep_id == sweep.id => {
                        let state = pb::JobState::try_from(j.state).ok().and_then(|s| JobState::try_from(s).ok());
                        if state.is_some_and(JobState::is_final) {
                            open.remove(&j.id);
                        } else {
                            open.insert(j.id);
                        }
                        if tx.send(Ok(j)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::data_loss(format!("watcher fell {n} updates behind; watch again"))))
                            .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_curve(&self, req: Request<pb::GetCurveRequest>) -> Result<Response<pb::Curve>, Status> {
        let q = req.into_inner();
        let limit = match q.limit as usize {
            0 => CURVE_PAGE,
            n => n.min(CURVE_PAGE_MAX),
        };
        let r = self.store.read()?;
        JobRecord::load(&r, q.job_id)?;
        let (points, more) = attempts::curve(&r, q.job_id, q.after_step, limit)?;
        let points = points.iter().map(pb::MetricPoint::from).collect();
        Ok(Response::new(pb::Curve { job_id: q.job_id, points, next_after_step: more.unwrap_or(0) }))
    }

    async fn list_checkpoints(
        &self,
        req: Request<pb::ListCheckpointsRequest>,
    ) -> Result<Response<pb::ListCheckpointsResponse>, Status> {
        let list = blobs::checkpoints(&self.store.read()?, req.into_inner().job_id)?;
        Ok(Response::new(pb::ListCheckpointsResponse {
            checkpoints: list.iter().map(pb::CheckpointInfo::from).collect(),
        }))
    }

    type FetchCheckpointStream = Stream_<pb::Chunk>;

    async fn fetch_checkpoint(
        &self,
        req: Request<pb::FetchCheckpointRequest>,
    ) -> Result<Response<Self::FetchCheckpointStream>, Status> {
        Ok(Response::new(self.checkpoint_stream(req.into_inner())?))
    }

    async fn register_dataset(
        &self,
        req: Request<Streaming<pb::DatasetUpload>>,
    ) -> Result<Response<pb::Dataset>, Status> {
        let mut stream = req.into_inner();
        let header = match stream.next().await {
            Some(Ok(pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Header(h)) })) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("register_dataset: the first message must be the header")),
        };
        let upload = self.store.write(|txn| next_id(txn, "next_upload_id")).await?;
        let result = self.receive_dataset(&header, &mut stream, upload).await;
        match result {
            Ok(rec) => {
                let out = pb::Dataset::from(&rec);
                self.store.write(move |txn| blobs::commit_dataset(txn, upload, &rec)).await?;
                tracing::info!(name = %out.name, sha256 = %out.sha256, tokens = out.train_tokens, "dataset registered");
                Ok(Response::new(out))
            }
            Err(e) => {
                let _ = self.store.write(move |txn| blobs::abandon_dataset(txn, upload)).await;
                Err(e.into())
            }
        }
    }

    async fn list_datasets(
        &self,
        _: Request<pb::ListDatasetsRequest>,
    ) -> Result<Response<pb::ListDatasetsResponse>, Status> {
        let list = blobs::list_datasets(&self.store.read()?)?;
        Ok(Response::new(pb::ListDatasetsResponse { datasets: list.iter().map(pb::Dataset::from).collect() }))
    }

    async fn list_workers(
        &self,
        _: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let list = workers::list(&self.store.read()?)?;
        Ok(Response::new(pb::ListWorkersResponse { workers: list.iter().map(pb::WorkerInfo::from).collect() }))
    }
}

/// A dataset upload as it streams in: sizes, token ids below the vocabulary, the content hash.
struct DatasetIntake {
    vocab: u32,
    sha: Sha256,
    /// Bytes received per file, and the chunks staged.
    got: [u64; 2],
    chunks: [u32; 2],
    buf: Vec<u8>,
    file: u8,
    /// The first byte of a token split across messages.
    carry: Option<u8>,
    /// Tokens checked in the current file, for error messages.
    tokens: u64,
}

impl DatasetIntake {
    /// Checks the token ids in `data`, which continues the current file.
    fn check(&mut self, data: &[u8], name: &str, file: &str) -> Result<()> {
        let mut i = 0;
        let check = |lo: u8, hi: u8, tokens: &mut u64| -> Result<()> {
            let id = u16::from_le_bytes([lo, hi]);
            if u32::from(id) >= self.vocab {
                return Err(bad_dataset(
                    name,
                    format!("{file}: token id {id} at position {} is out of range for vocab {}", *tokens, self.vocab),
                ));
            }
            *tokens += 1;
            Ok(())
        };
        let mut tokens = self.tokens;
        if let Some(lo) = self.carry.take() {
            match data.first() {
                Some(&hi) => {
                    check(lo, hi, &mut tokens)?;
                    i = 1;
                }
                None => {
                    self.carry = Some(lo);
                    return Ok(());
                }
            }
        }
        while i + 2 <= data.len() {
            check(data[i], data[i + 1], &mut tokens)?;
            i += 2;
        }
        if i < data.len() {
            self.carry = Some(data[i]);
        }
        self.tokens = tokens;
        Ok(())
    }
}

fn bad_dataset(name: &str, m: impl std::fmt::Display) -> CoordError {
    CoordError::Invalid(ladder_core::DomainError::message("dataset", format!("{name:?}: {m}")))
}

impl Coordinator {
    fn checkpoint_stream(&self, q: pb::FetchCheckpointRequest) -> Result<Stream_<pb::Chunk>> {
        let info = blobs::checkpoint(&self.store.read()?, q.job_id, q.step)?;
        let (job, step) = (info.job_id, info.step);
        Ok(chunk_stream(self.store.clone(), info.bytes, info.sha256.clone(), info.chunks, move |r, i| {
            blobs::checkpoint_chunk(r, job, step, i)
        }))
    }

    /// Checks a dataset header: name, sizes, vocabulary.
    fn dataset_header(&self, h: &pb::DatasetHeader) -> Result<u32> {
        if h.name.is_empty()
            || h.name.len() > 128
            || !h.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad_dataset(&h.name, "names use 1-128 of [A-Za-z0-9._-]"));
        }
        let total =
            h.train_bytes.checked_add(h.val_bytes).ok_or_else(|| bad_dataset(&h.name, "train + val bytes overflow"))?;
        if total > self.cfg.max_dataset_bytes {
            return Err(bad_dataset(
                &h.name,
                format!("{total} bytes exceed the limit of {}", self.cfg.max_dataset_bytes),
            ));
        }
        for (file, n) in [("train", h.train_bytes), ("val", h.val_bytes)] {
            if n == 0 || n % 2 != 0 {
                return Err(bad_dataset(&h.name, format!("{file}: {n} bytes is not a non-empty uint16 token file")));
            }
        }
        let vocab = if h.meta_json.is_empty() {
            h.vocab
        } else {
            let meta: serde_json::Value = serde_json::from_str(&h.meta_json)
                .map_err(|e| bad_dataset(&h.name, format!("meta.json is not JSON: {e}")))?;
            let v = meta
                .get("vocab_size")
                .and_then(|v| v.as_u64())
                .ok_or_else(|| bad_dataset(&h.name, "meta.json lacks vocab_size"))?;
            u32::try_from(v).map_err(|_| bad_dataset(&h.name, format!("vocab {v} is out of range")))?
        };
        if vocab == 0 || vocab > 65536 {
            return Err(bad_dataset(&h.name, format!("vocab {vocab} is outside 1..=65536")));
        }
        Ok(vocab)
    }

    /// Receives a dataset's bytes (train first, then val) into staging, chunk by chunk.
    async fn receive_dataset(
        &self,
        h: &pb::DatasetHeader,
        stream: &mut Streaming<pb::DatasetUpload>,
        upload: u64,
    ) -> Result<DatasetRecord> {
        let vocab = self.dataset_header(h)?;
        let want = [h.train_bytes, h.val_bytes];
        let mut d = DatasetIntake {
            vocab,
            sha: Sha256::new(),
            got: [0, 0],
            chunks: [0, 0],
            buf: Vec::new(),
            file: 0,
            carry: None,
            tokens: 0,
        };
        while let Some(msg) = stream.next().await {
            let msg = msg.map_err(|s| CoordError::Storage(format!("dataset upload broke off: {}", s.message())))?;
            let bytes = match msg.part {
                Some(pb::dataset_upload::Part::Bytes(b)) => b,
                _ => return Err(bad_dataset(&h.name, "expected bytes of file \"train\" or \"val\" after the header")),
            };
            let file = match bytes.file.as_str() {
                "train" => 0u8,
                "val" => 1u8,
                other => return Err(bad_dataset(&h.name, format!("unknown file {other:?}"))),
            };
            if file < d.file {
                return Err(bad_dataset(&h.name, "train bytes must all come before val bytes"));
            }
            if file > d.file {
                if d.got[0] != want[0] {
                    return Err(bad_dataset(
                        &h.name,
                        format!("val bytes after {} of {} train bytes", d.got[0], want[0]),
                    ));
                }
                self.flush_dataset(&mut d, upload, true).await?;
                d.file = file;
                d.tokens = 0;
            }
            let f = file as usize;
            d.got[f] = d.got[f].saturating_add(bytes.data.len() as u64);
            if d.got[f] > want[f] {
                return Err(bad_dataset(
                    &h.name,
                    format!("more {} bytes than the header announced ({})", bytes.file, want[f]),
                ));
            }
            d.check(&bytes.data, &h.name, &bytes.file)?;
            d.sha.update(&bytes.data);
            d.buf.extend_from_slice(&bytes.data);
            self.flush_dataset(&mut d, upload, false).await?;
        }
        self.flush_dataset(&mut d, upload, true).await?;
        if d.got != want {
            return Err(bad_dataset(
                &h.name,
                format!("received {} + {} bytes, the header announced {} + {}", d.got[0], d.got[1], want[0], want[1]),
            ));
        }
        let tokenizer = serde_json::from_str::<serde_json::Value>(&h.meta_json)
            .ok()
            .and_then(|m| m.get("tokenizer").and_then(|t| t.as_str()).map(str::to_owned))
            .unwrap_or_default();
        Ok(DatasetRecord {
            name: h.name.clone(),
            sha256: hex::encode(d.sha.finalize()),
            meta_json: h.meta_json.clone(),
            vocab,
            tokenizer,
            train_bytes: want[0],
            val_bytes: want[1],
            chunks: d.chunks,
        })
    }

    /// Stages the buffer as the current file's next chunks; at the file's end, also its last,
    /// shorter chunk.
    async fn flush_dataset(&self, d: &mut DatasetIntake, upload: u64, end: bool) -> Result<()> {
        while d.buf.len() >= CHUNK || (end && !d.buf.is_empty()) {
            let rest = d.buf.split_off(d.buf.len().min(CHUNK));
            let data = std::mem::replace(&mut d.buf, rest);
            let (file, index) = (d.file, d.chunks[d.file as usize]);
            self.store.write(move |txn| blobs::stage_dataset_chunk(txn, upload, file, index, &data)).await?;
            d.chunks[d.file as usize] += 1;
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl WorkerService for Coordinator {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let cred = credential(&req);
        let q = req.into_inner();
        if q.slots.is_empty() {
            return Err(Status::invalid_argument("register: a worker needs at least one slot"));
        }
        for s in &q.slots {
            ladder_core::job::parse_device(s).map_err(|e| Status::invalid_argument(format!("register: slot {e}")))?;
        }
        if q.name.is_empty() || q.name.len() > 128 || q.name.chars().any(|c| c.is_control()) {
            return Err(Status::invalid_argument("register: a worker name is 1-128 printable characters"));
        }
        let (name, slots) = (q.name.clone(), q.slots.iter().map(|s| s.trim().to_string()).collect::<Vec<_>>());
        let id = self.store.write(move |txn| workers::register(txn, &name, &slots, &cred, now_ms())).await?;
        tracing::info!(worker = %id, slots = ?q.slots, "worker registered");
        Ok(Response::new(pb::RegisterResponse { worker_id: id, lease_ttl_ms: self.ttl_ms() }))
    }

    async fn heartbeat(&self, req: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.check_worker(&req, &req.get_ref().worker_id)?;
        let q = req.into_inner();
        let ttl = self.ttl_ms();
        let running: Vec<(u64, u32)> = q.running.iter().map(|r| (r.job_id, r.attempt)).collect();
        let (stop, released) =
            self.store.write(move |txn| attempts::heartbeat(txn, &q.worker_id, &running, ttl, now_ms())).await?;
        self.publish(&released);
        let stop = stop.into_iter().map(|(job_id, attempt)| pb::AttemptRef { job_id, attempt }).collect();
        Ok(Response::new(pb::HeartbeatResponse { stop }))
    }

    async fn acquire(&self, req: Request<pb::AcquireRequest>) -> Result<Response<pb::AcquireResponse>, Status> {
        self.check_worker(&req, &req.get_ref().worker_id)?;
        let q = req.into_inner();
        let wait = Duration::from_millis(q.wait_ms).min(self.cfg.max_wait);
        let deadline = tokio::time::Instant::now() + wait;
        let ttl = self.ttl_ms();
        let largest = self.largest_device.fetch_max(q.memory_total_bytes, Ordering::Relaxed).max(q.memory_total_bytes);
        loop {
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable(); // registered before the claim: no wake-up is lost
            let (w, s, max_jobs, memory_bytes) = (q.worker_id.clone(), q.slot.clone(), q.max_jobs, q.memory_bytes);
            let claimed = self
                .store
                .write(move |txn| {
                    let ask = queue::SlotAsk {
                        worker_id: &w,
                        slot: &s,
                        max_jobs,
                        memory_bytes,
                        largest_device_bytes: largest,
                    };
                    queue::claim(txn, ask, ttl, now_ms())
                })
                .await?;
            self.publish(&claimed.failed);
            if !claimed.leased.is_empty() {
                let mut assignments = Vec::with_capacity(claimed.leased.len());
                let r = self.store.read()?;
                for job in &claimed.leased {
                    tracing::info!(job = job.id, attempt = job.attempt, worker = %q.worker_id, "leased");
                    let _ = self.updates.send(pb::Job::from(job));
                    let steps = blobs::checkpoints(&r, job.id)?.iter().map(|c| c.step).collect();
                    assignments.push(wire::assignment(&job.clone().with_config(&r)?, ttl, steps));
                }
                let first = assignments.remove(0);
                return Ok(Response::new(pb::AcquireResponse { assignment: Some(first), fused: assignments }));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Ok(Response::new(pb::AcquireResponse { assignment: None, fused: Vec::new() }));
                }
                _ = self.shutdown.cancelled() => return Err(CoordError::Shutdown.into()),
            }
        }
    }

    async fn report_events(
        &self,
        req: Request<pb::ReportEventsRequest>,
    ) -> Result<Response<pb::ReportEventsResponse>, Status> {
        self.check_worker(&req, &req.get_ref().worker_id)?;
        let q = req.into_inner();
        let (events, refused, why) = wire::events(&q.events);
        self.count_refused(&q, refused, why.as_deref());
        let (worker, job_id, attempt) = (q.worker_id.clone(), q.job_id, q.attempt);
        let out = self.store.write(move |txn| attempts::report(txn, &worker, job_id, attempt, &events)).await?;
        self.count_refused(&q, out.refused, out.why.as_deref());
        let refused = refused + out.refused;
        if out.job.state != JobState::Running {
            tracing::info!(job = out.job.id, state = ?out.job.state, failure = ?out.job.failure, "attempt ended");
        }
        self.counters.points.fetch_add(u64::from(out.stored), Ordering::Relaxed);
        self.publish(std::slice::from_ref(&out.job)); // wakes one Acquire if the job was requeued
        Ok(Response::new(pb::ReportEventsResponse { stored: out.stored, refused }))
    }

    async fn upload_checkpoint(
        &self,
        req: Request<Streaming<pb::CheckpointUpload>>,
    ) -> Result<Response<pb::CheckpointInfo>, Status> {
        let cred = credential(&req);
        let mut stream = req.into_inner();
        let h = match stream.next().await {
            Some(Ok(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(h)) })) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("upload_checkpoint: the first message must be the header")),
        };
        workers::check_credential(&self.store.read()?, &h.worker_id, &cred)?;
        let k = CheckpointKey { job_id: h.job_id, attempt: h.attempt, step: h.step };
        // Refuse a stale attempt, or a checkpoint ahead of its curve, before taking its bytes.
        blobs::check_checkpoint(&JobRecord::load(&self.store.read()?, h.job_id)?, &h.worker_id, k)?;
        if h.total_bytes > self.cfg.max_checkpoint_bytes {
            return Err(Status::invalid_argument(format!(
                "checkpoint of job {} is {} bytes, over the cap of {}",
                h.job_id, h.total_bytes, self.cfg.max_checkpoint_bytes
            )));
        }
        let (mut sha, mut got, mut chunks, mut buf) = (Sha256::new(), 0u64, 0u32, Vec::new());
        loop {
            let msg = stream.next().await;
            let end = msg.is_none();
            if let Some(msg) = msg {
                match msg?.part {
                    Some(pb::checkpoint_upload::Part::Data(d)) => {
                        got = got.saturating_add(d.len() as u64);
                        if got > h.total_bytes {
                            return Err(Status::invalid_argument("upload_checkpoint: more bytes than announced"));
                        }
                        sha.update(&d);
                        buf.extend_from_slice(&d);
                    }
                    _ => return Err(Status::invalid_argument("upload_checkpoint: a second header")),
                }
            }
            while buf.len() >= CHUNK || (end && !buf.is_empty()) {
                let rest = buf.split_off(buf.len().min(CHUNK));
                let data = std::mem::replace(&mut buf, rest);
                let (w, i) = (h.worker_id.clone(), chunks);
                self.store.write(move |txn| blobs::stage_checkpoint_chunk(txn, &w, k, i, &data)).await?;
                chunks += 1;
            }
            if end {
                break;
            }
        }
        let digest = hex::encode(sha.finalize());
        if got != h.total_bytes || digest != h.sha256 {
            return Err(Status::data_loss(format!(
                "checkpoint of job {} step {}: bytes do not match the announced size and sha256",
                h.job_id, h.step
            )));
        }
        let w = h.worker_id.clone();
        let (info, job) =
            self.store.write(move |txn| blobs::commit_checkpoint(txn, &w, k, chunks, got, &digest)).await?;
        self.counters.checkpoint_bytes.fetch_add(got, Ordering::Relaxed);
        self.publish(std::slice::from_ref(&job));
        Ok(Response::new(pb::CheckpointInfo::from(&info)))
    }

    type DownloadCheckpointStream = Stream_<pb::Chunk>;

    async fn download_checkpoint(
        &self,
        req: Request<pb::FetchCheckpointRequest>,
    ) -> Result<Response<Self::DownloadCheckpointStream>, Status> {
        Ok(Response::new(self.checkpoint_stream(req.into_inner())?))
    }

    type FetchDatasetStream = Stream_<pb::Chunk>;

    async fn fetch_dataset(
        &self,
        req: Request<pb::FetchDatasetRequest>,
    ) -> Result<Response<Self::FetchDatasetStream>, Status> {
        let q = req.into_inner();
        let rec = blobs::dataset_by_sha(&self.store.read()?, &q.sha256)?
            .ok_or_else(|| Status::not_found(format!("dataset {}", q.sha256)))?;
        let (file, bytes) = match q.file.as_str() {
            "train" => (0u8, rec.train_bytes),
            "val" => (1u8, rec.val_bytes),
            "meta" => {
                let meta = rec.meta_json.clone().into_bytes();
                let sha = hex::encode(Sha256::digest(&meta));
                let chunk = pb::Chunk { offset: 0, total_bytes: meta.len() as u64, sha256: sha, data: meta };
                return Ok(Response::new(Box::pin(tokio_stream::iter([Ok(chunk)]))));
            }
            other => return Err(Status::invalid_argument(format!("fetch_dataset: unknown file {other:?}"))),
        };
        let sha = q.sha256.clone();
        Ok(Response::new(chunk_stream(
            self.store.clone(),
            bytes,
            String::new(),
            rec.chunks[file as usize],
            move |r, i| blobs::dataset_chunk(r, &sha, file, i),
        )))
    }
}
