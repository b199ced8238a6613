//! Conversation rows and read state (PROTOCOL.md §6) over WebSocket and HTTP.

mod common;

use common::TestServer;
use serde_json::{json, Value};

fn rows(list: &Value) -> &Vec<Value> {
    list["result"]["rows"].as_array().expect("rows is an array")
}

#[tokio::test]
async fn every_message_updates_both_rows_and_lists_are_newest_first() {
    let srv = TestServer::start();
    srv.put_user(1, json!({"nickname": "Ann", "avatar": "a.png"}))
        .await;
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    let mut c = srv.connect(3).await;
    a.send_direct(2, "hello").await;
    let ack = a.send_direct(2, "second").await;
    c.send_json(json!({"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":2,"msg":"http://x/p.png","to_uid":2}})).await;
    let c_ack = c.reply().await;

    let list = b.request("user", "recentChat", json!({})).await;
    assert_eq!(list["code"], 102);
    assert_eq!(list["result"]["unread_count"], 3);
    let r = rows(&list);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["chat_id"], "2_3", "newest first");
    assert_eq!(
        (r[0]["msg_type"].clone(), r[0]["unread_count"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(r[0]["last_time"], c_ack["result"]["createtime"]);
    let ann = &r[1];
    assert_eq!(ann["uid"], 2);
    assert_eq!(ann["chat_id"], "1_2");
    assert_eq!(ann["shop_id"], 0);
    assert_eq!(ann["friend_uid"], 1);
    assert_eq!(ann["friend_name"], "Ann");
    assert_eq!(ann["friend_avatar"], "http://media.test/a.png");
    assert_eq!(ann["last_msg"], "second");
    assert_eq!(ann["last_uid"], 1);
    assert_eq!(ann["last_time"], ack["result"]["createtime"]);
    assert_eq!(ann["chat_type"], 1);
    assert_eq!(ann["unread_count"], 2);
    assert!(ann["id"].as_i64().unwrap() > 0);

    let mine = a.request("User", "recentChat", json!(null)).await;
    assert_eq!(mine["result"]["unread_count"], 0);
    assert_eq!(
        rows(&mine)[0]["unread_count"],
        0,
        "the sender's own row counts nothing"
    );
    assert_eq!(rows(&mine)[0]["friend_name"], "user2");

    let http = srv.post_as(2, "/user/chatRecently", json!({})).await;
    assert_eq!(http["code"], 1);
    assert_eq!(
        http["result"], list["result"],
        "HTTP and WebSocket lists agree"
    );
}

#[tokio::test]
async fn set_chat_read_clears_and_del_chat_hides_until_the_next_message() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    a.send_direct(2, "one").await;
    a.send_direct(2, "two").await;

    let r = b
        .request(
            "chat",
            "setChatRead",
            json!({"chat_id": "1_2", "role_type": 0}),
        )
        .await;
    assert_eq!(r, json!({"code": 1, "msg": null, "result": null}));
    let list = b.request("user", "recentChat", json!({})).await;
    assert_eq!(
        (
            rows(&list)[0]["unread_count"].clone(),
            list["result"]["unread_count"].clone()
        ),
        (json!(0), json!(0))
    );

    a.send_direct(2, "three").await;
    let r = b
        .request(
            "chat",
            "delChat",
            json!({"chat_id": "1_2", "role_type": "user"}),
        )
        .await;
    assert_eq!(r["code"], 1);
    assert!(rows(&b.request("user", "recentChat", json!({})).await).is_empty());
    assert_eq!(
        rows(&a.request("user", "recentChat", json!({})).await).len(),
        1,
        "only the caller's side is hidden"
    );

    a.send_direct(2, "four").await;
    let back = b.request("user", "recentChat", json!({})).await;
    assert_eq!(rows(&back)[0]["last_msg"], "four");
    assert_eq!(
        rows(&back)[0]["unread_count"],
        2,
        "hidden, the row still counted what arrived"
    );
}

#[tokio::test]
async fn bad_read_state_requests_are_refused() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    for content in [
        json!({}),
        json!({"chat_id": ""}),
        json!({"chat_id": 12}),
        json!({"chat_id": "1_2", "role_type": "boss"}),
    ] {
        let r = a.request("chat", "setChatRead", content.clone()).await;
        assert_eq!(r["error"], "bad_params", "{content}");
    }
    let r = a
        .request(
            "chat",
            "setChatRead",
            json!({"chat_id": "1_2", "role_type": 1}),
        )
        .await;
    assert_eq!(r["error"], "forbidden", "only agents have a shop side");
    let r = a
        .request("user", "recentChat", json!({"is_service": true}))
        .await;
    assert_eq!(r["error"], "forbidden");
}
