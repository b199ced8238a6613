//! A node comes back by itself after its database server is killed and restarted,
//! restarted cleanly, or has every connection cut (issue 28): on MariaDB and on
//! PostgreSQL, each test on a server of its own (tests/common/instance.rs), never the
//! machine's shared one. While the database is down, sends answer storage_unavailable,
//! /healthz answers 503 and a connecting user is closed with 1013 (PROTOCOL.md §11).
#![cfg(any(feature = "mysql", feature = "postgres"))]

mod common;
#[path = "common/instance.rs"]
mod instance;

use std::time::{Duration, Instant};

use common::{Client, TestServer};
use instance::{Instance, Kind};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// How long after the database answers again the node must serve again.
const RECOVERS_WITHIN: Duration = Duration::from_secs(10);

async fn send(c: &mut Client, to: i64, text: &str, client_id: &str) -> Value {
    c.request(
        "chat",
        "sendMsg",
        json!({"chat_type": 1, "msg_type": 1, "msg": text, "to_uid": to, "client_msg_id": client_id}),
    )
    .await
}

async fn healthz(srv: &TestServer) -> u16 {
    reqwest::get(srv.http("/healthz"))
        .await
        .expect("/healthz should answer")
        .status()
        .as_u16()
}

/// Sends `text` (retrying with the same client_msg_id, as PROTOCOL.md §4 tells clients)
/// until it is acked; fails if that takes longer than [`RECOVERS_WITHIN`]. Returns the
/// ack's msg_id.
async fn send_until_acked(c: &mut Client, to: i64, text: &str) -> i64 {
    let deadline = Instant::now() + RECOVERS_WITHIN;
    loop {
        let r = send(c, to, text, text).await;
        if r["code"] == 1 {
            return r["result"]["msg_id"].as_i64().expect("an ack has a msg_id");
        }
        assert_eq!(r["error"], "storage_unavailable", "{r}");
        assert!(
            Instant::now() < deadline,
            "not serving {RECOVERS_WITHIN:?} after the database came back: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// While the database is down: a send answers storage_unavailable (within the client's
/// wait), /healthz answers 503, and a user connecting is closed with 1013.
async fn down(srv: &TestServer, a: &mut Client) {
    let asked = Instant::now();
    let r = send(a, 2, "while down", "while-down").await;
    assert_eq!(r["error"], "storage_unavailable", "{r}");
    eprintln!(
        "a send while the database is down answered in {:?}",
        asked.elapsed()
    );
    assert_eq!(healthz(srv).await, 503);
    let mut late = srv.connect(3).await;
    assert_eq!(late.closed().await, Some(CloseCode::Again));
}

/// The node serves again: sends are acked, /healthz is 200, a new connection works, and
/// every acked message is in the receiver's history once.
async fn serves(srv: &TestServer, a: &mut Client, step: &str, acked: &mut Vec<i64>) {
    let came_back = Instant::now();
    acked.push(send_until_acked(a, 2, step).await);
    eprintln!(
        "{step}: serving again {:?} after the database",
        came_back.elapsed()
    );
    for i in 0..20 {
        let r = send(a, 2, &format!("{step} then {i}"), &format!("{step}-{i}")).await;
        assert_eq!(r["code"], 1, "every send after the first is acked: {r}");
        acked.push(r["result"]["msg_id"].as_i64().unwrap());
    }
    // Like a request, a health check may find one pooled connection dead first.
    let deadline = Instant::now() + RECOVERS_WITHIN;
    while healthz(srv).await != 200 {
        assert!(Instant::now() < deadline, "/healthz not 200 again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = history_of(srv, 2).await;
    let mut want = acked.clone();
    want.sort();
    let mut held = got.clone();
    held.dedup();
    assert_eq!(held, got, "no message twice");
    assert!(
        want.iter().all(|id| got.contains(id)),
        "every acked message is stored: acked {want:?}, stored {got:?}"
    );
}

/// The msg_ids of `uid`'s `chat.sync` from the start, read on a new connection. Each
/// pooled connection that was idle for less than a second when the database went away
/// fails the one request that finds it dead (storage_unavailable, or 1013 on connect),
/// so this retries as a client does.
async fn history_of(srv: &TestServer, uid: i64) -> Vec<i64> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let deadline = Instant::now() + RECOVERS_WITHIN;
    let sync =
        json!({"class": "chat", "action": "sync", "content": {"since_msg_id": 0, "limit": 200}});
    loop {
        assert!(Instant::now() < deadline, "history not readable again");
        let (mut ws, _) = tokio_tungstenite::connect_async(srv.ws_url(uid))
            .await
            .expect("the upgrade is accepted");
        let _ = ws.send(Message::text(sync.to_string())).await;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(common::WAIT, ws.next()).await {
            let Message::Text(text) = frame else {
                break;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["code"] == 201 {
                return v["result"]["rows"]
                    .as_array()
                    .expect("sync lists rows")
                    .iter()
                    .map(|m| m["msg_id"].as_i64().unwrap())
                    .collect();
            }
            if v["code"].as_i64() < Some(200) {
                assert_eq!(v["error"], "storage_unavailable", "{v}");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn recovers_from_every_restart(kind: Kind) {
    let Some(mut db) = Instance::start(kind) else {
        return;
    };
    let url = db.database("shopchat");
    let srv = TestServer::start_with(|c| {
        c.database.url = url.clone();
        c.database.pool_size = 3;
        c.database.read_pool_size = 2;
    });
    let mut a = srv.connect(1).await;
    let mut acked = Vec::new();
    serves(&srv, &mut a, "before", &mut acked).await;

    db.kill();
    down(&srv, &mut a).await;
    db.restart();
    serves(&srv, &mut a, "after kill -9", &mut acked).await;

    db.stop();
    down(&srv, &mut a).await;
    db.restart();
    serves(&srv, &mut a, "after a clean restart", &mut acked).await;

    // Idle past the pool's ping-on-checkout age, then every connection cut.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(db.cut_connections() > 0, "shopchat held connections to cut");
    serves(&srv, &mut a, "after every connection was cut", &mut acked).await;

    // Cut again while busy: the first sends may fail, then it serves.
    assert!(db.cut_connections() > 0);
    serves(&srv, &mut a, "after a second cut", &mut acked).await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_recovers_by_itself_when_mariadb_restarts() {
    recovers_from_every_restart(Kind::Mariadb).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_recovers_by_itself_when_postgresql_restarts() {
    recovers_from_every_restart(Kind::Postgres).await;
}
