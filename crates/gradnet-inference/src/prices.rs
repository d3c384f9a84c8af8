//! Node prices on chain: a registered node's operator publishes what its
//! node charges off chain (`IPrices` in `gradnet_types::payments`: per ONNX
//! call, per million input and output tokens, with overrides per model),
//! answered by the node registry at `0x…F5` next to its own interface.
//! Clients read them before they pay; nodes charge by them.

use alloy_primitives::{Address, U256};
use alloy_sol_types::{SolCall, SolInterface, SolValue};
use gradnet_types::payments::{IPrices, Prices, MAX_MODEL_PRICES};
use revm::context_interface::{ContextTr, JournalTr};
use revm::interpreter::CallInputs;

use crate::error::SystemError;
use crate::registry::{self, Registry, REGISTRY_READ_GAS, REGISTRY_WRITE_GAS, ZK_KEY_GAS_PER_WORD};
use crate::revert;
use crate::slots::{slot, JournalSlots, Slots};
use crate::system_call::{self, Rules};

use IPrices::IPricesCalls as Call;

fn prices_slot(op: &Address) -> U256 {
    slot("gradnet.prices", op.as_slice())
}

/// Whether `input` is a call of the prices interface.
pub fn is_prices_call(input: &[u8]) -> bool {
    input
        .get(..4)
        .is_some_and(|s| Call::valid_selector(s.try_into().expect("4 bytes")))
}

/// The prices of `op`'s node (all zero when it published none).
pub fn prices<S: Slots>(slots: &mut S, op: &Address) -> Result<Prices, SystemError> {
    let b = slots.get_bytes(prices_slot(op))?;
    if b.is_empty() {
        return Ok(Prices::default());
    }
    Ok(Prices::abi_decode(&b).map_err(|e| format!("stored prices: {e}"))?)
}

/// Publishes `p` for `op`'s node, which must be registered.
pub fn set_prices<S: Slots>(slots: &mut S, op: Address, p: &Prices) -> Result<usize, SystemError> {
    if Registry(&mut *slots).node(&op)?.is_none() {
        return Err(revert!(
            "prices: {op} runs no registered node (register it first)"
        ));
    }
    if p.models.len() > MAX_MODEL_PRICES {
        return Err(revert!(
            "prices: {} model prices; at most {MAX_MODEL_PRICES}",
            p.models.len()
        ));
    }
    for (i, m) in p.models.iter().enumerate() {
        if m.model.is_empty() || m.model.len() > 256 {
            return Err(revert!(
                "prices: model {i} is named by a content id or repository name (1 to 256 bytes)"
            ));
        }
        if p.models[..i].iter().any(|n| n.model == m.model) {
            return Err(revert!("prices: `{}` is priced twice", m.model));
        }
    }
    let bytes = p.abi_encode();
    slots.set_bytes(prices_slot(&op), &bytes)?;
    Ok(bytes.len())
}

/// Runs a prices call to the registry: its return data and gas.
pub fn call<CTX: ContextTr>(
    ctx: &mut CTX,
    inputs: &CallInputs,
) -> Result<(Vec<u8>, u64), SystemError> {
    let call: Call = system_call::decode(ctx, inputs, registry::ADDRESS, "prices", |c| Rules {
        payable: false,
        writes: matches!(c, Call::setPrices(_)),
    })?;
    let caller = inputs.caller;
    let journal = ctx.journal_mut();
    let mut slots = JournalSlots {
        journal: &mut *journal,
        account: registry::ADDRESS,
    };
    match call {
        Call::setPrices(c) => {
            let len = set_prices(&mut slots, caller, &c.prices)?;
            log(
                slots.journal,
                IPrices::PricesSet {
                    operator: caller,
                    perCall: c.prices.perCall,
                    models: U256::from(c.prices.models.len()),
                },
            );
            Ok((
                vec![],
                REGISTRY_WRITE_GAS + ZK_KEY_GAS_PER_WORD * len.div_ceil(32) as u64,
            ))
        }
        Call::prices(c) => {
            let p = prices(&mut slots, &c.operator)?;
            let out = IPrices::pricesCall::abi_encode_returns(&p);
            let words = out.len().div_ceil(32) as u64;
            Ok((out, REGISTRY_READ_GAS * words.max(1)))
        }
    }
}

fn log<J: JournalTr>(journal: &mut J, e: impl alloy_sol_types::SolEvent) {
    system_call::log(journal, registry::ADDRESS, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradnet_types::payments::ModelPrice;
    use std::collections::BTreeMap;

    #[test]
    fn only_a_registered_node_publishes_prices_and_they_read_back() {
        let mut slots = BTreeMap::new();
        let op = Address::repeat_byte(7);
        let p = Prices {
            perCall: U256::from(1_000u64),
            perMillionInputTokens: U256::from(5u64),
            perMillionOutputTokens: U256::from(9u64),
            models: vec![ModelPrice {
                model: "smollm2".into(),
                perCall: U256::ZERO,
                perMillionInputTokens: U256::from(50u64),
                perMillionOutputTokens: U256::from(90u64),
            }],
        };
        let e = set_prices(&mut slots, op, &p).unwrap_err().to_string();
        assert!(e.contains("no registered node"), "{e}");
        Registry(&mut slots)
            .register(
                op,
                Default::default(),
                "http://n".into(),
                &[0],
                vec![],
                registry::MIN_STAKE,
            )
            .unwrap();
        assert_eq!(prices(&mut slots, &op).unwrap(), Prices::default());
        set_prices(&mut slots, op, &p).unwrap();
        assert_eq!(prices(&mut slots, &op).unwrap(), p);
        let mut twice = p.clone();
        twice.models.push(twice.models[0].clone());
        assert!(set_prices(&mut slots, op, &twice)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }
}
