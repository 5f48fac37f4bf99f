//! Cases of the store conformance suite about commits: a batch is all or nothing, commits
//! may run concurrently, and a refused commit leaves the store writable.

use super::*;

pub(super) async fn batch_is_atomic(h: Harness) {
    let store = h.open().await;
    let base = task("t-1", 10);
    put(&*store, [base.clone()]).await;

    // One batch writing several things, the same task twice, the same setting twice.
    let mut step1 = with_status(base.clone(), TaskStatus::Assigned, 20);
    step1.assigned_robot = Some(rid("r1"));
    step1.history.push(HistoryEntry {
        status: TaskStatus::Assigned,
        at_ms: 20,
        robot_id: Some(rid("r1")),
        note: None,
    });
    let mut step2 = with_status(step1.clone(), TaskStatus::Active, 30);
    step2.history.push(HistoryEntry {
        status: TaskStatus::Active,
        at_ms: 30,
        robot_id: Some(rid("r1")),
        note: Some("started".into()),
    });
    let fresh = task("t-2", 25);
    store
        .commit(&batch([
            Write::Task(step1),
            robot_seen("r1", 20, Some("One"), None),
            Write::Task(fresh.clone()),
            Write::Task(step2.clone()),
            Write::Cursor {
                robot: rid("r1"),
                cursor: EventCursor { epoch: 7, seq: 3 },
            },
            Write::Setting {
                key: "k".into(),
                value: json("1"),
            },
            Write::Setting {
                key: "k".into(),
                value: json("2"),
            },
            Write::Audit(audit_entry(20, "task.assign")),
        ]))
        .await
        .unwrap();
    assert_eq!(store.get_task(&base.id).await.unwrap(), Some(step2.clone()));
    assert_eq!(
        store.get_task(&fresh.id).await.unwrap(),
        Some(fresh.clone())
    );
    assert_eq!(store.robots().await.unwrap().len(), 1);
    assert_eq!(
        store.cursors().await.unwrap().get(&rid("r1")),
        Some(&EventCursor { epoch: 7, seq: 3 })
    );
    assert_eq!(store.setting("k").await.unwrap(), Some(json("2")));
    assert_eq!(store.audit(10).await.unwrap().len(), 1);

    // A failing batch changes nothing, including writes before the failure.
    let mut keyed = task("t-keyed", 40);
    keyed.idempotency_key = Some("k1".into());
    put(&*store, [keyed]).await;
    let mut step3 = with_status(step2.clone(), TaskStatus::Completed, 50);
    step3.history.push(HistoryEntry {
        status: TaskStatus::Completed,
        at_ms: 50,
        robot_id: Some(rid("r1")),
        note: None,
    });
    let mut clash = task("t-clash", 50);
    clash.idempotency_key = Some("k1".into());
    let result = store
        .commit(&batch([
            Write::Task(step3),
            robot_seen("r1", 50, Some("Renamed"), Some("x")),
            robot_seen("r2", 50, None, None),
            Write::Cursor {
                robot: rid("r1"),
                cursor: EventCursor { epoch: 8, seq: 1 },
            },
            Write::Setting {
                key: "k".into(),
                value: json("3"),
            },
            Write::Audit(audit_entry(50, "task.complete")),
            Write::Task(clash),
        ]))
        .await;
    assert!(
        matches!(&result, Err(StoreError::DuplicateIdempotencyKey(k)) if k == "k1"),
        "{result:?}"
    );
    assert_eq!(store.get_task(&base.id).await.unwrap(), Some(step2));
    assert_eq!(
        store.robots().await.unwrap(),
        vec![RobotRecord {
            id: rid("r1"),
            name: Some("One".into()),
            model: None,
            first_seen_ms: 20,
            last_seen_ms: 20,
        }]
    );
    assert_eq!(
        store.cursors().await.unwrap().get(&rid("r1")),
        Some(&EventCursor { epoch: 7, seq: 3 })
    );
    assert_eq!(store.setting("k").await.unwrap(), Some(json("2")));
    assert_eq!(store.audit(10).await.unwrap().len(), 1);
    assert_eq!(store.get_task(&tid("t-clash")).await.unwrap(), None);

    // An empty batch is fine.
    store.commit(&WriteBatch::default()).await.unwrap();
}

pub(super) async fn concurrent_commits(h: Harness) {
    let store = h.open().await;
    let writers = (0..6).map(|w| {
        let store = store.clone();
        async move {
            let mut t = task(&format!("t-{w}"), w);
            for step in 0..5u64 {
                t.updated_ms = 100 + step;
                if step > 0 {
                    t.history.push(HistoryEntry {
                        status: TaskStatus::Queued,
                        at_ms: 100 + step,
                        robot_id: None,
                        note: Some(format!("step {step}")),
                    });
                }
                store
                    .commit(&batch([
                        Write::Task(t.clone()),
                        robot_seen(&format!("r{w}"), 100 + step, None, None),
                        Write::Audit(audit_entry(step, "tick")),
                    ]))
                    .await
                    .expect("concurrent commit");
            }
            t
        }
    });
    let tasks = join_all(writers).await;
    for t in &tasks {
        assert_eq!(store.get_task(&t.id).await.unwrap().as_ref(), Some(t));
    }
    assert_eq!(store.robots().await.unwrap().len(), 6);
    assert_eq!(store.audit(usize::MAX).await.unwrap().len(), 30);
}

/// Writes the database refuses (a full disk, a failed COMMIT) fail alone: the store takes the
/// next batch as soon as the database does, on every pooled connection.
pub(super) async fn failed_commit_leaves_store_writable(h: Harness) {
    let (store, refused) = h.open_refusing().await;
    store
        .commit(&batch([Write::Setting {
            key: "before".into(),
            value: json("0"),
        }]))
        .await
        .expect("a commit before any refusal");
    // More refusals than the pool has connections, so that any connection a refusal could
    // spoil is spoiled.
    for i in 0..10 {
        let result = store.commit(&refused).await;
        assert!(
            matches!(&result, Err(StoreError::Backend(_))),
            "refused commit {i}: {result:?}"
        );
    }
    let health = store.write_health();
    assert!(!health.writable(), "{health:?}");
    assert!(health.failures_total >= 10, "{health:?}");
    // A probe (at most one a second) finds that the database takes small writes again.
    tokio::time::sleep(crate::store::health::PROBE_INTERVAL + Duration::from_millis(100)).await;
    let health = store.probe_writes().await;
    assert!(health.writable(), "after a successful probe: {health:?}");
    let probes = health.failures_total;
    // Every later batch the database accepts commits, whichever connection it gets.
    for i in 0..20 {
        let key = format!("after.{i}");
        store
            .commit(&batch([
                Write::Setting {
                    key: key.clone(),
                    value: json(&i.to_string()),
                },
                Write::Audit(audit_entry(100 + i, "test.accepted")),
            ]))
            .await
            .unwrap_or_else(|e| panic!("commit {i} after the refusals: {e}"));
        assert_eq!(
            store.setting(&key).await.unwrap(),
            Some(json(&i.to_string()))
        );
    }
    let audit = store.audit(100).await.unwrap();
    assert_eq!(audit.len(), 20, "refused entries are not stored");
    assert!(audit.iter().all(|a| a.action == "test.accepted"));

    // A refusal marks writes failing again; the next write that works clears it, a
    // replica request as well as a commit.
    assert!(store.commit(&refused).await.is_err());
    assert!(!store.write_health().writable());
    assert_eq!(store.write_health().failures_total, probes + 1);
    store.submit_request(&json("{}"), 1).await.unwrap();
    assert!(store.write_health().writable());
}
