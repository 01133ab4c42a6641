-- grasshopper schema 6: at most so many active tests per user (SPEC 6.1).
--
-- test_create counts the user's active (not stopped) tests and inserts the
-- new one only below the limit, both under the user's row lock, so that
-- two creates of one user at once never both see room for one more; the
-- count reads the partial index below, which holds only active tests.

CREATE INDEX tests_user_active ON tests (user_id) WHERE end_time IS NULL;

-- The new test's row, or no row when p_user already has p_max_active
-- active tests. A user that no longer exists: the INSERT fails on the
-- foreign key (23503), as a plain INSERT did.
CREATE FUNCTION test_create(p_user bigint, p_name text, p_description text,
			    p_threshold double precision,
			    p_start timestamptz, p_max_active integer)
RETURNS SETOF tests
LANGUAGE plpgsql AS $$
BEGIN
	-- FOR NO KEY UPDATE waits only for another such lock (or a write
	-- of the user's row): the foreign keys' KEY SHARE locks of other
	-- requests go on. Each statement after it sees what the creates it
	-- waited for committed (READ COMMITTED takes a snapshot each).
	PERFORM 1 FROM users WHERE id = p_user FOR NO KEY UPDATE;
	IF (SELECT count(*) FROM (SELECT 1 FROM tests
				  WHERE user_id = p_user AND end_time IS NULL
				  LIMIT p_max_active) a) >= p_max_active THEN
		RETURN;
	END IF;
	RETURN QUERY
	INSERT INTO tests (user_id, name, description, threshold, start_time)
	VALUES (p_user, p_name, p_description, p_threshold, p_start)
	RETURNING *;
END
$$;
