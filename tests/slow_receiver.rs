//! A receiver that stops reading never slows others down nor makes the server's memory
//! grow without bound: its queue is bounded and, past it, it is disconnected (1008).

mod common;

use std::time::Duration;

use common::{ChildServer, Client};

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const FLOOD: usize = 20_000;

/// A client with a tiny receive buffer that will not read until told to.
async fn stalled_client(srv: &ChildServer, uid: i64) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(srv.addr.parse().unwrap()).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        srv.ws_url(uid),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("stalled client connects");
    Client::from_stream(ws)
}

#[tokio::test]
async fn a_stalled_receiver_is_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let srv = ChildServer::spawn(
        dir.path(),
        &[
            ("SHOPCHAT__LIMITS__MSGS_PER_SEC", "0"),
            ("RUST_LOG", "warn"),
        ],
    );
    let mut stalled = stalled_client(&srv, 2).await;
    stalled.send_text("ping").await;
    assert_eq!(stalled.reply().await["code"], -1);
    let mut flooder = srv.connect(1).await;
    let mut bystander_tx = srv.connect(3).await;
    let mut bystander_rx = srv.connect(4).await;

    // Warm up the allocator and the database before measuring.
    for i in 0..200 {
        assert_eq!(
            bystander_tx.send_direct(4, &format!("warm {i}")).await["code"],
            1
        );
    }
    bystander_rx.drain_pushes(Duration::from_millis(200)).await;
    let rss_before = srv.rss_kib();

    let body = "x".repeat(1024);
    let frame = json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": body, "to_uid": 2}}).to_string();
    let mut acked = 0;
    let mut sent = 0;
    let mut bystander_seen = 0;
    while acked < FLOOD {
        // Keep a window of 200 sends in flight.
        while sent < FLOOD && sent - acked < 200 {
            flooder.send_raw(WsMessage::text(frame.clone())).await;
            sent += 1;
        }
        assert_eq!(flooder.reply().await["code"], 1);
        acked += 1;
        if acked % 1000 == 0 {
            // Someone else's conversation is served throughout.
            assert_eq!(
                bystander_tx
                    .send_direct(4, &format!("during {acked}"))
                    .await["code"],
                1
            );
            assert_eq!(
                bystander_rx.push().await["result"]["msg"],
                format!("during {acked}")
            );
            bystander_seen += 1;
        }
    }
    assert_eq!(bystander_seen, FLOOD / 1000);
    let rss_after = srv.rss_kib();
    let growth_kib = rss_after.saturating_sub(rss_before);
    eprintln!("server RSS {rss_before} KiB -> {rss_after} KiB while {FLOOD} pushes of 1 KiB went to a stalled reader");
    // Everything queued for the stalled reader would be 20 MiB; the bound keeps it to a
    // fraction (the 1024-push mailbox, socket buffers and the database's own caches).
    assert!(
        growth_kib < 12 * 1024,
        "server memory grew by {growth_kib} KiB"
    );

    // When it reads again it finds what was queued, then the 1008 close.
    let mut pushes = 0;
    let code = loop {
        match stalled.next_raw().await {
            Some(WsMessage::Text(_)) => pushes += 1,
            Some(WsMessage::Close(frame)) => break frame.map(|f| f.code),
            Some(_) => {}
            None => break None,
        }
    };
    assert_eq!(
        code,
        Some(CloseCode::Policy),
        "cut off with 1008 after {pushes} pushes"
    );
    assert!(pushes < FLOOD, "it did not get everything: {pushes}");

    // And it catches up with chat.sync after reconnecting: everything was stored.
    let mut back = srv.connect(2).await;
    let page = back.sync(0, 500).await;
    assert_eq!(page["result"]["rows"].as_array().unwrap().len(), 500);
    assert_eq!(page["result"]["has_more"], true);
}
