//! chat.sendMsg with chat_type 1 (PROTOCOL.md §4): ack after commit, push to every
//! connection of the receiver and the sender's other connections, validation, order.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::{json, Value};

fn send(to: Value, text: &str) -> Value {
    json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": text, "to_uid": to, "shop_id": 0, "role_type": 0}})
}

#[tokio::test]
async fn ack_and_push_carry_every_documented_field() {
    let srv = TestServer::start();
    srv.put_user(7, json!({"nickname": "Ann", "avatar": "/a/7.png"}))
        .await;
    let mut a = srv.connect(7).await;
    let mut b = srv.connect(12).await;
    a.send_json(json!({"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":1,"msg":"你好","to_uid":12,"chat_id":null,"client_msg_id":"c-1"}}))
        .await;
    let ack = a.reply().await;
    assert_eq!(ack["code"], 1);
    assert_eq!(ack["msg"], Value::Null);
    let r = &ack["result"];
    assert_eq!(r["chat_id"], "7_12");
    assert_eq!(r["client_msg_id"], "c-1");
    assert!(r["msg_id"].as_i64().unwrap() > 0);
    assert_eq!(r["seq"], 1, "the first row of its conversation");
    let now = shopchat::auth::unix_now() as i64;
    assert!((r["createtime"].as_i64().unwrap() - now).abs() < 60);

    let push = b.push().await;
    assert_eq!(push["code"], 200);
    assert_eq!(push["msg"], Value::Null);
    assert_eq!(
        push["result"],
        json!({
            "nickname": "Ann", "avatar": "http://media.test/a/7.png", "id": 7,
            "chat_id": "7_12", "chat_type": 1, "msg_type": 1, "msg": "你好",
            "createtime": r["createtime"], "msg_id": r["msg_id"], "client_msg_id": "c-1",
            "seq": 1
        })
    );
}

#[tokio::test]
async fn every_receiver_connection_and_the_senders_others_get_it_but_not_the_sender() {
    let srv = TestServer::start();
    let mut sender = srv.connect(1).await;
    let mut sender_pc = srv.connect(1).await;
    let mut phone = srv.connect(2).await;
    let mut tab = srv.connect(2).await;
    let mut bystander = srv.connect(3).await;
    let ack = sender.send_direct(2, "sync me").await;
    let id = &ack["result"]["msg_id"];
    for c in [&mut sender_pc, &mut phone, &mut tab] {
        let p = c.push().await;
        assert_eq!(p["result"]["msg_id"], *id);
        assert_eq!(p["result"]["msg"], "sync me");
    }
    sender.expect_silence(Duration::from_millis(300)).await;
    bystander.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn chat_id_is_derived_and_numeric_strings_are_accepted() {
    let srv = TestServer::start();
    let mut a = srv.connect(30).await;
    let mut b = srv.connect(4).await;
    a.send_json(json!({"class":"Chat","action":"sendMsg","content":{"chat_type":"1","msg_type":"2","msg":"http://x/y.png","to_uid":"4","chat_id":"bogus"}}))
        .await;
    let ack = a.reply().await;
    assert_eq!(ack["code"], 1, "{ack}");
    assert_eq!(ack["result"]["chat_id"], "4_30");
    let p = b.push().await;
    assert_eq!(
        (
            p["result"]["msg_type"].clone(),
            p["result"]["chat_id"].clone()
        ),
        (json!(2), json!("4_30"))
    );
}

#[tokio::test]
async fn invalid_sends_get_code_0_and_nothing_is_stored_or_pushed() {
    let srv = TestServer::start_with(|c| c.limits.max_msg_chars = 10);
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    let bad_params = json!({"code": 0, "msg": "参数错误", "error": "bad_params"});
    let cases = [
        json!({"class":"chat","action":"sendMsg","content":{"msg_type":1,"msg":"x","to_uid":2}}),
        json!({"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":1,"msg":"","to_uid":2}}),
        json!({"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":1,"msg":"x","to_uid":0}}),
        json!({"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":1,"msg":"x","to_uid":"two"}}),
        json!({"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":9,"msg":"x","to_uid":2}}),
        json!({"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":1,"msg":5,"to_uid":2}}),
        json!({"class":"chat","action":"sendMsg","content":{"chat_type":7,"msg_type":1,"msg":"x","to_uid":2}}),
        json!({"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":1,"msg":"x","to_uid":1}}),
        json!({"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":1,"msg":"x","to_uid":2,"client_msg_id":"x".repeat(65)}}),
    ];
    for case in cases {
        a.send_json(case.clone()).await;
        assert_eq!(a.reply().await, bad_params, "{case}");
    }
    a.send_json(send(json!(2), "12345678901")).await;
    assert_eq!(
        a.reply().await,
        json!({"code": 0, "msg": "msg is longer than the limit", "error": "msg_too_long"})
    );
    a.send_json(json!({"class":"chat","action":"sendMsg","content":{"chat_type":3,"msg_type":1,"msg":"x","to_uid":2}})).await;
    let r = a.reply().await;
    assert_eq!(
        (r["code"].clone(), r["error"].clone()),
        (json!(0), json!("forbidden"))
    );
    b.expect_silence(Duration::from_millis(300)).await;
    let page = b.sync(0, 100).await;
    assert_eq!(page["result"]["rows"], json!([]));
}

