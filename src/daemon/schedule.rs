//! Timers that feed the daemon: [`run`] fires each environment's cron `schedule` in its time
//! zone, and [`resync`] ticks at a fixed interval. Both only send [`Trigger`]s; they never
//! reconcile themselves. Time comes from a [`Clock`] so tests can use paused tokio time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::clock::Clock;
use super::stopped;
use super::trigger::Trigger;
use crate::model::EnvName;

/// The longest single sleep: waits are re-checked against the clock at least this often, so a
/// wall-clock jump (suspend, NTP step) delays a fire by at most this much.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The shortest resync interval accepted (a zero interval would spin).
const MIN_RESYNC: Duration = Duration::from_secs(1);

/// The first time `schedule` fires strictly after `after`, evaluated in `tz`.
pub fn next_fire(schedule: &cron::Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .after(&after.with_timezone(&tz))
        .next()
        .map(|at| at.with_timezone(&Utc))
}

/// Sleeps until the earliest next fire among `schedules`, sends `Trigger::Schedule(env)` once
/// for each environment due then, and repeats. Fires missed while asleep (a clock jump) collapse
/// into one trigger per environment; an instant never fires twice. Returns when `shutdown`
/// turns true or the trigger channel closes.
#[tracing::instrument(name = "schedule", skip_all, fields(environments = schedules.len()))]
pub async fn run(
    schedules: Vec<(EnvName, cron::Schedule, Tz)>,
    clock: Clock,
    triggers: mpsc::Sender<Trigger>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Everything at or before `cursor` has fired (or predates the start).
    let mut cursor = clock.now();
    loop {
        let next = schedules
            .iter()
            .filter_map(|(_, schedule, tz)| next_fire(schedule, *tz, cursor))
            .min();
        let Some(at) = next else {
            tracing::info!("no schedule fires again");
            tokio::select! {
                _ = stopped(&mut shutdown) => {}
                _ = triggers.closed() => {}
            }
            return;
        };
        tracing::debug!(%at, "next schedule fire");
        loop {
            let now = clock.now();
            if now >= at {
                break;
            }
            let wait = (at - now).to_std().unwrap_or_default().min(MAX_SLEEP);
            tokio::select! {
                _ = stopped(&mut shutdown) => return,
                _ = triggers.closed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let now = clock.now();
        for (env, schedule, tz) in &schedules {
            if next_fire(schedule, *tz, cursor).is_some_and(|due| due <= now) {
                tracing::info!(env = %env, %at, "schedule fired");
                tokio::select! {
                    _ = stopped(&mut shutdown) => return,
                    sent = triggers.send(Trigger::Schedule(env.clone())) => {
                        if sent.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        cursor = cursor.max(now);
    }
}

/// Sends `Trigger::Resync` every `every` (at least one second), first one period from now.
/// When the channel is full the tick is dropped: a reconcile is pending anyway. Returns when
/// `shutdown` turns true or the channel closes.
#[tracing::instrument(name = "resync", skip_all, fields(every = ?every))]
pub async fn resync(
    every: Duration,
    triggers: mpsc::Sender<Trigger>,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = every.max(MIN_RESYNC);
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = triggers.closed() => return,
            _ = ticker.tick() => {}
        }
        match triggers.try_send(Trigger::Resync) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!("trigger queue full; resync tick dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn cron(text: &str) -> cron::Schedule {
        cron::Schedule::from_str(text).unwrap()
    }

    const LONDON: Tz = chrono_tz::Europe::London;

    /// Receives the next `n` triggers with the (whole-second) clock time each arrived at.
    async fn receive(
        rx: &mut mpsc::Receiver<Trigger>,
        clock: Clock,
        n: usize,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for _ in 0..n {
            let trigger = rx.recv().await.expect("a trigger");
            let now = clock.now();
            let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap();
            let env = match trigger {
                Trigger::Schedule(env) => env.to_string(),
                other => panic!("unexpected {other:?}"),
            };
            out.push((env, now.to_rfc3339()));
        }
        out
    }

    #[test]
    fn next_fire_is_strictly_after_and_follows_dst() {
        let nightly = cron("0 0 2 * * *");
        let cases = [
            ("2026-03-27T12:00:00Z", "2026-03-28T02:00:00Z"),
            ("2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z"),
            ("2026-03-28T01:59:59.500Z", "2026-03-28T02:00:00Z"),
            ("2026-03-29T01:00:00.001Z", "2026-03-30T01:00:00Z"),
        ];
        for (after, want) in cases {
            assert_eq!(
                next_fire(&nightly, LONDON, utc(after)),
                Some(utc(want)),
                "{after}"
            );
        }
        let past = cron("0 0 0 1 1 * 2020");
        assert_eq!(next_fire(&past, LONDON, utc("2026-01-01T00:00:00Z")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn nightly_fires_at_two_local_across_the_dst_change() {
        let clock = Clock::starting_at(utc("2026-03-27T12:00:00Z"));
        let (tx, mut rx) = mpsc::channel(8);
        let (_stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(run(
            vec![("qa".into(), cron("0 0 2 * * *"), LONDON)],
            clock,
            tx,
            shutdown,
        ));
        assert_eq!(
            receive(&mut rx, clock, 3).await,
            [
                ("qa".into(), "2026-03-28T02:00:00+00:00".into()),
                ("qa".into(), "2026-03-29T01:00:00+00:00".into()),
                ("qa".into(), "2026-03-30T01:00:00+00:00".into()),
            ]
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn weekday_names_fire_only_on_those_days() {
        // Monday 2 March 2026, GMT.
        let clock = Clock::starting_at(utc("2026-03-02T10:00:00Z"));
        let (tx, mut rx) = mpsc::channel(8);
        let (_stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(run(
            vec![("prod".into(), cron("0 0 9 * * Tue,Thu"), LONDON)],
            clock,
            tx,
            shutdown,
        ));
        let fired = receive(&mut rx, clock, 3).await;
        let days: Vec<_> = fired.iter().map(|(_, at)| at.as_str()).collect();
        assert_eq!(
            days,
            [
                "2026-03-03T09:00:00+00:00",
                "2026-03-05T09:00:00+00:00",
                "2026-03-10T09:00:00+00:00",
            ]
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn environments_due_at_the_same_instant_each_fire_once() {
        let clock = Clock::starting_at(utc("2026-06-01T00:00:00Z"));
        let (tx, mut rx) = mpsc::channel(8);
        let (_stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(run(
            vec![
                ("qa".into(), cron("0 0 2 * * *"), LONDON),
                ("stage".into(), cron("0 0 1 * * *"), chrono_tz::UTC),
            ],
            clock,
            tx,
            shutdown,
        ));
        // 02:00 BST is 01:00 UTC: both fire together, once each, then the next day.
        assert_eq!(
            receive(&mut rx, clock, 4).await,
            [
                ("qa".into(), "2026-06-01T01:00:00+00:00".into()),
                ("stage".into(), "2026-06-01T01:00:00+00:00".into()),
                ("qa".into(), "2026-06-02T01:00:00+00:00".into()),
                ("stage".into(), "2026-06-02T01:00:00+00:00".into()),
            ]
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_or_closed_channel_stops_it() {
        let clock = Clock::starting_at(utc("2026-06-01T00:00:00Z"));
        let (tx, mut rx) = mpsc::channel(8);
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(run(
            vec![("qa".into(), cron("0 0 * * * *"), LONDON)],
            clock,
            tx,
            shutdown,
        ));
        assert_eq!(receive(&mut rx, clock, 1).await.len(), 1);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("returns promptly")
            .unwrap();
        assert!(rx.recv().await.is_none(), "sender dropped on return");

        let (tx, rx) = mpsc::channel(8);
        let (_stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(run(
            vec![("qa".into(), cron("0 0 * * * *"), LONDON)],
            clock,
            tx,
            shutdown,
        ));
        drop(rx);
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("returns when the channel closes")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn resync_ticks_every_interval_until_shutdown() {
        let (tx, mut rx) = mpsc::channel(8);
        let (stop, shutdown) = watch::channel(false);
        let start = Instant::now();
        let task = tokio::spawn(resync(Duration::from_secs(300), tx, shutdown));
        for n in 1..=3 {
            assert_eq!(rx.recv().await, Some(Trigger::Resync));
            assert_eq!(start.elapsed().as_secs(), 300 * n);
        }
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("returns promptly")
            .unwrap();
    }
}
