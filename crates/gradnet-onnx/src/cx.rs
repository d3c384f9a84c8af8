//! What every operator gets when it runs: the instruction set its kernels
//! use, the threads it may split work over, and the size limit on tensors.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kernels::Isa;

pub struct Cx<'a> {
    pub isa: Isa,
    pool: Option<&'a rayon::ThreadPool>,
    threads: usize,
    max_bytes: u64,
}

impl<'a> Cx<'a> {
    pub fn new(isa: Isa, pool: Option<&'a rayon::ThreadPool>, max_bytes: u64) -> Cx<'a> {
        let threads = pool.map_or(1, |p| p.current_num_threads());
        Cx {
            isa,
            pool,
            threads,
            max_bytes,
        }
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
    pub fn par_for_if(&self, work: usize, min_work: usize, tasks: usize, f: impl Fn(usize) + Sync + Send) {
        if work < min_work {
            (0..tasks).for_each(f)
        } else {
            self.par_for(tasks, f)
        }
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
    pub fn get(self) -> *mut f32 {
        self.0
    }
}
