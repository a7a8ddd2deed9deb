//! The daemon's control loop: [`run`] turns [`Trigger`]s (schedules, resync ticks, webhooks,
//! requests) into reconciles, one at a time, coalescing whatever arrives meanwhile into the
//! next [`Batch`]; [`shutdown_signal`] turns SIGTERM / ctrl-c into a watch flag.
//!
//! It owns ordering and shutdown, not the work: the reconcile is a closure the caller passes,
//! so this module never touches git, GitLab or the core.

pub mod clock;
pub mod schedule;
pub mod trigger;

use std::future::Future;

use tokio::sync::{mpsc, watch};

pub use clock::Clock;
pub use trigger::{Batch, Trigger};

/// Waits for each trigger, drains every trigger already queued into one [`Batch`], runs
/// `reconcile(batch)` to completion, and loops: never two reconciles at once, and triggers that
/// arrive during one coalesce into the next. When `shutdown` turns true it takes no new batch;
/// a reconcile in progress finishes first. Also returns when every trigger sender is gone.
#[tracing::instrument(name = "daemon", skip_all)]
pub async fn run<F, Fut>(
    mut triggers: mpsc::Receiver<Trigger>,
    mut reconcile: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: FnMut(Batch) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let first = tokio::select! {
            // Shutdown wins over a queued trigger.
            biased;
            _ = stopped(&mut shutdown) => break,
            trigger = triggers.recv() => match trigger {
                Some(trigger) => trigger,
                None => break,
            },
        };
        let mut batch = Batch::default();
        batch.absorb(first);
        while let Ok(trigger) = triggers.try_recv() {
            batch.absorb(trigger);
        }
        tracing::info!(
            reasons = ?batch.reasons,
            scheduled = ?batch.scheduled,
            "reconcile starts"
        );
        // Not raced against shutdown: a reconcile is never cut off halfway.
        reconcile(batch).await;
        tracing::debug!("reconcile done");
    }
    tracing::info!("daemon loop stopped");
}

/// A flag that turns true on SIGTERM or ctrl-c (SIGINT). Must be called inside a tokio runtime.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            result = tokio::signal::ctrl_c() => {
                if let Err(error) = result {
                    tracing::warn!(%error, "cannot listen for ctrl-c");
                    std::future::pending::<()>().await;
                }
                tracing::info!("ctrl-c: shutting down");
            }
            () = terminate() => tracing::info!("SIGTERM: shutting down"),
        }
        let _ = tx.send(true);
        // Keep the sender so receivers see the flag, not a closed channel.
        tx.closed().await;
    });
    rx
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}

/// Resolves once `shutdown` is true; never, if its sender is gone without setting it.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EnvName;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A reconcile that takes `takes` of tokio time, recording batches and peak concurrency.
    #[derive(Clone, Default)]
    struct Recorder {
        batches: Arc<Mutex<Vec<Batch>>>,
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
        finished: Arc<AtomicUsize>,
    }

    impl Recorder {
        fn reconcile(&self, takes: Duration) -> impl FnMut(Batch) -> ReconcileFut + use<> {
            let this = self.clone();
            move |batch| {
                let this = this.clone();
                Box::pin(async move {
                    let now = this.running.fetch_add(1, Ordering::SeqCst) + 1;
                    this.peak.fetch_max(now, Ordering::SeqCst);
                    this.batches.lock().unwrap().push(batch);
                    tokio::time::sleep(takes).await;
                    this.running.fetch_sub(1, Ordering::SeqCst);
                    this.finished.fetch_add(1, Ordering::SeqCst);
                })
            }
        }

        fn batches(&self) -> Vec<Batch> {
            self.batches.lock().unwrap().clone()
        }
    }

    type ReconcileFut = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    fn webhook(detail: &str) -> Trigger {
        Trigger::Webhook {
            event: "Pipeline Hook".into(),
            detail: detail.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn triggers_during_a_reconcile_coalesce_into_one_next_batch() {
        let recorder = Recorder::default();
        let (tx, rx) = mpsc::channel(16);
        let (_stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(run(
            rx,
            recorder.reconcile(Duration::from_secs(10)),
            shutdown,
        ));

        tx.send(Trigger::Resync).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(recorder.running.load(Ordering::SeqCst), 1);
        tx.send(Trigger::Schedule(EnvName::from("qa")))
            .await
            .unwrap();
        tx.send(webhook("pipeline 9 success on main"))
            .await
            .unwrap();
        tx.send(Trigger::Schedule(EnvName::from("prod")))
            .await
            .unwrap();
        tx.send(Trigger::Schedule(EnvName::from("qa")))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;

        let batches = recorder.batches();
        assert_eq!(batches.len(), 2, "{batches:?}");
        assert_eq!(batches[0].reasons, ["resync"]);
        assert!(batches[0].scheduled.is_empty());
        assert_eq!(
            batches[1].reasons,
            [
                "schedule of qa",
                "webhook Pipeline Hook: pipeline 9 success on main",
                "schedule of prod",
                "schedule of qa",
            ]
        );
        assert_eq!(
            batches[1]
                .scheduled
                .iter()
                .map(EnvName::as_str)
                .collect::<Vec<_>>(),
            ["prod", "qa"]
        );
        drop(tx);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn never_two_reconciles_at_once() {
        let recorder = Recorder::default();
        let (tx, rx) = mpsc::channel(4);
        let (_stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(run(
            rx,
            recorder.reconcile(Duration::from_millis(700)),
            shutdown,
        ));
        let mut producers = Vec::new();
        for p in 0..4 {
            let tx = tx.clone();
            producers.push(tokio::spawn(async move {
                for i in 0..10 {
                    tx.send(webhook(&format!("{p}.{i}"))).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(300 + 50 * p)).await;
                }
            }));
        }
        drop(tx);
        for producer in producers {
            producer.await.unwrap();
        }
        task.await.unwrap();

        assert_eq!(recorder.peak.load(Ordering::SeqCst), 1);
        let batches = recorder.batches();
        let reasons: usize = batches.iter().map(|b| b.reasons.len()).sum();
        assert_eq!(reasons, 40, "every trigger lands in exactly one batch");
        assert!(batches.len() < 40, "triggers coalesced: {}", batches.len());
        assert!(batches.iter().all(|b| !b.is_empty()));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_the_running_reconcile_and_starts_no_other() {
        let recorder = Recorder::default();
        let (tx, rx) = mpsc::channel(16);
        let (stop, shutdown) = watch::channel(false);
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(run(
            rx,
            recorder.reconcile(Duration::from_secs(30)),
            shutdown,
        ));
        tx.send(Trigger::Resync).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send(Trigger::Resync).await.unwrap();
        stop.send(true).unwrap();

        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            !task.is_finished(),
            "the reconcile in progress is not cut off"
        );
        assert_eq!(recorder.finished.load(Ordering::SeqCst), 0);

        task.await.unwrap();
        assert_eq!(
            start.elapsed().as_secs(),
            30,
            "returned when the reconcile finished"
        );
        assert_eq!(recorder.finished.load(Ordering::SeqCst), 1);
        assert_eq!(recorder.batches().len(), 1, "no reconcile after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn stopped_sees_a_flag_set_before_the_sender_is_dropped() {
        let (tx, mut rx) = watch::channel(false);
        tx.send(true).unwrap();
        drop(tx);
        tokio::time::timeout(Duration::from_secs(1), stopped(&mut rx))
            .await
            .expect("resolves");

        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), stopped(&mut rx))
                .await
                .is_err(),
            "a dropped sender is not a shutdown"
        );
    }
}
