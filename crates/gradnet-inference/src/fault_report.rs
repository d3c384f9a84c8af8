//! Faults proved off chain: a QUORUM certificate (`gradnet_types::
//! certificate`) served by a gateway holds every sampled node's signed
//! receipt; one whose output hash differs from the majority's convicts its
//! node as a wrong result in a block's sidecar does. Anyone may send it to
//! the registry (`reportFault`); every validator then checks, with no I/O:
//!
//! - the certificate itself (signatures, one request, a majority);
//! - its seed: a block among the last 256 whose hash is the one stated;
//! - the sampling: the nodes asked are the head of the order PIPE's
//!   `RegistryView::ranked` gives for that seed and the receipts' model
//!   (its content id is the sampling key: a gateway knows it before any
//!   node answers, and whoever assembles a certificate can pick only among
//!   the last 256 seeds, not grind inputs), under the registry as it
//!   stands (a registry changed since the seed block refuses the report:
//!   the sampling cannot be shown);
//! - each answer's receipt is signed with its operator's registered key.
//!
//! Each dissenter loses `SLASH_WRONG_BPS` of its stake once per request;
//! the certificate is kept as the fault's evidence.

use alloy_primitives::{Address, B256};
use gradnet_types::certificate::Certificate;
use gradnet_types::InferenceMode;

use crate::registry::NodeRecord;
use crate::sidecar::RegistryView;

/// Blocks back a certificate's seed may be (as `BLOCKHASH` reaches).
pub const MAX_SEED_AGE: u64 = 256;
/// Largest certificate a report may carry.
pub const MAX_REPORT_BYTES: usize = 64 << 10;
/// Why the stored fault says a node was slashed.
pub const REASON: &str = "off-chain QUORUM: its signed output differs from the majority's";

/// The key QUORUM off chain samples nodes by, with the seed block's hash:
/// the model's content id.
pub fn sampling_key(model: &gradnet_types::ContentId) -> B256 {
    B256::from(model.0)
}

/// A checked report: the request and the operators it convicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Convicted {
    /// The request all answers are to (the receipts' request hash).
    pub request_hash: B256,
    /// The dissenting operators.
    pub nodes: Vec<Address>,
}

