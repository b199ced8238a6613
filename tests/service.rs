//! Customer service (PROTOCOL.md §5, §7, §9): sticky-or-random routing, the waiting
//! queue, agents answering as the shop, the shared shop side, transfer, capacity, and
//! routing that survives a restart.

mod common;

use std::time::Duration;

use common::{answer, ask_shop, Client, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(200);
const ARRIVE: Duration = Duration::from_secs(5);

/// Which of `agents` got a push: waits for the first one (polling all in turn), then
/// gives the others a quiet window to prove they got nothing.
async fn who_got_it(agents: &mut [(i64, Client)]) -> Vec<i64> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + ARRIVE;
    while got.is_empty() && tokio::time::Instant::now() < deadline {
        for (uid, c) in agents.iter_mut() {
            if c.maybe_push(Duration::from_millis(20)).await.is_some() {
                got.push(*uid);
            }
        }
    }
    for (uid, c) in agents.iter_mut() {
        if !got.contains(uid) && c.maybe_push(QUIET).await.is_some() {
            got.push(*uid);
        }
    }
    got
}

#[tokio::test]
async fn admin_api_manages_shops_and_agents() {
    let srv = TestServer::start();
    let (st, v) = srv
        .admin(
            Method::PUT,
            "/admin/shops/3",
            Some(json!({"name": "Tea House", "logo": "logos/3.png", "capacity": 4})),
        )
        .await;
    assert_eq!(
        (st, v["result"].clone()),
        (
            200,
            json!({"id": 3, "name": "Tea House", "logo": "http://media.test/logos/3.png", "capacity": 4,
                "queue_when_full": false, "welcome_msg": null, "offline_msg": null,
                "auto_resolve_mins": 30, "working_hours": null})
        )
    );
    let (st, _) = srv
        .admin(
            Method::PUT,
            "/admin/shops/3/agents/100",
            Some(json!({"name": "Amy"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = srv
        .admin(Method::PUT, "/admin/shops/3/agents/101", None)
        .await;
    assert_eq!(st, 200, "the body is optional");
    let (st, _) = srv
        .admin(
            Method::POST,
            "/admin/shops/3/agents/100/online",
            Some(json!({"online": true})),
        )
        .await;
    assert_eq!(st, 200);
    let _amy = srv.connect(100).await;

    let (st, v) = srv.admin(Method::GET, "/admin/shops/3/agents", None).await;
    assert_eq!(st, 200);
    assert_eq!(
        v["result"]["agents"],
        json!([
            {"uid": 100, "name": "Amy", "online": true, "connected": true, "open_conversations": 0,
                "status": "online", "role": "agent"},
            {"uid": 101, "name": "user101", "online": false, "connected": false, "open_conversations": 0,
                "status": "offline", "role": "agent"},
        ])
    );

    let (st, _) = srv
        .admin(Method::DELETE, "/admin/shops/3/agents/101", None)
        .await;
    assert_eq!(st, 200);
    let (_, v) = srv.admin(Method::GET, "/admin/shops/3/agents", None).await;
    assert_eq!(v["result"]["agents"].as_array().unwrap().len(), 1);

    for (method, path, body, want) in [
        (Method::PUT, "/admin/shops/9/agents/100", None, 404),
        (Method::DELETE, "/admin/shops/3/agents/101", None, 404),
        (
            Method::POST,
            "/admin/shops/3/agents/555/online",
            Some(json!({"online": true})),
            404,
        ),
        (Method::GET, "/admin/shops/9/agents", None, 404),
        (
            Method::PUT,
            "/admin/shops/0",
            Some(json!({"name": "x"})),
            400,
        ),
        (
            Method::PUT,
            "/admin/shops/3",
            Some(json!({"capacity": -1})),
            400,
        ),
        (
            Method::PUT,
            "/admin/shops/3",
            Some(json!({"name": ""})),
            400,
        ),
        (
            Method::POST,
            "/admin/shops/3/agents/100/online",
            Some(json!({"online": "maybe"})),
            400,
        ),
        (
            Method::POST,
            "/admin/shops/3/agents/100/online",
            Some(json!({})),
            400,
        ),
    ] {
        let (st, v) = srv.admin(method.clone(), path, body.clone()).await;
        assert_eq!(st, want, "{method} {path} {body:?}: {v}");
        assert_eq!(v["code"], 0);
    }
    let unauth = reqwest::Client::new()
        .get(srv.http("/admin/shops/3/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);
}

#[tokio::test]
async fn only_agents_go_online_and_the_flag_is_stored() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy")]).await;
    let mut user = srv.connect(7).await;
    let r = user
        .request("service", "setOnline", json!({"online": true}))
        .await;
    assert_eq!(r["error"], "forbidden");
    let mut amy = srv.online_agent(100).await;
    let (_, v) = srv.admin(Method::GET, "/admin/shops/3/agents", None).await;
    assert_eq!(v["result"]["agents"][0]["online"], true);
    assert_eq!(
        amy.request("service", "setOnline", json!({"online": false}))
            .await["code"],
        1
    );
    let (_, v) = srv.admin(Method::GET, "/admin/shops/3/agents", None).await;
    assert_eq!(v["result"]["agents"][0]["online"], false);
}

#[tokio::test]
async fn consumer_messages_stick_to_one_agent_with_the_documented_push() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea House", &[(100, "Amy"), (101, "Bo"), (102, "Cy")])
        .await;
    srv.put_user(12, json!({"nickname": "Carol", "avatar": "c.png"}))
        .await;
    let mut agents = vec![
        (100, srv.online_agent(100).await),
        (101, srv.online_agent(101).await),
        (102, srv.online_agent(102).await),
    ];
    let mut consumer = srv.connect(12).await;
    let mut consumer_phone = srv.connect(12).await;

    let ack = ask_shop(&mut consumer, 3, "hello shop").await;
    assert_eq!(ack["result"]["chat_id"], "3____12");
    let mut first = None;
    for (uid, c) in agents.iter_mut() {
        let wait = if first.is_none() { ARRIVE } else { QUIET };
        if let Some(p) = c.maybe_push(wait).await {
            assert!(first.is_none(), "only one agent gets it");
            first = Some(*uid);
            assert_eq!(
                p["result"],
                json!({"nickname": "Carol", "avatar": "http://media.test/c.png", "id": 12, "shop_id": 3,
                       "chat_id": "3____12", "chat_type": 4, "msg_type": 1, "msg": "hello shop",
                       "createtime": ack["result"]["createtime"], "msg_id": ack["result"]["msg_id"], "seq": 1})
            );
        }
    }
    let first = first.expect("an agent got the first message");
    assert_eq!(
        consumer_phone.push().await["result"]["msg"],
        "hello shop",
        "the consumer's other device gets a copy"
    );
    for i in 0..10 {
        ask_shop(&mut consumer, 3, &format!("more {i}")).await;
        assert_eq!(who_got_it(&mut agents).await, [first], "message {i} sticks");
    }
}

#[tokio::test]
async fn a_sticky_agent_that_disconnects_is_replaced_and_the_new_one_sticks() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy"), (101, "Bo")])
        .await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "one").await;
    // Bo comes later, so Amy, the only routable agent, got the first message.
    assert!(amy.maybe_push(ARRIVE).await.is_some());
    let mut bo = srv.online_agent(101).await;
    ask_shop(&mut consumer, 3, "two").await;
    assert!(amy.maybe_push(ARRIVE).await.is_some(), "sticky");
    bo.expect_silence(QUIET).await;

    drop(amy);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..5 {
        ask_shop(&mut consumer, 3, &format!("after {i}")).await;
        assert_eq!(
            bo.maybe_push(ARRIVE).await.expect("Bo takes over")["result"]["msg"],
            format!("after {i}")
        );
    }
    let amy_again = srv.online_agent(100).await;
    let mut agents = vec![(100, amy_again), (101, bo)];
    ask_shop(&mut consumer, 3, "still Bo").await;
    assert_eq!(
        who_got_it(&mut agents).await,
        [101],
        "the new agent sticks even when the old one returns"
    );
}

#[tokio::test]
async fn an_agent_flagged_online_but_not_connected_is_never_chosen() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy"), (101, "Bo")])
        .await;
    let (st, _) = srv
        .admin(
            Method::POST,
            "/admin/shops/3/agents/100/online",
            Some(json!({"online": true})),
        )
        .await;
    assert_eq!(st, 200);
    let mut bo = srv.online_agent(101).await;
    for consumer in 200..230 {
        let mut c = srv.connect(consumer).await;
        ask_shop(&mut c, 3, "hi").await;
    }
    assert_eq!(bo.drain_pushes(QUIET * 2).await.len(), 30);
    let (_, v) = srv.admin(Method::GET, "/admin/shops/3/agents", None).await;
    assert_eq!(v["result"]["agents"][0]["open_conversations"], 0);
    assert_eq!(v["result"]["agents"][1]["open_conversations"], 30);
}

#[tokio::test]
async fn with_nobody_routable_conversations_wait_and_go_to_the_first_agent_online() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy")]).await;
    let mut early = srv.connect(12).await;
    let mut late = srv.connect(13).await;
    let a1 = ask_shop(&mut early, 3, "anyone?").await;
    ask_shop(&mut late, 3, "hello?").await;
    ask_shop(&mut early, 3, "still there?").await;

    let mut amy = srv.connect(100).await;
    amy.expect_silence(QUIET).await;
    let r = amy
        .request("service", "setOnline", json!({"online": true}))
        .await;
    assert_eq!(r["code"], 1);
    let backlog: Vec<(Value, Value)> = amy
        .drain_pushes(Duration::from_secs(1))
        .await
        .into_iter()
        .map(|p| (p["result"]["id"].clone(), p["result"]["msg"].clone()))
        .collect();
    assert_eq!(
        backlog,
        [
            (json!(12), json!("anyone?")),
            (json!(12), json!("still there?")),
            (json!(13), json!("hello?"))
        ],
        "oldest waiting conversation first, each conversation in order"
    );
    ask_shop(&mut late, 3, "thanks").await;
    assert_eq!(
        amy.push().await["result"]["msg"],
        "thanks",
        "and the conversation is now Amy's"
    );
    let r = answer(&mut amy, 12, "sorry for the wait").await;
    assert_eq!(r["code"], 1);
    let p = early.push().await;
    assert_eq!(p["result"]["msg"], "sorry for the wait");
    assert!(p["result"]["msg_id"].as_i64() > a1["result"]["msg_id"].as_i64());
}

