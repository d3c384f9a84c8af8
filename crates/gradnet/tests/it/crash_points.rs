//! Validators killed at the worst moments, by crash points armed in their
//! environment (`gradnet_types::crash`, an abort with no cleanup): a block
//! decided and not yet stored, a block written in the store's transaction
//! and not yet committed, a block from block sync before its commit, an
//! upload with its chunks on disk and not finished, and one with its
//! chunks moved but no manifest; then one validator's disk full. Each one
//! restarts to the same blocks as the others, its hub serves no torn blob
//! and takes the upload again, and every transaction accepted meanwhile
//! lands once.

use std::process::Command;
use std::time::{Duration, Instant};

use alloy_primitives::Address;
use gradnet_ledger::genesis::{address_of, dev_keys};
use serde_json::json;

use crate::common;
use common::ledger::*;
use common::load::{assert_same_blocks, Traffic};
use common::net::{Net, CHAIN_ID};

/// A tmpfs of `mb` MiB mounted on `dir` (its files kept), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, mb: u64) -> SmallDisk {
        let keep = tempfile::tempdir().unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(dir)
            .arg(keep.path())
            .status()
            .unwrap();
        assert!(status.success());
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "mounting a {mb} MiB tmpfs on {} (the disk-full case needs root)",
            dir.display()
        );
        let copied = keep.path().join(dir.file_name().unwrap());
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("cp -a {}/. {}", copied.display(), dir.display()))
            .status()
            .unwrap();
        assert!(status.success());
        SmallDisk(dir.to_path_buf())
    }

    /// Fills what is left of it; returns the filler to remove.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.0.join("filler");
        // dd stops with "No space left on device": that is the point
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=1M"])
            .arg(format!("of={}", filler.display()))
            .stderr(std::process::Stdio::null())
            .status();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn blob_of(api: &str, cid: &str) -> Option<Vec<u8>> {
    let r = reqwest::blocking::get(format!("{api}/api/v0/blobs/{cid}")).ok()?;
    r.status().is_success().then(|| r.bytes().unwrap().to_vec())
}

fn upload(api: &str, file: &std::path::Path) -> Result<String, String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = gradnet_client::NodeClient::new(api);
        let v = c
            .upload_blob(file, "weights.bin", true)
            .await
            .map_err(|e| e.to_string())?;
        Ok(v["cid"].as_str().unwrap_or_default().to_string())
    })
}

