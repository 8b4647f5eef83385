//! The `Ladder` (users) and `WorkerService` (workers) gRPC services over one [`Store`].
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ladder_proto::pb;
use ladder_proto::pb::ladder_server::Ladder;
use ladder_proto::pb::worker_service_server::WorkerService;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::error::{CoordError, Result};
use crate::jobs;
use crate::records::{DatasetRecord, JobRecord, JobState, now_ms};
use crate::store::Store;

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
        }
    }
}

/// Shared state of both services.
#[derive(Clone)]
pub struct Coordinator {
    pub store: Store,
    pub cfg: Config,
    work: Arc<Notify>,
    updates: broadcast::Sender<pb::Job>,
    shutdown: CancellationToken,
    pub counters: Arc<crate::metrics::Counters>,
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl Coordinator {
    pub fn new(store: Store, cfg: Config, shutdown: CancellationToken) -> Self {
        let (updates, _) = broadcast::channel(4096);
        Self { store, cfg, work: Arc::new(Notify::new()), updates, shutdown, counters: Arc::default() }
    }

    fn ttl_ms(&self) -> u64 {
        self.cfg.lease_ttl.as_millis() as u64
    }

    fn publish(&self, jobs: &[JobRecord]) {
        for j in jobs {
            let _ = self.updates.send(j.to_pb());
        }
        if jobs.iter().any(|j| j.state == JobState::Queued) {
            self.work.notify_waiters();
        }
    }

    /// Expires leases every quarter TTL until shutdown.
    pub async fn reap_loop(self) {
        let period = (self.cfg.lease_ttl / 4).max(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            match self.store.write(|txn| jobs::reap(txn, now_ms())).await {
                Ok(changed) if !changed.is_empty() => {
                    self.counters.lease_expiries.fetch_add(changed.len() as u64, std::sync::atomic::Ordering::Relaxed);
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

    fn chunk_stream(chunks: Vec<Vec<u8>>, sha256: String) -> Stream_<pb::Chunk> {
        let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let mut offset = 0u64;
        let items: Vec<Result<pb::Chunk, Status>> = chunks
            .into_iter()
            .map(|data| {
                let c = pb::Chunk { offset, total_bytes: total, sha256: sha256.clone(), data };
                offset += c.data.len() as u64;
                Ok(c)
            })
            .collect();
        Box::pin(tokio_stream::iter(items))
    }
}

#[tonic::async_trait]
impl Ladder for Coordinator {
    async fn submit_sweep(
        &self,
        req: Request<pb::SubmitSweepRequest>,
    ) -> Result<Response<pb::SubmitSweepResponse>, Status> {
        let spec = req.into_inner().spec_toml;
        let (rec, created) = self.store.write(move |txn| jobs::submit_sweep(txn, &spec, now_ms())).await?;
        if created {
            tracing::info!(sweep = rec.id, name = %rec.name, jobs = rec.job_ids.len(), "sweep submitted");
            self.work.notify_waiters();
        }
        let sweep = jobs::sweep_pb(&self.store.read()?, &rec)?;
        Ok(Response::new(pb::SubmitSweepResponse { sweep: Some(sweep), created }))
    }

    async fn get_sweep(&self, req: Request<pb::GetSweepRequest>) -> Result<Response<pb::Sweep>, Status> {
        let r = self.store.read()?;
        let s = jobs::find_sweep(&r, &req.into_inner().sweep)?;
        Ok(Response::new(jobs::sweep_pb(&r, &s)?))
    }

    async fn list_sweeps(&self, _: Request<pb::ListSweepsRequest>) -> Result<Response<pb::ListSweepsResponse>, Status> {
        let r = self.store.read()?;
        let sweeps = jobs::list_sweeps(&r)?.iter().map(|s| jobs::sweep_pb(&r, s)).collect::<Result<_>>()?;
        Ok(Response::new(pb::ListSweepsResponse { sweeps }))
    }

    async fn cancel_sweep(&self, req: Request<pb::CancelSweepRequest>) -> Result<Response<pb::Sweep>, Status> {
        let key = req.into_inner().sweep;
        let (s, changed) = self.store.write(move |txn| jobs::cancel_sweep(txn, &key)).await?;
        self.publish(&changed);
        Ok(Response::new(jobs::sweep_pb(&self.store.read()?, &s)?))
    }

    async fn list_jobs(&self, req: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        let r = self.store.read()?;
        let s = jobs::find_sweep(&r, &req.into_inner().sweep)?;
        let jobs = jobs::jobs_of(&r, &s)?.iter().map(JobRecord::to_pb).collect();
        Ok(Response::new(pb::ListJobsResponse { jobs }))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        Ok(Response::new(jobs::get_job(&self.store.read()?, req.into_inner().job_id)?.to_pb()))
    }

    type WatchJobsStream = Stream_<pb::Job>;

    async fn watch_jobs(&self, req: Request<pb::WatchJobsRequest>) -> Result<Response<Self::WatchJobsStream>, Status> {
        let mut updates = self.updates.subscribe(); // before the snapshot: no change is missed
        let r = self.store.read()?;
        let sweep = jobs::find_sweep(&r, &req.into_inner().sweep)?;
        let snapshot = jobs::jobs_of(&r, &sweep)?;
        drop(r);
        let (tx, rx) = mpsc::channel(256);
        let store = self.store.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            for j in &snapshot {
                if tx.send(Ok(j.to_pb())).await.is_err() {
                    return;
                }
            }
            let ended = |store: &Store| -> bool {
                store
                    .read()
                    .and_then(|r| jobs::jobs_of(&r, &sweep))
                    .map(|js| js.iter().all(|j| j.state.is_final()))
                    .unwrap_or(true)
            };
            if ended(&store) {
                return;
            }
            loop {
                let job = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    j = updates.recv() => j,
                };
                match job {
                    Ok(j) if j.sweep_id == sweep.id => {
                        if tx.send(Ok(j)).await.is_err() || ended(&store) {
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
        let r = self.store.read()?;
        jobs::get_job(&r, q.job_id)?;
        Ok(Response::new(pb::Curve { job_id: q.job_id, points: jobs::curve(&r, q.job_id, q.after_step)? }))
    }

    async fn list_checkpoints(
        &self,
        req: Request<pb::ListCheckpointsRequest>,
    ) -> Result<Response<pb::ListCheckpointsResponse>, Status> {
        let checkpoints = jobs::checkpoints(&self.store.read()?, req.into_inner().job_id)?;
        Ok(Response::new(pb::ListCheckpointsResponse { checkpoints }))
    }

    type FetchCheckpointStream = Stream_<pb::Chunk>;

    async fn fetch_checkpoint(
        &self,
        req: Request<pb::FetchCheckpointRequest>,
    ) -> Result<Response<Self::FetchCheckpointStream>, Status> {
        let q = req.into_inner();
        let (info, chunks) = jobs::checkpoint_blob(&self.store.read()?, q.job_id, q.step)?;
        Ok(Response::new(Self::chunk_stream(chunks, info.sha256)))
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
        let total = header.train_bytes + header.val_bytes;
        if total > self.cfg.max_dataset_bytes {
            return Err(Status::invalid_argument(format!(
                "dataset {:?}: {total} bytes exceed the limit of {}",
                header.name, self.cfg.max_dataset_bytes
            )));
        }
        let (mut train, mut val) = (Vec::new(), Vec::new());
        while let Some(msg) = stream.next().await {
            match msg?.part {
                Some(pb::dataset_upload::Part::Bytes(b)) if b.file == "train" => train.extend_from_slice(&b.data),
                Some(pb::dataset_upload::Part::Bytes(b)) if b.file == "val" => val.extend_from_slice(&b.data),
                _ => {
                    return Err(Status::invalid_argument(
                        "register_dataset: expected bytes of file \"train\" or \"val\"",
                    ));
                }
            }
            if (train.len() + val.len()) as u64 > total {
                return Err(Status::invalid_argument("register_dataset: more bytes than the header announced"));
            }
        }
        let rec = dataset_record(&header, &train, &val).map_err(Status::from)?;
        let out = rec.to_pb();
        self.store.write(move |txn| jobs::put_dataset(txn, &rec, &train, &val)).await?;
        tracing::info!(name = %out.name, sha256 = %out.sha256, tokens = out.train_tokens, "dataset registered");
        Ok(Response::new(out))
    }

    async fn list_datasets(
        &self,
        _: Request<pb::ListDatasetsRequest>,
    ) -> Result<Response<pb::ListDatasetsResponse>, Status> {
        let datasets = jobs::list_datasets(&self.store.read()?)?.iter().map(DatasetRecord::to_pb).collect();
        Ok(Response::new(pb::ListDatasetsResponse { datasets }))
    }

    async fn list_workers(
        &self,
        _: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let workers = jobs::list_workers(&self.store.read()?)?;
        Ok(Response::new(pb::ListWorkersResponse { workers }))
    }
}

/// Checks a dataset upload (sizes, uint16 token ids below the vocabulary) and identifies it.
fn dataset_record(h: &pb::DatasetHeader, train: &[u8], val: &[u8]) -> Result<DatasetRecord> {
    let bad =
        |m: String| CoordError::Invalid(ladder_core::DomainError::message("dataset", format!("{:?}: {m}", h.name)));
    if h.name.is_empty()
        || h.name.len() > 128
        || !h.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(bad("names use 1-128 of [A-Za-z0-9._-]".into()));
    }
    if train.len() as u64 != h.train_bytes || val.len() as u64 != h.val_bytes {
        return Err(bad(format!(
            "received {} + {} bytes, the header announced {} + {}",
            train.len(),
            val.len(),
            h.train_bytes,
            h.val_bytes
        )));
    }
    let (vocab, tokenizer) = if h.meta_json.is_empty() {
        (h.vocab, String::new())
    } else {
        let meta: serde_json::Value =
            serde_json::from_str(&h.meta_json).map_err(|e| bad(format!("meta.json is not JSON: {e}")))?;
        let v =
            meta.get("vocab_size").and_then(|v| v.as_u64()).ok_or_else(|| bad("meta.json lacks vocab_size".into()))?;
        (v as u32, meta.get("tokenizer").and_then(|t| t.as_str()).unwrap_or_default().to_string())
    };
    if vocab == 0 || vocab > 65536 {
        return Err(bad(format!("vocab {vocab} is outside 1..=65536")));
    }
    for (file, bytes) in [("train", train), ("val", val)] {
        if bytes.len() % 2 != 0 || bytes.is_empty() {
            return Err(bad(format!("{file}: {} bytes is not a non-empty uint16 token file", bytes.len())));
        }
        if let Some(pos) = bytes.chunks_exact(2).position(|c| u32::from(u16::from_le_bytes([c[0], c[1]])) >= vocab) {
            let id = u16::from_le_bytes([bytes[2 * pos], bytes[2 * pos + 1]]);
            return Err(bad(format!("{file}: token id {id} at position {pos} is out of range for vocab {vocab}")));
        }
    }
    let mut sha = Sha256::new();
    sha.update(train);
    sha.update(val);
    Ok(DatasetRecord {
        name: h.name.clone(),
        sha256: hex::encode(sha.finalize()),
        meta_json: h.meta_json.clone(),
        vocab,
        tokenizer,
        train_bytes: train.len() as u64,
        val_bytes: val.len() as u64,
        chunks: [train.len().div_ceil(crate::store::CHUNK) as u32, val.len().div_ceil(crate::store::CHUNK) as u32],
    })
}

#[tonic::async_trait]
impl WorkerService for Coordinator {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let q = req.into_inner();
        if q.slots.is_empty() {
            return Err(Status::invalid_argument("register: a worker needs at least one slot"));
        }
        for s in &q.slots {
            ladder_core::job::parse_device(s).map_err(|e| Status::invalid_argument(format!("register: slot {e}")))?;
        }
        let (name, slots) = (q.name.clone(), q.slots.clone());
        let id = self.store.write(move |txn| jobs::register_worker(txn, &name, &slots, now_ms())).await?;
        tracing::info!(worker = %id, slots = ?q.slots, "worker registered");
        Ok(Response::new(pb::RegisterResponse { worker_id: id, lease_ttl_ms: self.ttl_ms() }))
    }

    async fn heartbeat(&self, req: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let q = req.into_inner();
        let ttl = self.ttl_ms();
        let stop = self.store.write(move |txn| jobs::heartbeat(txn, &q.worker_id, &q.running, ttl, now_ms())).await?;
        Ok(Response::new(pb::HeartbeatResponse { stop }))
    }

    async fn acquire(&self, req: Request<pb::AcquireRequest>) -> Result<Response<pb::AcquireResponse>, Status> {
        let q = req.into_inner();
        let wait = Duration::from_millis(q.wait_ms).min(self.cfg.max_wait);
        let deadline = tokio::time::Instant::now() + wait;
        let ttl = self.ttl_ms();
        loop {
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable(); // registered before the claim: no wake-up is lost
            let (w, s, max_jobs, memory_bytes) = (q.worker_id.clone(), q.slot.clone(), q.max_jobs, q.memory_bytes);
            let claimed = self
                .store
                .write(move |txn| {
                    let ask = jobs::SlotAsk { worker_id: &w, slot: &s, max_jobs, memory_bytes };
                    jobs::claim(txn, ask, ttl, now_ms())
                })
                .await?;
            if !claimed.is_empty() {
                let mut assignments = Vec::with_capacity(claimed.len());
                for (a, job) in claimed {
                    tracing::info!(job = a.job_id, attempt = a.attempt, worker = %q.worker_id, "leased");
                    let _ = self.updates.send(job.to_pb());
                    assignments.push(a);
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
        let q = req.into_inner();
        let out = self.store.write(move |txn| jobs::report(txn, &q.worker_id, q.job_id, q.attempt, &q.events)).await?;
        if out.job.state != JobState::Running {
            tracing::info!(job = out.job.id, state = ?out.job.state, failure = ?out.job.failure, "attempt ended");
        }
        self.counters.points.fetch_add(u64::from(out.stored), std::sync::atomic::Ordering::Relaxed);
        self.publish(std::slice::from_ref(&out.job));
        if out.requeued {
            self.work.notify_waiters();
        }
        Ok(Response::new(pb::ReportEventsResponse { stored: out.stored, refused: 0 }))
    }

    async fn upload_checkpoint(
        &self,
        req: Request<Streaming<pb::CheckpointUpload>>,
    ) -> Result<Response<pb::CheckpointInfo>, Status> {
        let mut stream = req.into_inner();
        let h = match stream.next().await {
            Some(Ok(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(h)) })) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("upload_checkpoint: the first message must be the header")),
        };
        // Refuse a stale attempt before taking its bytes.
        jobs::current(&jobs::get_job(&self.store.read()?, h.job_id)?, &h.worker_id, h.attempt)?;
        if h.total_bytes > self.cfg.max_checkpoint_bytes {
            return Err(Status::invalid_argument(format!(
                "checkpoint of job {} is {} bytes, over the cap of {}",
                h.job_id, h.total_bytes, self.cfg.max_checkpoint_bytes
            )));
        }
        let mut blob = Vec::with_capacity(h.total_bytes as usize);
        while let Some(msg) = stream.next().await {
            match msg?.part {
                Some(pb::checkpoint_upload::Part::Data(d)) => blob.extend_from_slice(&d),
                _ => return Err(Status::invalid_argument("upload_checkpoint: a second header")),
            }
            if blob.len() as u64 > h.total_bytes {
                return Err(Status::invalid_argument("upload_checkpoint: more bytes than announced"));
            }
        }
        if blob.len() as u64 != h.total_bytes || hex::encode(Sha256::digest(&blob)) != h.sha256 {
            return Err(Status::data_loss(format!(
                "checkpoint of job {} step {}: bytes do not match the announced size and sha256",
                h.job_id, h.step
            )));
        }
        let bytes = blob.len() as u64;
        let (info, job) = self.store.write(move |txn| jobs::put_checkpoint(txn, &h, &blob)).await?;
        self.counters.checkpoint_bytes.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        self.publish(std::slice::from_ref(&job));
        Ok(Response::new(info))
    }

    type DownloadCheckpointStream = Stream_<pb::Chunk>;

    async fn download_checkpoint(
        &self,
        req: Request<pb::FetchCheckpointRequest>,
    ) -> Result<Response<Self::DownloadCheckpointStream>, Status> {
        let q = req.into_inner();
        let (info, chunks) = jobs::checkpoint_blob(&self.store.read()?, q.job_id, q.step)?;
        Ok(Response::new(Self::chunk_stream(chunks, info.sha256)))
    }

    type FetchDatasetStream = Stream_<pb::Chunk>;

    async fn fetch_dataset(
        &self,
        req: Request<pb::FetchDatasetRequest>,
    ) -> Result<Response<Self::FetchDatasetStream>, Status> {
        let q = req.into_inner();
        let r = self.store.read()?;
        let rec =
            jobs::dataset_by_sha(&r, &q.sha256)?.ok_or_else(|| Status::not_found(format!("dataset {}", q.sha256)))?;
        let chunks = match q.file.as_str() {
            "train" => jobs::dataset_chunks(&r, &q.sha256, 0)?,
            "val" => jobs::dataset_chunks(&r, &q.sha256, 1)?,
            "meta" => vec![rec.meta_json.into_bytes()],
            other => return Err(Status::invalid_argument(format!("fetch_dataset: unknown file {other:?}"))),
        };
        let mut sha = Sha256::new();
        for c in &chunks {
            sha.update(c);
        }
        Ok(Response::new(Self::chunk_stream(chunks, hex::encode(sha.finalize()))))
    }
}
