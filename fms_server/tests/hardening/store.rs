//! Hardening: store.
