//! `gradnet zk setup|prove|verify`: compile an ONNX model to a Groth16
//! circuit, make its keys (and an accuracy report), prove an inference,
//! check a proof.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gradnet_client::NodeClient as Client;
use gradnet_types::ContentId;
use gradnet_zk::keys::{proving_key_from_bytes, proving_key_to_bytes};
use gradnet_zk::keys::{
    META_FILE as META, PROVING_KEY_FILE as PROVING_KEY, VERIFYING_KEY_FILE as VERIFYING_KEY,
};
use gradnet_zk::{accuracy, onnx, ProofBundle, QuantModel, VerifyingKey};
use serde_json::{json, Value};

use crate::commands::infer::read_input;

/// 2^13: EZKL's calibrated scale for the benchmark models, and enough
/// that their quantized argmax agrees with float inference.
pub(crate) const DEFAULT_FRAC_BITS: u32 = 13;

pub(crate) async fn run(c: &Client, cmd: ZkCmd) -> Result<()> {
    match cmd {
        ZkCmd::Setup(a) => setup(c, a).await,
        ZkCmd::Prove {
            model,
            keys,
            input,
            out,
        } => {
            let bundle = prove(&model, &keys, &read_input(&input)?)?;
            let text = serde_json::to_string_pretty(&bundle)?;
            match out {
                Some(p) => {
                    std::fs::write(&p, text)?;
                    eprintln!("proof written to {}", p.display());
                }
                None => println!("{text}"),
            }
            Ok(())
        }
        ZkCmd::Verify { proof, vk } => {
            let bundle: ProofBundle = serde_json::from_slice(
                &std::fs::read(&proof).with_context(|| format!("reading {}", proof.display()))?,
            )
            .context("not a proof file from `gradnet zk prove`")?;
            let vk = load_vk(c, &vk).await?;
            let started = Instant::now();
            bundle.verify(&vk)?;
            println!(
                "proof valid ({:.2} ms): model {}, output {:?}",
                started.elapsed().as_secs_f64() * 1e3,
                bundle.model_hash,
                bundle.output_f32()
            );
            Ok(())
        }
    }
}

fn compile(path: &Path, frac_bits: u32) -> Result<(Vec<u8>, QuantModel)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = onnx::compile(&bytes, frac_bits)?;
    Ok((bytes, model))
}

