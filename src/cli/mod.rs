//! The operator CLI. `main.rs` only calls [`main`]; parsing with clap stays
//! here, and the core only ever sees validated [`crate::config::Config`] values.

use std::path::PathBuf;

pub mod status;

use clap::{Parser, Subcommand};

/// proxyha keeps a cluster of web proxies reachable on one virtual IP:
/// VRRP-elected directors balance client flows over the healthy scanning
/// nodes with Maglev, rewriting only the MAC (direct server return).
#[derive(Debug, Parser)]
#[command(name = "proxyha", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Each exists only once it works.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
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

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Check { file, json }) => config_check(&file, json),
    }
}

fn config_check(file: &std::path::Path, json: bool) -> i32 {
    match crate::config::load(file) {
        Ok(cfg) => {
            if json {
                match serde_json::to_string_pretty(&cfg) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("proxyha: cannot render JSON: {e}");
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
            eprintln!("proxyha: {e}");
            1
        }
    }
}
