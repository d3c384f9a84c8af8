//! Hub upload and download over loopback HTTP vs a plain file copy on the same
//! disk (both durable: the copy is fsynced, as the hub fsyncs its chunks), for
//! a large file; and the process's peak memory while doing it.
//! Usage: hub-throughput [SIZE_MB, default 500]

use std::io::Write;
use std::time::Instant;

use futures::StreamExt;
use gradnet_api::{ApiConfig, AppState};
use gradnet_hub::{Hub, HubConfig};
use gradnet_runtime::{OnnxRunner, RuntimeConfig};
use gradnet_types::{ContentId, NodeKey};

fn write_file(path: &std::path::Path, mb: usize) -> ContentId {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut h = blake3::Hasher::new();
    let block: Vec<u8> = gradnet_runtime::generated::weights(1 << 18, 3, 1.0)
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    for i in 0..mb {
        let mut b = block.clone();
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        f.write_all(&b).unwrap();
        h.update(&b);
    }
    f.into_inner().unwrap().sync_all().unwrap();
    ContentId::from_hash(h.finalize())
}

#[tokio::main]
async fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(500);
    let dir = tempfile::tempdir_in(
        std::env::var("GRADNET_BENCH_DIR").unwrap_or_else(|_| "target".into()),
    )
    .unwrap();
    let src = dir.path().join("big.bin");
    let cid = write_file(&src, mb);
    let size = (mb << 20) as f64;

    let hub = Hub::open(
        &dir.path().join("hub"),
        HubConfig {
            max_blob_size: 8 << 30,
            ..Default::default()
        },
    )
    .unwrap();
    let state = AppState::new(
        hub.clone(),
        OnnxRunner::new(RuntimeConfig::default()).unwrap(),
        NodeKey::generate(),
        ApiConfig {
            dev_mode: true,
            ..ApiConfig::default()
        },
    );
    let anon = gradnet_hub::Writer::Anonymous;
    hub.create_repo(
        gradnet_hub::RepoSpec {
            name: "big".into(),
            ..Default::default()
        },
        &anon,
    )
    .unwrap();
    hub.create_version("big", String::new(), false, &anon)
        .unwrap();
    let base = gradnet_bench::serve_in_process(state).await;
    let client = reqwest::Client::new();

    let mut rows = vec![];
    for round in 0..2 {
        // plain copy, fsynced
        let dst = dir.path().join(format!("copy{round}.bin"));
        let s = Instant::now();
        std::fs::copy(&src, &dst).unwrap();
        std::fs::File::open(&dst).unwrap().sync_all().unwrap();
        let copy = s.elapsed().as_secs_f64();
        std::fs::remove_file(&dst).unwrap();

        // upload through the API (streamed multipart)
        gradnet_bench::reset_peak_rss();
        let base_rss = gradnet_bench::peak_rss_mib();
        let s = Instant::now();
        let f = tokio::fs::File::open(&src).await.unwrap();
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 1 << 20)),
            size as u64,
        )
        .file_name(format!("big{round}.bin"));
        let r = client
            .post(format!("{base}/api/v0/models/big/versions/1.00/files"))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let up = s.elapsed().as_secs_f64();
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["cid"],
            cid.to_string()
        );
        // (a second upload of the same bytes does the same work: chunks are
        // written, hashed and fsynced before the store sees they exist)
        let up_rss = gradnet_bench::peak_rss_mib() - base_rss;

        // download through the API into a file, fsynced
        let dst = dir.path().join(format!("down{round}.bin"));
        let s = Instant::now();
        let r = client
            .get(format!("{base}/api/v0/blobs/{cid}"))
            .send()
            .await
            .unwrap();
        let mut out =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&dst).unwrap());
        let mut body = r.bytes_stream();
        while let Some(c) = body.next().await {
            out.write_all(&c.unwrap()).unwrap();
        }
        out.into_inner().unwrap().sync_all().unwrap();
        let down = s.elapsed().as_secs_f64();
        assert_eq!(std::fs::metadata(&dst).unwrap().len(), size as u64);
        std::fs::remove_file(&dst).unwrap();
        let rss = gradnet_bench::peak_rss_mib() - base_rss;
        rows.push((copy, up, down, up_rss, rss));
        println!(
            "round {}: copy {:.0} MB/s, upload {:.0} MB/s ({:.2}x copy), download {:.0} MB/s ({:.2}x copy), peak RSS growth {:.0} MiB",
            round + 1,
            size / copy / 1e6,
            size / up / 1e6,
            copy / up,
            size / down / 1e6,
            copy / down,
            rss
        );
    }
    let best = |i: usize| {
        rows.iter()
            .map(|r| [r.0, r.1, r.2][i])
            .fold(f64::MAX, f64::min)
    };
    println!(
        "{mb} MB file: upload {:.2}x and download {:.2}x of plain copy speed (best of 2); peak RSS growth {:.0} MiB",
        best(0) / best(1),
        best(0) / best(2),
        rows.iter().map(|r| r.4).fold(0.0, f64::max)
    );
}
