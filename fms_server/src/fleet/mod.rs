//! The fleet's domain logic as plain code: presence (`registry`), the task lifecycle
//! (`tasks`), the engine that drives tasks (`engine`) and assignment (`dispatch`).
//! Nothing here awaits, locks or reads a clock.

pub mod dispatch;
pub mod engine;
pub mod registry;
pub mod tasks;
