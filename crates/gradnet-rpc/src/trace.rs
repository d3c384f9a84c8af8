//! `debug_traceTransaction`, `debug_traceCall` and `debug_traceBlockByNumber`
//! / `ByHash`, in geth's formats (struct logs by default, `callTracer`,
//! `prestateTracer`, `4byteTracer`, `flatCallTracer`, `muxTracer`, `noopTracer`)
//! through revm-inspectors' debug inspector. A mined transaction is traced on
//! the state it ran on: the parent block's state, then its block's scheduled
//! runs and earlier transactions, inference calls answered from the sidecar.

use alloy_primitives::B256;
use alloy_rpc_types_trace::geth::GethDebugTracingOptions;
use revm::context::result::ResultAndState;
use revm::context::{BlockEnv, TxEnv};
use revm_inspectors::tracing::{DebugInspector, TransactionContext};
use serde_json::{json, Value};

use super::call::{self, CallRequest};
use super::eth::{block_number, opt_param, param};
use super::RpcError;
use gradnet_ledger::chain::Chain;
use gradnet_ledger::replay::{self, Run};
use gradnet_ledger::state::Overlay;

/// Blocks one `debug_traceBlock*` traces at most (each transaction is one replay).
const MAX_BLOCK_TXS: usize = 1_000;

fn options(v: Option<Value>) -> Result<(GethDebugTracingOptions, Value), RpcError> {
    let v = v.unwrap_or_else(|| json!({}));
    let mut opts = v.clone();
    if let Some(o) = opts.as_object_mut() {
        // traceCall's overrides are read by the caller
        o.remove("stateOverrides");
        o.remove("blockOverrides");
        o.remove("txIndex");
    }
    let parsed: GethDebugTracingOptions = serde_json::from_value(opts)
        .map_err(|e| RpcError::invalid_params(format!("invalid tracer options: {e}")))?;
    if parsed.timeout.is_some() {
        // every trace here is bounded by the call gas cap instead
        tracing::debug!("tracer timeout ignored: traces are bounded by gas");
    }
    Ok((parsed, v))
}

fn inspector(opts: &GethDebugTracingOptions) -> Result<DebugInspector, RpcError> {
    DebugInspector::new(opts.clone()).map_err(|e| RpcError::invalid_params(format!("tracer: {e}")))
}

fn result(
    insp: &mut DebugInspector,
    ctx: Option<TransactionContext>,
    tx: &TxEnv,
    block: &BlockEnv,
    out: &ResultAndState,
    db: &Overlay<'_>,
) -> Result<Value, RpcError> {
    let mut db = db.clone();
    let trace = insp
        .get_result(ctx, tx, block, out, &mut db)
        .map_err(|e| RpcError::server(format!("tracer: {e}")))?;
    serde_json::to_value(trace).map_err(|e| RpcError::server(e.to_string()))
}

/// Traces transaction `index` of block `number`.
fn trace_mined(
    chain: &Chain,
    number: u64,
    index: usize,
    opts: &GethDebugTracingOptions,
) -> Result<Value, RpcError> {
    if number == 0 {
        return Err(RpcError::server(
            "the genesis block has no transactions to trace",
        ));
    }
    let block = chain
        .store
        .block(number)?
        .ok_or_else(|| RpcError::server(format!("block {number} not found")))?;
    let parent = chain
        .store
        .block(number - 1)?
        .ok_or_else(|| RpcError::server(format!("block {} not found", number - 1)))?
        .header;
    let state = chain.store.state_at(number - 1)?;
    let (pre, env, answers) = replay::before_tx(&state, chain.chain_id(), &parent, &block, index)?;
    let raw = block
        .transactions
        .get(index)
        .ok_or_else(|| RpcError::server(format!("block {number} has no transaction {index}")))?;
    let tx = gradnet_ledger::tx::decode(raw, chain.chain_id())?;
    let tx_env = gradnet_ledger::tx::tx_env(&tx.envelope, tx.sender);
    let ctx = TransactionContext {
        block_hash: Some(block.hash()),
        tx_index: Some(index),
        tx_hash: Some(tx.hash),
    };
    let run = Run {
        state: &state,
        pre,
        chain_id: chain.chain_id(),
        block: env,
        answers: gradnet_inference::precompile::ResultSource::Block(answers),
        call: false,
    };
    replay::inspect(run, tx_env, inspector(opts)?, |i, out, tx, b, db| {
        result(i, Some(ctx), tx, b, out, db)
    })?
}

pub(super) fn trace_transaction(chain: &Chain, p: &[Value]) -> Result<Value, RpcError> {
    let hash: B256 = param(p, 0)?;
    let (opts, _) = options(opt_param(p, 1)?)?;
    let (n, i) = chain
        .store
        .tx_location(&hash)?
        .ok_or_else(|| RpcError::server(format!("transaction {hash} not found")))?;
    trace_mined(chain, n, i as usize, &opts)
}

pub(super) fn trace_block(chain: &Chain, method: &str, p: &[Value]) -> Result<Value, RpcError> {
    let n = if method == "debug_traceBlockByHash" {
        let h: B256 = param(p, 0)?;
        chain
            .store
            .block_number(&h)?
            .ok_or_else(|| RpcError::server(format!("block {h} not found")))?
    } else {
        block_number(chain, p.first())?
    };
    let (opts, _) = options(opt_param(p, 1)?)?;
    let block = chain
        .store
        .block(n)?
        .ok_or_else(|| RpcError::server(format!("block {n} not found")))?;
    if block.transactions.len() > MAX_BLOCK_TXS {
        return Err(RpcError::new(
            -32005,
            format!("block {n} has more than {MAX_BLOCK_TXS} transactions: trace them one by one"),
        ));
    }
    let receipts = chain.store.receipts(n)?;
    let mut out = vec![];
    for (i, r) in receipts.iter().enumerate() {
        let trace = trace_mined(chain, n, i, &opts)?;
        out.push(json!({"txHash": r.tx_hash, "result": trace}));
    }
    Ok(json!(out))
}

pub(super) fn trace_call(chain: &Chain, p: &[Value]) -> Result<Value, RpcError> {
    let req: CallRequest = param(p, 0)?;
    let (opts, raw) = options(opt_param(p, 2)?)?;
    let prepared = call::prepare(
        chain,
        p.get(1),
        raw.get("stateOverrides"),
        raw.get("blockOverrides"),
        &req,
    )?;
    call::run_call(
        chain,
        &prepared,
        &req,
        inspector(&opts)?,
        |i, out, tx, b, db| result(i, None, tx, b, out, db),
    )?
}
