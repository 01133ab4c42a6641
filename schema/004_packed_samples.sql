-- grasshopper schema 4: samples packed 120 to a row.
--
-- One row per sample cost 84 bytes on disk: a 24-byte tuple header and a
-- 4-byte line pointer for 24 bytes of data, and a primary-key entry of about
-- 32. Now a sample lands in usage_recent (the old table, one row per sample:
-- cheap to insert, to skip as a repeat and to find neighbours in), and every
-- chunk_size() samples of a test (120, values.sql says why), and when a test
-- stops, usage_pack moves them into usage_chunk: one row holding up to 120
-- samples as two arrays, about 19 bytes per sample. Everything else sees the
-- samples through the view usage (test_id, ts, cpu_usage), as before; the
-- functions that keep the two tables (usage_add, usage_pack, ...) and the
-- view are in functions.sql and views.sql. Schema 7 adds the rules the
-- tables keep themselves.

ALTER TABLE usage RENAME TO usage_recent;
ALTER TABLE usage_recent RENAME CONSTRAINT usage_pkey TO usage_recent_pkey;
ALTER TABLE usage_recent RENAME CONSTRAINT usage_cpu_usage_check
	TO usage_recent_cpu_usage_check;
-- No foreign key (schema 7 puts it back): only usage_add writes here,
-- holding the test's row lock (a deleted test is not found), and a trigger,
-- tests_delete_samples, deleted a test's samples with it. Checking the key
-- was 13 % of usage_add's time.
ALTER TABLE usage_recent DROP CONSTRAINT usage_test_id_fkey;

CREATE TABLE usage_chunk (
	test_id bigint NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
	first_ts timestamptz NOT NULL,
	last_ts timestamptz NOT NULL,
	ts timestamptz[] NOT NULL,
	cpu double precision[] NOT NULL,
	PRIMARY KEY (test_id, last_ts),
	CHECK (first_ts <= last_ts),
	-- Schema 7 replaces this one: up to chunk_size().
	CHECK (cardinality(ts) BETWEEN 1 AND 120
	       AND cardinality(cpu) = cardinality(ts))
);

-- Samples of the test in usage_recent (usage_add packs them at
-- chunk_size()).
ALTER TABLE tests ADD COLUMN recent integer NOT NULL DEFAULT 0;

-- Existing samples: pack every test's. usage_chunk is empty yet, so this is
-- what usage_pack does then: each test's samples in ts order, cut into
-- ceil(n / 120) chunks of equal size. (A migration cannot call usage_pack:
-- functions.sql is applied after the migrations.)
INSERT INTO usage_chunk (test_id, first_ts, last_ts, ts, cpu)
SELECT p.test_id, min(p.ts), max(p.ts), array_agg(p.ts ORDER BY p.ts),
       array_agg(p.cpu_usage ORDER BY p.ts)
FROM (
	SELECT u.test_id, u.ts, u.cpu_usage,
	       (row_number() OVER w - 1) * ((count(*) OVER w + 119) / 120)
		/ count(*) OVER w AS piece
	FROM usage_recent u
	WINDOW w AS (PARTITION BY u.test_id ORDER BY u.ts
		     ROWS BETWEEN UNBOUNDED PRECEDING
		     AND UNBOUNDED FOLLOWING)
) p
GROUP BY p.test_id, p.piece;
DELETE FROM usage_recent;
