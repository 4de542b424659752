//! Running a command from a test: it must succeed, or the test fails with
//! its stderr.

#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `args[0]` with the rest as arguments; panics unless it succeeds.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
