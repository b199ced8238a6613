ALTER TABLE notice_reads DROP COLUMN broadcasts_from;
ALTER TABLE chat_groups DROP COLUMN is_open;
ALTER TABLE messages DROP INDEX messages_client_id, ADD UNIQUE INDEX messages_client_id (from_uid, client_msg_id);
