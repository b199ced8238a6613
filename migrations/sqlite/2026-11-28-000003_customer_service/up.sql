-- Shops and their customer-service agents (PROTOCOL.md §5).
CREATE TABLE shops (
    id INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    logo TEXT NOT NULL DEFAULT '',
    -- Most open conversations per agent the random choice prefers; 0 = unlimited.
    capacity INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

-- One shop per agent account.
CREATE TABLE agents (
    uid INTEGER PRIMARY KEY NOT NULL,
    shop_id BIGINT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    online BOOLEAN NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX agents_by_shop ON agents (shop_id);

-- One customer-service conversation per shop and consumer: who serves it, and since
-- which message it has been waiting for an agent (0 = not waiting).
CREATE TABLE service_chats (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    shop_id BIGINT NOT NULL,
    consumer_uid BIGINT NOT NULL,
    chat_id TEXT NOT NULL,
    agent_uid BIGINT NOT NULL DEFAULT 0,
    waiting_from BIGINT NOT NULL DEFAULT 0,
    last_time BIGINT NOT NULL
);
CREATE UNIQUE INDEX service_chats_shop_consumer ON service_chats (shop_id, consumer_uid);

-- The agent a customer-service message was routed to, or sent by (0 = none yet).
ALTER TABLE messages ADD COLUMN agent_uid BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_by_shop ON messages (shop_id, id);
CREATE INDEX messages_by_consumer ON messages (consumer_uid, id);
