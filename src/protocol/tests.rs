//! Golden JSON from PROTOCOL.md and the original README.

use super::*;
use serde_json::json;

fn parsed(text: &str) -> Request {
    match parse_frame(text) {
        Ok(Frame::Request(r)) => r,
        other => panic!("expected a request from {text}, got {other:?}"),
    }
}

fn same_json(text: &str, expected: Value) {
    let got: Value = serde_json::from_str(text).expect("reply is JSON");
    assert_eq!(got, expected, "wire text was {text}");
}

#[test]
fn original_direct_send_example_parses() {
    let r = parsed(
        r#"{"class":"chat","action":"sendMsg","content":{"to_uid":1,"chat_type":1,"msg_type":1,"msg":"消息内容","chat_id":null}}"#,
    );
    let Request::SendMsg(m) = r else {
        panic!("not sendMsg")
    };
    assert_eq!((m.chat_type, m.msg_type, m.to_uid), (1, 1, 1));
    assert_eq!(m.msg, "消息内容");
    assert_eq!(m.chat_id, Value::Null);
    assert_eq!(m.validate_common(4000), Ok(None));
}

#[test]
fn original_service_example_parses_with_string_role() {
    let r = parsed(
        r#"{"class":"chat","action":"sendMsg","content":{"to_uid":1,"chat_type":4,"msg_type":1,"msg":"消息内容","chat_id":null,"shop_id":1,"role_type":"user"}}"#,
    );
    let Request::SendMsg(m) = r else {
        panic!("not sendMsg")
    };
    assert_eq!(m.role(), Ok(Role::Consumer));
    assert_eq!(m.shop_id, json!(1));
}