#[test]
fn validators_crashed_at_every_point_restart_to_the_same_chain() {
    let key = dev_keys(1)[0];
    let me = address_of(&key).unwrap();
    let mut net = Net::new(4, &me);
    let disk = SmallDisk::mount(&net.dirs[3], 96);
    let mut apis: Vec<String> = (0..4).map(|i| net.start_env(i, &[])).collect();
    let url0 = net.url(0);
    wait_until(60, "4 validators commit 3 blocks", || {
        (0..4).all(|i| head(&net.url(i)) >= 3)
    });

    // transfers into validator 0 all along
    let sink = Address::repeat_byte(0x77);
    let traffic = Traffic {
        key,
        chain_id: CHAIN_ID,
        urls: vec![url0.clone()],
        sink,
        model: None,
        every: Duration::from_millis(30),
    }
    .start();
    let mut table: Vec<(String, String)> = vec![];
    let recover = |net: &mut Net, i: usize, what: &str, table: &mut Vec<(String, String)>| {
        let t = Instant::now();
        let api = net.start_env(i, &[]);
        let target = head(&url0);
        wait_until(
            90,
            &format!("validator {i} catches up after {what}"),
            || head(&net.url(i)) >= target,
        );
        let agreed = net.assert_agree(&[0, 1, 2, 3]);
        table.push((
            what.to_string(),
            format!("recovered in {:.1?}, {agreed} blocks agree", t.elapsed()),
        ));
        api
    };

    // decided but not stored; written but not committed
    for point in ["consensus-commit@3", "store-commit@3"] {
        net.kill(2);
        net.start_env(2, &[("GRADNET_CRASH_AT", point)]);
        let status = net.wait_exit(2, 60);
        assert!(!status.success(), "{point}: {status}");
        apis[2] = recover(&mut net, 2, point, &mut table);
    }

    // during block sync: behind by 15 blocks, crashed on its 2nd synced block
    net.kill(1);
    let h = head(&url0);
    wait_until(60, "15 blocks without validator 1", || {
        head(&url0) >= h + 15
    });
    net.start_env(1, &[("GRADNET_CRASH_AT", "sync-commit@2")]);
    let status = net.wait_exit(1, 60);
    assert!(!status.success(), "sync-commit: {status}");
    apis[1] = recover(&mut net, 1, "sync-commit@2 (15 blocks behind)", &mut table);

    // hub uploads cut off: after 2 chunks on disk, after the first chunk moved
    let dir = tempfile::tempdir().unwrap();
    for (k, point) in ["hub-chunk@2", "hub-finish@1"].into_iter().enumerate() {
        // a new file each time: chunks already stored are not moved again
        let file = dir.path().join(format!("weights{k}.bin"));
        let bytes: Vec<u8> = (0..(13u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(k as u32) >> 13) as u8)
            .collect();
        std::fs::write(&file, &bytes).unwrap();
        let cid = gradnet_types::cid::ContentId::of(&bytes).to_string();
        net.kill(2);
        let api = net.start_env(2, &[("GRADNET_CRASH_AT", point)]);
        assert!(
            upload(&api, &file).is_err(),
            "{point}: the upload went through"
        );
        let status = net.wait_exit(2, 60);
        assert!(!status.success(), "{point}: {status}");
        let api = recover(&mut net, 2, point, &mut table);
        assert!(
            blob_of(&api, &cid).is_none(),
            "{point}: a torn blob is served"
        );
        assert_eq!(
            upload(&api, &file).unwrap(),
            cid,
            "{point}: the upload again"
        );
        assert_eq!(
            blob_of(&api, &cid).as_deref(),
            Some(&bytes[..]),
            "{point}: the blob's bytes"
        );
        apis[2] = api;
    }

    // one validator's disk full: it stops committing, the others go on;
    // space freed, it catches up; restarted, its store opens consistent
    let filler = disk.fill();
    let t = Instant::now();
    let (h0, h3) = (head(&url0), head(&net.url(3)));
    wait_until(
        60,
        "the others go on while validator 3's disk is full",
        || head(&url0) >= h0 + 10,
    );
    let stuck = try_rpc(&net.url(3), "eth_blockNumber", json!([]))
        .ok()
        .and_then(|r| {
            r["result"]
                .as_str()
                .map(|s| u64::from_str_radix(&s[2..], 16).unwrap())
        });
    assert!(
        stuck.is_none_or(|s| s < h3 + 10),
        "validator 3 committed {} blocks on a full disk",
        stuck.unwrap_or(0) - h3
    );
    std::fs::remove_file(&filler).unwrap();
    if net.nodes_alive(3) {
        let target = head(&url0);
        wait_until(90, "validator 3 catches up once space is freed", || {
            head(&net.url(3)) >= target
        });
        table.push((
            "disk full on validator 3, then freed (no restart)".into(),
            format!("recovered in {:.1?}", t.elapsed()),
        ));
    }
    net.kill(3);
    recover(&mut net, 3, "disk full, then restarted", &mut table);

    let sent = traffic.stop();
    sent.assert_applied_once(&net.url(3), sink);
    let urls: Vec<String> = (0..4).map(|i| net.url(i)).collect();
    assert_same_blocks(&urls);
    let accepted = sent.accepted;
    table.push((
        "transactions accepted / applied / lost".into(),
        format!("{0} / {0} / 0", accepted.len()),
    ));
    for (what, v) in &table {
        eprintln!("{what:>50}: {v}");
    }
    drop(apis);
}