#[tokio::test]
async fn three_hundred_new_consumers_spread_uniformly_over_three_agents() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "A"), (101, "B"), (102, "C")])
        .await;
    let mut agents = [
        srv.online_agent(100).await,
        srv.online_agent(101).await,
        srv.online_agent(102).await,
    ];
    let mut consumers = Vec::new();
    for uid in 1000..1300 {
        let mut c = srv.connect(uid).await;
        ask_shop(&mut c, 3, "hi").await;
        consumers.push(c);
    }
    let mut counts = Vec::new();
    for a in agents.iter_mut() {
        counts.push(a.drain_pushes(QUIET * 2).await.len());
    }
    assert_eq!(counts.iter().sum::<usize>(), 300, "{counts:?}");
    let chi2: f64 = counts
        .iter()
        .map(|&o| (o as f64 - 100.0).powi(2) / 100.0)
        .sum();
    // Two degrees of freedom: p = 0.001 at 13.82.
    assert!(chi2 < 13.82, "chi-square {chi2} for {counts:?}");
}

#[tokio::test]
async fn agents_answer_as_the_shop_and_become_the_assigned_agent() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea House", &[(100, "Amy"), (101, "")])
        .await;
    srv.put_user(101, json!({"nickname": "Bo", "avatar": "bo.png"}))
        .await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "hi").await;
    amy.push().await;

    let mut bo = srv.online_agent(101).await;
    let mut bo_pc = srv.connect(101).await;
    let ack = answer(&mut bo, 12, "Bo here").await;
    assert_eq!(ack["code"], 1, "{ack}");
    assert_eq!(ack["result"]["chat_id"], "3____12");
    let p = consumer.push().await;
    assert_eq!(
        p["result"],
        json!({"nickname": "Tea House", "avatar": "http://media.test/logos/3.png",
               "service_nickname": "Bo", "service_avatar": "http://media.test/bo.png", "shop_id": 3,
               "chat_id": "3____12", "chat_type": 4, "msg_type": 1, "msg": "Bo here",
               "createtime": ack["result"]["createtime"], "msg_id": ack["result"]["msg_id"], "seq": 2})
    );
    assert_eq!(
        bo_pc.push().await["result"]["msg"],
        "Bo here",
        "the agent's other device gets a copy"
    );
    bo.expect_silence(QUIET).await;

    ask_shop(&mut consumer, 3, "thanks Bo").await;
    assert_eq!(
        bo.push().await["result"]["msg"],
        "thanks Bo",
        "the answering agent is now assigned"
    );
    amy.expect_silence(QUIET).await;
}

