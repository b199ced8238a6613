//! GET /healthz and GET /metrics (PROTOCOL.md §9).

mod common;

use common::TestServer;
use diesel::connection::SimpleConnection;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn sql(srv: &TestServer, statements: &str) {
    let pool = shopchat::db::connect(&srv.config.database.url, 1, Default::default()).unwrap();
    pool.get().unwrap().batch_execute(statements).unwrap();
}

/// The value of a metric line with exactly this name and labels.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("{series} not in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn healthz_is_200_only_while_the_database_answers() {
    let srv = TestServer::start();
    let ok = reqwest::get(srv.http("/healthz")).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    sql(&srv, "ALTER TABLE users RENAME TO users_gone;");
    assert_eq!(
        reqwest::get(srv.http("/healthz")).await.unwrap().status(),
        503
    );
    sql(&srv, "ALTER TABLE users_gone RENAME TO users;");
    assert_eq!(
        reqwest::get(srv.http("/healthz")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn metrics_count_connections_messages_latency_and_rejections() {
    let srv = TestServer::start();
    let mut a = srv.connect(1).await;
    let mut b = srv.connect(2).await;
    for i in 0..3 {
        assert_eq!(a.send_direct(2, &format!("m{i}")).await["code"], 1);
    }
    b.drain_pushes(std::time::Duration::from_millis(200)).await;
    a.send_text("{not json").await;
    a.reply().await;
    a.send_raw(WsMessage::Binary(vec![0u8; 3].into())).await;
    a.reply().await;

    let resp = reqwest::get(srv.http("/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    assert_eq!(metric(&text, "shopchat_connections"), 2.0);
    assert_eq!(
        metric(&text, r#"shopchat_messages_stored_total{chat_type="1"}"#),
        3.0
    );
    assert_eq!(metric(&text, "shopchat_push_latency_seconds_count"), 3.0);
    assert_eq!(metric(&text, "shopchat_db_queue_depth"), 0.0);
    assert_eq!(
        metric(
            &text,
            r#"shopchat_rejected_frames_total{reason="bad_params"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"shopchat_rejected_frames_total{reason="binary_frame"}"#
        ),
        1.0
    );

    drop(b);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let text = reqwest::get(srv.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text, "shopchat_connections"), 1.0);
}
