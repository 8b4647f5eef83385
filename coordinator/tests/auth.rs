//! Must show 2 of the security issue: a table over every RPC of both services. With tokens
//! configured, a call with no token or a wrong token is UNAUTHENTICATED, a call with a role the
//! service does not admit is PERMISSION_DENIED, and the right role gets through (whatever the
//! call then answers: NOT_FOUND for a missing sweep is still "through").
use std::future::Future;
use std::pin::Pin;

use ladder_coordinator::auth::Role;
use ladder_coordinator::{Config, Store, serve};
use ladder_proto::auth::{AuthChannel, Bearer};
use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

const ADMIN: &str = "admin-token";
const USER: &str = "user-token";
const WORKER: &str = "worker-token";

struct Clients {
    users: LadderClient<AuthChannel>,
    workers: WorkerServiceClient<AuthChannel>,
}

type Call = fn(Clients) -> Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>;

fn ok<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<(), tonic::Status> {
    r.map(|_| ())
}

fn rpcs() -> Vec<(&'static str, bool, Call)> {
    // (name, is a WorkerService RPC, the call)
    vec![
        ("SubmitSweep", false, |mut c| {
            Box::pin(async move {
                ok(c.users
                    .submit_sweep(pb::SubmitSweepRequest { spec_toml: "name = 1".into(), ..Default::default() })
                    .await)
            })
        }),
        ("GetSweep", false, |mut c| {
            Box::pin(async move { ok(c.users.get_sweep(pb::GetSweepRequest { sweep: "none".into() }).await) })
        }),
        ("ListSweeps", false, |mut c| {
            Box::pin(async move { ok(c.users.list_sweeps(pb::ListSweepsRequest::default()).await) })
        }),
        ("CancelSweep", false, |mut c| {
            Box::pin(async move { ok(c.users.cancel_sweep(pb::CancelSweepRequest { sweep: "none".into() }).await) })
        }),
        ("ListJobs", false, |mut c| {
            Box::pin(async move { ok(c.users.list_jobs(pb::ListJobsRequest { sweep: "none".into() }).await) })
        }),
        ("GetJob", false, |mut c| Box::pin(async move { ok(c.users.get_job(pb::GetJobRequest { job_id: 99 }).await) })),
        ("WatchJobs", false, |mut c| {
            Box::pin(async move { ok(c.users.watch_jobs(pb::WatchJobsRequest { sweep: "none".into() }).await) })
        }),
        ("GetCurve", false, |mut c| {
            Box::pin(
                async move { ok(c.users.get_curve(pb::GetCurveRequest { job_id: 99, after_step: 0, limit: 0 }).await) },
            )
        }),
        ("ListCheckpoints", false, |mut c| {
            Box::pin(async move { ok(c.users.list_checkpoints(pb::ListCheckpointsRequest { job_id: 99 }).await) })
        }),
        ("FetchCheckpoint", false, |mut c| {
            Box::pin(
                async move { ok(c.users.fetch_checkpoint(pb::FetchCheckpointRequest { job_id: 99, step: 0 }).await) },
            )
        }),
        ("RegisterDataset", false, |mut c| {
            Box::pin(
                async move { ok(c.users.register_dataset(tokio_stream::iter(Vec::<pb::DatasetUpload>::new())).await) },
            )
        }),
        ("ListDatasets", false, |mut c| {
            Box::pin(async move { ok(c.users.list_datasets(pb::ListDatasetsRequest {}).await) })
        }),
        ("ListWorkers", false, |mut c| {
            Box::pin(async move { ok(c.users.list_workers(pb::ListWorkersRequest {}).await) })
        }),
        ("Register", true, |mut c| {
            Box::pin(async move {
                ok(c.workers
                    .register(pb::RegisterRequest { name: "w".into(), slots: vec!["cpu".into()], ..Default::default() })
                    .await)
            })
        }),
        ("Heartbeat", true, |mut c| {
            Box::pin(async move {
                ok(c.workers.heartbeat(pb::HeartbeatRequest { worker_id: "none".into(), running: vec![] }).await)
            })
        }),
        ("Acquire", true, |mut c| {
            Box::pin(async move {
                ok(c.workers
                    .acquire(pb::AcquireRequest {
                        worker_id: "none".into(),
                        slot: "cpu".into(),
                        wait_ms: 1,
                        ..Default::default()
                    })
                    .await)
            })
        }),
        ("ReportEvents", true, |mut c| {
            Box::pin(async move {
                ok(c.workers
                    .report_events(pb::ReportEventsRequest {
                        worker_id: "none".into(),
                        job_id: 99,
                        attempt: 1,
                        events: vec![],
                    })
                    .await)
            })
        }),
        ("UploadCheckpoint", true, |mut c| {
            Box::pin(async move {
                ok(c.workers.upload_checkpoint(tokio_stream::iter(Vec::<pb::CheckpointUpload>::new())).await)
            })
        }),
        ("DownloadCheckpoint", true, |mut c| {
            Box::pin(async move {
                ok(c.workers.download_checkpoint(pb::FetchCheckpointRequest { job_id: 99, step: 0 }).await)
            })
        }),
        ("FetchDataset", true, |mut c| {
            Box::pin(async move {
                ok(c.workers.fetch_dataset(pb::FetchDatasetRequest { sha256: "00".into(), file: "train".into() }).await)
            })
        }),
    ]
}

