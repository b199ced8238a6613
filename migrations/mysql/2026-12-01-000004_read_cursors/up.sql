-- Read receipts (PROTOCOL.md §11): how far each side of a 1:1 or customer-service
-- conversation has read; it only moves forward.
ALTER TABLE conversations ADD COLUMN read_msg_id BIGINT NOT NULL DEFAULT 0;
