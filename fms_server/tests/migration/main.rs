//! Migration tests (issue 16): robots of the old Python FMS run fms tasks. A Python robot
//! that speaks exactly the old protocol (`tests/support/legacy_robot.py`, on eclipse-zenoh
//! from PyPI) works beside `fms_agent` mock robots, against a real `fms_server`, on
//! loopback.
//!
//! Needs `cargo build --workspace --bins` and `scripts/zenoh_venv.sh` first (the test
//! command, scripts/test.sh, does both; it exports the venv's python as FMS_ZENOH_PYTHON).

#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;

mod estop;
mod faults;
mod legacy;
mod tasks;
