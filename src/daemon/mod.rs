//! The daemon's one loop: [`run`] takes every [`Trigger`] (schedules, resync ticks, webhooks,
//! people's [`ChatRequest`]s) from one inbox and does one job at a time: a reconcile of the
//! [`Batch`] of triggers that piled up, or a person's command that needs a reconcile. While a
//! job runs it keeps reading the inbox, so a person's request is answered at once when it
//! needs no reconcile, queued (up to [`Work::bound`]) when it does, and answered "busy" past
//! that. [`shutdown_signal`] turns SIGTERM / ctrl-c into a watch flag.
//!
//! It owns ordering and shutdown, not the work: the wiring implements [`Work`], so this module
//! never touches git, GitLab or the core. [`trigger`], [`request`] and [`clock`] are the
//! vocabulary the HTTP server shares with it.

pub mod clock;
pub mod request;
pub mod schedule;
pub mod trigger;
mod turns;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, watch};

pub use clock::Clock;
pub use request::{Asker, ChatRequest, FirstAnswer, ReplyTo};
pub use trigger::{Batch, Trigger};

/// How many people's commands that need a reconcile may be waiting or running at once.
pub const MAX_WAITING: usize = 16;

/// One job of the loop.
#[derive(Debug)]
pub enum Job<J> {
    /// A reconcile answering these triggers.
    Reconcile(Batch),
    /// A person's command, as [`Work::triage`] prepared it.
    Person(J),
}

/// What the loop runs: the wiring's reconcile and chat handlers.
pub trait Work: Sync {
    /// A person's command prepared to run in its turn.
    type Job: Send;

    /// Answers `request` at once when it needs no reconcile (or when there is no `room`: then
    /// "busy") and returns `None`; else returns the job to queue.
    fn triage(&self, request: ChatRequest, room: bool) -> Option<Self::Job>;

    /// One reconcile of `batch`.
    fn reconcile(&self, batch: Batch) -> impl Future<Output = ()> + Send + '_;

    /// One person's job, answering them when done.
    fn run(&self, job: Self::Job) -> impl Future<Output = ()> + Send + '_;

    /// How many people's jobs may wait or run at once.
    fn bound(&self) -> usize {
        MAX_WAITING
    }
}

