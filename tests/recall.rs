//! Recall (PROTOCOL.md §11, code 205): the sender within `limits.recall_secs`, any agent
//! for its shop's messages, the platform at any time; everyone who could see the message
//! is told, it shows the placeholder everywhere, and the stored event reaches devices
//! that were offline.

mod common;

use std::time::Duration;

use common::{answer, ask_shop, Client, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(300);
const PLACEHOLDER: &str = "[消息已撤回]";

async fn recall(c: &mut Client, msg_id: i64) -> Value {
    c.request("chat", "recall", json!({ "msg_id": msg_id }))
        .await
}

/// The recalls (code 205) that arrive within `quiet` of each other.
async fn recalls(c: &mut Client) -> Vec<Value> {
    c.drain_events(QUIET)
        .await
        .into_iter()
        .filter(|e| e["code"] == 205)
        .map(|e| e["result"].clone())
        .collect()
}

fn id_of(ack: &Value) -> i64 {
    ack["result"]["msg_id"]
        .as_i64()
        .expect("an ack carries its msg_id")
}

#[tokio::test]
async fn a_sender_recalls_a_direct_message_and_it_is_gone_everywhere_but_for_the_platform() {
    let srv = TestServer::start();
    let mut ann = srv.connect(7).await;
    let mut ann_phone = srv.connect(7).await;
    let mut bob = srv.connect(12).await;
    ann.send_direct(12, "first").await;
    let oops = id_of(&ann.send_direct(12, "my card number is 1234").await);
    bob.drain_pushes(QUIET).await;
    ann_phone.drain_pushes(QUIET).await;

    let r = recall(&mut bob, oops).await;
    assert_eq!(r["error"], "forbidden", "only the sender: {r}");
    let r = recall(&mut ann, oops).await;
    assert_eq!(r["code"], 1, "{r}");
    // `seq`: the recall's own event row, after the two messages of the conversation.
    let want = json!({"msg_id": oops, "chat_id": "7_12", "chat_type": 1, "by": "sender", "seq": 3});
    assert_eq!(recalls(&mut bob).await, std::slice::from_ref(&want));
    assert_eq!(
        recalls(&mut ann_phone).await,
        [want],
        "the sender's other devices too"
    );
    let r = recall(&mut ann, oops).await;
    assert_eq!(r["code"], 1, "a retry gets the same answer: {r}");
    assert!(recalls(&mut bob).await.is_empty(), "and tells nobody twice");
    assert_eq!(recall(&mut ann, 999_999).await["error"], "not_found");

    // History, sync and the recent-chat list show the placeholder.
    let page = srv
        .post_as(12, "/user/getChatRecord", json!({"chat_id": "7_12"}))
        .await;
    let row = &page["result"]["rows"][0];
    assert_eq!(
        (row["msg_id"].as_i64(), row["msg"].as_str()),
        (Some(oops), Some(PLACEHOLDER))
    );
    assert_eq!(
        (row["recalled"].clone(), row["msg_type"].clone()),
        (json!(true), json!(1))
    );
    assert_eq!(
        page["result"]["total"], 2,
        "the recall event is not a history row"
    );
    let recent = bob.request("user", "recentChat", json!({})).await;
    assert_eq!(recent["result"]["rows"][0]["last_msg"], PLACEHOLDER);
    let mut offline = srv.connect(12).await;
    let rows = offline.sync(0, 100).await["result"]["rows"].clone();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows[1]["msg"], PLACEHOLDER);
    assert_eq!(rows[1]["recalled"], true);
    let event = rows
        .iter()
        .find(|r| r["event"] == "recall")
        .expect("the stored recall");
    assert_eq!(event["recalled_msg_id"], oops);
    assert_eq!(event["by"], "sender");
    assert!(event["msg_id"].as_i64().unwrap() > oops);

    // The platform still reads the original.
    let (st, v) = srv
        .admin(Method::GET, &format!("/admin/messages/{oops}"), None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"]["msg"], "my card number is 1234");
    assert!(v["result"]["recalled_at"].as_i64().is_some());
    let (st, _) = srv.admin(Method::GET, "/admin/messages/999999", None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn past_the_window_only_the_platform_recalls() {
    let srv = TestServer::start_with(|c| c.limits.recall_secs = 0);
    let mut ann = srv.connect(7).await;
    let mut bob = srv.connect(12).await;
    let old = id_of(&ann.send_direct(12, "said in haste").await);
    bob.drain_pushes(QUIET).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = recall(&mut ann, old).await;
    assert_eq!(r["error"], "too_late", "{r}");

    let (st, v) = srv
        .admin(Method::POST, &format!("/admin/messages/{old}/recall"), None)
        .await;
    assert_eq!(st, 200, "{v}");
    let got = recalls(&mut bob).await;
    assert_eq!(got[0]["by"], "platform");
    let r = recall(&mut ann, old).await;
    assert_eq!(
        r["code"], 1,
        "recalled already: the same answer even after the window"
    );
    let (st, _) = srv
        .admin(Method::POST, "/admin/messages/999999/recall", None)
        .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn recalls_in_groups_and_customer_service_reach_everyone_who_saw_the_message() {
    let srv = TestServer::start();
    // A group.
    let mut owner = srv.connect(1).await;
    let r = owner
        .request("group", "create", json!({"name": "Tea club", "open": true}))
        .await;
    let group = r["result"]["group_id"].as_i64().unwrap();
    let mut member = srv.connect(2).await;
    member
        .request("group", "join", json!({"group_id": group}))
        .await;
    let said = owner
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 2, "msg_type": 1, "msg": "wrong group", "to_uid": group}),
        )
        .await;
    member.push().await;
    assert_eq!(
        recall(&mut member, id_of(&said)).await["error"],
        "forbidden"
    );
    assert_eq!(recall(&mut owner, id_of(&said)).await["code"], 1);
    let got = recalls(&mut member).await;
    assert_eq!(got[0]["chat_id"], format!("group_{group}"));
    assert_eq!(got[0]["chat_type"], 2);
    let list = member.request("group", "list", json!({})).await;
    assert_eq!(list["code"], 1);
    let recent = member.request("user", "recentChat", json!({})).await;
    let row = recent["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["chat_type"] == 2)
        .cloned()
        .unwrap();
    assert_eq!(row["last_msg"], PLACEHOLDER, "{recent}");
    assert_eq!(
        row["unread_count"], 1,
        "the (recalled) message, not its event"
    );

    // Customer service: the consumer's own, and an agent's recalled by another agent.
    srv.shop_with_agents(3, "Tea House", &[(100, "Amy"), (101, "Bo")])
        .await;
    srv.shop_with_agents(4, "Other", &[(200, "Zed")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut bo = srv.connect(101).await;
    let mut zed = srv.connect(200).await;
    let mut consumer = srv.connect(12).await;
    let asked = id_of(&ask_shop(&mut consumer, 3, "wrong shop, sorry").await);
    amy.push().await;
    assert_eq!(recall(&mut consumer, asked).await["code"], 1);
    assert_eq!(
        recalls(&mut consumer).await.len(),
        1,
        "the sender's connections too"
    );
    assert_eq!(recalls(&mut amy).await[0]["by"], "sender");
    assert_eq!(
        recalls(&mut bo).await[0]["msg_id"],
        asked,
        "every agent of the shop"
    );
    let said = id_of(&answer(&mut amy, 12, "a price typo").await);
    consumer.drain_pushes(QUIET).await;
    assert_eq!(recall(&mut zed, said).await["error"], "forbidden");
    assert_eq!(recall(&mut consumer, said).await["error"], "forbidden");
    assert_eq!(
        recall(&mut bo, said).await["code"],
        1,
        "any agent of the shop"
    );
    let got = recalls(&mut consumer).await;
    assert_eq!(
        got,
        [
            json!({"msg_id": said, "chat_id": "3____12", "chat_type": 4, "by": "shop", "seq": 4, "shop_id": 3})
        ],
        "agents' uids are not shown to consumers"
    );
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

#[tokio::test]
async fn a_recalled_images_file_is_no_longer_served() {
    let srv = TestServer::start();
    let up = srv.upload(7, "file", PNG.to_vec()).await;
    let src = up["data"]["src"].as_str().unwrap().to_string();
    let name = src.rsplit_once("/media/").unwrap().1.to_string();
    let get = || async {
        reqwest::get(srv.http(&format!("/media/{name}")))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(get().await, 200);
    let mut ann = srv.connect(7).await;
    let sent = ann
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 1, "msg_type": 2, "msg": src, "to_uid": 12}),
        )
        .await;
    assert_eq!(recall(&mut ann, id_of(&sent)).await["code"], 1);
    assert_eq!(get().await, 410);
    let (_, v) = srv
        .admin(
            Method::GET,
            &format!("/admin/messages/{}", id_of(&sent)),
            None,
        )
        .await;
    assert_eq!(v["result"]["msg"], src, "the platform still has the URL");
    assert!(
        srv.dir
            .path()
            .join("uploads")
            .join(format!("{name}.recalled"))
            .exists(),
        "and the file"
    );
}
