//! Webhooks (PROTOCOL.md §13) against a real HTTP receiver started in the test, which
//! verifies every signature and counts duplicates: `message.offline` for exactly the
//! receivers connected nowhere, the conversation events in order, and delivery through
//! a receiver that is down, failing, hanging, or failing for good.

mod common;

use std::time::Duration;

use common::receiver::{Answer, Receiver, SECRET};
use common::{answer, ask_shop, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use shopchat::Config;

const LONG: Duration = Duration::from_secs(20);

/// A server that tells `url`, retrying fast.
fn hooked(url: &str, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let url = url.to_string();
    TestServer::start_with(move |c| {
        c.webhooks.url = url;
        c.webhooks.secret = SECRET.into();
        c.webhooks.retry_base_ms = 100;
        c.webhooks.timeout_ms = 1000;
        c.webhooks.offline_coalesce_secs = 0;
        adjust(c);
    })
}

fn data(e: &Value) -> &Value {
    &e["data"]
}

/// The `message.offline` events about `msg_id`.
fn offline_for(events: &[Value], msg_id: i64) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "message.offline" && e["data"]["msg_id"] == msg_id)
        .cloned()
        .collect()
}

fn to_uids(events: &[Value]) -> Vec<i64> {
    let mut uids: Vec<i64> = events
        .iter()
        .flat_map(|e| e["data"]["to_uids"].as_array().cloned().unwrap_or_default())
        .map(|u| u.as_i64().unwrap())
        .collect();
    uids.sort();
    uids
}

#[tokio::test]
async fn message_offline_names_exactly_the_receivers_connected_nowhere() {
    let hooks = Receiver::start();
    let srv = hooked(&hooks.url(), |_| {});
    srv.put_user(1, json!({"nickname": "Ann"})).await;
    let mut ann = srv.connect(1).await;
    let mut bob = srv.connect(2).await;

    // 1:1: Bob is connected, Cat (3) is not.
    let to_bob = ann.send_direct(2, "hi Bob").await["result"]["msg_id"]
        .as_i64()
        .unwrap();
    bob.push().await;
    let long = "长".repeat(100);
    let to_cat = ann.send_direct(3, &long).await["result"]["msg_id"]
        .as_i64()
        .unwrap();
    // A group of Ann, Bob, Cat and Dan (4): Cat and Dan are offline.
    let (st, v) = srv
        .admin(
            Method::POST,
            "/admin/groups",
            Some(json!({"name": "tea", "owner_uid": 1, "member_uids": [2, 3, 4]})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let group = v["result"]["group_id"].as_i64().unwrap();
    let r = ann
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 2, "msg_type": 1, "msg": "hello all", "to_uid": group}),
        )
        .await;
    let in_group = r["result"]["msg_id"].as_i64().unwrap();
    // Notices: to Cat alone, and to everyone (which names nobody).
    let (st, _) = srv
        .admin(
            Method::POST,
            "/admin/notify",
            Some(json!({"uids": [3], "msg_type": 1, "msg": "your order shipped"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = srv
        .admin(
            Method::POST,
            "/admin/notify",
            Some(json!({"all": true, "msg_type": 1, "msg": "sale today"})),
        )
        .await;
    assert_eq!(st, 200);

    let events = hooks.wait_for("message.offline", 3, LONG).await;
    assert_eq!(events.len(), 3, "{events:?}");
    // Give a wrong event for Bob or for the broadcast the time to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = hooks.of("message.offline");
    assert!(offline_for(&events, to_bob).is_empty(), "Bob was connected");
    let cat = offline_for(&events, to_cat);
    assert_eq!(cat.len(), 1);
    let d = data(&cat[0]);
    assert_eq!(d["to_uids"], json!([3]));
    assert_eq!(d["chat_id"], "1_3");
    assert_eq!(d["chat_type"], 1);
    assert_eq!(d["from_uid"], 1);
    assert_eq!(d["sender_name"], "Ann");
    assert_eq!(d["shop_id"], 0);
    assert_eq!(d["preview"], "长".repeat(80));
    assert_eq!(d["count"], 1);
    let g = offline_for(&events, in_group);
    assert_eq!(to_uids(&g), vec![3, 4], "only the offline members: {g:?}");
    assert_eq!(data(&g[0])["chat_type"], 2);
    let notices: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["chat_type"] == 3)
        .collect();
    assert_eq!(
        notices.len(),
        1,
        "the notice to Cat, not the broadcast: {notices:?}"
    );
    assert_eq!(notices[0]["data"]["to_uids"], json!([3]));
    for e in &events {
        assert!(e["created_at"].as_i64().unwrap() > 1_700_000_000);
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
    }
    let seqs: Vec<i64> = hooks
        .accepted()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let mut unique = seqs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seqs.len(), "every event has its own seq");
    hooks.assert_clean();
}

#[tokio::test]
async fn a_big_groups_offline_members_come_in_events_of_at_most_1000() {
    let hooks = Receiver::start();
    let srv = hooked(&hooks.url(), |_| {});
    let members: Vec<i64> = (2..=1600).collect();
    let (st, v) = srv
        .admin(
            Method::POST,
            "/admin/groups",
            Some(json!({"name": "fans", "owner_uid": 1, "member_uids": members})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let group = v["result"]["group_id"].as_i64().unwrap();
    let mut owner = srv.connect(1).await;
    let _online = srv.connect(2).await;
    let r = owner
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 2, "msg_type": 1, "msg": "new stock", "to_uid": group}),
        )
        .await;
    let id = r["result"]["msg_id"].as_i64().unwrap();
    let events = hooks.wait_for("message.offline", 2, LONG).await;
    let mine = offline_for(&events, id);
    assert_eq!(mine.len(), 2, "1598 offline members in two events");
    let sizes: Vec<usize> = mine
        .iter()
        .map(|e| e["data"]["to_uids"].as_array().unwrap().len())
        .collect();
    assert!(sizes.iter().all(|n| *n <= 1000), "{sizes:?}");
    assert_eq!(to_uids(&mine), (3..=1600).collect::<Vec<i64>>());
    hooks.assert_clean();
}

