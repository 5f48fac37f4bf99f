//! Hardening: store failures. The server's data directory on a small tmpfs that the test
//! fills: writes must fail cleanly, `/readyz` must say so, and both must recover once the
//! disk has room again, without a restart. The tmpfs helpers are shared with other tests.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{json, Value};

use crate::support::{temp_dir, Fleet};

/// How long writes and readiness may take to come back once the disk has room (measured:
/// well under a second; the bound leaves headroom for a busy machine).
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

/// A tmpfs mounted on a fresh directory (needs root: `mount -t tmpfs`). Dropping it unmounts
/// it and removes the directory, also when the test panics.
pub(crate) struct Tmpfs {
    dir: PathBuf,
}

/// The file [`Tmpfs::fill`] writes.
const FILLER: &str = "filler";

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib` KiB on a fresh directory. Panics with the reason when it
    /// cannot (the tests that use it must run as root, as CI does).
    pub(crate) fn mount(tag: &str, size_kib: u32) -> Tmpfs {
        let dir = temp_dir(&format!("{tag}-tmpfs"));
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k,mode=0700")])
            .arg("tmpfs")
            .arg(&dir)
            .output();
        let failed = match out {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            Err(e) => Some(format!("cannot run mount: {e}")),
        };
        if let Some(why) = failed {
            let _ = std::fs::remove_dir(&dir);
            panic!(
                "cannot mount a {size_kib} KiB tmpfs on {} ({why}). This test fills a disk of \
                 its own and needs root (CAP_SYS_ADMIN) for `mount -t tmpfs`: run it as root, \
                 as CI does",
                dir.display()
            );
        }
        Tmpfs { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes a filler file until the filesystem is full (ENOSPC); returns the bytes written.
    pub(crate) fn fill(&self) -> u64 {
        let path = self.dir.join(FILLER);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        let mut written = 0u64;
        // Large chunks first, then single pages, so that not one page is left free.
        for chunk in [64 * 1024, 4096, 512, 1] {
            let buf = vec![0xa5u8; chunk];
            loop {
                match file.write(&buf) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                    Err(e) => panic!("cannot write {}: {e}", path.display()),
                }
            }
        }
        assert!(
            written > 0,
            "{} was full before filling",
            self.dir.display()
        );
        written
    }

    /// Deletes the filler file: the space it held is free again at once.
    pub(crate) fn free(&self) {
        let path = self.dir.join(FILLER);
        std::fs::remove_file(&path)
            .unwrap_or_else(|e| panic!("cannot delete {}: {e}", path.display()));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // A server killed on drop may still hold files: detach lazily if it is busy.
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            || Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .status()
                .is_ok_and(|s| s.success());
        if unmounted {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("could not unmount the tmpfs on {}", self.dir.display());
        }
    }
}

/// Starts a server (embedded router, no robots) whose `--data-dir` is `data_dir`; its
/// config and logs live in a directory of their own.
pub(crate) async fn start_server_on(data_dir: &Path, tag: &str) -> Fleet {
    let data_dir = data_dir.display().to_string();
    let mut fleet =
        Fleet::start_configured(0, tag, None, &[], "", &["--data-dir", &data_dir]).await;
    fleet.client = Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    fleet
}

fn new_task(n: u32) -> Value {
    json!({"target": {"x": 1.0 + f64::from(n % 7), "y": 0.5}, "priority": "normal"})
}

/// Fills the disk, then creates tasks until one fails (the first may still fit in space the
/// database already holds): it must fail in the error envelope, and `/readyz` must say why.
async fn fill_until_writes_fail(fleet: &Fleet, disk: &Tmpfs, round: u32) {
    let filled = disk.fill();
    eprintln!("round {round}: filled the tmpfs with {} KiB", filled / 1024);
    let mut n = round * 1000;
    let (status, body) = fleet
        .wait_up_to(Duration::from_secs(20), "a write to fail", || {
            n += 1;
            async move {
                let (status, body) = fleet.post("/api/tasks", new_task(n)).await;
                (status >= 500).then_some((status, body))
            }
        })
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "UNAVAILABLE", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );

    let (status, ready) = fleet.get("/readyz").await;
    assert_eq!(status, 503, "not ready while writes fail: {ready}");
    assert_eq!(ready["status"], "unavailable", "{ready}");
    assert_eq!(ready["store"], false, "{ready}");
    assert_eq!(ready["store_writable"], false, "{ready}");
    let reason = ready["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("write"), "a reason: {ready}");
    eprintln!("round {round}: /readyz on the full disk: {ready}");
    assert_eq!(fleet.metric("fms_store_writable").await, 0.0);
    assert_eq!(fleet.metric("fms_store_up").await, 1.0, "reads still work");
    assert!(fleet.metric("fms_store_write_failures_total").await >= f64::from(round));
    let (status, _) = fleet.get("/api/tasks").await;
    assert_eq!(status, 200, "reads keep working");
}

/// Creates tasks until one succeeds; returns it.
async fn create_until_it_works(fleet: &Fleet, first: u32) -> Value {
    let mut n = first;
    fleet
        .wait_up_to(RECOVERY_BOUND, "a write to succeed again", || {
            n += 1;
            async move {
                let (status, body) = fleet.post("/api/tasks", new_task(n)).await;
                (status == 201).then_some(body)
            }
        })
        .await
}

/// With the data directory on a full disk, writes answer 5xx in the error envelope and
/// `/readyz` 503 with the reason; once the disk has room, both recover without a restart:
/// readiness by itself (a probe write), writes at once. Twice, so that the second time shows
/// nothing was left spoiled by the first.
#[tokio::test]
async fn full_disk_fails_writes_and_readiness_then_both_recover_without_restart() {
    let disk = Tmpfs::mount("store-full", 4 * 1024);
    let mut fleet = start_server_on(disk.path(), "store-full").await;

    let (status, body) = fleet.post("/api/tasks", new_task(0)).await;
    assert_eq!(status, 201, "a write before the disk fills: {body}");
    let (status, body) = fleet.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fleet.metric("fms_store_writable").await, 1.0);

    // Round 1: after freeing, readiness comes back with no write traffic (the probe).
    fill_until_writes_fail(&fleet, &disk, 1).await;
    disk.free();
    let freed = Instant::now();
    fleet
        .wait_up_to(RECOVERY_BOUND, "/readyz to be 200 again", || async {
            (fleet.get("/readyz").await.0 == 200).then_some(())
        })
        .await;
    let ready_after = freed.elapsed();
    assert_eq!(fleet.metric("fms_store_writable").await, 1.0);
    // Every write works again, not just one (no pooled connection is left spoiled).
    for i in 0..10 {
        let (status, body) = fleet.post("/api/tasks", new_task(1500 + i)).await;
        assert_eq!(status, 201, "write {i} after recovery: {body}");
    }

    // Round 2: after freeing, the very next writes work, and they restore readiness.
    fill_until_writes_fail(&fleet, &disk, 2).await;
    disk.free();
    let freed = Instant::now();
    let created = create_until_it_works(&fleet, 2500).await;
    let write_after = freed.elapsed();
    let (status, ready) = fleet.get("/readyz").await;
    assert_eq!(
        status, 200,
        "a successful write restores readiness: {ready}"
    );
    assert_eq!(ready["store_writable"], true, "{ready}");
    for i in 0..10 {
        let (status, body) = fleet.post("/api/tasks", new_task(2600 + i)).await;
        assert_eq!(status, 201, "write {i} after recovery: {body}");
    }
    let id = created["id"].as_str().unwrap();
    let (status, task) = fleet.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(status, 200, "{task}");

    eprintln!(
        "recovery after the disk was freed: /readyz 200 after {} ms without traffic (round 1); \
         first write after {} ms (round 2)",
        ready_after.as_millis(),
        write_after.as_millis()
    );
    fleet.assert_server_alive();
    // Stop the server before the tmpfs goes, so it unmounts cleanly.
    fleet.server.kill().await.unwrap();
    drop(fleet);
    drop(disk);
}
