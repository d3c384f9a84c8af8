//! Node keys (ed25519). A key file holds the 32-byte secret seed in hex.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {0}: expected 64 hex characters (a 32-byte ed25519 seed)")]
    Format(String),
    #[error("public key must be 64 hex characters of a valid ed25519 point")]
    PublicKey,
    #[error("signature must be 128 hex characters")]
    SignatureFormat,
    #[error("signature does not verify")]
    BadSignature,
}

pub struct NodeKey(SigningKey);

impl NodeKey {
    pub fn generate() -> Self {
        NodeKey(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        NodeKey(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte ed25519 seed (the validator key in consensus).
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn seed_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Hex of the public key, as it appears in receipts.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    /// An ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }

    /// The same in hex, as receipts carry it.
    pub fn sign_hex(&self, msg: &[u8]) -> String {
        hex::encode(self.sign(msg))
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| KeyError::Format(path.display().to_string()))?;
        Ok(Self::from_seed(seed))
    }

    /// Writes the seed with owner-only permissions; never overwrites a key.
    pub fn save_new(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path).map_err(io)?;
        writeln!(f, "{}", self.seed_hex()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Loads the key at `path`, creating one there first if there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate();
        key.save_new(path)?;
        Ok(key)
    }
}

/// Checks a hex ed25519 signature by a hex public key.
pub fn verify_hex(public_hex: &str, msg: &[u8], sig_hex: &str) -> Result<(), KeyError> {
    let pk: [u8; 32] = hex::decode(public_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(KeyError::PublicKey)?;
    let pk = VerifyingKey::from_bytes(&pk).map_err(|_| KeyError::PublicKey)?;
    let sig: [u8; 64] = hex::decode(sig_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(KeyError::SignatureFormat)?;
    pk.verify_strict(msg, &Signature::from_bytes(&sig))
        .map_err(|_| KeyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_files() {
        let k = NodeKey::generate();
        let sig = k.sign_hex(b"m");
        verify_hex(&k.public_hex(), b"m", &sig).unwrap();
        assert!(matches!(
            verify_hex(&k.public_hex(), b"n", &sig),
            Err(KeyError::BadSignature)
        ));
        assert!(matches!(
            verify_hex("zz", b"m", &sig),
            Err(KeyError::PublicKey)
        ));
        assert!(matches!(
            verify_hex(&k.public_hex(), b"m", "00"),
            Err(KeyError::SignatureFormat)
        ));
        let dir = std::env::temp_dir().join(format!("gradnet-key-{}", std::process::id()));
        let path = dir.join("node.key");
        let _ = std::fs::remove_file(&path);
        let a = NodeKey::load_or_create(&path).unwrap();
        let b = NodeKey::load_or_create(&path).unwrap();
        assert_eq!(a.public_hex(), b.public_hex());
        assert!(a.save_new(&path).is_err(), "never overwrites");
        std::fs::write(&path, "nothex").unwrap();
        assert!(matches!(NodeKey::load(&path), Err(KeyError::Format(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
