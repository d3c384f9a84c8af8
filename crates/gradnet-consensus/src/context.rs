//! gradnet's types for Malachite: a height is a block number, a value is a
//! block hash (the block itself travels as proposal parts), validators are
//! ed25519 keys with voting power from the genesis, addressed by the last
//! 20 bytes of keccak(public key), the address blocks name their proposer by.
//!
//! Everything a validator signs starts with a domain tag and the genesis
//! hash, so a vote can never be replayed on another network.

use std::fmt;

use alloy_primitives::{keccak256, Address, B256};
use alloy_rlp::{Encodable, RlpDecodable, RlpEncodable};
use bytes::Bytes;
use malachitebft_app_channel::app::types::core::{
    self as mc, NilOrVal, Round, SignedExtension, SignedProposal, SignedProposalPart, SignedVote,
    VoteType,
};
pub use malachitebft_signing_ed25519::{Ed25519, PrivateKey, PublicKey, Signature};

use gradnet_ledger::genesis::Genesis;

/// A block height.
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);
    fn increment_by(&self, n: u64) -> Self {
        Height(self.0 + n)
    }
    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }
    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: keccak256(ed25519 public key)[12..].
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValidatorId(pub Address);

impl ValidatorId {
    /// The id of a consensus key.
    pub fn of(key: &PublicKey) -> Self {
        ValidatorId(address_of_key(key.as_bytes()))
    }
}

/// The address of a validator's ed25519 public key: keccak256(key)[12..]
/// (what block headers name their proposer by).
pub fn address_of_key(key: &[u8]) -> Address {
    Address::from_slice(&keccak256(key)[12..])
}

impl fmt::Display for ValidatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ValidatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Address for ValidatorId {}

/// The value consensus decides on: the hash of a block.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub B256);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Value for BlockId {
    type Id = BlockId;
    fn id(&self) -> BlockId {
        *self
    }
}

/// A validator with its voting power.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Its id (an address derived from its key).
    pub address: ValidatorId,
    /// Its consensus key.
    pub public_key: PublicKey,
    /// Its voting power.
    pub power: u64,
    /// Where the priority fees of the blocks it proposes go.
    pub fee_recipient: Address,
}

impl mc::Validator<Ctx> for Validator {
    fn address(&self) -> &ValidatorId {
        &self.address
    }
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// The validators in genesis order (every node derives the same order).
/// The validators of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    /// In the genesis's order.
    pub validators: Vec<Validator>,
}

impl ValidatorSet {
    /// The genesis's validators.
    pub fn from_genesis(g: &Genesis) -> Result<Self, String> {
        let mut validators = Vec::with_capacity(g.validators.len());
        for v in &g.validators {
            let key = hex::decode(&v.public_key)
                .ok()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .and_then(|k| ed25519_consensus::VerificationKey::try_from(k).ok())
                .ok_or_else(|| {
                    format!(
                        "validator key `{}` is not an ed25519 public key",
                        v.public_key
                    )
                })?;
            let public_key = PublicKey::new(key);
            validators.push(Validator {
                address: ValidatorId::of(&public_key),
                public_key,
                power: v.power,
                fee_recipient: v.fee_recipient,
            });
        }
        Ok(ValidatorSet { validators })
    }
}

impl mc::ValidatorSet<Ctx> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.validators.iter().map(|v| v.power).sum()
    }
    fn get_by_address(&self, address: &ValidatorId) -> Option<&Validator> {
        self.validators.iter().find(|v| &v.address == address)
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// Round numbers on the wire and in signed bytes: nil is 0, round r is r + 1.
pub fn round_code(r: Round) -> u64 {
    r.as_u32().map_or(0, |r| r as u64 + 1)
}

/// The round a [`round_code`] names.
pub fn round_from_code(c: u64) -> Option<Round> {
    match c {
        0 => Some(Round::Nil),
        c => u32::try_from(c - 1).ok().map(Round::new),
    }
}

/// A signed proposal of a block for a height and round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The height proposed for.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// The proposed block.
    pub value: BlockId,
    /// The round of the proof of lock, if any.
    pub pol_round: Round,
    /// Who proposes.
    pub proposer: ValidatorId,
}

