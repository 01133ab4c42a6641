-- grasshopper schema 1: users, tests and usage samples.
--
-- Applied by `grasshopper-tracker init-db` inside one transaction. Times are
-- timestamptz (microsecond precision); the service exchanges them as int64
-- microseconds since the epoch (ts_us) so nothing depends on the session's
-- time zone. Migrations hold tables and data only; the functions (ts_us,
-- usage_add, ...) are in values.sql and functions.sql, the views in
-- views.sql, which init-db applies around the migrations.

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
