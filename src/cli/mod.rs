//! The operator CLI. `main.rs` only calls [`main`]; parsing with clap stays
//! here, and the core only ever sees validated [`crate::config::Config`] values.

use std::path::PathBuf;

pub mod check;
pub mod docs;
pub mod events;
pub mod key;
pub mod stats;
pub mod status;

use clap::{Parser, Subcommand};

/// proxyha keeps a cluster of web proxies reachable on one virtual IP:
/// VRRP-elected directors balance client flows over the healthy scanning
/// nodes with Maglev, rewriting only the MAC (direct server return).
#[derive(Debug, Parser)]
#[command(name = "proxyha", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `proxyha --help` and the DESCRIPTION of proxyha(1).
const LONG_ABOUT: &str = "proxyha keeps a cluster of web proxies reachable on one virtual IP: \
VRRP-elected directors balance client flows over the healthy scanning nodes with Maglev, \
rewriting only the MAC (direct server return).

Each node runs `proxyha run --config FILE` (under systemd: proxyha@NAME.service runs \
/etc/proxyha/NAME.toml). The other commands ask a running node over its control socket, \
or work on files.";

/// The subcommands. Each exists only once it works.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Manage heartbeat keys.
    #[command(subcommand)]
    Key(KeyCommand),

    /// Run one node in the foreground (as root).
    ///
    /// The priority in the config decides the role: 1..254 makes a director
    /// (VRRP election, balancing, scanning), 0 a scanning node only. Logs go to
    /// stderr; SIGINT or SIGTERM stops the node cleanly (a director sends its
    /// priority-0 advert, the XDP program is detached, the VIP is removed from lo).
    Run {
        /// The node's TOML config.
        #[arg(long, short)]
        config: PathBuf,
    },

    /// Show every node's role and state, as the original's `mfend-lb -s`.
    ///
    /// Asks the running daemon over its control socket. Each director appears
    /// twice (its director entry and its scanning entry); this node's own
    /// scanning entry is `__SELF__`. The five `stats` are: established
    /// connections to the proxy port, CPU load (per mille), capacity,
    /// heartbeats received, heartbeats missed. This node's VRRP state, VRID,
    /// priority, master IP and LBID follow.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
    },

    /// Dump the dataplane counters of a running node.
    ///
    /// With --watch, print per-second rates until interrupted (or --count times).
    Stats {
        #[command(flatten)]
        target: Target,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
        /// Print rates every --interval seconds.
        #[arg(long)]
        watch: bool,
        /// Seconds between --watch samples.
        #[arg(long, default_value_t = 1.0, value_parser = parse_interval)]
        interval: f64,
        /// Stop --watch after this many samples.
        #[arg(long)]
        count: Option<u64>,
    },

    /// Show the node's recent events; with --follow, then every new one.
    ///
    /// The same events the `[notify]` commands get, in the same order:
    /// master, backup, fault, stop, and node (a node's heartbeat state
    /// changed), numbered without gaps per daemon run (docs/notifications.md).
    /// --follow ends when the daemon closes the stream (it stops, or this
    /// reader fell more than 256 events behind), with exit status 1.
    Events {
        #[command(flatten)]
        target: Target,
        /// Keep printing new events as they happen.
        #[arg(long, short)]
        follow: bool,
        /// One JSON object per line instead.
        #[arg(long)]
        json: bool,
    },

    /// Drain a running node (no new flows, established ones stay) or undo it.
    ///
    /// The node reports DRAINING in its heartbeats within one interval; the
    /// Active Director then gives it weight 0 in Maglev, so new connections go
    /// to the other nodes while its established ones keep their node.
    Drain {
        #[command(flatten)]
        target: Target,
        /// `on` to drain, `off` to take new flows again.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },

    /// Re-read a running node's config file and apply what changed.
    ///
    /// The same as `kill -HUP`, but waits for the outcome: prints the keys
    /// applied, or the error (an invalid file, or a setting that only a
    /// restart changes, such as the interface, the VRID or the queues) and
    /// exits 1; then nothing changed. A Master stays Master unless its new
    /// priority loses; established flows stay where they are.
    Reload {
        #[command(flatten)]
        target: Target,
    },

    /// Check the local proxy service, as the original's `mwg-mon -c`.
    ///
    /// Connects to every port redirect's proxy port on the VIP (from --config)
    /// or to 127.0.0.1:--port. Prints `current state: ok` and one `port N
    /// reachable` line per port; exits 1 with `current state: failed` when a
    /// port does not answer.
    Check {
        /// Take the proxy ports and the VIP from this config.
        #[arg(long, short, conflicts_with = "port")]
        config: Option<PathBuf>,
        /// Check 127.0.0.1:PORT instead (default 9090).
        #[arg(long)]
        port: Option<u16>,
        /// Connect timeout in milliseconds.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
    },

    /// Print a shell completion script.
    ///
    /// bash: `proxyha completions bash > /etc/bash_completion.d/proxyha`;
    /// zsh: into a directory of $fpath as `_proxyha`; fish: into
    /// ~/.config/fish/completions/proxyha.fish. The .deb installs all three.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Write one man page per command into DIR (for packaging).
    #[command(hide = true)]
    Manpages {
        /// The directory to write `proxyha.1`, `proxyha-run.1`, ... into.
        dir: PathBuf,
    },
}

