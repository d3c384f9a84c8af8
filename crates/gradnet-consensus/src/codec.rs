//! Wire and WAL encodings of consensus, liveness, streaming and sync
//! messages: RLP (as for blocks), with a tag byte where a message is one of
//! several kinds. Decoding never panics and refuses trailing bytes.

use alloy_primitives::{Address, B256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use bytes::Bytes;
use malachitebft_app_channel::app::consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_app_channel::app::engine::util::streaming::{
    StreamContent, StreamId, StreamMessage,
};
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, PolkaCertificate, PolkaSignature, RoundCertificate,
    RoundCertificateType, RoundSignature, SignedMessage, Validity,
};
use malachitebft_app_channel::app::types::PeerId;
use malachitebft_sync::{RawDecidedValue, Request, Response, Status, ValueRequest, ValueResponse};

use super::context::{
    decode_exact, decode_part, encode_part, proposal_body, proposal_from_body, round_code,
    round_from_code, value_bytes, value_from, vote_body, vote_from_body, vote_type_code,
    vote_type_from, BlockId, Ctx, Height, ProposalPart, Signature, ValidatorId, Vote,
};

/// A consensus message that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("undecodable consensus message: {0}")]
pub struct CodecError(pub String);

fn err(what: &str) -> CodecError {
    CodecError(what.to_string())
}

/// The codec for the network and the WAL.
#[derive(Clone, Copy, Debug, Default)]
pub struct WireCodec;

fn rlp_decode<T: Decodable>(b: &[u8]) -> Result<T, CodecError> {
    decode_exact(b).map_err(CodecError)
}

fn tagged(tag: u8, body: impl Encodable) -> Bytes {
    let mut out = vec![tag];
    body.encode(&mut out);
    out.into()
}

fn sig(b: &[u8]) -> Result<Signature, CodecError> {
    Ok(Signature::from_bytes(
        b.try_into().map_err(|_| err("signature is not 64 bytes"))?,
    ))
}

fn sig_bytes(s: &Signature) -> Bytes {
    Bytes::copy_from_slice(&s.to_bytes())
}

