-- grasshopper: the views, applied by `grasshopper-tracker init-db` after
-- schema/functions.sql, in the same transaction, with the grants to the
-- service's role (schema/functions.sql says when and how).
--
-- Each view is dropped and created again rather than CREATE OR REPLACEd,
-- which refuses a view whose columns are renamed, removed or retyped. The
-- drop takes the view's lock only: the service reads no view, an admin's
-- query on one waits for the transaction. A view of an admin's own that
-- depends on one of these makes the drop fail, and init-db with it: drop
-- it first, and create it again after.

-- All samples, one row each (schema/004): those not packed yet and those
-- in chunks.
DROP VIEW IF EXISTS usage;
CREATE VIEW usage AS
SELECT test_id, ts, cpu_usage, mem_usage FROM usage_recent
UNION ALL
SELECT c.test_id, s.ts, s.cpu_usage, s.mem_usage
FROM usage_chunk c, unnest(c.ts, c.cpu, c.mem) AS s (ts, cpu_usage, mem_usage);

-- For administrators using psql; docs/admin.md has the queries they serve.

-- One row per test run, with its owner and its figures in plain units
-- (seconds, fractions of the machine).
DROP VIEW IF EXISTS test_summary;
CREATE VIEW test_summary AS
SELECT
	t.id,
	u.username AS owner,
	t.name,
	t.description,
	t.threshold,
	t.start_time,
	t.end_time,
	t.end_time IS NULL AS active,
	round(extract(epoch FROM coalesce(t.end_time, now()) - t.start_time),
	      3) AS duration_s,
	t.samples,
	round(t.above_us / 1e6, 3) AS time_above_threshold_s,
	CASE WHEN coalesce(t.end_time, now()) > t.start_time THEN
		round(100 * t.above_us / 1e6 / extract(epoch FROM
			coalesce(t.end_time, now()) - t.start_time), 1)
	END AS above_pct,
	t.cpu_max AS peak_cpu,
	CASE WHEN t.samples > 0 THEN t.cpu_sum / t.samples END AS mean_cpu,
	t.mem_max AS peak_mem,
	CASE WHEN t.mem_samples > 0 THEN t.mem_sum / t.mem_samples END
		AS mean_mem
FROM tests t
JOIN users u ON u.id = t.user_id;

-- One row per user: how much they have recorded, and when they last did.
DROP VIEW IF EXISTS user_activity;
CREATE VIEW user_activity AS
SELECT
	u.id,
	u.username,
	u.email,
	u.created_at,
	count(t.id) AS tests,
	count(t.id) FILTER (WHERE t.end_time IS NULL) AS active_tests,
	coalesce(sum(t.samples), 0) AS samples,
	max(t.start_time) AS last_run,
	round(coalesce(sum(extract(epoch FROM
		coalesce(t.end_time, now()) - t.start_time)), 0), 3)
		AS total_duration_s,
	round(coalesce(sum(t.above_us), 0) / 1e6, 3)
		AS total_above_threshold_s
FROM users u
LEFT JOIN tests t ON t.user_id = u.id
GROUP BY u.id;
