DROP TABLE chat_seqs;
DROP INDEX messages_seq;
ALTER TABLE messages DROP COLUMN seq;
