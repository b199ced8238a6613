-- Most messages are 1:1: they need no entry in the customer-service, group and retry
-- indexes. Partial indexes skip them, which saves four B-tree inserts per 1:1 message.
-- Queries on these columns carry the matching predicate (e.g. shop_id > 0), without
-- which SQLite does not use a partial index.
DROP INDEX messages_by_shop;
DROP INDEX messages_by_consumer;
DROP INDEX messages_by_group;
DROP INDEX messages_client_id;
CREATE INDEX messages_by_shop ON messages (shop_id, id) WHERE shop_id > 0;
CREATE INDEX messages_by_consumer ON messages (consumer_uid, id) WHERE consumer_uid > 0;
CREATE INDEX messages_by_group ON messages (group_id, id) WHERE group_id > 0;
CREATE UNIQUE INDEX messages_client_id ON messages (from_uid, client_msg_id) WHERE client_msg_id IS NOT NULL;
