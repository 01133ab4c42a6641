-- grasshopper schema 4: samples packed 120 to a row.
--
-- One row per sample cost 84 bytes on disk: a 24-byte tuple header and a
-- 4-byte line pointer for 24 bytes of data, and a primary-key entry of about
-- 32. Now a sample lands in usage_recent (the old table, one row per sample:
-- cheap to insert, to skip as a repeat and to find neighbours in), and every
-- 120 samples of a test, and when a test stops, usage_pack moves them into
-- usage_chunk: one row holding up to 120 samples as two arrays, about 19
-- bytes per sample. 120 keeps a chunk (2 016 bytes) just under the size at
-- which PostgreSQL would compress it or move it out of line, so four fill a
-- page. Everything else sees the samples through the view usage (test_id,
-- ts, cpu_usage), as before.
--
-- Invariants, kept under the test's row lock that usage_add and test_stop
-- take (usage_pack runs under theirs, test_stop's through the trigger
-- tests_pack_on_stop): a stored sample is in exactly one of
-- usage_recent and usage_chunk; a chunk's arrays are sorted by ts, with
-- first_ts and last_ts their ends; the chunks of a test do not overlap.

ALTER TABLE usage RENAME TO usage_recent;
ALTER TABLE usage_recent RENAME CONSTRAINT usage_pkey TO usage_recent_pkey;
ALTER TABLE usage_recent RENAME CONSTRAINT usage_cpu_usage_check
	TO usage_recent_cpu_usage_check;
-- No foreign key: only usage_add writes here, holding the test's row lock
-- (a deleted test is not found), and tests_delete_samples below deletes a
-- test's samples with it. Checking the key was 13 % of usage_add's time.
ALTER TABLE usage_recent DROP CONSTRAINT usage_test_id_fkey;

CREATE TABLE usage_chunk (
	test_id bigint NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
	first_ts timestamptz NOT NULL,
	last_ts timestamptz NOT NULL,
	ts timestamptz[] NOT NULL,
	cpu double precision[] NOT NULL,
	PRIMARY KEY (test_id, last_ts),
	CHECK (first_ts <= last_ts),
	CHECK (cardinality(ts) BETWEEN 1 AND 120
	       AND cardinality(cpu) = cardinality(ts))
);

-- Samples of the test in usage_recent (usage_add packs them at 120).
ALTER TABLE tests ADD COLUMN recent integer NOT NULL DEFAULT 0;

CREATE FUNCTION tests_delete_samples() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM usage_recent WHERE test_id = OLD.id;
	RETURN OLD;
END
$$;
CREATE TRIGGER tests_delete_samples BEFORE DELETE ON tests
	FOR EACH ROW EXECUTE FUNCTION tests_delete_samples();

CREATE VIEW usage AS
SELECT test_id, ts, cpu_usage FROM usage_recent
UNION ALL
SELECT c.test_id, s.ts, s.cpu_usage
FROM usage_chunk c, unnest(c.ts, c.cpu) AS s (ts, cpu_usage);

-- The chunk of p_test that can hold x: the first whose range ends at or
-- after x (chunks do not overlap, so no other can). x is inside it when
-- its first_ts <= x. No row when x is after every chunk.
CREATE FUNCTION usage_chunk_at(p_test bigint, x timestamptz)
RETURNS SETOF usage_chunk
LANGUAGE sql STABLE AS $$
	SELECT * FROM usage_chunk u
	WHERE u.test_id = p_test AND u.last_ts >= x
	ORDER BY u.last_ts LIMIT 1
$$;

