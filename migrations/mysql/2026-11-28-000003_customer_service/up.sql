CREATE TABLE shops (
    id BIGINT NOT NULL PRIMARY KEY,
    name VARCHAR(191) NOT NULL,
    logo VARCHAR(1024) NOT NULL DEFAULT '',
    capacity INT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE agents (
    uid BIGINT NOT NULL PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    name VARCHAR(191) NOT NULL DEFAULT '',
    online BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    INDEX agents_by_shop (shop_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE service_chats (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    consumer_uid BIGINT NOT NULL,
    chat_id VARCHAR(64) NOT NULL,
    agent_uid BIGINT NOT NULL DEFAULT 0,
    waiting_from BIGINT NOT NULL DEFAULT 0,
    last_time BIGINT NOT NULL,
    UNIQUE INDEX service_chats_shop_consumer (shop_id, consumer_uid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

ALTER TABLE messages ADD COLUMN agent_uid BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_by_shop ON messages (shop_id, id);
CREATE INDEX messages_by_consumer ON messages (consumer_uid, id);
