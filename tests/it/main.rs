//! The integration tests, in one test binary (one link, one process per `cargo test`): the built
//! `smtpcheck` binary and the library against the scripted loopback sink (`smtpcheck-sink`), an
//! in-process DNS server, and (in [`interop`]) real mail servers.
//!
//! One module per area; the shared helpers are in [`common`]. Run one area with a filter:
//! `cargo test --test it send::`.

mod common;

mod architecture;
mod diagnose;
mod direct;
mod dns;
mod ecosystem;
mod golden;
mod hardening;
mod hostile;
mod interop;
mod oauth;
mod properties;
mod send;
mod sender;
mod tls;
mod verdicts;
