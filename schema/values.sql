-- grasshopper: functions of their arguments alone (they read no table).
--
-- When `grasshopper-tracker init-db` has migrations (schema/NNN_*.sql) to
-- apply, it applies this file first, so that a migration may use these in
-- a constraint or to move data; and after the migrations, with
-- schema/functions.sql and schema/views.sql, whenever it changed
-- (functions.sql says how). Everything here is CREATE OR REPLACE: what
-- this file says is what the database runs.

-- How many samples one usage_chunk row holds at most (schema/004). 120
-- keeps a chunk (2 016 bytes of arrays) just under the size at which
-- PostgreSQL would compress it or move it out of line, so four fill a
-- page. usage_add packs a test's samples when it has this many in
-- usage_recent, usage_pack cuts chunks no larger, and usage_chunk's CHECK
-- (schema/007) refuses larger ones. Changing it needs no migration: chunks
-- already stored keep their size until a late sample is merged into them.
CREATE OR REPLACE FUNCTION chunk_size() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 120;

-- Microseconds since the epoch, exactly (extract returns numeric). The
-- service exchanges times as these, so nothing depends on the session's
-- time zone.
CREATE OR REPLACE FUNCTION ts_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (extract(epoch FROM t) * 1000000)::bigint;

-- The gap b - a in microseconds, negative gaps counted as 0 (SPEC 2).
-- timestamptz - timestamptz is an exact interval of days and microseconds,
-- and extract(epoch ...) of it is exact (numeric). Not STRICT, so that
-- PostgreSQL inlines it into usage_add's expressions (greatest() is not
-- strict): ts_us(b) - ts_us(a), two numeric extracts through the
-- SQL-function executor per call, was 2.39 s per million calls, this 0.31
-- s (schema/003). Callers never pass NULL (it would give 0).
CREATE OR REPLACE FUNCTION gap_us(a timestamptz, b timestamptz)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN greatest(0, (extract(epoch FROM b - a) * 1000000)::bigint);
