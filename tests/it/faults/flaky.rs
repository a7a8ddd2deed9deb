//! A flaky GitLab: 30% of calls answer 429 (with `Retry-After`) or a 5xx, or take effect and
//! hang past the client's timeout (seeded, so every run fails the same way). Every due
//! promotion still ends up with exactly one MR, and the runs take no longer than the retry
//! policy allows: the bound is computed from `RetryPolicy`'s numbers and the faults the double
//! served, plus the time of the same runs without faults.

use std::time::{Duration, Instant};

use http::Method;
use promoter::forge::gitlab::{Connection, GitLab, RetryPolicy};
use promoter::git::mirror::{Author, Credentials, Mirror};
use promoter::reconcile::{Reconciler, Scope};

use super::{Expect, assert_converged, at, origin};
use crate::support::fake_gitlab::{FakeGitLab, FaultKind, Recorded};

const RELEASE: &str = "2026-11-24T10:00:00Z";
const NOW: &str = "2026-11-24T12:00:00Z";
/// Fixed: the same request sequence fails the same way on every machine.
const SEED: u64 = 8;
/// More than `max_delay`: the client must cap it.
const RETRY_AFTER_SECS: u64 = 3;

/// Small numbers so that the test stays fast; the bound scales with them.
const POLICY: RetryPolicy = RetryPolicy {
    max_retries: 3,
    timeout: Duration::from_millis(400),
    base_delay: Duration::from_millis(20),
    max_delay: Duration::from_secs(1),
};

async fn reconciler(
    fake: &FakeGitLab,
    origin: &crate::support::Origin,
    state: &std::path::Path,
) -> Reconciler<GitLab> {
    let connection = Connection {
        url: fake.url().parse().unwrap(),
        token: FakeGitLab::BOT_TOKEN.into(),
        project: "acme/calculator".into(),
        policy: POLICY,
        // The bound is the retry policy's; the request budget stays out of the way.
        budget: promoter::forge::gitlab::budget::BudgetSettings {
            per_second: 100_000.0,
            burst: 100_000,
        },
    };
    let forge = GitLab::connect(&connection).await.unwrap();
    let mirror = Mirror::open(&state.join("mirror.git"), &origin.url(), Credentials::None).unwrap();
    let config = promoter::reconcile::Config {
        branch: "main".into(),
        author: Author {
            name: "promoter".into(),
            email: "promoter@example.com".into(),
            keys: crate::support::signing_keys(),
        },
    };
    Reconciler::new(
        forge,
        mirror,
        config,
        promoter::promotion::describe::Templates::built_in(),
    )
}

/// Whether the client retries this method after an answer was lost or a 5xx (the policy's
/// rule: a POST that may have landed is never sent twice).
fn repeatable(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE
    )
}

/// The longest the retry policy lets these requests take beyond their service time: every
/// attempt that hung costs the whole timeout, and every retry at most its wait (429:
/// `Retry-After` capped at `max_delay`; else `base_delay * 2^attempt` capped at `max_delay`).
fn policy_bound(log: &[Recorded]) -> (Duration, usize) {
    let mut bound = Duration::ZERO;
    let mut attempt: u32 = 0;
    let mut longest = 0;
    for (i, r) in log.iter().enumerate() {
        let timed_out = r.held.is_some_and(|held| held >= POLICY.timeout);
        if timed_out {
            bound += POLICY.timeout;
        }
        let wait = if r.status == 429 {
            Some(Duration::from_secs(RETRY_AFTER_SECS).min(POLICY.max_delay))
        } else if (r.status >= 500 || timed_out) && repeatable(&r.method) {
            Some(
                POLICY
                    .base_delay
                    .saturating_mul(1 << attempt)
                    .min(POLICY.max_delay),
            )
        } else {
            None
        };
        let retried = log
            .get(i + 1)
            .is_some_and(|next| next.method == r.method && next.path == r.path);
        match wait {
            Some(wait) if retried && attempt < POLICY.max_retries => {
                bound += wait;
                attempt += 1;
                longest = longest.max(attempt as usize + 1);
            }
            _ => attempt = 0,
        }
    }
    (bound, longest)
}

