//! The fleet's domain logic as plain code: presence (`registry`), the task lifecycle and
//! its engine (`tasks`), and assignment (`dispatch`). Nothing here awaits, locks or reads a clock.

pub mod dispatch;
pub mod registry;
pub mod tasks;
