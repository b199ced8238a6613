//! Limits from config: per-connection request rate and connections per user (the frame
//! and message size limits are covered in frames.rs and direct.rs).

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn requests_past_the_rate_are_refused_and_not_stored() {
    let srv = TestServer::start_with(|c| {
        c.limits.msgs_per_sec = 5;
        c.limits.burst = 10;
    });
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    for i in 0..30 {
        a.send_json(json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": format!("m{i}"), "to_uid": 2}}))
            .await;
    }
    let mut acked = 0;
    let mut limited = 0;
    for _ in 0..30 {
        let r = a.reply().await;
        match r["code"].as_i64() {
            Some(1) => acked += 1,
            _ => {
                assert_eq!(
                    r,
                    json!({"code": 0, "msg": "too many messages, slow down", "error": "rate_limited"})
                );
                limited += 1;
            }
        }
    }
    assert!(
        (10..=12).contains(&acked),
        "the burst passes, little more: {acked}"
    );
    assert_eq!(acked + limited, 30);
    assert_eq!(
        b.drain_pushes(Duration::from_millis(300)).await.len(),
        acked,
        "refused messages are not pushed"
    );
    let stored = srv
        .post_as(1, "/user/getChatRecord", json!({"chat_id": "1_2"}))
        .await["result"]["total"]
        .as_i64()
        .unwrap();
    assert_eq!(stored, acked as i64, "refused messages are not stored");

    a.send_text("ping").await;
    assert_eq!(a.reply().await["code"], -1, "heartbeats are never limited");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        a.send_direct(2, "later").await["code"],
        1,
        "the budget refills"
    );
    let mut other = srv.connect(1).await;
    assert_eq!(
        other.send_direct(2, "own budget").await["code"],
        1,
        "the budget is per connection"
    );
}

#[tokio::test]
async fn the_oldest_connection_of_a_user_over_the_limit_is_closed() {
    let srv = TestServer::start_with(|c| c.limits.max_conns_per_user = 2);
    let mut first = srv.connect(1).await;
    first.send_text("ping").await;
    first.reply().await;
    let mut second = srv.connect(1).await;
    second.send_text("ping").await;
    second.reply().await;
    let mut third = srv.connect(1).await;
    assert_eq!(first.closed().await, Some(CloseCode::Policy));
    let mut sender = srv.connect(2).await;
    sender.send_direct(1, "to the two left").await;
    assert_eq!(second.push().await["result"]["msg"], "to the two left");
    assert_eq!(third.push().await["result"]["msg"], "to the two left");
    let mut other_user = srv.connect(3).await;
    other_user.send_text("ping").await;
    assert_eq!(
        other_user.reply().await["code"],
        -1,
        "the limit is per user"
    );
}
