//! PUT /admin/users/{uid} (PROTOCOL.md §9): admin token, validation, and pushes that
//! carry the synced profile.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn admin_token_is_required() {
    let srv = TestServer::start();
    let http = reqwest::Client::new();
    let url = srv.http("/admin/users/5");
    let none = http
        .put(&url)
        .json(&json!({"nickname": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let wrong = http
        .put(&url)
        .bearer_auth("wrong")
        .json(&json!({"nickname": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let user_token = http
        .put(&url)
        .bearer_auth(srv.token(5))
        .json(&json!({"nickname": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(user_token.status(), 401);
}

#[tokio::test]
async fn bad_input_is_400_with_code_0() {
    let srv = TestServer::start();
    let http = reqwest::Client::new();
    let token = &srv.config.admin.token;
    for (path, body) in [
        ("/admin/users/abc", json!({"nickname": "x"})),
        ("/admin/users/0", json!({"nickname": "x"})),
        ("/admin/users/5", json!({"nickname": ""})),
        ("/admin/users/5", json!({"nickname": 5})),
        ("/admin/users/5", json!({"nickname": "x".repeat(65)})),
    ] {
        let r = http
            .put(srv.http(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path} {body}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], 0);
        assert!(v["msg"].is_string());
    }
    let r = http
        .put(srv.http("/admin/users/5"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn synced_profiles_show_in_pushes_even_for_connected_users() {
    let srv = TestServer::start();
    let mut a = srv.connect(10).await;
    let mut b = srv.connect(11).await;
    a.send_direct(11, "before").await;
    assert_eq!(b.push().await["result"]["nickname"], "user10");

    let r = srv
        .put_user(10, json!({"nickname": "小明", "avatar": "uploads/10.png"}))
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"code": 1, "msg": null, "result": {"id": 10, "nickname": "小明", "avatar": "http://media.test/uploads/10.png"}})
    );

    a.send_direct(11, "after").await;
    let p = b.push().await;
    assert_eq!(p["result"]["nickname"], "小明");
    assert_eq!(p["result"]["avatar"], "http://media.test/uploads/10.png");

    srv.put_user(10, json!({"avatar": "https://cdn.example/x.png"}))
        .await;
    a.send_direct(11, "absolute").await;
    let p = b.push().await;
    assert_eq!(
        p["result"]["nickname"], "小明",
        "a partial update keeps the nickname"
    );
    assert_eq!(p["result"]["avatar"], "https://cdn.example/x.png");
}
