//! Crash safety and graceful shutdown, against the real binary: after `kill -9` every
//! acknowledged message is in the history; SIGTERM and Ctrl-C finish in-flight stores,
//! close every socket with 1001 and exit 0 within server.shutdown_timeout_secs.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{ChildServer, Client};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const ENV: &[(&str, &str)] = &[
    ("SHOPCHAT__LIMITS__MSGS_PER_SEC", "0"),
    ("SHOPCHAT__SERVER__SHUTDOWN_TIMEOUT_SECS", "5"),
    ("RUST_LOG", "warn"),
];

fn send(i: usize) -> String {
    json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": format!("m{i}"), "to_uid": 2, "client_msg_id": format!("c{i}")}}).to_string()
}

/// Every msg_id user 2 can sync.
async fn stored_ids(srv: &ChildServer) -> HashSet<i64> {
    let mut c = srv.connect(2).await;
    let mut since = 0;
    let mut ids = HashSet::new();
    loop {
        let page = c.sync(since, 500).await;
        let rows = page["result"]["rows"].as_array().unwrap().clone();
        for r in &rows {
            ids.insert(r["msg_id"].as_i64().unwrap());
        }
        match rows.last() {
            Some(last) if page["result"]["has_more"] == true => {
                since = last["msg_id"].as_i64().unwrap()
            }
            _ => return ids,
        }
    }
}

/// Reads replies until the socket ends: the acked msg_ids, and the close code.
async fn acks_until_closed(c: &mut Client) -> (Vec<i64>, Option<u16>) {
    let mut acked = Vec::new();
    loop {
        match c.next_raw().await {
            Some(WsMessage::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["code"] == 1 {
                    acked.push(v["result"]["msg_id"].as_i64().unwrap());
                } else {
                    assert_eq!(
                        v["error"], "shutting_down",
                        "only a refusal for shutdown is expected: {v}"
                    );
                }
            }
            Some(WsMessage::Close(frame)) => return (acked, frame.map(|f| f.code.into())),
            Some(_) => {}
            None => return (acked, None),
        }
    }
}

#[tokio::test]
async fn after_kill_9_every_acknowledged_message_is_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = ChildServer::spawn(dir.path(), ENV);
    let mut a = srv.connect(1).await;
    let mut acked = Vec::new();
    let mut sent = 0;
    // Keep 100 sends in flight and kill the server in the middle of the stream.
    while acked.len() < 1500 {
        while sent - acked.len() < 100 {
            a.send_raw(WsMessage::text(send(sent))).await;
            sent += 1;
        }
        let r = a.reply().await;
        assert_eq!(r["code"], 1);
        acked.push(r["result"]["msg_id"].as_i64().unwrap());
    }
    srv.signal("-KILL");
    srv.wait_exit(Duration::from_secs(10));
    // Acks that were already on the wire count too.
    while let Some(m) = a.next_raw().await {
        if let WsMessage::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["code"] == 1 {
                acked.push(v["result"]["msg_id"].as_i64().unwrap());
            }
        }
    }
    drop(srv);

    let srv = ChildServer::spawn(dir.path(), ENV);
    let stored = stored_ids(&srv).await;
    let lost: Vec<&i64> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost: {lost:?}",
        lost.len()
    );
    assert!(stored.len() >= acked.len());
}

async fn graceful(sig: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = ChildServer::spawn(dir.path(), ENV);
    let mut a = srv.connect(1).await;
    let mut idle = srv.connect(3).await;
    for i in 0..300 {
        a.send_raw(WsMessage::text(send(i))).await;
    }
    srv.signal(sig);
    let (acked, code) = acks_until_closed(&mut a).await;
    assert_eq!(code, Some(1001), "the sender is closed with 1001");
    assert_eq!(
        idle.closed().await.map(u16::from),
        Some(1001),
        "so is an idle connection"
    );
    let status = srv.wait_exit(Duration::from_secs(5 + 2));
    assert!(status.success(), "exit status {status}");
    assert!(
        tokio_tungstenite::connect_async(srv.ws_url(1))
            .await
            .is_err(),
        "nothing is accepted after exit"
    );
    drop(srv);

    let srv = ChildServer::spawn(dir.path(), ENV);
    let stored = stored_ids(&srv).await;
    assert!(
        acked.iter().all(|id| stored.contains(id)),
        "every acked message was stored"
    );
    assert_eq!(
        stored.len(),
        acked.len(),
        "and nothing unacknowledged slipped in"
    );
}

#[tokio::test]
async fn sigterm_finishes_stored_work_closes_with_1001_and_exits_0() {
    graceful("-TERM").await;
}

#[tokio::test]
async fn ctrl_c_does_the_same() {
    graceful("-INT").await;
}

/// The webhook outbox survives `kill -9`: 200 events waiting for a receiver that is down
/// are all delivered, once each, by the restarted server.
#[tokio::test]
async fn after_kill_9_every_pending_webhook_event_is_delivered() {
    use common::receiver::{Answer, Receiver, SECRET};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let mut env = ENV.to_vec();
    env.extend([
        ("SHOPCHAT__WEBHOOKS__URL", url.as_str()),
        ("SHOPCHAT__WEBHOOKS__SECRET", SECRET),
        ("SHOPCHAT__WEBHOOKS__RETRY_BASE_MS", "200"),
        ("SHOPCHAT__WEBHOOKS__OFFLINE_COALESCE_SECS", "0"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut srv = ChildServer::spawn(dir.path(), &env);
    let mut a = srv.connect(1).await;
    let mut sent = HashSet::new();
    // To 200 users who are not connected: 200 conversations, 200 events.
    for to in 2..202 {
        let r = a.send_direct(to, "are you there?").await;
        sent.insert(r["result"]["msg_id"].as_i64().unwrap());
    }
    let admin = |path: &str| {
        reqwest::Client::new()
            .get(format!("http://{}{path}", srv.addr))
            .bearer_auth(shopchat::config::DEV_ADMIN_TOKEN)
    };
    let mut pending = 0;
    for _ in 0..100 {
        let v: Value = admin("/admin/webhooks/deliveries?state=pending&limit=500")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = v["result"]["rows"].as_array().unwrap();
        pending = rows.len();
        if pending == 200 && rows.iter().any(|r| r["attempts"].as_i64() > Some(0)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 200, "200 events wait for the receiver");
    srv.signal("-KILL");
    srv.wait_exit(Duration::from_secs(10));
    drop(srv);

    let hooks = Receiver::start_on(port, Box::new(|_, _| Answer::Ok));
    let _srv = ChildServer::spawn(dir.path(), &env);
    let events = hooks
        .wait_for("message.offline", 200, Duration::from_secs(60))
        .await;
    let delivered: HashSet<i64> = events
        .iter()
        .map(|e| e["data"]["msg_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        delivered, sent,
        "every pending event is delivered after the restart"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    hooks.assert_clean();
}
