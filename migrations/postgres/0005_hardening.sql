-- Hardening (postgres): the purge job finds expired rows by index, a session's pending requests
-- are counted by index, and management tokens can be revoked (RFC 7009). Keep in step with
-- ../sqlite.
CREATE INDEX browser_sessions_expires ON browser_sessions(expires_at);
CREATE INDEX authorization_requests_expires ON authorization_requests(expires_at);
CREATE INDEX authorization_requests_session ON authorization_requests(session_id);
CREATE INDEX authorization_codes_expires ON authorization_codes(expires_at);
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);
CREATE INDEX management_tokens_expires ON management_tokens(expires_at);
ALTER TABLE management_tokens ADD COLUMN revoked_at BIGINT;

-- Logins locked by too many failures from browsers the account has not used before, for the
-- school console to see and lift. Only for existing accounts; the counting itself happens in
-- Redis or in memory. Deleted by the purge job once expired.
CREATE TABLE login_locks (
    school_brin TEXT NOT NULL,
    username    TEXT NOT NULL,
    locked_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (school_brin, username)
);
CREATE INDEX login_locks_expires ON login_locks(expires_at);
