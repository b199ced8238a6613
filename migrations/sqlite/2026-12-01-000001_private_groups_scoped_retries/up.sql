-- A client_msg_id is scoped to (sender, chat): the same id in another chat is another message.
DROP INDEX messages_client_id;
CREATE UNIQUE INDEX messages_client_id ON messages (from_uid, chat_id, client_msg_id) WHERE client_msg_id IS NOT NULL;
-- Groups are private unless opened: group.join works only on open ones.
ALTER TABLE chat_groups ADD COLUMN is_open BOOLEAN NOT NULL DEFAULT 0;
-- A self-registered account sees notices to everyone only from its registration on.
ALTER TABLE notice_reads ADD COLUMN broadcasts_from BIGINT NOT NULL DEFAULT 0;
