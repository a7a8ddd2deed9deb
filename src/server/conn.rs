//! Accepting and serving connections with the limits `axum::serve` does not expose, so that
//! clients that connect and then stall cannot exhaust the daemon's file descriptors:
//!
//! - a request head must arrive within [`HEADER_READ_TIMEOUT`] of the server starting to wait
//!   for it; hyper starts that timer again while a kept-alive connection waits for its next
//!   request, so the same limit closes idle keep-alive connections ([`KEEP_ALIVE_IDLE`]);
//! - at most [`MAX_CONNECTIONS`] are open at once: the accept loop waits for a free slot, so a
//!   flood waits in the kernel's backlog instead of holding descriptors in the process;
//! - no connection lives longer than [`MAX_CONNECTION_AGE`]: then it is asked to finish its
//!   request and close, and is dropped if it has not within [`SHUTDOWN_GRACE`];
//! - on shutdown the loop stops accepting, every connection is asked to finish, and those
//!   still open after [`SHUTDOWN_GRACE`] are dropped.
//!
//! HTTP/1.1 only: GitLab, Slack, Mattermost and probes all speak it.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// How long a client may take to send a request's line and headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request (hyper's header timer).
pub const KEEP_ALIVE_IDLE: Duration = HEADER_READ_TIMEOUT;
/// How many connections may be open at once.
pub const MAX_CONNECTIONS: usize = 256;
/// How long one connection may live, requests included.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// How long a connection asked to close may take to finish its request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The limits one server applies (the constants above unless a test shortens them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`MAX_CONNECTION_AGE`].
    pub max_age: Duration,
    /// See [`SHUTDOWN_GRACE`].
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_age: MAX_CONNECTION_AGE,
            grace: SHUTDOWN_GRACE,
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` turns true, then lets open
/// requests finish for at most `limits.grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = stopped(&mut shutdown) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        connections.spawn(connection(
            stream,
            app.clone(),
            limits,
            closing_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    let open = connections.len();
    let finished = tokio::time::timeout(limits.grace + Duration::from_millis(100), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            open,
            "connections still open after the shutdown grace: closed"
        );
        connections.abort_all();
    }
}

/// Resolves once `flag` is true; never, if its sender is gone without setting it.
async fn stopped(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Serves one connection; `_slot` frees its place among [`Limits::max_connections`] on return.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let mut conn = std::pin::pin!(conn);
    let told_to_close = async {
        tokio::select! {
            () = tokio::time::sleep(limits.max_age) => {}
            () = stopped(&mut closing) => {}
        }
    };
    tokio::select! {
        result = conn.as_mut() => return finished(result),
        () = told_to_close => conn.as_mut().graceful_shutdown(),
    }
    match tokio::time::timeout(limits.grace, conn).await {
        Ok(result) => finished(result),
        Err(_) => tracing::debug!("connection did not finish its request in time: closed"),
    }
}

fn finished(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        // A stalled or broken client: its own doing, not a server fault.
        tracing::debug!(%error, "connection closed");
    }
}

/// After a failed accept: a client that went away is nothing; anything else (out of file
/// descriptors) is logged and waited out, as `axum::serve` does.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn short() -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(300),
            max_connections: 2,
            max_age: Duration::from_secs(60),
            grace: Duration::from_millis(300),
        }
    }

    async fn start(limits: Limits) -> (std::net::SocketAddr, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/healthz", get(|| async { "ok" }));
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(serve(listener, app, limits, shutdown));
        (addr, stop)
    }

    /// Reads until the server closes the connection; how long that took.
    async fn until_closed(stream: &mut TcpStream) -> (Duration, String) {
        let started = Instant::now();
        let mut seen = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut seen));
        read.await
            .expect("the server never closed the connection")
            .unwrap_or_default();
        (
            started.elapsed(),
            String::from_utf8_lossy(&seen).into_owned(),
        )
    }

    #[tokio::test]
    async fn a_partial_head_and_an_idle_keep_alive_are_closed() {
        let (addr, _stop) = start(short()).await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(b"GET /healthz HTTP/1.1\r\nHo")
            .await
            .unwrap();
        let (took, _) = until_closed(&mut stalled).await;
        assert!(took < Duration::from_secs(2), "{took:?}");

        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (took, answer) = until_closed(&mut idle).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn past_the_cap_a_connection_waits_for_a_free_slot() {
        let limits = Limits {
            header_read_timeout: Duration::from_secs(1),
            ..short()
        };
        let (addr, _stop) = start(limits).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"GET /").await.unwrap();
            held.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let mut third = TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (_, answer) = until_closed(&mut third).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Served only once the stalled two were closed by their header timeout.
        assert!(
            started.elapsed() >= Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_closes_stalled_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, shutdown) = watch::channel(false);
        let limits = Limits {
            header_read_timeout: Duration::from_secs(60),
            ..short()
        };
        let server = tokio::spawn(serve(listener, Router::new(), limits, shutdown));
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled.write_all(b"GET /").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(3), server)
            .await
            .expect("the server stops despite a stalled client")
            .unwrap();
        until_closed(&mut stalled).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    }
}
