//! Groups (chat_type 2) and system notices (chat_type 3): PROTOCOL.md §3, §4, §7, §9.

mod common;

use std::time::Duration;

use common::{Client, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(200);

/// An open group created by `c`'s user, with `members` added by the platform (a user
/// may add only contacts it has exchanged messages with, PROTOCOL.md §15).
async fn create(srv: &TestServer, c: &mut Client, name: &str, members: &[i64]) -> i64 {
    let r = c
        .request("group", "create", json!({"name": name, "open": true}))
        .await;
    assert_eq!(r["code"], 1, "{r}");
    let group = r["result"]["group_id"].as_i64().unwrap();
    for m in members {
        let (st, body) = srv
            .admin(
                Method::PUT,
                &format!("/admin/groups/{group}/members/{m}"),
                None,
            )
            .await;
        assert_eq!(st, 200, "{body}");
    }
    group
}

async fn post(c: &mut Client, group: i64, text: &str) -> Value {
    c.request(
        "chat",
        "sendMsg",
        json!({"chat_type": 2, "msg_type": 1, "msg": text, "to_uid": group}),
    )
    .await
}

fn msgs(page: &Value) -> Vec<String> {
    page["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["msg"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn create_join_leave_members_and_list() {
    let srv = TestServer::start();
    srv.put_user(2, json!({"nickname": "Two", "avatar": "2.png"}))
        .await;
    let mut owner = srv.connect(1).await;
    let group = create(&srv, &mut owner, "Fans", &[2, 3]).await;
    let members = owner
        .request("group", "members", json!({"group_id": group}))
        .await;
    assert_eq!(members["code"], 101);
    assert_eq!(
        members["result"]["rows"],
        json!([{"id": 1, "nickname": "user1", "avatar": ""}, {"id": 2, "nickname": "Two", "avatar": "http://media.test/2.png"}, {"id": 3, "nickname": "user3", "avatar": ""}])
    );
    let mut four = srv.connect(4).await;
    let r = four
        .request("group", "members", json!({"group_id": group}))
        .await;
    assert_eq!(r["error"], "forbidden", "members only");
    assert_eq!(
        four.request("group", "join", json!({"group_id": group}))
            .await["code"],
        1
    );
    let list = four.request("group", "list", json!({})).await;
    assert_eq!(
        list["result"]["rows"],
        json!([{"group_id": group, "name": "Fans", "member_count": 4}])
    );
    assert_eq!(
        four.request("group", "leave", json!({"group_id": group}))
            .await["code"],
        1
    );
    assert_eq!(
        four.request("group", "leave", json!({"group_id": group}))
            .await["error"],
        "not_found"
    );
    assert_eq!(
        four.request("group", "join", json!({"group_id": 999}))
            .await["error"],
        "not_found"
    );
    assert_eq!(
        four.request("group", "list", json!(null)).await["result"]["rows"],
        json!([])
    );

    let (st, v) = srv
        .admin(
            Method::POST,
            "/admin/groups",
            Some(json!({"name": "Staff", "owner_uid": 9, "member_uids": [10, 11]})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let staff = v["result"]["group_id"].as_i64().unwrap();
    let (st, _) = srv
        .admin(
            Method::PUT,
            &format!("/admin/groups/{staff}/members/12"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = srv
        .admin(
            Method::DELETE,
            &format!("/admin/groups/{staff}/members/10"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = srv
        .admin(
            Method::DELETE,
            &format!("/admin/groups/{staff}/members/10"),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = srv
        .admin(Method::PUT, "/admin/groups/999/members/12", None)
        .await;
    assert_eq!(st, 404);
    let (st, _) = srv
        .admin(
            Method::POST,
            "/admin/groups",
            Some(json!({"name": "", "owner_uid": 9})),
        )
        .await;
    assert_eq!(st, 400);
    let mut nine = srv.connect(9).await;
    let ids: Vec<i64> = nine
        .request("group", "members", json!({"group_id": staff}))
        .await["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [9, 11, 12]);
}

#[tokio::test]
async fn a_message_reaches_every_connection_of_a_200_member_group_but_the_sending_one() {
    let srv = TestServer::start();
    let members: Vec<i64> = (100..300).collect();
    let (_, v) = srv
        .admin(
            Method::POST,
            "/admin/groups",
            Some(json!({"name": "Big", "owner_uid": 100, "member_uids": members})),
        )
        .await;
    let group = v["result"]["group_id"].as_i64().unwrap();
    let mut conns: Vec<(i64, Client)> = Vec::new();
    for uid in &members {
        conns.push((*uid, srv.connect(*uid).await));
        if uid % 4 == 0 {
            conns.push((*uid, srv.connect(*uid).await));
        }
    }
    let mut outsider = srv.connect(5).await;
    let (_, sender) = &mut conns[0];
    assert_eq!(
        sender.request("user", "recentChat", json!({})).await["code"],
        102
    );
    let ack = post(sender, group, "hello all").await;
    assert_eq!(ack["code"], 1, "{ack}");
    assert_eq!(ack["result"]["chat_id"], format!("group_{group}"));
    let want = json!({"nickname": "user100", "avatar": "", "id": 100, "group_id": group, "chat_id": format!("group_{group}"),
                      "chat_type": 2, "msg_type": 1, "msg": "hello all", "createtime": ack["result"]["createtime"], "msg_id": ack["result"]["msg_id"], "seq": 1});
    let (_, sender) = &mut conns[0];
    sender.expect_silence(QUIET).await;
    let mut pushed = 0;
    for (_, c) in conns.iter_mut().skip(1) {
        assert_eq!(c.push().await["result"], want);
        pushed += 1;
    }
    assert_eq!(
        pushed,
        200 + 50 - 1,
        "every member connection but the sending one, including the sender's other device"
    );
    outsider.expect_silence(QUIET).await;
}

#[tokio::test]
async fn non_members_are_refused_and_leavers_get_nothing_more() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    let mut c = srv.connect(3).await;
    let group = create(&srv, &mut a, "Trio", &[2]).await;
    let r = post(&mut c, group, "let me in").await;
    assert_eq!(r["error"], "forbidden");
    let r = post(&mut c, 999, "no group").await;
    assert_eq!(r["error"], "forbidden");
    b.expect_silence(QUIET).await;

    post(&mut a, group, "before").await;
    assert_eq!(b.push().await["result"]["msg"], "before");
    assert_eq!(
        b.request("group", "leave", json!({"group_id": group}))
            .await["code"],
        1
    );
    post(&mut a, group, "after").await;
    b.expect_silence(QUIET).await;
    assert_eq!(
        post(&mut b, group, "still here?").await["error"],
        "forbidden"
    );
    let page = b.sync(0, 10).await;
    assert!(
        msgs(&page).is_empty(),
        "sync covers groups only while a member"
    );
    let page = a.sync(0, 10).await;
    assert_eq!(msgs(&page), ["before", "after"]);
    let r = srv
        .post_as(
            2,
            "/user/getChatRecord",
            json!({"chat_id": format!("group_{group}")}),
        )
        .await;
    assert_eq!(r["error"], "forbidden");
}

#[tokio::test]
async fn unread_counts_come_from_a_cursor_not_rows_per_member() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    let group = create(&srv, &mut a, "Readers", &[2, 3]).await;
    for i in 0..5 {
        post(&mut a, group, &format!("m{i}")).await;
    }
    post(&mut b, group, "b's own").await;

    let list = b.request("user", "recentChat", json!({})).await;
    let row = &list["result"]["rows"][0];
    assert_eq!(row["chat_id"], format!("group_{group}"));
    assert_eq!(
        (
            row["chat_type"].clone(),
            row["friend_uid"].clone(),
            row["friend_name"].clone()
        ),
        (json!(2), json!(group), json!("Readers"))
    );
    assert_eq!(
        (row["last_msg"].clone(), row["last_uid"].clone()),
        (json!("b's own"), json!(2))
    );
    assert_eq!(row["unread_count"], 5, "one's own messages are not unread");
    assert_eq!(list["result"]["unread_count"], 5);
    let r = b
        .request(
            "chat",
            "setChatRead",
            json!({"chat_id": format!("group_{group}")}),
        )
        .await;
    assert_eq!(r["code"], 1);
    assert_eq!(
        b.request("user", "recentChat", json!({})).await["result"]["unread_count"],
        0
    );
    let mut three = srv.connect(3).await;
    assert_eq!(
        three.request("user", "recentChat", json!({})).await["result"]["unread_count"],
        6,
        "other readers keep theirs"
    );

    let r = b
        .request(
            "chat",
            "delChat",
            json!({"chat_id": format!("group_{group}")}),
        )
        .await;
    assert_eq!(r["code"], 1);
    assert!(
        b.request("user", "recentChat", json!({})).await["result"]["rows"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    post(&mut a, group, "back").await;
    let back = b.request("user", "recentChat", json!({})).await;
    assert_eq!(
        (
            back["result"]["rows"][0]["last_msg"].clone(),
            back["result"]["unread_count"].clone()
        ),
        (json!("back"), json!(1))
    );
    let mut outsider = srv.connect(9).await;
    let r = outsider
        .request(
            "chat",
            "setChatRead",
            json!({"chat_id": format!("group_{group}")}),
        )
        .await;
    assert_eq!(r["error"], "forbidden");

    // Storing group messages wrote no per-member rows: the only conversation rows are none.
    let pool = shopchat::db::connect(&srv.config.database.url, 1, Default::default()).unwrap();
    let views = shopchat::db::conversations::recent(
        &mut pool.get().unwrap(),
        shopchat::db::Side::User(shopchat::ids::UserId(3)),
    )
    .unwrap();
    assert!(
        views.is_empty(),
        "group messages must not write conversation rows: {views:?}"
    );
}

#[tokio::test]
async fn a_late_joiner_sees_the_group_from_when_it_joined() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let group = create(&srv, &mut a, "G", &[]).await;
    post(&mut a, group, "old").await;
    let mut late = srv.connect(2).await;
    late.request("group", "join", json!({"group_id": group}))
        .await;
    post(&mut a, group, "new").await;
    assert_eq!(late.push().await["result"]["msg"], "new");
    assert_eq!(msgs(&late.sync(0, 10).await), ["new"]);
    let r = srv
        .post_as(
            2,
            "/user/getChatRecord",
            json!({"to_uid": group, "chat_type": 2}),
        )
        .await;
    assert_eq!(msgs(&r), ["new"]);
    assert_eq!(r["result"]["total"], 1);
    assert_eq!(
        late.request("user", "recentChat", json!({})).await["result"]["unread_count"],
        1
    );
}

#[tokio::test]
async fn notices_reach_connected_users_and_wait_for_the_others() {
    let srv = TestServer::start_with(|c| {
        c.system.nickname = "Mall".into();
        c.system.avatar = "sys.png".into();
    });
    let mut online = srv.connect(1).await;
    let (st, v) = srv
        .admin(
            Method::POST,
            "/admin/notify",
            Some(json!({"uids": [1, 2], "msg_type": 1, "msg": "Your order shipped"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let ids = v["result"]["msg_ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 2);
    let p = online.push().await;
    assert_eq!(p["code"], 200);
    let r = &p["result"];
    assert_eq!(
        (r["nickname"].clone(), r["avatar"].clone(), r["id"].clone()),
        (json!("Mall"), json!("http://media.test/sys.png"), json!(0))
    );
    assert_eq!(
        (
            r["chat_id"].clone(),
            r["chat_type"].clone(),
            r["msg"].clone()
        ),
        (json!("system_1"), json!(3), json!("Your order shipped"))
    );

    let mut later = srv.connect(2).await;
    later.expect_silence(QUIET).await;
    let page = later.sync(0, 10).await;
    assert_eq!(msgs(&page), ["Your order shipped"]);
    assert_eq!(page["result"]["rows"][0]["chat_id"], "system_2");
    let list = later.request("user", "recentChat", json!({})).await;
    let row = &list["result"]["rows"][0];
    assert_eq!(
        (
            row["chat_id"].clone(),
            row["chat_type"].clone(),
            row["friend_name"].clone(),
            row["unread_count"].clone()
        ),
        (json!("system_2"), json!(3), json!("Mall"), json!(1))
    );
    let history = srv
        .post_as(2, "/user/getChatRecord", json!({"chat_id": "system_2"}))
        .await;
    assert_eq!(msgs(&history), ["Your order shipped"]);
    assert_eq!(
        srv.post_as(1, "/user/getChatRecord", json!({"chat_id": "system_2"}))
            .await["error"],
        "forbidden"
    );
    assert_eq!(
        later
            .request("chat", "setChatRead", json!({"chat_id": "system_2"}))
            .await["code"],
        1
    );
    assert_eq!(
        later.request("user", "recentChat", json!({})).await["result"]["unread_count"],
        0
    );

    for bad in [
        json!({"msg_type": 1, "msg": "x"}),
        json!({"uids": [1], "all": true, "msg_type": 1, "msg": "x"}),
        json!({"uids": [0], "msg_type": 1, "msg": "x"}),
        json!({"all": true, "msg_type": 5, "msg": "x"}),
        json!({"all": true, "msg_type": 1, "msg": ""}),
    ] {
        let (st, _) = srv
            .admin(Method::POST, "/admin/notify", Some(bad.clone()))
            .await;
        assert_eq!(st, 400, "{bad}");
    }
}

#[tokio::test]
async fn a_broadcast_is_stored_once_and_reaches_every_connected_user() {
    let srv = TestServer::start();
    let mut clients = Vec::new();
    for uid in 1..=20 {
        clients.push((uid, srv.connect(uid).await));
    }
    let (st, v) = srv
        .admin(
            Method::POST,
            "/admin/notify",
            Some(json!({"all": true, "msg_type": 1, "msg": "Sale starts now"})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        v["result"]["msg_ids"].as_array().unwrap().len(),
        1,
        "stored once"
    );
    let id = &v["result"]["msg_ids"][0];
    for (uid, c) in clients.iter_mut() {
        let p = c.push().await;
        assert_eq!(
            (p["result"]["msg"].clone(), p["result"]["msg_id"].clone()),
            (json!("Sale starts now"), id.clone())
        );
        assert_eq!(p["result"]["chat_id"], format!("system_{uid}"));
    }
    let mut newcomer = srv.connect(500).await;
    assert_eq!(msgs(&newcomer.sync(0, 10).await), ["Sale starts now"]);
    let mut client = srv.connect(7).await;
    let r = client
        .request(
            "chat",
            "sendMsg",
            json!({"chat_type": 3, "msg_type": 1, "msg": "fake", "to_uid": 1}),
        )
        .await;
    assert_eq!(r["code"], 0);
}
