//! A revert's data as a person reads it: Solidity's `Error(string)` and
//! `Panic(uint256)`, anything else as hex.

use alloy_sol_types::{Panic, Revert, SolError};

/// The reason in a revert's return data.
pub fn decode_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "no reason given".into();
    }
    if let Ok(r) = Revert::abi_decode(data) {
        return r.reason;
    }
    if let Ok(p) = Panic::abi_decode(data) {
        return format!("panic {:#x}", p.code);
    }
    format!("0x{}", alloy_primitives::hex::encode(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_panics_and_raw_data() {
        let r = Revert::from("inference: model `x` is not in the hub").abi_encode();
        assert_eq!(decode_revert(&r), "inference: model `x` is not in the hub");
        let p = Panic {
            code: alloy_primitives::U256::from(0x11),
        }
        .abi_encode();
        assert_eq!(decode_revert(&p), "panic 0x11");
        assert_eq!(decode_revert(&[0xde, 0xad]), "0xdead");
        assert_eq!(decode_revert(&[]), "no reason given");
    }
}
