//! PROTOCOL.md §1: where the token may be, what is checked, and the 401 refusal.

mod common;

use common::{Client, TestServer};
use serde_json::{json, Value};
use shopchat::auth::Authenticator;
use shopchat::config::AuthConfig;
use shopchat::ids::UserId;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

/// Tries an upgrade; on refusal returns (status, JSON body).
async fn refused(req: impl IntoClientRequest + Unpin) -> (u16, Value) {
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => panic!("upgrade should have been refused"),
        Err(WsError::Http(resp)) => {
            let body = resp.body().clone().expect("refusal has a body");
            (
                resp.status().as_u16(),
                serde_json::from_slice(&body).expect("refusal body is JSON"),
            )
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn other_signer(secret: &str, issuer: &str) -> Authenticator {
    Authenticator::new(&AuthConfig {
        jwt_secret: secret.into(),
        jwt_issuer: issuer.into(),
        ..AuthConfig::default()
    })
}

#[tokio::test]
async fn missing_or_bad_tokens_get_401_with_the_original_body() {
    let srv = TestServer::start_with(|c| c.auth.jwt_issuer = "mall".into());
    let expect = json!({"code": -200, "msg": "请登录"});
    let base = format!("ws://{}/", srv.addr);
    assert_eq!(refused(base.clone()).await, (401, expect.clone()));
    assert_eq!(
        refused(format!("{base}?token=garbage")).await,
        (401, expect.clone())
    );
    let wrong_secret = other_signer("nope", "mall").mint(UserId(1));
    assert_eq!(
        refused(format!("{base}?token={wrong_secret}")).await,
        (401, expect.clone())
    );
    let wrong_issuer = other_signer(&srv.config.auth.jwt_secret, "elsewhere").mint(UserId(1));
    assert_eq!(
        refused(format!("{base}?token={wrong_issuer}")).await,
        (401, expect.clone())
    );
    let expired = other_signer(&srv.config.auth.jwt_secret, "mall").mint_with_ttl(UserId(1), 0);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        refused(format!("{base}?token={expired}")).await,
        (401, expect.clone())
    );
    let good = other_signer(&srv.config.auth.jwt_secret, "mall").mint(UserId(1));
    let mut c = Client::connect(&format!("{base}?token={good}")).await;
    c.send_text("ping").await;
    assert_eq!(c.reply().await["code"], -1);
}

#[tokio::test]
async fn token_in_either_header_and_the_ws_alias() {
    let srv = TestServer::start();
    let token = srv.token(5);
    for (path, name, value) in [
        ("/", "authorizations", format!("bear {token}")),
        ("/ws", "Authorization", format!("Bearer {token}")),
        ("/ws", "authorization", format!("BEARER {token}")),
    ] {
        let mut req = format!("ws://{}{path}", srv.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(name, value.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("header token accepted");
        let mut c = Client::from_stream(ws);
        c.send_text("ping").await;
        assert_eq!(c.reply().await, json!({"code": -1, "msg": "PONG"}));
    }
    let mut req = format!("ws://{}/ws", srv.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Basic {token}").parse().unwrap());
    assert_eq!(refused(req).await.0, 401);
}

#[tokio::test]
async fn uid_claim_path_is_configurable() {
    let srv = TestServer::start_with(|c| c.auth.uid_claim = "user.uid".into());
    let mut a = srv.connect(7).await;
    let mut b = srv.connect(8).await;
    a.send_direct(8, "hi").await;
    assert_eq!(b.push().await["result"]["id"], 7);
    let default_shape = other_signer(&srv.config.auth.jwt_secret, "").mint(UserId(9));
    assert_eq!(
        refused(format!("ws://{}/?token={default_shape}", srv.addr))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn unknown_uid_gets_a_placeholder_profile() {
    let srv = TestServer::start();
    let mut a = srv.connect(4242).await;
    let mut b = srv.connect(77).await;
    a.send_direct(77, "hello").await;
    let push = b.push().await;
    assert_eq!(push["result"]["nickname"], "user4242");
    assert_eq!(push["result"]["avatar"], "");
}

#[tokio::test]
async fn plain_get_on_root_is_not_an_upgrade() {
    let srv = TestServer::start();
    let resp = reqwest::get(srv.http("/")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = reqwest::get(srv.http("/no/such/path")).await.unwrap();
    assert_eq!(resp.status(), 404);
}

/// The server's end of a WebSocket has Nagle off: a push right after an ack must not wait
/// for the client's delayed ACK (up to 40 ms on Linux) or its next frame.
#[tokio::test]
async fn accepted_sockets_send_without_nagle_delay() {
    use std::os::fd::BorrowedFd;
    use tokio_tungstenite::MaybeTlsStream;

    let srv = TestServer::start();
    let (ws, _) = tokio_tungstenite::connect_async(srv.ws_url(5))
        .await
        .expect("upgrade should succeed");
    let MaybeTlsStream::Plain(tcp) = ws.get_ref() else {
        panic!("plain TCP expected")
    };
    let client_end = tcp.local_addr().unwrap();
    // The test server runs in this process: find its end of this connection among our fds.
    let mut server_end = None;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry.unwrap().file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: the fd is only borrowed for getsockopt/getpeername; one that closed in
        // between (other tests run in parallel) only makes those calls fail.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
        if peer == Some(client_end) {
            server_end = Some(sock.tcp_nodelay().unwrap());
        }
    }
    assert_eq!(
        server_end,
        Some(true),
        "the server's socket for {client_end} should have TCP_NODELAY set"
    );
    drop(ws);
}
