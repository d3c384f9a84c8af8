use std::path::PathBuf;

use anyhow::Result;
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
