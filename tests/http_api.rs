//! The original HTTP API (PROTOCOL.md §8) as the old H5 client uses it.

mod common;

use common::TestServer;
use serde_json::{json, Value};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

fn err(msg: &str) -> Value {
    json!({"code": 0, "msg": msg, "result": null})
}

#[tokio::test]
async fn register_then_login_with_every_documented_error() {
    let srv = TestServer::start();
    let reg = |u: Value, p: Value| json!({"username": u, "password": p});
    let bad_name = err("请输入5~16位以字母开头的数字、字母或下划线的用户名");
    let bad_pw = err("请输入6~18位数字、字母或下划线的组合密码");
    for (body, want) in [
        (json!({}), bad_name.clone()),
        (reg(json!("abcd"), json!("secret1")), bad_name.clone()),
        (reg(json!("1alice"), json!("secret1")), bad_name.clone()),
        (reg(json!("alice"), json!("")), bad_pw.clone()),
        (reg(json!("alice"), json!("12345678")), bad_pw.clone()),
        (reg(json!("alice"), json!("short")), bad_pw.clone()),
    ] {
        assert_eq!(
            srv.post("/login/register", None, body.clone()).await,
            want,
            "{body}"
        );
    }
    let ok = srv
        .post(
            "/login/register",
            None,
            reg(json!("alice"), json!("secret1")),
        )
        .await;
    assert_eq!(
        (ok["code"].clone(), ok["msg"].clone()),
        (json!(1), json!("注册成功"))
    );
    let token = ok["result"]["token"].as_str().unwrap().to_string();
    assert_eq!(
        srv.post(
            "/login/register",
            None,
            reg(json!("alice"), json!("secret2"))
        )
        .await,
        err("当前用户名已存在")
    );

    for (body, want) in [
        (json!({}), err("用户名不得为空")),
        (reg(json!(""), json!("secret1")), err("用户名不得为空")),
        (reg(json!("al"), json!("secret1")), err("用户名错误")),
        (reg(json!("alice"), json!("")), err("密码不得为空")),
        (reg(json!("alice"), json!("1secret")), err("密码格式错误")),
        (reg(json!("bobby"), json!("secret1")), err("账户不存在")),
        (reg(json!("alice"), json!("secret9")), err("密码错误")),
    ] {
        assert_eq!(srv.post("/login", None, body.clone()).await, want, "{body}");
    }
    let ok = srv
        .post("/login", None, reg(json!("alice"), json!("secret1")))
        .await;
    assert_eq!(
        (ok["code"].clone(), ok["msg"].clone()),
        (json!(1), json!("登录成功"))
    );
    let login_token = ok["result"]["token"].as_str().unwrap();

    let auth = shopchat::auth::Authenticator::new(&srv.config.auth);
    let uid = auth
        .verify(login_token)
        .expect("login token is signed with the configured secret");
    assert_eq!(auth.verify(&token), Ok(uid));
    let me = srv.post("/user/index", Some(login_token), json!({})).await;
    assert_eq!(me["result"]["mine"]["id"], uid.0);
    // The login name stays private (PROTOCOL.md §15): a new account's nickname is a placeholder.
    assert_eq!(me["result"]["mine"]["nickname"], format!("user{uid}"));

    let pool = shopchat::db::connect(&srv.config.database.url, 1, Default::default()).unwrap();
    let (_, hash) = shopchat::db::accounts::find_login(&mut pool.get().unwrap(), "alice")
        .unwrap()
        .unwrap();
    assert!(
        hash.unwrap().starts_with("$argon2"),
        "passwords are stored as argon2 hashes"
    );
}

