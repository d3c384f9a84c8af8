//! The chain's decoders of bytes a transaction or a peer brings (a block's
//! sidecar, precompile calldata, ZKML outcomes, fault reports, packed
//! vouchers), fed arbitrary and mutated input: never a panic.

use alloy_primitives::{Bytes, B256};
use alloy_sol_types::SolCall;
use gradnet_inference::abi::{
    InferencePrecompile, ModelInferenceRequest, ModelInput, MultiDimensionalNumberTensor, Number,
};
use gradnet_inference::sidecar::{decide, outcome_result, ServedCall, Sidecar};
use gradnet_inference::{fault_report, precompile, zk};
use proptest::prelude::*;

fn calldata(mode: u8) -> Vec<u8> {
    InferencePrecompile::runModelInferenceCall {
        request: ModelInferenceRequest {
            mode,
            modelCID: "b3model".into(),
            input: ModelInput {
                numbers: vec![MultiDimensionalNumberTensor {
                    name: "x".into(),
                    values: vec![
                        Number {
                            value: 5,
                            decimals: 1
                        };
                        4
                    ],
                    shape: vec![1, 4],
                }],
                strings: vec![],
            },
        },
    }
    .abi_encode()
}

fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = base.len();
    prop::collection::vec((0..n.max(1), any::<u8>(), 0u8..3), 0..8)
        .prop_map(move |edits| gradnet_types::test_utils::mutate(&base, &edits))
}

proptest! {
    #[test]
    fn sidecars_and_outcomes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(s) = <Sidecar as alloy_rlp::Decodable>::decode(&mut &bytes[..]) {
            for c in &s.calls {
                let _ = decide(c, 3);
                let _ = c.results();
            }
        }
        let _ = <ServedCall as alloy_rlp::Decodable>::decode(&mut &bytes[..]);
        let _ = outcome_result(&bytes);
        let _ = zk::parse_outcome(&bytes);
        let _ = gradnet_types::payments::unpack(&bytes);
        let _ = fault_report::check(&bytes, 1, 300, |_| B256::ZERO, vec![], |_, _| Ok(false));
    }

    #[test]
    fn precompile_calls_never_panic(mode in any::<u8>(), data in mutated(calldata(3))) {
        let _ = precompile::parse(&calldata(mode));
        let _ = precompile::parse(&data);
        let _ = Bytes::from(data);
    }
}
