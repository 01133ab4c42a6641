-- grasshopper schema 5: tokens that can be taken back (SPEC 6.2).
--
-- Every token the service signs carries jti = the id of its row here; a
-- token is valid while its row exists (and has not expired). Revoking is
-- deleting rows. The workers cache "valid" for up to a minute and learn of
-- every revocation through NOTIFY grasshopper_revoke (payload: the user id),
-- sent by triggers; docs/architecture.md has the whole picture. The
-- functions and triggers are in functions.sql.

CREATE TABLE tokens (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	-- NULL for a session (POST /auth); a name for POST /tokens.
	name text CHECK (char_length(name) BETWEEN 1 AND 64),
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	last_used_at timestamptz -- to the minute (token_check)
);
CREATE INDEX tokens_user_newest ON tokens (user_id, id DESC);

-- Tokens signed before this schema have no jti: they stay valid while their
-- user exists and has neither logged out everywhere nor changed the
-- password since. Users made from now on never had such tokens.
ALTER TABLE users ADD COLUMN legacy_tokens boolean NOT NULL DEFAULT true;
ALTER TABLE users ALTER COLUMN legacy_tokens SET DEFAULT false;
