//! Starting Malachite for one validator: its engine configuration (p2p
//! address and peers, timeouts derived from the block time, block sync),
//! its key, its write-ahead log under the node's home, and gradnet's app
//! loop (`gradnet_consensus::app`). The engine's p2p is the node's network
//! leg of consensus; the app itself only exchanges messages over channels.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use malachitebft_app_channel::app::config::{
    ConsensusConfig, P2pConfig, PubSubProtocol, TimeoutConfig, ValuePayload, ValueSyncConfig,
};
use malachitebft_app_channel::app::events::{RxEvent, TxEvent};
use malachitebft_app_channel::app::node::{EngineHandle, Node, NodeConfig, NodeHandle};
use malachitebft_app_channel::app::types::Keypair;
pub use multiaddr::Multiaddr;
use serde::{Deserialize, Serialize};

use gradnet_consensus::app::App;
use gradnet_consensus::codec::WireCodec;
use gradnet_consensus::context::{
    Ctx, Height, PrivateKey, PublicKey, Signer, ValidatorId, ValidatorSet,
};
use gradnet_ledger::chain::{Chain, MissServer};
use gradnet_ledger::genesis::Genesis;

/// How a validator joins its network.
#[derive(Debug, Clone)]
pub struct ConsensusOptions {
    /// Where the write-ahead log lives.
    pub home: PathBuf,
    /// This node's consensus p2p address, e.g. `/ip4/0.0.0.0/tcp/26656`.
    pub listen: Multiaddr,
    /// The other validators' p2p addresses.
    pub peers: Vec<Multiaddr>,
    /// Time from one block proposal to the next.
    pub block_time: Duration,
    /// The validator's name in the engine's logs.
    pub moniker: String,
}

/// Malachite's configuration, derived from the options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineConfig {
    /// The validator's name in the engine's logs.
    pub moniker: String,
    /// Timeouts, p2p and value payload.
    pub consensus: ConsensusConfig,
    /// Block sync for a validator that fell behind.
    pub value_sync: ValueSyncConfig,
}

impl NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
}

impl EngineConfig {
    /// The engine's configuration for `o`.
    pub fn new(o: &ConsensusOptions) -> Self {
        let timeouts = TimeoutConfig {
            // the proposer waits out the block time, then builds and streams
            timeout_propose: o.block_time + Duration::from_secs(3),
            ..TimeoutConfig::default()
        };
        let timeouts = TimeoutConfig {
            timeout_rebroadcast: timeouts.timeout_propose
                + timeouts.timeout_prevote
                + timeouts.timeout_precommit,
            ..timeouts
        };
        EngineConfig {
            moniker: o.moniker.clone(),
            consensus: ConsensusConfig {
                timeouts,
                p2p: P2pConfig {
                    listen_addr: o.listen.clone(),
                    persistent_peers: o.peers.clone(),
                    // validators connect to each other directly: every
                    // message goes to every peer at once
                    protocol: PubSubProtocol::Broadcast,
                    ..P2pConfig::default()
                },
                value_payload: ValuePayload::ProposalAndParts,
                queue_capacity: 100,
            },
            value_sync: ValueSyncConfig {
                status_update_interval: Duration::from_secs(1),
                request_timeout: Duration::from_secs(5),
                ..ValueSyncConfig::default()
            },
        }
    }
}

/// A private key as Malachite's node API passes it around: the ed25519 seed.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeySeed(pub [u8; 32]);

/// One validator: its chain, key, genesis and engine configuration.
#[derive(Clone)]
pub struct Validator {
    /// The ledger it decides blocks for.
    pub chain: Arc<Chain>,
    /// Serves the inference calls this validator's proposals find
    /// unanswered (PIPE's dispatcher, from the node).
    pub pipe: Arc<dyn MissServer>,
    /// Its consensus key.
    pub key: KeySeed,
    /// The chain's genesis (the validator set).
    pub genesis: Genesis,
    /// Counts the proposals it refuses; keeps equivocation evidence.
    pub faults: gradnet_consensus::faults::Faults,
    /// Tests only: this validator attacks.
    pub byzantine: Option<Arc<gradnet_consensus::byzantine::Byzantine>>,
    /// How it joins the network.
    pub options: ConsensusOptions,
}

/// The running engine and app loop.
pub struct Running {
    /// Malachite's engine.
    pub engine: EngineHandle,
    /// gradnet's app loop.
    pub app: tokio::task::JoinHandle<()>,
    /// The engine's events.
    pub events: TxEvent<Ctx>,
}

#[async_trait]
impl NodeHandle<Ctx> for Running {
    fn subscribe(&self) -> RxEvent<Ctx> {
        self.events.subscribe()
    }

    async fn kill(&self, _reason: Option<String>) -> eyre::Result<()> {
        // the app first: it would take the engine's end for a failure
        self.app.abort();
        self.engine.actor.kill_and_wait(None).await?;
        self.engine.handle.abort();
        Ok(())
    }
}

#[async_trait]
impl Node for Validator {
    type Context = Ctx;
    type Config = EngineConfig;
    type Genesis = Genesis;
    type PrivateKeyFile = KeySeed;
    type SigningProvider = Signer;
    type NodeHandle = Running;

