//! The built-in web client in a real browser: tests/e2e/chat.mjs drives Debian's
//! Chromium through playwright-core against a test server. Needs `node`,
//! `/usr/bin/chromium` (or `CHROMIUM`) and `npm ci --prefix tests/e2e`; without them the
//! test says why and skips, unless `SHOPCHAT_REQUIRE_SERVICES=1` (set by .ci/run).

mod common;

use std::path::Path;
use std::process::Command;

use common::TestServer;

/// What is missing to run the browser, if anything.
fn missing() -> Option<String> {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is missing (apt-get install chromium)"));
    }
    if !e2e.join("node_modules/playwright-core").exists() {
        return Some("playwright-core is missing (npm ci --prefix tests/e2e)".into());
    }
    None
}

/// Runs `tests/e2e/{script}` against a fresh server; it must print "e2e: ok".
fn run_script(script: &str) {
    if let Some(why) = missing() {
        assert!(
            std::env::var("SHOPCHAT_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "browser test required but {why}"
        );
        eprintln!("skipping the browser test: {why}");
        return;
    }
    let srv = TestServer::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(script);
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .arg(srv.http(""))
        .arg(&srv.config.admin.token)
        // What the platform signs cards with (PROTOCOL.md §12), for a signed deep link.
        .env("SHOPCHAT_CARD_SECRET", &srv.config.auth.jwt_secret);
    // SHOPCHAT_SCREENSHOTS=docs refreshes the README's screenshots.
    if let Ok(dir) = std::env::var("SHOPCHAT_SCREENSHOTS") {
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir));
    }
    let out = cmd.output().expect("node should run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("e2e: ok"),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
}

#[test]
#[ignore = "needs node, Chromium and playwright-core: apt-get install chromium; npm ci --prefix tests/e2e; cargo test -- --include-ignored"]
fn two_users_and_an_agent_chat_through_the_page() {
    run_script("chat.mjs");
}

/// Issue 19's shop day: a phone consumer by deep link, the workbench, a quick reply,
/// typing, ticks, a recall, a dropped connection, a transfer, a resolution, a rating.
#[test]
#[ignore = "needs node, Chromium and playwright-core: apt-get install chromium; npm ci --prefix tests/e2e; cargo test -- --include-ignored"]
fn a_shop_day_from_a_phone_and_the_workbench() {
    run_script("shopday.mjs");
}
