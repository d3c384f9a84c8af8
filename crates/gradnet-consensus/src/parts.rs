//! A proposal as a stream of parts: `Init` (height, round, POL round,
//! proposer), the RLP-encoded block in chunks, and `Fin` with the
//! proposer's signature over the stream's contents. Receivers reassemble
//! streams per (peer, stream id), in sequence order, whatever order the
//! network delivers them in.

use std::collections::BTreeMap;

use alloy_primitives::{keccak256, B256};
use bytes::Bytes;
use malachitebft_app_channel::app::engine::util::streaming::{
    StreamContent, StreamId, StreamMessage,
};
use malachitebft_app_channel::app::types::core::Round;
use malachitebft_app_channel::app::types::PeerId;

use super::context::{
    round_code, Height, ProposalPart, Signature, Signer, ValidatorId, TAG_STREAM,
};

/// Chunks are well under gossipsub's message limit.
pub const CHUNK: usize = 128 * 1024;
/// A stream with more parts than this is refused (a 30M-gas block of
/// calldata is ~7.5 MB: 60 chunks).
const MAX_PARTS: u64 = 256;
/// Streams one peer may have open at once (the current height's rounds and
/// the next height's): a peer that opens more loses its oldest, so what it
/// sends is bounded by this × `MAX_PARTS` × `CHUNK`.
const MAX_OPEN_PER_PEER: usize = 8;

/// What the proposer signs for a stream: its header fields and the hash of
/// the block bytes.
pub fn stream_body(
    height: Height,
    round: Round,
    pol_round: Round,
    proposer: &ValidatorId,
    block_hash: &B256,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(80);
    b.extend_from_slice(&height.0.to_be_bytes());
    b.extend_from_slice(&round_code(round).to_be_bytes());
    b.extend_from_slice(&round_code(pol_round).to_be_bytes());
    b.extend_from_slice(proposer.0.as_slice());
    b.extend_from_slice(block_hash.as_slice());
    b
}

/// The id of the proposal stream for `height` and `round`.
pub fn stream_id(height: Height, round: Round) -> StreamId {
    let mut b = height.0.to_be_bytes().to_vec();
    b.extend_from_slice(&round_code(round).to_be_bytes());
    StreamId::new(b.into())
}

/// Splits an encoded block into a signed stream of parts.
pub fn split(
    signer: &Signer,
    height: Height,
    round: Round,
    pol_round: Round,
    proposer: ValidatorId,
    block: &[u8],
) -> Vec<StreamMessage<ProposalPart>> {
    let id = stream_id(height, round);
    let mut parts = vec![ProposalPart::Init {
        height,
        round,
        pol_round,
        proposer,
    }];
    for c in block.chunks(CHUNK) {
        parts.push(ProposalPart::Data(Bytes::copy_from_slice(c)));
    }
    let body = stream_body(height, round, pol_round, &proposer, &keccak256(block));
    parts.push(ProposalPart::Fin(signer.sign(TAG_STREAM, &body)));
    let n = parts.len() as u64;
    let mut out: Vec<_> = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| StreamMessage::new(id.clone(), i as u64, StreamContent::Data(p)))
        .collect();
    out.push(StreamMessage::new(id, n, StreamContent::Fin));
    out
}

/// A complete stream: who says they proposed what, and their signature.
/// A whole proposal, put together from its parts.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The height proposed for.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// The round of the proof of lock, if any.
    pub pol_round: Round,
    /// Who proposed.
    pub proposer: ValidatorId,
    /// The encoded block.
    pub block: Vec<u8>,
    /// The proposer's signature over the stream.
    pub signature: Signature,
}

impl Assembled {
    /// What the proposer's `Fin` signature covers.
    pub fn signed_body(&self) -> Vec<u8> {
        stream_body(
            self.height,
            self.round,
            self.pol_round,
            &self.proposer,
            &keccak256(&self.block),
        )
    }
}

/// A fresh peer id, for tests.
#[cfg(test)]
pub(crate) fn test_peer() -> PeerId {
    let kp = malachitebft_app_channel::app::types::Keypair::generate_ed25519();
    PeerId::from_bytes(&kp.public().to_peer_id().to_bytes()).unwrap()
}

#[derive(Default)]
struct Stream {
    parts: BTreeMap<u64, ProposalPart>,
    /// Sequence number of the stream's end marker, once seen.
    end: Option<u64>,
    height: u64,
}

/// Streams being received.
#[derive(Default)]
pub struct Streams {
    open: BTreeMap<(PeerId, StreamId), Stream>,
}

