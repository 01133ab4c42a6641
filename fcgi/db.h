/*
 * The database layer's own parts; the rest of the service sees only the
 * db section of tracker.h. Read in this order:
 *
 *   statements.c  every statement the service runs: name, SQL, flags
 *   conn.c        one connection's life: connect, prepare, notice death
 *   db.c          the queue: threads queue jobs, one of them leads a round
 *   pipeline.c    one round trip: send the jobs, read their results, answer
 *                 each as soon as its outcome is final, keep what goes again
 */
#ifndef GH_DB_H
#define GH_DB_H

#include "tracker.h"

#include <pthread.h>

/* ---- statements.c: the catalogue --------------------------------------- */

/* How a statement may be run (flags of the catalogue). */
enum {
	/* May join the group-commit transaction (pipeline.c). Run it with
	 * db_exec_batch, whose key is the id of the one tests row it locks,
	 * params[BATCH_KEY_PARAM] as text. */
	BATCH = 1,
	/* Safe to run again when the outcome is unknown (connection lost
	 * before the answer): reads, and usage_add, which skips samples it
	 * already has. */
	REPEAT = 2,
	/* Answer at once when the database is down (health checks). */
	NOWAIT = 4,
};
#define BATCH_KEY_PARAM 1

struct statement {
	const char *name;
	const char *sql;
	int nparams;
	int flags;
};
extern const struct statement statements[STMT__COUNT];

/* ---- conn.c: one connection ------------------------------------------- */

struct conn {
	PGconn *pg;
	bool prepared;
	bool busy; /* a leader is using it (under the db's mutex) */
	bool down; /* the last attempt to connect failed (logged once) */
};

/* Make sure c is connected with every statement prepared. Return 0, or -1
 * when the database cannot be reached (logged once per outage). */
int conn_ready(struct conn *c, const char *url);
/* Close c because it broke mid-round (logged once per outage). */
void conn_lost(struct conn *c);
/* Close c (the worker is leaving). */
void conn_close(struct conn *c);
/* Log what failed on pg, with res's message if any, on one line. */
void db_log(const char *what, PGconn *pg, const PGresult *res);

/* ---- db.c: a statement waiting for its answer ------------------------- */

#define PIPELINE_MAX 64 /* statements in one round trip */

/* On the stack of its request thread, from db_exec until answered. */
struct job {
	enum stmt s;
	const char *const *params;
	int64_t key;	  /* BATCH: the id of the tests row it locks */
	int64_t deadline; /* mono_us: answer "unavailable" after this */
	PGresult *res;
	enum db_status st;
	enum { QUEUED, RUNNING, DONE } state; /* under the db's mutex */
	pthread_cond_t cv;		      /* its thread waits here */
	struct job *next;
};

/* Give the running job j its answer and wake its thread. j belongs to that
 * thread again: the caller never touches it after. */
void job_answer(struct db *db, struct job *j, enum db_status st, PGresult *res);

/* ---- pipeline.c: one round trip --------------------------------------- */

/* Send v[0..n) (n <= PIPELINE_MAX) on c in one round trip and answer each
 * job whose outcome is final the moment it is. Return how many are left to
 * run again, moved to the front of v. *lost: the connection broke (and
 * was closed). */
int pipeline_round(struct db *db, struct conn *c, struct job **v, int n,
		   bool *lost);

#endif
