-- grasshopper schema 8: memory with every sample (SPEC 6.3).
--
-- A sample may carry mem_usage, the fraction of memory in use (0-1), or
-- not (a version-1 client): NULL then. usage_recent gets the column;
-- usage_chunk a third array, mem, beside ts and cpu: NULL entries where a
-- sample has none, and NULL as a whole when none of the chunk's samples
-- has one (a chunk of a version-1 client costs nothing more). tests keeps
-- the memory figures as it keeps the CPU ones: mem_samples counts the
-- samples that have a mem_usage (the mean is mem_sum / mem_samples),
-- mem_max their largest (NULL when none). Existing samples have no
-- memory figure; their tests get 0, 0 and NULL. Adding a column with a
-- constant default rewrites no table.

ALTER TABLE usage_recent ADD COLUMN mem_usage double precision
	CONSTRAINT usage_recent_mem_usage_check
	CHECK (mem_usage >= 0 AND mem_usage <= 1);

ALTER TABLE usage_chunk ADD COLUMN mem double precision[],
	ADD CONSTRAINT usage_chunk_mem_size
	CHECK (mem IS NULL OR cardinality(mem) = cardinality(ts));

ALTER TABLE tests ADD COLUMN mem_samples bigint NOT NULL DEFAULT 0,
	ADD COLUMN mem_sum double precision NOT NULL DEFAULT 0,
	ADD COLUMN mem_max double precision;
