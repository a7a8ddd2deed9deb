//! `promoter reconcile --once` as a child process, SIGKILLed while the GitLab double holds one
//! chosen request, so that the test knows exactly where the process was: after the branch
//! push, after the MR was created, in the middle of an update, in the middle of a merge; then
//! at every request of each of those runs in turn. The double holds a request either before
//! it takes effect (it never does) or after (the process dies without knowing it happened).
//! The next normal run must converge. Nothing in promoter knows about any of this.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use http::Method;

use super::{Due, Expect, assert_converged, config, origin, reconcile_once, set_tags, show};
use crate::support::fake_gitlab::{Effect, Hang, Recorded};
use crate::support::world::World;

const RELEASE: &str = "2026-11-24T10:00:00Z";
/// The first run: the dev tags have soaked an hour.
const FIRST: &str = "2026-11-24T12:00:00Z";
/// Something happened at 12:30; this run sees it.
const LATER: &str = "2026-11-24T14:00:00Z";

/// The run that gets killed, and what it should converge to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing exists: push the branches, open the MRs.
    Open,
    /// dev moved on: push again, rewrite the MRs, say "superseded".
    Update,
    /// Approved: merge.
    Merge,
    /// Someone set qa by hand: close with a note, delete the branches.
    Close,
}

/// The test world driven through the binary: `reconcile --once` with a configuration file
/// whose state lives in the world's state directory, and what the run must converge to.
struct BinaryWorld {
    world: World,
    file: PathBuf,
    due: Vec<Due>,
}

impl std::ops::Deref for BinaryWorld {
    type Target = World;

    fn deref(&self) -> &World {
        &self.world
    }
}

impl BinaryWorld {
    fn new(world: World, due: Vec<Due>) -> Self {
        let file = config(world.state.path(), &world.fake, &world.origin.url(), "");
        BinaryWorld { world, file, due }
    }
}

/// A world right before a stage's run, earlier stages done by a normal run: forked for each
/// kill (the repository, the double's state, promoter's state directory), which is much
/// cheaper than building it again.
struct Prepared(BinaryWorld);

impl Prepared {
    async fn new(stage: Stage) -> Prepared {
        let (origin, due) = origin(RELEASE, 0);
        let mut prepared = BinaryWorld::new(World::new(origin).await, due);
        let (origin, fake) = (&prepared.world.origin, &prepared.world.fake);
        if stage != Stage::Open {
            let out = reconcile_once(&prepared.file, FIRST).await;
            assert!(out.status.success(), "{}", show(&out));
            assert_converged(origin, fake, &prepared.due, Expect::Open);
        }
        match stage {
            Stage::Open => {}
            Stage::Update => {
                let moves = [
                    ("client", "0.5.0", "0.5.1"),
                    ("maths-api", "1.4.0", "1.4.1"),
                ];
                set_tags(origin, "dev", &moves, "2026-11-24T12:30:00Z");
                prepared.due = vec![
                    Due::new("client", "0.4.0", "0.5.1"),
                    Due::new("maths-api", "1.2.1", "1.4.1"),
                ];
            }
            Stage::Merge => {
                for mr in fake.merge_requests() {
                    fake.approve(mr.iid, "alice");
                }
            }
            Stage::Close => {
                let moves = [
                    ("client", "0.4.0", "0.5.0"),
                    ("maths-api", "1.2.1", "1.4.0"),
                ];
                set_tags(origin, "qa", &moves, "2026-11-24T12:30:00Z");
            }
        }
        Prepared(prepared)
    }

    /// A copy of the prepared world.
    async fn world(&self) -> BinaryWorld {
        BinaryWorld::new(self.0.world.fork().await, self.0.due.clone())
    }
}

