//! Delivery guarantees: idempotent retries by client_msg_id, and storage failures that
//! ack nothing, push nothing, and heal by themselves.

mod common;

use std::time::Duration;

use common::{Client, TestServer};
use diesel::connection::SimpleConnection;
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(250);

fn with_id(to: i64, text: &str, id: &str) -> Value {
    json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": text, "to_uid": to, "client_msg_id": id}})
}

async fn history_len(srv: &TestServer, uid: i64, chat: &str) -> i64 {
    srv.post_as(uid, "/user/getChatRecord", json!({"chat_id": chat}))
        .await["result"]["total"]
        .as_i64()
        .unwrap()
}

/// Runs SQL on the server's database from outside, as an operator would.
fn sql(srv: &TestServer, statements: &str) {
    let pool = shopchat::db::connect(&srv.config.database.url, 1, Default::default()).unwrap();
    pool.get().unwrap().batch_execute(statements).unwrap();
}

#[tokio::test]
async fn a_retry_with_the_same_client_msg_id_is_stored_and_pushed_once() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    a.send_json(with_id(2, "once", "c-1")).await;
    let first = a.reply().await;
    assert_eq!(first["code"], 1);
    a.send_json(with_id(2, "once", "c-1")).await;
    let again = a.reply().await;
    assert_eq!(again, first, "the retry gets the original ack");

    // A retry after reconnecting, and two copies in flight at once, too.
    let mut a2 = srv.connect(1).await;
    a2.send_json(with_id(2, "once", "c-1")).await;
    assert_eq!(a2.reply().await, first);
    a.send_json(with_id(2, "twice", "c-2")).await;
    a.send_json(with_id(2, "twice", "c-2")).await;
    let (x, y) = (a.reply().await, a.reply().await);
    assert_eq!(x, y);
    assert_ne!(x["result"]["msg_id"], first["result"]["msg_id"]);

    let pushes: Vec<Value> = b
        .drain_pushes(QUIET)
        .await
        .into_iter()
        .map(|p| p["result"]["msg"].clone())
        .collect();
    assert_eq!(pushes, [json!("once"), json!("twice")]);
    assert_eq!(history_len(&srv, 1, "1_2").await, 2);

    // Another sender may use the same client id for its own message.
    let mut c = srv.connect(3).await;
    c.send_json(with_id(2, "mine", "c-1")).await;
    let other = c.reply().await;
    assert_ne!(other["result"]["msg_id"], first["result"]["msg_id"]);
}

#[tokio::test]
async fn client_msg_ids_are_remembered_beyond_a_day() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    a.send_json(with_id(2, "old", "k")).await;
    let first = a.reply().await;
    sql(&srv, "UPDATE messages SET createtime = createtime - 90000;");
    a.send_json(with_id(2, "old", "k")).await;
    let again = a.reply().await;
    assert_eq!(again["result"]["msg_id"], first["result"]["msg_id"]);
    assert_eq!(
        again["result"]["createtime"].as_i64().unwrap(),
        first["result"]["createtime"].as_i64().unwrap() - 90000
    );
    assert_eq!(history_len(&srv, 1, "1_2").await, 1);
}

#[tokio::test]
async fn group_retries_are_pushed_once_too() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    // Only contacts who have written each other may be added by a user (PROTOCOL.md §15).
    a.send_direct(2, "hi").await;
    b.send_direct(1, "hi").await;
    b.drain_pushes(QUIET).await;
    let g = a
        .request("group", "create", json!({"name": "g", "member_uids": [2]}))
        .await["result"]["group_id"]
        .as_i64()
        .unwrap();
    let msg = json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 2, "msg_type": 1, "msg": "hey", "to_uid": g, "client_msg_id": "g-1"}});
    a.send_json(msg.clone()).await;
    let first = a.reply().await;
    a.send_json(msg).await;
    assert_eq!(a.reply().await, first);
    assert_eq!(b.drain_pushes(QUIET).await.len(), 1);
}

async fn assert_storage_unavailable(c: &mut Client, to: i64) {
    let r = c.send_direct(to, "lost?").await;
    assert_eq!(
        r,
        json!({"code": 0, "msg": "storage unavailable, try again", "error": "storage_unavailable"})
    );
}

#[tokio::test]
async fn storage_failures_ack_nothing_push_nothing_and_heal_by_themselves() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    assert_eq!(a.send_direct(2, "before").await["code"], 1);
    b.push().await;

    let (refuse, allow) = common::refuse_inserts_sql();
    sql(&srv, refuse);
    assert_storage_unavailable(&mut a, 2).await;
    for i in 0..20 {
        a.send_json(with_id(2, "burst", &format!("b{i}"))).await;
    }
    for _ in 0..20 {
        assert_eq!(a.reply().await["error"], "storage_unavailable");
    }
    b.expect_silence(QUIET).await;
    a.send_text("ping").await;
    assert_eq!(
        a.reply().await["code"],
        -1,
        "the connection is still served"
    );
    assert_eq!(a.sync(0, 10).await["code"], 201, "reads still work");

    sql(&srv, allow);
    let ack = a.send_direct(2, "after").await;
    assert_eq!(ack["code"], 1, "recovered without a restart: {ack}");
    assert_eq!(b.push().await["result"]["msg"], "after");
    a.send_json(with_id(2, "burst", "b0")).await;
    assert_eq!(
        a.reply().await["code"],
        1,
        "a refused id was never stored, so a retry stores it"
    );
    let texts: Vec<String> = a.sync(0, 10).await["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["msg"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["before", "after", "burst"]);
}