    async fn start(&self) -> eyre::Result<Running> {
        let config = self.load_config()?;
        let genesis = self.load_genesis()?;
        let validators = ValidatorSet::from_genesis(&genesis).map_err(|e| eyre::eyre!(e))?;
        let key = self.load_private_key(self.load_private_key_file()?);
        let me = self.get_address(&key.public_key());
        if mc_find(&validators, &me).is_none() {
            eyre::bail!("this node's key ({me}) is not one of the genesis validators");
        }
        let ctx = Ctx {
            genesis_hash: genesis.hash(),
        };
        std::fs::create_dir_all(&self.options.home)?;
        let start = Height(self.chain.head().number + 1);
        let (channels, engine) = malachitebft_app_channel::start_engine(
            ctx,
            self.clone(),
            config,
            WireCodec,
            WireCodec,
            Some(start),
            validators.clone(),
        )
        .await?;
        let events = channels.events.clone();
        let signer = Arc::new(self.get_signing_provider(key));
        let mut app = App::new(
            self.chain.clone(),
            signer,
            validators,
            self.options.block_time,
            self.pipe.clone(),
        );
        app.faults = self.faults.clone();
        app.byzantine = self.byzantine.clone();
        let app = tokio::spawn(async move {
            if let Err(e) = app.run(channels).await {
                tracing::error!("consensus app stopped: {e}");
            }
        });
        Ok(Running {
            engine,
            app,
            events,
        })
    }

    async fn run(self) -> eyre::Result<()> {
        let running = self.start().await?;
        running.app.await?;
        Ok(())
    }

    fn get_home_dir(&self) -> PathBuf {
        self.options.home.clone()
    }

    fn load_config(&self) -> eyre::Result<EngineConfig> {
        Ok(EngineConfig::new(&self.options))
    }

    fn get_address(&self, pk: &PublicKey) -> ValidatorId {
        ValidatorId::of(pk)
    }

    fn get_public_key(&self, pk: &PrivateKey) -> PublicKey {
        pk.public_key()
    }

    fn get_keypair(&self, pk: PrivateKey) -> Keypair {
        Keypair::ed25519_from_bytes(pk.inner().to_bytes()).expect("32-byte ed25519 seed")
    }

    fn load_private_key(&self, file: KeySeed) -> PrivateKey {
        PrivateKey::from(file.0)
    }

    fn load_private_key_file(&self) -> eyre::Result<KeySeed> {
        Ok(self.key.clone())
    }

    fn load_genesis(&self) -> eyre::Result<Genesis> {
        Ok(self.genesis.clone())
    }

    fn get_signing_provider(&self, key: PrivateKey) -> Signer {
        Signer::new(key, self.genesis.hash())
    }
}

fn mc_find<'a>(
    vs: &'a ValidatorSet,
    me: &ValidatorId,
) -> Option<&'a gradnet_consensus::context::Validator> {
    use malachitebft_app_channel::app::types::core::ValidatorSet as _;
    vs.get_by_address(me)
}

impl Validator {
    /// Starts the engine and the app loop.
    pub async fn launch(&self) -> Result<Running, String> {
        self.start().await.map_err(|e| format!("{e:#}"))
    }
}

impl Running {
    /// Stops the engine; what was committed is on disk.
    pub async fn stop(&self) {
        if let Err(e) = self.kill(None).await {
            tracing::debug!("stopping consensus: {e}");
        }
    }
}

/// Consensus that reconnects. Malachite (0.5, with discovery off) dials its
/// persistent peers when it starts, retrying a few times, but never dials
/// a peer again once their connection closed: after a partition longer
/// than those retries a validator would stay cut off for good. So a
/// validator that commits nothing for a while restarts its engine (from
/// its write-ahead log), which dials every peer again.
pub struct Supervised {
    current: Arc<tokio::sync::Mutex<Option<Running>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Starts `v`'s consensus and watches its chain.
    pub async fn start(v: Validator) -> Result<Self, String> {
        let current = Arc::new(tokio::sync::Mutex::new(Some(v.launch().await?)));
        // well above a round's timeouts, so that a slow round is not a stall
        let stall = Duration::from_secs(15) + 4 * v.options.block_time;
        let task = tokio::spawn({
            let current = current.clone();
            async move {
                let mut head = v.chain.head().number;
                let mut since = std::time::Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let mut c = current.lock().await;
                    if c.is_none() {
                        // the last engine's write-ahead log may still be
                        // locked for a moment after it stopped
                        match v.launch().await {
                            Ok(r) => *c = Some(r),
                            Err(e) => tracing::debug!("restarting consensus: {e}"),
                        }
                        since = std::time::Instant::now();
                        continue;
                    }
                    let now = v.chain.head().number;
                    if now != head {
                        (head, since) = (now, std::time::Instant::now());
                        continue;
                    }
                    if since.elapsed() < stall {
                        continue;
                    }
                    tracing::warn!(
                        height = head + 1,
                        "no block for {:?}: restarting consensus to dial the other validators again",
                        since.elapsed()
                    );
                    if let Some(r) = c.take() {
                        r.stop().await;
                    }
                }
            }
        });
        Ok(Supervised { current, task })
    }

    /// Stops watching, then the engine.
    pub async fn stop(&self) {
        self.task.abort();
        if let Some(r) = self.current.lock().await.take() {
            r.stop().await;
        }
    }
}
