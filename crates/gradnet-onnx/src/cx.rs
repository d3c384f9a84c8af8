//! What every operator gets when it runs: the instruction set its kernels
//! use, the threads it may split work over, and the size limit on tensors.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kernels::Isa;
use crate::tensor::{Data, Tensor};

pub struct Cx<'a> {
    pub isa: Isa,
    pool: Option<&'a rayon::ThreadPool>,
    threads: usize,
    max_bytes: u64,
    recycle: Option<&'a Recycle>,
    /// Bytes the run may hold in values at once, and what it holds now.
    budget: u64,
    held: std::sync::atomic::AtomicU64,
    /// When the run must have finished.
    deadline: Option<(std::time::Instant, std::time::Duration)>,
}

impl<'a> Cx<'a> {
    pub fn new(isa: Isa, pool: Option<&'a rayon::ThreadPool>, max_bytes: u64) -> Cx<'a> {
        let threads = pool.map_or(1, |p| p.current_num_threads());
        Cx {
            isa,
            pool,
            threads,
            max_bytes,
            recycle: None,
            budget: u64::MAX,
            held: Default::default(),
            deadline: None,
        }
    }

    /// Limits the run to `bytes` of values held at once and to `time`.
    pub fn with_budget(self, bytes: u64, time: Option<std::time::Duration>) -> Cx<'a> {
        Cx {
            budget: bytes,
            deadline: time.map(|t| (std::time::Instant::now() + t, t)),
            ..self
        }
    }

