-- SQLite's client trigger names its columns and needed the four added in 0009–0011; the
-- PostgreSQL trigger compares whole rows (OLD.* IS DISTINCT FROM NEW.*) and needs nothing.
-- Counting a client's waiting pushed requests reads this index, not the table.
CREATE INDEX pushed_requests_client ON pushed_requests(client_id, expires_at);
