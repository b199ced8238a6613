//! Live signals (PROTOCOL.md §11): typing (code 203), never stored, throttled per
//! connection and chat, with a budget of its own.

mod common;

use std::time::Duration;

use common::{ask_shop, Client, TestServer};
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(300);

async fn typing(c: &mut Client, chat_id: &str, role_type: Option<i64>) -> Value {
    let mut content = json!({ "chat_id": chat_id });
    if let Some(r) = role_type {
        content["role_type"] = json!(r);
    }
    c.request("chat", "typing", content).await
}

/// The typing events (code 203) that arrive within `quiet` of each other.
async fn typing_events(c: &mut Client) -> Vec<Value> {
    c.drain_events(QUIET)
        .await
        .into_iter()
        .filter(|e| e["code"] == 203)
        .collect()
}

#[tokio::test]
async fn typing_reaches_the_other_side_only_and_is_never_stored() {
    let srv = TestServer::start();
    srv.put_user(7, json!({"nickname": "Ann"})).await;
    let mut ann = srv.connect(7).await;
    let mut ann_phone = srv.connect(7).await;
    let mut bob = srv.connect(12).await;
    let mut eve = srv.connect(13).await;
    ann.send_direct(12, "hi").await;

    let r = typing(&mut ann, "7_12", None).await;
    assert_eq!(r["code"], 1, "{r}");
    assert_eq!(
        typing_events(&mut bob).await,
        [
            json!({"code": 203, "msg": null, "result": {"chat_id": "7_12", "chat_type": 1, "uid": 7, "nickname": "Ann"}})
        ]
    );
    assert!(
        typing_events(&mut ann_phone).await.is_empty(),
        "never to the typist's own devices"
    );
    assert!(typing_events(&mut eve).await.is_empty());

    // A conversation the typist is not in: answered, sent nowhere.
    let r = typing(&mut eve, "7_12", None).await;
    assert_eq!(r["code"], 1);
    assert!(typing_events(&mut bob).await.is_empty());
    assert!(typing_events(&mut ann).await.is_empty());
    let r = typing(&mut eve, "", None).await;
    assert_eq!(r["error"], "bad_params");

    // Nothing was stored.
    let rows = bob.sync(0, 100).await["result"]["rows"].clone();
    assert_eq!(
        rows.as_array().unwrap().len(),
        1,
        "only the message: {rows}"
    );
}

#[tokio::test]
async fn customer_service_typing_goes_to_the_sessions_agent_and_back_as_the_shop() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea House", &[(100, "Amy"), (101, "Bo")])
        .await;
    srv.put_user(12, json!({"nickname": "Carol"})).await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "hello").await;
    amy.push().await;
    let mut bo = srv.online_agent(101).await;
    amy.drain_events(QUIET).await;

    typing(&mut consumer, "3____12", Some(0)).await;
    let got = typing_events(&mut amy).await;
    assert_eq!(
        got.iter().map(|e| e["result"].clone()).collect::<Vec<_>>(),
        [json!({"chat_id": "3____12", "chat_type": 4, "uid": 12, "nickname": "Carol"})]
    );
    assert!(
        typing_events(&mut bo).await.is_empty(),
        "only the session's agent"
    );

    typing(&mut amy, "3____12", Some(1)).await;
    let got = typing_events(&mut consumer).await;
    assert_eq!(
        got.iter().map(|e| e["result"].clone()).collect::<Vec<_>>(),
        [json!({"chat_id": "3____12", "chat_type": 4, "uid": 0, "nickname": "Tea House"})],
        "an agent types as the shop"
    );
    // Bo is not an agent of shop 4, nor may a stranger type as shop 3's agent.
    let mut stranger = srv.connect(55).await;
    typing(&mut stranger, "3____12", Some(1)).await;
    assert!(typing_events(&mut consumer).await.is_empty());
}

