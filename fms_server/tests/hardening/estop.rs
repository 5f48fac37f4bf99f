//! Hardening: estop.
