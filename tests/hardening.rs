//! What hostile testing found (issue 14), each pinned by a test that failed before its
//! fix: the id spaces of registered and platform accounts, oversized frame headers,
//! login cost caps, clients that never read, costly requests, private groups, the
//! scope of client_msg_id, and the chat_id and audience of broadcasts.

mod common;

use std::time::Duration;

use common::{Client, TestServer};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use shopchat::auth::Authenticator;
use shopchat::config::MAX_SAFE_ID;
use shopchat::ids::UserId;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const QUIET: Duration = Duration::from_millis(300);

fn rate_limited() -> Value {
    json!({"code": 0, "msg": "too many messages, slow down", "error": "rate_limited"})
}

async fn register(srv: &TestServer, name: &str) -> Value {
    srv.post(
        "/login/register",
        None,
        json!({"username": name, "password": "secret1"}),
    )
    .await
}

async fn register_uid(srv: &TestServer, name: &str) -> (UserId, String) {
    let r = register(srv, name).await;
    assert_eq!(r["code"], 1, "{r}");
    let token = r["result"]["token"].as_str().unwrap().to_string();
    let uid = Authenticator::new(&srv.config.auth)
        .verify(&token)
        .expect("the server's own token verifies");
    (uid, token)
}

#[tokio::test]
async fn registered_accounts_never_take_a_platform_users_id() {
    let srv = TestServer::start();
    // Platform user 2 has only received a message: it has no account row of its own.
    let mut one = srv.connect(1).await;
    one.send_direct(2, "for 2's eyes only").await;
    let (stranger, token) = register_uid(&srv, "stranger").await;
    assert!(
        stranger.0 >= srv.config.auth.register_id_base,
        "registered ids start at auth.register_id_base: {stranger}"
    );
    let mut s = Client::connect(&format!("ws://{}/?token={token}", srv.addr)).await;
    assert_eq!(s.sync(0, 100).await["result"]["rows"], json!([]));
    let (second, _) = register_uid(&srv, "stranger2").await;
    assert_eq!(second.0, stranger.0 + 1);

    // The platform's tokens for that range are refused: the two spaces never meet.
    let platform = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"exp": 4_000_000_000u64, "data": {"id": stranger.0}}),
        &jsonwebtoken::EncodingKey::from_secret(srv.config.auth.jwt_secret.as_bytes()),
    )
    .unwrap();
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{}/?token={platform}", srv.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("a platform token for a registered id must be refused: {other:?}"),
    }
    let index = srv.post("/user/index", Some(&platform), json!({})).await;
    assert_eq!(index["code"], 401);
}

#[tokio::test]
async fn running_out_of_registered_ids_is_an_error() {
    let srv = TestServer::start_with(|c| c.auth.register_id_base = MAX_SAFE_ID - 1);
    assert_eq!(register_uid(&srv, "first").await.0, UserId(MAX_SAFE_ID - 1));
    assert_eq!(register_uid(&srv, "second").await.0, UserId(MAX_SAFE_ID));
    assert_eq!(
        register(&srv, "third").await,
        json!({"code": 0, "msg": "registration is closed: no account ids are left", "error": "registration_closed", "result": null})
    );
}

#[tokio::test]
async fn user_index_shows_nicknames_never_login_names() {
    let srv = TestServer::start();
    let (alice, _) = register_uid(&srv, "alicelogin").await;
    let mut bob = srv.connect(5).await;
    bob.send_direct(alice.0, "hi").await;
    let index = srv.post_as(5, "/user/index", json!({})).await;
    let list = index["result"]["friend"][0]["list"].as_array().unwrap();
    let entry = list
        .iter()
        .find(|u| u["id"] == alice.0)
        .expect("alice is a contact");
    assert_eq!(entry["username"], format!("user{alice}"));
    assert!(
        !index.to_string().contains("alicelogin"),
        "no login name in {index}"
    );
}

