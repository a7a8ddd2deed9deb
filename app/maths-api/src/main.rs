//! Entry point of the `maths-api` service: reads its settings from the
//! environment, serves the API on `0.0.0.0:$MATHS_API_PORT` and shuts down
//! gracefully on SIGTERM or ctrl-c.

use std::env::{self, VarError};
use std::io::{self, IsTerminal};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(io::stdout().is_terminal())
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("maths-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let port = port_from_env("MATHS_API_PORT")?;
    let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(%address, version = env!("CARGO_PKG_VERSION"), "maths-api listening");

    axum::serve(listener, maths_api::router())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    tracing::info!("maths-api stopped");
    Ok(())
}

/// The port in the variable `name`, or the default when unset or empty.
fn port_from_env(name: &str) -> anyhow::Result<u16> {
    match env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(maths_api::DEFAULT_PORT),
        Ok(value) => maths_api::parse_port(&value).with_context(|| format!("invalid {name}")),
        Err(VarError::NotPresent) => Ok(maths_api::DEFAULT_PORT),
        Err(VarError::NotUnicode(_)) => bail!("invalid {name}: not valid UTF-8"),
    }
}

/// Completes on SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
