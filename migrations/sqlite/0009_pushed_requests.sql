-- Pushed authorization requests (RFC 9126): the parameters a client pushed, found again by
-- the hash of their request_uri, single use, for a minute.
CREATE TABLE pushed_requests (
    uri_hash    TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    params      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX pushed_requests_expires ON pushed_requests(expires_at);

-- Per partner: authorization requests only through the pushed-request endpoint.
ALTER TABLE clients ADD COLUMN require_par BIGINT NOT NULL DEFAULT 0;
