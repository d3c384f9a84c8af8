//! What every system contract (the registry, the workflow scheduler, the
//! TEE registry) checks before running a call: it decodes, it is called
//! directly (not by delegatecall), value goes only to payable functions,
//! and a static call changes nothing. Also their event logging.

use alloy_primitives::{Address, Log};
use alloy_sol_types::{SolEvent, SolInterface};
use revm::context_interface::{ContextTr, JournalTr};
use revm::interpreter::CallInputs;

use crate::error::SystemError;
use crate::revert;

/// How one function may be called.
pub struct Rules {
    /// Whether it takes value.
    pub payable: bool,
    /// Whether it writes (refused in a static call).
    pub writes: bool,
}

/// The decoded call to the contract `name` at `address`, or why it reverts.
pub fn decode<C: SolInterface, CTX: ContextTr>(
    ctx: &mut CTX,
    inputs: &CallInputs,
    address: Address,
    name: &str,
    rules: impl Fn(&C) -> Rules,
) -> Result<C, SystemError> {
    let input = inputs.input.as_bytes(ctx).to_vec();
    let call = C::abi_decode(&input).map_err(|e| format!("{name}: malformed call: {e}"))?;
    if inputs.target_address != address {
        return Err(revert!(
            "{name}: must be called directly (not by delegatecall)"
        ));
    }
    let r = rules(&call);
    if !inputs.call_value().is_zero() && !r.payable {
        return Err(revert!("{name}: this function does not take value"));
    }
    if r.writes && inputs.is_static {
        return Err(revert!("{name}: state change in a static call"));
    }
    Ok(call)
}

/// Emits `e` from the contract at `address`.
pub fn log<J: JournalTr>(journal: &mut J, address: Address, e: impl SolEvent) {
    journal.log(Log {
        address,
        data: e.encode_log_data(),
    });
}
