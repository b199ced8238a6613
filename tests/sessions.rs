//! Customer service as a shop runs it (PROTOCOL.md §10): sessions that open and resolve,
//! agent status, the queue and its events, auto replies, roles, quick replies, blocking,
//! the desk's queries and ratings. (What needs the clock moved, auto-resolve and the
//! shop's numbers, is in `service_clock.rs`.)

mod common;

use std::time::Duration;

use common::{answer, ask_shop, Client, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(300);

/// Shop `id` named "Tea House" with `settings`, and its agents.
async fn shop(srv: &TestServer, id: i64, settings: Value, agents: &[(i64, &str)]) {
    srv.shop_with_agents(id, "Tea House", agents).await;
    let (st, v) = srv
        .admin(Method::PUT, &format!("/admin/shops/{id}"), Some(settings))
        .await;
    assert_eq!(st, 200, "{v}");
}

fn result(v: &Value) -> &Value {
    &v["result"]
}

async fn request(c: &mut Client, class: &str, action: &str, content: Value) -> Value {
    c.request(class, action, content).await
}

/// The events among `chat.sync` rows, by name.
fn event_rows(rows: &Value) -> Vec<&str> {
    rows.as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["event"].as_str())
        .collect()
}

/// The shop's sessions as the admin API lists them.
async fn sessions(srv: &TestServer, shop: i64) -> Vec<Value> {
    let (st, v) = srv
        .admin(Method::GET, &format!("/admin/shops/{shop}/sessions"), None)
        .await;
    assert_eq!(st, 200, "{v}");
    v["result"]["rows"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_session_opens_resolves_and_the_next_message_starts_a_sticky_new_one() {
    let srv = TestServer::start();
    shop(&srv, 3, json!({}), &[(100, "Amy")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;

    let ack = ask_shop(&mut consumer, 3, "hello").await;
    let assigned = amy.event_named("assigned").await;
    let first_session = result(&assigned)["session_id"].as_i64().unwrap();
    assert_eq!(
        result(&assigned),
        &json!({"event": "assigned", "chat_id": "3____12", "shop_id": 3, "consumer_uid": 12,
                "agent_uid": 100, "session_id": first_session, "reason": "random"})
    );
    assert_eq!(amy.push().await["result"]["msg"], "hello");
    let rows = sessions(&srv, 3).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "open");
    assert_eq!(rows[0]["agent_uid"], 100);

    let r = request(
        &mut amy,
        "service",
        "resolve",
        json!({"chat_id": "3____12"}),
    )
    .await;
    assert_eq!(r["code"], 1, "{r}");
    for c in [&mut consumer, &mut amy] {
        let e = c.event_named("resolved").await;
        assert_eq!(
            result(&e),
            &json!({"event": "resolved", "chat_id": "3____12", "shop_id": 3, "consumer_uid": 12,
                    "session_id": first_session, "by_uid": 100,
                    "msg_id": e["result"]["msg_id"], "seq": 2})
        );
    }
    let e = consumer.event_named("rating_request").await;
    assert_eq!(result(&e)["session_id"], first_session);
    assert_eq!(sessions(&srv, 3).await[0]["state"], "resolved");
    let again = request(
        &mut amy,
        "service",
        "resolve",
        json!({"chat_id": "3____12"}),
    )
    .await;
    assert_eq!(
        again["code"], 1,
        "resolving twice answers the same: {again}"
    );

    // A device that was offline learns of the resolution from chat.sync.
    let mut late = srv.connect(12).await;
    let rows = late.sync(0, 100).await["result"]["rows"].clone();
    assert_eq!(event_rows(&rows), ["resolved", "rating_request"], "{rows}");
    let agent_rows = amy.sync(0, 100).await["result"]["rows"].clone();
    assert_eq!(
        event_rows(&agent_rows),
        ["resolved"],
        "the rating request is the consumer's"
    );
    let resolved = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"] == "resolved")
        .unwrap();
    assert!(resolved["msg_id"].as_i64().unwrap() > ack["result"]["msg_id"].as_i64().unwrap());
    // ...but they are not messages: not in the history, not the last message, not unread.
    let history = srv
        .post_as(12, "/user/getChatRecord", json!({"chat_id": "3____12"}))
        .await;
    assert_eq!(history["result"]["total"], 1, "{history}");
    let recent = request(&mut consumer, "user", "recentChat", json!({})).await;
    assert_eq!(recent["result"]["rows"][0]["last_msg"], "hello", "{recent}");

    // The next message starts a new session, with the agent who served it last.
    ask_shop(&mut consumer, 3, "me again").await;
    let assigned = amy.event_named("assigned").await;
    assert_eq!(result(&assigned)["reason"], "sticky");
    let second_session = result(&assigned)["session_id"].as_i64().unwrap();
    assert!(second_session > first_session);
    assert_eq!(amy.push().await["result"]["msg"], "me again");
    let rows = sessions(&srv, 3).await;
    assert_eq!(
        rows.iter()
            .map(|r| (
                r["session_id"].as_i64().unwrap(),
                r["state"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [(second_session, "open"), (first_session, "resolved")]
    );
    assert_eq!(rows[1]["messages"], 1);
    assert!(rows[1]["resolved_at"].as_i64().is_some());
}

#[tokio::test]
async fn only_the_shops_agents_resolve_and_sessions_survive_a_restart() {
    let srv = TestServer::start();
    shop(&srv, 3, json!({}), &[(100, "Amy")]).await;
    srv.shop_with_agents(4, "Other", &[(200, "Zed")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut zed = srv.online_agent(200).await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "hello").await;
    amy.event_named("assigned").await;
    for (c, chat, want) in [
        (&mut zed, "3____12", "not_found"),
        (&mut consumer, "3____12", "forbidden"),
        (&mut amy, "3_12", "not_found"),
    ] {
        let r = request(c, "service", "resolve", json!({"chat_id": chat})).await;
        assert_eq!(r["error"], want, "{r}");
    }
    let r = request(&mut amy, "service", "resolve", json!({})).await;
    assert_eq!(r["error"], "bad_params");
    drop((amy, zed, consumer));

    let srv = srv.restart();
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "still there?").await;
    assert_eq!(amy.push().await["result"]["msg"], "still there?");
    assert!(
        amy.drain_events(QUIET)
            .await
            .iter()
            .all(|e| e["result"]["event"] != "assigned"),
        "the open session goes on after the restart: no new assignment"
    );
    assert_eq!(sessions(&srv, 3).await.len(), 1);
}

#[tokio::test]
async fn away_agents_keep_their_sessions_get_no_new_ones_and_offline_ones_lose_them() {
    let srv = TestServer::start();
    shop(&srv, 3, json!({}), &[(100, "Amy"), (101, "Bo")]).await;
    let mut bo = srv.online_agent(101).await;
    let mut bo_phone = srv.connect(101).await;

    // Bo alone: consumer 12's session is Bo's.
    let mut c12 = srv.connect(12).await;
    ask_shop(&mut c12, 3, "for Bo").await;
    assert_eq!(bo.push().await["result"]["msg"], "for Bo");

    let r = request(&mut bo, "service", "setStatus", json!({"status": "away"})).await;
    assert_eq!(r["code"], 1, "{r}");
    let e = bo_phone.event_named("status").await;
    assert_eq!(
        result(&e),
        &json!({"event": "status", "chat_id": "", "shop_id": 3, "consumer_uid": 0, "agent_uid": 101, "status": "away"})
    );
    let (_, v) = srv.admin(Method::GET, "/admin/shops/3/agents", None).await;
    assert_eq!(v["result"]["agents"][1]["status"], "away", "{v}");
    let me = request(&mut bo, "service", "me", json!({})).await;
    assert_eq!(result(&me)["status"], "away");

    // An away agent still gets its own session's messages...
    ask_shop(&mut c12, 3, "still Bo").await;
    assert_eq!(bo.push().await["result"]["msg"], "still Bo");

    // ...and is never given a new one: 200 new consumers all go to Amy.
    let mut amy = srv.online_agent(100).await;
    for uid in 1000..1200 {
        let mut c = srv.connect(uid).await;
        ask_shop(&mut c, 3, &format!("from {uid}")).await;
        assert_eq!(
            amy.push().await["result"]["msg"],
            format!("from {uid}"),
            "consumer {uid} goes to the online agent"
        );
    }
    bo.expect_silence(QUIET).await;
    let phone: Vec<Value> = bo_phone.drain_pushes(Duration::from_millis(50)).await;
    assert_eq!(
        phone
            .iter()
            .map(|p| p["result"]["msg"].clone())
            .collect::<Vec<_>>(),
        [json!("for Bo"), json!("still Bo")],
        "Bo's other device got its own session's messages and nothing else"
    );

    // Offline, Bo's session is routed again on its next message.
    let assigned = amy.drain_events(QUIET).await;
    assert_eq!(assigned.len(), 200, "one assignment per new consumer");
    let r = request(
        &mut bo,
        "service",
        "setStatus",
        json!({"status": "offline"}),
    )
    .await;
    assert_eq!(r["code"], 1);
    ask_shop(&mut c12, 3, "anyone?").await;
    let assigned = amy.event_named("assigned").await;
    assert_eq!(result(&assigned)["consumer_uid"], 12);
    assert_eq!(result(&assigned)["reason"], "random");
    assert_eq!(amy.push().await["result"]["msg"], "anyone?");
    bo.expect_silence(QUIET).await;

    let r = request(&mut bo, "service", "setStatus", json!({"status": "busy"})).await;
    assert_eq!(r["error"], "bad_params");
    let mut user = srv.connect(7).await;
    let r = request(
        &mut user,
        "service",
        "setStatus",
        json!({"status": "online"}),
    )
    .await;
    assert_eq!(r["error"], "forbidden");
}

#[tokio::test]
async fn waiting_consumers_see_their_place_fall_until_they_are_served() {
    let srv = TestServer::start();
    shop(
        &srv,
        3,
        json!({"capacity": 1, "queue_when_full": true}),
        &[(100, "Amy"), (101, "Bo"), (102, "Cy")],
    )
    .await;
    srv.put_user(100, json!({"nickname": "amy", "avatar": "amy.png"}))
        .await;
    // Agents connected but offline: they may look at the queue.
    let mut amy = srv.connect(100).await;
    let mut consumers = Vec::new();
    for uid in [11, 12, 13] {
        let mut c = srv.connect(uid).await;
        ask_shop(&mut c, 3, &format!("help {uid}")).await;
        consumers.push((uid, c));
    }
    let q = request(&mut amy, "service", "queue", json!({})).await;
    let rows = result(&q)["rows"].as_array().unwrap().clone();
    assert_eq!(
        rows.iter()
            .map(|r| r["consumer_uid"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [11, 12, 13],
        "{q}"
    );
    assert_eq!(rows[1]["chat_id"], "3____12");
    assert_eq!(rows[1]["nickname"], "user12");
    assert_eq!(rows[1]["last_msg"], "help 12");
    assert!(rows[1]["waiting_since"].as_i64().unwrap() > 0);
    let lengths: Vec<i64> = amy
        .drain_events(QUIET)
        .await
        .iter()
        .filter(|e| e["result"]["event"] == "queue")
        .map(|e| e["result"]["length"].as_i64().unwrap())
        .collect();
    assert_eq!(lengths, [1, 2, 3], "agents hear the queue grow");

    // Agents come online one by one; capacity 1 is a hard limit.
    let mut agents = vec![amy];
    let mut served_by = Vec::new();
    for (i, agent) in [100, 101, 102].into_iter().enumerate() {
        if i > 0 {
            agents.push(srv.connect(agent).await);
        }
        let r = request(
            &mut agents[i],
            "service",
            "setOnline",
            json!({"online": true}),
        )
        .await;
        assert_eq!(r["code"], 1);
        let assigned = agents[i].event_named("assigned").await;
        assert_eq!(result(&assigned)["reason"], "queue");
        served_by.push(result(&assigned)["consumer_uid"].as_i64().unwrap());
        let backlog = agents[i].push().await;
        assert_eq!(backlog["result"]["msg"], format!("help {}", served_by[i]));
        tokio::time::sleep(QUIET).await;
    }
    assert_eq!(served_by, [11, 12, 13], "first come, first served");

    for (uid, c) in consumers.iter_mut() {
        let events = c.drain_events(QUIET).await;
        let positions: Vec<i64> = events
            .iter()
            .filter(|e| e["result"]["event"] == "waiting")
            .map(|e| e["result"]["position"].as_i64().unwrap())
            .collect();
        let first = *uid - 10;
        let expected: Vec<i64> = (1..=first).rev().collect();
        assert_eq!(positions, expected, "consumer {uid}: {events:?}");
        let last = events.last().expect("events");
        assert_eq!(
            last["result"]["event"], "served",
            "consumer {uid} ends served: {events:?}"
        );
        assert_eq!(last["result"]["chat_id"], format!("3____{uid}"));
        if *uid == 11 {
            assert_eq!(last["result"]["service_nickname"], "Amy");
        }
    }
    let q = request(&mut agents[0], "service", "queue", json!({})).await;
    assert_eq!(result(&q)["rows"], json!([]));
    let (_, v) = srv.admin(Method::GET, "/admin/shops/3/stats", None).await;
    assert_eq!(v["result"]["waiting_now"], 0, "{v}");
}

#[tokio::test]
async fn auto_replies_welcome_once_and_the_offline_message_when_nobody_answers() {
    let srv = TestServer::start();
    shop(
        &srv,
        3,
        json!({"welcome_msg": "Welcome to Tea House!", "offline_msg": "We are away, we will answer soon."}),
        &[(100, "Amy")],
    )
    .await;
    // Nobody online: the session waits and the consumer hears the offline message, once.
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "hello?").await;
    let auto = consumer.push().await;
    assert_eq!(
        result(&auto),
        &json!({"nickname": "Tea House", "avatar": "http://media.test/logos/3.png", "shop_id": 3,
                "chat_id": "3____12", "chat_type": 4, "msg_type": 1,
                "msg": "We are away, we will answer soon.", "createtime": auto["result"]["createtime"],
                "msg_id": auto["result"]["msg_id"], "auto": true, "seq": 2})
    );
    ask_shop(&mut consumer, 3, "hello??").await;
    consumer.expect_silence(QUIET).await;
    assert_eq!(
        consumer.event_named("waiting").await["result"]["position"],
        1
    );

    // Amy takes it: no welcome for a session that had the offline message.
    let mut amy = srv.online_agent(100).await;
    amy.event_named("assigned").await;
    let backlog: Vec<String> = amy
        .drain_pushes(QUIET)
        .await
        .iter()
        .map(|p| p["result"]["msg"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        backlog,
        ["hello?", "We are away, we will answer soon.", "hello??"]
    );
    consumer.expect_silence(QUIET).await;

    // A new session with Amy online: the welcome, once, stored with auto:true.
    answer(&mut amy, 12, "all done").await;
    request(
        &mut amy,
        "service",
        "resolve",
        json!({"chat_id": "3____12"}),
    )
    .await;
    consumer.drain_pushes(QUIET).await;
    ask_shop(&mut consumer, 3, "one more thing").await;
    let welcome = consumer.push().await;
    assert_eq!(welcome["result"]["msg"], "Welcome to Tea House!");
    assert_eq!(welcome["result"]["auto"], true);
    assert!(welcome["result"].get("service_nickname").is_none());
    let to_amy: Vec<Value> = amy.drain_pushes(QUIET).await;
    assert_eq!(
        to_amy
            .iter()
            .map(|p| p["result"]["msg"].clone())
            .collect::<Vec<_>>(),
        [json!("one more thing"), json!("Welcome to Tea House!")]
    );
    ask_shop(&mut consumer, 3, "and another").await;
    consumer.expect_silence(QUIET).await;
    let history = srv
        .post_as(12, "/user/getChatRecord", json!({"chat_id": "3____12"}))
        .await;
    let autos: Vec<&Value> = history["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["auto"] == true)
        .collect();
    assert_eq!(autos.len(), 2, "{history}");
    assert_eq!(autos[0]["msg"], "Welcome to Tea House!");
}

/// `HH:MM` of `now + offset` minutes in `tz`.
fn local_time(tz: chrono_tz::Tz, offset_mins: i64) -> String {
    let t = chrono::Utc::now().with_timezone(&tz) + chrono::Duration::minutes(offset_mins);
    t.format("%H:%M").to_string()
}

fn every_day(from: &str, to: &str) -> Value {
    let days: serde_json::Map<String, Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| (d.to_string(), json!([[from, to]])))
        .collect();
    Value::Object(days)
}

#[tokio::test]
async fn outside_working_hours_the_offline_message_replaces_the_welcome() {
    let srv = TestServer::start();
    let tz = chrono_tz::America::New_York;
    // Open from two to three hours from now, New York time: closed now.
    let closed = json!({"tz": "America/New_York",
        "days": every_day(&local_time(tz, 120), &local_time(tz, 180))});
    shop(
        &srv,
        3,
        json!({"welcome_msg": "Welcome!", "offline_msg": "We are closed.", "working_hours": closed}),
        &[(100, "Amy")],
    )
    .await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    let info = request(&mut consumer, "shop", "info", json!({"shop_id": 3})).await;
    assert_eq!(
        result(&info),
        &json!({"shop_id": 3, "name": "Tea House", "logo": "http://media.test/logos/3.png",
                "open_now": false, "agents_online": 1})
    );
    ask_shop(&mut consumer, 3, "hi").await;
    assert_eq!(consumer.push().await["result"]["msg"], "We are closed.");
    assert_eq!(
        amy.push().await["result"]["msg"],
        "hi",
        "an online agent may still answer"
    );
    ask_shop(&mut consumer, 3, "hi again").await;
    consumer.expect_silence(QUIET).await;

    // Open from an hour ago to an hour from now: the welcome.
    let open = json!({"tz": "America/New_York",
        "days": every_day(&local_time(tz, -60), &local_time(tz, 60))});
    let (st, v) = srv
        .admin(
            Method::PUT,
            "/admin/shops/3",
            Some(json!({"working_hours": open})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"]["working_hours"]["tz"], "America/New_York");
    request(
        &mut amy,
        "service",
        "resolve",
        json!({"chat_id": "3____12"}),
    )
    .await;
    ask_shop(&mut consumer, 3, "next day").await;
    assert_eq!(consumer.push().await["result"]["msg"], "Welcome!");
    let info = request(&mut consumer, "shop", "info", json!({"shop_id": 3})).await;
    assert_eq!(result(&info)["open_now"], true);

    for bad in [
        json!({"working_hours": {"tz": "Mars/Base"}}),
        json!({"working_hours": {"tz": "UTC", "days": {"mon": [["9", "10"]]}}}),
        json!({"welcome_msg": ""}),
        json!({"auto_resolve_mins": -1}),
    ] {
        let (st, v) = srv
            .admin(Method::PUT, "/admin/shops/3", Some(bad.clone()))
            .await;
        assert_eq!(st, 400, "{bad}: {v}");
    }
    let (st, v) = srv
        .admin(
            Method::PUT,
            "/admin/shops/3",
            Some(json!({"working_hours": null, "welcome_msg": null})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["result"]["working_hours"], Value::Null);
    assert_eq!(v["result"]["welcome_msg"], Value::Null);
    assert_eq!(
        v["result"]["offline_msg"], "We are closed.",
        "absent fields are unchanged"
    );
    let r = request(&mut consumer, "shop", "info", json!({"shop_id": 99})).await;
    assert_eq!(r["error"], "unknown_shop");
}

#[tokio::test]
async fn supervisors_keep_quick_replies_and_block_consumers_agents_only_read() {
    let srv = TestServer::start();
    shop(&srv, 3, json!({}), &[(100, "Amy")]).await;
    let (st, _) = srv
        .admin(
            Method::PUT,
            "/admin/shops/3/agents/101",
            Some(json!({"name": "Sue", "role": "supervisor"})),
        )
        .await;
    assert_eq!(st, 200);
    srv.shop_with_agents(4, "Other", &[(200, "Zed")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut sue = srv.online_agent(101).await;
    let mut zed = srv.connect(200).await;
    let mut consumer = srv.connect(12).await;

    let me = request(&mut sue, "service", "me", json!({})).await;
    assert_eq!(
        result(&me),
        &json!({"agent": true, "shop_id": 3, "shop_name": "Tea House", "role": "supervisor", "status": "online"})
    );
    let me = request(&mut consumer, "service", "me", json!({})).await;
    assert_eq!(result(&me), &json!({"agent": false}));

    let save = json!({"short_code": "hi", "text": "Hello! How can I help?"});
    let r = request(&mut amy, "service", "saveQuickReply", save.clone()).await;
    assert_eq!(r["error"], "forbidden", "agents do not edit quick replies");
    let r = request(&mut sue, "service", "saveQuickReply", save).await;
    assert_eq!(r["code"], 1, "{r}");
    let (st, _) = srv
        .admin(
            Method::PUT,
            "/admin/shops/3/quick_replies/bye",
            Some(json!({"text": "Goodbye!"})),
        )
        .await;
    assert_eq!(st, 200);
    let list = request(&mut amy, "service", "quickReplies", json!({})).await;
    assert_eq!(
        result(&list)["rows"],
        json!([{"short_code": "bye", "text": "Goodbye!"}, {"short_code": "hi", "text": "Hello! How can I help?"}])
    );
    let other = request(&mut zed, "service", "quickReplies", json!({})).await;
    assert_eq!(
        result(&other)["rows"],
        json!([]),
        "another shop's agents never see them"
    );
    let r = request(&mut consumer, "service", "quickReplies", json!({})).await;
    assert_eq!(r["error"], "forbidden");
    let r = request(
        &mut sue,
        "service",
        "deleteQuickReply",
        json!({"short_code": "nope"}),
    )
    .await;
    assert_eq!(r["error"], "not_found");
    let r = request(
        &mut sue,
        "service",
        "deleteQuickReply",
        json!({"short_code": "bye"}),
    )
    .await;
    assert_eq!(r["code"], 1);
    let r = request(
        &mut sue,
        "service",
        "saveQuickReply",
        json!({"short_code": "a b", "text": "x"}),
    )
    .await;
    assert_eq!(r["error"], "bad_params");
    let (st, v) = srv
        .admin(Method::GET, "/admin/shops/3/quick_replies", None)
        .await;
    assert_eq!(
        (st, v["result"]["rows"].as_array().unwrap().len()),
        (200, 1)
    );
    let (st, _) = srv
        .admin(Method::DELETE, "/admin/shops/3/quick_replies/bye", None)
        .await;
    assert_eq!(st, 404);

    // Blocking.
    let r = request(&mut amy, "service", "block", json!({"consumer_uid": 12})).await;
    assert_eq!(r["error"], "forbidden");
    let r = request(&mut sue, "service", "block", json!({"consumer_uid": 12})).await;
    assert_eq!(r["code"], 1);
    tokio::time::sleep(QUIET).await;
    let r = common::ask_shop_raw(&mut consumer, 3, "let me in").await;
    assert_eq!(r["error"], "blocked", "{r}");
    amy.expect_silence(QUIET).await;
    let r = request(&mut sue, "service", "unblock", json!({"consumer_uid": 12})).await;
    assert_eq!(r["code"], 1);
    tokio::time::sleep(QUIET).await;
    ask_shop(&mut consumer, 3, "thanks").await;
    let history = srv
        .post_as(12, "/user/getChatRecord", json!({"chat_id": "3____12"}))
        .await;
    assert_eq!(
        history["result"]["total"], 1,
        "the blocked message was not stored"
    );
}

#[tokio::test]
async fn the_desk_lists_agents_sessions_and_a_customers_past() {
    let srv = TestServer::start();
    shop(&srv, 3, json!({}), &[(100, "Amy"), (101, "Bo")]).await;
    srv.put_user(12, json!({"nickname": "Carol", "avatar": "c.png"}))
        .await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "first").await;
    amy.push().await;
    request(
        &mut amy,
        "service",
        "resolve",
        json!({"chat_id": "3____12"}),
    )
    .await;
    ask_shop(&mut consumer, 3, "second").await;
    amy.push().await;

    let agents = request(&mut amy, "service", "agents", json!({})).await;
    assert_eq!(
        result(&agents)["rows"],
        json!([
            {"uid": 100, "name": "Amy", "avatar": "", "role": "agent", "status": "online", "connected": true, "open_sessions": 1},
            {"uid": 101, "name": "Bo", "avatar": "", "role": "agent", "status": "offline", "connected": false, "open_sessions": 0},
        ])
    );
    let open = request(&mut amy, "service", "sessions", json!({})).await;
    let rows = result(&open)["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "{open}");
    assert_eq!(rows[0]["chat_id"], "3____12");
    assert_eq!(rows[0]["agent_uid"], 100);
    assert_eq!(rows[0]["state"], "open");
    assert_eq!(rows[0]["unread_count"], 2);
    let resolved = request(
        &mut amy,
        "service",
        "sessions",
        json!({"state": "resolved", "limit": 5}),
    )
    .await;
    assert_eq!(result(&resolved)["rows"].as_array().unwrap().len(), 1);

    let customer = request(&mut amy, "service", "customer", json!({"consumer_uid": 12})).await;
    let c = result(&customer);
    assert_eq!(
        (c["uid"].clone(), c["nickname"].clone()),
        (json!(12), json!("Carol"))
    );
    assert_eq!(c["avatar"], "http://media.test/c.png");
    let states: Vec<&str> = c["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["open", "resolved"], "newest first: {customer}");

    for (action, content) in [
        ("agents", json!({})),
        ("sessions", json!({})),
        ("customer", json!({"consumer_uid": 12})),
        ("queue", json!({})),
    ] {
        let r = request(&mut consumer, "service", action, content).await;
        assert_eq!(r["error"], "forbidden", "{action}: {r}");
    }
    let r = request(&mut amy, "service", "customer", json!({"consumer_uid": 0})).await;
    assert_eq!(r["error"], "bad_params");
    let r = request(
        &mut amy,
        "service",
        "sessions",
        json!({"state": "sideways"}),
    )
    .await;
    assert_eq!(r["error"], "bad_params");
}

#[tokio::test]
async fn a_consumer_rates_a_resolved_session_once() {
    let srv = TestServer::start();
    shop(&srv, 3, json!({}), &[(100, "Amy")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    let mut stranger = srv.connect(13).await;
    let rate = json!({"chat_id": "3____12", "score": 5, "comment": "quick and kind"});

    let r = request(&mut consumer, "chat", "rate", rate.clone()).await;
    assert_eq!(r["error"], "nothing_to_rate", "nothing resolved yet: {r}");
    ask_shop(&mut consumer, 3, "hello").await;
    answer(&mut amy, 12, "hi!").await;
    let r = request(&mut consumer, "chat", "rate", rate.clone()).await;
    assert_eq!(r["error"], "nothing_to_rate", "still open: {r}");
    request(
        &mut amy,
        "service",
        "resolve",
        json!({"chat_id": "3____12"}),
    )
    .await;

    let r = request(&mut stranger, "chat", "rate", rate.clone()).await;
    assert_eq!(
        r["error"], "forbidden",
        "only the consumer of that conversation"
    );
    let r = request(&mut amy, "chat", "rate", rate.clone()).await;
    assert_eq!(r["error"], "forbidden", "not an agent either");
    let r = request(
        &mut consumer,
        "chat",
        "rate",
        json!({"chat_id": "3____12", "score": 6}),
    )
    .await;
    assert_eq!(r["error"], "bad_params");
    let r = request(&mut consumer, "chat", "rate", rate.clone()).await;
    assert_eq!(r["code"], 1, "{r}");
    assert_eq!(
        result(&r)["rating"],
        json!({"score": 5, "comment": "quick and kind"})
    );
    let r = request(&mut consumer, "chat", "rate", rate).await;
    assert_eq!(r["error"], "already_rated");

    let (st, v) = srv.admin(Method::GET, "/admin/shops/3/ratings", None).await;
    assert_eq!(st, 200);
    let rows = v["result"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0]["consumer_uid"].clone(),
            rows[0]["agent_uid"].clone(),
            rows[0]["score"].clone(),
            rows[0]["comment"].clone()
        ),
        (json!(12), json!(100), json!(5), json!("quick and kind"))
    );
    let (st, _) = srv
        .admin(Method::GET, "/admin/shops/3/ratings?limit=0", None)
        .await;
    assert_eq!(st, 400);
    let (st, _) = srv.admin(Method::GET, "/admin/shops/9/ratings", None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn a_send_retried_after_a_resolution_does_not_reopen_the_resolved_session() {
    let srv = TestServer::start();
    shop(&srv, 3, json!({}), &[(100, "Amy")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    let send = json!({"chat_type": 4, "msg_type": 1, "msg": "once", "to_uid": 3, "shop_id": 3,
                      "role_type": "user", "client_msg_id": "c-1"});
    let first = request(&mut consumer, "chat", "sendMsg", send.clone()).await;
    amy.push().await;
    request(
        &mut amy,
        "service",
        "resolve",
        json!({"chat_id": "3____12"}),
    )
    .await;
    let retry = request(&mut consumer, "chat", "sendMsg", send).await;
    assert_eq!(
        retry["result"]["msg_id"], first["result"]["msg_id"],
        "the same ack"
    );
    amy.expect_silence(QUIET).await;
    ask_shop(&mut consumer, 3, "a new question").await;
    assert_eq!(amy.push().await["result"]["msg"], "a new question");
    let rows = sessions(&srv, 3).await;
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["open", "resolved"], "{rows:?}");
    assert_eq!(rows[1]["messages"], 1);
}
