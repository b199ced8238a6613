//! No silent gaps (PROTOCOL.md §17): a seq per conversation on every stored row, pushes,
//! acks and lists that carry it, `chat.range` and `chat.heads`, and who may read what.

mod common;

use std::time::Duration;

use common::{answer, ask_shop, Client, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(300);

async fn range(c: &mut Client, chat_id: &str, after: i64, limit: i64) -> Value {
    c.request(
        "chat",
        "range",
        json!({"chat_id": chat_id, "after_seq": after, "limit": limit}),
    )
    .await
}

fn seqs(page: &Value) -> Vec<i64> {
    page["result"]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("rows in {page}"))
        .iter()
        .map(|r| r["seq"].as_i64().unwrap_or_else(|| panic!("seq in {r}")))
        .collect()
}

fn head<'a>(page: &'a Value, chat_id: &str) -> Option<&'a Value> {
    page["result"]["rows"]
        .as_array()?
        .iter()
        .find(|r| r["chat_id"] == chat_id)
}

#[tokio::test]
async fn every_row_of_a_conversation_takes_the_next_seq_and_range_reads_them_back() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    let mut acked = Vec::new();
    for i in 0..3 {
        let r = a.send_direct(2, &format!("m{i}")).await;
        assert_eq!(r["code"], 1, "{r}");
        acked.push(r["result"]["seq"].as_i64().expect("an ack carries its seq"));
    }
    assert_eq!(acked, [1, 2, 3]);
    for want in 1..=3 {
        assert_eq!(b.push().await["result"]["seq"], want);
    }
    let r = b.send_direct(1, "back").await;
    assert_eq!(r["result"]["seq"], 4);
    // Another conversation has its own sequence.
    assert_eq!(a.send_direct(3, "elsewhere").await["result"]["seq"], 1);
    // A recall is a row of the conversation too: its push carries the event row's seq.
    let first = a.sync(0, 1).await["result"]["rows"][0]["msg_id"].clone();
    let r = a.request("chat", "recall", json!({"msg_id": first})).await;
    assert_eq!(r["code"], 1, "{r}");
    let recall = b.event().await;
    assert_eq!(recall["code"], 205, "{recall}");
    assert_eq!(recall["result"]["seq"], 5);

    let page = range(&mut b, "1_2", 0, 200).await;
    assert_eq!(page["code"], 201, "{page}");
    assert_eq!(seqs(&page), [1, 2, 3, 4, 5]);
    assert_eq!(page["result"]["has_more"], false);
    assert_eq!(page["result"]["upto_seq"], 5);
    assert_eq!(page["result"]["rows"][0]["recalled"], true);
    assert_eq!(page["result"]["rows"][4]["event"], "recall");
    assert_eq!(
        page["result"]["rows"][4]["chat_type"], 1,
        "a recall keeps its chat_type"
    );
    let page = range(&mut a, "1_2", 2, 2).await;
    assert_eq!(seqs(&page), [3, 4]);
    assert_eq!(page["result"]["has_more"], true);
    assert_eq!(page["result"]["upto_seq"], 4);

    // Lists carry the conversation's last seq.
    let list = a.request("user", "recentChat", json!({})).await;
    let row = list["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["chat_id"] == "1_2")
        .cloned()
        .unwrap();
    assert_eq!(row["last_seq"], 5, "{row}");
    let heads = a.request("chat", "heads", json!({"since": 0})).await;
    assert_eq!(heads["code"], 1, "{heads}");
    assert_eq!(head(&heads, "1_2").unwrap()["last_seq"], 5);
    assert_eq!(head(&heads, "1_3").unwrap()["last_seq"], 1);
    // The history's rows and sync's carry it as well.
    let rows = b.sync(0, 10).await;
    assert_eq!(rows["result"]["rows"][1]["seq"], 2);
}

#[tokio::test]
async fn only_participants_may_range_and_bad_bounds_are_refused() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut c = srv.connect(3).await;
    assert_eq!(a.send_direct(2, "private").await["code"], 1);
    for chat in ["1_2", "group_1", "system_1", "5____6", "nonsense"] {
        let r = range(&mut c, chat, 0, 10).await;
        assert_eq!(r["error"], "forbidden", "{chat}: {r}");
    }
    for content in [
        json!({"chat_id": "1_2", "limit": 201}),
        json!({"chat_id": "1_2", "limit": 0}),
        json!({"chat_id": "1_2", "after_seq": -1}),
        json!({"chat_id": ""}),
        json!({"after_seq": 0}),
    ] {
        let r = a.request("chat", "range", content.clone()).await;
        assert_eq!(r["error"], "bad_params", "{content}: {r}");
    }
    for content in [
        json!({"since": -1}),
        json!({"after": "no cursor"}),
        json!({"limit": 500}),
    ] {
        let r = a.request("chat", "heads", content.clone()).await;
        assert_eq!(r["error"], "bad_params", "{content}: {r}");
    }
    // Nothing that is not the caller's is in its heads.
    let heads = c.request("chat", "heads", json!({})).await;
    assert!(head(&heads, "1_2").is_none(), "{heads}");
}

