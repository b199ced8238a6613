ALTER TABLE conversations DROP COLUMN read_msg_id;
