-- grasshopper schema 5: tokens that can be taken back (SPEC 6.2).
--
-- Every token the service signs carries jti = the id of its row here; a
-- token is valid while its row exists (and has not expired). Revoking is
-- deleting rows. The workers cache "valid" for up to a minute and learn of
-- every revocation through NOTIFY grasshopper_revoke (payload: the user id),
-- sent by the triggers below; docs/architecture.md has the whole picture.

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

-- Tell every worker that tokens of these users may have stopped working.
CREATE FUNCTION revoke_notify_tokens() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('grasshopper_revoke', user_id::text)
	FROM (SELECT DISTINCT user_id FROM gone) g;
	RETURN NULL;
END $$;

CREATE TRIGGER tokens_revoke_notify AFTER DELETE ON tokens
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION revoke_notify_tokens();

CREATE FUNCTION revoke_notify_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('grasshopper_revoke', OLD.id::text);
	RETURN NULL;
END $$;

-- A deleted user (their rows go by cascade, but legacy tokens have none),
-- and the end of a user's legacy tokens.
CREATE TRIGGER users_revoke_notify_delete AFTER DELETE ON users
FOR EACH ROW EXECUTE FUNCTION revoke_notify_user();
CREATE TRIGGER users_revoke_notify_legacy AFTER UPDATE OF legacy_tokens
ON users FOR EACH ROW
WHEN (OLD.legacy_tokens AND NOT NEW.legacy_tokens)
EXECUTE FUNCTION revoke_notify_user();

-- Is the token (p_user, p_jti) valid now? p_jti NULL: a legacy token.
-- Keeps last_used_at to the minute: it writes only when the stored minute
-- is older than this one, so at most once a minute per token and worker
-- (each worker asks at most once a minute; docs/architecture.md).
CREATE FUNCTION token_check(p_user bigint, p_jti bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	minute timestamptz := date_trunc('minute', now());
BEGIN
	IF p_jti IS NULL THEN
		RETURN coalesce((SELECT legacy_tokens FROM users
				 WHERE id = p_user), false);
	END IF;
	UPDATE tokens SET last_used_at = minute
	WHERE id = p_jti AND user_id = p_user AND expires_at > now()
	  AND (last_used_at IS NULL OR last_used_at < minute);
	RETURN FOUND OR EXISTS (SELECT 1 FROM tokens
				WHERE id = p_jti AND user_id = p_user
				  AND expires_at > now());
END $$;

-- A session row for a login that expires at p_expires. Also drops the
-- user's expired rows and all but the newest p_keep sessions.
CREATE FUNCTION session_create(p_user bigint, p_expires timestamptz,
			       p_keep integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	new_id bigint;
BEGIN
	DELETE FROM tokens WHERE user_id = p_user AND expires_at <= now();
	INSERT INTO tokens (user_id, expires_at) VALUES (p_user, p_expires)
	RETURNING id INTO new_id;
	DELETE FROM tokens WHERE id IN (
		SELECT id FROM tokens WHERE user_id = p_user AND name IS NULL
		ORDER BY id DESC OFFSET p_keep);
	RETURN new_id;
END $$;

-- A named token, unless the user has p_max live ones already.
--   status: 'ok', 'too_many' or 'no_user' (the rest NULL then)
CREATE FUNCTION token_create(p_user bigint, p_name text,
			     p_expires timestamptz, p_max integer,
			     OUT status text, OUT id bigint,
			     OUT created_us bigint, OUT expires_us bigint)
LANGUAGE plpgsql AS $$
BEGIN
	-- Two creations at once must not both see 99: one waits here.
	PERFORM 1 FROM users WHERE users.id = p_user FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		status := 'no_user';
		RETURN;
	END IF;
	IF (SELECT count(*) FROM tokens t WHERE t.user_id = p_user
	    AND t.name IS NOT NULL AND t.expires_at > now()) >= p_max THEN
		status := 'too_many';
		RETURN;
	END IF;
	INSERT INTO tokens (user_id, name, expires_at)
	VALUES (p_user, p_name, p_expires)
	RETURNING tokens.id, ts_us(tokens.created_at), ts_us(tokens.expires_at)
	INTO id, created_us, expires_us;
	status := 'ok';
END $$;

-- Log out everywhere: every token of the user stops working.
CREATE FUNCTION user_revoke_all(p_user bigint) RETURNS void
LANGUAGE sql AS $$
	DELETE FROM tokens WHERE user_id = p_user;
	UPDATE users SET legacy_tokens = false
	WHERE id = p_user AND legacy_tokens;
$$;

-- Change the password if it is still p_old (compare and set: a concurrent
-- change wins once), and revoke every token. Return whether it changed.
CREATE FUNCTION user_password_set(p_user bigint, p_old text, p_new text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE users SET password_hash = p_new
	WHERE id = p_user AND password_hash = p_old;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM user_revoke_all(p_user);
	RETURN true;
END $$;
