//! Over a thousand malformed frames against a real server: each is answered (code 0, or
//! PONG for text that is not JSON), oversized and non-UTF-8 ones close their connection
//! with 1009 / 1007, SQL-looking text is stored as text, and the server stays up.

mod common;

use common::TestServer;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Values of every wrong kind for an integer or string field.
fn wrong_values() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(1.5),
        json!(-1),
        json!(0),
        json!(1e308),
        json!("12abc"),
        json!(""),
        json!([]),
        json!([1, 2]),
        json!({}),
        json!({"a": 1}),
        json!("99999999999999999999999"),
        json!(i64::MIN),
        json!(u64::MAX),
        json!("' OR 1=1 --"),
        json!("\u{0}\u{1f}"),
        json!("x".repeat(5000)),
    ]
}

fn malformed_frames() -> Vec<String> {
    let mut frames = Vec::new();
    let base = json!({"chat_type": 1, "msg_type": 1, "msg": "hi", "to_uid": 2});
    for field in [
        "chat_type",
        "msg_type",
        "msg",
        "to_uid",
        "client_msg_id",
        "shop_id",
        "role_type",
    ] {
        for v in wrong_values() {
            for chat_type in [1, 2, 4] {
                let mut content = base.clone();
                content["chat_type"] = json!(chat_type);
                content[field] = v.clone();
                // Role and shop only matter for chat_type 4: with 1 or 2 a valid send may
                // result, which is then not malformed; keep the frame only where it is.
                if matches!(field, "shop_id" | "role_type") && chat_type != 4 {
                    continue;
                }
                frames.push(
                    json!({"class": "chat", "action": "sendMsg", "content": content}).to_string(),
                );
            }
        }
    }
    for (class, action) in [
        ("chat", "sync"),
        ("chat", "setChatRead"),
        ("chat", "delChat"),
        ("service", "transfer"),
        ("service", "setOnline"),
        ("group", "join"),
        ("group", "create"),
        ("group", "members"),
        ("service", "setStatus"),
        ("service", "resolve"),
        ("service", "sessions"),
        ("service", "customer"),
        ("service", "block"),
        ("service", "saveQuickReply"),
        ("service", "deleteQuickReply"),
        ("shop", "info"),
        ("chat", "rate"),
        ("chat", "typing"),
        ("chat", "recall"),
    ] {
        for v in wrong_values() {
            frames.push(json!({"class": class, "action": action, "content": {"chat_id": v, "group_id": v, "to_uid": v, "online": v, "name": v, "since_msg_id": v, "limit": v, "member_uids": v}}).to_string());
            frames.push(json!({"class": class, "action": action, "content": v}).to_string());
            for field in [
                "chat_id",
                "group_id",
                "to_uid",
                "online",
                "name",
                "since_msg_id",
                "limit",
                "member_uids",
                "role_type",
                "status",
                "consumer_uid",
                "shop_id",
                "short_code",
                "score",
                "state",
                "msg_id",
            ] {
                frames.push(
                    json!({"class": class, "action": action, "content": {field: v}}).to_string(),
                );
            }
        }
    }
    for v in wrong_values() {
        frames.push(json!({"class": v, "action": "sendMsg", "content": {}}).to_string());
        frames.push(json!({"class": "chat", "action": v, "content": {}}).to_string());
        frames.push(v.to_string());
    }
    for depth in [10, 100, 1000, 5000] {
        frames.push(format!("{}1{}", "[".repeat(depth), "]".repeat(depth)));
        frames.push(format!("{}{}", r#"{"a":"#.repeat(depth), "}".repeat(depth)));
        frames.push(format!(
            r#"{{"class":"chat","action":"sendMsg","content":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        ));
    }
    for broken in [
        r#"{"class":"chat""#,
        "{",
        "[",
        r#"{"class":}"#,
        r#"{"class":"chat","action":"sendMsg","content":{"msg":"unterminated}}"#,
        "{}}",
        "[1,]",
    ] {
        frames.push(broken.to_string());
    }
    frames
}

#[tokio::test]
async fn a_thousand_malformed_frames_are_answered_and_the_server_stays_up() {
    let srv = TestServer::start_with(|c| c.limits.max_frame_bytes = 64 * 1024);
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    let frames = malformed_frames();
    let mut refused = 0;
    let mut stored_ids = std::collections::HashSet::new();
    for (i, f) in frames.iter().enumerate() {
        a.send_text(f).await;
        let r = a.reply().await;
        // A few mutations happen to be valid requests (sync from 0, a group named
        // "12abc"); every frame must get a documented answer either way.
        let code = r["code"].as_i64().unwrap_or(99);
        assert!(
            [0, -1, 1, 101, 102, 201].contains(&code),
            "frame {i} ({:.120}) got {r}",
            f
        );
        if code == 0 {
            assert!(
                r["msg"].as_str().is_some_and(|m| !m.is_empty()) && r["error"].is_string(),
                "{r}"
            );
        }
        if code == 0 || code == -1 {
            refused += 1;
        }
        // A repeated client_msg_id is a retry: the original's ack, stored once.
        if r["result"]["chat_id"] == "1_2" {
            stored_ids.insert(r["result"]["msg_id"].as_i64().unwrap());
        }
    }
    assert!(
        refused >= 1000,
        "only {refused} of {} frames were malformed",
        frames.len()
    );
    let valid_sends = stored_ids.len();
    assert_eq!(
        b.drain_pushes(std::time::Duration::from_millis(300))
            .await
            .len(),
        valid_sends,
        "only what was acked is pushed"
    );

    // Text that looks like SQL is just text.
    for evil in [
        "'; DROP TABLE messages; --",
        "1; DELETE FROM users",
        "\" OR \"\"=\"",
        "\\'; SELECT * FROM users --",
    ] {
        assert_eq!(a.send_direct(2, evil).await["code"], 1);
        assert_eq!(b.push().await["result"]["msg"], evil);
    }
    let history = srv
        .post_as(2, "/user/getChatRecord", json!({"chat_id": "1_2"}))
        .await;
    assert_eq!(
        history["result"]["total"],
        valid_sends as i64 + 4,
        "only what was acked is stored"
    );

    // Frames that break the WebSocket contract close their own connection only.
    let mut big = srv.connect(3).await;
    big.send_text(&"x".repeat(100 * 1024)).await;
    assert_eq!(big.closed().await, Some(CloseCode::Size));
    for bytes in [
        vec![0xff, 0xfe],
        vec![b'{', 0xc3, 0x28, b'}'],
        vec![0xed, 0xa0, 0x80],
    ] {
        let mut bad = srv.connect(4).await;
        bad.send_raw(WsMessage::Frame(Frame::message(
            bytes,
            OpCode::Data(Data::Text),
            true,
        )))
        .await;
        assert_eq!(bad.closed().await, Some(CloseCode::Invalid));
    }

    assert_eq!(
        a.send_direct(2, "still fine").await["code"],
        1,
        "the first connection still works"
    );
    let mut fresh = srv.connect(5).await;
    assert_eq!(fresh.send_direct(2, "and new ones too").await["code"], 1);
    assert_eq!(
        reqwest::get(srv.http("/healthz")).await.unwrap().status(),
        200
    );
}
