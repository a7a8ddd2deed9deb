//! Entry point of the `client` service: reads its settings from the
//! environment, serves the calculator on `0.0.0.0:$CLIENT_PORT`, forwarding
//! calculations to `$MATHS_API_ENDPOINT`, and shuts down gracefully on
//! SIGTERM or ctrl-c.

use std::env::{self, VarError};
use std::io::{self, IsTerminal};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Context, bail};
use client::Config;
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
            eprintln!("client: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let port = match setting("CLIENT_PORT")? {
        Some(value) => client::parse_port(&value).context("invalid CLIENT_PORT")?,
        None => client::DEFAULT_PORT,
    };
    let endpoint = setting("MATHS_API_ENDPOINT")?;
    let config = Config::new(
        endpoint
            .as_deref()
            .unwrap_or(client::DEFAULT_MATHS_API_ENDPOINT),
    )
    .context("invalid MATHS_API_ENDPOINT")?;
    let router = client::router(config.clone()).context("cannot create the HTTP client")?;

    let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(
        %address,
        maths_api = config.endpoint(),
        version = env!("CARGO_PKG_VERSION"),
        "client listening"
    );

    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    tracing::info!("client stopped");
    Ok(())
}

/// The value of the variable `name`, or `None` when unset or empty.
fn setting(name: &str) -> anyhow::Result<Option<String>> {
    match env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(VarError::NotPresent) => Ok(None),
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
