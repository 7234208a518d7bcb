-- The client trigger of 0008 names its columns; 0009–0011 added four that the policy cache
-- holds (require_par, jwks, jwks_uri, post_logout_redirect_uris). Without them, a change of
-- only a partner's keys would not reach the cache, and a withdrawn key would keep working.
DROP TRIGGER clients_log_client_update;
CREATE TRIGGER clients_log_client_update AFTER UPDATE ON clients
WHEN OLD.client_id IS NOT NEW.client_id OR OLD.display_name IS NOT NEW.display_name OR OLD.kind IS NOT NEW.kind OR OLD.redirect_uris IS NOT NEW.redirect_uris OR OLD.allowed_scopes IS NOT NEW.allowed_scopes OR OLD.secret_hash IS NOT NEW.secret_hash OR OLD.auth_methods IS NOT NEW.auth_methods OR OLD.accreditation_status IS NOT NEW.accreditation_status OR OLD.accredited_from IS NOT NEW.accredited_from OR OLD.accredited_until IS NOT NEW.accredited_until OR OLD.created_at IS NOT NEW.created_at OR OLD.contacts IS NOT NEW.contacts OR OLD.active IS NOT NEW.active OR OLD.previous_secret_hash IS NOT NEW.previous_secret_hash OR OLD.previous_secret_expires_at IS NOT NEW.previous_secret_expires_at OR OLD.require_par IS NOT NEW.require_par OR OLD.jwks IS NOT NEW.jwks OR OLD.jwks_uri IS NOT NEW.jwks_uri OR OLD.post_logout_redirect_uris IS NOT NEW.post_logout_redirect_uris
BEGIN
    INSERT INTO policy_changes (kind, key) SELECT 'client', OLD.client_id UNION SELECT 'client', NEW.client_id;
END;

-- Counting a client's waiting pushed requests reads this index, not the table.
CREATE INDEX pushed_requests_client ON pushed_requests(client_id, expires_at);
