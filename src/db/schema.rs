//! Table definitions shared by every backend (see the per-backend migrations).

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        nickname -> Text,
        avatar -> Text,
        sign -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        chat_id -> Text,
        chat_type -> Integer,
        msg_type -> Integer,
        msg -> Text,
        from_uid -> BigInt,
        to_uid -> BigInt,
        shop_id -> BigInt,
        group_id -> BigInt,
        consumer_uid -> BigInt,
        from_service -> Bool,
        client_msg_id -> Nullable<Text>,
        createtime -> BigInt,
        agent_uid -> BigInt,
        auto_reply -> Bool,
        event_type -> Nullable<Text>,
        card -> Nullable<Text>,
        recalled_at -> BigInt,
        seq -> BigInt,
    }
}

diesel::table! {
    chat_seqs (chat_id, shop_id) {
        chat_id -> Text,
        shop_id -> BigInt,
        last_seq -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    shops (id) {
        id -> BigInt,
        name -> Text,
        logo -> Text,
        capacity -> Integer,
        created_at -> BigInt,
        queue_when_full -> Bool,
        welcome_msg -> Nullable<Text>,
        offline_msg -> Nullable<Text>,
        auto_resolve_mins -> Integer,
        working_hours -> Nullable<Text>,
    }
}

diesel::table! {
    agents (uid) {
        uid -> BigInt,
        shop_id -> BigInt,
        name -> Text,
        online -> Bool,
        created_at -> BigInt,
        away -> Bool,
        supervisor -> Bool,
    }
}

diesel::table! {
    service_chats (id) {
        id -> BigInt,
        shop_id -> BigInt,
        consumer_uid -> BigInt,
        chat_id -> Text,
        agent_uid -> BigInt,
        waiting_from -> BigInt,
        last_time -> BigInt,
        state -> Integer,
        session_id -> BigInt,
        auto_sent -> Integer,
    }
}

diesel::table! {
    service_sessions (id) {
        id -> BigInt,
        shop_id -> BigInt,
        consumer_uid -> BigInt,
        chat_id -> Text,
        agent_uid -> BigInt,
        state -> Integer,
        started_at -> BigInt,
        first_msg_at -> BigInt,
        first_response_at -> BigInt,
        resolved_at -> BigInt,
        resolved_by -> BigInt,
        last_time -> BigInt,
        messages -> Integer,
        rating -> Integer,
        rating_comment -> Nullable<Text>,
        rated_at -> BigInt,
    }
}

diesel::table! {
    quick_replies (shop_id, short_code) {
        shop_id -> BigInt,
        short_code -> Text,
        text -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    blocked_consumers (shop_id, consumer_uid) {
        shop_id -> BigInt,
        consumer_uid -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    conversations (id) {
        id -> BigInt,
        owner_uid -> BigInt,
        shop_id -> BigInt,
        chat_id -> Text,
        chat_type -> Integer,
        peer_id -> BigInt,
        last_msg -> Text,
        last_uid -> BigInt,
        last_time -> BigInt,
        msg_type -> Integer,
        unread_count -> Integer,
        hidden -> Bool,
        read_msg_id -> BigInt,
    }
}

diesel::table! {
    chat_groups (id) {
        id -> BigInt,
        name -> Text,
        owner_uid -> BigInt,
        created_at -> BigInt,
        last_msg_id -> BigInt,
        last_msg -> Text,
        last_uid -> BigInt,
        last_time -> BigInt,
        msg_type -> Integer,
        is_open -> Bool,
    }
}

diesel::table! {
    group_members (group_id, uid) {
        group_id -> BigInt,
        uid -> BigInt,
        joined_from -> BigInt,
        read_upto -> BigInt,
        hidden_upto -> BigInt,
        joined_at -> BigInt,
    }
}

diesel::table! {
    notice_reads (uid) {
        uid -> BigInt,
        read_upto -> BigInt,
        hidden_upto -> BigInt,
        broadcasts_from -> BigInt,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> BigInt,
        kind -> Text,
        conv -> Text,
        data -> Text,
        receivers -> Nullable<Text>,
        created_at -> BigInt,
        state -> Integer,
        attempts -> Integer,
        next_at -> BigInt,
        lease_owner -> Text,
        lease_until -> BigInt,
        last_error -> Text,
        done_at -> BigInt,
    }
}

diesel::table! {
    webhook_offline (uid, chat_id) {
        uid -> BigInt,
        chat_id -> Text,
        msg_id -> BigInt,
        msg_count -> Integer,
        data -> Text,
        due_at -> BigInt,
    }
}

diesel::table! {
    moderation (id) {
        id -> Integer,
        action -> Text,
        words -> Text,
        updated_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    users,
    messages,
    chat_seqs,
    conversations,
    shops,
    agents,
    service_chats,
    service_sessions,
    quick_replies,
    blocked_consumers,
    chat_groups,
    group_members,
    notice_reads,
    webhook_events,
    webhook_offline,
    moderation
);

diesel::joinable!(messages -> users (from_uid));
