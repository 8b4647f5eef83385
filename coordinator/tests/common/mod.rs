//! The harness of the coordinator's RPC tests: a real server on 127.0.0.1:0 and its clients.
#![allow(dead_code)]
use std::time::Duration;

use ladder_coordinator::{Config, Store, serve};
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

pub async fn start(store: Store, lease_ttl: Duration) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let cfg = Config { lease_ttl, max_wait: Duration::from_secs(2), ..Config::default() };
    let s = stop.clone();
    let task = tokio::spawn(async move { serve(store, cfg, listener, s).await.expect("serve") });
    let channel = Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();
    Server { users: LadderClient::new(channel.clone()), workers: WorkerServiceClient::new(channel), stop, task, addr }
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

pub async fn register_dataset(users: &mut LadderClient<Channel>) -> pb::Dataset {
    let tokens: Vec<u8> = (0..4000u16).flat_map(|i| (i % 50).to_le_bytes()).collect();
    let val: Vec<u8> = (0..1000u16).flat_map(|i| (i % 50).to_le_bytes()).collect();
    let header = pb::DatasetHeader {
        name: "tiny".into(),
        meta_json: String::new(),
        train_bytes: tokens.len() as u64,
        val_bytes: val.len() as u64,
        vocab: 64,
    };
    let msgs = vec![
        pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Header(header)) },
        pb::DatasetUpload {
            part: Some(pb::dataset_upload::Part::Bytes(pb::DatasetBytes { file: "train".into(), data: tokens })),
        },
        pb::DatasetUpload {
            part: Some(pb::dataset_upload::Part::Bytes(pb::DatasetBytes { file: "val".into(), data: val })),
        },
    ];
    users.register_dataset(tokio_stream::iter(msgs)).await.expect("register").into_inner()
}

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

pub fn report(worker: &str, a: &pb::Assignment, events: Vec<pb::AttemptEvent>) -> pb::ReportEventsRequest {
    pb::ReportEventsRequest { worker_id: worker.into(), job_id: a.job_id, attempt: a.attempt, events }
}

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

pub async fn register_worker(w: &mut WorkerServiceClient<Channel>, name: &str) -> String {
    let req = pb::RegisterRequest { name: name.into(), slots: vec!["cpu".into()] };
    w.register(req).await.expect("register").into_inner().worker_id
}
