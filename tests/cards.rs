//! Product and order cards (PROTOCOL.md §12): checked, stored with a text fallback for
//! clients that know no cards, carried by pushes, history and sync, and `verified` when
//! the platform signed them.

mod common;

use std::collections::BTreeMap;

use common::{Client, TestServer};
use serde_json::{json, Value};

fn product() -> Value {
    json!({"product_id": "sku-881", "title": "Oolong 200 g", "price": "¥59.00",
           "image": "https://img.example.com/881.jpg", "url": "https://shop.example.com/p/881"})
}

async fn send_card(c: &mut Client, chat: Value) -> Value {
    c.request("chat", "sendMsg", chat).await
}

/// `card` signed as the platform does (§12).
fn signed(srv: &TestServer, card: &Value) -> Value {
    let fields: BTreeMap<String, String> = serde_json::from_value(card.clone()).unwrap();
    let mut out = card.clone();
    out["sig"] = json!(shopchat::protocol::card::sign(
        &fields,
        srv.config.auth.jwt_secret.as_bytes()
    ));
    out
}

#[tokio::test]
async fn a_product_card_reaches_push_history_and_sync_with_its_text_fallback() {
    let srv = TestServer::start();
    let mut ann = srv.connect(7).await;
    let mut bob = srv.connect(12).await;
    let ack = send_card(
        &mut ann,
        json!({"chat_type": 1, "msg_type": 3, "to_uid": 12, "card": product()}),
    )
    .await;
    assert_eq!(ack["code"], 1, "{ack}");
    let p = bob.push().await;
    // What the original H5 client reads: a code 200 with a text msg and an integer type.
    assert_eq!(p["code"], 200);
    assert_eq!(p["result"]["msg"], "[商品] Oolong 200 g");
    assert!(p["result"]["msg_type"].is_i64());
    assert_eq!(p["result"]["msg_type"], 3);
    assert_eq!(p["result"]["card"], product(), "unsigned: no verified flag");

    let history = srv
        .post_as(12, "/user/getChatRecord", json!({"chat_id": "7_12"}))
        .await;
    assert_eq!(history["result"]["rows"][0]["card"], product(), "{history}");
    assert_eq!(history["result"]["rows"][0]["msg"], "[商品] Oolong 200 g");
    let rows = bob.sync(0, 10).await["result"]["rows"].clone();
    assert_eq!(rows[0]["card"], product(), "{rows}");
    let recent = bob.request("user", "recentChat", json!({})).await;
    assert_eq!(
        recent["result"]["rows"][0]["last_msg"],
        "[商品] Oolong 200 g"
    );

    // A text of the sender's own stays as written.
    let ack = send_card(
        &mut ann,
        json!({"chat_type": 1, "msg_type": 3, "to_uid": 12, "msg": "this one?", "card": product()}),
    )
    .await;
    assert_eq!(ack["code"], 1);
    assert_eq!(bob.push().await["result"]["msg"], "this one?");
}

#[tokio::test]
async fn a_signed_card_is_verified_and_a_tampered_one_is_not() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea House", &[(100, "Amy")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    let order = json!({"order_no": "E2026-0001", "title": "Oolong x2", "amount": "¥118.00", "status": "paid"});

    let ack = send_card(
        &mut consumer,
        json!({"chat_type": 4, "msg_type": 4, "to_uid": 3, "shop_id": 3, "role_type": "user",
               "card": signed(&srv, &order)}),
    )
    .await;
    assert_eq!(ack["code"], 1, "{ack}");
    let p = amy.push().await;
    assert_eq!(p["result"]["msg"], "[订单] E2026-0001");
    let mut verified = order.clone();
    verified["verified"] = json!(true);
    assert_eq!(p["result"]["card"], verified);

    let mut forged = signed(&srv, &order);
    forged["status"] = json!("refunded");
    send_card(
        &mut consumer,
        json!({"chat_type": 4, "msg_type": 4, "to_uid": 3, "shop_id": 3, "role_type": "user", "card": forged}),
    )
    .await;
    let p = amy.push().await;
    assert_eq!(p["result"]["card"]["status"], "refunded");
    assert!(p["result"]["card"].get("verified").is_none(), "{p}");

    // An agent sends a product card back; the group case too.
    let ack = send_card(
        &mut amy,
        json!({"chat_type": 4, "msg_type": 3, "to_uid": 12, "role_type": "service", "card": signed(&srv, &product())}),
    )
    .await;
    assert_eq!(ack["code"], 1, "{ack}");
    let p = consumer.push().await;
    assert_eq!(p["result"]["card"]["verified"], true);
    let rows = consumer.sync(0, 10).await["result"]["rows"].clone();
    assert_eq!(rows[0]["card"], verified, "sync keeps the flag: {rows}");
}

#[tokio::test]
async fn cards_in_groups_and_bad_cards_are_refused() {
    let srv = TestServer::start();
    let mut owner = srv.connect(1).await;
    let r = owner
        .request(
            "group",
            "create",
            json!({"name": "Tea club", "member_uids": []}),
        )
        .await;
    let group = r["result"]["group_id"].as_i64().unwrap();
    let ack = send_card(
        &mut owner,
        json!({"chat_type": 2, "msg_type": 3, "to_uid": group, "card": product()}),
    )
    .await;
    assert_eq!(ack["code"], 1, "{ack}");
    let rows = owner.sync(0, 10).await["result"]["rows"].clone();
    assert_eq!(rows[0]["card"], product());

    let with = |k: &str, v: Value| {
        let mut c = product();
        c[k] = v;
        c
    };
    for (content, why) in [
        (
            json!({"chat_type": 1, "msg_type": 3, "to_uid": 2, "card": with("url", json!("javascript:alert(1)"))}),
            "javascript:",
        ),
        (
            json!({"chat_type": 1, "msg_type": 3, "to_uid": 2, "card": with("image", json!("data:image/png;base64,iVBOR"))}),
            "data:",
        ),
        (
            json!({"chat_type": 1, "msg_type": 3, "to_uid": 2, "card": with("title", json!("t".repeat(121)))}),
            "title too long",
        ),
        (
            json!({"chat_type": 1, "msg_type": 3, "to_uid": 2, "card": with("url", json!(format!("https://a.example.com/{}", "u".repeat(600))))}),
            "url too long",
        ),
        (
            json!({"chat_type": 1, "msg_type": 3, "to_uid": 2, "card": {"title": "no id"}}),
            "no product_id",
        ),
        (
            json!({"chat_type": 1, "msg_type": 4, "to_uid": 2, "card": {"title": "no order_no"}}),
            "no order_no",
        ),
        (
            json!({"chat_type": 1, "msg_type": 3, "to_uid": 2}),
            "no card",
        ),
        (
            json!({"chat_type": 1, "msg_type": 3, "to_uid": 2, "card": "sku-881"}),
            "not an object",
        ),
        (
            json!({"chat_type": 1, "msg_type": 1, "to_uid": 2, "msg": "hi", "card": product()}),
            "a card on text",
        ),
        (
            json!({"chat_type": 1, "msg_type": 5, "to_uid": 2, "msg": "hi"}),
            "unknown msg_type",
        ),
    ] {
        let r = send_card(&mut owner, content).await;
        assert_eq!(r["error"], "bad_params", "{why}: {r}");
    }
    let r = send_card(
        &mut owner,
        json!({"chat_type": 1, "msg_type": 1, "to_uid": 2}),
    )
    .await;
    assert_eq!(r["error"], "bad_params", "text still needs its msg");
}
