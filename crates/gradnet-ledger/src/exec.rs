//! Executing blocks with revm: a proposer builds one from pooled
//! transactions (dropping those that turn out invalid), a validator
//! re-executes a proposed block and accepts it only if every header field
//! it recomputes (state commitment, roots, gas, bloom) matches.

use alloy_consensus::{Transaction, TxEnvelope, Typed2718};
use alloy_eips::eip1559::{calc_next_block_base_fee, BaseFeeParams};
use alloy_primitives::{Address, Bloom, Bytes, B256, U256};
use revm::context::result::{EVMError, ExecutionResult, Output};
use revm::context::{BlockEnv, Context};
use revm::primitives::hardfork::SpecId;
use revm::{MainBuilder, MainContext};
use std::sync::Arc;

use crate::block::{receipts_root, transactions_root, Block, Header, StoredReceipt};
use crate::error::ChainError;
use crate::slots::{OverlaySlots, ReaderSlots};
use crate::state::{Overlay, StateReader};
use crate::store::{Executed, Missed};
use crate::tx::{tx_env, PooledTx};
use gradnet_inference::precompile::{BlockResults, Precompiles, ResultSource};
use gradnet_inference::registry::{Fault, Registry};
use gradnet_inference::sidecar::{self, Decision, RegistryView, Sidecar};
use gradnet_inference::tee_registry::TeeRegistry;

/// The EVM rules the chain runs.
pub const SPEC: SpecId = SpecId::CANCUN;

/// What a new block is built on and by whom.
#[derive(Debug, Clone)]
pub struct BlockParams {
    /// The block's timestamp.
    pub timestamp: u64,
    /// The proposing validator.
    pub proposer: Address,
    /// Where its priority fees go.
    pub coinbase: Address,
}

/// The base fee of the block after `parent` (EIP-1559).
pub fn next_base_fee(parent: &Header) -> u64 {
    if parent.number == 0 {
        return parent.base_fee;
    }
    calc_next_block_base_fee(
        parent.gas_used,
        parent.gas_limit,
        parent.base_fee,
        BaseFeeParams::ethereum(),
    )
}

/// Outcome of a build: the block, transactions the EVM refused (with
/// why), and transactions left for a later block because an inference
/// call they make has no result yet.
pub struct Built {
    /// The block and what executing it produced.
    pub executed: Executed,
    /// Transactions the EVM refused, with why.
    pub dropped: Vec<(B256, String)>,
    /// Transactions left for a later block.
    pub waiting: Vec<B256>,
}

/// The registry as of `parent`, for the block after it.
pub fn registry_view(
    state: &StateReader,
    chain_id: u64,
    parent: &Header,
) -> Result<RegistryView, ChainError> {
    let nodes = Registry(ReaderSlots {
        state,
        account: gradnet_inference::registry::ADDRESS,
    })
    .all()?;
    let tee_keys = TeeRegistry(ReaderSlots {
        state,
        account: gradnet_inference::registry::ADDRESS,
    })
    .active_keys(parent.timestamp)?;
    Ok(RegistryView {
        chain_id,
        parent_hash: parent.hash(),
        block: parent.number + 1,
        nodes,
        tee_keys,
    })
}