#[tokio::test]
async fn nobody_but_the_shops_agents_may_send_as_the_shop() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy")]).await;
    srv.shop_with_agents(4, "Coffee", &[(200, "Zed")]).await;
    let mut consumer = srv.connect(12).await;
    let mut plain = srv.connect(7).await;
    let mut other_agent = srv.connect(200).await;
    let r = answer(&mut plain, 12, "I am the shop").await;
    assert_eq!(r["error"], "forbidden");
    let r = other_agent
        .request("chat", "sendMsg", json!({"chat_type": 4, "msg_type": 1, "msg": "x", "to_uid": 12, "shop_id": 3, "role_type": 1}))
        .await;
    assert_eq!(
        r["error"], "forbidden",
        "an agent of shop 4 cannot speak for shop 3"
    );
    consumer.expect_silence(QUIET).await;

    let r = plain
        .request("chat", "sendMsg", json!({"chat_type": 4, "msg_type": 1, "msg": "x", "to_uid": 99, "shop_id": 99, "role_type": "user"}))
        .await;
    assert_eq!(r["error"], "unknown_shop");
    let r = plain
        .request("chat", "sendMsg", json!({"chat_type": 4, "msg_type": 1, "msg": "x", "to_uid": 3, "shop_id": 4, "role_type": "user"}))
        .await;
    assert_eq!(r["error"], "bad_params");
    let r = plain
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 4, "msg_type": 1, "msg": "x", "to_uid": 3, "role_type": "boss"}),
        )
        .await;
    assert_eq!(r["error"], "bad_params");
}

