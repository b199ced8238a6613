//! Heartbeats, idle timeout and hostile frames (PROTOCOL.md §2): errors are answered,
//! the connection survives them, and only oversized frames close it (1009).

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test]
async fn text_ping_gets_pong_and_ws_ping_gets_pong_frame() {
    let srv = TestServer::start();
    let mut c = srv.connect(1).await;
    c.send_text("ping").await;
    assert_eq!(c.reply().await, json!({"code": -1, "msg": "PONG"}));
    c.send_raw(WsMessage::Ping(b"hb".to_vec().into())).await;
    match c.next_raw().await {
        Some(WsMessage::Pong(p)) => assert_eq!(&p[..], b"hb"),
        other => panic!("expected pong, got {other:?}"),
    }
}

#[tokio::test]
async fn idle_connections_are_closed_and_active_ones_are_not() {
    let srv = TestServer::start_with(|c| c.server.client_timeout_secs = 1);
    let mut idle = srv.connect(1).await;
    let mut active = srv.connect(2).await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        active.send_text("ping").await;
        assert_eq!(active.reply().await["code"], -1);
    }
    assert_eq!(
        idle.closed().await,
        Some(CloseCode::Normal),
        "idle connection should get a 1000 close frame"
    );
    active.send_text("ping").await;
    assert_eq!(active.reply().await["code"], -1);
}

#[tokio::test]
async fn hostile_frames_get_code_0_and_the_connection_keeps_working() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    let cases: Vec<(String, &str)> = vec![
        (json!({"class": "nope", "action": "sendMsg", "content": {}}).to_string(), "unknown_action"),
        (json!({"class": "chat", "action": "explode", "content": {}}).to_string(), "unknown_action"),
        (json!({"class": "chat", "action": "sendMsg", "content": "text"}).to_string(), "bad_params"),
        (json!({"class": "chat", "action": "sendMsg", "content": [1, 2]}).to_string(), "bad_params"),
        (json!({"class": "chat", "action": "sendMsg"}).to_string(), "bad_params"),
        (json!({"class": 5, "action": "sendMsg", "content": {}}).to_string(), "bad_params"),
        (json!([1, 2, 3]).to_string(), "bad_params"),
        (json!("just a string").to_string(), "bad_params"),
        (json!(12345).to_string(), "bad_params"),
        (json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": {}, "msg_type": 1, "msg": "x", "to_uid": 2}}).to_string(), "bad_params"),
        (json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": "x", "to_uid": 1e300}}).to_string(), "bad_params"),
        (json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 3, "msg_type": 1, "msg": "x", "to_uid": 2}}).to_string(), "forbidden"),
        (format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)), "bad_params"),
    ];
    for (frame, word) in &cases {
        a.send_text(frame).await;
        let r = a.reply().await;
        assert_eq!(r["code"], 0, "{frame:.80}");
        assert_eq!(r["error"], *word, "{frame:.80}");
        assert!(r["msg"].is_string());
    }
    a.send_raw(WsMessage::Binary(vec![1, 2, 3].into())).await;
    let r = a.reply().await;
    assert_eq!(
        (r["code"].clone(), r["error"].clone()),
        (json!(0), json!("binary_frame"))
    );
    assert_eq!(a.send_direct(2, "still here").await["code"], 1);
    assert_eq!(b.push().await["result"]["msg"], "still here");
}

#[tokio::test]
async fn oversized_frames_close_with_1009_and_the_server_goes_on() {
    let srv = TestServer::start_with(|c| c.limits.max_frame_bytes = 1024);
    let mut a = srv.connect(1).await;
    a.send_text(&"x".repeat(2000)).await;
    assert_eq!(a.closed().await, Some(CloseCode::Size));
    let mut again = srv.connect(1).await;
    assert_eq!(again.send_direct(2, "fine").await["code"], 1);
}

#[tokio::test]
async fn fragmented_messages_are_reassembled_and_held_to_the_limit() {
    use tokio_tungstenite::tungstenite::protocol::frame::{coding::Data, coding::OpCode, Frame};
    let srv = TestServer::start_with(|c| c.limits.max_frame_bytes = 1024);
    let mut a = srv.connect(1).await;
    let text = json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": "frag", "to_uid": 2}}).to_string();
    let (first, rest) = text.split_at(20);
    let mut f1 = Frame::message(first.as_bytes().to_vec(), OpCode::Data(Data::Text), false);
    f1.header_mut().is_final = false;
    a.send_raw(WsMessage::Frame(f1)).await;
    a.send_raw(WsMessage::Frame(Frame::message(
        rest.as_bytes().to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await;
    assert_eq!(a.reply().await["code"], 1);
    for i in 0..3 {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        a.send_raw(WsMessage::Frame(Frame::message(
            vec![b'x'; 600],
            opcode,
            false,
        )))
        .await;
    }
    assert_eq!(a.closed().await, Some(CloseCode::Size));
}
