/*
 * One round trip on one connection: the jobs a leader took from the queue
 * (db.c), sent as one libpq pipeline.
 *
 * The BATCH statements go first, in one implicit transaction (one Sync
 * after the last of them): a single COMMIT, one WAL flush, makes all of
 * them durable. Every other statement follows with a Sync of its own, a
 * transaction of its own, as if it ran alone.
 *
 * Each job leaves the round exactly once, by settle(), the moment its
 * outcome is final: a batch statement once the COMMIT's result is read (or
 * its own error), any other once its result and its own COMMIT's are. So a
 * committed sample never waits for a slow read sent after it. What is left
 * when the round ends runs again: a batch statement rolled back by
 * another's failure, one PostgreSQL asks to retry (deadlock, serialization
 * failure, shutdown), and after a broken connection what is safe to
 * repeat.
 */
#include "db.h"

#include <assert.h>
#include <string.h>

/* The jobs of one round. */
struct round {
	struct db *db;
	struct conn *c;
	struct job **v; /* NULL where a job has left the round */
	int n;
	int nb; /* v[0..nb) are the batch, in key order */
};

/* Batch statements first, in key order; the rest in arrival order. Return
 * how many batch statements there are.
 *
 * Why the order: the batch is one transaction holding the row locks of all
 * its statements until its COMMIT, while other workers' batches do the
 * same. Each BATCH statement locks exactly one row, the tests row its key
 * names (usage_add: its UPDATE or SELECT ... FOR UPDATE, and usage_pack
 * under that lock). When every batch takes its locks in increasing key
 * order, no two can each hold a row the other waits for: no deadlock.
 * Every other statement is a transaction of its own. Should one come
 * anyway, PostgreSQL breaks it (40P01) and the batch runs again. */
static int
batch_first(struct job **v, int n)
{
	int nb = 0;
	for (int i = 0; i < n; i++) {
		if (!(statements[v[i]->s].flags & BATCH))
			continue;
		struct job *j = v[i];
		memmove(&v[nb + 1], &v[nb], (size_t)(i - nb) * sizeof *v);
		int k = nb++;
		while (k > 0 && v[k - 1]->key > j->key) {
			v[k] = v[k - 1];
			k--;
		}
		v[k] = j;
	}
	return nb;
}

/* v[i]'s outcome is final: st (and res, which it takes). It leaves the
 * round, and its thread goes on with its request at once, whatever else
 * the round still waits for. */
static void
settle(struct round *r, int i, enum db_status st, PGresult *res)
{
	struct job *j = r->v[i];
	r->v[i] = NULL;
	job_answer(r->db, j, st, res);
}

/* Did the statement succeed (its transaction may yet fail)? */
static bool
result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* The status for job j's failed result res; *again when running it again
 * may well succeed (an error means nothing of it was committed). */
static enum db_status
classify(struct conn *c, const struct job *j, const PGresult *res, bool *again)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	enum db_status st = DB_ERROR;
	*again = false;
	if (PQstatus(c->pg) != CONNECTION_OK) {
		st = DB_UNAVAILABLE;
	} else if (!state) {
		st = DB_ERROR;
	} else if (strcmp(state, "23505") == 0) {
		return DB_UNIQUE;
	} else if (strcmp(state, "23503") == 0) {
		return DB_FOREIGN_KEY;
	} else if (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0) {
		/* deadlock, serialization failure: PostgreSQL asks for a
		 * retry */
		st = DB_UNAVAILABLE;
		*again = true;
	} else if (strncmp(state, "57P", 3) == 0 ||
		   strncmp(state, "08", 2) == 0) {
		st = DB_UNAVAILABLE; /* shutting down, connection trouble */
		*again = true;
	} else if (strcmp(state, "26000") == 0) {
		c->prepared = false; /* statements lost: prepare them again */
		st = DB_UNAVAILABLE;
		*again = true;
	} else if (strcmp(state, "57014") == 0) {
		st = DB_UNAVAILABLE; /* statement timeout, cancelled */
	}
	db_log(statements[j->s].name, c->pg, res);
	return st;
}

/* v[i] did not succeed (res, freed here): answer it, unless running it
 * again may succeed; then it stays in the round. */
static void
failed(struct round *r, int i, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	bool again = st == PGRES_PIPELINE_ABORTED; /* after another's error */
	enum db_status answer = DB_ERROR;
	if (st == PGRES_FATAL_ERROR)
		answer = classify(r->c, r->v[i], res, &again);
	PQclear(res);
	if (!again)
		settle(r, i, answer, NULL);
}