impl Streams {
    /// Adds one message; returns the proposal when its stream is complete.
    /// A malformed stream is dropped with the reason.
    pub fn insert(
        &mut self,
        from: PeerId,
        msg: StreamMessage<ProposalPart>,
    ) -> Result<Option<Assembled>, String> {
        if msg.sequence > MAX_PARTS {
            self.open.remove(&(from, msg.stream_id));
            return Err(format!("proposal stream longer than {MAX_PARTS} parts"));
        }
        if let StreamContent::Data(ProposalPart::Data(d)) = &msg.content {
            if d.len() > CHUNK {
                self.open.remove(&(from, msg.stream_id));
                return Err(format!(
                    "proposal part of {} bytes; at most {CHUNK}",
                    d.len()
                ));
            }
        }
        let key = (from, msg.stream_id.clone());
        if !self.open.contains_key(&key) {
            let mine: Vec<_> = self
                .open
                .keys()
                .filter(|(p, _)| *p == from)
                .cloned()
                .collect();
            if mine.len() >= MAX_OPEN_PER_PEER {
                let oldest = mine
                    .into_iter()
                    .min_by_key(|k| self.open[k].height)
                    .expect("non-empty");
                self.open.remove(&oldest);
            }
        }
        let s = self.open.entry(key.clone()).or_default();
        match msg.content {
            StreamContent::Fin => s.end = Some(msg.sequence),
            StreamContent::Data(p) => {
                if let ProposalPart::Init { height, .. } = &p {
                    s.height = height.0;
                }
                s.parts.insert(msg.sequence, p);
            }
        }
        let Some(end) = s.end else { return Ok(None) };
        if (s.parts.len() as u64) < end {
            return Ok(None);
        }
        let s = self.open.remove(&key).expect("present");
        assemble(s, end).map(Some)
    }

    /// Forgets streams for heights below `height`.
    pub fn prune(&mut self, height: Height) {
        self.open
            .retain(|_, s| s.height == 0 || s.height >= height.0);
    }
}

fn assemble(s: Stream, end: u64) -> Result<Assembled, String> {
    let mut it = s.parts.into_iter();
    let (init, fin) = match (it.next(), it.next_back()) {
        (Some((0, i @ ProposalPart::Init { .. })), Some((n, ProposalPart::Fin(f))))
            if n + 1 == end =>
        {
            (i, f)
        }
        _ => return Err("proposal stream without Init first and Fin last".into()),
    };
    let mut block = Vec::new();
    for (_, p) in it {
        match p {
            ProposalPart::Data(d) => block.extend_from_slice(&d),
            _ => return Err("proposal stream with Init or Fin in the middle".into()),
        }
    }
    let ProposalPart::Init {
        height,
        round,
        pol_round,
        proposer,
    } = init
    else {
        unreachable!()
    };
    Ok(Assembled {
        height,
        round,
        pol_round,
        proposer,
        block,
        signature: fin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::PrivateKey;

    #[test]
    fn streams_reassemble_out_of_order_and_refuse_gaps() {
        let signer = Signer::new(PrivateKey::from([7u8; 32]), B256::ZERO);
        let me = ValidatorId::of(&signer.public_key());
        let block: Vec<u8> = (0..(CHUNK * 2 + 5)).map(|i| i as u8).collect();
        let mut msgs = split(&signer, Height(3), Round::new(1), Round::Nil, me, &block);
        assert_eq!(msgs.len(), 1 + 3 + 1 + 1);
        msgs.reverse();
        let peer = test_peer();
        let mut streams = Streams::default();
        let mut done = None;
        for m in msgs.clone() {
            if let Some(a) = streams.insert(peer, m).unwrap() {
                done = Some(a);
            }
        }
        let a = done.expect("complete");
        assert_eq!(a.block, block);
        assert_eq!(
            (a.height, a.round, a.proposer),
            (Height(3), Round::new(1), me)
        );
        assert!(signer.verify(
            TAG_STREAM,
            &a.signed_body(),
            &a.signature,
            &signer.public_key()
        ));

        // a peer opening stream after stream keeps only the last few
        let mut streams = Streams::default();
        for h in 0..100u64 {
            let m = split(
                &signer,
                Height(h),
                Round::new(0),
                Round::Nil,
                me,
                &[1, 2, 3],
            );
            streams.insert(peer, m[0].clone()).unwrap();
        }
        assert_eq!(streams.open.len(), MAX_OPEN_PER_PEER);
        // an oversized part is refused
        let mut big = split(&signer, Height(1), Round::new(0), Round::Nil, me, &[0; 4]);
        big[1].content = StreamContent::Data(ProposalPart::Data(vec![0; CHUNK + 1].into()));
        assert!(streams.insert(peer, big[1].clone()).is_err());

        // a stream missing a chunk never completes
        let mut streams = Streams::default();
        for (i, m) in msgs.into_iter().enumerate() {
            if i != 2 {
                assert!(streams.insert(peer, m).unwrap().is_none());
            }
        }
    }
}
