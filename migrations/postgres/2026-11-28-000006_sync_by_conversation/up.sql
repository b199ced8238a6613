-- 1:1 sync reads a user's chats by (chat_id, id) through its conversation rows, so the
-- per-user indexes on messages are no longer needed for them; notices keep one of their own.
DROP INDEX messages_by_to;
DROP INDEX messages_by_from;
CREATE INDEX messages_notices ON messages (to_uid, id);
