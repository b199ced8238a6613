CREATE TABLE conversations (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    owner_uid BIGINT NOT NULL,
    shop_id BIGINT NOT NULL DEFAULT 0,
    chat_id VARCHAR(64) NOT NULL,
    chat_type INT NOT NULL,
    peer_id BIGINT NOT NULL,
    last_msg TEXT NOT NULL,
    last_uid BIGINT NOT NULL,
    last_time BIGINT NOT NULL,
    msg_type INT NOT NULL,
    unread_count INT NOT NULL DEFAULT 0,
    hidden BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE INDEX conversations_owner_chat (owner_uid, shop_id, chat_id),
    INDEX conversations_owner_time (owner_uid, shop_id, last_time)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