    /// Counts values the run holds (`delta` bytes more, or fewer).
    pub(crate) fn hold(&self, added: u64, freed: u64) {
        use std::sync::atomic::Ordering;
        self.held.fetch_add(added, Ordering::Relaxed);
        self.held.fetch_sub(
            freed.min(self.held.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
    }

    /// Fails if the run holds more than its memory budget (checked after
    /// each operator, for outputs whose size no check saw in advance).
    pub(crate) fn check_held(&self, label: &str) -> Result<()> {
        let held = self.held.load(std::sync::atomic::Ordering::Relaxed);
        if held > self.budget {
            return Err(Error::Limit(format!(
                "after node `{label}` the run holds {held} bytes, over this node's memory budget of {} bytes per inference",
                self.budget
            )));
        }
        Ok(())
    }

    /// Fails once the run is past its time budget (checked between operators).
    pub(crate) fn check_time(&self, label: &str) -> Result<()> {
        match self.deadline {
            Some((at, budget)) if std::time::Instant::now() > at => Err(Error::Limit(format!(
                "the run passed this node's time budget of {:.1} s per inference (at node `{label}`)",
                budget.as_secs_f64()
            ))),
            _ => Ok(()),
        }
    }

    /// Hands float buffers of values the run has finished with to later
    /// operators (see [`Cx::buffer`]).
    pub fn with_recycle(self, recycle: &'a Recycle) -> Cx<'a> {
        Cx {
            recycle: Some(recycle),
            ..self
        }
    }

    /// `n` floats whose values are unspecified (a finished value's, or
    /// zeros): only for outputs whose kernel writes every element before
    /// anything reads it. Saves zeroing (and faulting in) a fresh buffer.
    pub fn buffer(&self, n: usize) -> Vec<f32> {
        match self.recycle.and_then(|r| r.take(n)) {
            Some(mut v) => {
                if v.len() >= n {
                    v.truncate(n);
                } else {
                    v.resize(n, 0.0);
                }
                v
            }
            None => vec![0.0; n],
        }
    }

    pub fn recycler(&self) -> Option<&'a Recycle> {
        self.recycle
    }

    /// One thread, the best instruction set, no size limit beyond memory
    /// (for tests and constant folding).
    pub fn single() -> Cx<'static> {
        Cx::new(Isa::current(), None, u64::MAX)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(0..tasks)`, on the pool when there is one. Callers split work
    /// so that each output is computed whole by one task: how tasks are
    /// spread over threads never changes a result.
    pub fn par_for(&self, tasks: usize, f: impl Fn(usize) + Sync + Send) {
        match self.pool {
            Some(pool) if tasks > 1 => pool.install(|| (0..tasks).into_par_iter().for_each(f)),
            _ => (0..tasks).for_each(f),
        }
    }

    /// As [`Cx::par_for`], on the calling thread when the whole job is
    /// smaller than `min_work` (in any unit the caller counts `work` in).
    pub fn par_for_if(
        &self,
        work: usize,
        min_work: usize,
        tasks: usize,
        f: impl Fn(usize) + Sync + Send,
    ) {
        if work < min_work {
            (0..tasks).for_each(f)
        } else {
            self.par_for(tasks, f)
        }
    }

    /// `f(i, chunk)` over `data` cut into pieces of `chunk` elements (the
    /// last may be shorter), in parallel when `data` holds at least
    /// `min_len` elements. Each piece is written by one task alone.
    pub fn par_chunks<T: Send>(
        &self,
        data: &mut [T],
        chunk: usize,
        min_len: usize,
        f: impl Fn(usize, &mut [T]) + Sync + Send,
    ) {
        let chunk = chunk.max(1);
        match self.pool {
            Some(pool) if self.threads > 1 && data.len() >= min_len && data.len() > chunk => pool
                .install(|| {
                    data.par_chunks_mut(chunk)
                        .enumerate()
                        .for_each(|(i, c)| f(i, c))
                }),
            _ => data
                .chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, c)| f(i, c)),
        }
    }

    /// How many of `rows` rows each task takes: a few tasks per thread.
    pub fn rows_per_task(&self, rows: usize) -> usize {
        rows.div_ceil(self.threads * 4).max(1)
    }

    /// Fails if a tensor of `shape` and `elem_bytes` per element would pass
    /// the limit (or overflow), before anything is allocated.
    pub fn check_size(&self, shape: &[usize], elem_bytes: usize) -> Result<usize> {
        let n = crate::tensor::numel(shape)?;
        let bytes = (n as u128) * elem_bytes as u128;
        if bytes > self.max_bytes as u128 {
            return Err(Error::Limit(format!(
                "a tensor of shape {shape:?} needs {bytes} bytes, over this node's limit of {} per tensor",
                self.max_bytes
            )));
        }
        let held = self.held.load(std::sync::atomic::Ordering::Relaxed);
        if bytes + held as u128 > self.budget as u128 {
            return Err(Error::Limit(format!(
                "a tensor of shape {shape:?} needs {bytes} bytes while the run holds {held}: over this node's memory budget of {} bytes per inference",
                self.budget
            )));
        }
        Ok(n)
    }
}

/// A raw pointer that tasks writing disjoint parts of one buffer can share.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(pub *mut f32);
// SAFETY: users write disjoint ranges only, and the buffer outlives the tasks.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so closures capture the whole `SharedMut`).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Float buffers of values a run no longer needs, for [`Cx::buffer`].
#[derive(Default)]
pub struct Recycle(std::sync::Mutex<Vec<Vec<f32>>>);

impl Recycle {
    /// Buffers kept at most (the largest are kept).
    const KEEP: usize = 8;
    /// Smaller buffers are not worth keeping.
    const MIN: usize = 1 << 14;

    /// Keeps `t`'s buffer when it is a large float tensor.
    pub fn put(&self, t: Tensor) {
        if !matches!(t.data(), Data::F32(v) if v.capacity() >= Self::MIN) {
            return;
        }
        let Data::F32(v) = t.into_parts().1 else {
            return;
        };
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.push(v);
        if kept.len() > Self::KEEP {
            let smallest = (0..kept.len())
                .min_by_key(|&i| kept[i].capacity())
                .unwrap_or(0);
            kept.swap_remove(smallest);
        }
    }

    /// The smallest kept buffer that holds `n` floats without wasting more
    /// than three quarters of itself.
    fn take(&self, n: usize) -> Option<Vec<f32>> {
        if n < Self::MIN {
            return None;
        }
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let i = (0..kept.len())
            .filter(|&i| (n..=4 * n).contains(&kept[i].capacity()))
            .min_by_key(|&i| kept[i].capacity())?;
        Some(kept.swap_remove(i))
    }
}
