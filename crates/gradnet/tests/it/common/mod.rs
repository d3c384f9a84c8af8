//! Helpers for tests that run the real `gradnet` binary on loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_gradnet");

pub(crate) mod chaos;
pub(crate) mod devnet;
pub(crate) mod inference;
pub(crate) mod ledger;
pub(crate) mod load;
pub(crate) mod net;

/// The inference API URL a node prints once it serves (read from its piped
/// stdout, which is drained from then on).
pub(crate) fn listening_url(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("gradnet node listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    rx
}

/// A node process; killed when dropped.
pub(crate) struct Node {
    pub child: Child,
    pub url: String,
}

impl Node {
    /// A node in development mode (unsigned hub writes accepted).
    pub(crate) fn start(data_dir: &Path, extra: &[&str]) -> Node {
        Self::start_with(data_dir, &[&["--dev-mode"], extra].concat())
    }

    /// `start` with more environment (a crash point).
    pub(crate) fn start_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Node {
        Self::start_with_env(data_dir, &[&["--dev-mode"], extra].concat(), env)
    }

    /// A node as strangers meet it: hub writes must be signed.
    pub(crate) fn start_strict(data_dir: &Path, extra: &[&str]) -> Node {
        Self::start_with(data_dir, extra)
    }

    fn start_with(data_dir: &Path, extra: &[&str]) -> Node {
        Self::start_with_env(data_dir, extra, &[])
    }

    fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Node {
        let mut child = Command::new(BIN)
            .args(["node", "start", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("GRADNET_LOG", "warn")
            // tests run side by side on few cores: candle's spinning pool
            // would fight itself across nodes
            .env("GRADNET_LLM_THREADS", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gradnet");
        let url = listening_url(&mut child)
            .recv_timeout(Duration::from_secs(60))
            .expect("node did not start");
        Node { child, url }
    }

    /// Stops the node with SIGTERM and waits for it (a clean shutdown).
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    pub(crate) fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("--node")
            .arg(&self.url)
            .args(args)
            .env("GRADNET_LOG", "warn")
            .output()
            .expect("run gradnet")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::new()
}

pub(crate) use gradnet_types::test_utils::{models_dir, real_model};

/// GET `url` as JSON (any status).
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    http().get(url).send().await.unwrap().json().await.unwrap()
}

pub(crate) async fn post(url: &str, body: Value) -> (u16, Value) {
    let r = http().post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates `repo`, a version, and uploads `bytes` as `file`; returns (model ref, cid).
pub(crate) async fn publish(
    base: &str,
    repo: &str,
    file: &str,
    bytes: Vec<u8>,
) -> (String, String) {
    let (s, _) = post(
        &format!("{base}/api/v0/models"),
        json!({"name": repo, "task": "test"}),
    )
    .await;
    assert_eq!(s, 201);
    let (s, v) = post(
        &format!("{base}/api/v0/models/{repo}/versions"),
        json!({"notes": "", "is_major": false}),
    )
    .await;
    assert_eq!(s, 201);
    let ver = v["versionString"].as_str().unwrap().to_string();
    let (s, up) = upload(base, repo, &ver, file, bytes).await;
    assert_eq!(s, 201, "{up}");
    (
        format!("{repo}@{ver}/{file}"),
        up["cid"].as_str().unwrap().to_string(),
    )
}

pub(crate) async fn upload(
    base: &str,
    repo: &str,
    ver: &str,
    file: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(file.to_string());
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = http()
        .post(format!("{base}/api/v0/models/{repo}/versions/{ver}/files"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[allow(unused_imports)]
pub(crate) use gradnet_runtime::generated::{nest, pattern_image};

pub(crate) fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|e| flatten(e, out)),
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        other => panic!("unexpected {other}"),
    }
}
