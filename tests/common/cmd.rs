//! Running a command from a test: it must succeed, or the test fails with
//! its stderr.

#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `args[0]` with the rest as arguments; panics unless it succeeds.
pub fn run(args: &[&str]) -> Output {
    output(Command::new(args[0]).args(&args[1..]))
}

/// Runs `cmd`; panics unless it succeeds.
pub fn output(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