/// Reconciles until every due promotion has its MR (at most `runs` times); returns the number
/// of runs and the time they took.
async fn converge(
    r: &Reconciler<GitLab>,
    fake: &FakeGitLab,
    expected: usize,
    runs: usize,
) -> (usize, Duration) {
    let started = Instant::now();
    for run in 1..=runs {
        let result = r.run_once(&Scope::all(), &[], at(NOW)).await;
        let open = fake
            .merge_requests()
            .iter()
            .filter(|m| m.state == "opened")
            .count();
        if result.is_ok() && open == expected {
            return (run, started.elapsed());
        }
    }
    panic!(
        "not converged after {runs} runs: {:#?}",
        fake.merge_requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_gitlab_still_gets_every_promotion_once_within_the_backoff_bound() {
    // The same runs without faults: the time that is not GitLab's.
    let (clean_origin, due) = origin(RELEASE, 6);
    let clean_fake = FakeGitLab::start(&clean_origin.bare, "acme/calculator").await;
    let clean_state = tempfile::tempdir().unwrap();
    let clean = reconciler(&clean_fake, &clean_origin, clean_state.path()).await;
    let (clean_runs, clean_time) = converge(&clean, &clean_fake, due.len(), 1).await;
    assert_eq!(clean_runs, 1);

    let (origin, due) = origin(RELEASE, 6);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let state = tempfile::tempdir().unwrap();
    let r = reconciler(&fake, &origin, state.path()).await;
    fake.reset_log();
    fake.set_random_faults(
        0.3,
        SEED,
        vec![
            FaultKind::RateLimited {
                retry_after_secs: RETRY_AFTER_SECS,
            },
            FaultKind::Status(500),
            FaultKind::Status(502),
            FaultKind::Status(503),
            // Far past the timeout: a client that does not give up shows.
            FaultKind::Delay(POLICY.timeout * 10),
        ],
    );
    let (runs, took) = converge(&r, &fake, due.len(), 8).await;
    let log = fake.requests();
    fake.clear_faults();
    assert_converged(&origin, &fake, &due, Expect::Open);

    // The seed exercises every kind of fault, on reads and on writes.
    let count = |f: &dyn Fn(&Recorded) -> bool| log.iter().filter(|r| f(r)).count();
    assert!(count(&|r| r.status == 429) > 0, "{log:#?}");
    assert!(count(&|r| r.status >= 500) > 0, "{log:#?}");
    assert!(count(&|r| r.held.is_some()) > 0, "{log:#?}");
    assert!(
        count(&|r| r.method == Method::POST && (r.status >= 500 || r.held.is_some())) > 0,
        "a create that failed or whose answer was lost: {log:#?}"
    );
    let faulted = count(&|r| r.status == 429 || r.status >= 500 || r.held.is_some());
    assert!(
        faulted * 10 >= log.len() * 2,
        "about 30% faulted: {faulted}/{}",
        log.len()
    );

    let (fault_cost, longest) = policy_bound(&log);
    assert!(
        longest <= POLICY.max_retries as usize + 1,
        "a call was tried {longest} times"
    );
    let calls = r.forge().calls();
    let waited = Duration::from_millis(calls.waited_ms.load(std::sync::atomic::Ordering::Relaxed));
    assert!(
        waited <= fault_cost,
        "waited {waited:?}, the policy allows {fault_cost:?}"
    );
    // Everything that is not GitLab's: each run at most three times the fault-free run (a
    // shared, busy machine), plus two seconds.
    let bound = fault_cost + clean_time * 3 * runs as u32 + Duration::from_secs(2);
    println!(
        "{runs} runs, {} requests ({faulted} faulted) in {took:?}; bound {bound:?} \
         (faults {fault_cost:?}, fault-free run {clean_time:?})",
        log.len()
    );
    assert!(
        took <= bound,
        "{took:?} > {bound:?} (faults {fault_cost:?}, fault-free run {clean_time:?})"
    );
}
