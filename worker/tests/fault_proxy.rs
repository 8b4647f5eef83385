//! A gRPC proxy between a worker and the coordinator:
//! - delays every ReportEvents while checkpoint uploads pass at once; the worker is then killed
//!   (SIGKILL) just after an upload. The job's next attempt resumes from a checkpoint whose curve
//!   is all stored: the finished curve is whole. (Before, an upload could overtake the points
//!   before it, and the kill left a hole.)
//! - refuses the first upload of a branch point for good (the bytes arrived corrupted): the
//!   worker keeps that checkpoint and stores it later, and the branch runs. (Before, the branch
//!   failed for good: "its parent ended at step T, before step S", with T > S.)

use std::pin::Pin;
use std::time::Duration;

use ladder_proto::pb;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use ladder_proto::pb::worker_service_server::{WorkerService, WorkerServiceServer};
use ladder_testkit::procs::*;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

/// How long each ReportEvents is held before it is forwarded.
const DELAY: Duration = Duration::from_millis(1500);

#[derive(Clone)]
struct Proxy {
    up: WorkerServiceClient<Channel>,
    uploads: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Hold each report this long.
    delay: Duration,
    /// Refuse the first upload at this step (DATA_LOSS, final), then let it through.
    refuse_at: Option<u64>,
    refused: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

type Chunks = Pin<Box<dyn Stream<Item = Result<pb::Chunk, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerService for Proxy {
    async fn register(&self, r: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        self.up.clone().register(r.into_inner()).await
    }

    async fn heartbeat(&self, r: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.up.clone().heartbeat(r.into_inner()).await
    }

    async fn acquire(&self, r: Request<pb::AcquireRequest>) -> Result<Response<pb::AcquireResponse>, Status> {
        self.up.clone().acquire(r.into_inner()).await
    }

    async fn report_events(
        &self,
        r: Request<pb::ReportEventsRequest>,
    ) -> Result<Response<pb::ReportEventsResponse>, Status> {
        tokio::time::sleep(self.delay).await;
        self.up.clone().report_events(r.into_inner()).await
    }

    async fn upload_checkpoint(
        &self,
        r: Request<Streaming<pb::CheckpointUpload>>,
    ) -> Result<Response<pb::CheckpointInfo>, Status> {
        let mut msgs = Vec::new();
        let mut s = r.into_inner();
        while let Some(m) = s.next().await {
            msgs.push(m?);
        }
        let step = match msgs.first().and_then(|m| m.part.as_ref()) {
            Some(pb::checkpoint_upload::Part::Header(h)) => h.step,
            _ => 0,
        };
        if self.refuse_at == Some(step) && !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(Status::data_loss("bytes do not match the announced size and sha256"));
        }
        let out = self.up.clone().upload_checkpoint(tokio_stream::iter(msgs)).await;
        if out.is_ok() {
            self.uploads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        out
    }

    type DownloadCheckpointStream = Chunks;

    async fn download_checkpoint(
        &self,
        r: Request<pb::FetchCheckpointRequest>,
    ) -> Result<Response<Self::DownloadCheckpointStream>, Status> {
        let s = self.up.clone().download_checkpoint(r.into_inner()).await?.into_inner();
        Ok(Response::new(Box::pin(s)))
    }

    type FetchDatasetStream = Chunks;

    async fn fetch_dataset(
        &self,
        r: Request<pb::FetchDatasetRequest>,
    ) -> Result<Response<Self::FetchDatasetStream>, Status> {
        let s = self.up.clone().fetch_dataset(r.into_inner()).await?.into_inner();
        Ok(Response::new(Box::pin(s)))
    }
}

/// The proxy in front of the coordinator on `port`, on a port of its own: (its port, its stop, its
/// task).
async fn proxy(
    port: u16,
    delay: Duration,
    refuse_at: Option<u64>,
    uploads: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> (u16, tokio_util::sync::CancellationToken, tokio::task::JoinHandle<Result<(), tonic::transport::Error>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy_port = listener.local_addr().expect("addr").port();
    let up =
        WorkerServiceClient::new(Channel::from_shared(format!("http://127.0.0.1:{port}")).expect("url").connect_lazy());
    let proxy = Proxy { up, uploads, delay, refuse_at, refused: Default::default() };
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    let serving = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(WorkerServiceServer::new(proxy))
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), s.cancelled_owned())
            .await
    });
    (proxy_port, stop, serving)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_point_upload_refused_once_is_stored_later_and_the_branch_runs() {
    let _turn = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let _c = coordinator(&tmp.path().join("coord"));
    let mut users = connect(_c.port).await;
    register_markov(&mut users).await;
    // A constant-rate trunk of 60 steps; a cooldown branch forks at step 20 (10240 tokens).
    let spec = spec("bp", "[[1, 32]]", "[0]", 60).replace("lr = 0.01", "lr = 0.01\nschedule = \"constant\"")
        + "[[branch]]\nfrom = \"main\"\ncooldown = { to_tokens = [20480], fraction = 0.5 }\n[[branch]]\nfrom = \"main\"\nbatch = { at_tokens = [10240], multipliers = [2], window_tokens = 2048, min_steps = 1 }\n";
    submit(&mut users, &spec).await;
    let uploads = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (proxy_port, stop, serving) = proxy(_c.port, Duration::ZERO, Some(20), uploads).await;
    let _w = worker(proxy_port, &tmp.path().join("w"), "full-disk-once");
    let js = wait_for(&mut users, "bp", 300, "every job to end", |js| {
        js.iter().all(|j| {
            pb::JobState::try_from(j.state)
                .is_ok_and(|s| !matches!(s, pb::JobState::Queued | pb::JobState::Running | pb::JobState::Pending))
        })
    })
    .await;
    stop.cancel();
    let _ = serving.await;
    for j in &js {
        assert_eq!(j.state, pb::JobState::Succeeded as i32, "job {}: {}", j.id, j.failure_message);
    }
    let window = js.iter().find(|j| j.branch.as_ref().is_some_and(|b| b.kind == "batch")).expect("the window");
    assert_eq!(window.branch.as_ref().map(|b| b.step), Some(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_reports_and_a_killed_worker_leave_no_hole() {
    let _turn = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let _c = coordinator(&tmp.path().join("coord"));
    let port = _c.port;
    let mut users = connect(port).await;
    register_markov(&mut users).await;

    let uploads = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (proxy_port, stop, serving) = proxy(port, DELAY, None, uploads.clone()).await;

    submit(
        &mut users,
        &spec("proxy", "[[1, 32]]", "[0]", 120).replace("checkpoint_every = 25", "checkpoint_every = 10"),
    )
    .await;
    let w = worker(proxy_port, &tmp.path().join("w1"), "slow-link");
    // Once a checkpoint has passed the proxy while reports lag behind it, the worker dies.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while uploads.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint passed the proxy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(w); // SIGKILL
    stop.cancel();
    let _ = serving.await;
    // A worker on a direct link finishes the job from the newest checkpoint.
    let _w2 = worker(port, &tmp.path().join("w2"), "direct");
    let js = wait_for(&mut users, "proxy", 300, "the job to finish", all_succeeded).await;
    assert_eq!(js[0].attempt, 2, "the second attempt finished it");
    assert!(js[0].resumed_from_step > 0, "it resumed from a checkpoint");
    assert_whole_curve(&mut users, &js[0]).await;
}
