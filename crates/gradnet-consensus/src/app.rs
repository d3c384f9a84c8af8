//! The application side of consensus: it answers Malachite's requests with
//! the chain. A proposer builds a block from its pool and streams it; a
//! validator reassembles a stream, checks the proposer's signature and
//! re-executes the block on its own state before it votes for it; a
//! decided block is committed with its certificate; a node that fell
//! behind is served, and catches up from, committed blocks and their
//! certificates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use bytes::Bytes;
use malachitebft_app_channel::app::engine::host::Next;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, Round, ValidatorSet as _, Validity,
};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::{LocallyProposedValue, PeerId, ProposedValue};
use malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};

use super::byzantine::{Byzantine, Strategy};
use super::codec::{decode_certificate, encode_certificate};
use super::context::{
    round_code, select_proposer, BlockId, Ctx, Height, ProposalPart, Signature, Signer,
    ValidatorId, ValidatorSet, TAG_STREAM,
};
use super::faults::{Equivocation, Faults};
use super::parts::{split, Streams};
use gradnet_ledger::block::Block;
use gradnet_ledger::chain::{Chain, MissServer};
use gradnet_ledger::exec::BlockParams;
use gradnet_ledger::store::Executed;

/// Transactions in one block at most (the gas limit usually binds first).
pub const MAX_BLOCK_TXS: usize = 10_000;
/// Proposals kept for later heights or rounds at most: what a peer sends
/// beyond is dropped, so a proposer cannot fill this node's memory.
const MAX_CANDIDATES: usize = 64;
/// Rounds ahead of the current one whose proposals are kept.
const MAX_ROUNDS_AHEAD: u32 = 8;
/// How far ahead of a validator's clock a block's timestamp may be.
const MAX_CLOCK_DRIFT_SECS: u64 = 15;
/// A validator counts as a peer (`net_peerCount`) while it signed one of
/// the last this many commits.
const PEER_WINDOW: u64 = 20;

/// Seconds since the Unix epoch: a proposed block's timestamp.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A block seen for the current or a later height, by hash.
struct Candidate {
    block: Block,
    round: Round,
    valid_round: Round,
    proposer: ValidatorId,
    /// The block executed on the head (present once checked).
    executed: Option<Executed>,
    /// None until checked (a block for a later height waits until then).
    validity: Option<Validity>,
}

/// What a byzantine proposer does to one of its blocks when it streams it.
#[derive(Clone)]
enum Attack {
    Withhold,
    Garble,
    /// A second, different block streamed for the same round.
    Twin(Box<Block>),
}

/// gradnet's side of consensus: proposes blocks, checks and keeps the
/// others' proposals, commits what is decided, serves block sync.
pub struct App {
    /// The ledger the decided blocks go into.
    pub chain: Arc<Chain>,
    /// Signs this validator's proposals, parts and votes.
    pub signer: Arc<Signer>,
    /// This validator.
    pub me: ValidatorId,
    /// Who votes (from the genesis).
    pub validators: ValidatorSet,
    /// Time from one proposal to the next (consensus time does not add to it).
    pub block_time: Duration,
    streams: Streams,
    candidates: HashMap<B256, Candidate>,
    /// When this node first had a proposal for the current height.
    proposal_seen: Option<Instant>,
    /// The same for the last decided height: the next proposal comes one
    /// block time after it, so that consensus time does not add to it.
    last_proposal: Instant,
    /// Other validators, by the last height whose commit they signed.
    signers: HashMap<ValidatorId, u64>,
    /// Sends this proposer's unanswered inference calls to the sampled
    /// nodes (PIPE): the network leg of block building, from the node.
    pipe: Arc<dyn MissServer>,
    /// Refusals and equivocations seen.
    pub faults: Faults,
    /// Tests only: this validator attacks (see `byzantine`).
    pub byzantine: Option<Arc<Byzantine>>,
    /// The signed stream first seen per (height, round): a second one for
    /// another block is the proposer's equivocation.
    signed: HashMap<(u64, u64), (B256, u64, Signature)>,
    /// Byzantine only: how its own proposals are streamed.
    attacks: HashMap<B256, Attack>,
    /// The round consensus is in.
    round: Round,
}

