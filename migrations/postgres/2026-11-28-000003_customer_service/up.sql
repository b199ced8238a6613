CREATE TABLE shops (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    logo TEXT NOT NULL DEFAULT '',
    capacity INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE agents (
    uid BIGINT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    online BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE INDEX agents_by_shop ON agents (shop_id);

CREATE TABLE service_chats (
    id BIGSERIAL PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    consumer_uid BIGINT NOT NULL,
    chat_id VARCHAR(64) NOT NULL,
    agent_uid BIGINT NOT NULL DEFAULT 0,
    waiting_from BIGINT NOT NULL DEFAULT 0,
    last_time BIGINT NOT NULL
);
CREATE UNIQUE INDEX service_chats_shop_consumer ON service_chats (shop_id, consumer_uid);

ALTER TABLE messages ADD COLUMN agent_uid BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_by_shop ON messages (shop_id, id);
CREATE INDEX messages_by_consumer ON messages (consumer_uid, id);
