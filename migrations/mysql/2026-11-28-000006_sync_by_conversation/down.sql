ALTER TABLE messages DROP INDEX messages_notices, ADD INDEX messages_by_to (to_uid, id), ADD INDEX messages_by_from (from_uid, id);
