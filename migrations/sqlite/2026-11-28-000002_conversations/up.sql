-- One row per (owner, conversation) for the recent-chat lists (PROTOCOL.md §6).
-- owner_uid 0 is a shop's shared side of its customer-service conversations.
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    owner_uid BIGINT NOT NULL,
    shop_id BIGINT NOT NULL DEFAULT 0,
    chat_id TEXT NOT NULL,
    chat_type INTEGER NOT NULL,
    peer_id BIGINT NOT NULL,
    last_msg TEXT NOT NULL,
    last_uid BIGINT NOT NULL,
    last_time BIGINT NOT NULL,
    msg_type INTEGER NOT NULL,
    unread_count INTEGER NOT NULL DEFAULT 0,
    hidden BOOLEAN NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX conversations_owner_chat ON conversations (owner_uid, shop_id, chat_id);
CREATE INDEX conversations_owner_time ON conversations (owner_uid, shop_id, last_time);
