//! ChatServer against a real DbExecutor, with recorder actors standing in for sockets
//! (the server under test is real; only the far end of each connection is a recorder).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::*;
use crate::protocol::{parse_frame, Frame};

type Log = Arc<Mutex<Vec<Arc<str>>>>;

struct Recorder(Log);

/// Records the close codes it is told.
struct CloseRecorder(Arc<Mutex<Vec<u16>>>, Log);

impl Actor for CloseRecorder {
    type Context = Context<Self>;
}

impl Handler<ToSession> for CloseRecorder {
    type Result = ();
    fn handle(&mut self, m: ToSession, _: &mut Context<Self>) {
        match m {
            ToSession::Deliver(text) => self.1.lock().unwrap().push(text),
            ToSession::Close(c) => self.0.lock().unwrap().push(c.code),
        }
    }
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<ToSession> for Recorder {
    type Result = ();
    fn handle(&mut self, m: ToSession, _: &mut Context<Self>) {
        if let ToSession::Deliver(text) = m {
            self.0.lock().unwrap().push(text);
        }
    }
}

async fn connect(server: &Addr<ChatServer>, uid: i64) -> (ConnId, Log) {
    let log: Log = Arc::default();
    let addr = Recorder(log.clone()).start();
    let conn = ConnId::next();
    server
        .send(Connect {
            conn,
            uid: UserId(uid),
            profile: Profile {
                uid: UserId(uid),
                nickname: format!("u{uid}"),
                avatar: String::new(),
            },
            agent_shop: None,
            session: addr.recipient(),
            seen: crate::watch::Watch::new(),
        })
        .await
        .unwrap();
    (conn, log)
}

/// A ChatServer on `db` (for writes and reads alike), with `config`.
fn start_server(db: Addr<DbExecutor>, config: &Config) -> Addr<ChatServer> {
    let routers = crate::router::ShopRouter::starter(db.clone(), Presenter::new(config), None);
    ChatServer::new(
        db.clone(),
        db.clone(),
        db,
        config,
        Arc::new(crate::metrics::Metrics::new()),
        None,
        routers,
    )
    .start()
}

/// Sends `frame` (a request's JSON) as `uid` on `conn`; its reply.
async fn request(
    server: &Addr<ChatServer>,
    conn: ConnId,
    uid: i64,
    frame: &str,
) -> Result<String, ChatError> {
    let Ok(Frame::Request(request)) = parse_frame(frame) else {
        panic!("valid request: {frame}")
    };
    let (reply, answer) = oneshot::channel();
    server.do_send(ClientRequest {
        conn,
        uid: UserId(uid),
        request,
        reply,
        watch: crate::watch::Watch::new(),
    });
    answer.await.unwrap()
}

/// Waits until every log has received something.
async fn wait_for_pushes(logs: &[&Log]) {
    let mut waited = Duration::ZERO;
    while logs.iter().any(|l| l.lock().unwrap().is_empty()) {
        assert!(waited < Duration::from_secs(5), "pushes did not arrive");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
}

#[actix_rt::test]
async fn a_push_is_serialized_once_for_all_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pool = crate::db::connect(
        &format!("sqlite://{}/s.db", dir.path().display()),
        1,
        Default::default(),
    )
    .unwrap();
    let db = DbExecutor::start(pool, 1, Default::default());
    let server = start_server(db, &Config::default());
    let (sender, sender_log) = connect(&server, 1).await;
    let (_, sender_pc) = connect(&server, 1).await;
    let (_, phone) = connect(&server, 2).await;
    let (_, tab) = connect(&server, 2).await;

    let ack = request(
        &server,
        sender,
        1,
        r#"{"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":1,"msg":"hi","to_uid":2}}"#,
    )
    .await
    .unwrap();
    assert!(ack.contains("\"msg_id\""), "{ack}");

    wait_for_pushes(&[&sender_pc, &phone, &tab]).await;
    let first = phone.lock().unwrap()[0].clone();
    for log in [&sender_pc, &tab] {
        assert!(
            Arc::ptr_eq(&first, &log.lock().unwrap()[0]),
            "every connection shares one serialized push"
        );
    }
    assert!(
        sender_log.lock().unwrap().is_empty(),
        "the sending connection gets the ack, not the push"
    );
}

#[actix_rt::test]
async fn a_group_push_is_serialized_once_for_every_member_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pool = crate::db::connect(
        &format!("sqlite://{}/g.db", dir.path().display()),
        1,
        Default::default(),
    )
    .unwrap();
    let db = DbExecutor::start(pool, 1, Default::default());
    let group = db
        .send(crate::db::CreateGroup {
            name: "g".into(),
            owner: UserId(1),
            members: (2..=6).map(UserId).collect(),
            open: false,
            by: crate::db::groups::Joiner::Platform,
        })
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let server = start_server(db, &Config::default());
    let (sender, _) = connect(&server, 1).await;
    let mut logs = Vec::new();
    for uid in 2..=6 {
        logs.push(connect(&server, uid).await.1);
        logs.push(connect(&server, uid).await.1);
    }
    let text = format!(
        r#"{{"class":"chat","action":"sendMsg","content":{{"chat_type":2,"msg_type":1,"msg":"hi","to_uid":{}}}}}"#,
        group.0
    );
    assert!(request(&server, sender, 1, &text)
        .await
        .unwrap()
        .contains("msg_id"));
    wait_for_pushes(&logs.iter().collect::<Vec<_>>()).await;
    let first = logs[0].lock().unwrap()[0].clone();
    assert!(first.contains("\"group_id\""));
    for log in &logs {
        assert!(
            Arc::ptr_eq(&first, &log.lock().unwrap()[0]),
            "one serialization shared by all ten connections"
        );
    }
}

#[actix_rt::test]
async fn a_push_that_would_pass_the_byte_bound_closes_the_connection_instead() {
    let dir = tempfile::tempdir().unwrap();
    let pool = crate::db::connect(
        &format!("sqlite://{}/b.db", dir.path().display()),
        1,
        Default::default(),
    )
    .unwrap();
    let db = DbExecutor::start(pool, 1, Default::default());
    let mut config = Config::default();
    config.limits.max_pending_bytes = 2 << 20;
    let server = start_server(db, &config);
    let (sender, _) = connect(&server, 1).await;
    // User 2's connection already owes almost the whole bound (a socket nobody reads).
    let closes = Arc::new(Mutex::new(Vec::new()));
    let delivered: Log = Arc::default();
    let watch = crate::watch::Watch::new();
    watch.queued((2 << 20) - 100);
    server
        .send(Connect {
            conn: ConnId::next(),
            uid: UserId(2),
            profile: Profile::placeholder(UserId(2)),
            agent_shop: None,
            session: CloseRecorder(closes.clone(), delivered.clone())
                .start()
                .recipient(),
            seen: watch.clone(),
        })
        .await
        .unwrap();
    let acked = request(
        &server,
        sender,
        1,
        r#"{"class":"chat","action":"sendMsg","content":{"chat_type":1,"msg_type":1,"msg":"more than a hundred bytes of text, which is what this connection has room for before its bound, and then some","to_uid":2}}"#,
    )
    .await;
    assert!(acked.is_ok(), "the message is stored and acked");
    let mut waited = Duration::ZERO;
    while closes.lock().unwrap().is_empty() {
        assert!(waited < Duration::from_secs(5), "no close came");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    assert_eq!(*closes.lock().unwrap(), [1008]);
    assert!(
        delivered.lock().unwrap().is_empty(),
        "the push was not queued"
    );
    assert_eq!(watch.backlog(), (2 << 20) - 100, "nothing more was counted");
}