impl mc::Proposal<Ctx> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockId {
        &self.value
    }
    fn take_value(self) -> BlockId {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &ValidatorId {
        &self.proposer
    }
}

/// A prevote or precommit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vote {
    /// Prevote or precommit.
    pub typ: VoteType,
    /// The height voted at.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// A block, or nil.
    pub value: NilOrVal<BlockId>,
    /// Who votes.
    pub validator: ValidatorId,
    /// A vote extension (unused by gradnet).
    pub extension: Option<SignedExtension<Ctx>>,
}

impl mc::Vote<Ctx> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.typ
    }
    fn validator_address(&self) -> &ValidatorId {
        &self.validator
    }
    fn extension(&self) -> Option<&SignedExtension<Ctx>> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension<Ctx>> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension<Ctx>) -> Self {
        Vote {
            extension: Some(extension),
            ..self
        }
    }
}

/// A proposal travels as `Init`, the RLP block in `Data` chunks, and `Fin`
/// with the proposer's signature over all of it.
/// A piece of a streamed proposal: `Init`, the block in `Data` chunks, `Fin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalPart {
    /// What the stream proposes for.
    Init {
        /// The height.
        height: Height,
        /// The round.
        round: Round,
        /// The round of the proof of lock, if any.
        pol_round: Round,
        /// Who proposes.
        proposer: ValidatorId,
    },
    /// A chunk of the encoded block.
    Data(Bytes),
    /// The proposer's signature over the whole stream.
    Fin(Signature),
}

impl mc::ProposalPart<Ctx> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init { .. })
    }
    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin(_))
    }
}

/// The context: it carries the genesis hash that every signature binds.
/// gradnet's Malachite context: its types and how they are signed.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The chain's genesis hash (every signature is bound to it).
    pub genesis_hash: B256,
}

impl mc::Context for Ctx {
    type Address = ValidatorId;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = Bytes;
    type SigningScheme = Ed25519;

    /// Weighted round robin: position (height - 1 + round) mod total power,
    /// walked over the validators' cumulative power.
    fn select_proposer<'a>(
        &self,
        vs: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        select_proposer(vs, height, round)
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockId,
        pol_round: Round,
        proposer: ValidatorId,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value: NilOrVal<BlockId>,
        validator: ValidatorId,
    ) -> Vote {
        Vote {
            typ: VoteType::Prevote,
            height,
            round,
            value,
            validator,
            extension: None,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value: NilOrVal<BlockId>,
        validator: ValidatorId,
    ) -> Vote {
        Vote {
            typ: VoteType::Precommit,
            height,
            round,
            value,
            validator,
            extension: None,
        }
    }
}

/// The proposer of `round` at `height`: round-robin weighted by voting
/// power, advancing one step per height and per round.
pub fn select_proposer(vs: &ValidatorSet, height: Height, round: Round) -> &Validator {
    use mc::ValidatorSet as _;
    let total = vs.total_voting_power().max(1);
    let r = round.as_u32().unwrap_or(0) as u64;
    let mut pos = (height.0.saturating_sub(1) + r) % total;
    for v in &vs.validators {
        if pos < v.power {
            return v;
        }
        pos -= v.power;
    }
    &vs.validators[0]
}

/// An RLP value that fills `b` exactly (trailing bytes refused).
pub fn decode_exact<T: alloy_rlp::Decodable>(b: &[u8]) -> Result<T, String> {
    let mut s = b;
    let v = T::decode(&mut s).map_err(|e| e.to_string())?;
    if !s.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok(v)
}

/// A vote type's byte on the wire.
pub fn vote_type_code(t: VoteType) -> u8 {
    match t {
        VoteType::Prevote => 1,
        VoteType::Precommit => 2,
    }
}

/// The vote type of a wire byte.
pub fn vote_type_from(c: u8) -> Option<VoteType> {
    match c {
        1 => Some(VoteType::Prevote),
        2 => Some(VoteType::Precommit),
        _ => None,
    }
}

