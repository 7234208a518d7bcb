-- The policy change log (sqlite): every change to a fact the live policy caches names the
-- cache entry it touches (kind + key) in `policy_changes`, written by the triggers below in
-- the same transaction as the change, whoever makes it (this server, another instance, the
-- CLI, a database console). Every instance follows the log by sequence number and evicts
-- exactly those entries (src/cache/changes.rs); this replaces the global `policy_epoch`,
-- whose every bump emptied every instance's whole cache. An UPDATE that changes no column
-- logs nothing. Keep in step with ../postgres.

DROP TRIGGER grants_update_bumps_epoch;
DROP TRIGGER grants_delete_bumps_epoch;
DROP TRIGGER school_links_insert_bumps_epoch;
DROP TRIGGER school_links_update_bumps_epoch;
DROP TRIGGER school_links_delete_bumps_epoch;
DROP TRIGGER clients_update_bumps_epoch;
DROP TRIGGER clients_delete_bumps_epoch;
DROP TRIGGER accounts_update_bumps_epoch;
DROP TRIGGER accounts_delete_bumps_epoch;
DROP TRIGGER enrollments_insert_bumps_epoch;
DROP TRIGGER guardianships_insert_bumps_epoch;
DROP TRIGGER enrollments_update_bumps_epoch;
DROP TRIGGER enrollments_delete_bumps_epoch;
DROP TRIGGER guardianships_delete_bumps_epoch;
DROP TRIGGER scope_closures_insert_bumps_epoch;
DROP TRIGGER scope_closures_update_bumps_epoch;
DROP TRIGGER scope_closures_delete_bumps_epoch;
DROP TRIGGER access_tokens_update_bumps_epoch;
DROP TRIGGER access_tokens_delete_bumps_epoch;
DROP TABLE policy_epoch;

-- AUTOINCREMENT: sequence numbers only grow and, since SQLite has one writer at a time
-- and a rolled-back insert gives its number back, they are committed in order without gaps;
-- a follower that sees a gap knows rows were lost (purged or deleted) and flushes everything.
CREATE TABLE policy_changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    at      BIGINT NOT NULL DEFAULT (unixepoch())
);
CREATE INDEX policy_changes_at ON policy_changes(at);

CREATE TRIGGER grants_log_grant_insert AFTER INSERT ON grants
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('grant', NEW.id);
END;
CREATE TRIGGER grants_log_grant_update AFTER UPDATE ON grants
WHEN OLD.id IS NOT NEW.id OR OLD.student_id IS NOT NEW.student_id OR OLD.client_id IS NOT NEW.client_id OR OLD.scopes IS NOT NEW.scopes OR OLD.given_by IS NOT NEW.given_by OR OLD.given_by_role IS NOT NEW.given_by_role OR OLD.granted_at IS NOT NEW.granted_at OR OLD.expires_at IS NOT NEW.expires_at OR OLD.revoked_at IS NOT NEW.revoked_at
BEGIN
    INSERT INTO policy_changes (kind, key) SELECT 'grant', OLD.id UNION SELECT 'grant', NEW.id;
END;
CREATE TRIGGER grants_log_grant_delete AFTER DELETE ON grants
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('grant', OLD.id);
END;
CREATE TRIGGER clients_log_client_insert AFTER INSERT ON clients
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('client', NEW.client_id);
END;
CREATE TRIGGER clients_log_client_update AFTER UPDATE ON clients
WHEN OLD.client_id IS NOT NEW.client_id OR OLD.display_name IS NOT NEW.display_name OR OLD.kind IS NOT NEW.kind OR OLD.redirect_uris IS NOT NEW.redirect_uris OR OLD.allowed_scopes IS NOT NEW.allowed_scopes OR OLD.secret_hash IS NOT NEW.secret_hash OR OLD.auth_methods IS NOT NEW.auth_methods OR OLD.accreditation_status IS NOT NEW.accreditation_status OR OLD.accredited_from IS NOT NEW.accredited_from OR OLD.accredited_until IS NOT NEW.accredited_until OR OLD.created_at IS NOT NEW.created_at OR OLD.contacts IS NOT NEW.contacts OR OLD.active IS NOT NEW.active OR OLD.previous_secret_hash IS NOT NEW.previous_secret_hash OR OLD.previous_secret_expires_at IS NOT NEW.previous_secret_expires_at
BEGIN
    INSERT INTO policy_changes (kind, key) SELECT 'client', OLD.client_id UNION SELECT 'client', NEW.client_id;
END;
CREATE TRIGGER clients_log_client_delete AFTER DELETE ON clients
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('client', OLD.client_id);
END;
CREATE TRIGGER accounts_log_account_insert AFTER INSERT ON accounts
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('account', NEW.id);
END;
CREATE TRIGGER accounts_log_account_update AFTER UPDATE ON accounts
WHEN OLD.id IS NOT NEW.id OR OLD.school_brin IS NOT NEW.school_brin OR OLD.username IS NOT NEW.username OR OLD.role IS NOT NEW.role OR OLD.password_hash IS NOT NEW.password_hash OR OLD.given_name IS NOT NEW.given_name OR OLD.tussenvoegsel IS NOT NEW.tussenvoegsel OR OLD.family_name IS NOT NEW.family_name OR OLD.birth_date IS NOT NEW.birth_date OR OLD.created_at IS NOT NEW.created_at OR OLD.source_id IS NOT NEW.source_id OR OLD.login_enabled IS NOT NEW.login_enabled
BEGIN
    INSERT INTO policy_changes (kind, key) SELECT 'account', OLD.id UNION SELECT 'account', NEW.id;
