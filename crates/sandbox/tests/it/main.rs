//! Conformance tests of the sandbox org over real HTTP: every endpoint and error path
//! compared with the wire-format reference (`salesforce-api.md`), plus the knobs and
//! semantics that make it a useful stand-in for a real org.
//!
//! Each test starts its own in-process sandbox on a free port of 127.0.0.1 with a few
//! hundred records per object, so tests run in parallel and may freeze or advance
//! the org's clock without disturbing one another.

mod admin;
mod bulk;
mod collections;
mod common;
mod crud;
mod knobs;
mod oauth;
mod query;
mod rest;
mod tls;
