//! Drives `scripts/lab.sh` from integration tests: one lab per test, with its
//! own namespace prefix and directory, torn down on drop even when the test
//! fails. Tests that use it run one at a time (see [`serial`]).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the lab lock: this machine has 2 cores, so labs never overlap.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the namespace tests can run here: root and the lab's tools. Off
/// CI it prints why not and the test returns; under `CI` or
/// `PROXYHA_REQUIRE_ROOT=1` a missing prerequisite fails the test
/// (`proxyha::node::prereq`).
pub fn can_run(test: &str) -> bool {
    use proxyha::node::prereq;
    prereq::require_root(test)
        && ["ip", "squid", "curl", "python3", "tcpdump", "nft"]
            .iter()
            .all(|tool| prereq::require_tool(test, tool))
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The proxyha binary built for this test run.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_proxyha"))
}

/// A running lab.
pub struct Lab {
    pub prefix: String,
    pub dir: PathBuf,
    pub vrrp_version: u8,
}

pub struct Options {
    pub prefix: &'static str,
    /// 2 (1 s adverts) or 3 (10 cs adverts).
    pub vrrp_version: u8,
    pub group_b: bool,
    /// Add a port redirect 80 -> 9090 (nftables on every scanning node).
    pub redirect_80: bool,
    /// Add a host with no role at 198.18.0.66 (`PREFIX-rogue`).
    pub rogue: bool,
    pub start_proxyha: bool,
    /// RX/TX queues per link (`lab.sh up --queues N`).
    pub queues: u32,
    /// Run the segment tagged with this VLAN (`lab.sh up --vlan ID`).
    pub vlan: Option<u16>,
    /// TOML appended to every node's config (`lab.sh up --extra-config FILE`).
    pub extra_config: Option<String>,
    /// Run every daemon under a supervisor loop that restarts it 0.5 s
    /// after it dies (`lab.sh up --supervise`).
    pub supervise: bool,
    /// Both directors forward behind an ECMP router running bird2
    /// (`lab.sh up --active-active`); the client is 198.19.0.100.
    pub active_active: bool,
    /// Add the IPv6 VIP 2001:2::250 to group A (`lab.sh up --ipv6`; needs
    /// `vrrp_version: 3`).
    pub ipv6: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "phe",
            vrrp_version: 2,
            group_b: false,
            redirect_80: false,
            rogue: false,
            start_proxyha: true,
            queues: 1,
            vlan: None,
            extra_config: None,
            supervise: false,
            active_active: false,
            ipv6: false,
        }
    }
}

