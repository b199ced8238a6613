//! The binary and the config contract of DESIGN.md: `--config`, `SHOPCHAT_ENV`,
//! `SHOPCHAT__SECTION__KEY`, one-line errors, produce secrets, `shopchat token`, and
//! `shopchat` serving from a SQLite file it creates, in WAL mode, until SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shopchat::auth::Authenticator;
use shopchat::config::{AuthConfig, Config};
use shopchat::ids::UserId;

const BIN: &str = env!("CARGO_BIN_EXE_shopchat");

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// The binary run in `dir` with only the environment given (plus PATH).
fn shopchat(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("binary should run")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn verifies(secret: &str, token: &str) -> Option<UserId> {
    Authenticator::new(&AuthConfig {
        jwt_secret: secret.into(),
        ..AuthConfig::default()
    })
    .verify(token.trim())
    .ok()
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

#[test]
fn shipped_dev_config_serves_sqlite_on_9504() {
    let loaded = Config::load(Some(&repo_file("config.dev.toml"))).expect("dev config loads");
    assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
    let c = loaded.config;
    assert_eq!((c.server.host.as_str(), c.server.port), ("127.0.0.1", 9504));
    assert_eq!(c.database.url, "sqlite://data/shopchat.db");
    assert!(
        Config::load(Some(&repo_file("config.produce.toml"))).is_err(),
        "produce config holds no secrets"
    );
}

#[test]
fn token_command_uses_the_configured_secret_and_env_overrides() {
    let dir = dir_with(&[("my.toml", "[auth]\njwt_secret = \"file-secret\"\n")]);
    let out = shopchat(
        dir.path(),
        &["token", "--uid", "42", "--config", "my.toml"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(verifies("file-secret", &token), Some(UserId(42)));

    let out = shopchat(
        dir.path(),
        &["token", "--uid", "7", "--config", "my.toml"],
        &[("SHOPCHAT__AUTH__JWT_SECRET", "env-secret")],
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(verifies("env-secret", &token), Some(UserId(7)));
    assert_eq!(verifies("file-secret", &token), None);

    let out = shopchat(
        dir.path(),
        &["token", "--uid", "0", "--config", "my.toml"],
        &[],
    );
    assert!(!out.status.success());
}

#[test]
fn without_config_flag_the_env_picks_dev_or_produce() {
    let dir = dir_with(&[
        ("config.dev.toml", "[auth]\njwt_secret = \"dev-file\"\n"),
        (
            "config.produce.toml",
            "[auth]\njwt_secret = \"prod-file\"\n[admin]\ntoken = \"prod-admin\"\n",
        ),
    ]);
    let out = shopchat(dir.path(), &["token", "--uid", "1"], &[]);
    assert_eq!(
        verifies("dev-file", &String::from_utf8(out.stdout).unwrap()),
        Some(UserId(1))
    );
    let out = shopchat(
        dir.path(),
        &["token", "--uid", "1"],
        &[("SHOPCHAT_ENV", "produce")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        verifies("prod-file", &String::from_utf8(out.stdout).unwrap()),
        Some(UserId(1))
    );
}

#[test]
fn bad_or_missing_config_is_one_line_and_a_nonzero_exit() {
    let dir = dir_with(&[
        ("config.dev.toml", "[server]\nport = 9504\n"),
        ("broken.toml", "[server\nport="),
    ]);
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            &["token", "--uid", "1"],
            &[("SHOPCHAT__SERVER__PORT", "not-a-port")],
            "server.port",
        ),
        (
            &["token", "--uid", "1", "--config", "nope.toml"],
            &[],
            "nope.toml",
        ),
        (
            &["token", "--uid", "1", "--config", "broken.toml"],
            &[],
            "broken.toml",
        ),
        (
            &["token", "--uid", "1"],
            &[("SHOPCHAT__DATABASE__URL", "oracle://x")],
            "database.url",
        ),
    ];
    for (args, env, mentions) in cases {
        let out = shopchat(dir.path(), args, env);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} {env:?} should fail");
        assert_eq!(err.trim().lines().count(), 1, "one line, got: {err}");
        assert!(err.contains(mentions), "{err} should mention {mentions}");
    }
}

#[test]
fn produce_refuses_empty_or_default_secrets() {
    let produce = std::fs::read_to_string(repo_file("config.produce.toml")).unwrap();
    let dir = dir_with(&[("config.produce.toml", &produce)]);
    let env_produce = ("SHOPCHAT_ENV", "produce");
    let out = shopchat(dir.path(), &["token", "--uid", "1"], &[env_produce]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("auth.jwt_secret"), "{}", stderr(&out));

    let secret = ("SHOPCHAT__AUTH__JWT_SECRET", "a-real-secret");
    let out = shopchat(dir.path(), &["token", "--uid", "1"], &[env_produce, secret]);
    assert!(stderr(&out).contains("admin.token"), "{}", stderr(&out));

    let dev_default = (
        "SHOPCHAT__AUTH__JWT_SECRET",
        shopchat::config::DEV_JWT_SECRET,
    );
    let admin = ("SHOPCHAT__ADMIN__TOKEN", "a-real-admin-token");
    let out = shopchat(
        dir.path(),
        &["token", "--uid", "1"],
        &[env_produce, dev_default, admin],
    );
    assert!(
        !out.status.success(),
        "the development secret is refused in produce"
    );

    let out = shopchat(
        dir.path(),
        &["token", "--uid", "1"],
        &[env_produce, secret, admin],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        verifies("a-real-secret", &String::from_utf8(out.stdout).unwrap()),
        Some(UserId(1))
    );
}

#[test]
fn unknown_keys_are_warned_about_but_do_not_stop_it() {
    let dir = dir_with(&[("c.toml", "[server]\nprot = 1\n[databse]\nurl = \"x\"\n")]);
    let out = shopchat(
        dir.path(),
        &["token", "--uid", "1", "--config", "c.toml"],
        &[("SHOPCHAT__LIMITS__MAX_FRAME", "9")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for key in ["server.prot", "databse", "limits.max_frame"] {
        assert!(err.contains(key), "warning for {key} missing in: {err}");
    }
}

/// Reads the server's log until it says where it listens.
fn wait_for_listen_line(stderr: std::process::ChildStderr) -> String {
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("listening on ").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().to_string();
            std::thread::spawn(move || for _ in lines {});
            return addr;
        }
    }
    panic!("server never said where it listens");
}

#[tokio::test]
async fn serve_creates_its_sqlite_file_in_wal_mode_and_exits_0_on_sigterm() {
    let dev = std::fs::read_to_string(repo_file("config.dev.toml")).unwrap();
    let dir = dir_with(&[("config.dev.toml", &dev)]);
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env("SHOPCHAT__SERVER__PORT", "0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("server should start");
    let addr = wait_for_listen_line(child.stderr.take().unwrap());

    let db = dir.path().join("data/shopchat.db");
    let header = std::fs::read(&db).expect("database file and its folder are created");
    assert_eq!(&header[..16], b"SQLite format 3\0");
    assert_eq!(
        (header[18], header[19]),
        (2, 2),
        "WAL mode is recorded in the file header"
    );

    let token = Authenticator::new(&AuthConfig::default()).mint(UserId(1));
    let mut c = common::Client::connect(&format!("ws://{addr}/?token={token}")).await;
    assert_eq!(c.send_direct(2, "hello").await["code"], 1);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    assert_eq!(c.closed().await.map(u16::from), Some(1001));
}
