//! Customer service over time (PROTOCOL.md §10): auto-resolve, the rating window and the
//! shop's numbers, on a clock the tests stop and move (`shopchat::clock`). The clock is
//! the process's, so these tests run one at a time.

mod common;

use std::time::Duration;

use common::{answer, ask_shop, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use shopchat::clock;

/// One test at a time: they share the stopped clock.
static CLOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn start() -> TestServer {
    clock::stop_for_tests();
    TestServer::start_with(|c| c.service.sweep_secs = 1)
}

async fn shop(srv: &TestServer, id: i64, settings: Value, agents: &[(i64, &str)]) {
    srv.shop_with_agents(id, "Tea House", agents).await;
    let (st, v) = srv
        .admin(Method::PUT, &format!("/admin/shops/{id}"), Some(settings))
        .await;
    assert_eq!(st, 200, "{v}");
}

async fn ok(c: &mut common::Client, class: &str, action: &str, content: Value) -> Value {
    let r = c.request(class, action, content).await;
    assert_eq!(r["code"], 1, "{class}.{action}: {r}");
    r
}

#[tokio::test]
async fn idle_open_sessions_are_resolved_by_the_sweep_and_waiting_ones_never() {
    let _one = CLOCK.lock().await;
    let srv = start();
    shop(&srv, 3, json!({"auto_resolve_mins": 1}), &[(100, "Amy")]).await;
    shop(&srv, 4, json!({"auto_resolve_mins": 1}), &[(200, "Zed")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    let mut waiting = srv.connect(13).await;
    ask_shop(&mut consumer, 3, "hello").await;
    answer(&mut amy, 12, "hi").await;
    ask_shop(&mut waiting, 4, "anyone at shop 4?").await;
    assert_eq!(
        waiting.event_named("waiting").await["result"]["position"],
        1
    );

    clock::advance_for_tests(59);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        consumer
            .drain_events(Duration::from_millis(100))
            .await
            .is_empty(),
        "not idle long enough yet"
    );
    clock::advance_for_tests(2);
    let e = consumer.event_named("resolved").await;
    assert_eq!(e["result"]["by_uid"], 0, "resolved by the server: {e}");
    assert_eq!(amy.event_named("resolved").await["result"]["by_uid"], 0);
    consumer.event_named("rating_request").await;

    clock::advance_for_tests(600);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        waiting
            .drain_events(Duration::from_millis(100))
            .await
            .is_empty(),
        "a waiting consumer is never resolved away"
    );
    let (_, v) = srv
        .admin(Method::GET, "/admin/shops/4/sessions?state=waiting", None)
        .await;
    assert_eq!(v["result"]["rows"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = srv
        .admin(Method::GET, "/admin/shops/3/sessions?state=resolved", None)
        .await;
    assert_eq!(v["result"]["rows"][0]["state"], "resolved", "{v}");
}

#[tokio::test]
async fn a_rating_comes_within_seven_days_of_the_resolution() {
    let _one = CLOCK.lock().await;
    let srv = start();
    shop(&srv, 3, json!({}), &[(100, "Amy")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "hello").await;
    ok(
        &mut amy,
        "service",
        "resolve",
        json!({"chat_id": "3____12"}),
    )
    .await;
    clock::advance_for_tests(7 * 24 * 3600 + 1);
    let r = consumer
        .request("chat", "rate", json!({"chat_id": "3____12", "score": 4}))
        .await;
    assert_eq!(r["error"], "nothing_to_rate", "{r}");
}

#[tokio::test]
async fn the_shops_numbers_follow_their_definitions_exactly() {
    let _one = CLOCK.lock().await;
    let srv = start();
    shop(
        &srv,
        3,
        json!({"welcome_msg": "Welcome!"}),
        &[(100, "Amy"), (101, "Bo")],
    )
    .await;
    let from = clock::unix_now() as i64;
    let mut amy = srv.online_agent(100).await;
    let mut bo = srv.connect(101).await;

    // Session 1, Amy's: answered after 10 s, resolved after 60 s, rated 5.
    let mut c11 = srv.connect(11).await;
    ask_shop(&mut c11, 3, "one").await;
    clock::advance_for_tests(10);
    answer(&mut amy, 11, "answer one").await;
    clock::advance_for_tests(50);
    ok(
        &mut amy,
        "service",
        "resolve",
        json!({"chat_id": "3____11"}),
    )
    .await;
    ok(
        &mut c11,
        "chat",
        "rate",
        json!({"chat_id": "3____11", "score": 5}),
    )
    .await;

    // Amy steps away; Bo takes the rest.
    ok(&mut amy, "service", "setStatus", json!({"status": "away"})).await;
    ok(&mut bo, "service", "setStatus", json!({"status": "online"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Session 2, Bo's: the welcome is not a response; Bo answers after 30 s, resolves
    // after 120 s, rated 3 with a comment.
    let mut c12 = srv.connect(12).await;
    ask_shop(&mut c12, 3, "two").await;
    clock::advance_for_tests(30);
    answer(&mut bo, 12, "answer two").await;
    clock::advance_for_tests(90);
    ok(&mut bo, "service", "resolve", json!({"chat_id": "3____12"})).await;
    ok(
        &mut c12,
        "chat",
        "rate",
        json!({"chat_id": "3____12", "score": 3, "comment": "slow"}),
    )
    .await;

    // Session 3, Bo's, still open: answered after 20 s.
    let mut c13 = srv.connect(13).await;
    ask_shop(&mut c13, 3, "three").await;
    clock::advance_for_tests(20);
    answer(&mut bo, 13, "answer three").await;

    // Session 4: Bo writes first; no first-response figure.
    let r = answer(&mut bo, 14, "a note for you").await;
    assert_eq!(r["code"], 1, "{r}");

    let to = clock::unix_now() as i64 + 1;
    let (st, v) = srv
        .admin(
            Method::GET,
            &format!("/admin/shops/3/stats?from={from}&to={to}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["result"],
        json!({
            "from": from, "to": to,
            "sessions": 4,
            "waiting_now": 0,
            "first_response_secs": {"p50": 20, "p90": 30},
            "resolution_secs": {"p50": 60, "p90": 120},
            "rating": {"count": 2, "avg": 4.0},
            "agents": [
                {"uid": 100, "status": "away", "connected": true, "open_sessions": 0,
                 "sessions": 1, "messages": 1, "first_response_p50": 10, "rating_avg": 5.0},
                {"uid": 101, "status": "online", "connected": true, "open_sessions": 2,
                 "sessions": 3, "messages": 3, "first_response_p50": 20, "rating_avg": 3.0},
            ],
        })
    );

    // The admin listing: newest first, with first response, messages and rating.
    let (_, v) = srv
        .admin(
            Method::GET,
            "/admin/shops/3/sessions?limit=2&state=resolved",
            None,
        )
        .await;
    let rows = v["result"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["consumer_uid"], 12);
    assert_eq!(
        rows[0]["first_response_at"].as_i64().unwrap() - rows[0]["started_at"].as_i64().unwrap(),
        30
    );
    assert_eq!(
        rows[0]["messages"], 3,
        "the consumer's, the welcome and Bo's: {v}"
    );
    assert_eq!(rows[0]["rating"], json!({"score": 3, "comment": "slow"}));
    assert_eq!(rows[1]["consumer_uid"], 11);
    let before = rows[0]["session_id"].as_i64().unwrap();
    let (_, v) = srv
        .admin(
            Method::GET,
            &format!("/admin/shops/3/sessions?before={before}"),
            None,
        )
        .await;
    assert_eq!(v["result"]["rows"][0]["consumer_uid"], 11, "{v}");

    // A range that holds none of them.
    let (_, v) = srv
        .admin(
            Method::GET,
            &format!("/admin/shops/3/stats?from={}&to={from}", from - 100),
            None,
        )
        .await;
    assert_eq!(v["result"]["sessions"], 0);
    assert_eq!(
        v["result"]["first_response_secs"],
        json!({"p50": null, "p90": null})
    );
    assert_eq!(v["result"]["rating"], json!({"count": 0, "avg": null}));
    for bad in ["from=x", "from=10&to=5"] {
        let (st, _) = srv
            .admin(Method::GET, &format!("/admin/shops/3/stats?{bad}"), None)
            .await;
        assert_eq!(st, 400, "{bad}");
    }
    let (st, _) = srv
        .admin(Method::GET, "/admin/shops/3/sessions?state=closed", None)
        .await;
    assert_eq!(st, 400);
}
