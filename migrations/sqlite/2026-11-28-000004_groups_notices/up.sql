-- Groups keep their last message here, so storing one never writes a row per member.
CREATE TABLE chat_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    owner_uid BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_msg_id BIGINT NOT NULL DEFAULT 0,
    last_msg TEXT NOT NULL DEFAULT '',
    last_uid BIGINT NOT NULL DEFAULT 0,
    last_time BIGINT NOT NULL DEFAULT 0,
    msg_type INTEGER NOT NULL DEFAULT 1
);

-- A member sees the group's messages after joined_from; unread ones are those after
-- read_upto (counted when asked); the group is hidden from its list up to hidden_upto.
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

-- The same cursors for each user's system-notice conversation.
CREATE TABLE notice_reads (
    uid INTEGER PRIMARY KEY NOT NULL,
    read_upto BIGINT NOT NULL DEFAULT 0,
    hidden_upto BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX messages_by_group ON messages (group_id, id);
