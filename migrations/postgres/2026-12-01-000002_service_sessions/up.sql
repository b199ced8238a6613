-- Customer service as a shop runs it (PROTOCOL.md §10): each conversation's state
-- (0 resolved or never started, 1 waiting, 2 open), its sessions, agent status and
-- roles, the shop's settings, quick replies, blocked consumers and ratings.
ALTER TABLE shops ADD COLUMN queue_when_full BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE shops ADD COLUMN welcome_msg TEXT NULL;
ALTER TABLE shops ADD COLUMN offline_msg TEXT NULL;
ALTER TABLE shops ADD COLUMN auto_resolve_mins INTEGER NOT NULL DEFAULT 30;
-- JSON: {"tz":..,"days":{..},"closed_dates":[..]}; NULL = always open.
ALTER TABLE shops ADD COLUMN working_hours TEXT NULL;

-- Status: offline (online = 0), online, or away (online = 1, away = 1).
ALTER TABLE agents ADD COLUMN away BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE agents ADD COLUMN supervisor BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE service_chats ADD COLUMN state INTEGER NOT NULL DEFAULT 0;
-- The current (or last) session; 0 = none yet.
ALTER TABLE service_chats ADD COLUMN session_id BIGINT NOT NULL DEFAULT 0;
-- Auto replies sent in the current session: 1 = welcome, 2 = offline.
ALTER TABLE service_chats ADD COLUMN auto_sent INTEGER NOT NULL DEFAULT 0;
-- The auto-resolve sweep: open conversations, quietest first.
CREATE INDEX service_chats_by_state ON service_chats (state, last_time);

CREATE TABLE service_sessions (
    id BIGSERIAL PRIMARY KEY,
    shop_id BIGINT NOT NULL,
    consumer_uid BIGINT NOT NULL,
    chat_id VARCHAR(64) NOT NULL,
    -- The agent who has it; 0 while it waits.
    agent_uid BIGINT NOT NULL DEFAULT 0,
    state INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    first_msg_at BIGINT NOT NULL DEFAULT 0,
    first_response_at BIGINT NOT NULL DEFAULT 0,
    resolved_at BIGINT NOT NULL DEFAULT 0,
    resolved_by BIGINT NOT NULL DEFAULT 0,
    last_time BIGINT NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0,
    rating INTEGER NOT NULL DEFAULT 0,
    rating_comment TEXT NULL,
    rated_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX service_sessions_by_shop ON service_sessions (shop_id, started_at);
CREATE INDEX service_sessions_by_consumer ON service_sessions (shop_id, consumer_uid, id);
CREATE INDEX service_sessions_rated ON service_sessions (shop_id, rated_at);

-- Conversations waiting when this step runs keep their place in the queue.
INSERT INTO service_sessions (shop_id, consumer_uid, chat_id, agent_uid, state, started_at, first_msg_at, last_time)
    SELECT shop_id, consumer_uid, chat_id, 0, 1, last_time, last_time, last_time FROM service_chats WHERE waiting_from > 0;
UPDATE service_chats SET state = 1,
    session_id = (SELECT MAX(s.id) FROM service_sessions s WHERE s.shop_id = service_chats.shop_id AND s.consumer_uid = service_chats.consumer_uid)
    WHERE waiting_from > 0;

-- Auto replies are marked; event rows (resolved, rating_request, later recall) name their event.
ALTER TABLE messages ADD COLUMN auto_reply BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE messages ADD COLUMN event_type VARCHAR(32) NULL;

CREATE TABLE quick_replies (
    shop_id BIGINT NOT NULL,
    short_code VARCHAR(32) NOT NULL,
    text TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, short_code)
);

CREATE TABLE blocked_consumers (
    shop_id BIGINT NOT NULL,
    consumer_uid BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, consumer_uid)
);