/// Which node's daemon to ask.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The node's name: its socket is /run/proxyha/NAME.sock.
    #[arg(long, conflicts_with = "socket")]
    pub node: Option<String>,
    /// The control socket's path (node.control_socket in the config).
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

impl Target {
    fn path(&self) -> Result<PathBuf, String> {
        match (&self.node, &self.socket) {
            (_, Some(p)) => Ok(p.clone()),
            (Some(n), None) => Ok(crate::config::default_socket(n)),
            (None, None) => {
                // A single daemon on this machine needs no name.
                let socks: Vec<PathBuf> = std::fs::read_dir("/run/proxyha")
                    .map(|d| {
                        d.filter_map(Result::ok)
                            .map(|e| e.path())
                            .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                            .collect()
                    })
                    .unwrap_or_default();
                match socks.as_slice() {
                    [one] => Ok(one.clone()),
                    [] => Err("no daemon socket in /run/proxyha; give --node or --socket".into()),
                    _ => Err("several daemons run here; give --node NAME or --socket PATH".into()),
                }
            }
        }
    }
}

fn parse_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.1..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be 0.1..3600 seconds".into())
    }
}

/// `proxyha config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a node config file and print the resolved settings.
    ///
    /// Exits 0 when the file is valid; otherwise prints one error naming the
    /// file, the key and the rule (e.g. `cluster.toml: vrrp.vrid = 300: must
    /// be 1..255`) and exits 1.
    Check {
        /// The TOML file to check.
        file: PathBuf,
        /// Print the resolved settings as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `proxyha key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new random 32-byte heartbeat key (HMAC-SHA256) to FILE.
    ///
    /// FILE must not exist; it is created with mode 0600. Copy it to every
    /// node of the group (mode 0600, owned by root) and point
    /// heartbeat.key_file at it.
    New {
        /// Where to write the key.
        file: PathBuf,
    },
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Check { file, json }) => config_check(&file, json),
        Command::Key(KeyCommand::New { file }) => key::command_new(&file),
        Command::Run { config } => run(&config),
        Command::Status { target, json } => status::command(&target, json),
        Command::Stats {
            target,
            json,
            watch,
            interval,
            count,
        } => stats::command(&target, json, watch, interval, count),
        Command::Events {
            target,
            follow,
            json,
        } => events::command(&target, follow, json),
        Command::Drain { target, state } => drain(&target, &state),
        Command::Reload { target } => reload(&target),
        Command::Check {
            config,
            port,
            timeout_ms,
        } => check::command(config.as_deref(), port, timeout_ms),
        Command::Completions { shell } => docs::command_completions(shell),
        Command::Manpages { dir } => docs::command_manpages(&dir),
    }
}

fn drain(target: &Target, state: &str) -> i32 {
    let path = match target.path() {
        Ok(p) => p,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            return 1;
        }
    };
    let on = state == "on";
    match crate::node::admin::ask(&path, crate::node::admin::Request::Drain(on)) {
        Ok(a) if a.contains("\"draining\"") => {
            println!("draining: {state}");
            0
        }
        Ok(a) => {
            crate::eprintln_safe!(
                "proxyha: unexpected answer from {}: {}",
                path.display(),
                a.trim()
            );
            1
        }
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            1
        }
    }
}

fn reload(target: &Target) -> i32 {
    let path = match target.path() {
        Ok(p) => p,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            return 1;
        }
    };
    let answer = match crate::node::admin::ask(&path, crate::node::admin::Request::Reload) {
        Ok(a) => a,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            return 1;
        }
    };
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
    if let Some(e) = v["error"].as_str() {
        crate::eprintln_safe!("proxyha: reload failed: {e}");
        return 1;
    }
    match v["changed"].as_array() {
        Some(c) if c.is_empty() => println!("reloaded: nothing changed"),
        Some(c) => println!(
            "reloaded: {}",
            c.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => {
            crate::eprintln_safe!(
                "proxyha: unexpected answer from {}: {}",
                path.display(),
                answer.trim()
            );
            return 1;
        }
    }
    0
}

fn run(file: &std::path::Path) -> i32 {
    let cfg = match crate::config::load(file) {
        Ok(c) => c,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            return 1;
        }
    };
    match crate::node::run(cfg, file) {
        Ok(()) => 0,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            let text = e.to_string();
            if text.contains("Permission denied") || text.contains("Operation not permitted") {
                crate::eprintln_safe!(
                    "proxyha: `proxyha run` needs root (CAP_NET_ADMIN and CAP_BPF, plus CAP_SYS_ADMIN to mount bpffs)"
                );
            }
            1
        }
    }
}

fn config_check(file: &std::path::Path, json: bool) -> i32 {
    match crate::config::load(file) {
        Ok(cfg) => {
            if json {
                match serde_json::to_string_pretty(&cfg) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        crate::eprintln_safe!("proxyha: cannot render JSON: {e}");
                        return 1;
                    }
                }
            } else {
                println!("{}: ok", file.display());
                print!("{}", cfg.render());
            }
            0
        }
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            1
        }
    }
}
