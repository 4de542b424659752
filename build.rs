//! Compiles every XDP program in `src/bpf/` (`*.bpf.c`) with clang into
//! `OUT_DIR`, where the `xsk` module embeds them with `include_bytes!`.
//! (Temporary copy on the perf branch until the xsk branch's build.rs lands.)

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-env-changed=CLANG");
    let mut sources: Vec<PathBuf> = std::fs::read_dir("src/bpf")
        .expect("src/bpf exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    for src in sources {
        let file = src
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        let name = file.trim_end_matches(".bpf.c");
        let obj = out.join(format!("{name}.bpf.o"));
        println!("cargo:rerun-if-changed={}", src.display());
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {clang} to build {}: {e} (scripts/setup.sh installs clang)",
                    src.display()
                )
            });
        assert!(status.success(), "{clang} failed on {}", src.display());
    }
}
