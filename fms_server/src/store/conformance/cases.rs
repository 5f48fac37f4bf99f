//! The cases of the store conformance suite; `conformance.rs` runs each against memory,
//! SQLite and PostgreSQL. (Commits: `commits.rs`; what replicas rely on: `replicas.rs`.)

use super::*;

pub(super) async fn task_round_trip_every_field(h: Harness) {
    let store = h.open().await;
    let t = full_task("t-full");
    put(&*store, [t.clone()]).await;
    assert_eq!(store.get_task(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(store.get_task(&tid("missing")).await.unwrap(), None);
    let listed = store.list_tasks(&filter(None, None, 10)).await.unwrap();
    assert_eq!(listed, vec![t.clone()]);
    assert_eq!(store.open_tasks().await.unwrap(), vec![t.clone()]);
    assert_eq!(
        store.task_by_idempotency_key("key-t-full").await.unwrap(),
        Some(t)
    );
}

pub(super) async fn task_round_trip_nones(h: Harness) {
    let store = h.open().await;
    let queued = task("t-min", 5);
    let mut bare = task("t-bare", 6);
    bare.history.clear();
    put(&*store, [queued.clone(), bare.clone()]).await;
    assert_eq!(
        store.get_task(&queued.id).await.unwrap(),
        Some(queued.clone())
    );
    assert_eq!(store.get_task(&bare.id).await.unwrap(), Some(bare.clone()));
    assert_eq!(
        store.list_tasks(&filter(None, None, 10)).await.unwrap(),
        vec![bare, queued]
    );
}

pub(super) async fn update_appends_only_new_history(h: Harness) {
    let store = h.open().await;
    let original = task("t-1", 100);
    put(&*store, [original.clone()]).await;

    // The caller's copy rewrites the stored entry and adds one: only the addition sticks.
    let mut next = original.clone();
    next.history[0].note = Some("rewritten".into());
    next.history[0].at_ms = 1;
    next.status = TaskStatus::Assigned;
    next.assigned_robot = Some(rid("tb3_1"));
    next.attempts = 1;
    next.updated_ms = 200;
    next.history.push(HistoryEntry {
        status: TaskStatus::Assigned,
        at_ms: 200,
        robot_id: Some(rid("tb3_1")),
        note: Some("nearest idle robot".into()),
    });
    put(&*store, [next.clone()]).await;
    let mut expected = next.clone();
    expected.history[0] = original.history[0].clone();
    assert_eq!(
        store.get_task(&next.id).await.unwrap(),
        Some(expected.clone())
    );

    // A copy with a shorter history updates the fields and leaves history alone.
    let mut stale = expected.clone();
    stale.history.truncate(1);
    stale.progress = 0.5;
    stale.location = Some("shelf 3".into());
    put(&*store, [stale]).await;
    expected.progress = 0.5;
    expected.location = Some("shelf 3".into());
    assert_eq!(
        store.get_task(&next.id).await.unwrap(),
        Some(expected.clone())
    );

    // Two more entries at once, and fields cleared back to None.
    let mut done = expected.clone();
    done.location = None;
    done.assigned_robot = None;
    for (status, at) in [(TaskStatus::Active, 300), (TaskStatus::Completed, 400)] {
        done.status = status;
        done.updated_ms = at;
        done.history.push(HistoryEntry {
            status,
            at_ms: at,
            robot_id: None,
            note: None,
        });
    }
    put(&*store, [done.clone()]).await;
    assert_eq!(store.get_task(&done.id).await.unwrap(), Some(done.clone()));
    assert_eq!(store.open_tasks().await.unwrap(), vec![]);
}

pub(super) async fn list_filters_and_order(h: Harness) {
    let store = h.open().await;
    let mut requested = task("t-req", 100);
    requested.robot_id = Some(rid("r1"));
    let mut assigned = with_status(task("t-asg", 300), TaskStatus::Assigned, 300);
    assigned.assigned_robot = Some(rid("r1"));
    let mut other = with_status(task("t-other", 250), TaskStatus::Active, 260);
    other.robot_id = Some(rid("r2"));
    other.assigned_robot = Some(rid("r2"));
    // Same created_ms: ties break by id descending in byte order ("a" > "B" > "A"), which
    // a locale-aware collation would get wrong.
    let tie_a = task("a", 200);
    let tie_b = task("B", 200);
    let tie_upper_a = with_status(task("A", 200), TaskStatus::Completed, 999);
    put(
        &*store,
        [
            requested,
            assigned,
            other,
            tie_a,
            tie_b,
            tie_upper_a.clone(),
        ],
    )
    .await;

    let all = store.list_tasks(&filter(None, None, 100)).await.unwrap();
    assert_eq!(ids(&all), ["t-asg", "t-other", "a", "B", "A", "t-req"]);
    let first3 = store.list_tasks(&filter(None, None, 3)).await.unwrap();
    assert_eq!(ids(&first3), ["t-asg", "t-other", "a"]);
    assert!(store
        .list_tasks(&filter(None, None, 0))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&store
            .list_tasks(&filter(None, None, usize::MAX))
            .await
            .unwrap()),
        ids(&all)
    );

    let queued = store
        .list_tasks(&filter(Some(TaskStatus::Queued), None, 100))
        .await
        .unwrap();
    assert_eq!(ids(&queued), ["a", "B", "t-req"]);
    let completed = store
        .list_tasks(&filter(Some(TaskStatus::Completed), None, 100))
        .await
        .unwrap();
    assert_eq!(completed, vec![tie_upper_a]);
    assert!(store
        .list_tasks(&filter(Some(TaskStatus::Failed), None, 100))
        .await
        .unwrap()
        .is_empty());

    // Robot matches the requested or the assigned robot.
    let r1 = store
        .list_tasks(&filter(None, Some("r1"), 100))
        .await
        .unwrap();
    assert_eq!(ids(&r1), ["t-asg", "t-req"]);
    let r1_first = store
        .list_tasks(&filter(None, Some("r1"), 1))
        .await
        .unwrap();
    assert_eq!(ids(&r1_first), ["t-asg"]);
    let r1_queued = store
        .list_tasks(&filter(Some(TaskStatus::Queued), Some("r1"), 100))
        .await
        .unwrap();
    assert_eq!(ids(&r1_queued), ["t-req"]);
    let r2 = store
        .list_tasks(&filter(None, Some("r2"), 100))
        .await
        .unwrap();
    assert_eq!(ids(&r2), ["t-other"]);
    assert!(store
        .list_tasks(&filter(None, Some("r9"), 100))
        .await
        .unwrap()
        .is_empty());
    // Listed tasks carry their full history.
    assert!(all.iter().all(|t| t.history.len() == 1));
}

pub(super) async fn open_tasks_exclude_terminal(h: Harness) {
    let store = h.open().await;
    put(
        &*store,
        TaskStatus::ALL
            .into_iter()
            .enumerate()
            .map(|(i, s)| with_status(task(&format!("t-{}", s.as_str()), i as u64), s, 10)),
    )
    .await;
    let open = store.open_tasks().await.unwrap();
    assert_eq!(sorted_ids(&open), ["t-ACTIVE", "t-ASSIGNED", "t-QUEUED"]);
    assert!(open.iter().all(|t| t.history.len() == 1));
}

pub(super) async fn count_by_status(h: Harness) {
    let store = h.open().await;
    assert!(store.count_by_status().await.unwrap().is_empty());
    put(
        &*store,
        [
            task("q1", 1),
            task("q2", 2),
            with_status(task("a1", 3), TaskStatus::Active, 3),
            with_status(task("c1", 4), TaskStatus::Completed, 4),
            with_status(task("c2", 5), TaskStatus::Completed, 5),
            with_status(task("c3", 6), TaskStatus::Completed, 6),
        ],
    )
    .await;
    let counts = store.count_by_status().await.unwrap();
    let nonzero: HashMap<TaskStatus, u64> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(
        nonzero,
        HashMap::from([
            (TaskStatus::Queued, 2),
            (TaskStatus::Active, 1),
            (TaskStatus::Completed, 3),
        ])
    );
}

pub(super) async fn completed_since(h: Harness) {
    let store = h.open().await;
    assert_eq!(store.completed_since(0).await.unwrap(), 0);
    put(
        &*store,
        [
            with_status(task("c1", 1), TaskStatus::Completed, 100),
            with_status(task("c2", 2), TaskStatus::Completed, 200),
            with_status(task("c3", 3), TaskStatus::Completed, 300),
            with_status(task("f1", 4), TaskStatus::Failed, 500),
            with_status(task("a1", 5), TaskStatus::Active, 500),
        ],
    )
    .await;
    assert_eq!(store.completed_since(0).await.unwrap(), 3);
    assert_eq!(store.completed_since(200).await.unwrap(), 2);
    assert_eq!(store.completed_since(300).await.unwrap(), 1);
    assert_eq!(store.completed_since(301).await.unwrap(), 0);
    assert_eq!(store.completed_since(u64::MAX).await.unwrap(), 0);
}

pub(super) async fn idempotency_key_lookup(h: Harness) {
    let store = h.open().await;
    let mut keyed = task("t-keyed", 10);
    keyed.idempotency_key = Some("client-key-1".into());
    put(&*store, [keyed.clone(), task("t-plain", 11)]).await;
    assert_eq!(
        store.task_by_idempotency_key("client-key-1").await.unwrap(),
        Some(keyed.clone())
    );
    assert_eq!(store.task_by_idempotency_key("other").await.unwrap(), None);
    assert_eq!(store.task_by_idempotency_key("").await.unwrap(), None);

    // The task that owns a key may be written again with it.
    let mut again = with_status(keyed.clone(), TaskStatus::Canceled, 20);
    again.history.push(HistoryEntry {
        status: TaskStatus::Canceled,
        at_ms: 20,
        robot_id: None,
        note: Some("client canceled".into()),
    });
    put(&*store, [again.clone()]).await;
    assert_eq!(
        store.task_by_idempotency_key("client-key-1").await.unwrap(),
        Some(again)
    );
    // Several tasks without a key are fine.
    put(&*store, [task("t-plain-2", 12), task("t-plain-3", 13)]).await;
    assert_eq!(
        store
            .list_tasks(&filter(None, None, 10))
            .await
            .unwrap()
            .len(),
        4
    );
}

pub(super) async fn duplicate_idempotency_key_rejects_whole_batch(h: Harness) {
    let store = h.open().await;
    let mut first = task("t-first", 10);
    first.idempotency_key = Some("dup".into());
    put(&*store, [first.clone()]).await;

    let mut first_update = with_status(first.clone(), TaskStatus::Canceled, 50);
    first_update.history.push(HistoryEntry {
        status: TaskStatus::Canceled,
        at_ms: 50,
        robot_id: None,
        note: None,
    });
    let mut second = task("t-second", 20);
    second.idempotency_key = Some("dup".into());
    let result = store
        .commit(&batch([
            robot_seen("tb3_1", 5, Some("Alpha"), None),
            Write::Task(task("t-other", 15)),
            Write::Task(first_update),
            Write::Cursor {
                robot: rid("tb3_1"),
                cursor: EventCursor { epoch: 1, seq: 2 },
            },
            Write::Setting {
                key: "fleet.estop".into(),
                value: json("true"),
            },
            Write::Audit(audit_entry(7, "task.create")),
            Write::Task(second),
            Write::Task(task("t-after", 16)),
        ]))
        .await;
    match result {
        Err(StoreError::DuplicateIdempotencyKey(k)) => assert_eq!(k, "dup"),
        other => panic!("expected DuplicateIdempotencyKey, got {other:?}"),
    }
    // Nothing of the batch was applied.
    assert_eq!(
        store.get_task(&first.id).await.unwrap(),
        Some(first.clone())
    );
    for id in ["t-other", "t-second", "t-after"] {
        assert_eq!(store.get_task(&tid(id)).await.unwrap(), None, "{id}");
    }
    assert!(store.robots().await.unwrap().is_empty());
    assert!(store.cursors().await.unwrap().is_empty());
    assert_eq!(store.setting("fleet.estop").await.unwrap(), None);
    assert!(store.audit(10).await.unwrap().is_empty());
    assert_eq!(
        store.task_by_idempotency_key("dup").await.unwrap(),
        Some(first.clone())
    );

    // Two new tasks with one key in the same batch: neither is stored.
    let mut x = task("t-x", 30);
    x.idempotency_key = Some("fresh".into());
    let mut y = task("t-y", 31);
    y.idempotency_key = Some("fresh".into());
    let result = store.commit(&batch([Write::Task(x), Write::Task(y)])).await;
    assert!(
        matches!(&result, Err(StoreError::DuplicateIdempotencyKey(k)) if k == "fresh"),
        "{result:?}"
    );
    assert_eq!(store.task_by_idempotency_key("fresh").await.unwrap(), None);
    assert_eq!(store.get_task(&tid("t-x")).await.unwrap(), None);

    // The store is still usable afterwards.
    put(&*store, [task("t-later", 40)]).await;
    assert!(store.get_task(&tid("t-later")).await.unwrap().is_some());
}

pub(super) async fn robots_first_and_last_seen(h: Harness) {
    let store = h.open().await;
    assert!(store.robots().await.unwrap().is_empty());
    store
        .commit(&batch([
            robot_seen("tb3_1", 100, Some("Alpha"), None),
            // Seen "earlier" (clock skew): first and last seen stay.
            robot_seen("tb3_1", 50, None, Some("turtlebot3")),
        ]))
        .await
        .unwrap();
    store
        .commit(&batch([
            // Byte order ("B" < "a"), which a locale-aware collation would get wrong.
            robot_seen("a_robot", 10, None, None),
            robot_seen("B_robot", 20, Some("Upper"), Some("m")),
        ]))
        .await
        .unwrap();
    store
        .commit(&batch([robot_seen("tb3_1", 300, Some("Beta"), None)]))
        .await
        .unwrap();
    let robots = store.robots().await.unwrap();
    assert_eq!(
        robots,
        vec![
            RobotRecord {
                id: rid("B_robot"),
                name: Some("Upper".into()),
                model: Some("m".into()),
                first_seen_ms: 20,
                last_seen_ms: 20,
            },
            RobotRecord {
                id: rid("a_robot"),
                name: None,
                model: None,
                first_seen_ms: 10,
                last_seen_ms: 10,
            },
            RobotRecord {
                id: rid("tb3_1"),
                name: Some("Beta".into()),
                model: Some("turtlebot3".into()),
                first_seen_ms: 100,
                last_seen_ms: 300,
            },
        ]
    );
}

pub(super) async fn cursors_set_and_overwrite(h: Harness) {
    let store = h.open().await;
    assert!(store.cursors().await.unwrap().is_empty());
    let big = EventCursor {
        epoch: i64::MAX as u64,
        seq: 1 << 40,
    };
    store
        .commit(&batch([
            Write::Cursor {
                robot: rid("r1"),
                cursor: EventCursor { epoch: 1, seq: 5 },
            },
            Write::Cursor {
                robot: rid("r2"),
                cursor: big,
            },
        ]))
        .await
        .unwrap();
    store
        .commit(&batch([Write::Cursor {
            robot: rid("r1"),
            cursor: EventCursor {
                epoch: 1_700_000_000_000,
                seq: 1,
            },
        }]))
        .await
        .unwrap();
    assert_eq!(
        store.cursors().await.unwrap(),
        HashMap::from([
            (
                rid("r1"),
                EventCursor {
                    epoch: 1_700_000_000_000,
                    seq: 1
                }
            ),
            (rid("r2"), big),
        ])
    );
}

pub(super) async fn settings_round_trip(h: Harness) {
    let store = h.open().await;
    assert_eq!(store.setting("fleet.estop").await.unwrap(), None);
    let value = json(
        r#"{"engaged": true, "reason": "ünïcode \"q\"", "at": [1, 2.5, null, -7],
            "nested": {"deep": {"x": 1e-7}}}"#,
    );
    store
        .commit(&batch([
            Write::Setting {
                key: "fleet.estop".into(),
                value: value.clone(),
            },
            Write::Setting {
                key: "other".into(),
                value: json("\"text\""),
            },
        ]))
        .await
        .unwrap();
    assert_eq!(store.setting("fleet.estop").await.unwrap(), Some(value));
    assert_eq!(
        store.setting("other").await.unwrap(),
        Some(json("\"text\""))
    );
    store
        .commit(&batch([Write::Setting {
            key: "fleet.estop".into(),
            value: json("false"),
        }]))
        .await
        .unwrap();
    assert_eq!(
        store.setting("fleet.estop").await.unwrap(),
        Some(json("false"))
    );
    store
        .commit(&batch([Write::Setting {
            key: "null".into(),
            value: JsonValue::Null,
        }]))
        .await
        .unwrap();
    assert_eq!(store.setting("null").await.unwrap(), Some(JsonValue::Null));
    assert_eq!(store.setting("missing").await.unwrap(), None);
}

