ALTER TABLE notice_reads DROP COLUMN broadcasts_from;
ALTER TABLE chat_groups DROP COLUMN is_open;
DROP INDEX messages_client_id;
CREATE UNIQUE INDEX messages_client_id ON messages (from_uid, client_msg_id);