impl BinaryWorld {
    fn now(stage: Stage) -> &'static str {
        if stage == Stage::Open { FIRST } else { LATER }
    }

    /// Runs the stage with `hang` armed; once the double holds the request, SIGKILL. Returns
    /// the request that hung.
    async fn kill_at(&self, stage: Stage, hang: Hang) -> Recorded {
        self.fake.hang(hang);
        let log = std::fs::File::create(self.state.path().join("killed.log")).unwrap();
        let mut child = KillOnDrop(
            super::promoter(
                &self.file,
                &["reconcile", "--once", "--at", BinaryWorld::now(stage)],
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let hung = loop {
            if let Some(hung) = self.fake.hung_requests().pop() {
                break hung;
            }
            if let Some(status) = child.0.try_wait().unwrap() {
                let log = std::fs::read_to_string(self.state.path().join("killed.log")).unwrap();
                panic!("the run ended ({status}) before the hang:\n{log}");
            }
            assert!(Instant::now() < deadline, "no request hung");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        self.fake.release_hangs();
        self.fake.clear_faults();
        hung
    }

    /// The next normal run, and the check that it converged.
    async fn recover(&self, stage: Stage) {
        let out = reconcile_once(&self.file, BinaryWorld::now(stage)).await;
        assert!(out.status.success(), "{}", show(&out));
        let expect = match stage {
            Stage::Open | Stage::Update => Expect::Open,
            Stage::Merge => Expect::Merged,
            Stage::Close => Expect::Closed,
        };
        assert_converged(&self.origin, &self.fake, &self.due, expect);
        let notes = |mr: &crate::support::fake_gitlab::MrRecord, start: &str| {
            mr.notes.iter().filter(|n| n.starts_with(start)).count()
        };
        for mr in self.fake.merge_requests() {
            match stage {
                // Said at least once: a note may be said again when the process died
                // between saying it and recording that it did.
                Stage::Update => assert!(notes(&mr, "Superseded:") >= 1, "{mr:#?}"),
                Stage::Close => assert!(notes(&mr, "Closed by promoter") >= 1, "{mr:#?}"),
                Stage::Open | Stage::Merge => assert!(mr.notes.is_empty(), "{mr:#?}"),
            }
        }
        if stage == Stage::Close || stage == Stage::Merge {
            assert_eq!(
                super::promotion_branches(&self.origin),
                Vec::<String>::new()
            );
        }
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_create(r: &Recorded) -> bool {
    r.method == Method::POST && r.path.ends_with("/merge_requests")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_branch_push_before_the_mr() {
    let open = Prepared::new(Stage::Open).await;
    let w = open.world().await;
    let hung = w
        .kill_at(Stage::Open, Hang::before(Method::POST, "/merge_requests"))
        .await;
    assert!(is_create(&hung), "{hung:?}");
    // The branches of the next promotions (up to four) go in one push, before their MRs.
    assert_eq!(
        super::promotion_branches(&w.origin),
        ["promoter/qa/client", "promoter/qa/maths-api"],
        "both branches were pushed, together, before the first MR"
    );
    assert!(w.fake.merge_requests().is_empty());
    w.recover(Stage::Open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_mr_was_created() {
    let open = Prepared::new(Stage::Open).await;
    // GitLab created the MR; the process died before hearing so.
    let w = open.world().await;
    w.kill_at(
        Stage::Open,
        Hang::after_effect(Method::POST, "/merge_requests"),
    )
    .await;
    assert_eq!(w.fake.merge_requests().len(), 1);
    w.recover(Stage::Open).await;

    // The process heard, and died at its next call.
    let w = open.world().await;
    let hung = w
        .kill_at(
            Stage::Open,
            Hang::next_after(Method::POST, "/merge_requests", Effect::Never),
        )
        .await;
    assert!(!is_create(&hung), "{hung:?}");
    assert_eq!(w.fake.merge_requests().len(), 1);
    w.recover(Stage::Open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_middle_of_an_update() {
    let update = Prepared::new(Stage::Update).await;
    for handled in [false, true] {
        let w = update.world().await;
        let hang = if handled {
            Hang::after_effect(Method::PUT, "/merge_requests/")
        } else {
            Hang::before(Method::PUT, "/merge_requests/")
        };
        w.kill_at(Stage::Update, hang).await;
        // The new commit is on the branch; the MR may still describe the old candidate.
        assert!(
            w.origin
                .read(
                    "promoter/qa/client",
                    "clusters/qa/calculator/client/values.yaml"
                )
                .contains("tag: 0.5.1")
        );
        let client = w
            .fake
            .merge_requests()
            .into_iter()
            .find(|m| m.source_branch == "promoter/qa/client")
            .unwrap();
        assert_eq!(
            client.title.ends_with("0.5.1"),
            handled,
            "{handled}: {client:#?}"
        );
        w.recover(Stage::Update).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_middle_of_a_merge() {
    let merge = Prepared::new(Stage::Merge).await;
    for handled in [false, true] {
        let w = merge.world().await;
        let hang = if handled {
            Hang::after_effect(Method::PUT, "/merge")
        } else {
            Hang::before(Method::PUT, "/merge")
        };
        w.kill_at(Stage::Merge, hang).await;
        let merged = w
            .fake
            .merge_requests()
            .iter()
            .filter(|m| m.state == "merged")
            .count();
        assert_eq!(merged, usize::from(handled));
        w.recover(Stage::Merge).await;
    }
}

/// Kills the stage's run at each of its requests in turn (writes both before and after they
/// take effect), and checks that the next run converges each time.
async fn sweep(stage: Stage) {
    let prepared = Prepared::new(stage).await;
    let clean = prepared.world().await;
    clean.recover(stage).await;
    let steps = clean.fake.requests();
    assert!(steps.len() >= 4, "{steps:#?}");
    for (i, step) in steps.iter().enumerate() {
        let variants: &[Effect] = if step.method == Method::GET {
            &[Effect::Never]
        } else {
            &[Effect::Never, Effect::First]
        };
        for &effect in variants {
            let w = prepared.world().await;
            let hung = w.kill_at(stage, Hang::nth(i + 1, effect)).await;
            assert_eq!(
                (&hung.method, &hung.path),
                (&step.method, &step.path),
                "the run makes the same requests"
            );
            w.recover(stage).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_request_while_opening() {
    sweep(Stage::Open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_request_while_updating() {
    sweep(Stage::Update).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_request_while_merging() {
    sweep(Stage::Merge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_request_while_closing() {
    sweep(Stage::Close).await;
}