#[tokio::test]
async fn conversation_events_follow_the_session_in_order_even_when_the_first_attempt_fails() {
    // The first attempt of `conversation.waiting` fails: `assigned` must still come after it.
    let hooks = Receiver::with_plan(Box::new(|e, seen| match (e["type"].as_str(), seen) {
        (Some("conversation.waiting"), 0) => Answer::Status(503),
        _ => Answer::Ok,
    }));
    let srv = hooked(&hooks.url(), |c| {
        c.webhooks.events = vec![
            "conversation.waiting".into(),
            "conversation.assigned".into(),
            "conversation.transferred".into(),
            "conversation.resolved".into(),
            "conversation.rated".into(),
            "message.recalled".into(),
        ];
    });
    srv.shop_with_agents(3, "Tea House", &[(100, "Amy"), (101, "Bo")])
        .await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "anyone there?").await;
    let mut amy = srv.online_agent(100).await;
    amy.event_named("assigned").await;
    let mut bo = srv.online_agent(101).await;
    let oops = answer(&mut amy, 12, "oops").await["result"]["msg_id"]
        .as_i64()
        .unwrap();
    let r = amy.request("chat", "recall", json!({"msg_id": oops})).await;
    assert_eq!(r["code"], 1, "{r}");
    let r = amy
        .request(
            "service",
            "transfer",
            json!({"chat_id": "3____12", "to_uid": 101}),
        )
        .await;
    assert_eq!(r["code"], 1, "{r}");
    bo.event_named("transfer").await;
    let r = bo
        .request("service", "resolve", json!({"chat_id": "3____12"}))
        .await;
    assert_eq!(r["code"], 1, "{r}");
    consumer.event_named("rating_request").await;
    let r = consumer
        .request(
            "chat",
            "rate",
            json!({"chat_id": "3____12", "score": 5, "comment": "kind"}),
        )
        .await;
    assert_eq!(r["code"], 1, "{r}");

    let events = hooks.wait_for("", 6, LONG).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "conversation.waiting",
            "conversation.assigned",
            "message.recalled",
            "conversation.transferred",
            "conversation.resolved",
            "conversation.rated"
        ],
        "one conversation's events in order, the failed one first"
    );
    assert_eq!(hooks.log().requests[events[0]["id"].as_str().unwrap()], 2);
    let session = data(&events[0])["session_id"].as_i64().unwrap();
    assert!(session > 0);
    let base = json!({"shop_id": 3, "consumer_uid": 12, "session_id": session});
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    assert_eq!(data(&events[0]), &with(json!({"agent_uid": 0})));
    assert_eq!(data(&events[1]), &with(json!({"agent_uid": 100})));
    assert_eq!(
        data(&events[2]),
        &json!({"msg_id": oops, "chat_id": "3____12", "by_uid": 100})
    );
    assert_eq!(
        data(&events[3]),
        &with(json!({"agent_uid": 101, "from_uid": 100, "to_uid": 101}))
    );
    assert_eq!(
        data(&events[4]),
        &with(json!({"agent_uid": 101, "by_uid": 101}))
    );
    assert_eq!(
        data(&events[5]),
        &with(json!({"agent_uid": 101, "score": 5, "comment": "kind"}))
    );
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // `events` left message.offline out.
    assert!(hooks.of("message.offline").is_empty());
    hooks.assert_clean();
}

