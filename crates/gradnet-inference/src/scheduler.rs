//! Workflows: the scheduler at `0x…F6` with OpenGradient's
//! `registerTask(address contractAddress, uint256 endTime, uint256
//! frequency)`. At the start of every block, each task that is due (its
//! next run time reached, its end time not passed) has its contract's
//! `run()` called by the scheduler (a system call: no transaction, no gas
//! charged), so a contract re-runs its model on schedule and keeps its
//! results. The call's inference fees come from the task's deposit (the
//! value sent with `registerTask` or `fundTask`); a task whose deposit
//! cannot cover `MAX_RUN_FEE` waits. A run whose inference results are not
//! in the block yet is left for the next block.

use alloy_primitives::{address, keccak256, Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};
use revm::context_interface::{Block, ContextTr, JournalTr};
use revm::interpreter::CallInputs;

use crate::error::SystemError;
use crate::revert;
use crate::slots::{slot, JournalSlots, Slots};
use crate::system_call::{self, Rules};

/// The workflow scheduler.
pub const ADDRESS: Address = address!("00000000000000000000000000000000000000F6");
/// A task runs only with this much left in its deposit (15 nodes' fees).
pub const MAX_RUN_FEE: U256 = U256::from_limbs([15 * 1_000_000_000_000_000, 0, 0, 0]);
/// Task runs in one block at most.
pub const MAX_RUNS_PER_BLOCK: usize = 16;
/// Gas of a scheduler call.
pub const SCHEDULER_GAS: u64 = 40_000;

sol! {
    #[derive(Debug, PartialEq)]
    interface IWorkflowScheduler {
        struct Task {
            address contractAddress;
            address owner;
            uint256 endTime;
            uint256 frequency;
            uint256 nextRun;
            uint256 deposit;
            uint64 runs;
        }
        event TaskRegistered(address indexed contractAddress, address indexed owner, uint256 endTime, uint256 frequency);
        event TaskCancelled(address indexed contractAddress);
        function registerTask(address contractAddress, uint256 endTime, uint256 frequency) external payable;
        function fundTask(address contractAddress) external payable;
        function cancelTask(address contractAddress) external;
        function getTask(address contractAddress) external view returns (Task memory);
    }
}

use IWorkflowScheduler::{IWorkflowSchedulerCalls as Call, Task};

/// `run()`: what a task's contract is called with.
pub fn run_selector() -> Bytes {
    Bytes::copy_from_slice(&keccak256(b"run()")[..4])
}

fn base(c: &Address) -> U256 {
    slot("gradnet.scheduler.task", c.as_slice())
}

fn list() -> U256 {
    slot("gradnet.scheduler.tasks", &[])
}

fn to_addr(v: U256) -> Address {
    Address::from_word(v.into())
}

/// The scheduler's storage.
pub struct Scheduler<S>(pub S);

impl<S: Slots> Scheduler<S> {
    /// The task of contract `c`.
    pub fn task(&mut self, c: &Address) -> Result<Option<Task>, SystemError> {
        let b = base(c);
        let owner = self.0.get(b)?;
        if owner.is_zero() {
            return Ok(None);
        }
        let f = |i: u64| b + U256::from(i);
        Ok(Some(Task {
            contractAddress: *c,
            owner: to_addr(owner),
            endTime: self.0.get(f(1))?,
            frequency: self.0.get(f(2))?,
            nextRun: self.0.get(f(3))?,
            deposit: self.0.get(f(4))?,
            runs: u64::try_from(self.0.get(f(5))?).unwrap_or(u64::MAX),
        }))
    }

    /// Stores a task.
    pub fn put(&mut self, t: &Task) -> Result<(), SystemError> {
        let b = base(&t.contractAddress);
        if self.0.get(b)?.is_zero() {
            let n = self.0.get(list())?;
            self.0.set(
                list() + U256::from(1) + n,
                t.contractAddress.into_word().into(),
            )?;
            self.0.set(list(), n + U256::from(1))?;
        }
        let f = |i: u64| b + U256::from(i);
        self.0.set(b, t.owner.into_word().into())?;
        self.0.set(f(1), t.endTime)?;
        self.0.set(f(2), t.frequency)?;
        self.0.set(f(3), t.nextRun)?;
        self.0.set(f(4), t.deposit)?;
        Ok(self.0.set(f(5), U256::from(t.runs))?)
    }

