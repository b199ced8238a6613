//! Sensitive words (PROTOCOL.md §14): the list kept through the admin API, `reject`
//! storing nothing, `mask` storing and delivering the masked text (and telling the
//! sender), case-insensitively, on text and card titles of every user chat type, never
//! on system notices.

mod common;

use std::time::Duration;

use common::{answer, ask_shop, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

async fn set_words(srv: &TestServer, words: &[&str], action: &str) -> (u16, Value) {
    srv.admin(
        Method::PUT,
        "/admin/moderation",
        Some(json!({"words": words, "action": action})),
    )
    .await
}

fn text(chat_type: i64, to: i64, msg: &str) -> Value {
    json!({"chat_type": chat_type, "msg_type": 1, "msg": msg, "to_uid": to})
}

#[tokio::test]
async fn the_list_is_kept_in_the_database_and_checked() {
    let srv = TestServer::start();
    let (st, v) = srv.admin(Method::GET, "/admin/moderation", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["result"], json!({"words": [], "action": "reject"}));
    let (st, v) = set_words(&srv, &[" Fake ", "fake", "假货"], "mask").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["result"],
        json!({"words": ["Fake", "假货"], "action": "mask"}),
        "trimmed, one of each"
    );
    for bad in [
        json!({"words": ["x"], "action": "delete"}),
        json!({"words": "x", "action": "mask"}),
        json!({"words": ["x"], "action": "mask", "extra": 1}),
        json!({"words": ["x".repeat(65)], "action": "mask"}),
        json!({"words": vec!["w"; 20_001], "action": "mask"}),
    ] {
        let (st, v) = srv
            .admin(Method::PUT, "/admin/moderation", Some(bad.clone()))
            .await;
        assert_eq!(st, 400, "{bad:?} -> {v}");
    }
    let anonymous = reqwest::Client::new()
        .put(srv.http("/admin/moderation"))
        .json(&json!({"words": [], "action": "mask"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let srv = srv.restart();
    let (_, v) = srv.admin(Method::GET, "/admin/moderation", None).await;
    assert_eq!(
        v["result"],
        json!({"words": ["Fake", "假货"], "action": "mask"}),
        "kept across a restart"
    );
    // The whole list of 20,000 words (a body past actix's default 256 KiB) is taken.
    let words: Vec<String> = (0..20_000)
        .map(|i| format!("forbidden-word-{i:05}"))
        .collect();
    let (st, v) = srv
        .admin(
            Method::PUT,
            "/admin/moderation",
            Some(json!({"words": words, "action": "reject"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let mut ann = srv.connect(1).await;
    let r = ann
        .request("chat", "sendMsg", text(1, 2, "forbidden-word-19999!"))
        .await;
    assert_eq!(r["error"], "content_blocked");
    let r = ann.request("chat", "sendMsg", text(1, 2, "all good")).await;
    assert_eq!(r["code"], 1);
}

#[tokio::test]
async fn reject_stores_nothing_in_any_user_chat_and_notices_are_exempt() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea House", &[(100, "Amy")]).await;
    let (st, _) = set_words(&srv, &["假货", "Fake"], "reject").await;
    assert_eq!(st, 200);
    let mut ann = srv.connect(1).await;
    let mut bob = srv.connect(2).await;
    let mut amy = srv.online_agent(100).await;
    let group = ann
        .request("group", "create", json!({"name": "g", "open": true}))
        .await["result"]["group_id"]
        .as_i64()
        .unwrap();
    for send in [
        text(1, 2, "this is FAKE"),
        text(1, 2, "卖假货"),
        text(2, group, "fAkE watches"),
        json!({"chat_type": 1, "msg_type": 3, "to_uid": 2,
               "card": {"product_id": "9", "title": "Fake Rolex", "price": "1"}}),
        json!({"chat_type": 4, "msg_type": 1, "msg": "is it fake?", "to_uid": 3,
               "shop_id": 3, "role_type": "user"}),
    ] {
        let r = ann.request("chat", "sendMsg", send.clone()).await;
        assert_eq!(r["code"], 0, "{send} -> {r}");
        assert_eq!(r["error"], "content_blocked", "{send} -> {r}");
    }
    ask_shop(&mut ann, 3, "hello").await;
    amy.push().await;
    let r = amy
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 4, "msg_type": 1, "msg": "no FAKE here", "to_uid": 1,
                   "shop_id": 3, "role_type": "service"}),
        )
        .await;
    assert_eq!(r["error"], "content_blocked", "agents too: {r}");
    bob.expect_silence(Duration::from_millis(300)).await;
    let rows = bob.sync(0, 50).await["result"]["rows"].clone();
    assert_eq!(rows, json!([]), "nothing stored for Bob");
    // The platform's own notices are not checked.
    let (st, v) = srv
        .admin(
            Method::POST,
            "/admin/notify",
            Some(json!({"uids": [2], "msg_type": 1, "msg": "How to spot fake goods"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(bob.push().await["result"]["msg"], "How to spot fake goods");
    // The list cleared, the same text goes through.
    set_words(&srv, &[], "reject").await;
    let r = ann
        .request("chat", "sendMsg", text(1, 2, "this is FAKE"))
        .await;
    assert_eq!(r["code"], 1, "{r}");
}

#[tokio::test]
async fn mask_stores_and_delivers_stars_and_the_ack_says_what_was_stored() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea House", &[(100, "Amy")]).await;
    let (st, _) = set_words(&srv, &["假货", "fake", "ÄRGER"], "mask").await;
    assert_eq!(st, 200);
    let mut ann = srv.connect(1).await;
    let mut bob = srv.connect(2).await;
    let r = ann
        .request("chat", "sendMsg", text(1, 2, "卖假货? FAKE! ärger"))
        .await;
    assert_eq!(r["code"], 1, "{r}");
    assert_eq!(r["result"]["msg"], "卖**? ****! *****");
    let p = bob.push().await;
    assert_eq!(p["result"]["msg"], "卖**? ****! *****");
    let rows = bob.sync(0, 10).await["result"]["rows"].clone();
    assert_eq!(rows[0]["msg"], "卖**? ****! *****");
    // A clean message's ack is as it always was.
    let r = ann.request("chat", "sendMsg", text(1, 2, "fine tea")).await;
    assert!(r["result"].get("msg").is_none(), "{r}");
    bob.push().await;
    // A card's title.
    let r = ann
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 1, "msg_type": 3, "to_uid": 2,
                   "card": {"product_id": "9", "title": "Fake Rolex", "price": "1"}}),
        )
        .await;
    assert_eq!(r["code"], 1, "{r}");
    let p = bob.push().await;
    assert_eq!(p["result"]["card"]["title"], "**** Rolex");
    assert_eq!(p["result"]["msg"], "[商品] **** Rolex");
    // Customer service, both ways.
    let mut amy = srv.online_agent(100).await;
    ask_shop(&mut ann, 3, "fake?").await;
    assert_eq!(amy.push().await["result"]["msg"], "****?");
    let r = answer(&mut amy, 1, "never fake").await;
    assert_eq!(r["result"]["msg"], "never ****");
    assert_eq!(ann.push().await["result"]["msg"], "never ****");
}
