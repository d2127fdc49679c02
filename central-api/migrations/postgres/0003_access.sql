-- Administrator access (issue 8), PostgreSQL flavour. Keep in step with ../sqlite/0003_access.sql.
-- Roles: root (every site), admin (manages its sites), viewer (reads its sites). Sites are granted in admin_sites.

CREATE TABLE admin_sites (
    username TEXT NOT NULL REFERENCES admins (username) ON DELETE CASCADE,
    site_id  TEXT NOT NULL REFERENCES sites (site_id),
    PRIMARY KEY (username, site_id)
);

-- Web sessions. Only the SHA-256 of the cookie's secret is stored; the CSRF token is sent back with state-changing
-- requests in the X-CSRF-Token header.
CREATE TABLE admin_sessions (
    session_hash BYTEA PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES admins (username) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_sessions_user ON admin_sessions (username);

-- API bearer tokens of administrators (`adm_<token_id>_<64 hex>`); only the SHA-256 of the secret is stored.
CREATE TABLE admin_tokens (
    token_id   TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES admins (username) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL,
    label      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX admin_tokens_user ON admin_tokens (username);
CREATE INDEX all_logs_site_id ON all_logs (site_id, id);
