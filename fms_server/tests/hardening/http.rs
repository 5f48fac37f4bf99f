//! Hardening: http.
