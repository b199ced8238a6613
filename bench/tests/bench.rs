//! shopchat-bench against a test server: each scenario runs briefly and every message
//! it sent is accounted for (acked, and pushed to each receiver). No timing is asserted:
//! figures are for BENCHMARKS.md, not for tests.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::TestServer;
use serde_json::Value;

/// Runs the bench binary with `args` against `srv`; returns its JSON summary.
fn bench(srv: &TestServer, args: &[&str]) -> Value {
    bench_at(&format!("ws://{}", srv.addr), args)
}

fn bench_at(url: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shopchat-bench"))
        .arg("--url")
        .arg(url)
        .arg("--json")
        .args(args)
        .output()
        .expect("shopchat-bench should run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "shopchat-bench {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"))
}

/// Every message sent was acked, and every ack's receivers got their push.
fn all_counted(s: &Value, fanout: u64) {
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {s}"));
    assert!(n("sent") > 0, "nothing was sent: {s}");
    assert_eq!(n("errors"), 0, "{s}");
    assert_eq!(n("acked"), n("sent"), "{s}");
    assert_eq!(n("expected"), n("acked") * fanout, "{s}");
    assert_eq!(n("received"), n("expected"), "{s}");
    assert_eq!(
        s["latency"]["samples"].as_u64(),
        Some(n("received")),
        "every push is timed: {s}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pairs_closed_and_open_loop_count_every_message() {
    let srv = TestServer::start();
    let s =
        tokio::task::block_in_place(|| bench(&srv, &["pairs", "--pairs", "5", "--duration", "1"]));
    assert_eq!(s["scenario"], "pairs");
    assert_eq!(s["connections"], 10);
    all_counted(&s, 1);
    let s = tokio::task::block_in_place(|| {
        bench(
            &srv,
            &[
                "--uid-base",
                "2000000",
                "pairs",
                "--pairs",
                "5",
                "--duration",
                "1",
                "--rate",
                "200",
            ],
        )
    });
    all_counted(&s, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn group_and_service_count_every_delivery() {
    let srv = TestServer::start();
    let s = tokio::task::block_in_place(|| {
        bench(
            &srv,
            &[
                "group",
                "--members",
                "20",
                "--duration",
                "1",
                "--senders",
                "2",
            ],
        )
    });
    assert_eq!(s["scenario"], "group");
    all_counted(&s, 19);
    let s = tokio::task::block_in_place(|| {
        bench(
            &srv,
            &[
                "--uid-base",
                "3000000",
                "service",
                "--shops",
                "2",
                "--agents",
                "2",
                "--consumers",
                "6",
                "--duration",
                "1",
            ],
        )
    });
    assert_eq!(s["connections"], 10);
    all_counted(&s, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_reports_the_servers_memory_per_connection() {
    let srv = TestServer::start();
    // The server runs in this process: its RSS is ours.
    let pid = std::process::id().to_string();
    let s = tokio::task::block_in_place(|| {
        bench(
            &srv,
            &[
                "idle",
                "--connections",
                "50",
                "--duration",
                "0.5",
                "--pid",
                &pid,
            ],
        )
    });
    assert_eq!(s["connections"], 50);
    assert!(s["rss_kib_total"].is_u64(), "{s}");
    assert!(s["rss_kib_per_connection"].is_number(), "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_url_may_end_in_a_slash() {
    let srv = TestServer::start();
    let url = format!("ws://{}/", srv.addr);
    let s = tokio::task::block_in_place(|| {
        bench_at(&url, &["pairs", "--pairs", "2", "--duration", "1"])
    });
    all_counted(&s, 1);
}
