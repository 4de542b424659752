//! Compiles the XDP programs in `src/bpf/` with clang into `OUT_DIR`, where
//! `src/xsk/filter.rs` embeds them with `include_bytes!`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: &[&str] = &["filter", "pass", "perf_gen", "perf_sink", "perf_rewrite"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-env-changed=CLANG");
    for name in PROGRAMS {
        let src = format!("src/bpf/{name}.bpf.c");
        let obj = out.join(format!("{name}.bpf.o"));
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {clang} to build {src}: {e} (scripts/setup.sh installs clang)")
            });
        assert!(status.success(), "{clang} failed on {src}");
    }
}
