DROP TABLE chat_seqs;
ALTER TABLE messages DROP INDEX messages_seq, DROP COLUMN seq;
