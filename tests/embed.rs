//! Embedding (issue 9): `examples/embed.rs` as a real process, and the handle's typed
//! operations inside a host's own actix System.

mod common;

use std::time::Duration;

use actix_web::{App, HttpServer};
use common::{ChildServer, Client, WAIT};
use serde_json::{json, Value};
use shopchat::auth::Authenticator;
use shopchat::embed::{AdminError, Audience, Builder, ShopUpdate, UserUpdate};
use shopchat::ids::{ShopId, UserId};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The example binary, which `cargo test` builds next to the test binaries.
fn example_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join("embed");
    assert!(
        path.exists(),
        "{} is missing: run the whole `cargo test` (it builds the examples) or `cargo build --example embed`",
        path.display()
    );
    path
}

#[tokio::test]
async fn example_serves_the_host_and_shopchat_under_im() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = ChildServer::spawn_program(
        &example_binary(),
        &["--port", "0", "--config", "config.dev.toml"],
        dir.path(),
        &[("SHOPCHAT__LIMITS__MSGS_PER_SEC", "0")],
    );
    let base = format!("http://{}", host.addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The host's own route, and nothing of shopchat's outside /im.
    let hello = http.get(format!("{base}/hello")).send().await.unwrap();
    assert_eq!(hello.text().await.unwrap(), "hello from the host app\n");
    let outside = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(outside.status(), 404);
    let healthz = http.get(format!("{base}/im/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);

    // The web client under the prefix: /im redirects to /im/ so relative links resolve.
    let bare = http.get(format!("{base}/im")).send().await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/im/");
    let page = http.get(format!("{base}/im/")).send().await.unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("client/app.js"));
    let script = http
        .get(format!("{base}/im/client/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);

    // The admin API under the prefix.
    let put = http
        .put(format!("{base}/im/admin/users/1"))
        .bearer_auth("shopchat-dev-admin-token")
        .json(&json!({"nickname": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    // WebSockets at /im/ and /im/ws: a 1:1 message.
    let ws = |uid: i64, path: &str| {
        format!(
            "ws://{}/im{path}?token={}",
            host.addr,
            host.auth.mint(UserId(uid))
        )
    };
    let mut ann = Client::connect(&ws(1, "/")).await;
    let mut bob = Client::connect(&ws(2, "/ws")).await;
    let ack = ann.send_direct(2, "hello bob").await;
    assert_eq!(ack["code"], 1, "{ack}");
    let push = bob.push().await;
    assert_eq!(push["result"]["msg"], "hello bob");
    assert_eq!(push["result"]["nickname"], "Ann");

    // The host's back end calling the handle directly.
    let online: Vec<i64> = http
        .get(format!("{base}/backend/online?uids=1,2,3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(online, vec![1, 2]);
    let ids: Vec<i64> = http
        .post(format!("{base}/backend/notice/2"))
        .body("your parcel has shipped")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    let notice = bob.push().await;
    assert_eq!(notice["result"]["chat_type"], 3);
    assert_eq!(notice["result"]["msg"], "your parcel has shipped");
    assert_eq!(notice["result"]["msg_id"], ids[0]);

    // Ctrl-C/SIGTERM: sockets get 1001 and the host exits cleanly.
    host.signal("-TERM");
    assert_eq!(ann.closed().await, Some(CloseCode::Away));
    assert!(host.wait_exit(WAIT).success());
}

/// A host app holding only `chat`'s routes under `prefix`, on an ephemeral port, inside
/// the current actix System: its address, its handle and its task.
fn host(
    chat: &shopchat::embed::Shopchat,
    prefix: &str,
) -> (
    std::net::SocketAddr,
    actix_web::dev::ServerHandle,
    actix_rt::task::JoinHandle<std::io::Result<()>>,
) {
    let routes = chat.mount(prefix);
    let server = HttpServer::new(move || App::new().configure(routes.clone()))
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    (addr, handle, actix_rt::spawn(server))
}

/// Every typed operation, in the host's own actix System, checked through real sockets.
#[test]
fn handle_operations_work_without_http() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path());
    let auth = Authenticator::new(&config.auth);
    actix_rt::System::new().block_on(async move {
        let chat = Builder::new(config)
            .start()
            .await
            .expect("shopchat should start");
        let (addr, handle, serving) = host(&chat, "/chat/");
        let url = |uid: i64| format!("ws://{addr}/chat/?token={}", auth.mint(UserId(uid)));

        // Profiles and shops.
        let ann = chat
            .upsert_user(UserId(10), UserUpdate::named("Ann"))
            .await
            .unwrap();
        assert_eq!((ann.id, ann.nickname.as_str()), (10, "Ann"));
        let shop = chat
            .upsert_shop(
                ShopId(5),
                ShopUpdate {
                    capacity: Some(3),
                    ..ShopUpdate::named("Tea House")
                },
            )
            .await
            .unwrap();
        assert_eq!((shop.name.as_str(), shop.capacity), ("Tea House", 3));
        assert!(matches!(
            chat.upsert_user(UserId(0), UserUpdate::named("x")).await,
            Err(AdminError::BadRequest(_))
        ));
        assert!(matches!(
            chat.upsert_shop(ShopId(6), ShopUpdate::named(" ")).await,
            Err(AdminError::BadRequest(_))
        ));

        // An agent: attached, flagged online, connected, hence routable.
        chat.attach_agent(ShopId(5), UserId(20), Some("Bo".into()))
            .await
            .unwrap();
        assert!(matches!(
            chat.attach_agent(ShopId(999), UserId(20), None).await,
            Err(AdminError::NotFound(_))
        ));
        chat.set_agent_online(ShopId(5), UserId(20), true)
            .await
            .unwrap();
        let mut agent = Client::connect(&url(20)).await;
        let mut consumer = Client::connect(&url(10)).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let agents = chat.shop_agents(ShopId(5)).await.unwrap();
            assert_eq!(agents.len(), 1);
            assert_eq!((agents[0].uid, agents[0].online), (20, true));
            if agents[0].connected {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "agent never connected"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            chat.online_users(&[UserId(30), UserId(20), UserId(10)])
                .await
                .unwrap(),
            vec![UserId(10), UserId(20)]
        );
        common::ask_shop(&mut consumer, 5, "is the oolong in stock?").await;
        let push = agent.push().await;
        assert_eq!(push["result"]["msg"], "is the oolong in stock?");
        assert_eq!(push["result"]["nickname"], "Ann");

        // Groups.
        let group = chat
            .create_group("tea club", UserId(10), &[UserId(20)])
            .await
            .unwrap();
        assert!(chat.add_group_member(group, UserId(30)).await.unwrap());
        assert!(!chat.add_group_member(group, UserId(30)).await.unwrap());
        chat.remove_group_member(group, UserId(30)).await.unwrap();
        assert!(matches!(
            chat.remove_group_member(group, UserId(30)).await,
            Err(AdminError::NotFound(_))
        ));
        let members = consumer
            .request("group", "members", json!({"group_id": group}))
            .await;
        let uids: Vec<i64> = members["result"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert_eq!(uids, vec![10, 20]);

        // Notices.
        let ids = chat
            .notify(Audience::Users(vec![UserId(10)]), 1, "welcome".into())
            .await
            .unwrap();
        let notice = consumer.push().await;
        assert_eq!(notice["result"]["chat_type"], 3);
        assert_eq!(notice["result"]["msg_id"], json!(ids[0].0));
        assert!(matches!(
            chat.notify(Audience::Users(vec![]), 1, "x".into()).await,
            Err(AdminError::BadRequest(_))
        ));
        assert!(matches!(
            chat.notify(Audience::All, 7, "x".into()).await,
            Err(AdminError::BadRequest(_))
        ));

        // Detached, the agent is no longer the shop's.
        chat.detach_agent(ShopId(5), UserId(20)).await.unwrap();
        let reply = agent
            .request("service", "setOnline", json!({"online": true}))
            .await;
        assert_eq!(reply["error"], Value::from("forbidden"), "{reply}");

        // The host's shutdown: pause, drain shopchat (sockets get 1001), stop.
        handle.pause().await;
        chat.shutdown().await;
        assert_eq!(consumer.closed().await, Some(CloseCode::Away));
        handle.stop(true).await;
        serving.await.unwrap().unwrap();
    });
}

/// With the web client off, a plain GET of the mount point is the one-line hint.
#[test]
fn the_web_client_can_be_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path());
    actix_rt::System::new().block_on(async move {
        let chat = Builder::new(config)
            .web_client(false)
            .start()
            .await
            .unwrap();
        let (addr, handle, serving) = host(&chat, "/im");
        let page = reqwest::get(format!("http://{addr}/im/")).await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page
            .text()
            .await
            .unwrap()
            .starts_with("shopchat: connect a WebSocket"));
        let script = reqwest::get(format!("http://{addr}/im/client/app.js"))
            .await
            .unwrap();
        assert_eq!(script.status(), 404);
        handle.stop(true).await;
        serving.await.unwrap().unwrap();
    });
}

/// Start-up connects and migrates on a blocking thread: while another connection holds
/// the database locked, the host's own tasks on the same System keep running.
#[test]
fn starting_leaves_the_hosts_threads_free() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path());
    let path = config
        .database
        .url
        .trim_start_matches("sqlite://")
        .to_string();
    let mut holder = diesel::SqliteConnection::establish(&path).unwrap();
    holder.batch_execute("BEGIN EXCLUSIVE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        holder.batch_execute("COMMIT").unwrap();
    });
    actix_rt::System::new().block_on(async move {
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let counter = ticks.clone();
        actix_rt::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                counter.set(counter.get() + 1);
            }
        });
        let chat = Builder::new(config)
            .start()
            .await
            .expect("shopchat should start once the lock is released");
        assert!(
            ticks.get() >= 5,
            "the host's task ran {} times while shopchat waited for the database",
            ticks.get()
        );
        chat.shutdown().await;
    });
    release.join().unwrap();
}