    /// Tasks due at `now`, in registration order.
    pub fn due(&mut self, now: u64) -> Result<Vec<Task>, SystemError> {
        let n = u64::try_from(self.0.get(list())?).unwrap_or(0);
        let now = U256::from(now);
        let mut out = vec![];
        for i in 0..n {
            let c = to_addr(self.0.get(list() + U256::from(1 + i))?);
            if let Some(t) = self.task(&c)? {
                if t.nextRun <= now && now <= t.endTime && t.deposit >= MAX_RUN_FEE {
                    out.push(t);
                    if out.len() == MAX_RUNS_PER_BLOCK {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Runs a call to the scheduler: return data and gas, or why it reverts.
pub fn call<CTX: ContextTr>(
    ctx: &mut CTX,
    inputs: &CallInputs,
) -> Result<(Vec<u8>, u64), SystemError> {
    let value = inputs.call_value();
    let call: Call = system_call::decode(ctx, inputs, ADDRESS, "scheduler", |c| Rules {
        payable: matches!(c, Call::registerTask(_) | Call::fundTask(_)),
        writes: !matches!(c, Call::getTask(_)),
    })?;
    let now = U256::from(ctx.block().timestamp());
    let caller = inputs.caller;
    let journal = ctx.journal_mut();
    let mut s = Scheduler(JournalSlots {
        journal: &mut *journal,
        account: ADDRESS,
    });
    match call {
        Call::registerTask(c) => {
            if c.frequency.is_zero() {
                return Err("scheduler: frequency must be at least 1 second".into());
            }
            if c.endTime <= now {
                return Err(revert!(
                    "scheduler: endTime {} is not after now ({now})",
                    c.endTime
                ));
            }
            let code =
                s.0.journal
                    .load_account_with_code(c.contractAddress)
                    .map_err(|e| e.to_string())?
                    .info
                    .code
                    .as_ref()
                    .is_some_and(|c| !c.is_empty());
            if !code {
                return Err(revert!(
                    "scheduler: {} is not a contract",
                    c.contractAddress
                ));
            }
            let deposit = match s.task(&c.contractAddress)? {
                Some(t) if t.owner != caller => {
                    return Err(revert!(
                        "scheduler: {} is already scheduled by {}",
                        c.contractAddress,
                        t.owner
                    ))
                }
                Some(t) => t.deposit,
                None => U256::ZERO,
            };
            s.put(&Task {
                contractAddress: c.contractAddress,
                owner: caller,
                endTime: c.endTime,
                frequency: c.frequency,
                nextRun: now,
                deposit: deposit + value,
                runs: 0,
            })?;
            system_call::log(
                &mut *s.0.journal,
                ADDRESS,
                IWorkflowScheduler::TaskRegistered {
                    contractAddress: c.contractAddress,
                    owner: caller,
                    endTime: c.endTime,
                    frequency: c.frequency,
                },
            );
            Ok((vec![], SCHEDULER_GAS))
        }
        Call::fundTask(c) => {
            let mut t = s
                .task(&c.contractAddress)?
                .ok_or_else(|| format!("scheduler: no task for {}", c.contractAddress))?;
            t.deposit += value;
            s.put(&t)?;
            Ok((vec![], SCHEDULER_GAS))
        }
        Call::cancelTask(c) => {
            let mut t = s
                .task(&c.contractAddress)?
                .ok_or_else(|| format!("scheduler: no task for {}", c.contractAddress))?;
            if t.owner != caller {
                return Err("scheduler: only the task's owner can cancel it".into());
            }
            let refund = std::mem::take(&mut t.deposit);
            t.endTime = U256::ZERO;
            s.put(&t)?;
            if let Some(e) =
                s.0.journal
                    .transfer(ADDRESS, caller, refund)
                    .map_err(|e| e.to_string())?
            {
                return Err(revert!("scheduler: refund failed: {e:?}"));
            }
            system_call::log(
                &mut *s.0.journal,
                ADDRESS,
                IWorkflowScheduler::TaskCancelled {
                    contractAddress: c.contractAddress,
                },
            );
            Ok((vec![], SCHEDULER_GAS))
        }
        Call::getTask(c) => {
            let t = s
                .task(&c.contractAddress)?
                .ok_or_else(|| format!("scheduler: no task for {}", c.contractAddress))?;
            Ok((
                IWorkflowScheduler::getTaskCall::abi_encode_returns(&t),
                2_600,
            ))
        }
    }
}
