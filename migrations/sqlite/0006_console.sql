-- The school and platform consoles (sqlite): operators (not tied to a school), second factors
-- (RFC 6238 TOTP) with single-use recovery codes, and console sessions, kept apart from the
-- students' and parents' browser sessions. Keep in step with ../postgres.

-- Platform operators. A new operator has no password until the activation code (stored as a
-- hash, like every secret we hand out) is used.
CREATE TABLE operators (
    id                    TEXT PRIMARY KEY,
    username              TEXT NOT NULL UNIQUE,
    password_hash         TEXT,
    activation_hash       TEXT UNIQUE,
    activation_expires_at BIGINT,
    created_at            BIGINT NOT NULL
);

-- One TOTP secret per console user ('account:<id>' for a supervisor, 'operator:<id>').
-- enrolled_at is NULL while enrolment waits for the first correct code; last_step is the
-- newest time step accepted, so a code is never accepted twice (RFC 6238 §5.2).
CREATE TABLE second_factors (
    subject     TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    enrolled_at BIGINT,
    last_step   BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

-- Recovery codes, shown once at enrolment, stored as hashes, each usable once.
CREATE TABLE recovery_codes (
    subject   TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (subject, code_hash)
);

-- Console sessions: 'second_factor' after the password, 'complete' after the TOTP code.
CREATE TABLE console_sessions (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    csrf_token  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    stage       TEXT NOT NULL CHECK (stage IN ('second_factor', 'complete')),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions(expires_at);

-- A roster zip uploaded at the school console, kept between its dry run and the
-- supervisor's confirmation (any instance may serve the confirmation). Purged after an hour.
CREATE TABLE roster_uploads (
    id          TEXT PRIMARY KEY,
    school_brin TEXT NOT NULL REFERENCES schools(brin),
    uploaded_by TEXT NOT NULL,
    archive     BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX roster_uploads_expires ON roster_uploads(expires_at);
