DROP INDEX messages_notices;
CREATE INDEX messages_by_to ON messages (to_uid, id);
CREATE INDEX messages_by_from ON messages (from_uid, id);