#[tokio::test]
async fn five_hundred_back_to_back_messages_keep_their_order() {
    const N: usize = 600;
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    for i in 0..N {
        a.send_json(send(json!(2), &format!("m{i}"))).await;
    }
    let mut last = 0;
    for i in 0..N {
        let ack = a.reply().await;
        assert_eq!(ack["code"], 1, "message {i}: {ack}");
        let id = ack["result"]["msg_id"].as_i64().unwrap();
        assert!(id > last, "ack {i} has msg_id {id} after {last}");
        last = id;
    }
    let mut last = 0;
    for i in 0..N {
        let p = b.push().await;
        assert_eq!(p["result"]["msg"], format!("m{i}"));
        let id = p["result"]["msg_id"].as_i64().unwrap();
        assert!(id > last);
        last = id;
    }
    let page = b.sync(0, 500).await;
    let rows = page["result"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 500);
    assert!(page["result"]["has_more"].as_bool().unwrap());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["msg"], format!("m{i}"));
    }
}

#[tokio::test]
async fn replies_keep_request_order_when_a_fast_reply_follows_a_store() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    for i in 0..50 {
        a.send_json(send(json!(2), &format!("m{i}"))).await;
        a.send_text("ping").await;
    }
    for _ in 0..50 {
        assert_eq!(a.reply().await["code"], 1);
        assert_eq!(a.reply().await["code"], -1);
    }
}

/// A retry that another node stores between this batch's lookup of its client_msg_id and
/// its insert (issue 28): here the test is that other node, holding the row in an open
/// transaction while the server's batch reaches its insert, then committing. The retry
/// gets the original's ack, and the other message of the same batch is stored as usual
/// (before the fix, MariaDB and PostgreSQL failed the whole batch with a duplicate key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_stored_by_another_node_meanwhile_gets_the_originals_ack() {
    use shopchat::db::{conn, NewMessage};
    use shopchat::ids::{ChatId, UserId};
    use shopchat::protocol::{ChatType, MsgType};
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    assert_eq!(a.send_direct(2, "warm up").await["code"], 1);
    let pool = conn::open(&srv.config.database.url, 1, Default::default()).unwrap();
    let (inserted_tx, inserted) = std::sync::mpsc::channel();
    let (commit_tx, commit) = std::sync::mpsc::channel::<()>();
    let other_node = std::thread::spawn(move || {
        use diesel::Connection;
        let mut c = conn::checkout(&pool).unwrap();
        let original = NewMessage::new(
            ChatType::Direct,
            ChatId::direct(UserId(1), UserId(2)).0,
            MsgType::Text,
            "the original".into(),
            UserId(1),
            UserId(2),
            Some("raced".into()),
        );
        c.transaction(|c| {
            // As a node's batch stores it: with the conversation's next seq, its row locked.
            let mut touches = shopchat::db::Touches::default();
            let id = shopchat::db::store::insert_row(c, &original, &mut touches)?.id;
            touches.apply(c)?;
            inserted_tx.send(id).unwrap();
            commit.recv().unwrap();
            diesel::QueryResult::Ok(id)
        })
        .unwrap()
    });
    let original = tokio::task::spawn_blocking(move || inserted.recv().unwrap())
        .await
        .unwrap();
    let frame = |text: &str, id: &str| json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": text, "to_uid": 2, "client_msg_id": id}});
    a.send_together([frame("the retry", "raced"), frame("another", "other")])
        .await;
    // Long enough for the batch to reach its insert and wait on the other transaction.
    tokio::time::sleep(Duration::from_millis(700)).await;
    commit_tx.send(()).unwrap();
    let stored = tokio::task::spawn_blocking(move || other_node.join().unwrap())
        .await
        .unwrap();
    assert_eq!(stored, original);
    let retry = a.reply().await;
    assert_eq!(retry["code"], 1, "a retry is never a failure: {retry}");
    assert_eq!(retry["result"]["msg_id"], original.0, "{retry}");
    let other = a.reply().await;
    assert_eq!(
        other["code"], 1,
        "the rest of the batch is left alone: {other}"
    );
    let mut b = srv.connect(2).await;
    let rows = b.sync(0, 10).await["result"]["rows"].clone();
    let texts: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["msg"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["warm up", "the original", "another"]);
}
