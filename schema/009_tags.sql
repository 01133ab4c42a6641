-- grasshopper schema 9: a test's tags and its command's own resources
-- (SPEC 6.3).
--
-- tags: the object of string values given at creation, '{}' when none.
-- GET /test?tag=K:V reads it with tags @> '{"K":"V"}', which the GIN index
-- answers (jsonb_path_ops: only @>, and smaller than the default class);
-- ?name=N reads (user_id, name, id DESC) in the list's own order.
-- user_cpu, system_cpu (seconds), max_rss (KiB): what wait4 said the
-- command used, NULL when the stop did not report it. Adding columns with
-- a constant default rewrites no row.
ALTER TABLE tests
	ADD COLUMN tags jsonb NOT NULL DEFAULT '{}'
		CHECK (jsonb_typeof(tags) = 'object'),
	ADD COLUMN user_cpu double precision CHECK (user_cpu >= 0),
	ADD COLUMN system_cpu double precision CHECK (system_cpu >= 0),
	ADD COLUMN max_rss bigint CHECK (max_rss >= 0);

CREATE INDEX tests_tags ON tests USING gin (tags jsonb_path_ops);
CREATE INDEX tests_user_name ON tests (user_id, name, id DESC);