#[tokio::test]
async fn heads_page_through_every_conversation_of_the_caller() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    for peer in 2..=8 {
        assert_eq!(a.send_direct(peer, "hi").await["code"], 1);
    }
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = a
            .request(
                "chat",
                "heads",
                json!({"since": 0, "limit": 3, "after": after}),
            )
            .await;
        assert_eq!(page["code"], 1, "{page}");
        for row in page["result"]["rows"].as_array().unwrap() {
            seen.push(row["chat_id"].as_str().unwrap().to_string());
            assert_eq!(row["last_seq"], 1);
        }
        if page["result"]["has_more"] == false {
            break;
        }
        after = page["result"]["next"].clone();
    }
    let want: Vec<String> = (2..=8).map(|p| format!("1_{p}")).collect();
    assert_eq!(seen, want);
    // Since a time after all of them: none moved.
    let later = a
        .request("chat", "heads", json!({"since": 4_000_000_000i64}))
        .await;
    assert_eq!(later["result"]["rows"], json!([]));
}

#[tokio::test]
async fn customer_service_is_one_sequence_for_the_consumer_and_the_shop() {
    let srv = TestServer::start();
    srv.shop_with_agents(3, "Shop", &[(50, "Ann")]).await;
    let mut agent = srv.online_agent(50).await;
    let mut consumer = srv.connect(12).await;
    let r = ask_shop(&mut consumer, 3, "hello").await;
    assert_eq!(r["result"]["seq"], 1, "{r}");
    let r = answer(&mut agent, 12, "hi there").await;
    assert_eq!(r["result"]["seq"], 2, "{r}");
    let r = agent
        .request("service", "resolve", json!({"chat_id": "3____12"}))
        .await;
    assert_eq!(r["code"], 1, "{r}");
    let resolved = consumer.event_named("resolved").await;
    assert_eq!(resolved["result"]["seq"], 3, "{resolved}");
    let request = consumer.event_named("rating_request").await;
    assert_eq!(request["result"]["seq"], 4, "{request}");
    assert!(request["result"]["msg_id"].as_i64().unwrap() > 0);

    let mine = range(&mut consumer, "3____12", 0, 50).await;
    assert_eq!(seqs(&mine), [1, 2, 3, 4]);
    // The rating request is the consumer's alone: the shop's view skips it, and says so.
    let shops = range(&mut agent, "3____12", 0, 50).await;
    assert_eq!(seqs(&shops), [1, 2, 3]);
    assert_eq!(shops["result"]["upto_seq"], 4);
    assert_eq!(shops["result"]["shop_id"], 3);
    let heads = agent.request("chat", "heads", json!({})).await;
    let h = head(&heads, "3____12").expect("the shop's conversation");
    assert_eq!(
        (h["last_seq"].as_i64(), h["chat_type"].as_i64()),
        (Some(4), Some(4))
    );
}

