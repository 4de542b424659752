//! Secure-by-default checks on the example cluster in network namespaces
//! (scripts/lab.sh): one daemon per node, the control socket's permissions,
//! and hostile input from a host on the segment.
//!
//! They need root; under CI they fail when they cannot run. One lab serves
//! every check, torn down on drop even on failure.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::lab::{self, Lab, Options};

/// Runs `proxyha ARGS` as the unprivileged user `nobody` (setpriv).
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(lab::binary())
        .args(args)
        .output()
        .expect("setpriv")
}

#[test]
fn one_daemon_per_node_and_a_private_control_socket() {
    let Some((_g, lab)) = Lab::start(
        "one_daemon_per_node_and_a_private_control_socket",
        Options {
            prefix: "phs1",
            ..Options::default()
        },
    ) else {
        return;
    };
    assert!(
        lab.wait_state("director-a", "Master", Duration::from_secs(15))
            .is_some(),
        "no Master\n{}",
        lab.logs()
    );
    assert!(lab.request("/index.html", 3.0).is_some(), "{}", lab.logs());

    // A second daemon for the same node, with the same config, in the same
    // namespace: refused before it touches anything.
    let cfg = lab.path().join("director-a").join("node.toml");
    let second = Command::new("timeout")
        .arg("20")
        .args(["ip", "netns", "exec", &lab.ns("director-a")])
        .arg(lab::binary())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "second daemon started: {err}");
    assert!(
        err.contains("node \"director-a\" is already run by another proxyha daemon"),
        "{err}"
    );
    let pid = lab.pid("director-a", "proxyha").unwrap();
    assert!(err.contains(&format!("(PID {pid})")), "{err}");
    // The running daemon is unaffected: still Master, still forwarding, its
    // XDP program still attached, its VIP still on lo.
    assert_eq!(lab.vrrp_state("director-a"), "Master");
    for i in 0..5 {
        assert!(
            lab.request("/index.html", 3.0).is_some(),
            "request {i} after the second daemon failed\n{}",
            lab.logs()
        );
    }
    let link = lab.exec("director-a", &["ip", "link", "show", "eth0"]);
    assert!(
        String::from_utf8_lossy(&link.stdout).contains("xdp"),
        "XDP detached: {}",
        String::from_utf8_lossy(&link.stdout)
    );
    let lo = lab.exec("director-a", &["ip", "addr", "show", "lo"]);
    assert!(String::from_utf8_lossy(&lo.stdout).contains("198.18.0.250"));

    // The control socket is mode 0600: another user cannot even connect.
    let sock = lab.socket("director-a");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", sock.display());
    let s = sock.to_string_lossy().into_owned();
    let out = as_nobody(&["status", "--socket", &s]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_nobody(&["drain", "on", "--socket", &s]);
    assert!(!out.status.success());
    assert!(lab.status("director-a").is_some());
}