/// Slashes the nodes the used calls' results convict: a result that
/// differs from the majority (with both signed results as evidence), a
/// ZKML proof that does not verify (the signed result is its own
/// evidence), and a sampled node that did not answer.
fn settle_faults(
    overlay: &mut crate::state::Overlay,
    answers: &BlockResults,
    used: &[B256],
    quorum_of: &std::collections::HashMap<B256, usize>,
    bad_proofs: &[(B256, sidecar::NodeResult)],
    block: u64,
) -> Result<Vec<Missed>, ChainError> {
    let mut all_missed = vec![];
    let mut reg = Registry(OverlaySlots {
        overlay,
        account: gradnet_inference::registry::ADDRESS,
    });
    let slash = |reg: &mut Registry<OverlaySlots>, node: Address, bps, fault: Fault| {
        reg.slash(&node, bps, block, &fault)
            .map(|_| ())
            .map_err(ChainError::from)
    };
    for (rh, r) in bad_proofs {
        let fault = Fault {
            request_hash: *rh,
            reason: "ZKML proof does not verify".into(),
            evidence: alloy_rlp::encode(r).into(),
        };
        slash(&mut reg, r.node, sidecar::SLASH_WRONG_BPS, fault)?;
    }
    for rh in used {
        let call = &answers.served[rh];
        let missed: Vec<Address> = match sidecar::decide(call, quorum_of[rh]) {
            Decision::Agreed {
                majority,
                dissenting,
                missed,
                ..
            } => {
                for d in dissenting {
                    let evidence = sidecar::Evidence {
                        chain_id: answers.view.chain_id,
                        request_hash: *rh,
                        majority: majority.clone(),
                        dissent: d.clone(),
                    };
                    let fault = Fault {
                        request_hash: *rh,
                        reason: "result differs from the majority".into(),
                        evidence: alloy_rlp::encode(&evidence).into(),
                    };
                    slash(&mut reg, d.node, sidecar::SLASH_WRONG_BPS, fault)?;
                }
                missed
            }
            Decision::Unserved(_) => call
                .asked
                .iter()
                .filter(|a| !call.answered(a))
                .copied()
                .collect(),
        };
        for m in &missed {
            let fault = Fault {
                request_hash: *rh,
                reason: "did not answer in time".into(),
                evidence: Bytes::new(),
            };
            slash(&mut reg, *m, sidecar::SLASH_MISSED_BPS, fault)?;
        }
        let call = answers.progress.lock().calls.get(rh).cloned();
        if let (false, Some(call)) = (missed.is_empty(), call) {
            all_missed.push(Missed {
                call,
                nodes: missed,
            });
        }
    }
    Ok(all_missed)
}

pub(crate) fn block_env(h: &Header) -> BlockEnv {
    BlockEnv {
        number: U256::from(h.number),
        beneficiary: h.coinbase,
        timestamp: U256::from(h.timestamp),
        gas_limit: h.gas_limit,
        basefee: h.base_fee,
        difficulty: U256::ZERO,
        prevrandao: Some(h.parent_hash),
        ..Default::default()
    }
}

/// The EVM a block runs in: mainnet rules over the state overlay, with
/// gradnet's precompiles.
type BlockEvm<'a> = revm::context::Evm<
    BlockContext<'a>,
    (),
    revm::handler::instructions::EthInstructions<
        revm::interpreter::interpreter::EthInterpreter,
        BlockContext<'a>,
    >,
    Precompiles,
    revm::handler::EthFrame,
>;
type BlockContext<'a> = Context<
    BlockEnv,
    revm::context::TxEnv,
    revm::context::CfgEnv,
    Overlay<'a>,
    revm::Journal<Overlay<'a>>,
>;

/// The EVM block `header` runs in, on `state`, inference calls answered
/// from `answers`.
fn block_evm<'a>(
    state: &'a StateReader,
    chain_id: u64,
    header: &Header,
    answers: &Arc<BlockResults>,
) -> BlockEvm<'a> {
    Context::mainnet()
        .with_db(Overlay::new(state))
        .modify_cfg_chained(|c| {
            c.chain_id = chain_id;
            c.spec = SPEC;
        })
        .with_block(block_env(header))
        .build_mainnet()
        .with_precompiles(Precompiles::new(SPEC, ResultSource::Block(answers.clone())))
}