#[tokio::test]
async fn group_typing_reaches_the_other_members() {
    let srv = TestServer::start();
    let mut owner = srv.connect(1).await;
    let mut owner_pc = srv.connect(1).await;
    let r = owner
        .request("group", "create", json!({"name": "Tea club", "open": true}))
        .await;
    let group = r["result"]["group_id"].as_i64().unwrap();
    let mut member = srv.connect(2).await;
    member
        .request("group", "join", json!({"group_id": group}))
        .await;
    let mut outsider = srv.connect(3).await;
    let chat = format!("group_{group}");
    typing(&mut owner, &chat, None).await;
    let got = typing_events(&mut member).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["result"]["chat_type"], 2);
    assert_eq!(got[0]["result"]["uid"], 1);
    assert!(typing_events(&mut owner_pc).await.is_empty());
    typing(&mut outsider, &chat, None).await;
    assert!(
        typing_events(&mut member).await.is_empty(),
        "a non-member's typing goes nowhere"
    );
}

#[tokio::test]
async fn typing_is_throttled_per_chat_and_never_spends_the_send_budget() {
    let srv = TestServer::start_with(|c| {
        c.limits.msgs_per_sec = 5;
        c.limits.burst = 5;
    });
    let mut ann = srv.connect(7).await;
    let mut bob = srv.connect(12).await;
    // 50 signals within a second: each answered, one pushed (the leading edge).
    let start = tokio::time::Instant::now();
    for _ in 0..50 {
        let r = typing(&mut ann, "7_12", None).await;
        assert_eq!(r["code"], 1, "{r}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the test sends within one window"
    );
    assert_eq!(typing_events(&mut bob).await.len(), 1);
    // The sends' budget is untouched.
    for i in 0..5 {
        let r = ann.send_direct(12, &format!("m{i}")).await;
        assert_eq!(r["code"], 1, "send {i} after typing: {r}");
    }
    // A new 2 s window lets one more through.
    tokio::time::sleep_until(start + Duration::from_millis(2100)).await;
    typing(&mut ann, "7_12", None).await;
    typing(&mut ann, "7_12", None).await;
    assert_eq!(typing_events(&mut bob).await.len(), 1);
}

/// The receipts (code 204) that arrive within `quiet` of each other.
async fn receipts(c: &mut Client) -> Vec<Value> {
    c.drain_events(QUIET)
        .await
        .into_iter()
        .filter(|e| e["code"] == 204)
        .map(|e| e["result"].clone())
        .collect()
}

async fn read(c: &mut Client, chat_id: &str, role_type: i64, msg_id: Option<i64>) -> Value {
    let mut content = json!({"chat_id": chat_id, "role_type": role_type});
    if let Some(id) = msg_id {
        content["msg_id"] = json!(id);
    }
    c.request("chat", "setChatRead", content).await
}

fn id_of(ack: &Value) -> i64 {
    ack["result"]["msg_id"]
        .as_i64()
        .expect("an ack carries its msg_id")
}

/// The `read` flags of the caller's own rows in a history page, oldest first.
async fn read_flags(srv: &TestServer, uid: i64, chat_id: &str) -> Vec<(String, Value)> {
    let page = srv
        .post_as(uid, "/user/getChatRecord", json!({"chat_id": chat_id}))
        .await;
    let mut rows: Vec<(String, Value)> = page["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mine"] == true)
        .map(|r| (r["msg"].as_str().unwrap().to_string(), r["read"].clone()))
        .collect();
    rows.reverse();
    rows
}

