//! Hardening: one forged (or clock-skewed) event cannot poison a robot's event sequencing,
//! neither live nor from a cursor an older server stored.

use fms_msgs::{unix_ms, RobotId};
use fms_server::store::sqlite::SqliteStore;
use fms_server::store::{EventCursor, Store, Write, WriteBatch};
use serde_json::json;

use crate::support::*;

/// The poison: an epoch far beyond any clock.
const POISON_EPOCH: u64 = 9_000_000_000_000_000_000;

async fn run_a_task(fleet: &Fleet) {
    let (code, t) = fleet
        .post(
            "/api/tasks",
            json!({"robot_id": "r1", "target": {"x": 3.0, "y": 1.0}}),
        )
        .await;
    assert_eq!(code, 201, "{t}");
    fleet.wait_task(&task_id(&t), "COMPLETED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_event_cannot_poison_a_robot() {
    let mut fleet = Fleet::start(1).await;
    let z = zenoh_client(&fleet.zenoh).await;
    let poison = json!({
        "epoch": POISON_EPOCH,
        "seq": 1,
        "stamp_ms": unix_ms(),
        "event": {"type": "estop_released"}
    });
    z.put("fms/robot/r1/event", poison.to_string().into_bytes())
        .await
        .unwrap();
    fleet
        .wait("the forged event refused", || async {
            (fleet.metric("fms_zenoh_events_implausible_total").await >= 1.0).then_some(())
        })
        .await;
    // r1's real events still count: its task ends.
    run_a_task(&fleet).await;

    // A cursor an older server stored from such an event is dropped when loaded.
    fleet.server.start_kill().unwrap();
    fleet.server.wait().await.unwrap();
    {
        let store = SqliteStore::open(&fleet.dir.join("fms.db")).await.unwrap();
        let mut batch = WriteBatch::default();
        batch.push(Write::Cursor {
            robot: RobotId::new("r1").unwrap(),
            cursor: EventCursor {
                epoch: POISON_EPOCH,
                seq: 1,
            },
        });
        store.commit(&batch).await.unwrap();
    }
    let (server, http) = spawn_server(&fleet.zenoh, &fleet.server_args).await;
    fleet.server = server;
    fleet.http = http;
    fleet.wait_online(1).await;
    run_a_task(&fleet).await;
    fleet.assert_server_alive();
}
