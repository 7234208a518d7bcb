-- Onboarding (SQLite): registrations by the platform operator, people from the school's SIS
-- (OneRoster), activation codes. Keep in step with ../postgres.

-- Registered partners carry their contacts; a partner with grants is never deleted but
-- deactivated (no authorization, no tokens). A rotated secret keeps working until
-- previous_secret_expires_at (the grace period), then never again.
ALTER TABLE clients ADD COLUMN contacts TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN active BIGINT NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;

ALTER TABLE schools ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;

-- A person's identity within a school is the SIS's OneRoster sourcedId, so a renamed
-- username keeps its grants. enabledUser=false blocks login without ending the enrollment.
-- Imported people have no password yet (password_hash = '') until they activate.
ALTER TABLE accounts ADD COLUMN source_id TEXT;
ALTER TABLE accounts ADD COLUMN login_enabled BIGINT NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX accounts_source_id ON accounts(school_brin, source_id);

-- The school's activation letters: at most one live code per account, stored as a hash.
CREATE TABLE activation_codes (
    account_id  TEXT PRIMARY KEY REFERENCES accounts(id),
    code_hash   TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
