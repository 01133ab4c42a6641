-- grasshopper: every function the database runs, and the triggers that
-- call them (the functions of values alone are in values.sql, the views
-- in views.sql).
--
-- `grasshopper-tracker init-db` applies, in this order: the migrations not
-- yet applied (schema/NNN_*.sql: tables and data only, each in its own
-- transaction), preceded by values.sql when there are any; then
-- values.sql, this file and views.sql, together with the grants to the
-- service's role, in one transaction. It applies a file of definitions
-- only when its text differs from the one it last applied (table
-- schema_defs keeps their md5) or a migration has run since, so an init-db
-- with nothing new changes no definition and takes no lock on a table. When it does
-- apply this file, the functions are replaced at once for every session
-- (no lock: a call under way finishes with the old text) and the triggers
-- take a SHARE ROW EXCLUSIVE lock on their table for the few milliseconds
-- the transaction lasts (writes wait; init-db gives up after lock_timeout
-- and is retried). Everything is CREATE OR REPLACE: what this file says is
-- what the database runs.
--
-- CREATE OR REPLACE cannot change a function's result type (OUT
-- parameters included) or argument types: such a change is a new function
-- under a new name — workers of the previous release still call the old
-- one during a rolling upgrade (docs/operations.md) — and a later
-- migration drops the old one.

-- ---- samples (usage_recent, usage_chunk: schema/004, schema/007) --------
--
-- A sample lands in usage_recent, one row each; at chunk_size() samples of
-- a test in usage_recent, and when a test stops, usage_pack moves them into
-- usage_chunk rows of up to chunk_size() samples as two sorted arrays.
-- Kept under the test's row lock, which usage_add and test_end take
-- (usage_pack runs under theirs, test_end's through the trigger
-- tests_pack_on_stop): a stored sample is in exactly one of usage_recent
-- and usage_chunk; tests.recent counts the test's rows in usage_recent.
-- The tables themselves refuse misshapen chunks and overlapping ones
-- (schema/007).

-- The chunk of p_test that can hold x: the first whose range ends at or
-- after x (chunks do not overlap, so no other can). x is inside it when
-- its first_ts <= x. No row when x is after every chunk.
CREATE OR REPLACE FUNCTION usage_chunk_at(p_test bigint, x timestamptz)
RETURNS SETOF usage_chunk
LANGUAGE sql STABLE AS $$
	SELECT * FROM usage_chunk u
	WHERE u.test_id = p_test AND u.last_ts >= x
	ORDER BY u.last_ts LIMIT 1
$$;

-- The cpu_usage stored for p_test at x, or NULL.
CREATE OR REPLACE FUNCTION usage_stored(p_test bigint, x timestamptz)
RETURNS double precision
LANGUAGE plpgsql STABLE AS $$
DECLARE
	c usage_chunk%ROWTYPE;
	v double precision;
BEGIN
	SELECT u.cpu_usage INTO v FROM usage_recent u
		WHERE u.test_id = p_test AND u.ts = x;
	IF FOUND THEN
		RETURN v;
	END IF;
	SELECT * INTO c FROM usage_chunk_at(p_test, x);
	IF FOUND AND c.first_ts <= x THEN
		RETURN c.cpu[array_position(c.ts, x)];
	END IF;
	RETURN NULL;
END
$$;

