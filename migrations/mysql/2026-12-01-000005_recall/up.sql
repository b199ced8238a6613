-- Recall (PROTOCOL.md §11): when a message was recalled (0 = never); its text stays for the platform.
ALTER TABLE messages ADD COLUMN recalled_at BIGINT NOT NULL DEFAULT 0;
