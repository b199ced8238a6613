-- A no-op here: this step makes SQLite's customer-service, group and retry indexes
-- partial (SQLite-only; the schema test lists them as the expected difference).
SELECT 1;