/// Runs the scheduled tasks that are due at `now` (system calls from the
/// scheduler to each task's `run()`), charging their deposits; a run whose
/// inference call has no result in this block is left for a later one.
fn run_scheduled(
    evm: &mut BlockEvm<'_>,
    answers: &BlockResults,
    now: u64,
) -> Result<(), ChainError> {
    use gradnet_inference::scheduler::{self, Scheduler};
    use revm::database_interface::Database;
    use revm::ExecuteCommitEvm;
    use revm::SystemCallEvm;
    use std::sync::atomic::Ordering;
    let due = Scheduler(OverlaySlots {
        overlay: &mut evm.ctx.journaled_state.database,
        account: scheduler::ADDRESS,
    })
    .due(now)?;
    for mut task in due {
        let balance = |o: &mut crate::state::Overlay| {
            o.basic(scheduler::ADDRESS)
                .map(|a| a.map_or(U256::ZERO, |a| a.balance))
                .map_err(|e| ChainError::State(e.0))
        };
        let before = balance(&mut evm.ctx.journaled_state.database)?;
        let (misses, used) = {
            let p = answers.progress.lock();
            (p.misses.len(), p.used.len())
        };
        answers.soft.store(true, Ordering::Relaxed);
        let out = evm.system_call_with_caller(
            scheduler::ADDRESS,
            task.contractAddress,
            scheduler::run_selector(),
        );
        answers.soft.store(false, Ordering::Relaxed);
        let out = match out {
            Ok(out) => out,
            Err(EVMError::Custom(e)) => return Err(ChainError::Execution(e)),
            Err(e) => {
                tracing::warn!(task = %task.contractAddress, "scheduled run not executed: {e}");
                continue;
            }
        };
        {
            let mut p = answers.progress.lock();
            if p.misses.len() > misses && !answers.speculative {
                p.used.truncate(used);
                continue;
            }
        }
        evm.commit(out.state);
        let o = &mut evm.ctx.journaled_state.database;
        let spent = before.saturating_sub(balance(o)?);
        task.deposit = task.deposit.saturating_sub(spent);
        task.nextRun = U256::from(now) + task.frequency;
        task.runs += 1;
        Scheduler(OverlaySlots {
            overlay: o,
            account: scheduler::ADDRESS,
        })
        .put(&task)?;
    }
    Ok(())
}

/// The block's sidecar: the served calls its transactions used, in order
/// of first use (with `strict`, every served call must be used), after the
/// faults they show (disagreeing, missing or bad-proof nodes) are settled
/// in the registry.
fn block_sidecar(
    evm: &mut BlockEvm<'_>,
    answers: &BlockResults,
    strict: bool,
    number: u64,
) -> Result<(Sidecar, Vec<Missed>), ChainError> {
    let used_calls = std::mem::take(&mut answers.progress.lock().used);
    let mut used: Vec<B256> = vec![];
    let mut quorum_of = std::collections::HashMap::new();
    for (rh, q) in &used_calls {
        if quorum_of.insert(*rh, *q).is_none() {
            used.push(*rh);
        }
    }
    if strict && used.len() != answers.served.len() {
        return Err(ChainError::Invalid(format!(
            "the sidecar holds {} inference results, the block's calls use {}",
            answers.served.len(),
            used.len()
        )));
    }
    let mut bad_proofs = std::mem::take(&mut answers.progress.lock().bad_proofs);
    bad_proofs.retain(|(rh, _)| quorum_of.contains_key(rh));
    bad_proofs.dedup_by(|a, b| a.0 == b.0);
    let missed = settle_faults(
        &mut evm.ctx.journaled_state.database,
        answers,
        &used,
        &quorum_of,
        &bad_proofs,
        number,
    )?;
    let sidecar = Sidecar {
        calls: used.iter().map(|rh| answers.served[rh].clone()).collect(),
    };
    Ok((sidecar, missed))
}