fn clients(channel: &Channel, token: Option<&str>) -> Clients {
    let bearer = Bearer::new(token).expect("token");
    Clients {
        users: LadderClient::new(InterceptedService::new(channel.clone(), bearer.clone())),
        workers: WorkerServiceClient::new(InterceptedService::new(channel.clone(), bearer)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rpc_checks_token_and_role() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let tokens = vec![(Role::Admin, ADMIN.into()), (Role::User, USER.into()), (Role::Worker, WORKER.into())];
    let cfg = Config { tokens, ..Config::default() };
    let s = stop.clone();
    let server = tokio::spawn(async move { serve(Store::in_memory().expect("store"), cfg, listener, s).await });
    let channel = Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();

    let table = rpcs();
    assert_eq!(table.len(), 20, "13 Ladder RPCs and 7 WorkerService RPCs");
    for (name, worker_rpc, call) in table {
        let (right, wrong_role) = if worker_rpc { (WORKER, USER) } else { (USER, WORKER) };
        let cases: [(Option<&str>, Option<Code>); 5] = [
            (None, Some(Code::Unauthenticated)),
            (Some("not-a-token"), Some(Code::Unauthenticated)),
            (Some(wrong_role), Some(Code::PermissionDenied)),
            (Some(right), None),
            (Some(ADMIN), None),
        ];
        for (token, refused) in cases {
            let got = call(clients(&channel, token)).await;
            let code = got.as_ref().err().map(|s| s.code());
            match refused {
                Some(want) => assert_eq!(code, Some(want), "{name} with {token:?}: {got:?}"),
                None => assert!(
                    !matches!(code, Some(Code::Unauthenticated | Code::PermissionDenied | Code::Unavailable)),
                    "{name} with {token:?} must get through: {got:?}"
                ),
            }
        }
    }
    stop.cancel();
    let _ = server.await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_needs_no_token_and_reflection_needs_one() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let cfg = Config { tokens: vec![(Role::User, USER.into())], ..Config::default() };
    let s = stop.clone();
    let server = tokio::spawn(async move { serve(Store::in_memory().expect("store"), cfg, listener, s).await });
    let channel = Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();

    let mut health = HealthClient::new(channel.clone());
    let req = tonic_health::pb::HealthCheckRequest { service: "ladder.v1.Ladder".into() };
    let status = health.check(req).await.expect("health without a token").into_inner().status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    let list = || {
        tokio_stream::iter(vec![ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }])
    };
    let mut anon = ServerReflectionClient::new(channel.clone());
    let err = anon.server_reflection_info(list()).await.expect_err("reflection without a token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut authed =
        ServerReflectionClient::new(InterceptedService::new(channel.clone(), Bearer::new(Some(USER)).expect("token")));
    let mut stream = authed.server_reflection_info(list()).await.expect("reflection").into_inner();
    let first = stream.message().await.expect("reply").expect("one message");
    let Some(MessageResponse::ListServicesResponse(l)) = first.message_response else { panic!("{first:?}") };
    let names: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"ladder.v1.Ladder".to_string()) && names.contains(&"ladder.v1.WorkerService".to_string()),
        "{names:?}"
    );

    // v1alpha too (grpcio-reflection, grpcui and older grpcurl speak only it), behind the token.
    use tonic_reflection::pb::v1alpha as alpha;
    let list = || {
        tokio_stream::iter(vec![alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
        }])
    };
    let mut anon = alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let err = anon.server_reflection_info(list()).await.expect_err("v1alpha without a token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut authed = alpha::server_reflection_client::ServerReflectionClient::new(InterceptedService::new(
        channel,
        Bearer::new(Some(USER)).expect("token"),
    ));
    let mut stream = authed.server_reflection_info(list()).await.expect("v1alpha reflection").into_inner();
    let first = stream.message().await.expect("reply").expect("one message");
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(l)) = first.message_response
    else {
        panic!("{first:?}")
    };
    assert!(l.service.iter().any(|s| s.name == "ladder.v1.Ladder"), "{:?}", l.service);
    stop.cancel();
    let _ = server.await;
}

