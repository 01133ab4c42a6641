-- grasshopper schema 7: rules the tables keep themselves, not only the
-- functions that write them, and storage settings for how they are written.

-- The chunks of a test never overlap (functions.sql keeps them so; now the
-- table refuses it too): no two rows of one test_id whose [first_ts,
-- last_ts] intersect, closed ranges, so not even a shared end. A GiST
-- index over (test_id, range) needs btree_gist for the bigint's equality.
-- It ships with PostgreSQL (Debian's postgresql-15) and is a trusted
-- extension: the database's owner may create it without being a
-- superuser, as init-db does in docker-compose.yml. Its functions go in a
-- schema of their own, so that the grants on every function of schema
-- public (fcgi/migrate.c) do not reach objects its owner cannot grant; an
-- index uses its operator class wherever it lives.
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA extensions;
ALTER TABLE usage_chunk ADD CONSTRAINT usage_chunk_disjoint
	EXCLUDE USING gist (test_id WITH =,
			    tstzrange(first_ts, last_ts, '[]') WITH &&);

-- A chunk holds from 1 to chunk_size() samples (values.sql), each with its
-- cpu. Replaces schema 4's CHECK, which said 120.
ALTER TABLE usage_chunk DROP CONSTRAINT usage_chunk_check1,
	ADD CONSTRAINT usage_chunk_size
	CHECK (cardinality(ts) BETWEEN 1 AND chunk_size()
	       AND cardinality(cpu) = cardinality(ts));

-- A sample not packed yet belongs to a test, and goes with it. Schema 4
-- had dropped this key to save its check (13 % of usage_add's time then)
-- and deleted a test's samples in the trigger tests_delete_samples
-- instead. Measured in one run, alternating with and without it
-- (docs/benchmarks.md, "Schema 7"): the check costs usage_add about 5 us
-- of CPU (54 -> 60 us a call), some 2 % of the 0.26 ms a usage POST costs
-- the machine; the usage path may lose 10 %.
ALTER TABLE usage_recent ADD CONSTRAINT usage_recent_test_id_fkey
	FOREIGN KEY (test_id) REFERENCES tests (id) ON DELETE CASCADE;
DROP TRIGGER IF EXISTS tests_delete_samples ON tests;
DROP FUNCTION IF EXISTS tests_delete_samples();

-- usage_recent is a queue: every row is deleted again within chunk_size()
-- samples of its test. Vacuum it after every few thousand dead rows,
-- whatever the table's size estimate (which a burst inflates), and at full
-- speed (it is small): its pages and index pages are then reused, instead
-- of growing after a burst until an admin reindexes.
ALTER TABLE usage_recent SET (autovacuum_vacuum_scale_factor = 0,
			      autovacuum_vacuum_threshold = 5000,
			      autovacuum_vacuum_cost_delay = 0);

-- tests: its row is updated with every sample (usage_add's figures), never
-- a column that an index holds. Half of each page is left free for the new
-- versions of its rows, so the update stays on its page (a HOT update: no
-- new index entries, and the old version is pruned without a vacuum).
ALTER TABLE tests SET (fillfactor = 50);
