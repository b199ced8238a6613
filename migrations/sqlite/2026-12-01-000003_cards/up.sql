-- Product and order cards (PROTOCOL.md §12): the checked card of msg_type 3 and 4, as JSON.
ALTER TABLE messages ADD COLUMN card TEXT NULL;
