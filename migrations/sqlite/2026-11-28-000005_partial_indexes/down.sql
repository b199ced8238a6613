DROP INDEX messages_by_shop;
DROP INDEX messages_by_consumer;
DROP INDEX messages_by_group;
DROP INDEX messages_client_id;
CREATE INDEX messages_by_shop ON messages (shop_id, id);
CREATE INDEX messages_by_consumer ON messages (consumer_uid, id);
CREATE INDEX messages_by_group ON messages (group_id, id);
CREATE UNIQUE INDEX messages_client_id ON messages (from_uid, client_msg_id);
