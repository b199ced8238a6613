-- 1:1 sync reads a user's chats by (chat_id, id) through its conversation rows, so the
-- per-user indexes on messages are no longer needed for them; notices keep a small
-- partial index of their own. A 1:1 message now inserts into three B-trees, not five.
DROP INDEX messages_by_to;
DROP INDEX messages_by_from;
CREATE INDEX messages_notices ON messages (to_uid, id) WHERE chat_type = 3;