/// Waits for triggers and runs one job at a time until `shutdown` turns true or every sender
/// of `inbox` is gone (then it finishes what waits). Reconcile triggers that arrive during a
/// job coalesce into the next batch; a reconcile in progress is never cut off.
#[tracing::instrument(name = "daemon", skip_all)]
pub async fn run<W: Work>(
    mut inbox: mpsc::Receiver<Trigger>,
    work: &W,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut turns = turns::Turns::default();
    let mut open = true;
    loop {
        if turns.is_idle() {
            if !open {
                break;
            }
            tokio::select! {
                // Shutdown wins over a queued trigger.
                biased;
                _ = stopped(&mut shutdown) => break,
                trigger = inbox.recv() => match trigger {
                    Some(trigger) => turns.take(trigger, work),
                    None => open = false,
                },
            }
        }
        while let Ok(trigger) = inbox.try_recv() {
            turns.take(trigger, work);
        }
        if *shutdown.borrow() {
            break;
        }
        let Some(job) = turns.next() else {
            continue;
        };
        let mut running: Pin<Box<dyn Future<Output = ()> + Send + '_>> = match job {
            Job::Reconcile(batch) => {
                tracing::info!(
                    reasons = ?batch.reasons,
                    scheduled = ?batch.scheduled,
                    "reconcile starts"
                );
                Box::pin(work.reconcile(batch))
            }
            Job::Person(job) => Box::pin(work.run(job)),
        };
        // Not raced against shutdown: a job is never cut off halfway. The inbox is read
        // meanwhile, so people get their answer without waiting for it.
        loop {
            tokio::select! {
                biased;
                () = &mut running => break,
                trigger = inbox.recv(), if open => match trigger {
                    Some(trigger) => turns.take(trigger, work),
                    None => open = false,
                },
            }
        }
        turns.done();
        tracing::debug!("job done");
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

    /// A reconcile that takes `takes` of tokio time, recording batches and peak concurrency;
    /// people's jobs take as long and are recorded by their text.
    #[derive(Clone, Default)]
    struct Recorder {
        takes: Duration,
        batches: Arc<Mutex<Vec<Batch>>>,
        people: Arc<Mutex<Vec<String>>>,
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
        finished: Arc<AtomicUsize>,
    }

    impl Recorder {
        fn taking(takes: Duration) -> Self {
            Self {
                takes,
                ..Self::default()
            }
        }

        fn batches(&self) -> Vec<Batch> {
            self.batches.lock().unwrap().clone()
        }

        async fn busy(&self) {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.takes).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.finished.fetch_add(1, Ordering::SeqCst);
        }

        /// Spawns the loop on this recorder.
        fn spawn(
            &self,
            rx: mpsc::Receiver<Trigger>,
            shutdown: watch::Receiver<bool>,
        ) -> tokio::task::JoinHandle<()> {
            let work = self.clone();
            tokio::spawn(async move { run(rx, &work, shutdown).await })
        }
    }

    /// `status` is answered at once; anything else waits for its turn (bound 2).
    impl Work for Recorder {
        type Job = (String, tokio::sync::oneshot::Sender<String>);

        fn triage(&self, request: ChatRequest, room: bool) -> Option<Self::Job> {
            let ReplyTo::Http(reply) = request.reply else {
                return None;
            };
            if request.text == "status" {
                let _ = reply.send(FirstAnswer::Done("all fine".into()));
                return None;
            }
            if !room {
                let _ = reply.send(FirstAnswer::Busy);
                return None;
            }
            let (done, result) = tokio::sync::oneshot::channel();
            let note = "working".to_string();
            reply.send(FirstAnswer::Working { note, result }).ok()?;
            Some((request.text, done))
        }

        fn reconcile(&self, batch: Batch) -> impl Future<Output = ()> + Send + '_ {
            self.batches.lock().unwrap().push(batch);
            self.busy()
        }

        async fn run(&self, (text, done): Self::Job) {
            self.busy().await;
            self.people.lock().unwrap().push(text.clone());
            let _ = done.send(format!("did {text}"));
        }

        fn bound(&self) -> usize {
            2
        }
    }

    fn ask(text: &str) -> (Trigger, tokio::sync::oneshot::Receiver<FirstAnswer>) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = ChatRequest {
            flavor: crate::chatops::reply::Flavor::Slack,
            invocation: "/promoter".into(),
            text: text.into(),
            asker: Asker {
                identities: vec!["slack:U1".into()],
                place: "Slack #deploys".into(),
            },
            reply: ReplyTo::Http(reply),
        };
        (Trigger::Chat(request), answer)
    }

    fn webhook(detail: &str) -> Trigger {
        Trigger::Webhook {
            event: "Pipeline Hook".into(),
            detail: detail.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn triggers_during_a_reconcile_coalesce_into_one_next_batch() {
        let recorder = Recorder::taking(Duration::from_secs(10));
        let (tx, rx) = mpsc::channel(16);
        let (_stop, shutdown) = watch::channel(false);
        let task = recorder.spawn(rx, shutdown);

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
        let recorder = Recorder::taking(Duration::from_millis(700));
        let (tx, rx) = mpsc::channel(4);
        let (_stop, shutdown) = watch::channel(false);
        let task = recorder.spawn(rx, shutdown);
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
        let recorder = Recorder::taking(Duration::from_secs(30));
        let (tx, rx) = mpsc::channel(16);
        let (stop, shutdown) = watch::channel(false);
        let start = tokio::time::Instant::now();
        let task = recorder.spawn(rx, shutdown);
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
    async fn people_are_answered_during_a_reconcile_and_queue_up_to_the_bound() {
        let recorder = Recorder::taking(Duration::from_secs(10));
        let (tx, rx) = mpsc::channel(16);
        let (_stop, shutdown) = watch::channel(false);
        let task = recorder.spawn(rx, shutdown);
        tx.send(Trigger::Resync).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(recorder.running.load(Ordering::SeqCst), 1, "reconciling");

        // Answered at once although a reconcile runs.
        let (status, answer) = ask("status");
        tx.send(status).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_millis(10), answer).await;
        assert!(matches!(answer, Ok(Ok(FirstAnswer::Done(text))) if text == "all fine"));

        // Two commands queue; the third is turned away unrun.
        let mut results = Vec::new();
        for text in ["promote a", "promote b", "promote c"] {
            let (trigger, answer) = ask(text);
            tx.send(trigger).await.unwrap();
            match tokio::time::timeout(Duration::from_millis(10), answer).await {
                Ok(Ok(FirstAnswer::Working { result, .. })) => results.push(result),
                Ok(Ok(FirstAnswer::Busy)) => assert_eq!(text, "promote c"),
                other => panic!("{text}: {other:?}"),
            }
        }
        tx.send(Trigger::Resync).await.unwrap();
        assert_eq!(results.len(), 2);
        for (result, text) in results.into_iter().zip(["promote a", "promote b"]) {
            assert_eq!(result.await.unwrap(), format!("did {text}"));
        }
        drop(tx);
        task.await.unwrap();
        assert_eq!(*recorder.people.lock().unwrap(), ["promote a", "promote b"]);
        assert_eq!(recorder.peak.load(Ordering::SeqCst), 1, "one job at a time");
        let batches = recorder.batches();
        assert_eq!(
            batches.len(),
            2,
            "the resync sent meanwhile ran too: {batches:?}"
        );
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
