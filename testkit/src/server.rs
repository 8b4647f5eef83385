//! A coordinator served in-process on 127.0.0.1:0 and its clients, and the steps most RPC tests
//! begin with.
use std::time::Duration;

use ladder_coordinator::{Config, ManualClock, Store, serve};
use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub struct Server {
    pub users: LadderClient<Channel>,
    pub workers: WorkerServiceClient<Channel>,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub addr: std::net::SocketAddr,
}

/// A server with `lease_ttl` (its long-poll kept short for tests).
pub async fn start(store: Store, lease_ttl: Duration) -> Server {
    start_with(store, Config { lease_ttl, max_wait: Duration::from_secs(2), ..Config::default() }).await
}

/// The settings of a server whose time stands still until the test moves `clock`; its reaper
/// looks every 10 ms, so an expiry the test causes is seen at once.
pub fn clocked(lease_ttl: Duration, clock: &ManualClock) -> Config {
    Config {
        lease_ttl,
        max_wait: Duration::from_secs(2),
        clock: std::sync::Arc::new(clock.clone()),
        reap_every: Some(Duration::from_millis(10)),
        ..Config::default()
    }
}

/// A server on `clock` (see [`clocked`]).
pub async fn start_clocked(store: Store, lease_ttl: Duration, clock: &ManualClock) -> Server {
    start_with(store, clocked(lease_ttl, clock)).await
}

/// Polls `check` every 10 ms until it holds, for at most 5 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Server {
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Registers "tiny": 4000 train and 1000 val tokens counting modulo 50, vocabulary 64.
pub async fn register_dataset(users: &mut LadderClient<Channel>) -> pb::Dataset {
    let msgs =
        crate::data::upload("tiny", crate::data::cycle_tokens(4000, 50), crate::data::cycle_tokens(1000, 50), 64);
    users.register_dataset(tokio_stream::iter(msgs)).await.expect("register").into_inner()
}

/// A sweep "fence" of two one-layer jobs on "tiny", 5 steps each, one restart allowed.
pub const SPEC: &str = r#"name = "fence"
dataset = "tiny"
seeds = [0, 1]
[model]
n_ctx = 16
d_head = 8
shapes = [[1, 16]]
[train]
batch_tokens = 64
steps = 5
lr = 0.01
[resources]
device = "cpu"
max_restarts = 1
"#;

/// A metric point of `step` with train loss `loss` (64 tokens a step).
pub fn point(step: u64, loss: f64) -> pb::AttemptEvent {
    pb::AttemptEvent {
        kind: Some(pb::attempt_event::Kind::Metrics(pb::MetricPoint {
            step,
            tokens: step * 64,
            train_loss: loss,
            ..Default::default()
        })),
    }
}

/// The trainer's end at `step` (the stop rule's steps were reached).
pub fn finished(step: u64) -> pb::AttemptEvent {
    pb::AttemptEvent {
        kind: Some(pb::attempt_event::Kind::Finished(pb::AttemptFinished { step, reason: "steps".into() })),
    }
}

/// A report of `events` for the attempt of `a`.
pub fn report(worker: &str, a: &pb::Assignment, events: Vec<pb::AttemptEvent>) -> pb::ReportEventsRequest {
    pb::ReportEventsRequest { worker_id: worker.into(), job_id: a.job_id, attempt: a.attempt, events }
}

/// One Acquire of a CPU slot, waiting up to 200 ms.
pub async fn acquire(w: &mut WorkerServiceClient<Channel>, id: &str) -> Option<pb::Assignment> {
    let req = pb::AcquireRequest { worker_id: id.into(), slot: "cpu".into(), wait_ms: 200, ..Default::default() };
    w.acquire(req).await.expect("acquire").into_inner().assignment
}

/// A server with `cfg` (its lease length and long-poll kept short for tests).
pub async fn start_with(store: Store, cfg: Config) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move { serve(store, cfg, listener, s).await.expect("serve") });
    let channel = Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();
    Server { users: LadderClient::new(channel.clone()), workers: WorkerServiceClient::new(channel), stop, task, addr }
}

/// Registers a worker with one CPU slot; returns its id.
pub async fn register_worker(w: &mut WorkerServiceClient<Channel>, name: &str) -> String {
    let req = pb::RegisterRequest { name: name.into(), slots: vec!["cpu".into()], ..Default::default() };
    w.register(req).await.expect("register").into_inner().worker_id
}

impl Server {
    /// A server on an in-memory store with "tiny" registered, [`SPEC`] (or `spec`) submitted and
    /// a worker "w" registered: the start of most RPC tests. Returns the server and the worker id.
    pub async fn with_sweep(lease_ttl: Duration, spec: Option<&str>) -> (Server, String) {
        let mut s = start(Store::in_memory().expect("store"), lease_ttl).await;
        register_dataset(&mut s.users).await;
        let spec_toml = spec.unwrap_or(SPEC).to_string();
        s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml, ..Default::default() }).await.expect("submit");
        let w = register_worker(&mut s.workers, "w").await;
        (s, w)
    }
}

/// The messages of a checkpoint upload of `blob` for the attempt of `a` at `step`: the header,
/// then the bytes in pieces of 300 kB.
pub fn checkpoint_msgs(worker: &str, a: &pb::Assignment, step: u64, blob: &[u8]) -> Vec<pb::CheckpointUpload> {
    use sha2::{Digest, Sha256};
    let header = pb::CheckpointHeader {
        worker_id: worker.into(),
        job_id: a.job_id,
        attempt: a.attempt,
        step,
        total_bytes: blob.len() as u64,
        sha256: hex::encode(Sha256::digest(blob)),
    };
    let mut msgs = vec![pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(header)) }];
    for c in blob.chunks(300_000) {
        msgs.push(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Data(c.to_vec())) });
    }
    msgs
}

/// Uploads `blob` as the checkpoint at `step` of the attempt of `a`.
pub async fn upload_checkpoint(
    w: &mut WorkerServiceClient<Channel>,
    worker: &str,
    a: &pb::Assignment,
    step: u64,
    blob: &[u8],
) -> Result<pb::CheckpointInfo, tonic::Status> {
    w.upload_checkpoint(tokio_stream::iter(checkpoint_msgs(worker, a, step, blob))).await.map(|r| r.into_inner())
}

/// The bytes of job `job_id`'s checkpoint at `step` (0: the newest), as a worker downloads them.
pub async fn download_checkpoint(
    w: &mut WorkerServiceClient<Channel>,
    job_id: u64,
    step: u64,
) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = w.download_checkpoint(pb::FetchCheckpointRequest { job_id, step }).await?.into_inner();
    let mut out = Vec::new();
    while let Some(c) = tokio_stream::StreamExt::next(&mut stream).await {
        out.extend(c?.data);
    }
    Ok(out)
}