#[test]
fn worker_tokens_come_from_a_file_of_lines_or_a_folder_of_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("tokens.txt");
    std::fs::write(
        &file,
        "# one per worker\nAAAA1111bbbb2222cccc3333dddd4444\n\n  EEEE5555ffff6666gggg7777hhhh8888  \n",
    )
    .expect("write");
    let from_file = ladder_coordinator::auth::worker_tokens(&file).expect("reads");
    assert_eq!(from_file, vec!["AAAA1111bbbb2222cccc3333dddd4444", "EEEE5555ffff6666gggg7777hhhh8888"]);
    // A mounted Kubernetes Secret: one file per key, beside its hidden ..data links.
    let dir = tmp.path().join("secret");
    std::fs::create_dir_all(dir.join("..data")).expect("mkdir");
    std::fs::write(dir.join("ladder-worker-1"), "token-of-worker-1-aaaabbbbccccdddd\n").expect("write");
    std::fs::write(dir.join("ladder-worker-0"), "token-of-worker-0-aaaabbbbccccdddd").expect("write");
    std::fs::write(dir.join("..data").join("ladder-worker-0"), "hidden").expect("write");
    let from_dir = ladder_coordinator::auth::worker_tokens(&dir).expect("reads");
    assert_eq!(from_dir, vec!["token-of-worker-0-aaaabbbbccccdddd", "token-of-worker-1-aaaabbbbccccdddd"]);
}

/// Unauthenticated HTTP/2 connections: one that makes no authenticated call within
/// `auth_within` is closed, however it keeps the connection alive; one that does is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_authenticates_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let cfg = Config {
        tokens: vec![(Role::Admin, ADMIN.into())],
        auth_within: std::time::Duration::from_millis(500),
        ..Config::default()
    };
    let s = stop.clone();
    tokio::spawn(async move { serve(Store::in_memory().expect("store"), cfg, listener, s).await });
    // The HTTP/2 preface and a SETTINGS frame, then nothing but silence.
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    sock.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.expect("preface");
    let began = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an unauthenticated connection was kept past its 500 ms");
    assert!(began.elapsed() >= std::time::Duration::from_millis(400), "closed too soon: {:?}", began.elapsed());
    // An authenticated client's calls go on past that time on one connection.
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut users = LadderClient::new(AuthChannel::new(channel, Bearer::new(Some(ADMIN)).expect("token")));
    users.list_sweeps(pb::ListSweepsRequest::default()).await.expect("first call");
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    users.list_sweeps(pb::ListSweepsRequest::default()).await.expect("a call after the deadline");
    stop.cancel();
}