fn round(c: u64) -> Result<malachitebft_app_channel::app::types::core::Round, CodecError> {
    round_from_code(c).ok_or_else(|| err("round out of range"))
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawSigned {
    body: Bytes,
    signature: Bytes,
    /// The vote extension and its signature, or both empty.
    extension: Bytes,
    extension_signature: Bytes,
}

fn raw_vote(v: &SignedMessage<Ctx, Vote>) -> RawSigned {
    let (extension, extension_signature) = match &v.message.extension {
        Some(e) => (e.message.clone(), sig_bytes(&e.signature)),
        None => (Bytes::new(), Bytes::new()),
    };
    RawSigned {
        body: vote_body(&v.message).into(),
        signature: sig_bytes(&v.signature),
        extension,
        extension_signature,
    }
}

fn vote_of(r: RawSigned) -> Result<SignedMessage<Ctx, Vote>, CodecError> {
    let mut v = vote_from_body(&r.body).ok_or_else(|| err("bad vote"))?;
    if !r.extension_signature.is_empty() {
        v.extension = Some(SignedMessage::new(
            r.extension,
            sig(&r.extension_signature)?,
        ));
    }
    Ok(SignedMessage::new(v, sig(&r.signature)?))
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawAddressSig {
    address: Address,
    signature: Bytes,
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawCertificate {
    height: u64,
    round: u64,
    value: B256,
    signatures: Vec<RawAddressSig>,
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawRoundSig {
    vote_type: u8,
    value: Bytes,
    address: Address,
    signature: Bytes,
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawRoundCertificate {
    height: u64,
    round: u64,
    cert_type: u8,
    signatures: Vec<RawRoundSig>,
}

fn raw_commit(c: &CommitCertificate<Ctx>) -> RawCertificate {
    RawCertificate {
        height: c.height.0,
        round: round_code(c.round),
        value: c.value_id.0,
        signatures: c
            .commit_signatures
            .iter()
            .map(|s| RawAddressSig {
                address: s.address.0,
                signature: sig_bytes(&s.signature),
            })
            .collect(),
    }
}

fn commit_of(r: RawCertificate) -> Result<CommitCertificate<Ctx>, CodecError> {
    Ok(CommitCertificate {
        height: Height(r.height),
        round: round(r.round)?,
        value_id: BlockId(r.value),
        commit_signatures: r
            .signatures
            .into_iter()
            .map(|s| {
                Ok(CommitSignature {
                    address: ValidatorId(s.address),
                    signature: sig(&s.signature)?,
                })
            })
            .collect::<Result<_, CodecError>>()?,
    })
}

/// A commit certificate as the store keeps it next to its block.
pub fn encode_certificate(c: &CommitCertificate<Ctx>) -> Vec<u8> {
    alloy_rlp::encode(raw_commit(c))
}

/// A commit certificate as the store keeps it ([`encode_certificate`]).
pub fn decode_certificate(b: &[u8]) -> Result<CommitCertificate<Ctx>, CodecError> {
    commit_of(rlp_decode(b)?)
}

impl Codec<ProposalPart> for WireCodec {
    type Error = CodecError;
    fn decode(&self, b: Bytes) -> Result<ProposalPart, CodecError> {
        decode_part(&b).ok_or_else(|| err("bad proposal part"))
    }
    fn encode(&self, p: &ProposalPart) -> Result<Bytes, CodecError> {
        Ok(encode_part(p).into())
    }
}

impl Codec<SignedConsensusMsg<Ctx>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, b: Bytes) -> Result<SignedConsensusMsg<Ctx>, CodecError> {
        let (&tag, rest) = b.split_first().ok_or_else(|| err("empty"))?;
        match tag {
            1 => Ok(SignedConsensusMsg::Vote(vote_of(rlp_decode(rest)?)?)),
            2 => {
                let r: RawSigned = rlp_decode(rest)?;
                let p = proposal_from_body(&r.body).ok_or_else(|| err("bad proposal"))?;
                Ok(SignedConsensusMsg::Proposal(SignedMessage::new(
                    p,
                    sig(&r.signature)?,
                )))
            }
            _ => Err(err("unknown consensus message kind")),
        }
    }
    fn encode(&self, m: &SignedConsensusMsg<Ctx>) -> Result<Bytes, CodecError> {
        Ok(match m {
            SignedConsensusMsg::Vote(v) => tagged(1, raw_vote(v)),
            SignedConsensusMsg::Proposal(p) => tagged(
                2,
                RawSigned {
                    body: proposal_body(&p.message).into(),
                    signature: sig_bytes(&p.signature),
                    extension: Bytes::new(),
                    extension_signature: Bytes::new(),
                },
            ),
        })
    }
}

impl Codec<LivenessMsg<Ctx>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, b: Bytes) -> Result<LivenessMsg<Ctx>, CodecError> {
        let (&tag, rest) = b.split_first().ok_or_else(|| err("empty"))?;
        match tag {
            1 => Ok(LivenessMsg::Vote(vote_of(rlp_decode(rest)?)?)),
            2 => {
                let r: RawCertificate = rlp_decode(rest)?;
                Ok(LivenessMsg::PolkaCertificate(PolkaCertificate {
                    height: Height(r.height),
                    round: round(r.round)?,
                    value_id: BlockId(r.value),
                    polka_signatures: r
                        .signatures
                        .into_iter()
                        .map(|s| {
                            Ok(PolkaSignature {
                                address: ValidatorId(s.address),
                                signature: sig(&s.signature)?,
                            })
                        })
                        .collect::<Result<_, CodecError>>()?,
                }))
            }
            3 => {
                let r: RawRoundCertificate = rlp_decode(rest)?;
                Ok(LivenessMsg::SkipRoundCertificate(RoundCertificate {
                    height: Height(r.height),
                    round: round(r.round)?,
                    cert_type: match r.cert_type {
                        1 => RoundCertificateType::Skip,
                        2 => RoundCertificateType::Precommit,
                        _ => return Err(err("unknown round certificate type")),
                    },
                    round_signatures: r
                        .signatures
                        .into_iter()
                        .map(|s| {
                            Ok(RoundSignature {
                                vote_type: vote_type_from(s.vote_type)
                                    .ok_or_else(|| err("unknown vote type"))?,
                                value_id: value_from(&s.value)
                                    .ok_or_else(|| err("value id is not 32 bytes"))?,
                                address: ValidatorId(s.address),
                                signature: sig(&s.signature)?,
                            })
                        })
                        .collect::<Result<_, CodecError>>()?,
                }))
            }
            _ => Err(err("unknown liveness message kind")),
        }
    }
    fn encode(&self, m: &LivenessMsg<Ctx>) -> Result<Bytes, CodecError> {
        Ok(match m {
            LivenessMsg::Vote(v) => tagged(1, raw_vote(v)),
            LivenessMsg::PolkaCertificate(c) => tagged(
                2,
                RawCertificate {
                    height: c.height.0,
                    round: round_code(c.round),
                    value: c.value_id.0,
                    signatures: c
                        .polka_signatures
                        .iter()
                        .map(|s| RawAddressSig {
                            address: s.address.0,
                            signature: sig_bytes(&s.signature),
                        })
                        .collect(),
                },
            ),
            LivenessMsg::SkipRoundCertificate(c) => tagged(
                3,
                RawRoundCertificate {
                    height: c.height.0,
                    round: round_code(c.round),
                    cert_type: match c.cert_type {
                        RoundCertificateType::Skip => 1,
                        RoundCertificateType::Precommit => 2,
                    },
                    signatures: c
                        .round_signatures
                        .iter()
                        .map(|s| RawRoundSig {
                            vote_type: vote_type_code(s.vote_type),
                            value: value_bytes(&s.value_id),
                            address: s.address.0,
                            signature: sig_bytes(&s.signature),
                        })
                        .collect(),
                },
            ),
        })
    }
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawStream {
    id: Bytes,
    sequence: u64,
    /// 0: a part follows; 1: end of stream.
    fin: u8,
    part: Bytes,
}

impl Codec<StreamMessage<ProposalPart>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, b: Bytes) -> Result<StreamMessage<ProposalPart>, CodecError> {
        let r: RawStream = rlp_decode(&b)?;
        let content = match r.fin {
            0 => StreamContent::Data(decode_part(&r.part).ok_or_else(|| err("bad proposal part"))?),
            1 => StreamContent::Fin,
            _ => return Err(err("bad stream content")),
        };
        Ok(StreamMessage::new(StreamId::new(r.id), r.sequence, content))
    }
    fn encode(&self, m: &StreamMessage<ProposalPart>) -> Result<Bytes, CodecError> {
        let (fin, part) = match &m.content {
            StreamContent::Data(p) => (0, encode_part(p).into()),
            StreamContent::Fin => (1, Bytes::new()),
        };
        Ok(alloy_rlp::encode(RawStream {
            id: m.stream_id.to_bytes(),
            sequence: m.sequence,
            fin,
            part,
        })
        .into())
    }
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawStatus {
    peer: Bytes,
    tip: u64,
    min: u64,
}

impl Codec<Status<Ctx>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, b: Bytes) -> Result<Status<Ctx>, CodecError> {
        let r: RawStatus = rlp_decode(&b)?;
        Ok(Status {
            peer_id: PeerId::from_bytes(&r.peer).map_err(|e| CodecError(e.to_string()))?,
            tip_height: Height(r.tip),
            history_min_height: Height(r.min),
        })
    }
    fn encode(&self, s: &Status<Ctx>) -> Result<Bytes, CodecError> {
        Ok(alloy_rlp::encode(RawStatus {
            peer: s.peer_id.to_bytes().into(),
            tip: s.tip_height.0,
            min: s.history_min_height.0,
        })
        .into())
    }
}

