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