impl App {
    /// The app of the validator `signer` signs for.
    pub fn new(
        chain: Arc<Chain>,
        signer: Arc<Signer>,
        validators: ValidatorSet,
        block_time: Duration,
        pipe: Arc<dyn MissServer>,
    ) -> Self {
        let me = ValidatorId::of(&signer.public_key());
        App {
            chain,
            signer,
            me,
            validators,
            block_time,
            streams: Streams::default(),
            candidates: HashMap::new(),
            proposal_seen: None,
            last_proposal: Instant::now(),
            signers: HashMap::new(),
            pipe,
            faults: Faults::default(),
            byzantine: None,
            signed: HashMap::new(),
            attacks: HashMap::new(),
            round: Round::new(0),
        }
    }

    fn next_height(&self) -> Height {
        Height(self.chain.head().number + 1)
    }

    fn proposed(&self, hash: B256, c: &Candidate) -> Option<ProposedValue<Ctx>> {
        Some(ProposedValue {
            height: Height(c.block.header.number),
            round: c.round,
            valid_round: c.valid_round,
            proposer: c.proposer,
            value: BlockId(hash),
            validity: c.validity?,
        })
    }

    /// Checks a block for the next height: its header names a validator and
    /// that validator's fee recipient, its clock is sane, and executing it
    /// on the head reproduces its header.
    async fn check(&mut self, hash: B256) {
        let next = self.next_height().0;
        let Some(c) = self.candidates.get(&hash) else {
            return;
        };
        if c.block.header.number != next {
            return;
        }
        if c.validity.is_some() && (c.executed.is_some() || c.validity == Some(Validity::Invalid)) {
            return;
        }
        let block = c.block.clone();
        let h = &block.header;
        let named = self
            .validators
            .validators
            .iter()
            .find(|v| v.address.0 == h.proposer);
        let why = match named {
            None => Some(format!("proposer {} is not a validator", h.proposer)),
            Some(v) if v.fee_recipient != h.coinbase => Some(format!(
                "coinbase {} is not the proposer's fee recipient",
                h.coinbase
            )),
            _ if h.timestamp > now_secs() + MAX_CLOCK_DRIFT_SECS => {
                Some("timestamp is in the future".into())
            }
            _ => None,
        };
        let outcome = match why {
            Some(w) => Err(w),
            None => {
                let chain = self.chain.clone();
                let pipe = self.pipe.clone();
                tokio::task::spawn_blocking(move || {
                    let e = chain.verify(&block).map_err(|e| e.to_string())?;
                    if !e.missed.is_empty() {
                        // the proposer's word that nodes did not answer
                        // slashes them: ask them before voting for it
                        let view = chain.registry_view().map_err(|e| e.to_string())?;
                        let deadline = Instant::now() + gradnet_inference::pipe::CONFIRM_BUDGET;
                        pipe.confirm_missed(&view, &e.missed, deadline)?;
                    }
                    Ok(e)
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
            }
        };
        let c = self.candidates.get_mut(&hash).expect("present");
        match outcome {
            Ok(e) => {
                c.executed = Some(e);
                c.validity = Some(Validity::Valid);
            }
            Err(why) => {
                self.faults.refused(c.block.header.number, &hash, &why);
                c.validity = Some(Validity::Invalid);
            }
        }
    }

    async fn build(&mut self, height: Height, round: Round) -> eyre::Result<B256> {
        // the same value again if consensus asks twice for one round
        if let Some((h, _)) = self.candidates.iter().find(|(_, c)| {
            c.block.header.number == height.0 && c.round == round && c.proposer == self.me
        }) {
            return Ok(*h);
        }
        let wait = self.block_time.saturating_sub(self.last_proposal.elapsed());
        tokio::time::sleep(wait).await;
        let chain = self.chain.clone();
        let me = self.me;
        let coinbase = self
            .validators
            .get_by_address(&me)
            .map(|v| v.fee_recipient)
            .ok_or_else(|| eyre::eyre!("this node is not a validator"))?;
        let pipe = self.pipe.clone();
        let built = tokio::task::spawn_blocking(move || {
            let params = BlockParams {
                timestamp: now_secs().max(chain.head().timestamp),
                proposer: me.0,
                coinbase,
            };
            chain.propose(&params, MAX_BLOCK_TXS, pipe.as_ref())
        })
        .await??;
        let mut block = built.executed.block.clone();
        if let Some(b) = self.byzantine.clone() {
            self.attack(&b, &mut block);
        }
        let hash = block.hash();
        self.proposal_seen.get_or_insert_with(Instant::now);
        tracing::debug!(height = height.0, round = %round, txs = block.transactions.len(), block = %hash, "proposing");
        let mut executed = built.executed;
        executed.block = block.clone();
        self.candidates.insert(
            hash,
            Candidate {
                block,
                round,
                valid_round: Round::Nil,
                proposer: me,
                executed: Some(executed),
                validity: Some(Validity::Valid),
            },
        );
        Ok(hash)
    }

    /// Byzantine only: alters a block it built (or how it will stream it)
    /// by the plan's current strategy, where that applies to this block.
    fn attack(&mut self, b: &Byzantine, block: &mut Block) {
        let s = b.current();
        let h = &mut block.header;
        let stashed = b.take_stashed();
        let applied = match s {
            // a sidecar call swapped for the tampered one, committed to
            _ if s.in_sidecar() => {
                let mut swapped = false;
                for t in stashed {
                    if let Some(c) = block
                        .sidecar
                        .calls
                        .iter_mut()
                        .find(|c| c.request_hash == t.request_hash)
                    {
                        *c = t;
                        swapped = true;
                    }
                }
                block.header.sidecar_root = block.sidecar.root();
                swapped
            }
            Strategy::ReplaySidecar => {
                let parent = self.chain.store.block(h.number - 1).ok().flatten();
                match parent.filter(|p| !p.sidecar.calls.is_empty()) {
                    Some(p) => {
                        block.sidecar.calls.extend(p.sidecar.calls);
                        block.header.sidecar_root = block.sidecar.root();
                        true
                    }
                    None => false,
                }
            }
            Strategy::BadResults => {
                h.state_root = alloy_primitives::keccak256(h.state_root);
                h.receipts_root = alloy_primitives::keccak256(h.receipts_root);
                true
            }
            Strategy::Equivocate => {
                let mut twin = block.clone();
                twin.header.timestamp += 1;
                self.attacks
                    .insert(block.hash(), Attack::Twin(Box::new(twin)));
                true
            }
            Strategy::Withhold => {
                self.attacks.insert(block.hash(), Attack::Withhold);
                true
            }
            Strategy::Garble => {
                self.attacks.insert(block.hash(), Attack::Garble);
                true
            }
            _ => false,
        };
        if applied {
            b.applied(s, block.header.number);
        }
    }

    async fn publish(
        &self,
        channels: &Channels<Ctx>,
        height: Height,
        round: Round,
        pol_round: Round,
        hash: &B256,
    ) -> eyre::Result<()> {
        let Some(c) = self.candidates.get(hash) else {
            return Ok(());
        };
        let mut parts = split(
            &self.signer,
            height,
            round,
            pol_round,
            self.me,
            &c.block.encode(),
        );
        match self.attacks.get(hash) {
            None => {}
            Some(Attack::Withhold) => parts.clear(),
            Some(Attack::Garble) => {
                use malachitebft_app_channel::app::engine::util::streaming::StreamContent;
                if let StreamContent::Data(ProposalPart::Data(d)) = &mut parts[1].content {
                    let mut v = d.to_vec();
                    let mid = v.len() / 2;
                    v[mid] ^= 0x5a;
                    *d = Bytes::from(v);
                }
            }
            Some(Attack::Twin(twin)) => {
                // under its own stream id, so that both arrive whole
                let mut more = split(
                    &self.signer,
                    height,
                    round,
                    pol_round,
                    self.me,
                    &twin.encode(),
                );
                let id = malachitebft_app_channel::app::engine::util::streaming::StreamId::new(
                    [&more[0].stream_id.to_bytes()[..], b"twin"].concat().into(),
                );
                for m in &mut more {
                    m.stream_id = id.clone();
                }
                parts.extend(more);
            }
        }
        for m in parts {
            channels
                .network
                .send(NetworkMsg::PublishProposalPart(m))
                .await?;
        }
        Ok(())
    }

    async fn received_part(
        &mut self,
        from: PeerId,
        part: malachitebft_app_channel::app::engine::util::streaming::StreamMessage<ProposalPart>,
    ) -> Option<ProposedValue<Ctx>> {
        let a = match self.streams.insert(from, part) {
            Ok(Some(a)) => a,
            Ok(None) => return None,
            Err(why) => {
                tracing::warn!(%from, check = "stream-format", "dropping a proposal stream: {why}");
                self.faults.dropped("stream-format");
                return None;
            }
        };
        let next = self.next_height();
        if a.height < next {
            return None;
        }
        let far = a.height.0 > next.0 + 1
            || (a.height == next
                && a.round.as_u32().unwrap_or(0)
                    > self.round.as_u32().unwrap_or(0) + MAX_ROUNDS_AHEAD);
        if far || (a.height > next && self.candidates.len() >= MAX_CANDIDATES) {
            tracing::debug!(%from, height = a.height.0, round = %a.round, "dropping a proposal too far ahead");
            return None;
        }
        let expected = select_proposer(&self.validators, a.height, a.round);
        if expected.address != a.proposer {
            tracing::warn!(%from, height = a.height.0, check = "stream-proposer", "proposal stream from {} who is not the round's proposer", a.proposer);
            self.faults.dropped("stream-proposer");
            return None;
        }
        if !self.signer.verify(
            TAG_STREAM,
            &a.signed_body(),
            &a.signature,
            &expected.public_key,
        ) {
            tracing::warn!(%from, height = a.height.0, check = "stream-signature", "proposal stream with a bad signature");
            self.faults.dropped("stream-signature");
            return None;
        }
        let digest = alloy_primitives::keccak256(&a.block);
        let key = (a.height.0, round_code(a.round));
        let first = if a.height == next {
            *self
                .signed
                .entry(key)
                .or_insert((digest, round_code(a.pol_round), a.signature))
        } else {
            (digest, 0, a.signature)
        };
        if first.0 != digest {
            let e = Equivocation::new(
                a.height,
                a.round,
                a.proposer,
                (first.0, first.1, &first.2),
                (digest, round_code(a.pol_round), &a.signature),
            );
            self.faults.equivocation(&e);
            // neither of the proposer's blocks gets this validator's vote
            for c in self.candidates.values_mut() {
                if c.block.header.number == a.height.0 && c.round == a.round {
                    c.validity = Some(Validity::Invalid);
                }
            }
            return None;
        }
        let block = match Block::decode(&a.block) {
            Ok(b) if b.header.number == a.height.0 => b,
            Ok(_) => {
                tracing::warn!(%from, "proposal stream whose block is for another height");
                return None;
            }
            Err(e) => {
                tracing::warn!(%from, "proposal stream with an undecodable block: {e}");
                return None;
            }
        };
        let hash = block.hash();
        self.candidates.entry(hash).or_insert(Candidate {
            block,
            round: a.round,
            valid_round: a.pol_round,
            proposer: a.proposer,
            executed: None,
            validity: None,
        });
        if a.height == next {
            self.proposal_seen.get_or_insert_with(Instant::now);
            if self.byzantine.is_some() {
                // votes for whatever it is sent, unchecked
                if let Some(c) = self.candidates.get_mut(&hash) {
                    c.validity.get_or_insert(Validity::Valid);
                }
            } else {
                self.check(hash).await;
            }
        }
        let c = self.candidates.get(&hash)?;
        // the stream's own round, even if the block was seen in another
        let mut v = self.proposed(hash, c)?;
        v.round = a.round;
        v.valid_round = a.pol_round;
        v.proposer = a.proposer;
        Some(v)
    }

    async fn decided(&mut self, cert: CommitCertificate<Ctx>) -> Result<(), String> {
        let hash = cert.value_id.0;
        // peers: the other validators that signed a commit lately (a
        // certificate holds just a quorum's signatures, not every voter's)
        let h = cert.height.0;
        for s in &cert.commit_signatures {
            if s.address != self.me {
                self.signers.insert(s.address, h);
            }
        }
        self.signers.retain(|_, seen| *seen + PEER_WINDOW > h);
        self.chain.peers.store(
            self.signers.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let Some(c) = self.candidates.get(&hash) else {
            return Err(format!("no block {hash} for height {}", cert.height.0));
        };
        let synced = c.executed.is_none();
        if synced {
            // a synced block, not executed yet
            if let Some(c) = self.candidates.get_mut(&hash) {
                c.validity = None;
            }
            self.check(hash).await;
        }
        let c = self.candidates.get(&hash).expect("present");
        let Some(executed) = c.executed.clone() else {
            return Err(format!(
                "decided block {hash} does not execute on this node's state"
            ));
        };
        gradnet_types::crash::point(if synced {
            "sync-commit"
        } else {
            "consensus-commit"
        });
        let chain = self.chain.clone();
        let bytes = encode_certificate(&cert);
        tokio::task::spawn_blocking(move || chain.commit(&executed, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let next = self.next_height();
        self.candidates
            .retain(|_, c| c.block.header.number >= next.0);
        // blocks checked against the old head must be checked again
        for c in self.candidates.values_mut() {
            c.executed = None;
            c.validity = None;
        }
        self.streams.prune(next);
        self.signed.retain(|(h, _), _| *h >= next.0);
        self.attacks.clear();
        self.last_proposal = self.proposal_seen.take().unwrap_or_else(Instant::now);
        tracing::debug!(height = cert.height.0, round = %cert.round, block = %hash, "committed");
        Ok(())
    }

    fn decided_value(&self, height: Height) -> Option<RawDecidedValue<Ctx>> {
        let block = self.chain.store.block(height.0).ok()??;
        let cert = self.chain.store.certificate(height.0).ok()??;
        let certificate = decode_certificate(&cert).ok()?;
        Some(RawDecidedValue::new(
            Bytes::from(block.encode()),
            certificate,
        ))
    }

    /// Serves consensus until its channel closes.
    pub async fn run(mut self, mut channels: Channels<Ctx>) -> eyre::Result<()> {
        while let Some(msg) = channels.consensus.recv().await {
            match msg {
                AppMsg::ConsensusReady { reply } => {
                    let next = self.next_height();
                    tracing::info!(height = next.0, "consensus ready");
                    let _ = reply.send((next, self.validators.clone()));
                }
                AppMsg::StartedRound {
                    height,
                    round,
                    reply_value,
                    ..
                } => {
                    self.round = round;
                    let hashes: Vec<B256> = self
                        .candidates
                        .iter()
                        .filter(|(_, c)| c.block.header.number == height.0 && c.round == round)
                        .map(|(h, _)| *h)
                        .collect();
                    let mut seen = vec![];
                    for h in hashes {
                        self.check(h).await;
                        if let Some(v) = self.candidates.get(&h).and_then(|c| self.proposed(h, c)) {
                            seen.push(v);
                        }
                    }
                    let _ = reply_value.send(seen);
                }
                AppMsg::GetValue {
                    height,
                    round,
                    reply,
                    ..
                } => match self.build(height, round).await {
                    Ok(hash) => {
                        let _ = reply.send(LocallyProposedValue::new(height, round, BlockId(hash)));
                        self.publish(&channels, height, round, Round::Nil, &hash)
                            .await?;
                    }
                    // no proposal this round: the others time out and move on
                    Err(e) => {
                        tracing::error!(height = height.0, %round, "cannot build a block: {e}")
                    }
                },
                AppMsg::ExtendVote { reply, .. } => {
                    let _ = reply.send(None);
                }
                AppMsg::VerifyVoteExtension { reply, .. } => {
                    let _ = reply.send(Ok(()));
                }
                AppMsg::RestreamProposal {
                    height,
                    round,
                    valid_round,
                    value_id,
                    ..
                } => {
                    self.publish(&channels, height, round, valid_round, &value_id.0)
                        .await?;
                }
                AppMsg::GetHistoryMinHeight { reply } => {
                    let _ = reply.send(Height(1));
                }
                AppMsg::ReceivedProposalPart { from, part, reply } => {
                    let v = self.received_part(from, part).await;
                    let _ = reply.send(v);
                }
                AppMsg::GetValidatorSet { reply, .. } => {
                    let _ = reply.send(Some(self.validators.clone()));
                }
                AppMsg::Decided {
                    certificate, reply, ..
                } => {
                    let height = certificate.height;
                    match self.decided(certificate).await {
                        Ok(()) => {
                            let _ = reply
                                .send(Next::Start(self.next_height(), self.validators.clone()));
                        }
                        Err(why) => {
                            tracing::error!(
                                height = height.0,
                                "cannot commit the decided block: {why}; restarting the height"
                            );
                            // a full disk or a failing one: do not spin on it
                            tokio::time::sleep(Duration::from_millis(250)).await;
                            let _ = reply
                                .send(Next::Restart(self.next_height(), self.validators.clone()));
                        }
                    }
                }
                AppMsg::GetDecidedValue { height, reply } => {
                    let _ = reply.send(self.decided_value(height));
                }
                AppMsg::ProcessSyncedValue {
                    height,
                    round,
                    proposer,
                    value_bytes,
                    reply,
                } => {
                    // the value comes with a commit certificate that the
                    // engine checks; the block is executed when decided
                    let v = match Block::decode(&value_bytes) {
                        Ok(b) if b.header.number == height.0 && height >= self.next_height() => {
                            let hash = b.hash();
                            self.candidates.entry(hash).or_insert(Candidate {
                                block: b,
                                round,
                                valid_round: Round::Nil,
                                proposer,
                                executed: None,
                                validity: Some(Validity::Valid),
                            });
                            Some(ProposedValue {
                                height,
                                round,
                                valid_round: Round::Nil,
                                proposer,
                                value: BlockId(hash),
                                validity: Validity::Valid,
                            })
                        }
                        _ => None,
                    };
                    let _ = reply.send(v);
                }
            }
        }
        Err(eyre::eyre!("consensus stopped"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::PrivateKey;
    use alloy_primitives::Address;
    use gradnet_ledger::genesis::{Genesis, GenesisValidator};
    use gradnet_ledger::mempool::PoolConfig;

    use crate::parts::test_peer as peer;

    /// Two validators A (first) and B; an app for A's node.
    fn setup(dir: &std::path::Path) -> (App, Signer, Signer) {
        let keys = [PrivateKey::from([1u8; 32]), PrivateKey::from([2u8; 32])];
        let genesis = Genesis {
            chain_id: 5,
            timestamp: 1_700_000_000,
            gas_limit: 30_000_000,
            base_fee: 1_000_000_000,
            validators: keys
                .iter()
                .enumerate()
                .map(|(i, k)| GenesisValidator {
                    public_key: hex::encode(k.public_key().as_bytes()),
                    power: 1,
                    fee_recipient: Address::repeat_byte(i as u8 + 1),
                })
                .collect(),
            alloc: Default::default(),
            code: Default::default(),
            inference_nodes: vec![],
            zk_models: vec![],
            tee: None,
            escrow: None,
        };
        let chain = Chain::open(dir, genesis.clone(), PoolConfig::default()).unwrap();
        let vs = ValidatorSet::from_genesis(&genesis).unwrap();
        let signer = |k: &PrivateKey| Signer::new(k.clone(), genesis.hash());
        let none = |_: &_, _, _| vec![];
        let app = App::new(
            chain,
            Arc::new(signer(&keys[0])),
            vs,
            Duration::ZERO,
            Arc::new(none),
        );
        (app, signer(&keys[0]), signer(&keys[1]))
    }

    fn block_by(app: &App, who: &Signer, coinbase: Address) -> Block {
        let params = BlockParams {
            timestamp: now_secs(),
            proposer: ValidatorId::of(&who.public_key()).0,
            coinbase,
        };
        let none = |_: &_, _, _| vec![];
        app.chain
            .propose(&params, 10, &none)
            .unwrap()
            .executed
            .block
    }

    async fn stream(
        app: &mut App,
        who: &Signer,
        round: Round,
        block: &Block,
    ) -> Option<ProposedValue<Ctx>> {
        let me = ValidatorId::of(&who.public_key());
        let from = peer();
        let mut out = None;
        for m in split(who, Height(1), round, Round::Nil, me, &block.encode()) {
            if let Some(v) = app.received_part(from, m).await {
                out = Some(v);
            }
        }
        out
    }

    #[tokio::test]
    async fn validators_vote_only_for_signed_blocks_from_the_rounds_proposer_that_execute() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, a, b) = setup(dir.path());
        // round 0 of height 1 is A's; round 1 is B's
        let good = block_by(&app, &a, Address::repeat_byte(1));
        let v = stream(&mut app, &a, Round::new(0), &good)
            .await
            .expect("a complete proposal");
        assert_eq!(
            (v.value, v.validity),
            (BlockId(good.hash()), Validity::Valid)
        );

        // B streaming in A's round: ignored
        let by_b = block_by(&app, &b, Address::repeat_byte(2));
        assert!(stream(&mut app, &b, Round::new(0), &by_b).await.is_none());
        // B's own round: fine
        let v = stream(&mut app, &b, Round::new(1), &by_b).await.unwrap();
        assert_eq!(v.validity, Validity::Valid);

        // a block whose header lies about its state: signed, but voted against
        let mut lying = block_by(&app, &b, Address::repeat_byte(2));
        lying.header.state_root = B256::repeat_byte(0xee);
        let v = stream(&mut app, &b, Round::new(3), &lying).await.unwrap();
        assert_eq!(v.validity, Validity::Invalid);
        // a coinbase that is not the proposer's fee recipient: voted against
        let greedy = block_by(&app, &b, Address::repeat_byte(9));
        let v = stream(&mut app, &b, Round::new(5), &greedy).await.unwrap();
        assert_eq!(v.validity, Validity::Invalid);

        // a stream whose signature is not the proposer's: ignored
        let from = peer();
        let mut got = None;
        let forged = split(
            &a,
            Height(1),
            Round::new(7),
            Round::Nil,
            ValidatorId::of(&b.public_key()),
            &by_b.encode(),
        );
        for m in forged {
            got = got.or(app.received_part(from, m).await);
        }
        assert!(got.is_none());
    }
}
