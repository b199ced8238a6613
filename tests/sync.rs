//! chat.sync (PROTOCOL.md §7): an offline user catches up, paged, across a restart.

mod common;

use common::TestServer;
use serde_json::{json, Value};

fn msgs(page: &Value) -> Vec<String> {
    page["result"]["rows"]
        .as_array()
        .expect("rows is an array")
        .iter()
        .map(|r| r["msg"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn offline_user_catches_up_in_pages_even_after_a_restart() {
    let srv = TestServer::start();
    srv.put_user(1, json!({"nickname": "Sender", "avatar": "s.png"}))
        .await;
    let mut a = srv.connect(1).await;
    for i in 0..7 {
        assert_eq!(a.send_direct(2, &format!("m{i}")).await["code"], 1);
    }
    assert_eq!(a.send_direct(3, "not for 2").await["code"], 1);
    drop(a);

    let srv = srv.restart();
    let mut b = srv.connect(2).await;
    let page = b.sync(0, 3).await;
    assert_eq!(page["code"], 201);
    assert_eq!(msgs(&page), ["m0", "m1", "m2"]);
    assert_eq!(page["result"]["has_more"], true);
    let row = &page["result"]["rows"][0];
    assert_eq!(row["nickname"], "Sender");
    assert_eq!(row["avatar"], "http://media.test/s.png");
    assert_eq!(row["id"], 1);
    assert_eq!(row["chat_id"], "1_2");
    assert_eq!(row["chat_type"], 1);
    let mut since = page["result"]["rows"][2]["msg_id"].as_i64().unwrap();
    let mut rest = Vec::new();
    loop {
        let page = b.sync(since, 3).await;
        rest.extend(msgs(&page));
        let rows = page["result"]["rows"].as_array().unwrap();
        if let Some(last) = rows.last() {
            since = last["msg_id"].as_i64().unwrap();
        }
        if page["result"]["has_more"] == false {
            break;
        }
    }
    assert_eq!(rest, ["m3", "m4", "m5", "m6"]);

    // After the restart new messages continue the same id sequence.
    let mut a = srv.connect(1).await;
    let ack = a.send_direct(2, "after").await;
    assert!(ack["result"]["msg_id"].as_i64().unwrap() > since);
    assert_eq!(msgs(&b.sync(since, 10).await), ["after"]);
}

#[tokio::test]
async fn sync_includes_what_the_user_sent_from_another_device() {
    let srv = TestServer::start();
    let mut phone = srv.connect(5).await;
    phone.send_direct(6, "from phone").await;
    let mut pc = srv.connect(5).await;
    assert_eq!(msgs(&pc.sync(0, 10).await), ["from phone"]);
}

#[tokio::test]
async fn sync_parameters_are_validated_and_defaulted() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    for i in 0..3 {
        a.send_direct(2, &format!("m{i}")).await;
    }
    let mut b = srv.connect(2).await;
    let page = b.request("chat", "sync", json!(null)).await;
    assert_eq!(msgs(&page).len(), 3);
    let page = b
        .request("chat", "sync", json!({"since_msg_id": "0", "limit": "2"}))
        .await;
    assert_eq!(msgs(&page).len(), 2);
    let r = b.request("chat", "sync", json!({"since_msg_id": -1})).await;
    assert_eq!(r["error"], "bad_params");
    let r = b.request("chat", "sync", json!({"limit": "many"})).await;
    assert_eq!(r["error"], "bad_params");
}
