//! The coordinator's listener: a deep accept backlog, a cap on the connections held at once, and
//! no connection kept that does not speak within [`crate::service::Config::first_bytes`].
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Connections held at once; past this a new one is closed until one ends (each holds a file
/// descriptor and HTTP/2 state).
pub const MAX_CONNECTIONS: usize = 16_384;

/// An accepted connection that holds one of the [`MAX_CONNECTIONS`] places while it lives.
pub struct Capped {
    sock: TcpStream,
    _place: OwnedSemaphorePermit,
}

impl AsyncRead for Capped {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.sock).poll_read(cx, buf)
    }
}

impl AsyncWrite for Capped {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.sock).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.sock).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.sock).poll_shutdown(cx)
    }
}

impl Connected for Capped {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.sock.connect_info()
    }
}

/// The accepted connections that sent the 24 bytes of a preface (or a ClientHello) within
/// `deadline` ([`Config::first_bytes`]): a silent connection holds nothing for long.
pub(crate) fn guarded(
    listener: TcpListener,
    deadline: std::time::Duration,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<Capped>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let (sock, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, say: wait for some to free rather than spin.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(place) = places.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "closed a connection: {MAX_CONNECTIONS} are open");
                continue;
            };
            // Small replies (heartbeats, acks) leave at once rather than after a delayed ACK.
            let _ = sock.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 24];
                let ready = tokio::time::timeout(deadline, async {
                    loop {
                        match sock.peek(&mut buf).await {
                            Ok(n) if n >= buf.len() => return true,
                            Ok(0) | Err(_) => return false,
                            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                        }
                    }
                })
                .await;
                if matches!(ready, Ok(true)) {
                    let _ = tx.send(Ok(Capped { sock, _place: place })).await;
                } else {
                    tracing::debug!(%peer, "closed a connection that sent no preface within {deadline:?}");
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Connections the kernel queues for accept. A cluster's workers start together (a Slurm array,
/// a Deployment scaled up): `TcpListener::bind` queues 128 (the 129th of a burst timed out in
/// `tests/listen.rs`), the queue overflowed at 1000 workers, and a connection whose handshake was
/// dropped there was reset once it sent its first request. The kernel caps this at
/// `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` (host:port; the first address it resolves to that binds), with
/// [`LISTEN_BACKLOG`].
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(a) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr} resolves to no address"))
    }))
}
