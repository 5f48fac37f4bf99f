//! Cases of the store conformance suite that replicas rely on: the dispatch lease and its
//! fencing tokens, requests followers leave for the leader, and the changes they relay.

use super::*;

pub(super) async fn lease_is_exclusive_and_tokens_fence(h: Harness) {
    let store = h.open().await;
    let a = store
        .acquire_lease("a", 60_000)
        .await
        .unwrap()
        .expect("free lease");
    // Renewing keeps the token; another holder is refused while it runs.
    assert_eq!(store.acquire_lease("a", 60_000).await.unwrap(), Some(a));
    assert_eq!(store.acquire_lease("b", 60_000).await.unwrap(), None);
    // Released: the next holder gets a higher token.
    store.release_lease("a").await.unwrap();
    let b = store
        .acquire_lease("b", 60_000)
        .await
        .unwrap()
        .expect("released lease");
    assert!(b > a, "{b} > {a}");
    // Releasing someone else's lease does nothing.
    store.release_lease("a").await.unwrap();
    assert_eq!(store.acquire_lease("a", 60_000).await.unwrap(), None);
    // An expired lease can be taken, again with a higher token.
    store.release_lease("b").await.unwrap();
    let c = store.acquire_lease("c", 1).await.unwrap().expect("free");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let a2 = store
        .acquire_lease("a", 60_000)
        .await
        .unwrap()
        .expect("expired lease");
    assert!(a2 > c && c > b, "{a2} > {c} > {b}");
}

pub(super) async fn fenced_batch_writes_nothing(h: Harness) {
    let store = h.open().await;
    let token = store.acquire_lease("a", 60_000).await.unwrap().unwrap();
    let fenced = |holder: &str, token: u64, id: &str| WriteBatch {
        writes: vec![Write::Task(task(id, 1))],
        fence: Some(Fence {
            holder: holder.into(),
            token,
        }),
    };
    store.commit(&fenced("a", token, "t-ok")).await.unwrap();
    assert!(store.get_task(&tid("t-ok")).await.unwrap().is_some());
    // Wrong holder, wrong token: refused, nothing written.
    for (holder, tok, id) in [("b", token, "t-b"), ("a", token + 1, "t-tok")] {
        let err = store.commit(&fenced(holder, tok, id)).await.unwrap_err();
        assert!(matches!(err, StoreError::Fenced(t) if t == tok), "{err}");
        assert_eq!(store.get_task(&tid(id)).await.unwrap(), None);
    }
    // A stale leader: the lease changed hands.
    store.release_lease("a").await.unwrap();
    store.acquire_lease("b", 60_000).await.unwrap().unwrap();
    let err = store
        .commit(&fenced("a", token, "t-stale"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
    assert_eq!(store.get_task(&tid("t-stale")).await.unwrap(), None);
    // An expired lease fences too, even before anyone takes it.
    store.release_lease("b").await.unwrap();
    let t = store.acquire_lease("c", 1).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let err = store.commit(&fenced("c", t, "t-late")).await.unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
}

pub(super) async fn requests_are_answered_once(h: Harness) {
    let store = h.open().await;
    let body = json(r#"{"type":"cancel_task","task_id":"t-1","actor":"api"}"#);
    let first = store.submit_request(&body, 10).await.unwrap();
    let second = store.submit_request(&json(r#"{"n":2}"#), 11).await.unwrap();
    assert!(second > first);
    assert_eq!(
        store.pending_requests(10).await.unwrap(),
        vec![(first, body.clone()), (second, json(r#"{"n":2}"#))]
    );
    assert_eq!(store.pending_requests(1).await.unwrap().len(), 1);
    assert_eq!(store.request_result(first).await.unwrap(), None);
    let done = |id, n: u64| Write::RequestDone {
        id,
        at_ms: 20,
        result: json(&format!(r#"{{"result":"done","count":{n}}}"#)),
    };
    // Answered together with other writes, atomically.
    store
        .commit(&batch([done(first, 1), Write::Task(task("t-x", 1))]))
        .await
        .unwrap();
    assert_eq!(
        store.request_result(first).await.unwrap(),
        Some(json(r#"{"result":"done","count":1}"#))
    );
    assert_eq!(
        store.pending_requests(10).await.unwrap(),
        vec![(second, json(r#"{"n":2}"#))]
    );
    // A second answer fails its whole batch.
    let err = store
        .commit(&batch([Write::Task(task("t-y", 1)), done(first, 2)]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RequestAlreadyDone(id) if id == first),
        "{err}"
    );
    assert_eq!(store.get_task(&tid("t-y")).await.unwrap(), None);
    assert_eq!(
        store.request_result(first).await.unwrap(),
        Some(json(r#"{"result":"done","count":1}"#))
    );
    // Unknown ids are not answered.
    assert_eq!(store.request_result(second + 100).await.unwrap(), None);
    let err = store
        .commit(&batch([done(second + 100, 1)]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RequestAlreadyDone(_)), "{err}");
}

pub(super) async fn open_ids_and_changes_since(h: Harness) {
    let store = h.open().await;
    put(
        &*store,
        [
            with_status(task("t-q", 1), TaskStatus::Queued, 100),
            with_status(task("t-a", 2), TaskStatus::Active, 300),
            with_status(task("t-done", 3), TaskStatus::Completed, 200),
        ],
    )
    .await;
    let mut open: Vec<String> = store
        .open_task_ids()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    open.sort();
    assert_eq!(open, vec!["t-a", "t-q"]);
    let since = |tasks: Vec<Task>| -> Vec<String> {
        tasks
            .into_iter()
            .map(|t| t.id.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        since(store.tasks_updated_since(0, 10).await.unwrap()),
        vec!["t-q", "t-done", "t-a"]
    );
    assert_eq!(
        since(store.tasks_updated_since(200, 10).await.unwrap()),
        vec!["t-done", "t-a"]
    );
    assert_eq!(
        since(store.tasks_updated_since(0, 2).await.unwrap()),
        vec!["t-q", "t-done"]
    );
    // Whole tasks, history included.
    let got = store.tasks_updated_since(300, 10).await.unwrap();
    assert_eq!(
        got,
        vec![store.get_task(&tid("t-a")).await.unwrap().unwrap()]
    );
    assert!(store
        .tasks_updated_since(u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
}
