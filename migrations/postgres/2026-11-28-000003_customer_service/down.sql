DROP TABLE service_chats;
DROP TABLE agents;
DROP TABLE shops;
ALTER TABLE messages DROP COLUMN agent_uid;
