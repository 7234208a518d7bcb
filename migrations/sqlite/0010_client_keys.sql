-- private_key_jwt (RFC 7523): a client's public keys, inline or where it publishes them.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;

-- The `jti` of every client assertion accepted, until it would have expired: never twice.
CREATE TABLE client_assertions (
    client_id   TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expires ON client_assertions(expires_at);
