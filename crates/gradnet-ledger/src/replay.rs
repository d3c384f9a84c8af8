//! Running a transaction again outside block building: `eth_call` and
//! `eth_estimateGas` with state and block overrides, and any revm inspector
//! (traces, access lists) over a call or over a mined transaction on the
//! state it ran on — its block's scheduled runs and earlier transactions
//! replayed, inference calls answered from the block's sidecar.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use revm::context::result::{EVMError, ResultAndState};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::{Inspector, MainBuilder, MainContext};

use crate::block::{Block, Header};
use crate::error::ChainError;
use crate::exec::{self, SPEC};
use crate::state::{Diff, Overlay, StateReader};
use gradnet_inference::precompile::{BlockResults, Precompiles, ResultSource};

/// Fields of the block a call runs in that a caller may set (geth's
/// `BlockOverrides`).
#[derive(Debug, Clone, Default)]
pub struct BlockOverrides {
    /// The block number.
    pub number: Option<u64>,
    /// Its timestamp (Unix seconds).
    pub timestamp: Option<u64>,
    /// Its gas limit.
    pub gas_limit: Option<u64>,
    /// Where its fees go.
    pub coinbase: Option<Address>,
    /// PREVRANDAO.
    pub prevrandao: Option<B256>,
    /// Its base fee (wei).
    pub base_fee: Option<u64>,
}

/// The block a call on the state after `parent` runs in: the next one, as
/// `eth_call` runs it, with `o` applied.
pub fn call_block(parent: &Header, o: &BlockOverrides) -> BlockEnv {
    let mut h = parent.clone();
    h.number += 1;
    h.base_fee = exec::next_base_fee(parent);
    let mut env = exec::block_env(&h);
    if let Some(n) = o.number {
        env.number = U256::from(n);
    }
    if let Some(t) = o.timestamp {
        env.timestamp = U256::from(t);
    }
    if let Some(g) = o.gas_limit {
        env.gas_limit = g;
    }
    if let Some(c) = o.coinbase {
        env.beneficiary = c;
    }
    if let Some(r) = o.prevrandao {
        env.prevrandao = Some(r);
    }
    if let Some(b) = o.base_fee {
        env.basefee = b;
    }
    env
}

/// One transaction or call to run: on `state` with `pre` on top, in block
/// `block`, inference calls answered by `answers`.
pub struct Run<'a> {
    /// The state below.
    pub state: &'a StateReader,
    /// Changes on top of it (overrides, earlier transactions).
    pub pre: Diff,
    /// The chain id.
    pub chain_id: u64,
    /// The block it runs in.
    pub block: BlockEnv,
    /// Who answers inference calls.
    pub answers: ResultSource,
    /// A call (no nonce check, as `eth_call`) rather
    /// than a signed transaction.
    pub call: bool,
}

type Ctx<'a> = Context<BlockEnv, TxEnv, CfgEnv, Overlay<'a>, revm::Journal<Overlay<'a>>>;

/// Runs `tx` with `inspector` watching, without committing; `finish` gets
/// the inspector, the outcome, the transaction, the block and the state the
/// run started from (a prestate tracer reads it).
pub fn inspect<'a, I, T>(
    run: Run<'a>,
    tx: TxEnv,
    inspector: I,
    finish: impl FnOnce(&mut I, &ResultAndState, &TxEnv, &BlockEnv, &Overlay<'a>) -> T,
) -> Result<T, ChainError>
where
    I: Inspector<Ctx<'a>>,
{
    use revm::InspectEvm;
    let mut overlay = Overlay::new(run.state);
    overlay.diff = run.pre;
    let call = run.call;
    let mut evm = Context::mainnet()
        .with_db(overlay)
        .modify_cfg_chained(|c| {
            c.chain_id = run.chain_id;
            c.spec = SPEC;
            c.disable_nonce_check = call;
        })
        .with_block(run.block.clone())
        .build_mainnet_with_inspector(inspector)
        .with_precompiles(Precompiles::new(SPEC, run.answers));
    let out = match evm.inspect_tx(tx.clone()) {
        Ok(r) => r,
        Err(EVMError::Transaction(e)) => return Err(ChainError::Rejected(e.to_string())),
        Err(e) => return Err(ChainError::Execution(e.to_string())),
    };
    let block = run.block;
    let db = &evm.ctx.journaled_state.database;
    Ok(finish(&mut evm.inspector, &out, &tx, &block, db))
}

/// What a mined transaction ran on: the changes of its block's scheduled
/// runs and of the transactions before it (on `state`, the state after
/// `parent`), the block it ran in, and the block's sidecar answers.
pub fn before_tx(
    state: &StateReader,
    chain_id: u64,
    parent: &Header,
    block: &Block,
    index: usize,
) -> Result<(Diff, BlockEnv, Arc<BlockResults>), ChainError> {
    let (diff, answers) = exec::replay_prefix(state, chain_id, parent, block, index)?;
    Ok((diff, exec::block_env(&block.header), answers))
}
