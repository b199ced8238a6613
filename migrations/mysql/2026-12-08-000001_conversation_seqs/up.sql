-- No silent gaps (PROTOCOL.md §17): every row of a conversation, keyed by (chat_id,
-- shop_id) since a customer-service chat_id alone names two conversations, has its seq:
-- 1, 2, 3, ... in commit order. chat_seqs holds each conversation's last seq; a write
-- batch locks the rows of the conversations it appends to, so that with several nodes
-- no two commits take the same seq and no rolled-back batch leaves a hole.
ALTER TABLE messages ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
UPDATE messages m
JOIN (SELECT id, ROW_NUMBER() OVER (PARTITION BY chat_id, shop_id ORDER BY id) AS rn FROM messages) r
ON r.id = m.id
SET m.seq = r.rn;
CREATE UNIQUE INDEX messages_seq ON messages (chat_id, shop_id, seq);
CREATE TABLE chat_seqs (
    chat_id VARCHAR(64) NOT NULL,
    shop_id BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (chat_id, shop_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
INSERT INTO chat_seqs (chat_id, shop_id, last_seq, updated_at)
SELECT chat_id, shop_id, MAX(seq), MAX(createtime) FROM messages GROUP BY chat_id, shop_id;