pub(super) async fn audit_newest_first(h: Harness) {
    let store = h.open().await;
    assert!(store.audit(10).await.unwrap().is_empty());
    let entries: Vec<AuditEntry> = (1..=5)
        .map(|i| audit_entry(i * 10, &format!("action.{i}")))
        .collect();
    store
        .commit(&batch(entries[..3].iter().cloned().map(Write::Audit)))
        .await
        .unwrap();
    store
        .commit(&batch(entries[3..].iter().cloned().map(Write::Audit)))
        .await
        .unwrap();
    let newest_first: Vec<AuditEntry> = entries.iter().rev().cloned().collect();
    assert_eq!(store.audit(3).await.unwrap(), newest_first[..3].to_vec());
    assert_eq!(store.audit(100).await.unwrap(), newest_first);
    assert_eq!(store.audit(usize::MAX).await.unwrap(), newest_first);
    assert!(store.audit(0).await.unwrap().is_empty());
    // Order is insertion order, not at_ms.
    store
        .commit(&batch([Write::Audit(audit_entry(1, "late.but.old"))]))
        .await
        .unwrap();
    assert_eq!(store.audit(1).await.unwrap()[0].action, "late.but.old");
}

pub(super) async fn reopen_keeps_everything(h: Harness) {
    let store = h.open().await;
    let full = full_task("t-full");
    let plain = task("t-plain", 7);
    store
        .commit(&batch([
            Write::Task(full.clone()),
            Write::Task(plain.clone()),
            robot_seen("tb3_1", 100, Some("Alpha"), Some("tb3")),
            Write::Cursor {
                robot: rid("tb3_1"),
                cursor: EventCursor { epoch: 3, seq: 9 },
            },
            Write::Setting {
                key: "fleet.estop".into(),
                value: json(r#"{"engaged": true}"#),
            },
            Write::Audit(audit_entry(12, "fleet.estop")),
        ]))
        .await
        .unwrap();
    drop(store);

    let store = h.open().await;
    assert_eq!(store.get_task(&full.id).await.unwrap(), Some(full.clone()));
    assert_eq!(
        store.get_task(&plain.id).await.unwrap(),
        Some(plain.clone())
    );
    assert_eq!(
        store.task_by_idempotency_key("key-t-full").await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        store.robots().await.unwrap(),
        vec![RobotRecord {
            id: rid("tb3_1"),
            name: Some("Alpha".into()),
            model: Some("tb3".into()),
            first_seen_ms: 100,
            last_seen_ms: 100,
        }]
    );
    assert_eq!(
        store.cursors().await.unwrap(),
        HashMap::from([(rid("tb3_1"), EventCursor { epoch: 3, seq: 9 })])
    );
    assert_eq!(
        store.setting("fleet.estop").await.unwrap(),
        Some(json(r#"{"engaged": true}"#))
    );
    assert_eq!(
        store.audit(10).await.unwrap(),
        vec![audit_entry(12, "fleet.estop")]
    );

    // History keeps appending after the reopen.
    let mut done = with_status(full.clone(), TaskStatus::Completed, full.updated_ms + 1);
    done.progress = 1.0;
    done.history.push(HistoryEntry {
        status: TaskStatus::Completed,
        at_ms: done.updated_ms,
        robot_id: Some(rid("tb3_2")),
        note: None,
    });
    store
        .commit(&batch([
            Write::Task(done.clone()),
            Write::Audit(audit_entry(13, "task.complete")),
        ]))
        .await
        .unwrap();
    drop(store);

    let store = h.open().await;
    assert_eq!(store.get_task(&done.id).await.unwrap(), Some(done));
    assert_eq!(store.audit(10).await.unwrap().len(), 2);
    assert_eq!(sorted_ids(&store.open_tasks().await.unwrap()), ["t-plain"]);
}

pub(super) async fn settings_by_prefix(h: Harness) {
    let store = h.open().await;
    let writes = [
        "api_key/b",
        "api_key/a",
        "api_key",
        "api_keyx",
        "other",
        "api_key/%_",
    ]
    .into_iter()
    .map(|k| Write::Setting {
        key: k.into(),
        value: json(&format!("{k:?}")),
    });
    store.commit(&batch(writes)).await.unwrap();
    let got: Vec<String> = store
        .settings_with_prefix("api_key/")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            assert_eq!(v, json(&format!("{k:?}")));
            k
        })
        .collect();
    // LIKE wildcards in keys or the prefix are plain characters.
    assert_eq!(got, vec!["api_key/%_", "api_key/a", "api_key/b"]);
    assert_eq!(
        store.settings_with_prefix("api_key/%").await.unwrap().len(),
        1
    );
    assert!(store
        .settings_with_prefix("nothing")
        .await
        .unwrap()
        .is_empty());
}