/// Parses and checks a report made at block `block` of chain `chain_id`;
/// `seed_hash` reads a past block's hash (zero: unknown).
pub fn check(
    bytes: &[u8],
    chain_id: u64,
    block: u64,
    seed_hash: impl FnOnce(u64) -> B256,
    nodes: Vec<NodeRecord>,
    mut reported: impl FnMut(&Address, &B256) -> Result<bool, String>,
) -> Result<(Certificate, Convicted), String> {
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(format!(
            "fault report: the certificate has {} bytes, at most {MAX_REPORT_BYTES}",
            bytes.len()
        ));
    }
    let cert: Certificate = serde_json::from_slice(bytes)
        .map_err(|e| format!("fault report: malformed certificate: {e}"))?;
    if cert.mode != InferenceMode::Quorum {
        return Err(format!(
            "fault report: a {} certificate convicts nobody (only QUORUM ones do)",
            cert.mode
        ));
    }
    let verdict = cert.check().map_err(|e| format!("fault report: {e}"))?;
    if verdict.dissenting.is_empty() {
        return Err("fault report: every answer in the certificate agrees".into());
    }
    if cert.chain_id != chain_id {
        return Err(format!(
            "fault report: the certificate is for chain {}, this is chain {chain_id}",
            cert.chain_id
        ));
    }
    let request_hash = B256::from(cert.answers[0].receipt.body.request_hash.0);
    for &i in &verdict.dissenting {
        let op = cert.answers[i].operator;
        if reported(&op, &request_hash)? {
            return Err(format!(
                "fault report: {op}'s answer to request {request_hash} was reported already"
            ));
        }
    }
    let seed = cert.seed;
    if seed.block >= block || block - seed.block > MAX_SEED_AGE {
        return Err(format!(
            "fault report: seed block {} is not among the {MAX_SEED_AGE} before block {block}",
            seed.block
        ));
    }
    let actual = seed_hash(seed.block);
    if actual != seed.hash {
        return Err(format!(
            "fault report: block {} has hash {actual}, the certificate says {}",
            seed.block, seed.hash
        ));
    }
    let first = &cert.answers[0].receipt.body;
    let model = first.model.to_string();
    let view = RegistryView {
        chain_id,
        parent_hash: seed.hash,
        block: seed.block + 1,
        nodes,
        tee_keys: vec![],
    };
    let ranked = view.ranked(&sampling_key(&first.model), InferenceMode::Quorum, &model);
    if cert.asked.len() > ranked.len()
        || cert
            .asked
            .iter()
            .zip(&ranked)
            .any(|(a, n)| *a != n.operator)
    {
        return Err(format!(
            "fault report: the nodes asked are not the registry's sampling for model {model} at block {}",
            seed.block
        ));
    }
    for (i, a) in cert.answers.iter().enumerate() {
        let n = view.node(&a.operator).expect("asked nodes are ranked");
        if !hex::encode(n.signing_key).eq_ignore_ascii_case(&a.receipt.body.node) {
            return Err(format!(
                "fault report: answer {i} is not signed with the key {} registered",
                a.operator
            ));
        }
    }
    let nodes = verdict
        .dissenting
        .iter()
        .map(|&i| cert.answers[i].operator)
        .collect();
    Ok((
        cert,
        Convicted {
            request_hash,
            nodes,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MIN_STAKE;
    use gradnet_types::certificate::{Answer, Seed, CERTIFICATE_VERSION};
    use gradnet_types::receipt::{ReceiptBody, RuntimeId, RECEIPT_VERSION};
    use gradnet_types::{ContentId, NodeKey, DETERMINISTIC_PROFILE};

    const CHAIN: u64 = 7;
    const SEED: B256 = B256::repeat_byte(9);

    struct Net {
        keys: Vec<NodeKey>,
        nodes: Vec<NodeRecord>,
    }

    fn net() -> Net {
        let keys: Vec<NodeKey> = (0..5).map(|_| NodeKey::generate()).collect();
        let nodes = keys
            .iter()
            .enumerate()
            .map(|(i, k)| NodeRecord {
                operator: Address::with_last_byte(i as u8 + 1),
                signing_key: B256::from_slice(&hex::decode(k.public_hex()).unwrap()),
                modes: 0xff,
                stake: MIN_STAKE * alloy_primitives::U256::from(i + 1),
                profile: DETERMINISTIC_PROFILE.into(),
                ..Default::default()
            })
            .collect();
        Net { keys, nodes }
    }

    /// A certificate of the first three sampled nodes; `wrong` answers differently.
    fn certificate(net: &Net, wrong: usize) -> Certificate {
        let request = ContentId::of(b"request");
        let model = ContentId::of(b"model");
        let view = RegistryView {
            chain_id: CHAIN,
            parent_hash: SEED,
            block: 11,
            nodes: net.nodes.clone(),
            tee_keys: vec![],
        };
        let ranked = view.ranked(
            &sampling_key(&model),
            InferenceMode::Quorum,
            &model.to_string(),
        );
        let asked: Vec<Address> = ranked[..3].iter().map(|n| n.operator).collect();
        let answers = asked
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let k = &net.keys[net.nodes.iter().position(|n| n.operator == *op).unwrap()];
                let out: &[u8] = if i == wrong { b"forged" } else { b"right" };
                Answer {
                    operator: *op,
                    receipt: ReceiptBody {
                        version: RECEIPT_VERSION,
                        kind: "onnx".into(),
                        request_hash: request,
                        model,
                        output_hash: ContentId::of(out),
                        mode: InferenceMode::Vanilla,
                        runtime: RuntimeId {
                            name: "gradnet-onnx".into(),
                            version: "1".into(),
                            profile: DETERMINISTIC_PROFILE.into(),
                        },
                        node: k.public_hex(),
                        timestamp_ms: 1,
                        charge: None,
                    }
                    .sign(k),
                }
            })
            .collect();
        Certificate {
            version: CERTIFICATE_VERSION,
            mode: InferenceMode::Quorum,
            chain_id: CHAIN,
            seed: Seed {
                block: 10,
                hash: SEED,
            },
            quorum: 3,
            asked,
            answers,
            enclave: None,
            zk: None,
        }
    }

    fn run(c: &Certificate, net: &Net, block: u64) -> Result<Convicted, String> {
        check(
            &serde_json::to_vec(c).unwrap(),
            CHAIN,
            block,
            |b| if b == 10 { SEED } else { B256::ZERO },
            net.nodes.clone(),
            |_, _| Ok(false),
        )
        .map(|(_, c)| c)
    }

    #[test]
    fn a_dissent_among_the_sampled_nodes_convicts_its_node() {
        let net = net();
        let c = certificate(&net, 1);
        let got = run(&c, &net, 12).unwrap();
        assert_eq!(got.nodes, vec![c.asked[1]]);
        assert_eq!(got.request_hash, B256::from(ContentId::of(b"request").0));
    }

    #[test]
    fn reports_that_do_not_hold_are_refused_with_the_reason() {
        let net = net();
        let no = |c: &Certificate, block: u64, want: &str| {
            let e = run(c, &net, block).unwrap_err();
            assert!(e.contains(want), "{e} does not say {want}");
        };
        no(
            &certificate(&net, 9),
            12,
            "every answer in the certificate agrees",
        );
        no(&certificate(&net, 1), 10, "not among the 256");
        no(
            &certificate(&net, 1),
            10 + MAX_SEED_AGE + 1,
            "not among the 256",
        );
        let mut c = certificate(&net, 1);
        c.seed.hash = B256::repeat_byte(1);
        no(&c, 12, "the certificate says");
        // nodes the sampling did not pick (the order swapped)
        let mut c = certificate(&net, 1);
        c.asked.swap(0, 2);
        no(&c, 12, "not the registry's sampling");
        // a receipt signed by a key other than the operator's
        let mut c = certificate(&net, 1);
        let stranger = NodeKey::generate();
        let mut body = c.answers[1].receipt.body.clone();
        body.node = stranger.public_hex();
        c.answers[1].receipt = body.sign(&stranger);
        no(&c, 12, "not signed with the key");
        let mut c = certificate(&net, 1);
        c.chain_id = 8;
        no(&c, 12, "for chain 8");
        let c = certificate(&net, 1);
        let e = check(
            &serde_json::to_vec(&c).unwrap(),
            CHAIN,
            12,
            |_| SEED,
            net.nodes.clone(),
            |op, _| Ok(*op == c.asked[1]),
        )
        .unwrap_err();
        assert!(e.contains("reported already"), "{e}");
        assert!(check(b"{", CHAIN, 12, |_| SEED, vec![], |_, _| Ok(false))
            .unwrap_err()
            .contains("malformed certificate"));
    }
}
