//! A few-second smoke run of the perf lab (`proxyha-perflab smoke`), so that
//! the harness keeps working: topology up, sinks, generator, the in-kernel
//! baselines, the AF_XDP director (proxyha's worker, the bare hairpin),
//! latency sampling, teardown. No performance thresholds; it only checks that
//! frames flowed through each case and that nothing is left behind. Without
//! root it prints a SKIP line, or fails under `CI` / `PROXYHA_REQUIRE_ROOT=1`
//! (`proxyha::node::prereq`).

use std::process::Command;

use proxyha::node::prereq::{require_root, require_tool};

fn our_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("phperf-"))
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

#[test]
fn perflab_smoke_run_forwards_and_cleans_up() {
    const NAME: &str = "perflab_smoke_run_forwards_and_cleans_up";
    if !require_root(NAME)
        || ["ip", "nft", "ethtool"]
            .iter()
            .any(|t| !require_tool(NAME, t))
    {
        return;
    }
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_proxyha-perflab"))
        .args([
            "smoke",
            "--cases",
            "floor,a,b,c,d,e,ot,ox",
            "--seconds",
            "0.5",
        ])
        .arg("--latency-seconds")
        .arg("0.3")
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .expect("run proxyha-perflab");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "perflab failed:\n{stdout}\n{stderr}");
    assert!(
        our_namespaces().is_empty(),
        "namespaces left: {:?}",
        our_namespaces()
    );

    // The JSON it wrote: every case forwarded frames to the sinks.
    let json = std::fs::read_dir(out_dir.path())
        .expect("out dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a JSON result");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read json")).expect("json");
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 8, "{v}");
    for c in cases {
        let rx = c["repeats"][0]["received"].as_u64().unwrap_or(0);
        assert!(rx > 0, "case {} forwarded nothing: {c}", c["case"]);
    }
    // Both sinks got a share through the balancing director cases (the
    // own-share cases end at the director's stack).
    for c in cases
        .iter()
        .filter(|c| !["Floor", "OwnTap", "OwnXdp"].contains(&c["case"].as_str().unwrap_or("")))
    {
        let split = &c["repeats"][0]["sink_split"];
        assert!(
            split[0].as_u64().unwrap_or(0) > 0 && split[1].as_u64().unwrap_or(0) > 0,
            "case {} did not spread over both sinks: {split}",
            c["case"]
        );
    }
    let png = json.with_extension("png");
    assert!(
        std::fs::metadata(&png)
            .map(|m| m.len() > 1000)
            .unwrap_or(false),
        "no plot at {}",
        png.display()
    );
}