#[tokio::test]
async fn transfer_moves_the_conversation_and_tells_both_agents() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy"), (101, "Bo"), (102, "Cy")])
        .await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "hi").await;
    amy.push().await;
    let mut bo = srv.online_agent(101).await;
    let cy_offline = 102;

    let r = amy
        .request(
            "service",
            "transfer",
            json!({"chat_id": "3____12", "to_uid": cy_offline}),
        )
        .await;
    assert_eq!(r["error"], "agent_unavailable");
    let r = amy
        .request(
            "service",
            "transfer",
            json!({"chat_id": "3____99", "to_uid": 101}),
        )
        .await;
    assert_eq!(r["error"], "not_found");
    let mut stranger = srv.connect(7).await;
    let r = stranger
        .request(
            "service",
            "transfer",
            json!({"chat_id": "3____12", "to_uid": 101}),
        )
        .await;
    assert_eq!(r["error"], "forbidden");

    let r = amy
        .request(
            "service",
            "transfer",
            json!({"chat_id": "3____12", "to_uid": 101}),
        )
        .await;
    assert_eq!(r, json!({"code": 1, "msg": null, "result": null}));
    let event = json!({"code": 202, "msg": null, "result": {"event": "transfer", "chat_id": "3____12", "shop_id": 3, "consumer_uid": 12, "from_uid": 100, "to_uid": 101}});
    assert_eq!(bo.event_named("transfer").await, event);
    assert_eq!(amy.event_named("transfer").await, event);

    for i in 0..3 {
        ask_shop(&mut consumer, 3, &format!("m{i}")).await;
        assert_eq!(bo.push().await["result"]["msg"], format!("m{i}"));
    }
    amy.expect_silence(QUIET).await;
}