/// A vote's value on the wire: empty for nil, else the 32-byte block hash.
pub fn value_bytes(v: &NilOrVal<BlockId>) -> Bytes {
    match v {
        NilOrVal::Nil => Bytes::new(),
        NilOrVal::Val(b) => Bytes::copy_from_slice(b.0.as_slice()),
    }
}

/// A vote value from its [`value_bytes`].
pub fn value_from(b: &[u8]) -> Option<NilOrVal<BlockId>> {
    match b.len() {
        0 => Some(NilOrVal::Nil),
        32 => Some(NilOrVal::Val(BlockId(B256::from_slice(b)))),
        _ => None,
    }
}

#[derive(RlpEncodable, RlpDecodable)]
struct VoteBytes {
    typ: u8,
    height: u64,
    round: u64,
    value: Bytes,
    validator: Address,
}

#[derive(RlpEncodable, RlpDecodable)]
struct ProposalBytes {
    height: u64,
    round: u64,
    value: B256,
    pol_round: u64,
    proposer: Address,
}

/// Bytes a vote is signed over (its extension is signed on its own).
pub fn vote_body(v: &Vote) -> Vec<u8> {
    alloy_rlp::encode(VoteBytes {
        typ: vote_type_code(v.typ),
        height: v.height.0,
        round: round_code(v.round),
        value: value_bytes(&v.value),
        validator: v.validator.0,
    })
}

/// A vote from its [`vote_body`].
pub fn vote_from_body(b: &[u8]) -> Option<Vote> {
    let r: VoteBytes = decode_exact(b).ok()?;
    Some(Vote {
        typ: vote_type_from(r.typ)?,
        height: Height(r.height),
        round: round_from_code(r.round).filter(|r| r.is_defined())?,
        value: value_from(&r.value)?,
        validator: ValidatorId(r.validator),
        extension: None,
    })
}

/// The signed bytes of a proposal.
pub fn proposal_body(p: &Proposal) -> Vec<u8> {
    alloy_rlp::encode(ProposalBytes {
        height: p.height.0,
        round: round_code(p.round),
        value: p.value.0,
        pol_round: round_code(p.pol_round),
        proposer: p.proposer.0,
    })
}

/// A proposal from its [`proposal_body`].
pub fn proposal_from_body(b: &[u8]) -> Option<Proposal> {
    let r: ProposalBytes = decode_exact(b).ok()?;
    Some(Proposal {
        height: Height(r.height),
        round: round_from_code(r.round).filter(|r| r.is_defined())?,
        value: BlockId(r.value),
        pol_round: round_from_code(r.pol_round)?,
        proposer: ValidatorId(r.proposer),
    })
}

#[derive(RlpEncodable, RlpDecodable)]
struct InitBytes {
    height: u64,
    round: u64,
    pol_round: u64,
    proposer: Address,
}

/// A proposal part's bytes (wire format and what the engine's part
/// signatures cover): tag 0 Init, 1 a data chunk, 2 Fin.
pub fn encode_part(p: &ProposalPart) -> Vec<u8> {
    let mut out = vec![];
    match p {
        ProposalPart::Init {
            height,
            round,
            pol_round,
            proposer,
        } => {
            out.push(0);
            InitBytes {
                height: height.0,
                round: round_code(*round),
                pol_round: round_code(*pol_round),
                proposer: proposer.0,
            }
            .encode(&mut out);
        }
        ProposalPart::Data(d) => {
            out.push(1);
            out.extend_from_slice(d);
        }
        ProposalPart::Fin(s) => {
            out.push(2);
            out.extend_from_slice(&s.to_bytes());
        }
    }
    out
}