#[tokio::test]
async fn a_receiver_down_for_five_seconds_gets_every_event_once_it_is_up() {
    // Take a port, and leave nothing listening on it for now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let srv = hooked(&url, |_| {});
    let mut ann = srv.connect(1).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let r = ann.send_direct(100 + i, &format!("m{i}")).await;
        ids.push(r["result"]["msg_id"].as_i64().unwrap());
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        srv.metric("shopchat_webhook_deliveries_total{result=\"retry\"}")
            .await
            >= 1.0
    );
    let hooks = Receiver::start_on(port, Box::new(|_, _| Answer::Ok));
    let events = hooks.wait_for("message.offline", 30, LONG).await;
    let mut got: Vec<i64> = events
        .iter()
        .map(|e| e["data"]["msg_id"].as_i64().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, ids, "every event, none lost");
    tokio::time::sleep(Duration::from_millis(500)).await;
    hooks.assert_clean();
    let (_, v) = srv
        .admin(
            Method::GET,
            "/admin/webhooks/deliveries?state=pending",
            None,
        )
        .await;
    assert_eq!(v["result"]["rows"], json!([]), "nothing left pending");
}

#[tokio::test]
async fn three_500s_then_a_200_delivers_on_the_fourth_attempt() {
    let hooks = Receiver::with_plan(Box::new(|_, seen| match seen {
        0..=2 => Answer::Status(500),
        _ => Answer::Ok,
    }));
    let srv = hooked(&hooks.url(), |_| {});
    let mut ann = srv.connect(1).await;
    let id = ann.send_direct(2, "are you there?").await["result"]["msg_id"]
        .as_i64()
        .unwrap();
    let events = hooks.wait_for("message.offline", 1, LONG).await;
    assert_eq!(events.len(), 1);
    assert_eq!(data(&events[0])["msg_id"], id);
    let key = events[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        hooks.log().requests[&key],
        4,
        "delivered on the 4th attempt"
    );
    assert_eq!(
        srv.metric("shopchat_webhook_deliveries_total{result=\"retry\"}")
            .await,
        3.0
    );
    assert_eq!(
        srv.metric("shopchat_webhook_deliveries_total{result=\"ok\"}")
            .await,
        1.0
    );
    hooks.assert_clean();
}

#[tokio::test]
async fn an_attempt_that_hangs_past_timeout_ms_counts_as_failed() {
    let hooks = Receiver::with_plan(Box::new(|_, seen| match seen {
        0 => Answer::Hang,
        _ => Answer::Ok,
    }));
    let srv = hooked(&hooks.url(), |c| c.webhooks.timeout_ms = 300);
    let mut ann = srv.connect(1).await;
    ann.send_direct(2, "hello?").await;
    let events = hooks.wait_for("message.offline", 1, LONG).await;
    assert_eq!(events.len(), 1);
    let key = events[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        hooks.log().requests[&key],
        2,
        "the hung attempt, then one more"
    );
    assert_eq!(
        srv.metric("shopchat_webhook_deliveries_total{result=\"retry\"}")
            .await,
        1.0
    );
    hooks.assert_clean();
}