/// Runs `txs` in order on the state after `parent`. With `strict`, any
/// invalid transaction fails the whole block (a validator checking a
/// proposal); otherwise it is left out (a proposer building one).
fn run(
    state: &StateReader,
    chain_id: u64,
    parent: &Header,
    params: &BlockParams,
    txs: &[PooledTx],
    strict: bool,
    answers: Arc<BlockResults>,
) -> Result<Built, ChainError> {
    use revm::{ExecuteCommitEvm, ExecuteEvm};
    let mut header = Header {
        parent_hash: parent.hash(),
        number: parent.number + 1,
        timestamp: params.timestamp,
        proposer: params.proposer,
        coinbase: params.coinbase,
        state_root: B256::ZERO,
        transactions_root: B256::ZERO,
        receipts_root: B256::ZERO,
        logs_bloom: Bloom::ZERO,
        gas_limit: parent.gas_limit,
        gas_used: 0,
        base_fee: next_base_fee(parent),
        sidecar_root: B256::ZERO,
    };
    let mut evm = block_evm(state, chain_id, &header, &answers);
    let (mut included, mut receipts, mut dropped, mut waiting) = (vec![], vec![], vec![], vec![]);
    let mut envelopes: Vec<TxEnvelope> = vec![];
    let mut gas = 0u64;
    // scheduled tasks first; then the pooled transactions
    run_scheduled(&mut evm, &answers, header.timestamp)?;
    let mut waiting_senders = std::collections::HashSet::new();
    for tx in txs {
        if waiting_senders.contains(&tx.sender) {
            // after a waiting transaction, its sender's next ones wait too
            waiting.push(tx.hash);
            continue;
        }
        if gas + tx.gas_limit() > header.gas_limit {
            if strict {
                return Err(ChainError::Invalid(format!(
                    "transaction {} exceeds the block's gas limit",
                    tx.hash
                )));
            }
            continue;
        }
        let (misses, used) = {
            let p = answers.progress.lock();
            (p.misses.len(), p.used.len())
        };
        let result = match evm.transact(tx_env(&tx.envelope, tx.sender)) {
            Ok(r) => {
                let mut p = answers.progress.lock();
                if p.misses.len() > misses && !answers.speculative {
                    // an inference call without a result yet: not in this block
                    p.used.truncate(used);
                    waiting.push(tx.hash);
                    waiting_senders.insert(tx.sender);
                    continue;
                }
                drop(p);
                evm.commit(r.state);
                r.result
            }
            Err(EVMError::Transaction(e)) => {
                if strict {
                    return Err(ChainError::Invalid(format!("transaction {}: {e}", tx.hash)));
                }
                dropped.push((tx.hash, e.to_string()));
                continue;
            }
            Err(e) => return Err(ChainError::Execution(e.to_string())),
        };
        let used = result.tx_gas_used();
        gas += used;
        let (success, logs, output, created) = match result {
            ExecutionResult::Success { logs, output, .. } => match output {
                Output::Create(_, addr) => (true, logs, Bytes::new(), addr),
                Output::Call(out) => (true, logs, out, None),
            },
            ExecutionResult::Revert { output, .. } => (false, vec![], output, None),
            ExecutionResult::Halt { reason, .. } => (
                false,
                vec![],
                Bytes::from(format!("{reason:?}").into_bytes()),
                None,
            ),
        };
        receipts.push(StoredReceipt {
            tx_hash: tx.hash,
            tx_type: tx.envelope.ty(),
            from: tx.sender,
            to: tx.envelope.to(),
            contract_address: created,
            success,
            gas_used: used,
            cumulative_gas_used: gas,
            effective_gas_price: tx.envelope.effective_gas_price(Some(header.base_fee)),
            logs,
            output,
        });
        envelopes.push(tx.envelope.clone());
        included.push(tx.raw.clone());
    }
    let (sidecar, missed) = block_sidecar(&mut evm, &answers, strict, header.number)?;
    header.sidecar_root = sidecar.root();
    let diff = evm.ctx.journaled_state.database.diff;
    header.state_root = diff.commitment(parent.state_root);
    header.transactions_root = transactions_root(&envelopes);
    header.receipts_root = receipts_root(&receipts);
    header.logs_bloom = receipts.iter().fold(Bloom::ZERO, |b, r| b | r.bloom());
    header.gas_used = gas;
    Ok(Built {
        executed: Executed {
            block: Block {
                header,
                transactions: included,
                sidecar,
            },
            receipts,
            diff,
            missed,
        },
        dropped,
        waiting,
    })
}

