//! The authorization review in one place: every action and every HTTP path refuses a
//! caller who may not use it (participant, member, agent of that shop, admin token).

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

fn refused_as(r: &Value, word: &str, what: &str) {
    assert_eq!(
        (r["code"].clone(), r["error"].clone()),
        (json!(0), json!(word)),
        "{what}: {r}"
    );
}

#[tokio::test]
async fn every_websocket_action_checks_its_caller() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy")]).await;
    srv.shop_with_agents(4, "Coffee", &[(200, "Zed")]).await;
    srv.admin(
        Method::POST,
        "/admin/notify",
        Some(json!({"uids": [1], "msg_type": 1, "msg": "for 1 only"})),
    )
    .await;
    let mut owner = srv.connect(1).await;
    let group = owner
        .request("group", "create", json!({"name": "private"}))
        .await["result"]["group_id"]
        .as_i64()
        .unwrap();
    owner.send_direct(2, "between 1 and 2").await;
    let mut amy = srv.online_agent(100).await;
    let mut consumer = srv.connect(12).await;
    consumer
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 4, "msg_type": 1, "msg": "hi", "to_uid": 3, "role_type": "user"}),
        )
        .await;
    amy.push().await;

    let mut stranger = srv.connect(9).await;
    let mut zed = srv.connect(200).await;
    let cases: Vec<(&str, &str, &str, Value, &str)> = vec![
        (
            "system notice from a client",
            "chat",
            "sendMsg",
            json!({"chat_type": 3, "msg_type": 1, "msg": "x", "to_uid": 1}),
            "forbidden",
        ),
        (
            "post to a group one is not in",
            "chat",
            "sendMsg",
            json!({"chat_type": 2, "msg_type": 1, "msg": "x", "to_uid": group}),
            "forbidden",
        ),
        (
            "speak as a shop without being its agent",
            "chat",
            "sendMsg",
            json!({"chat_type": 4, "msg_type": 1, "msg": "x", "to_uid": 12, "role_type": 1}),
            "forbidden",
        ),
        (
            "read the shop side without being an agent",
            "chat",
            "setChatRead",
            json!({"chat_id": "3____12", "role_type": 1}),
            "forbidden",
        ),
        (
            "hide the shop side without being an agent",
            "chat",
            "delChat",
            json!({"chat_id": "3____12", "role_type": 1}),
            "forbidden",
        ),
        (
            "mark a group one is not in",
            "chat",
            "setChatRead",
            json!({"chat_id": format!("group_{group}")}),
            "forbidden",
        ),
        (
            "mark another user's notices",
            "chat",
            "setChatRead",
            json!({"chat_id": "system_1"}),
            "forbidden",
        ),
        (
            "list a shop's conversations without being an agent",
            "user",
            "recentChat",
            json!({"is_service": true}),
            "forbidden",
        ),
        (
            "go online without being an agent",
            "service",
            "setOnline",
            json!({"online": true}),
            "forbidden",
        ),
        (
            "transfer without being an agent",
            "service",
            "transfer",
            json!({"chat_id": "3____12", "to_uid": 100}),
            "forbidden",
        ),
        (
            "list a group's members without being one",
            "group",
            "members",
            json!({"group_id": group}),
            "forbidden",
        ),
    ];
    for (what, class, action, content, word) in cases {
        let r = stranger.request(class, action, content).await;
        refused_as(&r, word, what);
    }
    // An agent of shop 4 is no agent of shop 3.
    let r = zed
        .request("chat", "sendMsg", json!({"chat_type": 4, "msg_type": 1, "msg": "x", "to_uid": 12, "shop_id": 3, "role_type": "service"}))
        .await;
    refused_as(&r, "forbidden", "speak for another shop");
    let r = zed
        .request(
            "service",
            "transfer",
            json!({"chat_id": "3____12", "to_uid": 200}),
        )
        .await;
    refused_as(&r, "not_found", "transfer another shop's conversation");
    let r = zed
        .request("user", "recentChat", json!({"is_service": true}))
        .await;
    assert!(
        r["result"]["rows"].as_array().unwrap().is_empty(),
        "another shop's list shows nothing of shop 3: {r}"
    );
    // Sync shows only what the caller may see.
    let page = stranger.sync(0, 100).await;
    assert!(
        page["result"]["rows"].as_array().unwrap().is_empty(),
        "a stranger syncs nothing of others: {page}"
    );
    let page = zed.sync(0, 100).await;
    assert!(
        page["result"]["rows"].as_array().unwrap().is_empty(),
        "another shop's agent syncs nothing of shop 3: {page}"
    );
}

#[tokio::test]
async fn every_history_read_is_for_participants_only() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Tea", &[(100, "Amy")]).await;
    srv.admin(
        Method::POST,
        "/admin/notify",
        Some(json!({"uids": [1], "msg_type": 1, "msg": "n"})),
    )
    .await;
    let mut one = srv.connect(1).await;
    let group = one.request("group", "create", json!({"name": "g"})).await["result"]["group_id"]
        .as_i64()
        .unwrap();
    one.send_direct(2, "d").await;
    let mut consumer = srv.connect(12).await;
    consumer
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 4, "msg_type": 1, "msg": "s", "to_uid": 3, "role_type": "user"}),
        )
        .await;
    for body in [
        json!({"chat_id": "1_2"}),
        json!({"chat_id": "3____12"}),
        json!({"chat_id": format!("group_{group}")}),
        json!({"chat_id": "system_1"}),
        json!({"to_uid": group, "chat_type": 2}),
    ] {
        let r = srv.post_as(9, "/user/getChatRecord", body.clone()).await;
        refused_as(&r, "forbidden", &body.to_string());
    }
    let r = srv
        .post_as(
            9,
            "/user/getChatRecord",
            json!({"to_uid": 3, "chat_type": 4}),
        )
        .await;
    assert_eq!(
        r["result"]["total"], 0,
        "a stranger asking for 'its' conversation with shop 3 gets its own (empty) one"
    );
}

#[tokio::test]
async fn every_admin_path_wants_the_admin_token() {
    let srv = TestServer::start();
    let paths: [(Method, &str); 16] = [
        (Method::PUT, "/admin/users/1"),
        (Method::PUT, "/admin/shops/1"),
        (Method::GET, "/admin/shops/1/agents"),
        (Method::PUT, "/admin/shops/1/agents/2"),
        (Method::DELETE, "/admin/shops/1/agents/2"),
        (Method::POST, "/admin/shops/1/agents/2/online"),
        (Method::POST, "/admin/groups"),
        (Method::PUT, "/admin/groups/1/members/2"),
        (Method::DELETE, "/admin/groups/1/members/2"),
        (Method::POST, "/admin/notify"),
        (Method::PUT, "/admin/users/abc"),
        (Method::POST, "/admin/notify"),
        (Method::GET, "/admin/moderation"),
        (Method::PUT, "/admin/moderation"),
        (Method::GET, "/admin/webhooks/deliveries"),
        (Method::POST, "/admin/webhooks/deliveries/evt_1/retry"),
    ];
    let http = reqwest::Client::new();
    for (method, path) in paths {
        for auth in [
            None,
            Some("wrong".to_string()),
            Some(srv.token(1)),
            Some(format!("{}x", srv.config.admin.token)),
        ] {
            let mut req = http.request(method.clone(), srv.http(path)).json(&json!({"name": "x", "online": true, "all": true, "msg_type": 1, "msg": "x", "owner_uid": 1}));
            if let Some(t) = &auth {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401, "{method} {path} with {auth:?}");
        }
    }
}
