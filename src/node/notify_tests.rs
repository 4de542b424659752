//! The notifier with real shell scripts in a temporary directory.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::control::event::Kind;

fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn event(seq: u64, kind: Kind) -> Event {
    Event {
        seq,
        unix_ms: 1_764_400_000_000 + seq,
        node: "director-a".into(),
        kind,
        subject: if kind == Kind::Node {
            "scanner c\u{1b}".into()
        } else {
            "director-a".into()
        },
        ip: Ipv4Addr::new(198, 18, 0, 1),
        from: "BACKUP".into(),
        to: "MASTER".into(),
        reason: "MasterDown".into(),
        priority: 99,
    }
}

fn notify(cmd: &str, timeout: Duration) -> Notify {
    let c = Some(vec![cmd.to_owned(), "own-arg".to_owned()]);
    Notify {
        master: c.clone(),
        backup: c.clone(),
        fault: c.clone(),
        stop: c.clone(),
        node: c,
        timeout,
    }
}

fn lines(p: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn commands_run_one_at_a_time_in_event_order_with_the_documented_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Each run takes a while and checks that no other run overlaps it.
    let cmd = script(
        dir.path(),
        "n.sh",
        &format!(
            "mkdir {d}/lock || echo OVERLAP >> {o}\n\
             echo \"$* | $PROXYHA_EVENT $PROXYHA_SEQ $PROXYHA_SUBJECT $PROXYHA_UNIX_MS\" >> {o}\n\
             sleep 0.02\nrmdir {d}/lock",
            d = dir.path().display(),
            o = out.display()
        ),
    );
    let n = Notifier::spawn(notify(&cmd, Duration::from_secs(5))).unwrap();
    let kinds = [
        Kind::Backup,
        Kind::Master,
        Kind::Node,
        Kind::Fault,
        Kind::Stop,
    ];
    for i in 0..20u64 {
        n.send(&event(i + 1, kinds[i as usize % kinds.len()]));
    }
    let c = n.finish(Duration::from_secs(20));
    assert_eq!((c.run, c.failed, c.timed_out, c.dropped), (20, 0, 0, 0));
    let got = lines(&out);
    assert_eq!(got.len(), 20, "{got:?}");
    for (i, l) in got.iter().enumerate() {
        let seq = i as u64 + 1;
        let kind = kinds[i % kinds.len()].as_str();
        let subject = if kind == "node" {
            "scanner_c_"
        } else {
            "director-a"
        };
        assert_eq!(
            *l,
            format!(
                "own-arg {kind} director-a {subject} BACKUP MASTER MasterDown {seq} 198.18.0.1 99 \
                 | {kind} {seq} {subject} {}",
                1_764_400_000_000 + seq
            )
        );
    }
}

#[test]
fn a_command_past_its_timeout_is_killed_with_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let after = dir.path().join("after");
    let cmd = script(
        dir.path(),
        "slow.sh",
        &format!(
            "sleep 30 &\necho $! > {p}\nsleep 30\necho never > {a}",
            p = pids.display(),
            a = after.display()
        ),
    );
    let n = Notifier::spawn(notify(&cmd, Duration::from_millis(300))).unwrap();
    let t = Instant::now();
    n.send(&event(1, Kind::Master));
    let c = n.finish(Duration::from_secs(10));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!((c.run, c.timed_out), (1, 1));
    assert!(!after.exists());
    // The background child of the script died with it.
    let bg: u32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    let gone = loop {
        let stat = std::fs::read_to_string(format!("/proc/{bg}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init.
        if stat.is_empty() || stat.contains(") Z ") {
            break true;
        }
        if Instant::now() > until {
            break false;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert!(gone, "background child {bg} survived the timeout");
}

#[test]
fn a_full_queue_drops_and_counts_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = script(dir.path(), "block.sh", "sleep 30");
    let n = Notifier::spawn(notify(&cmd, Duration::from_secs(60))).unwrap();
    let t = Instant::now();
    for i in 0..(QUEUE as u64 + 10) {
        n.send(&event(i + 1, Kind::Node));
    }
    // Sending never waited for the blocked command.
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    let c = n.counters();
    // The runner took the first event (or not yet): 9 or 10 dropped.
    assert!((9..=10).contains(&c.dropped), "{c:?}");
    let c = n.finish(Duration::from_millis(200));
    assert_eq!(c.run, 1, "nothing runs after finish gives up: {c:?}");
}

#[test]
fn failures_and_unconfigured_events_are_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let fail = script(dir.path(), "fail.sh", "exit 3");
    let ok = script(
        dir.path(),
        "ok.sh",
        &format!("echo \"$1\" >> {}", out.display()),
    );
    let gone = script(dir.path(), "gone.sh", "exit 0");
    std::fs::remove_file(&gone).unwrap();
    let cfg = Notify {
        master: Some(vec![ok.clone()]),
        backup: Some(vec![fail]),
        fault: Some(vec![gone]),
        stop: None,
        node: None,
        timeout: Duration::from_secs(5),
    };
    let n = Notifier::spawn(cfg).unwrap();
    for (i, k) in [
        Kind::Backup,
        Kind::Node,
        Kind::Fault,
        Kind::Stop,
        Kind::Master,
    ]
    .into_iter()
    .enumerate()
    {
        n.send(&event(i as u64 + 1, k));
    }
    let c = n.finish(Duration::from_secs(10));
    assert_eq!(
        (c.run, c.failed, c.spawn_errors, c.dropped),
        (2, 1, 1, 0),
        "{c:?}"
    );
    assert_eq!(lines(&out), vec!["master"]);
}

#[test]
fn a_reload_changes_the_commands_of_later_events_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let old = script(
        dir.path(),
        "old.sh",
        &format!("sleep 0.2\necho \"old $8\" >> {}", out.display()),
    );
    let new = script(
        dir.path(),
        "new.sh",
        &format!("echo \"new $8\" >> {}", out.display()),
    );
    let mut n = Notifier::spawn(notify(&old, Duration::from_secs(5))).unwrap();
    n.send(&event(1, Kind::Master));
    n.send(&event(2, Kind::Backup));
    let mut cfg = notify(&new, Duration::from_secs(5));
    cfg.node = None;
    n.reconfigure(cfg);
    n.send(&event(3, Kind::Master));
    n.send(&event(4, Kind::Node)); // no command any more
    let c = n.finish(Duration::from_secs(10));
    assert_eq!(c.run, 3);
    // Queued before the reload: the old command, still in order.
    assert_eq!(lines(&out), vec!["old 1", "old 2", "new 3"]);
}
