//! `gradnet keys`: a node's signing key.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use gradnet_types::NodeKey;

pub(crate) fn new(out: Option<PathBuf>) -> Result<()> {
    let key = NodeKey::generate();
    if let Some(path) = out {
        key.save_new(&path)?;
        eprintln!("secret key written to {}", path.display());
    }
    println!("{}", key.public_hex());
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum KeysCmd {
    /// Generate an ed25519 node key.
    New {
        /// Write the secret seed here (never overwritten); without it only the public key is printed.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}