#[tokio::test]
async fn capacity_prefers_agents_under_it() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy"), (101, "Bo")])
        .await;
    srv.admin(Method::PUT, "/admin/shops/3", Some(json!({"capacity": 1})))
        .await;
    let mut agents = vec![
        (100, srv.online_agent(100).await),
        (101, srv.online_agent(101).await),
    ];
    for round in 0..5 {
        let base = 1000 + round * 10;
        let mut c1 = srv.connect(base).await;
        ask_shop(&mut c1, 3, "first").await;
        let first = who_got_it(&mut agents).await;
        let mut c2 = srv.connect(base + 1).await;
        ask_shop(&mut c2, 3, "second").await;
        let second = who_got_it(&mut agents).await;
        assert_eq!(first.len(), 1);
        assert_eq!(second.len(), 1);
        if round == 0 {
            assert_ne!(
                first, second,
                "the second consumer goes to the agent under capacity"
            );
        }
    }
    let (_, v) = srv.admin(Method::GET, "/admin/shops/3/agents", None).await;
    let loads: Vec<i64> = v["result"]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["open_conversations"].as_i64().unwrap())
        .collect();
    assert_eq!(
        loads,
        [5, 5],
        "when everyone is full, the least loaded is chosen"
    );
}

#[tokio::test]
async fn the_shop_side_is_one_shared_row_read_by_every_agent() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy"), (101, "Bo")])
        .await;
    srv.put_user(12, json!({"nickname": "Carol"})).await;
    let mut amy = srv.online_agent(100).await;
    let mut bo = srv.connect(101).await;
    let mut consumer = srv.connect(12).await;
    ask_shop(&mut consumer, 3, "a").await;
    ask_shop(&mut consumer, 3, "b").await;

    for agent in [&mut amy, &mut bo] {
        let list = agent
            .request("user", "recentChat", json!({"is_service": true}))
            .await;
        assert_eq!(list["code"], 102);
        let row = &list["result"]["rows"][0];
        assert_eq!(
            (
                row["uid"].clone(),
                row["shop_id"].clone(),
                row["chat_id"].clone()
            ),
            (json!(0), json!(3), json!("3____12"))
        );
        assert_eq!(
            (
                row["friend_uid"].clone(),
                row["friend_name"].clone(),
                row["unread_count"].clone()
            ),
            (json!(12), json!("Carol"), json!(2))
        );
    }
    let mine = consumer.request("user", "recentChat", json!({})).await;
    let row = &mine["result"]["rows"][0];
    assert_eq!(
        (
            row["friend_uid"].clone(),
            row["friend_name"].clone(),
            row["friend_avatar"].clone()
        ),
        (
            json!(3),
            json!("Tea"),
            json!("http://media.test/logos/3.png")
        )
    );

    let r = bo
        .request(
            "chat",
            "setChatRead",
            json!({"chat_id": "3____12", "role_type": 1}),
        )
        .await;
    assert_eq!(r["code"], 1);
    let list = amy
        .request("user", "recentChat", json!({"is_service": true}))
        .await;
    assert_eq!(
        list["result"]["unread_count"], 0,
        "Bo reading clears it for Amy too"
    );
    let http = srv
        .post_as(100, "/user/chatRecently", json!({"is_service": 1}))
        .await;
    assert_eq!(http["result"], list["result"]);

    answer(&mut amy, 12, "hello Carol").await;
    let mine = consumer.request("user", "recentChat", json!({})).await;
    assert_eq!(mine["result"]["rows"][0]["unread_count"], 1);
    let r = consumer
        .request(
            "chat",
            "setChatRead",
            json!({"chat_id": "3____12", "role_type": "user"}),
        )
        .await;
    assert_eq!(r["code"], 1);
    assert_eq!(
        consumer.request("user", "recentChat", json!({})).await["result"]["unread_count"],
        0
    );
}