impl Codec<Request<Ctx>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, b: Bytes) -> Result<Request<Ctx>, CodecError> {
        Ok(Request::ValueRequest(ValueRequest::new(Height(
            rlp_decode(&b)?,
        ))))
    }
    fn encode(&self, r: &Request<Ctx>) -> Result<Bytes, CodecError> {
        let Request::ValueRequest(v) = r;
        Ok(alloy_rlp::encode(v.height.0).into())
    }
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawDecided {
    value: Bytes,
    certificate: RawCertificate,
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawValueResponse {
    height: u64,
    /// None or one decided value.
    value: Vec<RawDecided>,
}

impl Codec<Response<Ctx>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, b: Bytes) -> Result<Response<Ctx>, CodecError> {
        let r: RawValueResponse = rlp_decode(&b)?;
        if r.value.len() > 1 {
            return Err(err("more than one value in a response"));
        }
        let value = match r.value.into_iter().next() {
            Some(d) => Some(RawDecidedValue::new(d.value, commit_of(d.certificate)?)),
            None => None,
        };
        Ok(Response::ValueResponse(ValueResponse::new(
            Height(r.height),
            value,
        )))
    }
    fn encode(&self, r: &Response<Ctx>) -> Result<Bytes, CodecError> {
        let Response::ValueResponse(v) = r;
        Ok(alloy_rlp::encode(RawValueResponse {
            height: v.height.0,
            value: v
                .value
                .iter()
                .map(|d| RawDecided {
                    value: d.value_bytes.clone(),
                    certificate: raw_commit(&d.certificate),
                })
                .collect(),
        })
        .into())
    }
}

