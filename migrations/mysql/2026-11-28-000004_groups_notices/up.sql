CREATE TABLE chat_groups (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(191) NOT NULL,
    owner_uid BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_msg_id BIGINT NOT NULL DEFAULT 0,
    last_msg TEXT NOT NULL,
    last_uid BIGINT NOT NULL DEFAULT 0,
    last_time BIGINT NOT NULL DEFAULT 0,
    msg_type INT NOT NULL DEFAULT 1
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE group_members (
    group_id BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    joined_from BIGINT NOT NULL,
    read_upto BIGINT NOT NULL,
    hidden_upto BIGINT NOT NULL DEFAULT 0,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, uid),
    INDEX group_members_by_uid (uid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE notice_reads (
    uid BIGINT NOT NULL PRIMARY KEY,
    read_upto BIGINT NOT NULL DEFAULT 0,
    hidden_upto BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX messages_by_group ON messages (group_id, id);