#[tokio::test]
async fn a_frame_header_over_the_limit_is_refused_before_its_payload() {
    let srv = TestServer::start_with(|c| c.limits.max_frame_bytes = 4096);
    let (mut ws, _) = tokio_tungstenite::connect_async(srv.ws_url(1))
        .await
        .unwrap();
    // A masked text frame declaring 2^40 bytes, then a trickle of its payload.
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let raw = match ws.get_mut() {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => s,
        _ => unreachable!("plain ws://"),
    };
    raw.write_all(&header).await.unwrap();
    raw.write_all(&[b'x'; 1024]).await.unwrap();
    let mut c = Client::from_stream(ws);
    assert_eq!(c.closed().await, Some(CloseCode::Size));
}

#[tokio::test]
async fn logins_are_rate_limited_per_client_address() {
    let srv = TestServer::start_with(|c| c.limits.logins_per_min = 3);
    register_uid(&srv, "carol").await;
    let login = json!({"username": "carol", "password": "secret1"});
    for _ in 0..2 {
        assert_eq!(srv.post("/login", None, login.clone()).await["code"], 1);
    }
    let over = srv.post("/login", None, login.clone()).await;
    assert_eq!(over["error"], "rate_limited", "{over}");
    // X-Forwarded-For from an untrusted peer is not believed.
    let spoofed = reqwest::Client::new()
        .post(srv.http("/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&login)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(spoofed["error"], "rate_limited", "{spoofed}");
}

async fn login_from(srv: &TestServer, addr: &str, password: &str) -> Value {
    reqwest::Client::new()
        .post(srv.http("/login"))
        .header("x-forwarded-for", addr)
        .json(&json!({"username": "dave1", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_passwords_lock_out_only_the_address_that_sent_them() {
    let srv = TestServer::start_with(|c| {
        c.limits.login_failures = 3;
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    });
    register_uid(&srv, "dave1").await;
    for _ in 0..3 {
        assert_eq!(
            login_from(&srv, "198.51.100.7", "wrong99").await["msg"],
            "密码错误"
        );
    }
    let locked = login_from(&srv, "198.51.100.7", "secret1").await;
    assert_eq!(locked["error"], "rate_limited", "{locked}");
    // The owner, elsewhere, is not locked out by the attacker.
    let owner = login_from(&srv, "192.0.2.44", "secret1").await;
    assert_eq!(owner["msg"], "登录成功", "{owner}");
}

/// `n` stored 1:1 messages from user 9 to `to` of `len` characters each.
async fn history(srv: &TestServer, to: i64, n: usize, len: usize) {
    let mut sender = srv.connect(9).await;
    let text = "x".repeat(len);
    for i in 0..n {
        sender.send_json(json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": text, "to_uid": to, "client_msg_id": format!("h{i}")}})).await;
    }
    for _ in 0..n {
        assert_eq!(sender.reply().await["code"], 1);
    }
}

#[tokio::test]
async fn a_sync_page_is_at_most_a_mebibyte_with_has_more() {
    let srv = TestServer::start_with(|c| c.limits.max_msg_chars = 4000);
    history(&srv, 1, 400, 4000).await;
    let mut c = srv.connect(1).await;
    let mut since = 0;
    let mut seen = 0;
    loop {
        c.send_json(json!({"class": "chat", "action": "sync", "content": {"since_msg_id": since, "limit": 500}}))
            .await;
        let text = match c.next_raw().await {
            Some(tokio_tungstenite::tungstenite::Message::Text(t)) => t,
            other => panic!("{other:?}"),
        };
        assert!(text.len() <= 1 << 20, "a reply of {} bytes", text.len());
        let page: Value = serde_json::from_str(&text).unwrap();
        let rows = page["result"]["rows"].as_array().unwrap();
        seen += rows.len();
        since = rows.last().map_or(since, |r| r["msg_id"].as_i64().unwrap());
        if !page["result"]["has_more"].as_bool().unwrap() {
            break;
        }
        assert!(rows.len() < 400, "the first page was cut to fit");
    }
    assert_eq!(seen, 400, "paging by has_more reaches every message");
}

#[tokio::test]
async fn pipelined_heavy_requests_cannot_pile_up_replies() {
    // Room for four pages (a sync in flight reserves 1 MiB and its reply's envelope).
    let srv = TestServer::start_with(|c| c.limits.max_pending_bytes = (4 << 20) + 1024);
    history(&srv, 1, 50, 100).await;
    let mut c = srv.connect(1).await;
    // One write, so the server reads them together; and 16 frames, as many as the session
    // takes in before it yields (actix's stream handler), so no reply is written (and
    // frees its reservation) between the first request and the last.
    let sync =
        json!({"class": "chat", "action": "sync", "content": {"since_msg_id": 0, "limit": 500}});
    c.send_together(std::iter::repeat_n(sync, 16)).await;
    let mut pages = 0;
    for _ in 0..16 {
        let r = c.reply().await;
        if r["code"] == 201 {
            pages += 1;
        } else {
            assert_eq!(r, rate_limited());
        }
    }
    // Each sync in flight holds a page's worth (1 MiB) of the bound.
    assert_eq!(pages, 4, "{pages} pages answered at once");
}

#[tokio::test]
async fn a_page_of_history_costs_more_than_a_send() {
    let srv = TestServer::start_with(|c| {
        c.limits.msgs_per_sec = 1;
        c.limits.burst = 40;
        // Only the rate budget is under test here, not the replies owed.
        c.limits.max_pending_bytes = 64 << 20;
    });
    let mut c = srv.connect(1).await;
    for _ in 0..10 {
        c.send_json(json!({"class": "chat", "action": "sync", "content": {}}))
            .await;
    }
    let mut answered = 0;
    for _ in 0..10 {
        if c.reply().await["code"] == 201 {
            answered += 1;
        }
    }
    assert_eq!(answered, 4, "a sync costs 10 of the burst of 40");
    c.send_text("ping").await;
    assert_eq!(c.reply().await["code"], -1);
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off() {
    let srv = TestServer::start_with(|c| {
        c.server.client_timeout_secs = 2;
        c.limits.max_msg_chars = 4000;
    });
    history(&srv, 1, 300, 4000).await;
    tokio::time::sleep(QUIET).await;
    // A socket with a tiny receive window that is never read.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&srv.addr.into()).unwrap();
    sock.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(sock.into()).unwrap();
    let (ws, _) = tokio_tungstenite::client_async(srv.ws_url(1), tcp)
        .await
        .unwrap();
    let (mut write, _read) = ws.split();
    use futures_util::SinkExt;
    for _ in 0..40 {
        write
            .send(tokio_tungstenite::tungstenite::Message::text(
                json!({"class": "chat", "action": "sync", "content": {"since_msg_id": 0, "limit": 500}}).to_string(),
            ))
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while srv.metric("shopchat_connections").await > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a connection stalled on output was never closed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn reads_of_a_closed_connection_are_skipped_and_never_delay_sends() {
    let srv = TestServer::start_with(|c| {
        c.database.read_pool_size = 1;
        c.limits.max_pending_bytes = 1 << 30;
    });
    history(&srv, 1, 300, 200).await;
    let sync =
        json!({"class": "chat", "action": "sync", "content": {"since_msg_id": 0, "limit": 500}});

    // Reads queued ahead of a send do not hold it up: the ack comes before the reads end.
    let mut reader = srv.connect(1).await;
    for _ in 0..100 {
        reader.send_json(sync.clone()).await;
    }
    let mut writer = srv.connect(2).await;
    assert_eq!(writer.send_direct(3, "not stuck").await["code"], 1);
    let mut done_before_ack = 0;
    while tokio::time::timeout(Duration::from_millis(1), reader.reply())
        .await
        .is_ok()
    {
        done_before_ack += 1;
    }
    assert!(
        done_before_ack < 100,
        "the send waited for all {done_before_ack} reads"
    );

    // A connection that leaves with reads queued: they are skipped, its sends are not.
    // It closes cleanly and keeps its socket, unread (dropping a socket with unread data
    // would reset the connection, and the server would never read the sends at all).
    let mut leaver = srv.connect(4).await;
    for _ in 0..100 {
        leaver.send_json(sync.clone()).await;
    }
    for i in 0..20 {
        leaver.send_json(json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": format!("last words {i}"), "to_uid": 5}})).await;
    }
    leaver
        .send_raw(tokio_tungstenite::tungstenite::Message::Close(None))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while srv
        .metric("shopchat_rejected_frames_total{reason=\"read_skipped\"}")
        .await
        == 0.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no queued read was skipped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut five = srv.connect(5).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = five.sync(0, 100).await["result"]["rows"]
            .as_array()
            .unwrap()
            .len();
        if rows == 20 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sends of a closed connection were lost: {rows} of 20"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes `a` and `b` each send the other a message (then drops the pushes).
async fn befriend(a: &mut Client, a_uid: i64, b: &mut Client, b_uid: i64) {
    assert_eq!(a.send_direct(b_uid, "hi").await["code"], 1);
    assert_eq!(b.send_direct(a_uid, "hi").await["code"], 1);
    a.drain_pushes(QUIET).await;
    b.drain_pushes(QUIET).await;
}

#[tokio::test]
async fn groups_are_private_unless_opened() {
    let srv = TestServer::start();
    let mut owner = srv.connect(1).await;
    let mut friend = srv.connect(2).await;
    let mut one_way = srv.connect(3).await;
    let mut stranger = srv.connect(4).await;
    befriend(&mut owner, 1, &mut friend, 2).await;
    owner.send_direct(3, "you never answered").await;

    let r = owner
        .request(
            "group",
            "create",
            json!({"name": "vip", "member_uids": [4]}),
        )
        .await;
    assert_eq!(
        r["error"], "forbidden",
        "strangers cannot be put in a group: {r}"
    );
    let vip = owner
        .request(
            "group",
            "create",
            json!({"name": "vip", "member_uids": [2]}),
        )
        .await["result"]["group_id"]
        .as_i64()
        .unwrap();
    let join = json!({"group_id": vip});
    assert_eq!(
        stranger.request("group", "join", join.clone()).await["error"],
        "forbidden",
        "a private group cannot be joined"
    );
    let add = |uid: i64| json!({"group_id": vip, "uid": uid});
    assert_eq!(
        owner.request("group", "add", add(3)).await["error"],
        "forbidden",
        "one direction is not enough"
    );
    assert_eq!(
        friend.request("group", "add", add(4)).await["error"],
        "forbidden",
        "only the owner adds"
    );
    assert_eq!(
        owner
            .request("group", "add", json!({"group_id": 999, "uid": 2}))
            .await["error"],
        "not_found"
    );
    one_way.send_direct(1, "now I answer").await;
    owner.drain_pushes(QUIET).await;
    assert_eq!(owner.request("group", "add", add(3)).await["code"], 1);
    let members = owner.request("group", "members", join.clone()).await;
    let ids: Vec<i64> = members["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);

    // The platform may add anyone; an open group anyone may join.
    let (st, _) = srv
        .admin(Method::PUT, &format!("/admin/groups/{vip}/members/4"), None)
        .await;
    assert_eq!(st, 200);
    let open = owner
        .request("group", "create", json!({"name": "lobby", "open": true}))
        .await["result"]["group_id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        stranger
            .request("group", "join", json!({"group_id": open}))
            .await["code"],
        1
    );
    let (st, v) = srv
        .admin(
            Method::POST,
            "/admin/groups",
            Some(json!({"name": "staff", "owner_uid": 9, "open": true})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let staff = v["result"]["group_id"].as_i64().unwrap();
    assert_eq!(
        stranger
            .request("group", "join", json!({"group_id": staff}))
            .await["code"],
        1
    );
}

#[tokio::test]
async fn a_client_msg_id_is_scoped_to_its_chat() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    let mut c = srv.connect(3).await;
    let to = |uid: i64| json!({"class": "chat", "action": "sendMsg", "content": {"chat_type": 1, "msg_type": 1, "msg": format!("for {uid}"), "to_uid": uid, "client_msg_id": "same-id"}});
    a.send_json(to(2)).await;
    let first = a.reply().await;
    a.send_json(to(3)).await;
    let second = a.reply().await;
    assert_eq!(second["code"], 1);
    assert_ne!(first["result"]["msg_id"], second["result"]["msg_id"]);
    assert_eq!(second["result"]["chat_id"], "1_3");
    assert_eq!(b.push().await["result"]["msg"], "for 2");
    assert_eq!(c.push().await["result"]["msg"], "for 3");
    // A retry in the same chat still gets the first ack and no second push.
    a.send_json(to(3)).await;
    assert_eq!(a.reply().await, second);
    assert!(c.maybe_push(QUIET).await.is_none());
}

#[tokio::test]
async fn broadcasts_are_in_each_users_own_chat_and_not_inherited_by_new_accounts() {
    let srv = TestServer::start();
    let (st, _) = srv
        .admin(
            Method::POST,
            "/admin/notify",
            Some(json!({"all": true, "msg_type": 1, "msg": "sale today"})),
        )
        .await;
    assert_eq!(st, 200);
    // A platform user first seen now existed when it was sent: it gets it, as its own chat.
    let mut seven = srv.connect(7).await;
    let rows = seven.sync(0, 10).await["result"]["rows"].clone();
    assert_eq!(rows[0]["msg"], "sale today");
    assert_eq!(rows[0]["chat_id"], "system_7");
    let record = srv
        .post_as(7, "/user/getChatRecord", json!({"chat_id": "system_7"}))
        .await;
    assert_eq!(
        record["result"]["rows"][0]["chat_id"], "system_7",
        "{record}"
    );
    let recent = seven.request("user", "recentChat", json!({})).await;
    assert_eq!(recent["result"]["rows"][0]["chat_id"], "system_7");

    // An account registered after it does not inherit it, but gets later ones.
    let (fresh, token) = register_uid(&srv, "newcomer").await;
    let mut c = Client::connect(&format!("ws://{}/?token={token}", srv.addr)).await;
    assert_eq!(c.sync(0, 10).await["result"]["rows"], json!([]));
    let recent = c.request("user", "recentChat", json!({})).await;
    assert_eq!(recent["result"]["unread_count"], 0, "{recent}");
    assert_eq!(recent["result"]["rows"], json!([]));
    let record = srv
        .post(
            "/user/getChatRecord",
            Some(&token),
            json!({"chat_id": format!("system_{fresh}")}),
        )
        .await;
    assert_eq!(record["result"]["total"], 0, "{record}");
    srv.admin(
        Method::POST,
        "/admin/notify",
        Some(json!({"all": true, "msg_type": 1, "msg": "welcome week"})),
    )
    .await;
    let push = c.push().await;
    assert_eq!(push["result"]["chat_id"], format!("system_{fresh}"));
    let rows = c.sync(0, 10).await["result"]["rows"].clone();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["msg"], "welcome week");
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

async fn upload_as(srv: &TestServer, uid: i64, bytes: Vec<u8>) -> Value {
    srv.upload(uid, "file", bytes).await
}

#[tokio::test]
async fn uploads_have_a_quota_refuse_polyglots_and_are_served_inert() {
    let srv = TestServer::start_with(|c| {
        c.media.max_files_per_min = 3;
        c.media.max_bytes_per_hour = 2048;
    });
    let polyglot = [PNG, b"<script>alert(1)</script>"].concat();
    let r = upload_as(&srv, 1, polyglot).await;
    assert_eq!(r["error"], "not_an_image", "{r}");
    let ok = upload_as(&srv, 1, PNG.to_vec()).await;
    assert_eq!(ok["code"], 0, "{ok}");
    let served = reqwest::get(
        ok["data"]["src"]
            .as_str()
            .unwrap()
            .replace("http://media.test", &srv.http("")),
    )
    .await
    .unwrap();
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        served.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    let third = upload_as(&srv, 1, PNG.to_vec()).await;
    assert_eq!(third["code"], 0, "{third}");
    let r = upload_as(&srv, 1, PNG.to_vec()).await;
    assert_eq!(
        (r["code"].clone(), r["error"].clone()),
        (json!(429), json!("rate_limited")),
        "three files a minute"
    );
    // The byte quota is per user too: 2 KiB an hour is two tiny PNGs.
    assert_eq!(upload_as(&srv, 2, PNG.to_vec()).await["code"], 0);
    assert_eq!(upload_as(&srv, 2, PNG.to_vec()).await["code"], 0);
    let r = upload_as(&srv, 2, PNG.to_vec()).await;
    assert_eq!(r["error"], "rate_limited", "{r}");
}

#[tokio::test]
async fn a_trickled_request_body_is_cut_off() {
    use tokio::io::AsyncReadExt;
    let srv = TestServer::start_with(|c| c.server.body_timeout_secs = 1);
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{",
    )
    .await
    .unwrap();
    // One byte every 300 ms would take 18 s; the answer must come long before.
    let mut answer = Vec::new();
    for _ in 0..59 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if tcp.write_all(b" ").await.is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(1), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if !answer.is_empty() {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "the slow body was not cut off: {text:?}"
    );
}

#[tokio::test]
async fn allowed_hosts_stop_tracking_pixels_and_keep_our_uploads() {
    let srv = TestServer::start_with(|c| c.media.allowed_hosts = vec!["cdn.shop.test".into()]);
    let mut a = srv.connect(1).await;
    let image = |url: &str| json!({"chat_type": 1, "msg_type": 2, "msg": url, "to_uid": 2});
    let r = a
        .request(
            "chat",
            "sendMsg",
            image("https://tracker.example/p.gif?u=1"),
        )
        .await;
    assert_eq!(r["error"], "image_not_allowed", "{r}");
    for ok in [
        "https://cdn.shop.test/a.png",
        "/media/0123456789abcdef0123456789abcdef.png",
        "http://media.test/media/0123456789abcdef0123456789abcdef.png",
    ] {
        assert_eq!(
            a.request("chat", "sendMsg", image(ok)).await["code"],
            1,
            "{ok}"
        );
    }
    // Text is not an image: any text goes.
    assert_eq!(
        a.send_direct(2, "https://tracker.example/p.gif").await["code"],
        1
    );
}

#[tokio::test]
async fn upload_urls_follow_the_request_when_no_base_url_is_set() {
    let srv = TestServer::start_with(|c| {
        c.media.base_url = String::new();
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    });
    let r = upload_as(&srv, 1, PNG.to_vec()).await;
    let src = r["data"]["src"].as_str().unwrap();
    assert!(
        src.starts_with(&format!("http://{}/media/", srv.addr)),
        "{src}"
    );
    let served = reqwest::get(src).await.unwrap();
    assert_eq!(served.status(), 200);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(PNG.to_vec()).file_name("a.png"),
    );
    let behind_proxy: Value = reqwest::Client::new()
        .post(srv.http("/user/upload"))
        .header("authorizations", format!("bear {}", srv.token(2)))
        .header("x-forwarded-host", "chat.shop.test")
        .header("x-forwarded-proto", "https")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        behind_proxy["data"]["src"]
            .as_str()
            .unwrap()
            .starts_with("https://chat.shop.test/media/"),
        "{behind_proxy}"
    );
}

#[tokio::test]
async fn metrics_can_be_kept_off_the_public_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let at = format!("127.0.0.1:{port}");
    let srv = common::ChildServer::spawn(
        dir.path(),
        &[("SHOPCHAT__SERVER__METRICS_ADDR", at.as_str())],
    );
    let public = reqwest::get(format!("http://{}/metrics", srv.addr))
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let private = reqwest::get(format!("http://{at}/metrics")).await.unwrap();
    assert_eq!(private.status(), 200);
    assert!(private
        .text()
        .await
        .unwrap()
        .contains("shopchat_connections"));
}
