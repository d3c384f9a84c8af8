//! Batched decoding for the llama family: generations of one model that
//! are decoding at the same time submit their next token here, and one of
//! them (the leader) runs all submitted tokens in a single pass, so the
//! weights are read once per step for every stream instead of once per
//! stream. Each row's result has the same bits as it would alone, so
//! batching never changes an answer.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::llama::{LlamaSession, LlamaWeights, Step};

/// How long a leader waits for decoding streams that have not submitted
/// their token yet (they are sampling or streaming the previous one).
const GATHER: Duration = Duration::from_micros(1500);

struct Job {
    id: u64,
    session: LlamaSession,
    token: u32,
    pos: usize,
}

type Outcome = (LlamaSession, Result<Vec<f32>, String>);

#[derive(Default)]
struct State {
    /// Generations in their decode loop: each will submit again soon.
    active: usize,
    pending: Vec<Job>,
    leading: bool,
    done: HashMap<u64, Outcome>,
    next_id: u64,
    passes: u64,
    rows: u64,
}

#[derive(Default)]
pub(super) struct Batcher {
    state: Mutex<State>,
    changed: Condvar,
}

/// Marks a generation as decoding while it lives.
pub(super) struct Active<'a>(&'a Batcher);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.lock().active -= 1;
        self.0.changed.notify_all();
    }
}

impl Batcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn enter(&self) -> Active<'_> {
        self.lock().active += 1;
        Active(self)
    }

    /// Passes run and rows they carried (rows / passes is the mean batch).
    pub(super) fn stats(&self) -> (u64, u64) {
        let s = self.lock();
        (s.passes, s.rows)
    }

    /// Runs `token` at `pos` for `session`, batched with whatever else is
    /// decoding; returns the session and its logits.
    pub(super) fn step(
        &self,
        weights: &LlamaWeights,
        session: LlamaSession,
        token: u32,
        pos: usize,
    ) -> Outcome {
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.pending.push(Job {
            id,
            session,
            token,
            pos,
        });
        self.changed.notify_all();
        loop {
            if let Some(out) = st.done.remove(&id) {
                return out;
            }
            if !st.leading && !st.pending.is_empty() {
                st.leading = true;
                let deadline = Instant::now() + GATHER;
                while st.pending.len() < st.active {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    st = self
                        .changed
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                let mut jobs = std::mem::take(&mut st.pending);
                drop(st);
                let outcomes = run(weights, &mut jobs);
                st = self.lock();
                st.passes += 1;
                st.rows += jobs.len() as u64;
                for (job, out) in jobs.into_iter().zip(outcomes) {
                    st.done.insert(job.id, (job.session, out));
                }
                st.leading = false;
                self.changed.notify_all();
                continue;
            }
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

fn run(weights: &LlamaWeights, jobs: &mut [Job]) -> Vec<Result<Vec<f32>, String>> {
    let tokens: Vec<[u32; 1]> = jobs.iter().map(|j| [j.token]).collect();
    let mut steps: Vec<Step> = jobs
        .iter_mut()
        .zip(&tokens)
        .map(|(j, t)| Step {
            session: &mut j.session,
            tokens: t,
            pos: j.pos,
        })
        .collect();
    match weights.forward_many(&mut steps) {
        Ok(logits) => logits.into_iter().map(Ok).collect(),
        Err(e) => jobs.iter().map(|_| Err(e.to_string())).collect(),
    }
}
