DROP TABLE moderation;
DROP TABLE webhook_offline;
DROP TABLE webhook_events;
