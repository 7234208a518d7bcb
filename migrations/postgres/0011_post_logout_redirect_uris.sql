-- RP-Initiated Logout 1.0 §3: where a client may send the person after logging out, one URI
-- per line, matched exactly like redirect URIs.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
