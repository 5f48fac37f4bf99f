//! The SQL backends' shared implementation of [`Store`](super::Store): one macro that both
//! `sqlite.rs` and `postgres.rs` expand, so the two differ only in their [`Dialect`] (the
//! SQL text that differs between the databases) and in how they connect.

/// The SQL text that differs between SQLite and PostgreSQL.
pub(super) struct Dialect {
    /// A task row joined with its history, one row per history entry (`sql::TaskEventRow`);
    /// JSON columns come back as text for `fms_msgs::codec`.
    pub task_columns: &'static str,
    /// Upsert of one task row ($1-$18 in `sql::TaskParams` order).
    pub upsert_task: &'static str,
    /// Upsert of one robot ($1 id, $2 name, $3 model, $4 seen at).
    pub upsert_robot: &'static str,
    pub insert_audit: &'static str,
    pub upsert_setting: &'static str,
    /// `id DESC` in byte order (matches the memory store's ordering).
    pub id_desc: &'static str,
    pub select_robots: &'static str,
    pub select_setting: &'static str,
    pub select_settings_prefix: &'static str,
    pub select_audit: &'static str,
    /// Takes or renews the dispatch lease ($1 holder, $2 ttl ms), `RETURNING token`; no row
    /// when another holder's lease has not expired. Times on the database's clock.
    pub acquire_lease: &'static str,
    /// A row if $1 still holds the dispatch lease with token $2 and it has not expired,
    /// locked against a takeover until the transaction ends where the database can.
    pub fence_check: &'static str,
    /// Inserts a request ($1 body, $2 created_ms) `RETURNING id`.
    pub insert_request: &'static str,
    /// Pending requests: id, body as text, oldest first, `LIMIT $1`.
    pub select_pending: &'static str,
    /// The answer (as text) to request $1, if it has one.
    pub select_request_result: &'static str,
    /// Answers request $1 at $2 with $3, only if it has no answer yet.
    pub request_done: &'static str,
}