-- The stored samples of p_test just before and just after x, which is not
-- stored: prev (NULL if none), and nxt_ts, nxt_cpu (NULL if none).
CREATE OR REPLACE FUNCTION usage_around(p_test bigint, x timestamptz,
					OUT prev timestamptz,
					OUT nxt_ts timestamptz,
					OUT nxt_cpu double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	c usage_chunk%ROWTYPE;
	c_prev timestamptz;
	c_ts timestamptz;
	c_cpu double precision;
BEGIN
	SELECT max(u.ts) INTO prev FROM usage_recent u
		WHERE u.test_id = p_test AND u.ts < x;
	SELECT u.ts, u.cpu_usage INTO nxt_ts, nxt_cpu FROM usage_recent u
		WHERE u.test_id = p_test AND u.ts > x ORDER BY u.ts LIMIT 1;

	-- x is not stored, so no chunk begins or ends at it.
	SELECT * INTO c FROM usage_chunk_at(p_test, x);
	IF FOUND AND c.first_ts < x THEN
		-- x falls inside this chunk: both neighbours are in it.
		SELECT max(e) INTO c_prev FROM unnest(c.ts) AS e WHERE e < x;
		SELECT e.ts, e.cpu INTO c_ts, c_cpu
			FROM unnest(c.ts, c.cpu) AS e (ts, cpu)
			WHERE e.ts > x ORDER BY e.ts LIMIT 1;
	ELSE
		IF FOUND THEN
			c_ts := c.first_ts;
			c_cpu := c.cpu[1];
		END IF;
		SELECT max(u.last_ts) INTO c_prev FROM usage_chunk u
			WHERE u.test_id = p_test AND u.last_ts < x;
	END IF;

	prev := greatest(prev, c_prev);
	IF c_ts IS NOT NULL AND (nxt_ts IS NULL OR c_ts < nxt_ts) THEN
		nxt_ts := c_ts;
		nxt_cpu := c_cpu;
	END IF;
END
$$;

-- Move all of p_test's samples from usage_recent into chunks. A sample
-- inside an existing chunk's range (one that arrived late) is merged into
-- that chunk; the others are packed in ts order, never across an existing
-- chunk, so chunks stay disjoint. Caller holds the test's row lock.
--
-- One statement deletes the chunks it merges into and inserts their
-- replacements, which may have the same last_ts (the primary key) and
-- always cover the same time (the exclusion constraint). That is safe:
-- every sub-statement reads the same snapshot, so `placed` sees the chunks
-- as they were before any change; every row the INSERT writes comes out of
-- the window's sort of all the samples, which reads both DELETEs to their
-- end first, so no new chunk is written before the old ones it replaces
-- are deleted; and the checks of the primary key and of the exclusion
-- constraint take a row this transaction deleted as gone.
CREATE OR REPLACE FUNCTION usage_pack(p_test bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	WITH moved AS (
		DELETE FROM usage_recent u WHERE u.test_id = p_test
		RETURNING u.ts, u.cpu_usage, u.mem_usage
	), placed AS (
		-- home: the chunk holding m.ts's place, if any; else gap:
		-- the last chunk before m.ts (NULL before the first one).
		SELECT m.ts, m.cpu_usage, m.mem_usage, c.last_ts AS home,
		       (SELECT max(g.last_ts) FROM usage_chunk g
			WHERE g.test_id = p_test AND g.last_ts < m.ts) AS gap
		FROM moved m
		LEFT JOIN LATERAL usage_chunk_at(p_test, m.ts) c
			ON c.first_ts < m.ts
	), merged AS (
		DELETE FROM usage_chunk u
		WHERE u.test_id = p_test
		AND u.last_ts IN (SELECT p.home FROM placed p)
		RETURNING u.last_ts, u.ts, u.cpu, u.mem
	), samples AS (
		-- unnest pads a NULL mem (a chunk without memory) with NULLs.
		SELECT true AS inside, m.last_ts AS key, e.ts, e.cpu, e.mem
		FROM merged m, unnest(m.ts, m.cpu, m.mem) AS e (ts, cpu, mem)
		UNION ALL
		SELECT p.home IS NOT NULL, coalesce(p.home, p.gap),
		       p.ts, p.cpu_usage, p.mem_usage
		FROM placed p
	), numbered AS (
		SELECT s.*, row_number() OVER w - 1 AS i, count(*) OVER w AS n
		FROM samples s
		WINDOW w AS (PARTITION BY s.inside, s.key ORDER BY s.ts
			     ROWS BETWEEN UNBOUNDED PRECEDING
			     AND UNBOUNDED FOLLOWING)
	), pieces AS (
		-- n samples in ceil(n / chunk_size()) pieces of equal size (a
		-- chunk that grew to 121 becomes two of 60 and 61, not 120
		-- and 1).
		SELECT s.inside, s.key, s.ts, s.cpu, s.mem,
		       s.i * ((s.n + chunk_size() - 1) / chunk_size()) / s.n
			AS piece
		FROM numbered s
	)
	-- mem is NULL as a whole when no sample of the chunk has one.
	INSERT INTO usage_chunk (test_id, first_ts, last_ts, ts, cpu, mem)
	SELECT p_test, min(p.ts), max(p.ts), array_agg(p.ts ORDER BY p.ts),
	       array_agg(p.cpu ORDER BY p.ts),
	       CASE WHEN count(p.mem) > 0 THEN array_agg(p.mem ORDER BY p.ts)
	       END
	FROM pieces p
	GROUP BY p.inside, p.key, p.piece;

	UPDATE tests SET recent = 0 WHERE id = p_test;
END
$$;

-- Store samples (p_ts[i], p_cpu[i], p_mem[i]) for a test of p_user, in one
-- transaction (p_mem NULL, or NULL entries: samples without memory):
-- checks ownership, skips samples already stored (same
-- timestamp), keeps the test's figures exact whatever the order samples
-- arrive in.
--   status: 'ok', 'not_found' or 'test_stopped' (nothing stored then)
--   stored: how many samples were new
--   above:  whether the stored sample at p_ts[n] (the last) is above
--           threshold
--
-- time_above_threshold = sum over samples above threshold of
-- gap(previous sample or start_time, sample). Inserting s between p and n
-- adds gap(p, s) if s is above, and if n is above replaces gap(p, n) by
-- gap(s, n).
--
-- One sample after everything stored, for a running test (what a client
-- sends all along), is one UPDATE and one INSERT; otherwise a repeat is
-- looked for in the chunks too, neighbours come from usage_around, and the
-- last sample's above is known without a look-up when it was just stored.
-- At chunk_size() samples in usage_recent, or for a stopped test, they are
-- packed. It locks exactly one row of tests, p_test's (fcgi/db.c orders a
-- transaction's calls by test id, so two never wait on each other).
CREATE OR REPLACE FUNCTION usage_add_mem(p_user bigint, p_test bigint,
					 p_ts timestamptz[],
					 p_cpu double precision[],
					 p_mem double precision[],
					 OUT status text, OUT stored integer,
					 OUT above boolean)
LANGUAGE plpgsql AS $$
DECLARE
	t tests%ROWTYPE;
	n integer := coalesce(array_length(p_ts, 1), 0);
	i integer;
	a record;
	d_above bigint := 0;
	d_sum double precision := 0;
	d_max double precision;
	d_mem_n bigint := 0;
	d_mem_sum double precision := 0;
	d_mem_max double precision;
	d_last timestamptz;
	now_recent integer;
BEGIN
	stored := 0;
	IF n = 1 THEN
		-- The UPDATE locks the row; under concurrent updates its WHERE
		-- is checked again on the latest version.
		UPDATE tests u SET samples = u.samples + 1,
			cpu_sum = u.cpu_sum + p_cpu[1],
			cpu_max = greatest(u.cpu_max, p_cpu[1]),
			mem_samples = u.mem_samples
				+ (p_mem[1] IS NOT NULL)::integer,
			mem_sum = u.mem_sum + coalesce(p_mem[1], 0),
			mem_max = greatest(u.mem_max, p_mem[1]),
			above_us = u.above_us + CASE
				WHEN p_cpu[1] > u.threshold THEN gap_us(
					coalesce(u.last_ts, u.start_time),
					p_ts[1])
				ELSE 0 END,
			last_ts = p_ts[1],
			recent = u.recent + 1
		WHERE u.id = p_test AND u.user_id = p_user
		AND u.end_time IS NULL
		AND (u.last_ts IS NULL OR u.last_ts < p_ts[1])
		RETURNING u.recent, p_cpu[1] > u.threshold
		INTO now_recent, above;
		IF FOUND THEN
			INSERT INTO usage_recent (test_id, ts, cpu_usage,
						  mem_usage)
				VALUES (p_test, p_ts[1], p_cpu[1], p_mem[1]);
			IF now_recent >= chunk_size() THEN
				PERFORM usage_pack(p_test);
			END IF;
			stored := 1;
			status := 'ok';
			RETURN;
		END IF;
	END IF;

	SELECT * INTO t FROM tests WHERE id = p_test AND user_id = p_user
		FOR UPDATE;
	IF NOT FOUND THEN
		status := 'not_found';
		RETURN;
	END IF;

	-- A stopped test takes only samples up to its end (retries of samples
	-- it already has are fine).
	IF t.end_time IS NOT NULL AND EXISTS (
		SELECT 1 FROM unnest(p_ts) AS x (ts)
		WHERE x.ts > t.end_time AND usage_stored(p_test, x.ts) IS NULL)
	THEN
		status := 'test_stopped';
		RETURN;
	END IF;

	d_last := t.last_ts;
	FOR i IN 1 .. n LOOP
		IF d_last IS NULL OR p_ts[i] > d_last THEN
			-- In order (the usual case): nothing stored at or
			-- after it.
			INSERT INTO usage_recent (test_id, ts, cpu_usage,
						  mem_usage)
				VALUES (p_test, p_ts[i], p_cpu[i], p_mem[i]);
			IF p_cpu[i] > t.threshold THEN
				d_above := d_above +
					gap_us(coalesce(d_last, t.start_time),
					       p_ts[i]);
			END IF;
			d_last := p_ts[i];
		ELSE
			CONTINUE WHEN usage_stored(p_test, p_ts[i]) IS NOT NULL;
			a := usage_around(p_test, p_ts[i]);
			INSERT INTO usage_recent (test_id, ts, cpu_usage,
						  mem_usage)
				VALUES (p_test, p_ts[i], p_cpu[i], p_mem[i]);
			IF p_cpu[i] > t.threshold THEN
				d_above := d_above +
					gap_us(coalesce(a.prev, t.start_time),
					       p_ts[i]);
			END IF;
			IF a.nxt_ts IS NOT NULL AND a.nxt_cpu > t.threshold
			THEN
				d_above := d_above + gap_us(p_ts[i], a.nxt_ts)
					- gap_us(coalesce(a.prev, t.start_time),
						 a.nxt_ts);
			END IF;
		END IF;
		stored := stored + 1;
		d_sum := d_sum + p_cpu[i];
		d_max := greatest(d_max, p_cpu[i]);
		IF p_mem[i] IS NOT NULL THEN
			d_mem_n := d_mem_n + 1;
			d_mem_sum := d_mem_sum + p_mem[i];
			d_mem_max := greatest(d_mem_max, p_mem[i]);
		END IF;
		IF i = n THEN
			above := p_cpu[i] > t.threshold;
		END IF;
	END LOOP;

	IF stored > 0 THEN
		UPDATE tests SET samples = samples + stored,
			cpu_sum = cpu_sum + d_sum,
			cpu_max = greatest(cpu_max, d_max),
			mem_samples = mem_samples + d_mem_n,
			mem_sum = mem_sum + d_mem_sum,
			mem_max = greatest(mem_max, d_mem_max),
			above_us = above_us + d_above,
			last_ts = d_last,
			recent = recent + stored
		WHERE id = p_test;
		IF t.recent + stored >= chunk_size()
		   OR t.end_time IS NOT NULL THEN
			PERFORM usage_pack(p_test);
		END IF;
	END IF;

	IF above IS NULL AND n > 0 THEN
		-- The last sample was a repeat: what is stored decides.
		above := usage_stored(p_test, p_ts[n]) > t.threshold;
	END IF;
	status := 'ok';
END
$$;

-- usage_add of schemas 1-7, samples without memory: the workers of the
-- previous release call it during a rolling upgrade. Drop it in a later
-- release.
CREATE OR REPLACE FUNCTION usage_add(p_user bigint, p_test bigint,
				     p_ts timestamptz[],
				     p_cpu double precision[],
				     OUT status text, OUT stored integer,
				     OUT above boolean)
LANGUAGE sql AS $$
	SELECT * FROM usage_add_mem(p_user, p_test, p_ts, p_cpu, NULL)
$$;

-- Up to p_limit samples of p_test after p_after (all when NULL), oldest
-- first, with their mem_usage (NULL where a sample has none). Reads only the chunks that can hold them: walks the chunks in
-- order, counting, until p_limit samples are certain.
CREATE OR REPLACE FUNCTION usage_read_mem(p_test bigint,
					  p_after timestamptz,
					  p_limit integer)
RETURNS TABLE (ts timestamptz, cpu_usage double precision,
	       mem_usage double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	after timestamptz := coalesce(p_after, '-infinity');
	c record;
	have bigint := 0;
	upto timestamptz := 'infinity';
BEGIN
	FOR c IN SELECT u.first_ts, u.last_ts, u.ts FROM usage_chunk u
		WHERE u.test_id = p_test AND u.last_ts > after
		ORDER BY u.last_ts
	LOOP
		IF c.first_ts > after THEN
			have := have + cardinality(c.ts);
		ELSE
			have := have + (SELECT count(*) FROM unnest(c.ts) e
					WHERE e > after);
		END IF;
		IF have >= p_limit THEN
			upto := c.last_ts;
			EXIT;
		END IF;
	END LOOP;

	RETURN QUERY
	SELECT s.ts, s.cpu_usage, s.mem_usage FROM (
		(SELECT u.ts, u.cpu_usage, u.mem_usage FROM usage_recent u
		 WHERE u.test_id = p_test AND u.ts > after
		 ORDER BY u.ts LIMIT p_limit)
		UNION ALL
		SELECT e.ts, e.cpu, e.mem
		FROM usage_chunk u,
		     unnest(u.ts, u.cpu, u.mem) AS e (ts, cpu, mem)
		WHERE u.test_id = p_test AND u.last_ts > after
		AND u.last_ts <= upto AND e.ts > after
	) s
	ORDER BY s.ts LIMIT p_limit;
END
$$;

-- usage_read of schemas 4-7, without memory: the workers of the previous
-- release call it during a rolling upgrade. Drop it in a later release.
CREATE OR REPLACE FUNCTION usage_read(p_test bigint, p_after timestamptz,
				      p_limit integer)
RETURNS TABLE (ts timestamptz, cpu_usage double precision)
LANGUAGE sql STABLE AS $$
	SELECT r.ts, r.cpu_usage FROM usage_read_mem(p_test, p_after, p_limit) r
$$;

-- ---- tests ----------------------------------------------------------------

-- The new test's row, or no row when p_user already has p_max_active
-- active tests (SPEC 6.1). A user that no longer exists: the INSERT fails
-- on the foreign key (23503), as a plain INSERT did. The count reads the
-- partial index tests_user_active (schema/006), which holds only active
-- tests. p_tags: the test's tags (schema/009).
CREATE OR REPLACE FUNCTION test_create_tagged(p_user bigint, p_name text,
					      p_description text,
					      p_threshold double precision,
					      p_start timestamptz,
					      p_max_active integer,
					      p_tags jsonb)
RETURNS SETOF tests
LANGUAGE plpgsql AS $$
BEGIN
	-- FOR NO KEY UPDATE waits only for another such lock (or a write
	-- of the user's row): the foreign keys' KEY SHARE locks of other
	-- requests go on. Each statement after it sees what the creates it
	-- waited for committed (READ COMMITTED takes a snapshot each), so two
	-- creates of one user at once never both see room for one more.
	PERFORM 1 FROM users WHERE id = p_user FOR NO KEY UPDATE;
	IF (SELECT count(*) FROM (SELECT 1 FROM tests
				  WHERE user_id = p_user AND end_time IS NULL
				  LIMIT p_max_active) a) >= p_max_active THEN
		RETURN;
	END IF;
	RETURN QUERY
	INSERT INTO tests (user_id, name, description, threshold, start_time,
			   tags)
	VALUES (p_user, p_name, p_description, p_threshold, p_start, p_tags)
	RETURNING *;
END
$$;

-- test_create of schemas 6-8, without tags: the workers of the previous
-- release call it during a rolling upgrade. Drop it in a later release.
CREATE OR REPLACE FUNCTION test_create(p_user bigint, p_name text,
				       p_description text,
				       p_threshold double precision,
				       p_start timestamptz,
				       p_max_active integer)
RETURNS SETOF tests
LANGUAGE sql AS $$
	SELECT * FROM test_create_tagged(p_user, p_name, p_description,
					 p_threshold, p_start, p_max_active,
					 '{}')
$$;

-- p_user's tests below id p_before (NULL: from the newest), newest first,
-- p_limit + 1 of them, of name p_name and holding tags p_tags (each NULL:
-- any) (GET /test?name=N&tag=K:V, schema/009). Planned at each call with
-- the values (EXECUTE): only then does the planner weigh how common the
-- tags are, reading tests_tags (GIN) for a rare one and the user's or the
-- name's tests in order (tests_user_name) for a common one. A prepared
-- statement settles on one generic plan for both, which was up to 300
-- times slower for the other kind at 100 000 tests (bench/tags-filter.pl).
CREATE OR REPLACE FUNCTION test_list_filtered(p_user bigint, p_before bigint,
					      p_limit integer, p_name text,
					      p_tags jsonb)
RETURNS SETOF tests
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN QUERY EXECUTE
		'SELECT * FROM tests WHERE user_id = $1'
		|| CASE WHEN p_name IS NULL THEN '' ELSE ' AND name = $4' END
		|| CASE WHEN p_tags IS NULL THEN '' ELSE ' AND tags @> $5' END
		|| ' AND id < coalesce($2, 9223372036854775807)'
		|| ' ORDER BY id DESC LIMIT $3 + 1'
		USING p_user, p_before, p_limit, p_name, p_tags;
END
$$;

-- Stop p_user's test p_test at p_end (POST /test/:id/stop, in one call):
--   status: 'ok', 'not_found', 'already_stopped' or 'before_start'
--   test:   the test's row after the call (NULL when 'not_found')
-- p_user_cpu, p_system_cpu, p_max_rss: the command's own resources
-- (schema/009), p_exit_status the status the client exited with
-- (schema/010); each NULL when not reported.
CREATE OR REPLACE FUNCTION test_finish_exit(p_user bigint, p_test bigint,
					    p_end timestamptz,
					    p_user_cpu double precision,
					    p_system_cpu double precision,
					    p_max_rss bigint,
					    p_exit_status smallint,
					    OUT status text, OUT test tests)
LANGUAGE plpgsql AS $$
BEGIN
	SELECT * INTO test FROM tests t
		WHERE t.id = p_test AND t.user_id = p_user FOR UPDATE;
	IF NOT FOUND THEN
		status := 'not_found';
		RETURN;
	ELSIF test.end_time IS NOT NULL THEN
		status := 'already_stopped';
		RETURN;
	ELSIF p_end < test.start_time THEN
		status := 'before_start';
		RETURN;
	END IF;
	-- The trigger tests_pack_on_stop packs its samples, then the row is
	-- read as it ends up.
	UPDATE tests t SET end_time = p_end, user_cpu = p_user_cpu,
		system_cpu = p_system_cpu, max_rss = p_max_rss,
		exit_status = p_exit_status
	WHERE t.id = p_test;
	SELECT * INTO test FROM tests t WHERE t.id = p_test;
	status := 'ok';
END
$$;

-- test_finish of schema 9, without the exit status: the workers of the
-- previous release call it during a rolling upgrade. Drop it in a later
-- release.
CREATE OR REPLACE FUNCTION test_finish(p_user bigint, p_test bigint,
				       p_end timestamptz,
				       p_user_cpu double precision,
				       p_system_cpu double precision,
				       p_max_rss bigint,
				       OUT status text, OUT test tests)
LANGUAGE sql AS $$
	SELECT * FROM test_finish_exit(p_user, p_test, p_end, p_user_cpu,
				       p_system_cpu, p_max_rss, NULL)
$$;

-- test_end of schemas 7-8, without the command's resources: the workers
-- of the previous release call it during a rolling upgrade. Drop it in a
-- later release.
CREATE OR REPLACE FUNCTION test_end(p_user bigint, p_test bigint,
				    p_end timestamptz,
				    OUT status text, OUT test tests)
LANGUAGE sql AS $$
	SELECT * FROM test_finish_exit(p_user, p_test, p_end, NULL, NULL, NULL,
				       NULL)
$$;

-- test_stop of schemas 1-6, which answered only test_end's status: the
-- workers of the previous release call it during a rolling upgrade.
-- Drop it in a later release.
CREATE OR REPLACE FUNCTION test_stop(p_user bigint, p_test bigint,
				     p_end timestamptz)
RETURNS text
LANGUAGE sql AS $$
	SELECT status FROM test_end(p_user, p_test, p_end)
$$;

-- The baseline of p_user's test p_test (GET /test/:id/baseline, SPEC
-- 6.4): p_user's last p_runs stopped tests below it of its name and its
-- branch tag (or none, when it has none), and the median of each figure
-- over those of them that have it (NULL when none has; percentile_cont:
-- the mean of the middle two of an even count). runs: their ids as a JSON
-- array, newest first. No row when p_user has no test p_test. Times in
-- seconds, usages as fractions, max_rss in KiB, as the test object has
-- them. The runs are one range of tests_baseline (schema/010), found from
-- the test's own row whatever plan the statement settles on: the same few
-- index entries at 100 tests or 100 000 (bench/baseline.pl).
CREATE OR REPLACE FUNCTION test_baseline(p_user bigint, p_test bigint,
					 p_runs integer)
RETURNS TABLE (runs json, duration double precision,
	       time_above_threshold double precision,
	       max_cpu_usage double precision,
	       mean_cpu_usage double precision,
	       max_mem_usage double precision,
	       user_cpu double precision, system_cpu double precision,
	       max_rss double precision)
LANGUAGE sql STABLE AS $$
	SELECT coalesce(json_agg(b.id ORDER BY b.id DESC)
			FILTER (WHERE b.id IS NOT NULL), '[]'),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY
			(ts_us(b.end_time) - ts_us(b.start_time))::float8 / 1e6),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY b.above_us::float8 / 1e6),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY b.cpu_max),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY
			b.cpu_sum / nullif(b.samples, 0)),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY b.mem_max),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY b.user_cpu),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY b.system_cpu),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY b.max_rss)
	FROM tests t
	LEFT JOIN LATERAL (
		SELECT * FROM tests r
		WHERE r.user_id = t.user_id AND r.name = t.name
		  AND coalesce(r.tags -> 'branch', 'null'::jsonb)
		      = coalesce(t.tags -> 'branch', 'null'::jsonb)
		  AND r.end_time IS NOT NULL AND r.id < t.id
		ORDER BY r.id DESC LIMIT p_runs) b ON true
	WHERE t.id = p_test AND t.user_id = p_user
	GROUP BY t.id
