CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username VARCHAR(32) UNIQUE,
    password_hash TEXT,
    nickname TEXT NOT NULL,
    avatar TEXT NOT NULL DEFAULT '',
    sign TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    chat_id VARCHAR(64) NOT NULL,
    chat_type INTEGER NOT NULL,
    msg_type INTEGER NOT NULL,
    msg TEXT NOT NULL,
    from_uid BIGINT NOT NULL,
    to_uid BIGINT NOT NULL,
    shop_id BIGINT NOT NULL DEFAULT 0,
    group_id BIGINT NOT NULL DEFAULT 0,
    consumer_uid BIGINT NOT NULL DEFAULT 0,
    from_service BOOLEAN NOT NULL DEFAULT FALSE,
    client_msg_id VARCHAR(64),
    createtime BIGINT NOT NULL
);
CREATE INDEX messages_by_chat ON messages (chat_id, id);
CREATE INDEX messages_by_to ON messages (to_uid, id);
CREATE INDEX messages_by_from ON messages (from_uid, id);
CREATE UNIQUE INDEX messages_client_id ON messages (from_uid, client_msg_id);