/// Builds the next block from candidate transactions (in the order given),
/// answering inference calls from `answers` (recording those it lacks).
pub fn build(
    state: &StateReader,
    chain_id: u64,
    parent: &Header,
    params: &BlockParams,
    txs: &[PooledTx],
    answers: Arc<BlockResults>,
) -> Result<Built, ChainError> {
    run(state, chain_id, parent, params, txs, false, answers)
}

/// Re-executes a proposed block; it must reproduce its own header exactly.
pub fn verify(
    state: &StateReader,
    chain_id: u64,
    parent: &Header,
    block: &Block,
) -> Result<Executed, ChainError> {
    verify_known(state, chain_id, parent, block, |_| None)
}

/// `verify`, taking transactions already decoded and checked (by hash,
/// from the pool) rather than recovering their senders again.
pub fn verify_known(
    state: &StateReader,
    chain_id: u64,
    parent: &Header,
    block: &Block,
    known: impl Fn(&B256) -> Option<PooledTx>,
) -> Result<Executed, ChainError> {
    let h = &block.header;
    if h.number != parent.number + 1 || h.parent_hash != parent.hash() {
        return Err(ChainError::Invalid(format!(
            "block {} does not extend block {}",
            h.number, parent.number
        )));
    }
    if h.timestamp < parent.timestamp {
        return Err(ChainError::Invalid("block timestamp goes backwards".into()));
    }
    let mut txs = Vec::with_capacity(block.transactions.len());
    for raw in &block.transactions {
        match known(&alloy_primitives::keccak256(raw)) {
            Some(t) => txs.push(t),
            None => txs.push(crate::tx::decode(raw, chain_id)?),
        }
    }
    let params = BlockParams {
        timestamp: h.timestamp,
        proposer: h.proposer,
        coinbase: h.coinbase,
    };
    let view = registry_view(state, chain_id, parent)?;
    let mut served = std::collections::HashMap::new();
    for c in &block.sidecar.calls {
        if served.insert(c.request_hash, c.clone()).is_some() {
            return Err(ChainError::Invalid(format!(
                "the sidecar lists call {} twice",
                c.request_hash
            )));
        }
    }
    let answers = BlockResults::new(view, served, false);
    let built = run(state, chain_id, parent, &params, &txs, true, answers)?;
    if built.executed.block.sidecar != block.sidecar {
        return Err(ChainError::Invalid(format!(
            "block {}: the sidecar is not in the order its calls are made",
            h.number
        )));
    }
    let mine = &built.executed.block.header;
    if mine != h {
        return Err(ChainError::Invalid(format!(
            "block {} does not match its execution: header says state {} gas {}, execution gives state {} gas {}",
            h.number, h.state_root, h.gas_used, mine.state_root, mine.gas_used
        )));
    }
    Ok(built.executed)
}

/// The state changes a mined block made before its transaction `upto`:
/// its scheduled runs and its first `upto` transactions, replayed on
/// `state` (the state after `parent`) with the block's own sidecar
/// answering inference calls; with those answers, for running `upto` next.
pub fn replay_prefix(
    state: &StateReader,
    chain_id: u64,
    parent: &Header,
    block: &Block,
    upto: usize,
) -> Result<(crate::state::Diff, Arc<BlockResults>), ChainError> {
    use revm::{ExecuteCommitEvm, ExecuteEvm};
    let view = registry_view(state, chain_id, parent)?;
    let served = block
        .sidecar
        .calls
        .iter()
        .map(|c| (c.request_hash, c.clone()))
        .collect();
    let answers = BlockResults::new(view, served, false);
    let mut evm = block_evm(state, chain_id, &block.header, &answers);
    run_scheduled(&mut evm, &answers, block.header.timestamp)?;
    for raw in block.transactions.iter().take(upto) {
        let tx = crate::tx::decode(raw, chain_id)?;
        match evm.transact(tx_env(&tx.envelope, tx.sender)) {
            Ok(r) => evm.commit(r.state),
            Err(e) => {
                return Err(ChainError::Execution(format!(
                    "replaying transaction {}: {e}",
                    tx.hash
                )))
            }
        }
    }
    Ok((evm.ctx.journaled_state.database.diff, answers))
}
