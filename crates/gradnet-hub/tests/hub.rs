//! The hub against its own files: chunked blobs, repositories and
//! versions, references, limits and corruption.

use futures::TryStreamExt;
use gradnet_hub::{Hub, HubConfig, HubError, RepoSpec, CHUNK_SIZE};
use gradnet_types::{ContentId, ModelRef};

fn data(n: usize) -> Vec<u8> {
    let mut x = 0x9e3779b9u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn open(dir: &std::path::Path) -> Hub {
    Hub::open(
        dir,
        HubConfig {
            max_blob_size: 64 << 20,
            ..Default::default()
        },
    )
    .unwrap()
}

async fn range(hub: &Hub, cid: &ContentId, a: u64, b: u64) -> Vec<u8> {
    let (_, s) = hub.read_range(cid, a, b).await.unwrap();
    let parts: Vec<bytes::Bytes> = s.try_collect().await.unwrap();
    parts.concat()
}

#[tokio::test]
async fn blobs_round_trip_in_chunks_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path());
    let bytes = data(2 * CHUNK_SIZE + 12345);
    let mut w = hub.writer().unwrap();
    for piece in bytes.chunks(100_003) {
        w.write(piece).await.unwrap();
    }
    let info = w.finish().await.unwrap();
    assert_eq!(info.cid, ContentId::of(&bytes));
    assert_eq!(info.size, bytes.len() as u64);
    assert_eq!(hub.manifest(&info.cid).unwrap().chunks.len(), 3);
    assert_eq!(hub.read_all(&info.cid).await.unwrap(), bytes);
    let n = bytes.len() as u64;
    for (a, b) in [
        (0, n),
        (0, 1),
        (5, 5),
        (CHUNK_SIZE as u64 - 3, CHUNK_SIZE as u64 + 7),
        (n - 10, n),
        (1, 2 * CHUNK_SIZE as u64),
    ] {
        assert_eq!(
            range(&hub, &info.cid, a, b).await,
            &bytes[a as usize..b as usize],
            "{a}..{b}"
        );
    }
    assert!(matches!(
        hub.read_range(&info.cid, 10, n + 1).await,
        Err(HubError::Invalid(_))
    ));
    // storing it again dedups
    let again = hub.put_bytes(&bytes).await.unwrap();
    assert_eq!(again, info);
    assert_eq!(hub.bytes_stored().unwrap(), n);
    // empty blob
    let empty = hub.put_bytes(&[]).await.unwrap();
    assert_eq!(empty.cid, ContentId::of(&[]));
    assert!(hub.read_all(&empty.cid).await.unwrap().is_empty());
}

#[tokio::test]
async fn corrupt_chunks_are_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path());
    let bytes = data(CHUNK_SIZE + 100);
    let info = hub.put_bytes(&bytes).await.unwrap();
    let m = hub.manifest(&info.cid).unwrap();
    // flip one byte in the second chunk's file
    let h = hex::encode(m.chunks[1]);
    let path = dir.path().join("chunks").join(&h[..2]).join(&h);
    let mut c = std::fs::read(&path).unwrap();
    c[7] ^= 1;
    std::fs::write(&path, c).unwrap();
    assert!(matches!(
        hub.read_all(&info.cid).await,
        Err(HubError::Corrupt { .. })
    ));
    // the first chunk is intact and may be read; the stream fails before the second's bytes
    let (_, s) = hub.read_range(&info.cid, 0, info.size).await.unwrap();
    let parts: Vec<_> = s.collect::<Vec<_>>().await;
    assert_eq!(parts[0].as_ref().unwrap().len(), CHUNK_SIZE);
    assert!(matches!(parts[1], Err(HubError::Corrupt { .. })));
    assert_eq!(parts.len(), 2);
    // a range that starts in the bad chunk fails before anything is returned
    assert!(matches!(
        hub.read_range(&info.cid, CHUNK_SIZE as u64, info.size)
            .await,
        Err(HubError::Corrupt { .. })
    ));
    // a missing chunk file too
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        hub.read_all(&info.cid).await,
        Err(HubError::Corrupt { .. })
    ));
}