#[tokio::test]
async fn form_encoded_bodies_work_too() {
    let srv = TestServer::start();
    let resp = reqwest::Client::new()
        .post(srv.http("/login/register"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=carol&password=secret1")
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["msg"], "注册成功");
}

#[tokio::test]
async fn user_index_lists_contacts_first_with_the_online_count() {
    let srv = TestServer::start();
    srv.put_user(1, json!({"nickname": "Me", "avatar": "me.png"}))
        .await;
    for uid in 2..=4 {
        srv.put_user(uid, json!({"nickname": format!("U{uid}")}))
            .await;
    }
    let mut me = srv.connect(1).await;
    me.send_direct(4, "hi").await;
    let _four = srv.connect(4).await;
    let v = srv.post_as(1, "/user/index", json!({})).await;
    assert_eq!(v["code"], 1);
    assert_eq!(
        v["result"]["mine"],
        json!({"id": 1, "nickname": "Me", "avatar": "http://media.test/me.png"})
    );
    let group = &v["result"]["friend"][0];
    assert_eq!(
        (group["groupname"].clone(), group["id"].clone()),
        (json!("分组一"), json!(1))
    );
    let ids: Vec<i64> = group["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [4, 2, 3], "the 1:1 contact first, then other users");
    assert_eq!(
        group["list"][0],
        json!({"username": "U4", "avatar": "", "id": 4, "sign": ""})
    );
    assert_eq!(group["online"], 1);
}

#[tokio::test]
async fn chat_records_page_newest_first_for_participants_only() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    for i in 0..25 {
        a.send_direct(2, &format!("m{i}")).await;
    }
    let mut b = srv.connect(2).await;
    b.send_direct(1, "reply").await;

    let p1 = srv
        .post_as(
            1,
            "/user/getChatRecord",
            json!({"chat_id": "1_2", "page": 1}),
        )
        .await;
    assert_eq!(p1["code"], 1);
    assert_eq!(p1["result"]["total"], 26);
    let rows = p1["result"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(
        (
            rows[0]["msg"].clone(),
            rows[0]["mine"].clone(),
            rows[0]["from_uid"].clone()
        ),
        (json!("reply"), json!(false), json!(2))
    );
    assert_eq!(
        (rows[1]["msg"].clone(), rows[1]["mine"].clone()),
        (json!("m24"), json!(true))
    );
    let r = &rows[1];
    for field in [
        "msg_id",
        "avatar",
        "nickname",
        "chat_id",
        "from_uid",
        "to_uid",
        "chat_type",
        "msg_type",
        "msg",
        "createtime",
        "mine",
    ] {
        assert!(r.get(field).is_some(), "row lacks {field}: {r}");
    }
    assert_eq!(
        (
            r["nickname"].clone(),
            r["to_uid"].clone(),
            r["chat_type"].clone()
        ),
        (json!("user1"), json!(2), json!(1))
    );

    let p2 = srv
        .post_as(
            2,
            "/user/getChatRecord",
            json!({"to_uid": "1", "chat_type": "1", "page": "2"}),
        )
        .await;
    let msgs: Vec<&str> = p2["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["msg"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, ["m5", "m4", "m3", "m2", "m1", "m0"]);
    assert_eq!(p2["result"]["rows"][0]["mine"], false);
    let p1_default = srv
        .post_as(2, "/user/getChatRecord", json!({"chat_id": "1_2"}))
        .await;
    assert_eq!(p1_default["result"]["rows"][0]["msg"], "reply");

    let outsider = srv
        .post_as(3, "/user/getChatRecord", json!({"chat_id": "1_2"}))
        .await;
    assert_eq!(
        outsider,
        json!({"code": 0, "msg": "forbidden", "error": "forbidden", "result": null})
    );
    let r = srv.post_as(1, "/user/getChatRecord", json!({})).await;
    assert_eq!(r["error"], "bad_params");
    let r = srv
        .post_as(
            1,
            "/user/getChatRecord",
            json!({"chat_id": "1_2", "page": 0}),
        )
        .await;
    assert_eq!(r["error"], "bad_params");
}

#[tokio::test]
async fn every_user_path_wants_a_token() {
    let srv = TestServer::start();
    let want = json!({"code": 401, "msg": "请登录", "result": null});
    for path in [
        "/user/index",
        "/user/chatRecently",
        "/user/getChatRecord",
        "/user/upload",
    ] {
        assert_eq!(srv.post(path, None, json!({})).await, want, "{path}");
        assert_eq!(
            srv.post(path, Some("not-a-token"), json!({})).await,
            want,
            "{path}"
        );
    }
    let v: Value = reqwest::Client::new()
        .post(srv.http("/user/index"))
        .header("Authorization", format!("Bearer {}", srv.token(1)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["code"], 1, "Authorization: Bearer works too");
}

#[tokio::test]
async fn cors_headers_everywhere_and_options_on_any_path() {
    let srv = TestServer::start();
    let http = reqwest::Client::new();
    let check = |resp: &reqwest::Response| {
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(
            h["access-control-allow-methods"],
            "GET, POST, OPTIONS, DELETE, PUT"
        );
        assert_eq!(
            h["access-control-allow-headers"],
            "Content-Type, authorizations, Authorization, X-Requested-With"
        );
    };
    for path in [
        "/login",
        "/user/index",
        "/user/upload",
        "/nowhere",
        "/admin/users/1",
        "/",
    ] {
        let resp = http
            .request(reqwest::Method::OPTIONS, srv.http(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "OPTIONS {path}");
        check(&resp);
    }
    check(
        &http
            .post(srv.http("/login"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    );
    check(&http.post(srv.http("/user/index")).send().await.unwrap());
    check(&http.get(srv.http("/nowhere")).send().await.unwrap());
}

async fn upload(srv: &TestServer, bytes: Vec<u8>, field: &str) -> Value {
    srv.upload(1, field, bytes).await
}

#[tokio::test]
async fn uploads_accept_only_images_within_the_limit_and_are_served_back() {
    let srv = TestServer::start_with(|c| c.media.max_upload_bytes = 1024);
    let v = upload(&srv, PNG.to_vec(), "file").await;
    assert_eq!((v["code"].clone(), v["msg"].clone()), (json!(0), json!("")));
    let src = v["data"]["src"].as_str().unwrap();
    let name = src
        .strip_prefix("http://media.test/media/")
        .expect("src is under media.base_url");
    assert!(name.ends_with(".png") && name.len() == 36, "{name}");
    let stored = std::fs::read_dir(srv.dir.path().join("uploads"))
        .unwrap()
        .count();
    assert_eq!(stored, 1);

    let served = reqwest::get(srv.http(&format!("/media/{name}")))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(&served.bytes().await.unwrap()[..], PNG);

    // A real 1x1 GIF passes; its magic bytes alone no longer do (issue 14: the header
    // must decode to dimensions and the file must end as a GIF ends).
    let gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    assert_eq!(upload(&srv, gif.to_vec(), "file").await["code"], 0);
    let magic_only = [b"GIF89a".as_slice(), &[0u8; 20]].concat();
    assert_eq!(
        upload(&srv, magic_only, "file").await["error"],
        "not_an_image"
    );

    let text = upload(&srv, b"<?php system($_GET['x']); ?>".to_vec(), "file").await;
    assert_eq!(
        (text["code"].clone(), text["error"].clone()),
        (json!(415), json!("not_an_image"))
    );
    let big = [PNG, &[0u8; 2000]].concat();
    let too_big = upload(&srv, big, "file").await;
    assert_eq!(
        (too_big["code"].clone(), too_big["error"].clone()),
        (json!(413), json!("too_large"))
    );
    let missing = upload(&srv, PNG.to_vec(), "picture").await;
    assert_eq!(missing["error"], "bad_params");
    assert_eq!(
        std::fs::read_dir(srv.dir.path().join("uploads"))
            .unwrap()
            .count(),
        2,
        "refused files are not stored"
    );

    for bad in [
        "../shopchat.db",
        "x.png",
        "0123456789abcdef0123456789abcdef.exe",
    ] {
        let resp = reqwest::get(srv.http(&format!("/media/{bad}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{bad}");
    }
}