#[tokio::test]
async fn after_max_attempts_an_event_is_dead_and_a_retry_brings_it_back() {
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let failing = fail.clone();
    let hooks = Receiver::with_plan(Box::new(move |_, _| {
        match failing.load(std::sync::atomic::Ordering::SeqCst) {
            true => Answer::Status(500),
            false => Answer::Ok,
        }
    }));
    let srv = hooked(&hooks.url(), |c| c.webhooks.max_attempts = 3);
    let mut ann = srv.connect(1).await;
    let id = ann.send_direct(2, "lost?").await["result"]["msg_id"]
        .as_i64()
        .unwrap();
    let mut dead = Value::Null;
    for _ in 0..100 {
        let (st, v) = srv
            .admin(Method::GET, "/admin/webhooks/deliveries?state=dead", None)
            .await;
        assert_eq!(st, 200, "{v}");
        if v["result"]["rows"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            dead = v["result"]["rows"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead["state"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["type"], "message.offline");
    assert_eq!(dead["data"]["msg_id"], id);
    assert!(
        dead["last_error"].as_str().unwrap().contains("500"),
        "{dead}"
    );
    assert_eq!(
        srv.metric("shopchat_webhook_deliveries_total{result=\"dead\"}")
            .await,
        1.0
    );
    assert!(hooks.accepted().is_empty());

    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let path = format!(
        "/admin/webhooks/deliveries/{}/retry",
        dead["id"].as_str().unwrap()
    );
    let (st, v) = srv.admin(Method::POST, &path, None).await;
    assert_eq!(st, 200, "{v}");
    let events = hooks.wait_for("message.offline", 1, LONG).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], dead["id"]);
    let (_, v) = srv
        .admin(Method::GET, "/admin/webhooks/deliveries?state=dead", None)
        .await;
    assert_eq!(v["result"]["rows"], json!([]));
    // Retrying what is delivered, or nothing at all, is refused.
    let (st, _) = srv.admin(Method::POST, &path, None).await;
    assert_eq!(st, 404);
    let (st, _) = srv
        .admin(Method::POST, "/admin/webhooks/deliveries/x1/retry", None)
        .await;
    assert_eq!(st, 400);
    let (st, _) = srv
        .admin(Method::GET, "/admin/webhooks/deliveries?state=gone", None)
        .await;
    assert_eq!(st, 400);
    hooks.assert_clean();
}

#[tokio::test]
async fn offline_messages_to_one_receiver_within_the_window_come_as_one_event_with_a_count() {
    let hooks = Receiver::start();
    let srv = hooked(&hooks.url(), |c| c.webhooks.offline_coalesce_secs = 2);
    let mut ann = srv.connect(1).await;
    let mut last = 0;
    for i in 0..4 {
        last = ann.send_direct(2, &format!("m{i}")).await["result"]["msg_id"]
            .as_i64()
            .unwrap();
    }
    ann.send_direct(3, "to Cat").await;
    let events = hooks.wait_for("message.offline", 2, LONG).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let bob = events
        .iter()
        .find(|e| e["data"]["to_uids"] == json!([2]))
        .expect("Bob's event");
    assert_eq!(data(bob)["count"], 4);
    assert_eq!(data(bob)["msg_id"], last, "the latest message");
    assert_eq!(data(bob)["preview"], "m3");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(hooks.of("message.offline").len(), 2, "one event per window");
    hooks.assert_clean();
}

#[tokio::test]
async fn the_config_refuses_a_webhook_url_without_a_secret_or_an_unknown_event() {
    let mut c = Config::default();
    c.webhooks.url = "http://platform.test/hooks".into();
    assert!(c.validate(false).is_err(), "no secret");
    c.webhooks.secret = "s".into();
    assert!(c.validate(false).is_ok());
    c.webhooks.events = vec!["message.sent".into()];
    assert!(c.validate(false).is_err(), "unknown event");
    c.webhooks.events = vec![];
    c.webhooks.url = "ftp://platform.test".into();
    assert!(c.validate(false).is_err(), "not http");
}

#[tokio::test]
async fn with_webhooks_off_nothing_is_stored_for_them() {
    let srv = TestServer::start();
    let mut ann = srv.connect(1).await;
    ann.send_direct(2, "nobody is told").await;
    srv.shop_with_agents(3, "Tea House", &[]).await;
    ask_shop(&mut ann, 3, "waiting").await;
    let (st, v) = srv
        .admin(
            Method::GET,
            "/admin/webhooks/deliveries?state=pending",
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"]["rows"], json!([]));
}
