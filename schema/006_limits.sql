-- grasshopper schema 6: at most so many active tests per user (SPEC 6.1).
--
-- test_create counts the user's active (not stopped) tests and inserts the
-- new one only below the limit, both under the user's row lock, so that
-- two creates of one user at once never both see room for one more; the
-- count reads the partial index below, which holds only active tests
-- (test_create is in functions.sql).

CREATE INDEX tests_user_active ON tests (user_id) WHERE end_time IS NULL;
