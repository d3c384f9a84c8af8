//! Builds the console in `web/` (npm ci once, then Vite) and embeds every
//! file of its output: the node serves it with no separate server and no
//! internet (no CDN links).

use std::path::{Path, PathBuf};
use std::process::Command;

fn npm(web: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(web)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "running npm {args:?} in {}: {e} (the console is built with npm)",
                web.display()
            )
        });
    assert!(status.success(), "npm {args:?} in {} failed", web.display());
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("reading web/dist").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../web")
        .canonicalize()
        .expect("web/");
    for p in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(p).display());
    }
    let lock = web.join("package-lock.json");
    let installed = web.join("node_modules/.package-lock.json");
    let stale = |a: &Path, b: &Path| match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => a.modified().ok() > b.modified().ok(),
        _ => true,
    };
    if stale(&lock, &installed) {
        npm(&web, &["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    }
    npm(&web, &["run", "build", "--silent"]);
    let dist = web.join("dist");
    let mut all = vec![];
    files(&dist, &mut all);
    all.sort();
    let mut src = String::from("/// The console's files by path (relative to its root).\npub static FILES: &[(&str, &[u8])] = &[\n");
    for f in &all {
        let rel = f
            .strip_prefix(&dist)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        src.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            f.display().to_string()
        ));
    }
    src.push_str("];\n");
    std::fs::write(
        PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("files.rs"),
        src,
    )
    .unwrap();
}
