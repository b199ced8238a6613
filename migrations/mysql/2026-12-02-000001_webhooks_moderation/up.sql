-- Webhooks (PROTOCOL.md §13): the outbox. Each row is one event, written in the
-- transaction of what caused it; id is its seq. conv orders a conversation's events.
-- receivers is set while a message.offline row waits for its decision (who is offline).
-- state: 0 pending, 1 delivered, 2 dead, 3 dropped (nobody to tell, or folded into a
-- coalesced event). Times in next_at and lease_until are unix milliseconds.
CREATE TABLE webhook_events (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind VARCHAR(40) NOT NULL,
    conv VARCHAR(64) NOT NULL,
    data MEDIUMTEXT NOT NULL,
    receivers MEDIUMTEXT NULL,
    created_at BIGINT NOT NULL,
    state INT NOT NULL DEFAULT 0,
    attempts INT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL DEFAULT 0,
    lease_owner VARCHAR(64) NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    last_error VARCHAR(255) NOT NULL DEFAULT '',
    done_at BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
CREATE INDEX webhook_events_due ON webhook_events (state, id);
CREATE INDEX webhook_events_by_conv ON webhook_events (conv, state, id);

-- message.offline coalescing: one row per (receiver, chat) while a window is open; data
-- is the latest message's event data, msg_count how many messages the window holds.
CREATE TABLE webhook_offline (
    uid BIGINT NOT NULL,
    chat_id VARCHAR(64) NOT NULL,
    msg_id BIGINT NOT NULL,
    msg_count INT NOT NULL,
    data TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    PRIMARY KEY (uid, chat_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
CREATE INDEX webhook_offline_due ON webhook_offline (due_at);

-- Sensitive words (PROTOCOL.md §14): one row, the whole list as a JSON array.
CREATE TABLE moderation (
    id INT NOT NULL PRIMARY KEY,
    action VARCHAR(8) NOT NULL,
    words MEDIUMTEXT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