-- The cpu_usage stored for p_test at x, or NULL.
CREATE FUNCTION usage_stored(p_test bigint, x timestamptz)
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
CREATE FUNCTION usage_around(p_test bigint, x timestamptz,
			     OUT prev timestamptz, OUT nxt_ts timestamptz,
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
CREATE FUNCTION usage_pack(p_test bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	WITH moved AS (
		DELETE FROM usage_recent u WHERE u.test_id = p_test
		RETURNING u.ts, u.cpu_usage
	), placed AS (
		-- home: the chunk holding m.ts's place, if any; else gap:
		-- the last chunk before m.ts (NULL before the first one).
		SELECT m.ts, m.cpu_usage, c.last_ts AS home,
		       (SELECT max(g.last_ts) FROM usage_chunk g
			WHERE g.test_id = p_test AND g.last_ts < m.ts) AS gap
		FROM moved m
		LEFT JOIN LATERAL usage_chunk_at(p_test, m.ts) c
			ON c.first_ts < m.ts
	), merged AS (
		DELETE FROM usage_chunk u
		WHERE u.test_id = p_test
		AND u.last_ts IN (SELECT p.home FROM placed p)
		RETURNING u.last_ts, u.ts, u.cpu
	), samples AS (
		SELECT true AS inside, m.last_ts AS key, e.ts, e.cpu
		FROM merged m, unnest(m.ts, m.cpu) AS e (ts, cpu)
		UNION ALL
		SELECT p.home IS NOT NULL, coalesce(p.home, p.gap),
		       p.ts, p.cpu_usage
		FROM placed p
	), numbered AS (
		SELECT s.*, row_number() OVER w - 1 AS i, count(*) OVER w AS n
		FROM samples s
		WINDOW w AS (PARTITION BY s.inside, s.key ORDER BY s.ts
			     ROWS BETWEEN UNBOUNDED PRECEDING
			     AND UNBOUNDED FOLLOWING)
	), pieces AS (
		-- n samples in ceil(n / 120) pieces of equal size (a chunk
		-- that grew to 121 becomes two of 60 and 61, not 120 and 1).
		SELECT s.inside, s.key, s.ts, s.cpu,
		       s.i * ((s.n + 119) / 120) / s.n AS piece
		FROM numbered s
	)
	INSERT INTO usage_chunk (test_id, first_ts, last_ts, ts, cpu)
	SELECT p_test, min(p.ts), max(p.ts), array_agg(p.ts ORDER BY p.ts),
	       array_agg(p.cpu ORDER BY p.ts)
	FROM pieces p
	GROUP BY p.inside, p.key, p.piece;

	UPDATE tests SET recent = 0 WHERE id = p_test;
END
$$;

-- usage_add of schema 1, for packed samples: one sample after everything
-- stored, for a running test (what a client sends all along), is one UPDATE
-- and one INSERT; otherwise a repeat is looked for in the chunks too,
-- neighbours come from usage_around, and the last sample's above_threshold
-- is known without a look-up when it was just stored. At 120 samples in
-- usage_recent, or for a stopped test, they are packed.
CREATE OR REPLACE FUNCTION usage_add(p_user bigint, p_test bigint,
				     p_ts timestamptz[],
				     p_cpu double precision[],
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
			INSERT INTO usage_recent (test_id, ts, cpu_usage)
				VALUES (p_test, p_ts[1], p_cpu[1]);
			IF now_recent >= 120 THEN
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
			INSERT INTO usage_recent (test_id, ts, cpu_usage)
				VALUES (p_test, p_ts[i], p_cpu[i]);
			IF p_cpu[i] > t.threshold THEN
				d_above := d_above +
					gap_us(coalesce(d_last, t.start_time),
					       p_ts[i]);
			END IF;
			d_last := p_ts[i];
		ELSE
			CONTINUE WHEN usage_stored(p_test, p_ts[i]) IS NOT NULL;
			a := usage_around(p_test, p_ts[i]);
			INSERT INTO usage_recent (test_id, ts, cpu_usage)
				VALUES (p_test, p_ts[i], p_cpu[i]);
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
		IF i = n THEN
			above := p_cpu[i] > t.threshold;
		END IF;
	END LOOP;

	IF stored > 0 THEN
		UPDATE tests SET samples = samples + stored,
			cpu_sum = cpu_sum + d_sum,
			cpu_max = greatest(cpu_max, d_max),
			above_us = above_us + d_above,
			last_ts = d_last,
			recent = recent + stored
		WHERE id = p_test;
		IF t.recent + stored >= 120 OR t.end_time IS NOT NULL THEN
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

-- A test that stops packs what it has in usage_recent, whoever stops it
-- (test_stop of schema 1, or an admin's UPDATE), under the lock the
-- UPDATE holds.
CREATE FUNCTION tests_pack_on_stop() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM usage_pack(NEW.id);
	RETURN NULL;
END
$$;
CREATE TRIGGER tests_pack_on_stop AFTER UPDATE OF end_time ON tests
	FOR EACH ROW
	WHEN (OLD.end_time IS NULL AND NEW.end_time IS NOT NULL
	      AND NEW.recent > 0)
	EXECUTE FUNCTION tests_pack_on_stop();

-- Up to p_limit samples of p_test after p_after (all when NULL), oldest
-- first. Reads only the chunks that can hold them: walks the chunks in
-- order, counting, until p_limit samples are certain.
CREATE FUNCTION usage_read(p_test bigint, p_after timestamptz,
			   p_limit integer)
RETURNS TABLE (ts timestamptz, cpu_usage double precision)
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
	SELECT s.ts, s.cpu_usage FROM (
		(SELECT u.ts, u.cpu_usage FROM usage_recent u
		 WHERE u.test_id = p_test AND u.ts > after
		 ORDER BY u.ts LIMIT p_limit)
		UNION ALL
		SELECT e.ts, e.cpu
		FROM usage_chunk u, unnest(u.ts, u.cpu) AS e (ts, cpu)
		WHERE u.test_id = p_test AND u.last_ts > after
		AND u.last_ts <= upto AND e.ts > after
	) s
	ORDER BY s.ts LIMIT p_limit;
END
$$;

-- Existing samples: pack every test's.
SELECT usage_pack(id) FROM tests WHERE samples > 0;
