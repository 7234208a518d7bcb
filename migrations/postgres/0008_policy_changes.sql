-- The policy change log (postgres): every change to a fact the live policy caches names the
-- cache entry it touches (kind + key) in `policy_changes`, written by the triggers below in
-- the same transaction as the change, whoever makes it (this server, another instance, the
-- CLI, a database console). Every instance follows the log by sequence number and evicts
-- exactly those entries (src/cache/changes.rs); this replaces the global `policy_epoch`,
-- whose every bump emptied every instance's whole cache. An UPDATE that changes no column
-- logs nothing. Keep in step with ../sqlite.

DROP TRIGGER grants_bump_epoch ON grants;
DROP TRIGGER school_links_bump_epoch ON school_links;
DROP TRIGGER clients_bump_epoch ON clients;
DROP TRIGGER accounts_bump_epoch ON accounts;
DROP TRIGGER enrollments_bump_epoch ON enrollments;
DROP TRIGGER guardianships_bump_epoch ON guardianships;
DROP TRIGGER scope_closures_bump_epoch ON scope_closures;
DROP TRIGGER access_tokens_bump_epoch ON access_tokens;
DROP FUNCTION bump_policy_epoch();
DROP TABLE policy_epoch;

-- Sequence numbers have gaps (a rolled-back insert keeps its number) and concurrent
-- transactions commit out of order, so followers do not trust `seq` alone: each row carries
-- the id of the transaction that wrote it, and a follower reads again, on every poll, every
-- row from transactions not older than the oldest one still running at its previous poll
-- (`pg_snapshot_xmin`), skipping rows it has seen. Everything older is final.
CREATE TABLE policy_changes (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid    xid8 NOT NULL DEFAULT pg_current_xact_id(),
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    at      BIGINT NOT NULL DEFAULT (EXTRACT(EPOCH FROM now())::BIGINT)
);
CREATE INDEX policy_changes_txid ON policy_changes(txid);
CREATE INDEX policy_changes_at ON policy_changes(at);

-- Arguments: the kind, then one or two key columns (joined by a space).
CREATE FUNCTION log_policy_change() RETURNS trigger AS $$
DECLARE
    old_key TEXT;
    new_key TEXT;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_key := to_jsonb(OLD) ->> TG_ARGV[1];
        IF TG_NARGS > 2 THEN
            old_key := old_key || ' ' || (to_jsonb(OLD) ->> TG_ARGV[2]);
        END IF;
        INSERT INTO policy_changes (kind, key) VALUES (TG_ARGV[0], old_key);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_key := to_jsonb(NEW) ->> TG_ARGV[1];
        IF TG_NARGS > 2 THEN
            new_key := new_key || ' ' || (to_jsonb(NEW) ->> TG_ARGV[2]);
        END IF;
        IF new_key IS DISTINCT FROM old_key THEN
            INSERT INTO policy_changes (kind, key) VALUES (TG_ARGV[0], new_key);
        END IF;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER grants_log_grant AFTER INSERT OR DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION log_policy_change('grant', 'id');
CREATE TRIGGER grants_log_grant_update AFTER UPDATE ON grants
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION log_policy_change('grant', 'id');
CREATE TRIGGER clients_log_client AFTER INSERT OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION log_policy_change('client', 'client_id');
CREATE TRIGGER clients_log_client_update AFTER UPDATE ON clients
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION log_policy_change('client', 'client_id');
CREATE TRIGGER accounts_log_account AFTER INSERT OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION log_policy_change('account', 'id');
CREATE TRIGGER accounts_log_account_update AFTER UPDATE ON accounts
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION log_policy_change('account', 'id');
CREATE TRIGGER enrollments_log_enrollments AFTER INSERT OR DELETE ON enrollments
    FOR EACH ROW EXECUTE FUNCTION log_policy_change('enrollments', 'student_id');
CREATE TRIGGER enrollments_log_enrollments_update AFTER UPDATE ON enrollments
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION log_policy_change('enrollments', 'student_id');
CREATE TRIGGER school_links_log_link AFTER INSERT OR DELETE ON school_links
    FOR EACH ROW EXECUTE FUNCTION log_policy_change('link', 'school_brin', 'client_id');
CREATE TRIGGER school_links_log_link_update AFTER UPDATE ON school_links
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION log_policy_change('link', 'school_brin', 'client_id');
CREATE TRIGGER guardianships_log_guardianship AFTER INSERT OR DELETE ON guardianships
    FOR EACH ROW EXECUTE FUNCTION log_policy_change('guardianship', 'parent_id', 'student_id');
CREATE TRIGGER guardianships_log_guardianship_update AFTER UPDATE ON guardianships
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION log_policy_change('guardianship', 'parent_id', 'student_id');
CREATE TRIGGER guardianships_log_children AFTER INSERT OR DELETE ON guardianships
    FOR EACH ROW EXECUTE FUNCTION log_policy_change('children', 'parent_id');
CREATE TRIGGER guardianships_log_children_update AFTER UPDATE ON guardianships
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION log_policy_change('children', 'parent_id');
CREATE TRIGGER scope_closures_log_closures AFTER INSERT OR DELETE ON scope_closures
    FOR EACH ROW EXECUTE FUNCTION log_policy_change('closures', 'school_brin');
CREATE TRIGGER scope_closures_log_closures_update AFTER UPDATE ON scope_closures
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION log_policy_change('closures', 'school_brin');

-- A parent's list of children holds the children's accounts.
CREATE FUNCTION log_children_of_student() RETURNS trigger AS $$
BEGIN
    INSERT INTO policy_changes (kind, key)
        SELECT 'children', parent_id FROM guardianships WHERE student_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_log_children_update AFTER UPDATE ON accounts
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION log_children_of_student();

-- A revoked token, or a live one deleted (expired ones are refused by their expiry anyway,
-- so the purge of expired tokens logs nothing).
CREATE TRIGGER access_tokens_log_revoked AFTER UPDATE OF revoked_at ON access_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at)
    EXECUTE FUNCTION log_policy_change('token', 'token_hash');
CREATE TRIGGER access_tokens_log_delete AFTER DELETE ON access_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > EXTRACT(EPOCH FROM now()))
    EXECUTE FUNCTION log_policy_change('token', 'token_hash');