#[derive(RlpEncodable, RlpDecodable)]
struct RawProposed {
    height: u64,
    round: u64,
    valid_round: u64,
    proposer: Address,
    value: B256,
    valid: bool,
}

impl Codec<ProposedValue<Ctx>> for WireCodec {
    type Error = CodecError;
    fn decode(&self, b: Bytes) -> Result<ProposedValue<Ctx>, CodecError> {
        let r: RawProposed = rlp_decode(&b)?;
        Ok(ProposedValue {
            height: Height(r.height),
            round: round(r.round)?,
            valid_round: round(r.valid_round)?,
            proposer: ValidatorId(r.proposer),
            value: BlockId(r.value),
            validity: Validity::from_bool(r.valid),
        })
    }
    fn encode(&self, p: &ProposedValue<Ctx>) -> Result<Bytes, CodecError> {
        Ok(alloy_rlp::encode(RawProposed {
            height: p.height.0,
            round: round_code(p.round),
            valid_round: round_code(p.valid_round),
            proposer: p.proposer.0,
            value: p.value.0,
            valid: p.validity.to_bool(),
        })
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{PrivateKey, Proposal, Signer};
    use malachitebft_app_channel::app::types::core::{NilOrVal, Round, SigningProvider, VoteType};

    fn signer() -> Signer {
        Signer::new(PrivateKey::from([3u8; 32]), B256::repeat_byte(9))
    }

    fn roundtrip<T: PartialEq + std::fmt::Debug>(m: T) -> T
    where
        WireCodec: Codec<T>,
    {
        let b = WireCodec.encode(&m).unwrap();
        let back = WireCodec.decode(b.clone()).unwrap();
        assert_eq!(back, m);
        // any cut-off message is refused, never half-read
        for n in 0..b.len() {
            assert!(
                WireCodec.decode(b.slice(..n)).is_err(),
                "prefix {n} of {} decoded",
                b.len()
            );
        }
        back
    }

    #[test]
    fn every_message_roundtrips_and_truncations_are_refused() {
        let s = signer();
        let me = ValidatorId::of(&s.public_key());
        let block = BlockId(B256::repeat_byte(7));
        let vote = s.sign_vote(Vote {
            typ: VoteType::Precommit,
            height: Height(5),
            round: Round::new(2),
            value: NilOrVal::Val(block),
            validator: me,
            extension: None,
        });
        roundtrip(SignedConsensusMsg::<Ctx>::Vote(vote.clone()));
        let nil_vote = s.sign_vote(Vote {
            value: NilOrVal::Nil,
            typ: VoteType::Prevote,
            ..vote.message.clone()
        });
        roundtrip(SignedConsensusMsg::<Ctx>::Vote(nil_vote.clone()));
        let proposal = s.sign_proposal(Proposal {
            height: Height(5),
            round: Round::new(0),
            value: block,
            pol_round: Round::Nil,
            proposer: me,
        });
        roundtrip(SignedConsensusMsg::<Ctx>::Proposal(proposal));
        roundtrip(LivenessMsg::<Ctx>::Vote(vote.clone()));
        roundtrip(LivenessMsg::<Ctx>::PolkaCertificate(PolkaCertificate {
            height: Height(5),
            round: Round::new(1),
            value_id: block,
            polka_signatures: vec![PolkaSignature {
                address: me,
                signature: vote.signature,
            }],
        }));
        roundtrip(LivenessMsg::<Ctx>::SkipRoundCertificate(RoundCertificate {
            height: Height(5),
            round: Round::new(3),
            cert_type: RoundCertificateType::Skip,
            round_signatures: vec![RoundSignature {
                vote_type: VoteType::Prevote,
                value_id: NilOrVal::Nil,
                address: me,
                signature: nil_vote.signature,
            }],
        }));
        for p in crate::parts::split(&s, Height(5), Round::new(0), Round::Nil, me, b"block bytes") {
            // a bare part carries its chunk to the end; its stream message is framed
            if let Some(part) = p.content.as_data() {
                let b = WireCodec.encode(part).unwrap();
                assert_eq!(&Codec::<ProposalPart>::decode(&WireCodec, b).unwrap(), part);
            }
            roundtrip(p);
        }
        let cert = CommitCertificate {
            height: Height(5),
            round: Round::new(0),
            value_id: block,
            commit_signatures: vec![CommitSignature {
                address: me,
                signature: vote.signature,
            }],
        };
        assert_eq!(
            decode_certificate(&encode_certificate(&cert)).unwrap(),
            cert
        );
        let peer = crate::parts::test_peer();
        roundtrip(Status::<Ctx> {
            peer_id: peer,
            tip_height: Height(9),
            history_min_height: Height(1),
        });
        roundtrip(Request::<Ctx>::ValueRequest(ValueRequest::new(Height(4))));
        roundtrip(Response::<Ctx>::ValueResponse(ValueResponse::new(
            Height(4),
            None,
        )));
        roundtrip(Response::<Ctx>::ValueResponse(ValueResponse::new(
            Height(5),
            Some(RawDecidedValue::new(Bytes::from_static(b"block"), cert)),
        )));
        roundtrip(ProposedValue::<Ctx> {
            height: Height(5),
            round: Round::new(1),
            valid_round: Round::new(0),
            proposer: me,
            value: block,
            validity: Validity::Invalid,
        });
    }

    #[test]
    fn garbage_is_refused_and_signatures_bind_the_network() {
        for junk in [&b""[..], b"\x00", b"\x07abc", &[0xff; 40]] {
            let b = Bytes::copy_from_slice(junk);
            assert!(Codec::<SignedConsensusMsg<Ctx>>::decode(&WireCodec, b.clone()).is_err());
            assert!(Codec::<LivenessMsg<Ctx>>::decode(&WireCodec, b.clone()).is_err());
            assert!(Codec::<Status<Ctx>>::decode(&WireCodec, b.clone()).is_err());
            assert!(Codec::<ProposedValue<Ctx>>::decode(&WireCodec, b).is_err());
        }
        // a vote signed for one genesis does not verify under another
        let a = signer();
        let b = Signer::new(PrivateKey::from([3u8; 32]), B256::repeat_byte(10));
        let v = a.sign_vote(Vote {
            typ: VoteType::Prevote,
            height: Height(1),
            round: Round::new(0),
            value: NilOrVal::Nil,
            validator: ValidatorId::of(&a.public_key()),
            extension: None,
        });
        assert!(a.verify_signed_vote(&v.message, &v.signature, &a.public_key()));
        assert!(!b.verify_signed_vote(&v.message, &v.signature, &a.public_key()));
    }

    proptest::proptest! {
        /// Whatever a peer sends, every decoder answers a value or an
        /// error, never a panic.
        #[test]
        fn arbitrary_peer_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let b = Bytes::from(bytes.clone());
            let _ = Codec::<ProposalPart>::decode(&WireCodec, b.clone());
            let _ = Codec::<SignedConsensusMsg<Ctx>>::decode(&WireCodec, b.clone());
            let _ = Codec::<LivenessMsg<Ctx>>::decode(&WireCodec, b.clone());
            let _ = Codec::<StreamMessage<ProposalPart>>::decode(&WireCodec, b.clone());
            let _ = Codec::<Status<Ctx>>::decode(&WireCodec, b.clone());
            let _ = Codec::<Request<Ctx>>::decode(&WireCodec, b.clone());
            let _ = Codec::<Response<Ctx>>::decode(&WireCodec, b.clone());
            let _ = Codec::<ProposedValue<Ctx>>::decode(&WireCodec, b);
            let _ = decode_certificate(&bytes);
        }
    }
}
