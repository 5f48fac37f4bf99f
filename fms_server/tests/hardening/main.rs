//! Hardening tests (issue 15): each reproduces a defect found by attacking the server or
//! failing its disk, against real `fms_server` and `fms_agent --interface mock` processes
//! on loopback.
//!
//! Needs `cargo build --workspace --bins` first, like the other end-to-end tests.

#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

mod auth;
mod estop;
mod events;
mod fleet;
mod http;
mod store;