/* The one result of the next statement in the pipeline, with the NULL that
 * ends it consumed; NULL when the connection broke. */
static PGresult *
next_result(PGconn *pg)
{
	PGresult *r = PQgetResult(pg);
	if (!r)
		return NULL;
	PGresult *end = PQgetResult(pg);
	if (end) { /* never happens: one result per statement */
		PQclear(end);
		PQclear(r);
		return NULL;
	}
	return r;
}

/* Read up to the next sync point. Return 1 when it came cleanly (the
 * transaction committed), 0 when an error came first, -1 when the
 * connection broke. */
static int
next_sync(PGconn *pg)
{
	bool clean = true;
	for (int i = 0; i < 8; i++) {
		PGresult *r = PQgetResult(pg);
		if (!r) {
			if (PQstatus(pg) != CONNECTION_OK)
				return -1;
			continue;
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR)
			db_log("commit", pg, r);
		PQclear(r);
		if (st == PGRES_PIPELINE_SYNC)
			return clean ? 1 : 0;
		clean = false;
	}
	return -1;
}

/* Send the round: the batch, then a Sync; each other job, then a Sync.
 * Return false when libpq could not (the connection broke). */
static bool
round_send(struct round *r)
{
	PGconn *pg = r->c->pg;
	if (!PQenterPipelineMode(pg))
		return false;
	for (int i = 0; i < r->n; i++) {
		const struct job *j = r->v[i];
		const struct statement *s = &statements[j->s];
		/* The batch locks its rows in key order (batch_first). */
		assert(i == 0 || i >= r->nb || r->v[i - 1]->key <= j->key);
		if (!PQsendQueryPrepared(pg, s->name, s->nparams, j->params,
					 NULL, NULL, 0))
			return false;
		bool ends_transaction = i >= r->nb - 1;
		if (ends_transaction && !PQpipelineSync(pg))
			return false;
	}
	return true;
}

/* Read the batch's results and its COMMIT: all are answered when it
 * commits; a failed one is answered with its error; the others were rolled
 * back and stay. Return false when the connection broke (the outcome of
 * the commit is unknown: all stay). */
static bool
batch_read(struct round *r)
{
	PGresult *held[PIPELINE_MAX] = {0};
	bool all_ok = true, broken = false;
	for (int i = 0; i < r->nb && !broken; i++) {
		PGresult *res = next_result(r->c->pg);
		broken = !res;
		if (res && result_ok(res))
			held[i] = res;
		else if (res)
			failed(r, i, res);
		all_ok = all_ok && held[i];
	}
	int sync = broken ? -1 : next_sync(r->c->pg);
	for (int i = 0; i < r->nb; i++) {
		if (all_ok && sync == 1)
			settle(r, i, DB_OK, held[i]);
		else
			PQclear(held[i]); /* rolled back, or unknown */
	}
	return sync >= 0;
}

/* Read v[i]'s result and its own COMMIT; answer it when final. Return
 * false when the connection broke (its outcome is unknown: it stays). */
static bool
single_read(struct round *r, int i)
{
	PGresult *res = next_result(r->c->pg);
	int sync = res ? next_sync(r->c->pg) : -1;
	if (sync < 0) {
		PQclear(res);
		return false;
	}
	if (!result_ok(res))
		failed(r, i, res);
	else if (sync == 1)
		settle(r, i, DB_OK, res);
	else
		PQclear(res); /* the commit failed: nothing done, again */
	return true;
}

/* Move the jobs still in the round to the front of v; return how many.
 * After a broken connection what was sent may have run: only what is safe
 * to repeat stays, the rest is answered "unavailable". */
static int
round_leftovers(struct round *r, bool broken)
{
	int left = 0;
	for (int i = 0; i < r->n; i++) {
		if (!r->v[i])
			continue;
		if (broken && !(statements[r->v[i]->s].flags & REPEAT))
			settle(r, i, DB_UNAVAILABLE, NULL);
		else
			r->v[left++] = r->v[i];
	}
	return left;
}

int
pipeline_round(struct db *db, struct conn *c, struct job **v, int n, bool *lost)
{
	struct round r = {
	    .db = db, .c = c, .v = v, .n = n, .nb = batch_first(v, n)};
	bool ok = round_send(&r);
	if (ok && r.nb > 0)
		ok = batch_read(&r);
	for (int i = r.nb; ok && i < n; i++)
		ok = single_read(&r, i);
	if (ok)
		ok = PQexitPipelineMode(c->pg);
	if (!ok)
		conn_lost(c);
	*lost = !ok;
	return round_leftovers(&r, !ok);
}
