//! `gradnet model`: repositories, versions and files in a node's hub.

use std::path::PathBuf;

use alloy_primitives::B256;
use alloy_sol_types::SolCall;
use anyhow::{Context, Result};
use clap::Subcommand;
use gradnet_client::NodeClient as Client;
use gradnet_client::{ClientError, Rpc, Sender};
use gradnet_inference::model_registry::{IModelRegistry, ModelFile, ADDRESS};

use crate::commands::chain::RpcArg;
use gradnet_types::{ContentId, ModelRef};
use serde_json::{json, Value};

pub(crate) async fn run(c: Client, args: ModelArgs) -> Result<()> {
    let key: Option<B256> = args
        .key
        .as_deref()
        .map(|k| {
            k.trim()
                .parse()
                .context("--key / GRADNET_KEY is not a private key (0x and 64 hex digits)")
        })
        .transpose()?;
    let c = match key {
        Some(k) => c.with_key(k),
        None => c,
    };
    let c = &match args.session.as_deref() {
        Some(token) => c.with_session(token.trim()),
        None => c,
    };
    match args.cmd {
        ModelCmd::SignIn { ttl } => {
            key.context("signing in needs --key (or GRADNET_KEY)")?;
            let r = c.sign_in(ttl).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ModelCmd::SignOut => {
            if args.session.is_none() {
                anyhow::bail!(
                    "signing out needs the session's token: --session (or GRADNET_SESSION)"
                );
            }
            let r: Value = c.delete("/api/v0/sessions").await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ModelCmd::Publish {
            name,
            files,
            major,
            notes,
            description,
            rpc,
        } => {
            let key = key.context("publishing on chain needs --key (or GRADNET_KEY)")?;
            let v = publish(c, key, &rpc.rpc, &name, &files, major, &notes, &description).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        ModelCmd::Collaborator {
            name,
            account,
            remove,
            rpc: Some(rpc),
        } => {
            let key = key.context("a transaction needs --key (or GRADNET_KEY)")?;
            let account = account
                .parse()
                .context("not an account (0x and 40 hex digits)")?;
            let data = if remove {
                IModelRegistry::removeCollaboratorCall { name, account }.abi_encode()
            } else {
                IModelRegistry::addCollaboratorCall { name, account }.abi_encode()
            };
            let r = sender(key, &rpc)
                .await?
                .send(ADDRESS, data, 500_000)
                .await?;
            println!("included in block {}", r.block_number.unwrap_or_default());
        }
        ModelCmd::Transfer {
            name,
            account,
            rpc: Some(rpc),
        } => {
            let key = key.context("a transaction needs --key (or GRADNET_KEY)")?;
            let new_owner = account
                .parse()
                .context("not an account (0x and 40 hex digits)")?;
            let data = IModelRegistry::transferOwnershipCall {
                name,
                newOwner: new_owner,
            }
            .abi_encode();
            let r = sender(key, &rpc)
                .await?
                .send(ADDRESS, data, 500_000)
                .await?;
            println!("included in block {}", r.block_number.unwrap_or_default());
        }
        ModelCmd::Create {
            name,
            description,
            task,
            license,
            tags,
            owner,
        } => {
            let r: Value = c
                .post("/api/v0/models", &json!({"name": name, "description": description, "task": task, "license": license, "tags": tags, "owner": owner}))
                .await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ModelCmd::Version { name, notes, major } => {
            let r: Value = c
                .post(
                    &format!("/api/v0/models/{name}/versions"),
                    &json!({"notes": notes, "is_major": major}),
                )
                .await?;
            println!("{}", r["versionString"].as_str().unwrap_or_default());
        }
        ModelCmd::Upload {
            name,
            version,
            file,
            store_as,
        } => {
            let fname = match store_as {
                Some(n) => n,
                None => file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .context("file has no usable name; pass --as")?
                    .to_string(),
            };
            let r = c.upload(&name, &version, &file, &fname, false).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"cid": r["cid"], "size": r["size"], "name": r["name"]})
                )?
            );
        }
        ModelCmd::Collaborator {
            name,
            account,
            remove,
            rpc: None,
        } => {
            let r: Value = if remove {
                c.delete(&format!("/api/v0/models/{name}/collaborators/{account}"))
                    .await?
            } else {
                c.post(
                    &format!("/api/v0/models/{name}/collaborators"),
                    &json!({ "account": account }),
                )
                .await?
            };
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ModelCmd::Transfer {
            name,
            account,
            rpc: None,
        } => {
            let r: Value = c
                .post(
                    &format!("/api/v0/models/{name}/owner"),
                    &json!({ "account": account }),
                )
                .await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ModelCmd::Ls => {
            let repos: Vec<Value> = c.get("/api/v0/models").await?;
            for r in repos {
                println!(
                    "{}\t{}\t{}",
                    r["name"].as_str().unwrap_or(""),
                    r["task"].as_str().unwrap_or(""),
                    r["description"].as_str().unwrap_or("")
                );
            }
        }
        ModelCmd::Files { name, version } => {
            let files: Vec<Value> = c
                .get(&format!("/api/v0/models/{name}/versions/{version}/files"))
                .await?;
            for f in files {
                println!(
                    "{}\t{}\t{}",
                    f["name"].as_str().unwrap_or(""),
                    f["size"],
                    f["cid"].as_str().unwrap_or("")
                );
            }
        }
        ModelCmd::Download { model, out } => {
            let (cid, default_name) = resolve(c, &model).await?;
            let out = out.unwrap_or_else(|| PathBuf::from(default_name));
            let n = c.download(&cid, &out, false).await?;
            eprintln!("{n} bytes → {} (verified {cid})", out.display());
        }
    }
    Ok(())
}

/// A content id and a file name for it, from either kind of model reference.
async fn resolve(c: &Client, model: &str) -> Result<(ContentId, String)> {
    match model.parse::<ModelRef>()? {
        ModelRef::Cid(cid) => Ok((cid, cid.to_string())),
        ModelRef::Path {
            repo,
            version,
            file,
        } => {
            let version = match version {
                Some(v) => v,
                None => {
                    let vs: Vec<Value> = c.get(&format!("/api/v0/models/{repo}/versions")).await?;
                    vs.last()
                        .and_then(|v| v["versionString"].as_str())
                        .context("repository has no versions")?
                        .to_string()
                }
            };
            let files: Vec<Value> = c
                .get(&format!("/api/v0/models/{repo}/versions/{version}/files"))
                .await?;
            let f = files
                .iter()
                .find(|f| f["name"] == file.as_str())
                .with_context(|| format!("no file `{file}` in {repo}@{version}"))?;
            Ok((f["cid"].as_str().unwrap_or_default().parse()?, file))
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct ModelArgs {
    /// The account that signs hub writes: a secp256k1 private key (hex).
    /// Without it a write is unsigned, which only a node in development
    /// mode accepts.
    #[arg(long, global = true, env = "GRADNET_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// A session token from `gradnet model sign-in`: authorizes hub writes
    /// to the node that issued it, in place of a signature per request.
    #[arg(long, global = true, env = "GRADNET_SESSION", hide_env_values = true)]
    pub session: Option<String>,
    #[command(subcommand)]
    pub cmd: ModelCmd,
}

#[derive(Subcommand)]
pub(crate) enum ModelCmd {
    /// Sign in to the node with --key: prints a session token to pass as
    /// --session / GRADNET_SESSION, so later writes are not signed one by one.
    SignIn {
        /// The session's lifetime in seconds [node's default: 3600; at most 86400].
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// End the session named by --session / GRADNET_SESSION.
    SignOut,
    /// Create a model repository.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "")]
        task: String,
        #[arg(long, default_value = "")]
        license: String,
        /// Repeat for several tags.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// The owner: must be the signing account (the first account to
        /// register a name owns it).
        #[arg(long, default_value = "")]
        owner: String,
    },
    /// Create a new version (1.00, then 1.01 … or 2.00 with --major).
    Version {
        name: String,
        #[arg(long, default_value = "")]
        notes: String,
        #[arg(long)]
        major: bool,
    },
    /// Upload a file into a version, with a progress bar.
    Upload {
        name: String,
        version: String,
        file: PathBuf,
        /// Store under this file name instead of the local one.
        #[arg(long = "as")]
        store_as: Option<String>,
    },
    /// Publish a version on chain: stores the files' bytes on the node, then
    /// registers the repository (the first time: the first account to
    /// register a name owns it) and the version with transactions to the
    /// model registry. Every node then resolves `NAME@VERSION/FILE` to the
    /// same bytes.
    Publish {
        name: String,
        /// The version's files (stored under their file names).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A major release (2.00 after 1.xx) rather than a minor one.
        #[arg(long)]
        major: bool,
        #[arg(long, default_value = "")]
        notes: String,
        /// The repository's description, when this publish creates it.
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        rpc: RpcArg,
    },
    /// Let an account publish to a repository (or stop it, with
    /// --remove); owner only.
    Collaborator {
        name: String,
        /// The account (0x and 40 hex digits).
        account: String,
        #[arg(long)]
        remove: bool,
        /// For a repository on chain: the JSON-RPC to send the transaction to.
        #[arg(long)]
        rpc: Option<String>,
    },
    /// Give a repository to another account; owner only.
    Transfer {
        name: String,
        /// The new owner (0x and 40 hex digits).
        account: String,
        /// For a repository on chain: the JSON-RPC to send the transaction to.
        #[arg(long)]
        rpc: Option<String>,
    },
    /// List repositories.
    Ls,
    /// List the files of a version.
    Files { name: String, version: String },
    /// Download a file by content id or `repo@version/file`, checking its hash.
    Download {
        model: String,
        /// Output path [default: the file name or the content id].
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
}

async fn sender(key: B256, rpc: &str) -> Result<Sender> {
    Ok(Sender::new(Rpc::new(rpc)?, key).await?)
}

/// Uploads `files` to the node, registers `name` if the chain has no such
/// repository, and publishes the next version listing them.
#[allow(clippy::too_many_arguments)]
async fn publish(
    c: &Client,
    key: B256,
    rpc: &str,
    name: &str,
    files: &[PathBuf],
    major: bool,
    notes: &str,
    description: &str,
) -> Result<Value> {
    let mut listed = vec![];
    for f in files {
        let file = f
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", f.display()))?;
        let up = c.upload_blob(f, file, false).await?;
        listed.push(ModelFile {
            name: file.to_string(),
            cid: up["cid"].as_str().unwrap_or_default().to_string(),
            size: up["size"].as_u64().unwrap_or_default(),
        });
    }
    let mut tx = sender(key, rpc).await?;
    let get = IModelRegistry::getRepositoryCall {
        name: name.to_string(),
    };
    match tx.rpc().call(ADDRESS, get.abi_encode()).await {
        Ok(_) => {}
        // no such repository yet: this account registers it
        Err(ClientError::Rpc { .. }) => {
            let create = IModelRegistry::createRepositoryCall {
                name: name.to_string(),
                description: description.to_string(),
            };
            tx.send(ADDRESS, create.abi_encode(), 1_000_000).await?;
        }
        Err(e) => return Err(e.into()),
    }
    let gas = 1_000_000 + 200_000 * listed.len() as u64;
    let call = IModelRegistry::publishVersionCall {
        name: name.to_string(),
        major,
        notes: notes.to_string(),
        files: listed.clone(),
    };
    let receipt = tx.send(ADDRESS, call.abi_encode(), gas).await?;
    let repo = IModelRegistry::getRepositoryCall::abi_decode_returns(
        &tx.rpc().call(ADDRESS, get.abi_encode()).await?,
    )?;
    let version = repo.versions.last().cloned().unwrap_or_default();
    Ok(json!({
        "name": name,
        "version": version,
        "owner": repo.owner,
        "block": receipt.block_number,
        "files": listed.iter().map(|f| json!({"name": f.name, "cid": f.cid, "size": f.size})).collect::<Vec<_>>(),
    }))
}