#[tokio::test]
async fn read_receipts_move_forward_reach_every_device_and_are_stored() {
    let srv = TestServer::start();
    let mut ann = srv.connect(7).await;
    let mut ann_phone = srv.connect(7).await;
    let mut bob = srv.connect(12).await;
    let mut bob_phone = srv.connect(12).await;
    let _m1 = id_of(&ann.send_direct(12, "m1").await);
    let m2 = id_of(&ann.send_direct(12, "m2").await);
    bob.drain_pushes(QUIET).await;

    let r = read(&mut bob, "7_12", 0, None).await;
    assert_eq!(r["code"], 1, "{r}");
    let want = json!({"chat_id": "7_12", "chat_type": 1, "reader_uid": 12, "read_msg_id": m2});
    assert_eq!(receipts(&mut ann).await, std::slice::from_ref(&want));
    assert_eq!(
        receipts(&mut ann_phone).await,
        [want],
        "every device of the other side"
    );
    assert!(
        receipts(&mut bob_phone).await.is_empty(),
        "not the reader's own devices"
    );
    read(&mut bob, "7_12", 0, None).await;
    assert!(
        receipts(&mut ann).await.is_empty(),
        "a cursor that did not move sends nothing"
    );

    let m3 = id_of(&ann.send_direct(12, "m3").await);
    assert_eq!(
        read_flags(&srv, 7, "7_12").await,
        [
            ("m1".to_string(), json!(true)),
            ("m2".to_string(), json!(true)),
            ("m3".to_string(), json!(false))
        ]
    );

    // With a msg_id: read up to it, the unread count is what comes after.
    let m4 = id_of(&ann.send_direct(12, "m4").await);
    ann.send_direct(12, "m5").await;
    read(&mut bob_phone, "7_12", 0, Some(m4)).await;
    assert_eq!(receipts(&mut ann).await[0]["read_msg_id"], m4);
    let list = bob.request("user", "recentChat", json!({})).await;
    assert_eq!(list["result"]["rows"][0]["unread_count"], 1, "{list}");
    // Never backwards, and only this chat's messages.
    read(&mut bob, "7_12", 0, Some(m3)).await;
    assert!(receipts(&mut ann).await.is_empty());
    let other = id_of(&srv.connect(8).await.send_direct(12, "elsewhere").await);
    let r = read(&mut bob, "7_12", 0, Some(other)).await;
    assert_eq!(r["error"], "bad_params", "{r}");

    // The cursor is stored: after a reconnect the history still says so.
    drop((bob, bob_phone));
    let _bob = srv.connect(12).await;
    let flags = read_flags(&srv, 7, "7_12").await;
    assert_eq!(flags[3], ("m4".to_string(), json!(true)));
    assert_eq!(flags[4], ("m5".to_string(), json!(false)));
    // A stranger's read mark touches nothing and tells nobody.
    let mut eve = srv.connect(13).await;
    assert_eq!(read(&mut eve, "7_12", 0, None).await["code"], 1);
    assert!(receipts(&mut ann).await.is_empty());
}

#[tokio::test]
async fn in_customer_service_the_shop_side_is_one_reader() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea House", &[(100, "Amy"), (101, "Bo")])
        .await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    let asked = id_of(&ask_shop(&mut consumer, 3, "in stock?").await);
    amy.push().await;
    let mut bo = srv.connect(101).await;

    // Bo reads the shop side: the consumer learns the shop read it.
    read(&mut bo, "3____12", 1, None).await;
    assert_eq!(
        receipts(&mut consumer).await,
        [json!({"chat_id": "3____12", "chat_type": 4, "reader_uid": 0, "read_msg_id": asked})]
    );
    assert_eq!(
        read_flags(&srv, 12, "3____12").await,
        [("in stock?".to_string(), json!(true))]
    );
    read(&mut amy, "3____12", 1, None).await;
    assert!(
        receipts(&mut consumer).await.is_empty(),
        "already read by the shop"
    );

    // The consumer reads Amy's answer: Amy, who has the session, is told.
    let answer = id_of(&common::answer(&mut amy, 12, "yes").await);
    consumer.push().await;
    read(&mut consumer, "3____12", 0, None).await;
    assert_eq!(
        receipts(&mut amy).await,
        [json!({"chat_id": "3____12", "chat_type": 4, "reader_uid": 12, "read_msg_id": answer})]
    );
    assert!(receipts(&mut bo).await.is_empty());
    assert_eq!(
        read_flags(&srv, 100, "3____12").await,
        [("yes".to_string(), json!(true))]
    );
}

#[tokio::test]
async fn groups_keep_unread_counts_but_send_no_receipts() {
    let srv = TestServer::start();
    let mut owner = srv.connect(1).await;
    let r = owner
        .request("group", "create", json!({"name": "Tea club", "open": true}))
        .await;
    let group = r["result"]["group_id"].as_i64().unwrap();
    let mut member = srv.connect(2).await;
    member
        .request("group", "join", json!({"group_id": group}))
        .await;
    let chat = format!("group_{group}");
    owner
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 2, "msg_type": 1, "msg": "hi all", "to_uid": group}),
        )
        .await;
    member.push().await;
    assert_eq!(read(&mut member, &chat, 0, None).await["code"], 1);
    assert!(receipts(&mut owner).await.is_empty());
    let page = srv
        .post_as(1, "/user/getChatRecord", json!({"chat_id": chat}))
        .await;
    assert!(page["result"]["rows"][0].get("read").is_none(), "{page}");
}