END;
CREATE TRIGGER accounts_log_account_delete AFTER DELETE ON accounts
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('account', OLD.id);
END;
CREATE TRIGGER enrollments_log_enrollments_insert AFTER INSERT ON enrollments
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('enrollments', NEW.student_id);
END;
CREATE TRIGGER enrollments_log_enrollments_update AFTER UPDATE ON enrollments
WHEN OLD.student_id IS NOT NEW.student_id OR OLD.school_brin IS NOT NEW.school_brin OR OLD.starts_at IS NOT NEW.starts_at OR OLD.ends_at IS NOT NEW.ends_at
BEGIN
    INSERT INTO policy_changes (kind, key) SELECT 'enrollments', OLD.student_id UNION SELECT 'enrollments', NEW.student_id;
END;
CREATE TRIGGER enrollments_log_enrollments_delete AFTER DELETE ON enrollments
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('enrollments', OLD.student_id);
END;
CREATE TRIGGER school_links_log_link_insert AFTER INSERT ON school_links
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('link', NEW.school_brin || ' ' || NEW.client_id);
END;
CREATE TRIGGER school_links_log_link_update AFTER UPDATE ON school_links
WHEN OLD.school_brin IS NOT NEW.school_brin OR OLD.client_id IS NOT NEW.client_id OR OLD.is_open IS NOT NEW.is_open OR OLD.reason IS NOT NEW.reason OR OLD.changed_at IS NOT NEW.changed_at
BEGIN
    INSERT INTO policy_changes (kind, key) SELECT 'link', OLD.school_brin || ' ' || OLD.client_id UNION SELECT 'link', NEW.school_brin || ' ' || NEW.client_id;
END;
CREATE TRIGGER school_links_log_link_delete AFTER DELETE ON school_links
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('link', OLD.school_brin || ' ' || OLD.client_id);
END;
CREATE TRIGGER guardianships_log_guardianship_insert AFTER INSERT ON guardianships
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('guardianship', NEW.parent_id || ' ' || NEW.student_id);
END;
CREATE TRIGGER guardianships_log_guardianship_update AFTER UPDATE ON guardianships
WHEN OLD.parent_id IS NOT NEW.parent_id OR OLD.student_id IS NOT NEW.student_id OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO policy_changes (kind, key) SELECT 'guardianship', OLD.parent_id || ' ' || OLD.student_id UNION SELECT 'guardianship', NEW.parent_id || ' ' || NEW.student_id;
END;
CREATE TRIGGER guardianships_log_guardianship_delete AFTER DELETE ON guardianships
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('guardianship', OLD.parent_id || ' ' || OLD.student_id);
END;
CREATE TRIGGER guardianships_log_children_insert AFTER INSERT ON guardianships
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('children', NEW.parent_id);
END;
CREATE TRIGGER guardianships_log_children_update AFTER UPDATE ON guardianships
WHEN OLD.parent_id IS NOT NEW.parent_id OR OLD.student_id IS NOT NEW.student_id OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO policy_changes (kind, key) SELECT 'children', OLD.parent_id UNION SELECT 'children', NEW.parent_id;
END;
CREATE TRIGGER guardianships_log_children_delete AFTER DELETE ON guardianships
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('children', OLD.parent_id);
END;
CREATE TRIGGER scope_closures_log_closures_insert AFTER INSERT ON scope_closures
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('closures', NEW.school_brin);
END;
CREATE TRIGGER scope_closures_log_closures_update AFTER UPDATE ON scope_closures
WHEN OLD.id IS NOT NEW.id OR OLD.school_brin IS NOT NEW.school_brin OR OLD.scope IS NOT NEW.scope OR OLD.audiences IS NOT NEW.audiences OR OLD.starts_at IS NOT NEW.starts_at OR OLD.ends_at IS NOT NEW.ends_at OR OLD.reason IS NOT NEW.reason OR OLD.created_by IS NOT NEW.created_by OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO policy_changes (kind, key) SELECT 'closures', OLD.school_brin UNION SELECT 'closures', NEW.school_brin;
END;
CREATE TRIGGER scope_closures_log_closures_delete AFTER DELETE ON scope_closures
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('closures', OLD.school_brin);
END;
-- A parent's list of children holds the children's accounts.
CREATE TRIGGER accounts_log_children_update AFTER UPDATE ON accounts
WHEN OLD.id IS NOT NEW.id OR OLD.school_brin IS NOT NEW.school_brin OR OLD.username IS NOT NEW.username OR OLD.role IS NOT NEW.role OR OLD.password_hash IS NOT NEW.password_hash OR OLD.given_name IS NOT NEW.given_name OR OLD.tussenvoegsel IS NOT NEW.tussenvoegsel OR OLD.family_name IS NOT NEW.family_name OR OLD.birth_date IS NOT NEW.birth_date OR OLD.created_at IS NOT NEW.created_at OR OLD.source_id IS NOT NEW.source_id OR OLD.login_enabled IS NOT NEW.login_enabled
BEGIN
    INSERT INTO policy_changes (kind, key)
        SELECT 'children', parent_id FROM guardianships WHERE student_id = NEW.id;
END;
-- A revoked token, or a live one deleted (expired ones are refused by their expiry anyway,
-- so the purge of expired tokens logs nothing).
CREATE TRIGGER access_tokens_log_revoked AFTER UPDATE OF revoked_at ON access_tokens
WHEN OLD.revoked_at IS NOT NEW.revoked_at
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('token', NEW.token_hash);
END;
CREATE TRIGGER access_tokens_log_delete AFTER DELETE ON access_tokens
WHEN OLD.revoked_at IS NULL AND OLD.expires_at > unixepoch()
BEGIN
    INSERT INTO policy_changes (kind, key) VALUES ('token', OLD.token_hash);
END;