use futures::StreamExt;

#[tokio::test]
async fn limits_and_abandoned_uploads_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(
        dir.path(),
        HubConfig {
            max_blob_size: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    let mut w = hub.writer().unwrap();
    w.write(&[0; 600]).await.unwrap();
    assert!(matches!(
        w.write(&[0; 600]).await,
        Err(HubError::TooLarge { limit: 1000 })
    ));
    drop(w);
    let big = open(dir.path().join("b").as_path());
    let mut w = big.writer().unwrap();
    w.write(&data(CHUNK_SIZE * 2)).await.unwrap();
    drop(w); // a cut-off upload
             // the chunk write in flight finishes on its own thread; its folder goes then
    let staging = dir.path().join("b/staging");
    for _ in 0..500 {
        if std::fs::read_dir(&staging).unwrap().count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    assert_eq!(
        walk(&dir.path().join("b/chunks")),
        0,
        "no chunk of an unfinished upload is kept"
    );
    assert_eq!(big.bytes_stored().unwrap(), 0);
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

const ANON: gradnet_hub::Writer = gradnet_hub::Writer::Anonymous;

#[tokio::test]
async fn repositories_versions_files_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cid;
    {
        let hub = open(dir.path());
        let spec = RepoSpec {
            name: "mnist".into(),
            description: "digits".into(),
            tags: vec!["vision".into()],
            ..Default::default()
        };
        hub.create_repo(spec.clone(), &ANON).unwrap();
        assert!(matches!(
            hub.create_repo(spec, &ANON),
            Err(HubError::AlreadyExists(_))
        ));
        assert!(matches!(
            hub.create_repo(
                RepoSpec {
                    name: "../x".into(),
                    ..Default::default()
                },
                &ANON
            ),
            Err(HubError::Invalid(_))
        ));
        assert_eq!(
            hub.create_version("mnist", "first".into(), false, &ANON)
                .unwrap()
                .version,
            "1.00"
        );
        assert_eq!(
            hub.create_version("mnist", "fix".into(), false, &ANON)
                .unwrap()
                .version,
            "1.01"
        );
        assert_eq!(
            hub.create_version("mnist", "new arch".into(), true, &ANON)
                .unwrap()
                .version,
            "2.00"
        );
        assert!(matches!(
            hub.create_version("nope", String::new(), false, &ANON),
            Err(HubError::NotFound(_))
        ));
        let info = hub.put_bytes(b"onnx bytes").await.unwrap();
        cid = info.cid;
        hub.add_file("mnist", "1.01", "model.onnx", info, &ANON)
            .unwrap();
        assert!(matches!(
            hub.add_file("mnist", "9.00", "model.onnx", info, &ANON),
            Err(HubError::NotFound(_))
        ));
        let r: ModelRef = "mnist@1.01/model.onnx".parse().unwrap();
        assert_eq!(hub.resolve(&r).unwrap(), cid);
        let latest: ModelRef = "mnist/model.onnx".parse().unwrap();
        assert!(
            matches!(hub.resolve(&latest), Err(HubError::NotFound(_))),
            "2.00 has no file"
        );
    }
    let hub = open(dir.path());
    assert_eq!(hub.list_repos().unwrap().len(), 1);
    assert_eq!(hub.repo("mnist").unwrap().tags, vec!["vision".to_string()]);
    let versions: Vec<_> = hub
        .list_versions("mnist")
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, ["1.00", "1.01", "2.00"]);
    let files = hub.list_files("mnist", "1.01").unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!((files[0].cid, files[0].size), (cid, 10));
    assert_eq!(hub.read_all(&cid).await.unwrap(), b"onnx bytes");
    assert!(hub.list_files("mnist", "1.00").unwrap().is_empty());
}
