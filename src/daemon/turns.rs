//! What the loop has waiting: one [`Batch`] of reconcile triggers and the people's jobs that
//! need a reconcile, in arrival order, at most a bound of them waiting or running. It decides
//! whose turn is next: the batch and the people take turns, so neither starves the other.

use std::collections::VecDeque;

use super::trigger::{Batch, Trigger};
use super::{Job, Work};

/// The loop's waiting work.
pub(super) struct Turns<J> {
    batch: Batch,
    people: VecDeque<J>,
    /// Whether a person's job is running now (it counts against the bound).
    person_running: bool,
    /// Whether the last job was a reconcile (the people go next).
    last_was_reconcile: bool,
}

impl<J> Default for Turns<J> {
    fn default() -> Self {
        Self {
            batch: Batch::default(),
            people: VecDeque::new(),
            person_running: false,
            last_was_reconcile: false,
        }
    }
}

impl<J> Turns<J> {
    /// Takes one trigger: a reconcile trigger joins the batch; a person's request is triaged
    /// by `work` at once (answered, or queued when it needs a reconcile and there is room).
    pub(super) fn take<W: Work<Job = J>>(&mut self, trigger: Trigger, work: &W) {
        match trigger {
            Trigger::Chat(request) => {
                let room = self.people.len() + usize::from(self.person_running) < work.bound();
                // Without room, `triage` answers "busy" and returns nothing to queue.
                if let Some(job) = work.triage(request, room).filter(|_| room) {
                    self.people.push_back(job);
                }
            }
            other => self.batch.absorb(other),
        }
    }

    /// Nothing waits.
    pub(super) fn is_idle(&self) -> bool {
        self.batch.is_empty() && self.people.is_empty()
    }

    /// The next job, taking turns between the batch and the people.
    pub(super) fn next(&mut self) -> Option<Job<J>> {
        let person_first = self.last_was_reconcile || self.batch.is_empty();
        let job = match self.people.pop_front() {
            Some(job) if person_first => Job::Person(job),
            Some(job) => {
                self.people.push_front(job);
                Job::Reconcile(std::mem::take(&mut self.batch))
            }
            None if !self.batch.is_empty() => Job::Reconcile(std::mem::take(&mut self.batch)),
            None => return None,
        };
        self.last_was_reconcile = matches!(job, Job::Reconcile(_));
        self.person_running = matches!(job, Job::Person(_));
        Some(job)
    }

    /// The running job is done.
    pub(super) fn done(&mut self) {
        self.person_running = false;
    }
}
