-- Poortwachter schema (SQLite). Times are Unix seconds (BIGINT), flags 0/1, so that one
-- runtime query path serves SQLite and PostgreSQL alike. Keep in step with ../postgres.

CREATE TABLE schools (
    brin        TEXT PRIMARY KEY,
    name        TEXT NOT NULL
);

CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    school_brin     TEXT NOT NULL REFERENCES schools(brin),
    username        TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('student', 'parent', 'supervisor')),
    password_hash   TEXT NOT NULL,
    given_name      TEXT NOT NULL,
    tussenvoegsel   TEXT,
    family_name     TEXT NOT NULL,
    birth_date      TEXT,
    created_at      BIGINT NOT NULL,
    UNIQUE (school_brin, username)
);

CREATE TABLE guardianships (
    parent_id   TEXT NOT NULL REFERENCES accounts(id),
    student_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (parent_id, student_id)
);
CREATE INDEX guardianships_student ON guardianships(student_id);

CREATE TABLE enrollments (
    student_id  TEXT NOT NULL REFERENCES accounts(id),
    school_brin TEXT NOT NULL REFERENCES schools(brin),
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT,
    PRIMARY KEY (student_id, school_brin)
);

CREATE TABLE clients (
    client_id               TEXT PRIMARY KEY,
    display_name            TEXT NOT NULL,
    kind                    TEXT NOT NULL DEFAULT 'partner',
    redirect_uris           TEXT NOT NULL,
    allowed_scopes          TEXT NOT NULL,
    secret_hash             TEXT,
    auth_methods            TEXT NOT NULL,
    accreditation_status    TEXT NOT NULL CHECK (accreditation_status IN ('pending', 'accredited', 'suspended')),
    accredited_from         BIGINT,
    accredited_until        BIGINT,
    created_at              BIGINT NOT NULL
);

-- The school's switch per partner. No row means closed: links start closed.
CREATE TABLE school_links (
    school_brin TEXT NOT NULL REFERENCES schools(brin),
    client_id   TEXT NOT NULL REFERENCES clients(client_id),
    is_open     BIGINT NOT NULL DEFAULT 0,
    reason      TEXT,
    changed_at  BIGINT NOT NULL,
    PRIMARY KEY (school_brin, client_id)
);

-- Consent. The grant belongs to the student; given_by is the student or the parent acting.
-- For first-party apps ('self') the grant belongs to the account that logged in.
CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    student_id      TEXT NOT NULL REFERENCES accounts(id),
    client_id       TEXT NOT NULL REFERENCES clients(client_id),
    scopes          TEXT NOT NULL,
    given_by        TEXT NOT NULL REFERENCES accounts(id),
    given_by_role   TEXT NOT NULL CHECK (given_by_role IN ('student', 'parent', 'self')),
    granted_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE UNIQUE INDEX grants_one_active ON grants(student_id, client_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_client ON grants(client_id);

CREATE TABLE browser_sessions (
    id          TEXT PRIMARY KEY,
    cookie_hash TEXT NOT NULL UNIQUE,
    csrf_token  TEXT NOT NULL,
    account_id  TEXT REFERENCES accounts(id),
    auth_time   BIGINT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- A pending /authorize request while the person logs in and consents.
CREATE TABLE authorization_requests (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    state           TEXT,
    nonce           TEXT,
    code_challenge  TEXT NOT NULL,
    school_hint     TEXT,
    login_hint      TEXT,
    force_login     BIGINT NOT NULL DEFAULT 0,
    force_consent   BIGINT NOT NULL DEFAULT 0,
    locale          TEXT NOT NULL DEFAULT 'nl',
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

CREATE TABLE authorization_codes (
    code_hash       TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    grant_id        TEXT NOT NULL REFERENCES grants(id),
    student_id      TEXT NOT NULL,
    actor_id        TEXT,
    scopes          TEXT NOT NULL,
    nonce           TEXT,
    session_id      TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);

-- Tokens of one authorization code form a family (family_id = code hash): RFC 6749 §4.1.2
-- and RFC 9700 §4.14.2 revoke a whole family at once.
CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    family_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    grant_id        TEXT NOT NULL REFERENCES grants(id),
    student_id      TEXT NOT NULL,
    actor_id        TEXT,
    scopes          TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);

CREATE TABLE access_tokens (
    token_hash      TEXT PRIMARY KEY,
    family_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    grant_id        TEXT NOT NULL REFERENCES grants(id),
    student_id      TEXT NOT NULL,
    actor_id        TEXT,
    scopes          TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX access_tokens_family ON access_tokens(family_id);
CREATE INDEX access_tokens_grant ON access_tokens(grant_id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE server_secrets (
    name    TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);

-- A school closes a scope (in practice `cijfers`) for audiences between two moments.
CREATE TABLE scope_closures (
    id          TEXT PRIMARY KEY,
    school_brin TEXT NOT NULL REFERENCES schools(brin),
    scope       TEXT NOT NULL,
    audiences   TEXT NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX scope_closures_school ON scope_closures(school_brin);

-- Access tokens of management clients (client_credentials) for the admin API.
CREATE TABLE management_tokens (
    token_hash  TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(client_id),
    scopes      TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Who changed the policy, what, when and why.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    reason      TEXT,
    details     TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);

-- Bumped by every change that can turn an allow into a deny; every instance polls it to
-- drop its in-process policy cache (see src/cache/).
CREATE TABLE policy_epoch (
    id      BIGINT PRIMARY KEY,
    value   BIGINT NOT NULL
);
INSERT INTO policy_epoch (id, value) VALUES (1, 0);

-- Any writer (this server, another instance, the CLI, a database console) that changes a
-- fact the live policy reads bumps the epoch, so every instance drops its cache within a
-- poll interval. Inserts of tokens and first grants need no bump: nothing cached them yet;
-- a new enrollment can move a student to a school whose link is closed, so it does.
CREATE TRIGGER grants_update_bumps_epoch AFTER UPDATE ON grants
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER grants_delete_bumps_epoch AFTER DELETE ON grants
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER school_links_insert_bumps_epoch AFTER INSERT ON school_links
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER school_links_update_bumps_epoch AFTER UPDATE ON school_links
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER school_links_delete_bumps_epoch AFTER DELETE ON school_links
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER clients_update_bumps_epoch AFTER UPDATE ON clients
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER clients_delete_bumps_epoch AFTER DELETE ON clients
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER accounts_update_bumps_epoch AFTER UPDATE ON accounts
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER accounts_delete_bumps_epoch AFTER DELETE ON accounts
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER enrollments_insert_bumps_epoch AFTER INSERT ON enrollments
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER guardianships_insert_bumps_epoch AFTER INSERT ON guardianships
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER enrollments_update_bumps_epoch AFTER UPDATE ON enrollments
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER enrollments_delete_bumps_epoch AFTER DELETE ON enrollments
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER guardianships_delete_bumps_epoch AFTER DELETE ON guardianships
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER scope_closures_insert_bumps_epoch AFTER INSERT ON scope_closures
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER scope_closures_update_bumps_epoch AFTER UPDATE ON scope_closures
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER scope_closures_delete_bumps_epoch AFTER DELETE ON scope_closures
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER access_tokens_update_bumps_epoch AFTER UPDATE OF revoked_at ON access_tokens
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER access_tokens_delete_bumps_epoch AFTER DELETE ON access_tokens
BEGIN
    UPDATE policy_epoch SET value = value + 1 WHERE id = 1;
END;