fn sh(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

impl Lab {
    pub fn up(opts: Options) -> Lab {
        let dir = std::env::temp_dir().join(format!("proxyha-test-{}", opts.prefix));
        let lab = Lab {
            prefix: opts.prefix.to_string(),
            dir,
            vrrp_version: opts.vrrp_version,
        };
        let mut args = vec!["up".to_string()];
        if !opts.start_proxyha {
            args.push("--no-proxyha".into());
        }
        args.push("--version".into());
        args.push(opts.vrrp_version.to_string());
        if opts.group_b {
            args.push("--group-b".into());
        }
        if opts.redirect_80 {
            args.push("--redirect-80".into());
        }
        if opts.rogue {
            args.push("--rogue".into());
        }
        if opts.queues != 1 {
            args.push("--queues".into());
            args.push(opts.queues.to_string());
        }
        if opts.supervise {
            args.push("--supervise".into());
        }
        if opts.ipv6 {
            args.push("--ipv6".into());
        }
        if let Some(v) = opts.vlan {
            args.push("--vlan".into());
            args.push(v.to_string());
        }
        if opts.active_active {
            args.push("--active-active".into());
        }
        if let Some(extra) = &opts.extra_config {
            let f = std::env::temp_dir().join(format!("proxyha-test-{}-extra.toml", opts.prefix));
            std::fs::write(&f, extra).unwrap();
            args.push("--extra-config".into());
            args.push(f.display().to_string());
        }
        let out = sh(lab.script().args(&args));
        if !out.status.success() {
            let logs = lab.logs();
            panic!(
                "lab.sh up failed:\n{}\n{}\n{logs}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lab
    }

    fn script(&self) -> Command {
        let mut c = Command::new(root().join("scripts/lab.sh"));
        c.env("LAB_PREFIX", &self.prefix)
            .env("LAB_DIR", &self.dir)
            .env("LAB_SOCK_DIR", self.dir.join("sock"))
            .env("PROXYHA", binary())
            .current_dir(root());
        c
    }

    /// Every node's proxyha log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in ["director-a", "director-b", "scanner-c"] {
            let p = self.dir.join(n).join("proxyha.log");
            if let Ok(t) = std::fs::read_to_string(&p) {
                let tail: Vec<&str> = t.lines().rev().take(30).collect();
                s.push_str(&format!("--- {n} proxyha.log (last lines)\n"));
                for l in tail.iter().rev() {
                    s.push_str(l);
                    s.push('\n');
                }
            }
        }
        s
    }

    pub fn ns(&self, node: &str) -> String {
        let sfx = match node {
            "director-a" => "dira",
            "director-b" => "dirb",
            "scanner-c" => "scan",
            "b-director-a" => "bdira",
            "b-scanner-c" => "bscan",
            other => other,
        };
        format!("{}-{sfx}", self.prefix)
    }

    pub fn exec(&self, node: &str, args: &[&str]) -> Output {
        sh(Command::new("ip")
            .args(["netns", "exec", &self.ns(node)])
            .args(args))
    }

    /// The socket of a node's daemon (the lab rewrites it per prefix).
    pub fn socket(&self, node: &str) -> PathBuf {
        self.dir.join("sock").join(format!("{node}.sock"))
    }

    /// `proxyha status --json` of a node, or None when it does not answer.
    pub fn status(&self, node: &str) -> Option<serde_json::Value> {
        let out = Command::new(binary())
            .args(["status", "--json", "--socket"])
            .arg(self.socket(node))
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `proxyha stats --json` of a node (panics with the error when it fails).
    pub fn stats(&self, node: &str) -> serde_json::Value {
        let out = super::cmd::output(
            Command::new(binary())
                .args(["stats", "--json", "--socket"])
                .arg(self.socket(node)),
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn vrrp_state(&self, node: &str) -> String {
        self.status(node)
            .and_then(|v| v["vrrp_state"].as_str().map(str::to_string))
            .unwrap_or_else(|| "down".into())
    }

    /// Waits until `node` reports `state`; returns how long it took.
    pub fn wait_state(&self, node: &str, state: &str, limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if self.vrrp_state(node) == state {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn pid(&self, node: &str, what: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(node).join(format!("{what}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn kill9(&self, node: &str) {
        if let Some(pid) = self.pid(node, "proxyha") {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }

    pub fn sigterm(&self, node: &str) {
        if let Some(pid) = self.pid(node, "proxyha") {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    pub fn kill_squid(&self, node: &str) {
        if let Some(pid) = self.pid(node, "squid") {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        // squid's worker processes are its children; kill what is left in the namespace.
        let out = sh(Command::new("ip").args(["netns", "pids", &self.ns(node)]));
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let cmdline =
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.contains("squid") || cmdline.contains("pinger") {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
    }

    pub fn restart(&self, node: &str) {
        let out = sh(self.script().args(["restart", node]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One proxied request from the client; returns the node that served it.
    pub fn request(&self, path: &str, timeout_s: f32) -> Option<String> {
        self.request_via("198.18.0.250:9090", path, timeout_s)
    }

    /// One request from the client through the proxy at `proxy` (VIP:port).
    pub fn request_via(&self, proxy: &str, path: &str, timeout_s: f32) -> Option<String> {
        let out = self.exec(
            "client",
            &[
                "curl",
                "-s",
                "-m",
                &timeout_s.to_string(),
                "-o",
                "/dev/null",
                "-D",
                "-",
                "-x",
                &format!("http://{proxy}"),
                &format!("http://198.18.0.200{path}"),
            ],
        );
        if !out.status.success() {
            return None;
        }
        served_by(&String::from_utf8_lossy(&out.stdout))
    }

    /// Takes the lab lock and brings a lab up, or returns `None` (after
    /// saying why) where the namespace tests cannot run.
    pub fn start(test: &str, opts: Options) -> Option<(MutexGuard<'static, ()>, Lab)> {
        let guard = serial();
        if !can_run(test) {
            return None;
        }
        Some((guard, Lab::up(opts)))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// The node named in squid's `X-Cache: MISS from NODE` header.
pub fn served_by(headers: &str) -> Option<String> {
    headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("x-cache:"))
        .and_then(|l| l.split_whitespace().last())
        .map(str::to_string)
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.script().arg("down").output();
        if let Ok(o) = out
            && !o.status.success()
        {
            eprintln!("lab.sh down: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

/// Namespaces whose name starts with `prefix-`.
pub fn namespaces(prefix: &str) -> Vec<String> {
    let out = sh(Command::new("ip").args(["netns", "list"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect()
}

/// Samples both directors' VRRP states every 100 ms (for at most 3 minutes)
/// until stopped.
pub struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<(String, String)>>>,
}

impl Sampler {
    pub fn start(lab: &Lab) -> Sampler {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let (a, b) = (lab.socket("director-a"), lab.socket("director-b"));
        let handle = std::thread::spawn(move || {
            let st = |p: &Path| {
                proxyha::node::admin::ask(p, proxyha::node::admin::Request::Status)
                    .ok()
                    .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok())
                    .and_then(|v| v["vrrp_state"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "down".into())
            };
            let mut out = Vec::new();
            let t = Instant::now();
            while !s.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(180) {
                out.push((st(&a), st(&b)));
                std::thread::sleep(Duration::from_millis(100));
            }
            out
        });
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops and returns every (director-a, director-b) sample.
    pub fn finish(mut self) -> Vec<(String, String)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

/// Slow downloads of the 4 MiB file through the VIP.
pub fn start_downloads(
    lab: &Lab,
    n: usize,
) -> Vec<(Child, std::path::PathBuf, std::path::PathBuf)> {
    start_downloads_via(lab, n, "198.18.0.250:9090", "dl")
}

/// Slow downloads of the 4 MiB file through the proxy at `proxy`
/// (`VIP:port`, or `[VIP6]:port`), into files named `{tag}{i}.*`.
pub fn start_downloads_via(
    lab: &Lab,
    n: usize,
    proxy: &str,
    tag: &str,
) -> Vec<(Child, std::path::PathBuf, std::path::PathBuf)> {
    (0..n)
        .map(|i| {
            let body = lab.path().join(format!("{tag}{i}.bin"));
            let hdr = lab.path().join(format!("{tag}{i}.hdr"));
            let child = Command::new("ip")
                .args(["netns", "exec", &lab.ns("client"), "curl", "-s", "-m", "60"])
                .args([
                    "--limit-rate",
                    "400k",
                    "-x",
                    &format!("http://{proxy}"),
                    "-D",
                ])
                .arg(&hdr)
                .arg("-o")
                .arg(&body)
                .arg("http://198.18.0.200/4m.bin")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (child, body, hdr)
        })
        .collect()
}

/// The node serving each running download, once its response headers
/// have arrived (`None` before).
pub fn downloads_served_by(
    dls: &[(Child, std::path::PathBuf, std::path::PathBuf)],
) -> Vec<Option<String>> {
    dls.iter()
        .map(|(_, _, hdr)| {
            std::fs::read_to_string(hdr)
                .ok()
                .and_then(|h| served_by(&h))
        })
        .collect()
}

/// Waits for the downloads; returns (served by, intact) for each.
pub fn finish_downloads(
    lab: &Lab,
    dls: Vec<(Child, std::path::PathBuf, std::path::PathBuf)>,
) -> Vec<(String, bool)> {
    let want = std::fs::read(lab.path().join("origin/www/4m.bin")).unwrap();
    dls.into_iter()
        .map(|(mut c, body, hdr)| {
            let ok = c.wait().is_ok_and(|s| s.success());
            let node = std::fs::read_to_string(&hdr)
                .ok()
                .and_then(|h| served_by(&h))
                .unwrap_or_else(|| "?".into());
            let intact = ok && std::fs::read(&body).is_ok_and(|b| b == want);
            (node, intact)
        })
        .collect()
}

pub fn entries(status: &serde_json::Value) -> Vec<(String, String, String)> {
    status["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["device"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        thread::sleep(Duration::from_millis(50));
    }
    None
}