/// Implements `select_tasks`, `write`, `apply`, `write_task` and [`Store`](super::Store) for
/// `$store`, a type with a `pool` field, a `writes` field (a
/// [`WriteTracker`](super::health::WriteTracker)), an `async fn begin(conn)` that begins a
/// transaction on a connection and a `fn may_close_connections(&self)`.
///
/// A failed write must not spoil its connection. sqlx counts transactions per connection
/// (its "transaction depth") and lowers the count only when COMMIT or ROLLBACK succeeds. On
/// SQLite, an error such as SQLITE_FULL or SQLITE_IOERR (a full disk) in a statement or in
/// COMMIT makes SQLite roll the whole transaction back by itself; the ROLLBACK that dropping
/// the `Transaction` then queues fails ("no transaction is active"), the count stays at 1,
/// and the connection goes back to the pool (its release check is a ping, which passes).
/// Every later `begin_with` on it fails ("attempted to call begin_with at non-zero
/// transaction depth"), so after a few failures every pooled connection refuses writes for
/// good, while reads, which never look at the count, still work. Hence: after a failed write
/// the connection is checked (`sql::outside_transaction`) and closed if it still counts a
/// transaction; the pool's `before_acquire` check (`sql::reusable`) does the same for a
/// write cancelled half-way (its future dropped), which skips the first check.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $conn:ty, $dialect:expr) => {
        impl $store {
            /// Applies the batch in one transaction and records the outcome in the store's
            /// write health.
            async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
                let result = self.write_on_a_connection(batch).await;
                self.writes.record(&result);
                result
            }

            async fn write_on_a_connection(&self, batch: &WriteBatch) -> Result<(), StoreError> {
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .map_err(backend("cannot get a database connection"))?;
                let result = write_batch(&mut conn, batch).await;
                if result.is_err()
                    && self.may_close_connections()
                    && !sql::outside_transaction(&mut *conn).await
                {
                    tracing::warn!(
                        "closing a database connection that a failed write left inside a transaction"
                    );
                    conn.close_on_drop();
                }
                result
            }

            /// Tasks selected by `inner` (which continues `SELECT * FROM tasks` with WHERE / ORDER
            /// BY / LIMIT), each with its full history, newest first.
            async fn select_tasks<'a>(
                &self,
                inner: impl FnOnce(&mut sqlx::QueryBuilder<'a, $db>),
            ) -> Result<Vec<Task>, StoreError> {
                let mut q = QueryBuilder::new("SELECT ");
                q.push($dialect.task_columns).push(" FROM (SELECT * FROM tasks");
                inner(&mut q);
                q.push(") AS t LEFT JOIN task_events AS e ON e.task_id = t.id ORDER BY t.created_ms DESC, t.")
                    .push($dialect.id_desc)
                    .push(", e.idx");
                let rows = q
                    .build_query_as::<TaskEventRow>()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend("cannot read tasks"))?;
                sql::assemble_tasks(rows)
            }
        }

        /// Applies the batch in one transaction on `conn`. On error the transaction is
        /// dropped, which queues its rollback.
        async fn write_batch(conn: &mut $conn, batch: &WriteBatch) -> Result<(), StoreError> {
            let mut tx = <$store>::begin(conn).await?;
            if let Some(fence) = &batch.fence {
                let held: Option<(i64,)> = sqlx::query_as($dialect.fence_check)
                    .bind(fence.holder.as_str())
                    .bind(sql::to_i64(fence.token, "lease token")?)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend("cannot check the dispatch lease"))?;
                if held.is_none() {
                    return Err(StoreError::Fenced(fence.token));
                }
            }
            for w in &batch.writes {
                apply(&mut tx, w).await?;
            }
            tx.commit()
                .await
                .map_err(backend("cannot commit the transaction"))
        }

        async fn apply(conn: &mut $conn, w: &Write) -> Result<(), StoreError> {
            match w {
                Write::Task(t) => write_task(conn, t).await,
                Write::Robot {
                    id,
                    at_ms,
                    name,
                    model,
                } => {
                    sqlx::query($dialect.upsert_robot)
                        .bind(id.as_str())
                        .bind(name.as_deref())
                        .bind(model.as_deref())
                        .bind(sql::to_i64(*at_ms, "robot at_ms")?)
                        .execute(&mut *conn)
                        .await
                        .map_err(backend(format_args!("cannot record robot {id}")))?;
                    Ok(())
                }
                Write::Cursor { robot, cursor } => {
                    sqlx::query(
                        "INSERT INTO event_cursors (robot_id, epoch, seq) VALUES ($1, $2, $3) \
                         ON CONFLICT (robot_id) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq",
                    )
                    .bind(robot.as_str())
                    .bind(sql::to_i64(cursor.epoch, "cursor epoch")?)
                    .bind(sql::to_i64(cursor.seq, "cursor seq")?)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend(format_args!("cannot store the cursor of {robot}")))?;
                    Ok(())
                }
                Write::Audit(a) => {
                    sqlx::query($dialect.insert_audit)
                    .bind(sql::to_i64(a.at_ms, "audit at_ms")?)
                    .bind(a.actor.as_str())
                    .bind(a.action.as_str())
                    .bind(a.robot_id.as_ref().map(RobotId::as_str))
                    .bind(a.task_id.as_ref().map(TaskId::as_str))
                    .bind(codec::encode_text(&a.detail))
                    .execute(&mut *conn)
                    .await
                    .map_err(backend("cannot append to the audit"))?;
                    Ok(())
                }
                Write::Setting { key, value } => {
                    sqlx::query($dialect.upsert_setting)
                    .bind(key.as_str())
                    .bind(codec::encode_text(value))
                    .execute(&mut *conn)
                    .await
                    .map_err(backend(format_args!("cannot store setting {key:?}")))?;
                    Ok(())
                }
                Write::RequestDone { id, at_ms, result } => {
                    let done = sqlx::query($dialect.request_done)
                        .bind(sql::to_i64(*id, "request id")?)
                        .bind(sql::to_i64(*at_ms, "request done_ms")?)
                        .bind(codec::encode_text(result))
                        .execute(&mut *conn)
                        .await
                        .map_err(backend(format_args!("cannot answer request {id}")))?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::RequestAlreadyDone(*id));
                    }
                    Ok(())
                }
            }
        }

        /// Upserts the task row, then appends the history entries not stored yet.
        async fn write_task(conn: &mut $conn, t: &Task) -> Result<(), StoreError> {
            let p = sql::TaskParams::new(t)?;
            let upsert = sqlx::query($dialect.upsert_task)
                .bind(p.id)
                .bind(p.robot_id)
                .bind(p.assigned_robot)
                .bind(p.goal)
                .bind(p.priority)
                .bind(p.timeout_s)
                .bind(p.parameters)
                .bind(p.status)
                .bind(p.progress)
                .bind(p.attempts)
                .bind(p.max_attempts)
                .bind(p.retries)
                .bind(p.failures)
                .bind(p.location)
                .bind(p.idempotency_key)
                .bind(p.error)
                .bind(p.created_ms)
                .bind(p.updated_ms)
                .execute(&mut *conn)
                .await;
            match (upsert, &t.idempotency_key) {
                (Ok(_), _) => {}
                (Err(e), Some(key)) if sql::is_unique_violation(&e) => {
                    return Err(StoreError::DuplicateIdempotencyKey(key.clone()))
                }
                (Err(e), _) => return Err(backend(format_args!("cannot store task {}", t.id))(e)),
            }
            let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM task_events WHERE task_id = $1")
                .bind(p.id)
                .fetch_one(&mut *conn)
                .await
                .map_err(backend(format_args!(
                    "cannot read the history of task {}",
                    t.id
                )))?;
            let stored = usize::try_from(stored)
                .map_err(|_| StoreError::Corrupt(format!("task {} has {stored} history entries", t.id)))?;
            for (idx, h) in t.history.iter().enumerate().skip(stored) {
                let e = sql::EventParams::new(idx, h)?;
                sqlx::query(
                    "INSERT INTO task_events (task_id, idx, status, at_ms, robot_id, note) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(p.id)
                .bind(e.idx)
                .bind(e.status)
                .bind(e.at_ms)
                .bind(e.robot_id)
                .bind(e.note)
                .execute(&mut *conn)
                .await
                .map_err(backend(format_args!(
                    "cannot append to the history of task {}",
                    t.id
                )))?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
                if batch.is_empty() {
                    return Ok(());
                }
                self.write(batch).await
            }

            fn write_health(&self) -> WriteHealth {
                self.writes.health()
            }

            async fn probe_writes(&self) -> WriteHealth {
                if self.writes.claim_probe() {
                    // Overwrites one setting: a commit as small as any, which fails the same
                    // way real writes do. Its outcome is recorded like theirs.
                    let probe = WriteBatch {
                        writes: vec![Write::Setting {
                            key: health::PROBE_KEY.to_owned(),
                            value: JsonValue::from(health::unix_ms()),
                        }],
                        fence: None,
                    };
                    if let Err(e) = self.write(&probe).await {
                        tracing::debug!("write probe failed: {e}");
                    }
                }
                self.writes.health()
            }

            async fn get_task(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
                let tasks = self
                    .select_tasks(|q| {
                        q.push(" WHERE id = ").push_bind(id.as_str());
                    })
                    .await?;
                Ok(tasks.into_iter().next())
            }

            async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, StoreError> {
                self.select_tasks(|q| {
                    q.push(" WHERE 1 = 1");
                    if let Some(status) = filter.status {
                        q.push(" AND status = ").push_bind(status.as_str());
                    }
                    if let Some(robot) = &filter.robot {
                        q.push(" AND (robot_id = ")
                            .push_bind(robot.as_str())
                            .push(" OR assigned_robot = ")
                            .push_bind(robot.as_str())
                            .push(")");
                    }
                    q.push(" ORDER BY created_ms DESC, ")
                        .push($dialect.id_desc)
                        .push(" LIMIT ")
                        .push_bind(sql::limit(filter.limit));
                })
                .await
            }

            async fn open_tasks(&self) -> Result<Vec<Task>, StoreError> {
                self.select_tasks(|q| {
                    q.push(" WHERE status IN (");
                    let mut list = q.separated(", ");
                    for s in sql::open_statuses() {
                        list.push_bind(s);
                    }
                    q.push(")");
                })
                .await
            }

            async fn task_by_idempotency_key(&self, key: &str) -> Result<Option<Task>, StoreError> {
                let tasks = self
                    .select_tasks(|q| {
                        q.push(" WHERE idempotency_key = ").push_bind(key);
                    })
                    .await?;
                Ok(tasks.into_iter().next())
            }

            async fn count_by_status(&self) -> Result<HashMap<TaskStatus, u64>, StoreError> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT status, COUNT(*) FROM tasks GROUP BY status")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(backend("cannot count tasks"))?;
                sql::counts_from_rows(rows)
            }

            async fn completed_since(&self, since_ms: u64) -> Result<u64, StoreError> {
                // No stored time reaches beyond i64::MAX, so nothing can match such a bound.
                let Ok(since) = i64::try_from(since_ms) else {
                    return Ok(0);
                };
                let (n,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM tasks WHERE status = $1 AND updated_ms >= $2")
                        .bind(TaskStatus::Completed.as_str())
                        .bind(since)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(backend("cannot count completed tasks"))?;
                sql::to_u64(n, "completed count")
            }

            async fn robots(&self) -> Result<Vec<RobotRecord>, StoreError> {
                let rows: Vec<sql::RobotRow> = sqlx::query_as($dialect.select_robots)
                .fetch_all(&self.pool)
                .await
                .map_err(backend("cannot read robots"))?;
                rows.into_iter().map(RobotRecord::try_from).collect()
            }

            async fn cursors(&self) -> Result<HashMap<RobotId, EventCursor>, StoreError> {
                let rows: Vec<sql::CursorRow> =
                    sqlx::query_as("SELECT robot_id, epoch, seq FROM event_cursors")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(backend("cannot read event cursors"))?;
                sql::cursors_from_rows(rows)
            }

            async fn setting(&self, key: &str) -> Result<Option<JsonValue>, StoreError> {
                let row: Option<(String,)> =
                    sqlx::query_as($dialect.select_setting)
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(backend(format_args!("cannot read setting {key:?}")))?;
                row.map(|(text,)| sql::setting_from_text(key, &text))
                    .transpose()
            }

            async fn settings_with_prefix(
                &self,
                prefix: &str,
            ) -> Result<Vec<(String, JsonValue)>, StoreError> {
                let rows: Vec<(String, String)> =
                    sqlx::query_as($dialect.select_settings_prefix)
                        .bind(prefix)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(backend(format_args!("cannot read settings {prefix:?}*")))?;
                rows.into_iter()
                    .map(|(key, text)| sql::setting_from_text(&key, &text).map(|v| (key, v)))
                    .collect()
            }

            async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
                let rows: Vec<sql::AuditRow> = sqlx::query_as($dialect.select_audit)
                .bind(sql::limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend("cannot read the audit"))?;
                rows.into_iter().map(AuditEntry::try_from).collect()
            }

            // The lease and request writes count in the write health too, so that a replica
            // that commits nothing itself (a follower) still sees its database refuse writes.
            // A success counts only when a row was written.

            async fn acquire_lease(&self, holder: &str, ttl_ms: u64) -> Result<Option<u64>, StoreError> {
                let written = sqlx::query_as::<_, (i64,)>($dialect.acquire_lease)
                    .bind(holder)
                    .bind(sql::to_i64(ttl_ms, "lease ttl")?)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend("cannot take or renew the dispatch lease"));
                if !matches!(written, Ok(None)) {
                    self.writes.record(&written);
                }
                written?.map(|(t,)| sql::to_u64(t, "lease token")).transpose()
            }

            async fn release_lease(&self, holder: &str) -> Result<(), StoreError> {
                let released = sqlx::query("UPDATE leases SET expires_ms = 0 WHERE name = 'dispatch' AND holder = $1")
                    .bind(holder)
                    .execute(&self.pool)
                    .await
                    .map_err(backend("cannot release the dispatch lease"));
                if !matches!(&released, Ok(done) if done.rows_affected() == 0) {
                    self.writes.record(&released);
                }
                released.map(|_| ())
            }

            async fn submit_request(&self, body: &JsonValue, at_ms: u64) -> Result<u64, StoreError> {
                let inserted = sqlx::query_as::<_, (i64,)>($dialect.insert_request)
                    .bind(codec::encode_text(body))
                    .bind(sql::to_i64(at_ms, "request created_ms")?)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(backend("cannot queue a request for the leader"));
                self.writes.record(&inserted);
                let (id,) = inserted?;
                sql::to_u64(id, "request id")
            }

            async fn pending_requests(&self, limit: usize) -> Result<Vec<(u64, JsonValue)>, StoreError> {
                let rows: Vec<(i64, String)> = sqlx::query_as($dialect.select_pending)
                    .bind(sql::limit(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend("cannot read pending requests"))?;
                rows.into_iter()
                    .map(|(id, body)| {
                        let what = format!("request {id}");
                        Ok((sql::to_u64(id, "request id")?, sql::setting_from_text(&what, &body)?))
                    })
                    .collect()
            }

            async fn request_result(&self, id: u64) -> Result<Option<JsonValue>, StoreError> {
                let row: Option<(Option<String>,)> = sqlx::query_as($dialect.select_request_result)
                    .bind(sql::to_i64(id, "request id")?)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend(format_args!("cannot read the answer to request {id}")))?;
                row.and_then(|(text,)| text)
                    .map(|text| sql::setting_from_text(&format!("request {id}"), &text))
                    .transpose()
            }

            async fn open_task_ids(&self) -> Result<Vec<TaskId>, StoreError> {
                let mut q = QueryBuilder::<$db>::new("SELECT id FROM tasks WHERE status IN (");
                let mut list = q.separated(", ");
                for s in sql::open_statuses() {
                    list.push_bind(s);
                }
                q.push(")");
                let rows: Vec<(String,)> = q
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend("cannot read open task ids"))?;
                rows.into_iter()
                    .map(|(id,)| TaskId::new(id).map_err(|e| StoreError::Corrupt(format!("task id: {e}"))))
                    .collect()
            }

            async fn tasks_updated_since(
                &self,
                since_ms: u64,
                limit: usize,
            ) -> Result<Vec<Task>, StoreError> {
                let Ok(since) = i64::try_from(since_ms) else {
                    return Ok(Vec::new());
                };
                let mut tasks = self
                    .select_tasks(|q| {
                        q.push(" WHERE updated_ms >= ")
                            .push_bind(since)
                            .push(" ORDER BY updated_ms, id LIMIT ")
                            .push_bind(sql::limit(limit));
                    })
                    .await?;
                tasks.sort_by(|a, b| a.updated_ms.cmp(&b.updated_ms).then(a.id.cmp(&b.id)));
                Ok(tasks)
            }
        }
    };
}

pub(super) use impl_sql_store;