$$;

-- A test that stops packs what it has in usage_recent, whoever stops it
-- (test_end, or an admin's UPDATE), under the lock the UPDATE holds.
CREATE OR REPLACE FUNCTION tests_pack_on_stop() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM usage_pack(NEW.id);
	RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER tests_pack_on_stop
	AFTER UPDATE OF end_time ON tests FOR EACH ROW
	WHEN (OLD.end_time IS NULL AND NEW.end_time IS NOT NULL
	      AND NEW.recent > 0)
	EXECUTE FUNCTION tests_pack_on_stop();

-- ---- tokens that can be taken back (SPEC 6.2, schema/005) -----------------
--
-- Every token the service signs carries jti = the id of its row in tokens;
-- a token is valid while its row exists (and has not expired). Revoking is
-- deleting rows. The workers cache "valid" for up to a minute and learn of
-- every revocation through NOTIFY grasshopper_revoke (payload: the user
-- id), sent by the triggers below; docs/architecture.md has the whole
-- picture.

-- Tell every worker that tokens of these users may have stopped working.
CREATE OR REPLACE FUNCTION revoke_notify_tokens() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('grasshopper_revoke', user_id::text)
	FROM (SELECT DISTINCT user_id FROM gone) g;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER tokens_revoke_notify AFTER DELETE ON tokens
	REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION revoke_notify_tokens();

CREATE OR REPLACE FUNCTION revoke_notify_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('grasshopper_revoke', OLD.id::text);
	RETURN NULL;
END $$;
-- A deleted user (their rows go by cascade, but legacy tokens have none),
-- and the end of a user's legacy tokens.
CREATE OR REPLACE TRIGGER users_revoke_notify_delete AFTER DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION revoke_notify_user();
CREATE OR REPLACE TRIGGER users_revoke_notify_legacy
	AFTER UPDATE OF legacy_tokens ON users FOR EACH ROW
	WHEN (OLD.legacy_tokens AND NOT NEW.legacy_tokens)
	EXECUTE FUNCTION revoke_notify_user();

-- Is the token (p_user, p_jti) valid now? p_jti NULL: a legacy token.
-- Keeps last_used_at to the minute: it writes only when the stored minute
-- is older than this one, so at most once a minute per token and worker
-- (each worker asks at most once a minute; docs/architecture.md).
CREATE OR REPLACE FUNCTION token_check(p_user bigint, p_jti bigint)
RETURNS boolean
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
CREATE OR REPLACE FUNCTION session_create(p_user bigint,
					  p_expires timestamptz,
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
CREATE OR REPLACE FUNCTION token_create(p_user bigint, p_name text,
					p_expires timestamptz,
					p_max integer,
					OUT status text, OUT id bigint,
					OUT created_us bigint,
					OUT expires_us bigint)
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
CREATE OR REPLACE FUNCTION user_revoke_all(p_user bigint) RETURNS void
LANGUAGE sql AS $$
	DELETE FROM tokens WHERE user_id = p_user;
	UPDATE users SET legacy_tokens = false
	WHERE id = p_user AND legacy_tokens;
$$;

-- Change the password if it is still p_old (compare and set: a concurrent
-- change wins once), and revoke every token. Return whether it changed.
CREATE OR REPLACE FUNCTION user_password_set(p_user bigint, p_old text,
					     p_new text)
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
