//! The raw Zenoh baseline: a plain router process and a counting subscriber process, no fms
//! logic, fed by the same flood publisher as the fms measurement. Also the helpers that
//! start child processes and make sure they die with us.

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use zenoh::Wait;

fn config(
    mode: &str,
    listen: Option<&str>,
    connect: Option<&str>,
) -> anyhow::Result<zenoh::Config> {
    let mut c = zenoh::Config::default();
    let set = |c: &mut zenoh::Config, k: &str, v: &str| {
        c.insert_json5(k, v)
            .map_err(|e| anyhow::anyhow!("zenoh config {k}: {e}"))
    };
    set(&mut c, "mode", &format!("{mode:?}"))?;
    if let Some(l) = listen {
        set(&mut c, "listen/endpoints", &format!("[{l:?}]"))?;
    }
    if let Some(e) = connect {
        set(&mut c, "connect/endpoints", &format!("[{e:?}]"))?;
    }
    set(&mut c, "scouting/multicast/enabled", "false")?;
    Ok(c)
}

/// Exits the process when stdin closes: the parent holds our stdin, so we never outlive it.
fn exit_with_parent(max: Duration) {
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for _ in stdin.lock().lines() {}
        std::process::exit(0);
    });
    std::thread::spawn(move || {
        std::thread::sleep(max);
        eprintln!("fms_bench child: time limit reached");
        std::process::exit(2);
    });
}

/// `fms_bench zenoh-router`: a plain Zenoh router, nothing else.
pub async fn router(listen: &str, max: Duration) -> anyhow::Result<()> {
    exit_with_parent(max);
    let _session = zenoh::open(config("router", Some(listen), None)?)
        .await
        .map_err(|e| anyhow::anyhow!("zenoh: {e}"))?;
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}

/// `fms_bench zenoh-sub`: counts samples on `key` and prints the running total every 50 ms.
/// With `listen`, the session is itself a router (the shape of fms_server: a router with
/// the subscriber in the same process); otherwise a client of `connect`.
pub async fn sub(
    key: &str,
    connect: Option<&str>,
    listen: Option<&str>,
    max: Duration,
) -> anyhow::Result<()> {
    exit_with_parent(max);
    let c = match listen {
        Some(l) => config("router", Some(l), None)?,
        None => config("client", None, connect)?,
    };
    let session = zenoh::open(c)
        .await
        .map_err(|e| anyhow::anyhow!("zenoh: {e}"))?;
    let count = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let (c2, b2) = (count.clone(), bytes.clone());
    let _sub = session
        .declare_subscriber(key)
        .callback(move |s| {
            c2.fetch_add(1, Ordering::Relaxed);
            b2.fetch_add(s.payload().len() as u64, Ordering::Relaxed);
        })
        .wait()
        .map_err(|e| anyhow::anyhow!("zenoh: {e}"))?;
    println!("ready");
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        println!(
            "count {} {}",
            count.load(Ordering::Relaxed),
            bytes.load(Ordering::Relaxed)
        );
    }
}

/// A child process that is killed when dropped; its stdout lines are handed to `on_line`.
pub struct ChildProc {
    _child: Child,
    pub pid: u32,
}

impl ChildProc {
    /// Starts `program args…`, then waits (up to `deadline`) for a stdout line for which
    /// `ready` returns Some; later lines go to `on_line`.
    pub async fn spawn<T>(
        program: &Path,
        args: &[String],
        deadline: Duration,
        ready: impl Fn(&str) -> Option<T>,
        on_line: impl Fn(&str) + Send + 'static,
    ) -> anyhow::Result<(Self, T)> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
        let pid = child.id().unwrap_or(0);
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let found = tokio::time::timeout(deadline, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(v) = ready(&line) {
                    return Some(v);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| anyhow::anyhow!("{} did not become ready", program.display()))?;
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                on_line(&line);
            }
        });
        Ok((Self { _child: child, pid }, found))
    }
}

/// A subscriber child's running count, fed from its stdout.
pub fn count_reader(count: Arc<AtomicU64>) -> impl Fn(&str) + Send + 'static {
    move |line: &str| {
        if let Some(n) = line
            .strip_prefix("count ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
        {
            count.store(n, Ordering::Relaxed);
        }
    }
}
