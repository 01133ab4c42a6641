-- grasshopper schema 1: users, tests and usage samples.
--
-- Applied by `grasshopper-tracker init-db` inside one transaction. Times are
-- timestamptz (microsecond precision); the service exchanges them as int64
-- microseconds since the epoch (ts_us) so nothing depends on the session's
-- time zone.

CREATE TABLE users (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	username text NOT NULL
		CHECK (username ~ '^[A-Za-z0-9_.-]{1,64}$'),
	password_hash text NOT NULL,
	email text,
	created_at timestamptz NOT NULL DEFAULT now()
);
-- Unique regardless of case, so "Alice" and "alice" are never two people.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE tests (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name text NOT NULL,
	description text NOT NULL,
	threshold double precision NOT NULL
		CHECK (threshold >= 0 AND threshold <= 1),
	start_time timestamptz NOT NULL,
	end_time timestamptz CHECK (end_time >= start_time),
	created_at timestamptz NOT NULL DEFAULT now(),
	-- Aggregates, kept by usage_add in the transaction that stores the
	-- samples, so reading a test never scans its samples.
	samples bigint NOT NULL DEFAULT 0,
	cpu_sum double precision NOT NULL DEFAULT 0,
	cpu_max double precision,
	above_us bigint NOT NULL DEFAULT 0, -- time above threshold, in us
	last_ts timestamptz                 -- latest sample's timestamp
);
CREATE INDEX tests_user_newest ON tests (user_id, id DESC);

CREATE TABLE usage (
	test_id bigint NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
	ts timestamptz NOT NULL,
	cpu_usage double precision NOT NULL
		CHECK (cpu_usage >= 0 AND cpu_usage <= 1),
	-- A sample is identified by (test, timestamp): retries store nothing.
	PRIMARY KEY (test_id, ts)
);

-- Microseconds since the epoch, exactly (extract returns numeric).
CREATE FUNCTION ts_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (extract(epoch FROM t) * 1000000)::bigint;

-- The gap b - a in microseconds, negative gaps counted as 0 (SPEC 2).
CREATE FUNCTION gap_us(a timestamptz, b timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN greatest(0, ts_us(b) - ts_us(a));

-- Store samples (ts[i], cpu[i]) for a test of p_user, in one transaction:
-- checks ownership, skips samples already stored (same timestamp), keeps the
-- test's aggregates exact whatever the order samples arrive in.
--   status: 'ok', 'not_found' or 'test_stopped' (nothing stored then)
--   stored: how many samples were new
--   above:  whether the stored sample at ts[n] (the last) is above threshold
--
-- time_above_threshold = sum over samples above threshold of
-- gap(previous sample or start_time, sample). Inserting s between p and n
-- adds gap(p, s) if s is above, and if n is above replaces gap(p, n) by
-- gap(s, n).
CREATE FUNCTION usage_add(p_user bigint, p_test bigint,
			  p_ts timestamptz[], p_cpu double precision[],
			  OUT status text, OUT stored integer,
			  OUT above boolean)
LANGUAGE plpgsql AS $$
DECLARE
	t tests%ROWTYPE;
	i integer;
	prev timestamptz;
	nxt_ts timestamptz;
	nxt_cpu double precision;
	d_above bigint := 0;
	d_sum double precision := 0;
	d_max double precision;
	d_last timestamptz;
BEGIN
	stored := 0;
	SELECT * INTO t FROM tests WHERE id = p_test AND user_id = p_user
		FOR UPDATE;
	IF NOT FOUND THEN
		status := 'not_found';
		RETURN;
	END IF;

	-- A stopped test takes only samples up to its end (retries of samples
	-- it already has are fine).
	IF t.end_time IS NOT NULL AND EXISTS (
		SELECT 1 FROM unnest(p_ts) AS n (ts)
		WHERE n.ts > t.end_time AND NOT EXISTS (
			SELECT 1 FROM usage u
			WHERE u.test_id = p_test AND u.ts = n.ts))
	THEN
		status := 'test_stopped';
		RETURN;
	END IF;

	d_last := t.last_ts;
	FOR i IN 1 .. coalesce(array_length(p_ts, 1), 0) LOOP
		INSERT INTO usage (test_id, ts, cpu_usage)
			VALUES (p_test, p_ts[i], p_cpu[i])
			ON CONFLICT DO NOTHING;
		CONTINUE WHEN NOT FOUND;
		stored := stored + 1;
		d_sum := d_sum + p_cpu[i];
		d_max := greatest(d_max, p_cpu[i]);

		IF d_last IS NULL OR p_ts[i] > d_last THEN
			-- In order (the usual case): no later sample.
			prev := coalesce(d_last, t.start_time);
			nxt_ts := NULL;
			d_last := p_ts[i];
		ELSE
			SELECT max(u.ts) INTO prev FROM usage u
				WHERE u.test_id = p_test AND u.ts < p_ts[i];
			prev := coalesce(prev, t.start_time);
			SELECT u.ts, u.cpu_usage INTO nxt_ts, nxt_cpu FROM usage u
				WHERE u.test_id = p_test AND u.ts > p_ts[i]
				ORDER BY u.ts LIMIT 1;
		END IF;

		IF p_cpu[i] > t.threshold THEN
			d_above := d_above + gap_us(prev, p_ts[i]);
		END IF;
		IF nxt_ts IS NOT NULL AND nxt_cpu > t.threshold THEN
			d_above := d_above + gap_us(p_ts[i], nxt_ts)
				- gap_us(prev, nxt_ts);
		END IF;
	END LOOP;

	IF stored > 0 THEN
		UPDATE tests SET samples = samples + stored,
			cpu_sum = cpu_sum + d_sum,
			cpu_max = greatest(cpu_max, d_max),
			above_us = above_us + d_above,
			last_ts = d_last
		WHERE id = p_test;
	END IF;

	SELECT u.cpu_usage > t.threshold INTO above FROM usage u
		WHERE u.test_id = p_test
		AND u.ts = p_ts[array_upper(p_ts, 1)];
	status := 'ok';
END
$$;

-- Stop a test of p_user at p_end: 'ok', 'not_found', 'already_stopped' or
-- 'before_start'.
CREATE FUNCTION test_stop(p_user bigint, p_test bigint, p_end timestamptz)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	t tests%ROWTYPE;
BEGIN
	SELECT * INTO t FROM tests WHERE id = p_test AND user_id = p_user
		FOR UPDATE;
	IF NOT FOUND THEN
		RETURN 'not_found';
	ELSIF t.end_time IS NOT NULL THEN
		RETURN 'already_stopped';
	ELSIF p_end < t.start_time THEN
		RETURN 'before_start';
	END IF;
	UPDATE tests SET end_time = p_end WHERE id = p_test;
	RETURN 'ok';
END
$$;
