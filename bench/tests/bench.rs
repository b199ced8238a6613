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

/// A short soak: pairs at a fixed rate with churning connections; the report accounts for
/// every message (acked, pushed and stored), per minute and over the run, and gives the
/// server's RSS and disk use.
#[tokio::test(flavor = "multi_thread")]
async fn soak_accounts_for_every_message_with_connections_coming_and_going() {
    let srv = TestServer::start();
    let pid = std::process::id().to_string();
    let db_file = srv
        .config
        .database
        .url
        .strip_prefix("sqlite://")
        .map(str::to_string);
    let mut args = vec![
        "soak",
        "--minutes",
        "0.05",
        "--rate",
        "300",
        "--pairs",
        "3",
        "--churn",
        "10",
        "--pid",
        &pid,
    ];
    if let Some(f) = &db_file {
        args.extend(["--db-file", f]);
    }
    let url = format!("ws://{}", srv.addr);
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_shopchat-bench"))
            .args(["--url", &url, "--json"])
            .args(&args)
            .output()
            .expect("shopchat-bench should run")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("every message accounted for"),
        "the soak lost track of a message: {stdout}"
    );
    assert!(stdout.contains("minute  1:"), "p99 per minute: {stdout}");
    assert!(stdout.contains("server RSS:"), "{stdout}");
    assert!(
        stdout.contains("connections opened and closed, 0 failed"),
        "{stdout}"
    );
    if db_file.is_some() {
        assert!(stdout.contains("database file and log:"), "{stdout}");
    }
    let s: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(s["scenario"], "soak");
    all_counted(&s, 1);
    assert!(s["generator_cpu_pct"].is_number(), "{s}");
    assert!(s["server_cpu_pct"].is_number(), "{s}");
}

/// `--churn 0` runs the soak with no connections coming and going, and ends with the
/// run (a churn period longer than the run used to hold the report back for a period).
#[tokio::test(flavor = "multi_thread")]
async fn a_soak_without_churn_opens_no_extra_connections_and_ends_with_its_run() {
    let srv = TestServer::start();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shopchat-bench"))
        .args(["--url", &format!("ws://{}", srv.addr), "--json", "soak"])
        .args([
            "--minutes",
            "0.03",
            "--rate",
            "200",
            "--pairs",
            "2",
            "--churn",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("shopchat-bench should run");
    // A 2 s run and its drain (at most 10 s): a minute is room enough.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the soak did not end with its run");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("churn: 0 connections opened and closed, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("every message accounted for"), "{stdout}");
    let s: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    all_counted(&s, 1);
}

/// Every run reports the generator's own CPU, and with --server-pid the server's.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_reports_the_generators_and_the_servers_cpu() {
    let srv = TestServer::start();
    let pid = std::process::id().to_string();
    let s = tokio::task::block_in_place(|| {
        bench(
            &srv,
            &[
                "--server-pid",
                &pid,
                "pairs",
                "--pairs",
                "2",
                "--duration",
                "1",
            ],
        )
    });
    all_counted(&s, 1);
    let gen = s["generator_cpu_pct"].as_f64().expect("generator CPU");
    assert!((0.0..=400.0).contains(&gen), "{s}");
    assert!(s["server_cpu_pct"].as_f64().is_some(), "{s}");
}

/// `--p99-every` gives the p99 of each period: a 2 s open-loop run in periods of 0.5 s
/// has at least four, most of them with messages in them.
#[tokio::test(flavor = "multi_thread")]
async fn p99_every_gives_one_p99_per_period() {
    let srv = TestServer::start();
    let s = tokio::task::block_in_place(|| {
        bench(
            &srv,
            &[
                "--p99-every",
                "0.5",
                "pairs",
                "--pairs",
                "2",
                "--duration",
                "2",
                "--rate",
                "200",
            ],
        )
    });
    all_counted(&s, 1);
    let periods = s["p99_ms_per_period"].as_array().expect("p99 per period");
    assert!(periods.len() >= 4, "{s}");
    assert!(
        periods.iter().all(|p| p.as_f64().is_some_and(|p| p >= 0.0)),
        "{s}"
    );
    assert!(
        periods.iter().filter(|p| p.as_f64() > Some(0.0)).count() >= 3,
        "most periods saw messages: {s}"
    );
}

/// `--peer-url` sends every other connection to a second node; with the same server as
/// both, every message is still counted.
#[tokio::test(flavor = "multi_thread")]
async fn the_peer_url_takes_every_other_connection() {
    let srv = TestServer::start();
    let peer = format!("ws://{}/", srv.addr);
    let s = tokio::task::block_in_place(|| {
        bench(
            &srv,
            &[
                "--peer-url",
                &peer,
                "pairs",
                "--pairs",
                "3",
                "--duration",
                "1",
            ],
        )
    });
    all_counted(&s, 1);
}

/// A free port on loopback (for a peer that takes its port as an argument).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A peer server process, killed when dropped.
struct Peer(std::process::Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Peer {
    /// Waits until `port` accepts connections.
    fn ready(self, port: u16) -> Peer {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return self;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the peer did not listen on {port}");
    }
}

/// The reference relay relays every message of pairs (closed and open loop) and of its
/// one group, with the writes it batches per wake-up.
#[test]
fn the_reference_relay_relays_every_message() {
    let port = free_port();
    let _relay = Peer(
        std::process::Command::new(env!("CARGO_BIN_EXE_reference_relay"))
            .args(["--port", &port.to_string(), "--group-members", "10"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the relay should start"),
    )
    .ready(port);
    relays_every_message(port, "20");
}

/// The Node.js relay (bench/node-relay, `npm ci --prefix bench/node-relay`) relays every
/// message. Skipped with a reason where Node or its `ws` package is missing, unless
/// SHOPCHAT_REQUIRE_SERVICES=1.
#[test]
#[ignore = "needs Node.js 20 and `npm ci --prefix bench/node-relay`"]
fn the_node_relay_relays_every_message() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/node-relay");
    let installed = std::path::Path::new(dir).join("node_modules/ws").exists()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("SHOPCHAT_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "SHOPCHAT_REQUIRE_SERVICES=1 but node or bench/node-relay/node_modules is missing"
        );
        eprintln!(
            "skipping: run `npm ci --prefix bench/node-relay` (Node.js 20) to test the Node relay"
        );
        return;
    }
    let port = free_port();
    let _relay = Peer(
        std::process::Command::new("node")
            .arg(format!("{dir}/relay.js"))
            .arg(port.to_string())
            .env("GROUP_MEMBERS", "10")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("node should start"),
    )
    .ready(port);
    relays_every_message(port, "10");
}

/// A relay on `port` (its group: the 10 users from the bench's uid base) relays every
/// message of `pairs` pairs closed loop and open loop, and of 2 senders in its group.
fn relays_every_message(port: u16, pairs: &str) {
    let url = format!("ws://127.0.0.1:{port}");
    all_counted(
        &bench_at(&url, &["pairs", "--pairs", pairs, "--duration", "1"]),
        1,
    );
    all_counted(
        &bench_at(
            &url,
            &["pairs", "--pairs", "5", "--duration", "1", "--rate", "500"],
        ),
        1,
    );
    let group = [
        "group",
        "--members",
        "10",
        "--duration",
        "1",
        "--group-id",
        "1",
        "--senders",
        "2",
    ];
    all_counted(&bench_at(&url, &group), 9);
}