#[tokio::test]
async fn a_group_member_ranges_from_where_it_joined_and_notices_have_their_sequences() {
    let srv = TestServer::start();
    let mut owner = srv.connect(1).await;
    let r = owner
        .request("group", "create", json!({"name": "g", "open": true}))
        .await;
    let group = r["result"]["group_id"].as_i64().unwrap();
    let chat = format!("group_{group}");
    let say = |text: &str| json!({"chat_type": 2, "msg_type": 1, "msg": text, "to_uid": group, "chat_id": null});
    for text in ["one", "two"] {
        let r = owner.request("chat", "sendMsg", say(text)).await;
        assert_eq!(r["code"], 1, "{r}");
    }
    let mut late = srv.connect(2).await;
    assert_eq!(
        late.request("group", "join", json!({"group_id": group}))
            .await["code"],
        1
    );
    let r = owner.request("chat", "sendMsg", say("three")).await;
    assert_eq!(r["result"]["seq"], 3);
    assert_eq!(late.push().await["result"]["seq"], 3);
    let page = range(&mut late, &chat, 0, 50).await;
    assert_eq!(seqs(&page), [3], "{page}");
    assert_eq!(page["result"]["upto_seq"], 3);

    // A notice to one user is in its own sequence; notices to everyone in `system_0`.
    let (st, body) = srv
        .admin(
            Method::POST,
            "/admin/notify",
            Some(json!({"uids": [2], "msg_type": 1, "msg": "yours"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = srv
        .admin(
            Method::POST,
            "/admin/notify",
            Some(json!({"all": true, "msg_type": 1, "msg": "everyone"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let own = late.push().await;
    assert_eq!(
        (
            own["result"]["seq"].as_i64(),
            own["result"]["broadcast"].as_bool()
        ),
        (Some(1), None)
    );
    let all = late.push().await;
    assert_eq!(all["result"]["chat_id"], "system_2");
    assert_eq!(all["result"]["broadcast"], true);
    let everyone_seq = all["result"]["seq"].as_i64().unwrap();
    let page = range(&mut late, "system_0", everyone_seq - 1, 10).await;
    assert_eq!(seqs(&page), [everyone_seq]);
    assert_eq!(seqs(&range(&mut late, "system_2", 0, 10).await), [1]);
    let heads = late.request("chat", "heads", json!({})).await;
    assert_eq!(head(&heads, "system_0").unwrap()["last_seq"], everyone_seq);
    assert_eq!(head(&heads, &chat).unwrap()["last_seq"], 3);
    late.expect_silence(QUIET).await;
}

/// Two nodes on one database write to the same conversation at once: every row still
/// gets its own seq, 1 to n with no hole and no repeat, and each ack says which.
#[tokio::test]
async fn two_nodes_writing_one_conversation_at_once_leave_no_hole_and_no_repeat() {
    let a_node = TestServer::start();
    let url = a_node.config.database.url.clone();
    let b_node = TestServer::start_with(|c| c.database.url = url);
    let mut a = a_node.connect(1).await;
    let mut b = b_node.connect(2).await;
    let frames = |from: i64, to: i64| {
        (0..100).map(move |i| {
            json!({"class": "chat", "action": "sendMsg", "content": {
                "chat_type": 1, "msg_type": 1, "msg": format!("{from}:{i}"), "to_uid": to}})
        })
    };
    a.send_together(frames(1, 2)).await;
    b.send_together(frames(2, 1)).await;
    let mut acked = Vec::new();
    for c in [&mut a, &mut b] {
        for _ in 0..100 {
            let r = c.reply().await;
            assert_eq!(r["code"], 1, "{r}");
            acked.push(r["result"]["seq"].as_i64().unwrap());
        }
    }
    acked.sort_unstable();
    assert_eq!(acked, (1..=200).collect::<Vec<_>>());
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = range(&mut a, "1_2", after, 200).await;
        stored.extend(seqs(&page));
        after = page["result"]["upto_seq"].as_i64().unwrap();
        if page["result"]["has_more"] == false {
            break;
        }
    }
    assert_eq!(stored, (1..=200).collect::<Vec<_>>());
}

/// Another node's batch holds the conversation and has stored its next row, not yet
/// committed, when this node's batch comes to the same conversation: this one waits for
/// it and continues from there (seq 3, not a second 2 and a failed batch).
#[tokio::test]
async fn a_batch_continues_the_sequence_another_node_is_about_to_commit() {
    use shopchat::db::{conn, NewMessage};
    use shopchat::ids::{ChatId, UserId};
    use shopchat::protocol::{ChatType, MsgType};
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    assert_eq!(a.send_direct(2, "first").await["result"]["seq"], 1);
    let pool = conn::open(&srv.config.database.url, 1, Default::default()).unwrap();
    let (stored_tx, stored) = std::sync::mpsc::channel();
    let (commit_tx, commit) = std::sync::mpsc::channel::<()>();
    let other_node = std::thread::spawn(move || {
        use diesel::Connection;
        let mut c = conn::checkout(&pool).unwrap();
        let m = NewMessage::new(
            ChatType::Direct,
            ChatId::direct(UserId(2), UserId(1)).0,
            MsgType::Text,
            "from the other node".into(),
            UserId(2),
            UserId(1),
            None,
        );
        c.transaction(|c| {
            let mut touches = shopchat::db::Touches::default();
            let row = shopchat::db::store::insert_row(c, &m, &mut touches)?;
            touches.apply(c)?;
            stored_tx.send(row.seq).unwrap();
            commit.recv().unwrap();
            diesel::QueryResult::Ok(())
        })
        .unwrap()
    });
    let theirs = tokio::task::spawn_blocking(move || stored.recv().unwrap())
        .await
        .unwrap();
    assert_eq!(theirs, 2);
    a.send_json(json!({"class": "chat", "action": "sendMsg", "content": {
        "chat_type": 1, "msg_type": 1, "msg": "meanwhile", "to_uid": 2}}))
        .await;
    // Long enough for the batch to reach the conversation and wait on the other one.
    tokio::time::sleep(Duration::from_millis(700)).await;
    commit_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || other_node.join().unwrap())
        .await
        .unwrap();
    let r = a.reply().await;
    assert_eq!(r["code"], 1, "{r}");
    assert_eq!(r["result"]["seq"], 3, "{r}");
    assert_eq!(seqs(&range(&mut a, "1_2", 0, 10).await), [1, 2, 3]);
}
