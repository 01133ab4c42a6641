-- grasshopper schema 10: the command's exit status (SPEC 6.3) and the
-- index of baselines (SPEC 6.4).
--
-- exit_status: the status the client exited with (the command's, or
-- 128+N for signal N), 0-255; NULL when the stop did not report it.
-- Adding a column without a default rewrites no row.
--
-- tests_baseline: GET /test/:id/baseline reads the caller's last N stopped
-- tests of one name and one branch tag below an id, newest first: one
-- range of this index, read in its order and cut after N entries, however
-- many tests the user has (bench/baseline.pl). The branch is the tag's
-- JSON value, 'null' when the test has none (a tag's value is always a
-- string, so 'null' is no branch's). Only stopped tests are in it. It
-- holds no column that usage_add updates (end_time was in an index's
-- predicate already, tests_user_active): a sample's update of the test's
-- row stays a HOT update (schema/007).
ALTER TABLE tests ADD COLUMN exit_status smallint
	CHECK (exit_status >= 0 AND exit_status <= 255);

CREATE INDEX tests_baseline ON tests
	(user_id, name, coalesce(tags -> 'branch', 'null'::jsonb), id DESC)
	WHERE end_time IS NOT NULL;