/// Every number in a JSON value, in order: `[[..]]`, or `{"name": [[..]]}`.
pub(crate) fn flatten(v: &Value) -> Result<Vec<f32>> {
    fn walk(v: &Value, out: &mut Vec<f32>) -> Result<()> {
        match v {
            Value::Number(n) => out.push(n.as_f64().context("not a number")? as f32),
            Value::Array(a) => a.iter().try_for_each(|x| walk(x, out))?,
            Value::Object(o) if o.len() == 1 => walk(o.values().next().unwrap(), out)?,
            other => bail!("the input must be numbers in (nested) arrays, got {other}"),
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(v, &mut out)?;
    Ok(out)
}

async fn setup(c: &Client, a: ZkSetupArgs) -> Result<()> {
    let (onnx_bytes, model) = compile(&a.model, a.frac_bits)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.model.with_extension("zk"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    eprintln!(
        "circuit: {} ops, about {} constraints, {} public inputs",
        model.ops.len(),
        model.constraint_estimate(),
        1 + model.inputs() + model.outputs()
    );
    let samples: Vec<Vec<f32>> = match &a.test_set {
        Some(p) => {
            let v: Value =
                serde_json::from_slice(&std::fs::read(p)?).context("test set is not JSON")?;
            v.as_array()
                .context("the test set is a JSON array of inputs")?
                .iter()
                .map(flatten)
                .collect::<Result<_>>()?
        }
        None => (0..a.samples)
            .map(|s| gradnet_runtime::generated::weights(model.inputs(), 1000 + s as u64, 1.0))
            .collect(),
    };
    let report = accuracy::report(&onnx_bytes, &model, &samples)?;
    eprintln!(
        "accuracy on {} samples at 2^{}: max abs error {:.3e}, mean {:.3e}, argmax agreement {:.1}%",
        report.samples,
        report.frac_bits,
        report.max_abs_error,
        report.mean_abs_error,
        report.argmax_agreement * 100.0
    );
    let started = Instant::now();
    let keys = gradnet_zk::setup(&model, &mut rand::rngs::OsRng)?;
    let setup_s = started.elapsed().as_secs_f64();
    let mut meta = meta(&onnx_bytes, &model, &keys);
    meta["setup_seconds"] = json!(setup_s);
    meta["accuracy"] = json!(report);
    let mut meta = write_keys(&out, &keys, &meta)?;
    if let Some(target) = &a.upload {
        let (repo, version) = target
            .split_once('@')
            .context("--upload takes REPO@VERSION")?;
        let stem = a
            .model
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model");
        for (file, name) in [(PROVING_KEY, "pk"), (VERIFYING_KEY, "vk")] {
            let r = c
                .upload(
                    repo,
                    version,
                    &out.join(file),
                    &format!("{stem}.zk.{name}"),
                    false,
                )
                .await?;
            eprintln!(
                "uploaded {stem}.zk.{name} → {}",
                r["cid"].as_str().unwrap_or("")
            );
        }
        meta["hub"] = json!(target);
        std::fs::write(out.join(META), serde_json::to_vec_pretty(&meta)?)?;
    }
    eprintln!(
        "setup {setup_s:.2} s; keys in {} (proving key {} bytes)",
        out.display(),
        meta["proving_key_bytes"]
    );
    println!("{}", serde_json::to_string_pretty(&meta)?);
    Ok(())
}

/// What `zk.json` says about a model's keys.
pub(crate) fn meta(onnx: &[u8], model: &QuantModel, keys: &gradnet_zk::Keys) -> Value {
    json!({
        "model": ContentId::of(onnx).to_string(),
        "model_hash": hex::encode(model.hash()),
        "frac_bits": model.frac_bits,
        "input_shape": model.input_shape,
        "output_shape": model.output_shape,
        "constraints": model.constraint_estimate(),
        "verifying_key": keys.verifying.id().to_string(),
    })
}

/// Writes both keys and `meta` with the proving key's id and size into
/// `dir`; returns that `meta`.
pub(crate) fn write_keys(dir: &Path, keys: &gradnet_zk::Keys, meta: &Value) -> Result<Value> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pk = proving_key_to_bytes(&keys.proving);
    std::fs::write(dir.join(PROVING_KEY), &pk)?;
    std::fs::write(dir.join(VERIFYING_KEY), keys.verifying.to_bytes())?;
    let mut meta = meta.clone();
    meta["proving_key"] = json!(ContentId::of(&pk).to_string());
    meta["proving_key_bytes"] = json!(pk.len());
    std::fs::write(dir.join(META), serde_json::to_vec_pretty(&meta)?)?;
    Ok(meta)
}

/// Reads a keys directory's `zk.json` and checks it is for this model.
fn keys_for(model_path: &Path, keys: &Path) -> Result<QuantModel> {
    let meta: Value = serde_json::from_slice(
        &std::fs::read(keys.join(META))
            .with_context(|| format!("reading {}", keys.join(META).display()))?,
    )?;
    let frac_bits = meta["frac_bits"]
        .as_u64()
        .context("zk.json has no frac_bits")? as u32;
    let (_, model) = compile(model_path, frac_bits)?;
    if meta["model_hash"] != hex::encode(model.hash()) {
        bail!(
            "the keys in {} are for model {}, not this one ({})",
            keys.display(),
            meta["model_hash"],
            hex::encode(model.hash())
        );
    }
    Ok(model)
}

pub(crate) fn prove(model_path: &Path, keys: &Path, input: &Value) -> Result<ProofBundle> {
    let model = keys_for(model_path, keys)?;
    let pk = proving_key_from_bytes(&std::fs::read(keys.join(PROVING_KEY))?)?;
    let x = model.quantize(&flatten(input)?)?;
    let started = Instant::now();
    let (y, proof) = gradnet_zk::prove(&model, &pk, &x)?;
    eprintln!("proved in {:.2} s", started.elapsed().as_secs_f64());
    Ok(ProofBundle::new(
        model.hash(),
        model.frac_bits,
        x,
        y,
        &proof,
    ))
}

/// A verifying key from a file, or by content id from the node's hub.
async fn load_vk(c: &Client, vk: &str) -> Result<VerifyingKey> {
    let path = PathBuf::from(vk);
    let bytes = if path.exists() {
        std::fs::read(&path)?
    } else if ContentId::looks_like(vk) {
        let cid: ContentId = vk.parse()?;
        let tmp = tempfile::NamedTempFile::new()?;
        c.download(&cid, tmp.path(), true).await?;
        std::fs::read(tmp.path())?
    } else {
        bail!("--vk {vk}: no such file, and not a content id");
    };
    Ok(VerifyingKey::from_bytes(&bytes)?)
}

#[derive(Subcommand)]
pub(crate) enum ZkCmd {
    /// Compile an ONNX model to a circuit, generate its keys once, and
    /// report its accuracy against float inference.
    Setup(ZkSetupArgs),
    /// Run the circuit on an input and prove its output.
    Prove {
        /// The ONNX model the keys were made for.
        model: PathBuf,
        /// The directory `zk setup` wrote.
        #[arg(long)]
        keys: PathBuf,
        /// Input as JSON (numbers in nested arrays, or `{"name": [...]}`), or `@file`.
        #[arg(long)]
        input: String,
        /// Write the proof here instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Check a proof file against a verifying key.
    Verify {
        /// A proof file from `zk prove`.
        proof: PathBuf,
        /// The verifying key: a file, or its content id in the node's hub.
        #[arg(long)]
        vk: String,
    },
}

#[derive(Args)]
pub(crate) struct ZkSetupArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Fraction bits of the fixed-point scale: values are integers at 2^F.
    #[arg(long, default_value_t = crate::commands::zk::DEFAULT_FRAC_BITS)]
    pub frac_bits: u32,
    /// Where to write the keys [default: MODEL with extension .zk].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Random inputs in [-1, 1) for the accuracy report.
    #[arg(long, default_value_t = 256)]
    pub samples: usize,
    /// A JSON array of inputs for the accuracy report instead.
    #[arg(long)]
    pub test_set: Option<PathBuf>,
    /// Also upload both keys into this hub version (REPO@VERSION).
    #[arg(long)]
    pub upload: Option<String>,
}
