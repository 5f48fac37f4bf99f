//! The fleet's domain logic as plain code: presence (`registry`), the task lifecycle
//! (`tasks`), the engine that drives tasks (`engine`), assignment (`dispatch`), the
//! translation of legacy robots' status reports (`legacy`) and the dispatch lease between
//! replicas (`lease`).
//! Nothing here awaits, locks or reads a clock.

pub mod dispatch;
pub mod engine;
pub mod lease;
pub mod legacy;
pub mod registry;
pub mod tasks;
