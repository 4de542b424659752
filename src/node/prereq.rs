//! What a test (or the daemon) needs from the machine: root, and tools on
//! `PATH`.
//!
//! Tests that need root or a tool call [`require_root`] / [`require_tool`].
//! On a developer's machine without them the test says it was skipped and
//! returns early. When `CI` is set (as `.ci/run` runs) or
//! `PROXYHA_REQUIRE_ROOT=1`, a missing prerequisite fails the test with the
//! reason instead: under CI nothing passes unseen.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

/// Whether this process runs with effective uid 0. `/proc/self` belongs to
/// the effective uid, which avoids an `unsafe` `geteuid` call here.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether `tool` is found on `PATH` (by `command -v`).
pub fn has_tool(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$1\"", "sh", tool])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a missing prerequisite must fail the test: `CI` set to anything
/// but empty/`0`/`false`, or `PROXYHA_REQUIRE_ROOT=1`.
pub fn strict() -> bool {
    let set = |k: &str| {
        std::env::var(k)
            .ok()
            .is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    set("CI") || set("PROXYHA_REQUIRE_ROOT")
}

/// Decides what a test does when `reason` keeps it from running: panics
/// under [`strict`], otherwise prints a visible SKIP line and returns false.
fn missing(test: &str, reason: &str) -> bool {
    if strict() {
        panic!("{test}: cannot run: {reason} (CI or PROXYHA_REQUIRE_ROOT=1 requires it)");
    }
    eprintln!("SKIP {test}: {reason}; run scripts/test.sh as root");
    false
}

/// True when the test can run as root; otherwise see the module doc.
pub fn require_root(test: &str) -> bool {
    is_root() || missing(test, "needs root (network namespaces, XDP, BPF)")
}

/// True when `tool` is installed; otherwise see the module doc.
pub fn require_tool(test: &str, tool: &str) -> bool {
    has_tool(tool)
        || missing(
            test,
            &format!("`{tool}` is not installed (scripts/setup.sh)"),
        )
}

/// For `#[ignore]`d child tests that a parent test starts inside a namespace
/// with `env_var` set: panics when started any other way, so a child never
/// reports green on its own.
pub fn require_parent(test: &str, env_var: &str) {
    if std::env::var_os(env_var).is_none() {
        panic!("{test} is a child test: it runs only from its parent test (which sets {env_var})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_is_a_tool_and_nonsense_is_not() {
        assert!(has_tool("sh"));
        assert!(!has_tool("proxyha-no-such-tool-x"));
        assert!(!has_tool("sh; true"));
    }

    #[test]
    #[should_panic(expected = "child test")]
    fn child_started_alone_fails() {
        require_parent("x", "PROXYHA_NO_SUCH_PARENT_VAR");
    }
}
