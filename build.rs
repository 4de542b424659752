//! Compiles the XDP programs with clang into `OUT_DIR`, where they are
//! embedded with `proxyha::embedded_object!`: the product's programs in
//! `src/bpf/` (`src/xsk/filter.rs`) and the perf lab's in `perf/lab/bpf/`
//! (the `proxyha-perflab` binary), which include `src/bpf/bpf_defs.h`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// (directory, program) pairs: `{dir}/{program}.bpf.c`.
const PROGRAMS: &[(&str, &str)] = &[
    ("src/bpf", "filter"),
    ("src/bpf", "pass"),
    ("perf/lab/bpf", "perf_gen"),
    ("perf/lab/bpf", "perf_sink"),
    ("perf/lab/bpf", "perf_rewrite"),
];

/// Headers the programs include.
const HEADERS: &[&str] = &[
    "src/bpf/bpf_defs.h",
    "src/bpf/filter_ipv6.h",
    "perf/lab/bpf/perf_defs.h",
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    println!("cargo:rerun-if-env-changed=CLANG");
    for header in HEADERS {
        println!("cargo:rerun-if-changed={header}");
    }
    for (dir, name) in PROGRAMS {
        let src = format!("{dir}/{name}.bpf.c");
        let obj = out.join(format!("{name}.bpf.o"));
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .args(["-I", "src/bpf", "-c"])
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
