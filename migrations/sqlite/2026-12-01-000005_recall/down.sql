ALTER TABLE messages DROP COLUMN recalled_at;