#[test]
fn class_first_letter_is_case_free_and_action_case_insensitive() {
    let body = r#""content":{"to_uid":"7","chat_type":"1","msg_type":1,"msg":"x"}"#;
    for class in ["chat", "Chat"] {
        let text = format!(r#"{{"class":"{class}","action":"sendMsg",{body}}}"#);
        assert!(matches!(parsed(&text), Request::SendMsg(_)));
    }
    let text = format!(r#"{{"class":"CHAT","action":"sendMsg",{body}}}"#);
    assert_eq!(parse_frame(&text), Err(ChatError::UnknownAction));
}

#[test]
fn numeric_strings_are_integers_and_other_types_are_refused() {
    let Request::SendMsg(m) = parsed(
        r#"{"class":"chat","action":"sendMsg","content":{"to_uid":"12","chat_type":"1","msg_type":"2","msg":"u"}}"#,
    ) else {
        panic!()
    };
    assert_eq!((m.to_uid, m.chat_type, m.msg_type), (12, 1, 2));
    for bad in [
        r#""to_uid":1.5"#,
        r#""to_uid":"12a""#,
        r#""to_uid":true"#,
        r#""to_uid":[1]"#,
        r#""to_uid":99999999999999999999"#,
    ] {
        let text = format!(
            r#"{{"class":"chat","action":"sendMsg","content":{{{bad},"chat_type":1,"msg_type":1,"msg":"x"}}}}"#
        );
        assert!(
            matches!(parse_frame(&text), Err(ChatError::BadParams(_))),
            "{bad}"
        );
    }
}

#[test]
fn not_json_is_a_heartbeat_and_non_requests_are_errors() {
    assert_eq!(parse_frame("ping"), Ok(Frame::Heartbeat));
    assert_eq!(parse_frame(""), Ok(Frame::Heartbeat));
    assert_eq!(parse_frame("hello there"), Ok(Frame::Heartbeat));
    assert!(matches!(
        parse_frame(r#"{"class":"chat","#),
        Err(ChatError::BadParams(_))
    ));
    let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
    assert!(matches!(parse_frame(&deep), Err(ChatError::BadParams(_))));
    assert!(matches!(parse_frame("[1,2]"), Err(ChatError::BadParams(_))));
    assert!(matches!(
        parse_frame(r#"{"class":"chat"}"#),
        Err(ChatError::BadParams(_))
    ));
    assert_eq!(
        parse_frame(r#"{"class":"nope","action":"x"}"#),
        Err(ChatError::UnknownAction)
    );
    assert!(matches!(
        parse_frame(r#"{"class":"chat","action":"sendMsg","content":"hello"}"#),
        Err(ChatError::BadParams(_))
    ));
}

#[test]
fn common_validation() {
    let msg = |content: Value| -> SendMsg { serde_json::from_value(content).unwrap() };
    let base = json!({"chat_type":1,"msg_type":1,"msg":"hi","to_uid":3});
    assert_eq!(msg(base.clone()).validate_common(10), Ok(None));
    let mut m = msg(base.clone());
    m.msg = "x".repeat(11);
    assert_eq!(m.validate_common(10), Err(ChatError::MsgTooLong));
    m.msg = "好".repeat(10);
    assert_eq!(
        m.validate_common(10),
        Ok(None),
        "the limit counts characters, not bytes"
    );
    m.msg = String::new();
    assert!(m.validate_common(10).is_err());
    let mut m = msg(base.clone());
    m.to_uid = 0;
    assert!(m.validate_common(10).is_err());
    let mut m = msg(base.clone());
    m.msg_type = 3;
    assert!(m.validate_common(10).is_err());
    let mut m = msg(base);
    m.client_msg_id = json!("abc");
    assert_eq!(m.validate_common(10), Ok(Some("abc".into())));
    m.client_msg_id = json!("x".repeat(65));
    assert!(m.validate_common(10).is_err());
    m.client_msg_id = json!(5);
    assert!(m.validate_common(10).is_err());
}

#[test]
fn sync_bounds() {
    let Request::Sync(s) =
        parsed(r#"{"class":"chat","action":"sync","content":{"since_msg_id":"5","limit":1000}}"#)
    else {
        panic!()
    };
    assert_eq!(s.bounds(), Ok((5, SYNC_MAX_LIMIT)));
    let Request::Sync(s) = parsed(r#"{"class":"chat","action":"sync"}"#) else {
        panic!()
    };
    assert_eq!(s.bounds(), Ok((0, SYNC_DEFAULT_LIMIT)));
}

#[test]
fn replies_match_the_documented_shapes() {
    same_json(
        &error_reply(&ChatError::bad("x")),
        json!({"code":0,"msg":"参数错误","error":"bad_params"}),
    );
    same_json(PONG, json!({"code":-1,"msg":"PONG"}));
    same_json(NOT_LOGGED_IN, json!({"code":-200,"msg":"请登录"}));
    same_json(&ok(&()), json!({"code":1,"msg":null,"result":null}));
    let ack = SendAck {
        msg_id: 123,
        chat_id: "7_12".into(),
        createtime: 1566212436,
        client_msg_id: Some("...".into()),
        msg: None,
        seq: 0,
    };
    same_json(
        &ok(&ack),
        json!({"code":1,"msg":null,"result":{"msg_id":123,"chat_id":"7_12","createtime":1566212436,"client_msg_id":"..."}}),
    );
    let ack = SendAck { seq: 4, ..ack };
    same_json(
        &ok(&ack),
        json!({"code":1,"msg":null,"result":{"msg_id":123,"chat_id":"7_12","createtime":1566212436,"client_msg_id":"...","seq":4}}),
    );
}

#[test]
fn direct_push_matches_the_original_example_plus_new_fields() {
    let push = ChatPush {
        nickname: "消息发送人昵称".into(),
        avatar: "消息发送人头像地址".into(),
        id: Some(UserId(1)),
        service_nickname: None,
        service_avatar: None,
        shop_id: None,
        group_id: None,
        chat_id: "1_2".into(),
        chat_type: ChatType::Direct,
        msg_type: MsgType::Text,
        msg: "这是一条测试消息".into(),
        createtime: 1566212436,
        msg_id: 9,
        client_msg_id: None,
        auto: false,
        card: None,
        recalled: false,
        seq: 0,
        broadcast: false,
    };
    same_json(
        &push_text(&push),
        json!({"code":200,"msg":null,"result":{
            "nickname":"消息发送人昵称","avatar":"消息发送人头像地址","id":1,
            "chat_id":"1_2","chat_type":1,"msg_type":1,"msg":"这是一条测试消息",
            "createtime":1566212436,"msg_id":9}}),
    );
}

#[test]
fn relative_avatars_get_the_media_base() {
    assert_eq!(
        absolute_url("http://cdn.x/", "/a/b.png"),
        "http://cdn.x/a/b.png"
    );
    assert_eq!(absolute_url("http://cdn.x", "a.png"), "http://cdn.x/a.png");
    assert_eq!(
        absolute_url("http://cdn.x", "https://o/a.png"),
        "https://o/a.png"
    );
    assert_eq!(absolute_url("http://cdn.x", ""), "");
}

#[test]
fn read_and_delete_take_a_chat_id_and_an_optional_role() {
    let Request::SetChatRead(r) = parsed(
        r#"{"class":"chat","action":"setChatRead","content":{"chat_id":"7_12","role_type":0}}"#,
    ) else {
        panic!()
    };
    assert_eq!((r.chat_id.as_str(), r.role()), ("7_12", Ok(Role::Consumer)));
    let Request::DelChat(r) = parsed(
        r#"{"class":"chat","action":"delChat","content":{"chat_id":"3____12","role_type":"service"}}"#,
    ) else {
        panic!()
    };
    assert_eq!(r.role(), Ok(Role::Agent));
    let Request::DelChat(r) =
        parsed(r#"{"class":"chat","action":"delChat","content":{"chat_id":"7_12"}}"#)
    else {
        panic!()
    };
    assert_eq!(r.role(), Ok(Role::Consumer));
    for bad in [r#"{"chat_id":""}"#, r#"{"chat_id":5}"#, r#"{}"#] {
        let text = format!(r#"{{"class":"chat","action":"setChatRead","content":{bad}}}"#);
        assert!(
            matches!(parse_frame(&text), Err(ChatError::BadParams(_))),
            "{bad}"
        );
    }
}

#[test]
fn recent_chat_reply_has_the_documented_row_shape() {
    let Request::RecentChat(r) =
        parsed(r#"{"class":"user","action":"recentChat","content":{"is_service":"1"}}"#)
    else {
        panic!()
    };
    assert_eq!(r.as_agent, Some(true));
    let Request::RecentChat(r) = parsed(r#"{"class":"user","action":"recentChat"}"#) else {
        panic!()
    };
    assert_eq!(r.as_agent, None);
    let page = RecentChats {
        rows: vec![RecentChatRow {
            id: 1,
            uid: 12,
            chat_id: "7_12".into(),
            shop_id: 0,
            friend_uid: 7,
            friend_name: "Ann".into(),
            friend_avatar: "".into(),
            last_msg: "hi".into(),
            last_uid: 7,
            last_time: 1566212436,
            chat_type: ChatType::Direct,
            msg_type: MsgType::Text,
            unread_count: 2,
            last_seq: 9,
        }],
        unread_count: 2,
    };
    same_json(
        &reply_with(code::RECENT_CHATS, &page),
        json!({"code":102,"msg":null,"result":{"rows":[{
            "id":1,"uid":12,"chat_id":"7_12","shop_id":0,"friend_uid":7,"friend_name":"Ann",
            "friend_avatar":"","last_msg":"hi","last_uid":7,"last_time":1566212436,
            "chat_type":1,"msg_type":1,"unread_count":2,"last_seq":9}],"unread_count":2}}),
    );
}

#[test]
fn service_actions_parse() {
    let Request::SetOnline(r) =
        parsed(r#"{"class":"service","action":"setOnline","content":{"online":"1"}}"#)
    else {
        panic!()
    };
    assert!(r.online);
    assert!(matches!(
        parse_frame(r#"{"class":"service","action":"setOnline","content":{}}"#),
        Err(ChatError::BadParams(_))
    ));
    let Request::Transfer(t) = parsed(
        r#"{"class":"Service","action":"transfer","content":{"chat_id":"3____12","to_uid":"9"}}"#,
    ) else {
        panic!()
    };
    assert_eq!((t.chat_id.as_str(), t.to_uid), ("3____12", 9));
    assert!(matches!(
        parse_frame(
            r#"{"class":"service","action":"transfer","content":{"chat_id":"3____12","to_uid":0}}"#
        ),
        Err(ChatError::BadParams(_))
    ));
}

#[test]
fn group_actions_parse_and_validate() {
    let Request::GroupCreate(g) = parsed(
        r#"{"class":"group","action":"create","content":{"name":" Fans ","member_uids":[3,"2",3]}}"#,
    ) else {
        panic!()
    };
    assert_eq!((g.name.as_str(), g.member_uids), ("Fans", vec![2, 3]));
    let Request::GroupJoin(r) =
        parsed(r#"{"class":"group","action":"join","content":{"group_id":"7"}}"#)
    else {
        panic!()
    };
    assert_eq!(r.group_id, 7);
    assert_eq!(
        parsed(r#"{"class":"group","action":"list"}"#),
        Request::GroupList
    );
    for bad in [
        r#"{"class":"group","action":"create","content":{"name":""}}"#,
        r#"{"class":"group","action":"create","content":{"name":"x","member_uids":[0]}}"#,
        r#"{"class":"group","action":"create","content":{"name":"x","member_uids":["a"]}}"#,
        r#"{"class":"group","action":"leave","content":{"group_id":-1}}"#,
        r#"{"class":"group","action":"members","content":{}}"#,
    ] {
        assert!(
            matches!(parse_frame(bad), Err(ChatError::BadParams(_))),
            "{bad}"
        );
    }
}

mod fuzz {
    //! Property tests: whatever a client sends, parsing answers and never panics.
    use super::super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".{0,40}".prop_map(serde_json::Value::from),
            "[0-9]{1,30}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::hash_map("[a-z_]{1,12}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const FIELDS: [&str; 8] = [
        "chat_type",
        "msg_type",
        "msg",
        "to_uid",
        "chat_id",
        "shop_id",
        "role_type",
        "client_msg_id",
    ];

    proptest! {
        #[test]
        fn any_text_is_answered_without_panicking(text in ".{0,300}") {
            let _ = parse_frame(&text);
        }

        #[test]
        fn any_json_is_a_request_or_a_clear_error(v in json_value()) {
            match parse_frame(&v.to_string()) {
                Ok(Frame::Request(_)) | Ok(Frame::Heartbeat) => {}
                Err(e) => prop_assert!(!e.wire().0.is_empty()),
            }
        }

        #[test]
        fn any_content_for_any_action_is_handled(
            class in prop_oneof![Just("chat".to_string()), Just("Chat".to_string()), Just("user".to_string()), Just("service".to_string()), Just("group".to_string()), ".{0,8}"],
            action in prop_oneof![Just("sendMsg".to_string()), Just("sync".to_string()), Just("setChatRead".to_string()), Just("delChat".to_string()), Just("recentChat".to_string()),
                                   Just("setOnline".to_string()), Just("transfer".to_string()), Just("create".to_string()), Just("join".to_string()), Just("members".to_string()), ".{0,10}"],
            content in json_value(),
        ) {
            let frame = serde_json::json!({"class": class, "action": action, "content": content}).to_string();
            let _ = parse_frame(&frame);
        }

        #[test]
        fn send_fields_of_any_type_never_panic_validation(values in prop::collection::vec(json_value(), FIELDS.len())) {
            let content: serde_json::Map<String, serde_json::Value> = FIELDS.iter().map(|f| f.to_string()).zip(values).collect();
            let frame = serde_json::json!({"class": "chat", "action": "sendMsg", "content": content}).to_string();
            if let Ok(Frame::Request(Request::SendMsg(m))) = parse_frame(&frame) {
                let _ = m.validate_common(4000);
                let _ = m.role();
            }
        }
    }
}

#[test]
fn every_request_example_in_docs_parses() {
    let doc = include_str!("../../docs/PROTOCOL.md");
    let mut requests = 0;
    for line in doc.lines().map(str::trim) {
        if line.starts_with(r#"{"class":"#) {
            assert!(
                matches!(parse_frame(line), Ok(Frame::Request(_))),
                "docs/PROTOCOL.md example does not parse: {line}"
            );
            requests += 1;
        } else if line.starts_with(r#"{"code":"#) {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("docs/PROTOCOL.md example is not JSON ({e}): {line}"));
        }
    }
    assert!(requests >= 18, "only {requests} request examples found");
}

#[test]
fn content_may_be_absent_null_or_an_empty_array_and_names_may_be_escaped() {
    for content in [
        "",
        r#","content":null"#,
        r#","content":[]"#,
        r#","content":[ ]"#,
    ] {
        let text = format!(r#"{{"class":"chat","action":"sync"{content}}}"#);
        assert_eq!(
            parsed(&text),
            Request::Sync(SyncRequest::default()),
            "{text}"
        );
    }
    // Escapes in the names read like any JSON string's.
    assert_eq!(
        parsed(r#"{"class":"Ch\u0061t","action":"sync"}"#),
        Request::Sync(SyncRequest::default())
    );
    // A content that does not fit its action is told what is wrong, not where in the
    // frame the part parsed began.
    match parse_frame(r#"{"class":"chat","action":"sendMsg","content":{"chat_type":1}}"#) {
        Err(ChatError::BadParams(m)) => {
            assert!(m.contains("missing field"), "{m}");
            assert!(!m.contains(" at line "), "{m}");
        }
        other => panic!("{other:?}"),
    }
}
