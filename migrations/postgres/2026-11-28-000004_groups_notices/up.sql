CREATE TABLE chat_groups (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    owner_uid BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_msg_id BIGINT NOT NULL DEFAULT 0,
    last_msg TEXT NOT NULL DEFAULT '',
    last_uid BIGINT NOT NULL DEFAULT 0,
    last_time BIGINT NOT NULL DEFAULT 0,
    msg_type INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE group_members (
    group_id BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    joined_from BIGINT NOT NULL,
    read_upto BIGINT NOT NULL,
    hidden_upto BIGINT NOT NULL DEFAULT 0,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, uid)
);
CREATE INDEX group_members_by_uid ON group_members (uid);

CREATE TABLE notice_reads (
    uid BIGINT PRIMARY KEY,
    read_upto BIGINT NOT NULL DEFAULT 0,
    hidden_upto BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX messages_by_group ON messages (group_id, id);
