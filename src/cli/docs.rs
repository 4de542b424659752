//! Man pages and shell completions, generated from the clap definition in
//! [`super::Cli`] so that they never drift from the real options.
//!
//! `proxyha completions SHELL` prints a completion script (what users of
//! rustup, gh or kubectl expect); the hidden `proxyha manpages DIR` writes
//! one roff page per command (`proxyha.1`, `proxyha-run.1`,
//! `proxyha-config-check.1`, ...), which `scripts/package.sh` and
//! `scripts/install.sh` ship.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// The completion script for `shell`. Rendered into memory: clap_complete
/// panics when its writer fails (a closed pipe), a buffer never does.
pub fn completions(shell: Shell) -> Vec<u8> {
    // clap_complete completes hidden subcommands too; offer only the visible
    // ones (the top level has no arguments of its own besides -h and -V).
    let full = Cli::command();
    let mut cmd = clap::Command::new("proxyha")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "proxyha", &mut out);
    out
}

/// The FILES section of proxyha(1): (path, what it is), in roff-safe text.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/proxyha/NAME.toml",
        "A node's config; \\fBproxyha config check\\fR validates it.",
    ),
    (
        "/etc/proxyha/GROUP.key",
        "The group's heartbeat key (mode 0600, owned by root), made with \\fBproxyha key new\\fR.",
    ),
    ("/run/proxyha/NAME.sock", "A running node's control socket."),
    (
        "proxyha@NAME.service",
        "The systemd unit that runs /etc/proxyha/NAME.toml: \\fBsystemctl enable \\-\\-now proxyha@NAME\\fR.",
    ),
    (
        "/usr/share/doc/proxyha/examples/",
        "Example configs: a two-director group with one scanning node.",
    ),
];

/// Writes every visible command's man page (section 1) into `dir`, which is
/// created if needed, and returns the `proxyha*.1` files in `dir`, sorted.
/// proxyha(1) gets FILES and SEE ALSO sections besides clap's own.
pub fn write_manpages(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command().disable_help_subcommand(true);
    clap_mangen::generate_to(cmd.clone(), dir)?;
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(b".SH FILES\n");
    for (path, what) in FILES {
        page.extend_from_slice(format!(".TP\n\\fI{}\\fR\n{what}\n", roff_escape(path)).as_bytes());
    }
    page.extend_from_slice(
        b".SH \"SEE ALSO\"\nsystemd.service(5), systemctl(1), tshark(1) with \\fB\\-X lua_script:/usr/share/proxyha/wireshark/proxyha.lua\\fR\n",
    );
    man.render_version_section(&mut page)?;
    std::fs::write(dir.join(man.get_filename()), page)?;
    Ok(list_pages(dir)?.into_iter().collect())
}

/// Escapes the roff-special characters of a plain path: `-` and `\\`.
fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

fn list_pages(dir: &Path) -> std::io::Result<std::collections::BTreeSet<std::path::PathBuf>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "1")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("proxyha"))
        })
        .collect())
}

/// `proxyha completions SHELL`.
pub fn command_completions(shell: Shell) -> i32 {
    let script = completions(shell);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            crate::eprintln_safe!("proxyha: cannot write the completions: {e}");
            1
        }
    }
}

/// `proxyha manpages DIR`.
pub fn command_manpages(dir: &Path) -> i32 {
    match write_manpages(dir) {
        Ok(pages) => {
            for p in pages {
                println!("{}", p.display());
            }
            0
        }
        Err(e) => {
            crate::eprintln_safe!("proxyha: cannot write man pages to {}: {e}", dir.display());
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_command() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_manpages(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "proxyha.1",
            "proxyha-run.1",
            "proxyha-status.1",
            "proxyha-config-check.1",
            "proxyha-key-new.1",
            "proxyha-completions.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.contains("manpages")),
            "the hidden generator has no page: {names:?}"
        );
        let run = std::fs::read_to_string(dir.path().join("proxyha-run.1")).unwrap();
        assert!(run.starts_with(".ie \\n(.g .ds Aq"), "roff: {run:.80}");
        assert!(run.contains("\\-\\-config"), "{run}");
    }

    #[test]
    fn bash_completion_names_every_subcommand() {
        let text = String::from_utf8(completions(Shell::Bash)).unwrap();
        assert!(text.contains("complete -F _proxyha"), "{text:.200}");
        let top = text
            .lines()
            .find(|l| l.contains("opts=\"-h -V --help --version"))
            .expect("the top-level word list");
        for sub in ["run", "status", "stats", "drain", "check", "config", "key"] {
            assert!(top.contains(&format!(" {sub} ")), "no {sub}: {top}");
        }
        assert!(
            !text.contains("manpages"),
            "the hidden generator is offered"
        );
    }
}
