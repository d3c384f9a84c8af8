//! The conformance corpus (tests/onnx: the fetched OCR and VAD models, the
//! generated MLP and CNNs, scikit-learn / XGBoost / LightGBM models trained
//! on the spot, hand-built ONNX-ML graphs) against onnxruntime, and the
//! output hashes compared across CPU generations: native, and the same
//! binary under `qemu-x86_64 -cpu Haswell` (AVX2 + FMA) and `-cpu Nehalem`
//! (SSE4.2, FMA emulated); on aarch64 under `qemu-aarch64` when
//! `GRADNET_ONNX_AARCH64_BIN` names a cross-built runner. Also: every
//! instruction set this CPU has, 4 threads, and fusion off give the same
//! hashes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const RUNNER: &str = env!("CARGO_BIN_EXE_onnx-conformance");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> String {
    std::env::var("GRADNET_PYTHON").unwrap_or_else(|_| {
        panic!("GRADNET_PYTHON is not set: run the tests with scripts/test (it makes the venv with onnxruntime, scikit-learn, ...)")
    })
}

/// Builds the corpus in `dir`: the generated models, then everything else
/// with onnxruntime's outputs.
fn build_corpus(dir: &Path) {
    let gen = dir.join("generated");
    std::fs::create_dir_all(&gen).unwrap();
    use gradnet_onnx::generated;
    for (name, bytes) in [
        ("mlp", generated::mlp(64, 128, 10, 3)),
        ("cnn", generated::cnn(5)),
        ("conv-chain", generated::conv_chain(4)),
        ("sigmoid-softmax", generated::sigmoid_softmax()),
        ("two-inputs", generated::two_inputs()),
    ] {
        std::fs::write(gen.join(format!("{name}.onnx")), bytes).unwrap();
    }
    let out = dir.join("corpus");
    let status = Command::new(python())
        .arg(root().join("tests/onnx/corpus.py"))
        .arg(&out)
        .arg("--add")
        .arg(&gen)
        .status()
        .expect("running tests/onnx/corpus.py");
    assert!(status.success(), "building the corpus failed");
}

/// Runs the runner (through `wrapper`, e.g. qemu) and returns each model's
/// hash; panics on a model that fails or is out of tolerance.
fn hashes(
    wrapper: &[&str],
    runner: &str,
    corpus: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (String, BTreeMap<String, String>) {
    let mut cmd = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(runner);
            c
        }
        None => Command::new(runner),
    };
    cmd.arg(corpus).args(args).envs(env.iter().copied());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {wrapper:?} {runner}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let label = format!("{wrapper:?} {env:?} {args:?}");
    assert!(
        out.status.success(),
        "{label}: conformance failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let isa = text.lines().next().unwrap_or("").to_string();
    let map = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().to_string())
        })
        .collect();
    (isa, map)
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn corpus_matches_onnxruntime_and_hashes_agree_across_cpus() {
    let dir = tempfile::tempdir().unwrap();
    build_corpus(dir.path());
    let corpus = dir.path().join("corpus");
    let models = std::fs::read_dir(&corpus)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "onnx")
        })
        .count();
    assert!(models >= 100, "the corpus has {models} models");

    let (isa, native) = hashes(&[], RUNNER, &corpus, &[], &[]);
    assert_eq!(native.len(), models);
    eprintln!(
        "native ({isa}): {} models agree with onnxruntime",
        native.len()
    );
    let mut runs: Vec<(String, BTreeMap<String, String>)> = vec![];
    runs.push((
        "4 threads".into(),
        hashes(&[], RUNNER, &corpus, &[], &["--threads", "4"]).1,
    ));
    runs.push((
        "fusion off".into(),
        hashes(
            &[],
            RUNNER,
            &corpus,
            &[("GRADNET_ONNX_NO_FUSION", "1")],
            &[],
        )
        .1,
    ));
    for isa in gradnet_onnx::Isa::available() {
        runs.push((
            format!("{isa:?} kernels"),
            hashes(
                &[],
                RUNNER,
                &corpus,
                &[("GRADNET_ONNX_ISA", isa.name())],
                &[],
            )
            .1,
        ));
    }
    assert!(
        have("qemu-x86_64"),
        "qemu-x86_64 is missing: scripts/test installs Debian's qemu-user"
    );
    for cpu in ["Haswell", "Nehalem"] {
        let (isa, h) = hashes(&["qemu-x86_64", "-cpu", cpu], RUNNER, &corpus, &[], &[]);
        eprintln!("qemu {cpu}: {isa}");
        runs.push((format!("qemu-x86_64 -cpu {cpu}"), h));
    }
    if let Ok(arm) = std::env::var("GRADNET_ONNX_AARCH64_BIN") {
        let sysroot = std::env::var("GRADNET_ONNX_AARCH64_SYSROOT")
            .unwrap_or_else(|_| "/usr/aarch64-linux-gnu".into());
        let (isa, h) = hashes(&["qemu-aarch64", "-L", &sysroot], &arm, &corpus, &[], &[]);
        eprintln!("qemu-aarch64: {isa}");
        runs.push(("aarch64".into(), h));
    }
    for (what, h) in &runs {
        let differ: Vec<&String> = native
            .keys()
            .filter(|k| h.get(*k) != native.get(*k))
            .collect();
        assert!(
            differ.is_empty(),
            "{what}: output hashes differ from native on {differ:?}"
        );
    }
    eprintln!(
        "same hashes: native, {}",
        runs.iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
}
