//! Notification commands (`[notify]`, docs/notifications.md): one thread
//! runs them one at a time, in event order, each within `notify.timeout`.
//!
//! The run loop hands events over with [`Notifier::send`], which never
//! waits: the channel is bounded ([`QUEUE`]) and a full channel is a
//! counted drop with a log line. A command still running at its timeout is
//! killed with its whole process group (it runs in a group of its own), and
//! counted. Because there is only one runner, a command never overlaps the
//! next one and never sees events out of order (keepalived's notify scripts
//! may).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::config::Notify;
use crate::control::Event;
use crate::log;

/// Events waiting for their command at most; more are dropped and counted.
pub const QUEUE: usize = 64;
/// How often a running command is checked for its exit.
const POLL: Duration = Duration::from_millis(5);

/// The notifier's counters (in `proxyha stats --json` and the metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Commands started.
    pub run: u64,
    /// Commands that exited with a non-zero status or on a signal.
    pub failed: u64,
    /// Commands killed at `notify.timeout`.
    pub timed_out: u64,
    /// Commands that could not be started.
    pub spawn_errors: u64,
    /// Events dropped because [`QUEUE`] were waiting.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Shared {
    run: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    spawn_errors: AtomicU64,
    dropped: AtomicU64,
    /// The process group of the command running now (0: none).
    running: AtomicI32,
    /// Set when [`Notifier::finish`] gave up: run nothing more.
    abort: AtomicBool,
}

/// One command to run: resolved when its event is sent, so a reload
/// ([`Notifier::reconfigure`]) changes the commands of later events only.
struct Job {
    event: Event,
    command: Vec<String>,
    timeout: Duration,
}

/// The handle the run loop keeps.
pub struct Notifier {
    cfg: Notify,
    tx: Option<Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
    done: Receiver<()>,
    shared: Arc<Shared>,
}

impl Notifier {
    /// Starts the runner thread for the commands of `cfg`.
    pub fn spawn(cfg: Notify) -> std::io::Result<Notifier> {
        let (tx, rx) = channel::bounded::<Job>(QUEUE);
        let (done_tx, done) = channel::bounded::<()>(1);
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = thread::Builder::new()
            .name("proxyha-notify".into())
            .spawn(move || {
                for job in rx {
                    if s.abort.load(Ordering::Relaxed) {
                        break;
                    }
                    run_one(&job.command, &job.event, job.timeout, &s);
                }
                let _ = done_tx.send(());
            })?;
        Ok(Notifier {
            cfg,
            tx: Some(tx),
            thread: Some(thread),
            done,
            shared,
        })
    }

    /// New commands and timeout (a config reload) for the events sent from
    /// now on; commands already queued run as they were.
    pub fn reconfigure(&mut self, cfg: Notify) {
        self.cfg = cfg;
    }

    /// Queues `e` for its command, if one is configured; never waits.
    pub fn send(&self, e: &Event) {
        let Some(command) = self.cfg.command(e.kind) else {
            return;
        };
        let Some(tx) = &self.tx else { return };
        let job = Job {
            event: e.clone(),
            command: command.to_vec(),
            timeout: self.cfg.timeout,
        };
        match tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // The first drop and then every power of two: a burst
                // cannot flood the log.
                if !n.is_power_of_two() {
                    return;
                }
                log!(
                    "notify",
                    "dropped event #{} ({}): {QUEUE} events already wait for their \
                     commands ({n} dropped so far)",
                    e.seq,
                    e.kind.as_str()
                );
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.spawn_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        let s = &self.shared;
        Counters {
            run: s.run.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            timed_out: s.timed_out.load(Ordering::Relaxed),
            spawn_errors: s.spawn_errors.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
        }
    }

    /// Lets the queued commands (the `stop` one last) finish, for at most
    /// `limit`; then kills the running one and returns.
    pub fn finish(mut self, limit: Duration) -> Counters {
        self.tx = None; // the runner ends after the queue
        if self.done.recv_timeout(limit).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        } else {
            self.shared.abort.store(true, Ordering::Relaxed);
            let pg = self.shared.running.load(Ordering::Relaxed);
            if pg > 0 {
                let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
            }
            log!(
                "notify",
                "stopping: notification commands still queued after {limit:?} are not run"
            );
        }
        self.counters()
    }
}

/// The arguments a command gets after its own (docs/notifications.md):
/// event, node, subject, from, to, reason, seq, ip, priority.
pub fn arguments(e: &Event) -> [String; 9] {
    [
        e.kind.as_str().to_owned(),
        clean(&e.node),
        clean(&e.subject),
        clean(&e.from),
        clean(&e.to),
        clean(&e.reason),
        e.seq.to_string(),
        e.ip.to_string(),
        e.priority.to_string(),
    ]
}

/// The environment a command gets, the same values by name.
pub fn environment(e: &Event) -> Vec<(&'static str, String)> {
    let a = arguments(e);
    let names = [
        "PROXYHA_EVENT",
        "PROXYHA_NODE",
        "PROXYHA_SUBJECT",
        "PROXYHA_FROM",
        "PROXYHA_TO",
        "PROXYHA_REASON",
        "PROXYHA_SEQ",
        "PROXYHA_IP",
        "PROXYHA_PRIORITY",
    ];
    let mut env: Vec<(&'static str, String)> = names.into_iter().zip(a).collect();
    env.push(("PROXYHA_UNIX_MS", e.unix_ms.to_string()));
    env
}

/// A name from the wire made safe as an argument: printable ASCII other
/// than space; anything else becomes `_`.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect()
}

fn run_one(cmd: &[String], e: &Event, timeout: Duration, s: &Shared) {
    let Some((program, own)) = cmd.split_first() else {
        return;
    };
    let mut c = Command::new(program);
    c.args(own)
        .args(arguments(e))
        .envs(environment(e))
        .stdin(Stdio::null())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0);
    let child = match c.spawn() {
        Ok(ch) => ch,
        Err(err) => {
            s.spawn_errors.fetch_add(1, Ordering::Relaxed);
            log!("notify", "cannot run {program} for event #{}: {err}", e.seq);
            return;
        }
    };
    s.run.fetch_add(1, Ordering::Relaxed);
    let pg = i32::try_from(child.id()).unwrap_or(0);
    s.running.store(pg, Ordering::Relaxed);
    wait(child, pg, program, e, timeout, s);
    s.running.store(0, Ordering::Relaxed);
}

fn wait(mut child: Child, pg: i32, program: &str, e: &Event, timeout: Duration, s: &Shared) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    s.failed.fetch_add(1, Ordering::Relaxed);
                    log!(
                        "notify",
                        "{program} for event #{} ({}) {status}",
                        e.seq,
                        e.kind.as_str()
                    );
                }
                return;
            }
            Ok(None) if Instant::now() >= deadline => {
                if pg > 0 {
                    let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                s.timed_out.fetch_add(1, Ordering::Relaxed);
                log!(
                    "notify",
                    "{program} for event #{} ({}) still ran after {timeout:?}: killed its \
                     process group",
                    e.seq,
                    e.kind.as_str()
                );
                return;
            }
            Ok(None) => thread::sleep(POLL),
            Err(err) => {
                s.failed.fetch_add(1, Ordering::Relaxed);
                log!("notify", "waiting for {program}: {err}");
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
