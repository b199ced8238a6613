CREATE TABLE users (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username VARCHAR(32) NULL UNIQUE,
    password_hash VARCHAR(255) NULL,
    nickname VARCHAR(191) NOT NULL,
    avatar VARCHAR(1024) NOT NULL DEFAULT '',
    sign VARCHAR(255) NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE messages (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    chat_id VARCHAR(64) NOT NULL,
    chat_type INT NOT NULL,
    msg_type INT NOT NULL,
    msg TEXT NOT NULL,
    from_uid BIGINT NOT NULL,
    to_uid BIGINT NOT NULL,
    shop_id BIGINT NOT NULL DEFAULT 0,
    group_id BIGINT NOT NULL DEFAULT 0,
    consumer_uid BIGINT NOT NULL DEFAULT 0,
    from_service BOOLEAN NOT NULL DEFAULT FALSE,
    client_msg_id VARCHAR(64) NULL,
    createtime BIGINT NOT NULL,
    INDEX messages_by_chat (chat_id, id),
    INDEX messages_by_to (to_uid, id),
    INDEX messages_by_from (from_uid, id),
    UNIQUE INDEX messages_client_id (from_uid, client_msg_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