#[tokio::test]
async fn history_and_sync_cover_customer_service_for_both_sides() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy")]).await;
    // Shop 12 and consumer 3 share the chat_id "3____12" with shop 3 and consumer 12.
    srv.shop_with_agents(12, "Other", &[(300, "Zed")]).await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    let mut twin = srv.connect(3).await;
    ask_shop(&mut consumer, 3, "question").await;
    amy.push().await;
    answer(&mut amy, 12, "answer").await;
    ask_shop(&mut twin, 12, "twin's own").await;

    let page = consumer.sync(0, 10).await;
    let msgs: Vec<&str> = page["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["msg"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, ["question", "answer"]);
    let page = amy.sync(0, 10).await;
    let rows = page["result"]["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        2,
        "the agent syncs its shop's conversations only"
    );
    assert_eq!(rows[1]["service_nickname"], "Amy");

    let by_chat = srv
        .post_as(12, "/user/getChatRecord", json!({"chat_id": "3____12"}))
        .await;
    let msgs: Vec<&str> = by_chat["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["msg"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, ["answer", "question"]);
    assert_eq!(
        by_chat["result"]["rows"][0]["nickname"], "Tea",
        "the consumer sees the shop answering"
    );
    let twin_view = srv
        .post_as(3, "/user/getChatRecord", json!({"chat_id": "3____12"}))
        .await;
    assert_eq!(
        twin_view["result"]["total"], 1,
        "the same string is another conversation for consumer 3"
    );
    let agent_view = srv
        .post_as(
            100,
            "/user/getChatRecord",
            json!({"to_uid": 12, "chat_type": 4}),
        )
        .await;
    assert_eq!(agent_view["result"]["total"], 2);
    assert_eq!(agent_view["result"]["rows"][0]["mine"], true);
    let outsider = srv
        .post_as(55, "/user/getChatRecord", json!({"chat_id": "3____12"}))
        .await;
    assert_eq!(outsider["error"], "forbidden");
}

#[tokio::test]
async fn routing_continues_after_a_restart() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy"), (101, "Bo")])
        .await;
    {
        let mut agents = vec![
            (100, srv.online_agent(100).await),
            (101, srv.online_agent(101).await),
        ];
        let mut consumer = srv.connect(12).await;
        ask_shop(&mut consumer, 3, "before").await;
        let assigned = who_got_it(&mut agents).await;
        assert_eq!(assigned.len(), 1);
        // Make Bo the assigned agent whoever the dice chose, so the check below is fixed.
        let (_, bo) = agents.iter_mut().find(|(uid, _)| *uid == 101).unwrap();
        answer(bo, 12, "Bo answers").await;
        let mut waiting = srv.connect(13).await;
        let mut amy_off = srv.connect(100).await;
        amy_off
            .request("service", "setOnline", json!({"online": false}))
            .await;
        let (_, bo) = agents.iter_mut().find(|(uid, _)| *uid == 101).unwrap();
        bo.request("service", "setOnline", json!({"online": false}))
            .await;
        ask_shop(&mut waiting, 3, "waiting across the restart").await;
    }
    let srv = srv.restart();
    let mut agents = vec![
        (100, srv.online_agent(100).await),
        (101, srv.online_agent(101).await),
    ];
    let mut consumer = srv.connect(12).await;
    // Whoever came online first took the waiting conversation; drain those pushes first.
    let mut backlog = Vec::new();
    for (_, c) in agents.iter_mut() {
        backlog.extend(c.drain_pushes(QUIET).await);
    }
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0]["result"]["msg"], "waiting across the restart");
    for _ in 0..3 {
        ask_shop(&mut consumer, 3, "after").await;
        assert_eq!(
            who_got_it(&mut agents).await,
            [101],
            "the assignment survived the restart"
        );
    }
}
