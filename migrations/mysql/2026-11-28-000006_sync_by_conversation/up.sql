-- 1:1 sync reads a user's chats by (chat_id, id) through its conversation rows, so the
-- per-user indexes on messages are no longer needed for them; notices keep one of their own.
ALTER TABLE messages DROP INDEX messages_by_to, DROP INDEX messages_by_from, ADD INDEX messages_notices (to_uid, id);
