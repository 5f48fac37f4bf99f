//! Hardening: events.