/// A proposal part from its [`encode_part`].
pub fn decode_part(b: &[u8]) -> Option<ProposalPart> {
    let (&tag, rest) = b.split_first()?;
    Some(match tag {
        0 => {
            let i: InitBytes = decode_exact(rest).ok()?;
            ProposalPart::Init {
                height: Height(i.height),
                round: round_from_code(i.round).filter(|r| r.is_defined())?,
                pol_round: round_from_code(i.pol_round)?,
                proposer: ValidatorId(i.proposer),
            }
        }
        1 => ProposalPart::Data(Bytes::copy_from_slice(rest)),
        2 => ProposalPart::Fin(Signature::from_bytes(rest.try_into().ok()?)),
        _ => return None,
    })
}

/// Signs and checks consensus messages with this validator's key, each
/// bound to one network by a domain tag and the genesis hash.
pub struct Signer {
    key: PrivateKey,
    genesis_hash: B256,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", ValidatorId::of(&self.key.public_key()))
    }
}

impl Signer {
    /// A signer for `key` on the chain of `genesis_hash`.
    pub fn new(key: PrivateKey, genesis_hash: B256) -> Self {
        Signer { key, genesis_hash }
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The message actually signed: tag, genesis hash, body.
    pub fn domain(tag: &[u8], genesis_hash: &B256, body: &[u8]) -> Vec<u8> {
        [tag, genesis_hash.as_slice(), body].concat()
    }

    /// Signs `body` under `tag` ([`Signer::domain`]).
    pub fn sign(&self, tag: &[u8], body: &[u8]) -> Signature {
        self.key.sign(&Self::domain(tag, &self.genesis_hash, body))
    }

    /// Whether `sig` is `key`'s over `body` under `tag`.
    pub fn verify(&self, tag: &[u8], body: &[u8], sig: &Signature, key: &PublicKey) -> bool {
        key.verify(&Self::domain(tag, &self.genesis_hash, body), sig)
            .is_ok()
    }
}

/// Domain tag of votes.
pub const TAG_VOTE: &[u8] = b"gradnet/vote/v1";
/// Domain tag of proposals.
pub const TAG_PROPOSAL: &[u8] = b"gradnet/proposal/v1";
/// Domain tag of single proposal parts.
pub const TAG_PART: &[u8] = b"gradnet/part/v1";
/// Domain tag of a whole proposal stream (its `Fin`).
pub const TAG_STREAM: &[u8] = b"gradnet/stream/v1";
/// Domain tag of vote extensions.
pub const TAG_EXTENSION: &[u8] = b"gradnet/extension/v1";

impl mc::SigningProvider<Ctx> for Signer {
    fn sign_vote(&self, vote: Vote) -> SignedVote<Ctx> {
        let s = self.sign(TAG_VOTE, &vote_body(&vote));
        SignedVote::new(vote, s)
    }
    fn verify_signed_vote(&self, vote: &Vote, sig: &Signature, key: &PublicKey) -> bool {
        self.verify(TAG_VOTE, &vote_body(vote), sig, key)
    }
    fn sign_proposal(&self, p: Proposal) -> SignedProposal<Ctx> {
        let s = self.sign(TAG_PROPOSAL, &proposal_body(&p));
        SignedProposal::new(p, s)
    }
    fn verify_signed_proposal(&self, p: &Proposal, sig: &Signature, key: &PublicKey) -> bool {
        self.verify(TAG_PROPOSAL, &proposal_body(p), sig, key)
    }
    fn sign_proposal_part(&self, p: ProposalPart) -> SignedProposalPart<Ctx> {
        let s = self.sign(TAG_PART, &encode_part(&p));
        SignedProposalPart::new(p, s)
    }
    fn verify_signed_proposal_part(
        &self,
        p: &ProposalPart,
        sig: &Signature,
        key: &PublicKey,
    ) -> bool {
        self.verify(TAG_PART, &encode_part(p), sig, key)
    }
    fn sign_vote_extension(&self, e: Bytes) -> SignedExtension<Ctx> {
        let s = self.sign(TAG_EXTENSION, &e);
        mc::SignedMessage::new(e, s)
    }
    fn verify_signed_vote_extension(&self, e: &Bytes, sig: &Signature, key: &PublicKey) -> bool {
        self.verify(TAG_EXTENSION, e, sig, key)
    }
}
