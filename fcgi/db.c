/*
 * The worker's PostgreSQL connections: every statement the service runs is
 * here, prepared once per connection, re-prepared after a reconnect.
 *
 * A worker's request threads share a few connections. db_exec queues its
 * statement; a thread that finds a connection idle becomes the leader: it
 * takes everything queued, sends it in one pipeline (one round trip) and
 * hands every waiting thread its result. The samples queued together
 * (usage_add) share one transaction, so a single commit — one WAL flush —
 * makes many requests durable at once: group commit, done by the service
 * before PostgreSQL's own. Every other statement gets a transaction of its
 * own (a Sync after it), as if it ran alone.
 */
#include "tracker.h"
#include "isotime.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The columns of enum test_col, in order. */
#define TEST_COLS                                                              \
	"id, name, description, threshold, ts_us(start_time), "                \
	"ts_us(end_time), samples, cpu_sum, cpu_max, above_us"

/* How a statement may be run (flags of the table below). */
enum {
	/* May share a transaction with others of its kind; params[1] is the
	 * test it locks, and a transaction locks its tests in id order, so
	 * two transactions never wait on each other in a cycle. */
	BATCH = 1,
	/* Safe to run again when the outcome is unknown (connection lost
	 * before the answer): reads, and usage_add, which skips samples it
	 * already has. */
	REPEAT = 2,
	/* Answer at once when the database is down (health checks). */
	NOWAIT = 4,
};

static const struct {
	const char *name;
	const char *sql;
	int nparams;
	int flags;
} stmts[STMT__COUNT] = {
    [STMT_PING] = {"ping", "SELECT 1", 0, REPEAT | NOWAIT},
    [STMT_USER_CREATE] = {"user_create",
			  "INSERT INTO users (username, password_hash, "
			  "email) VALUES ($1::text, $2::text, $3::text) "
			  "RETURNING id",
			  3, 0},
    [STMT_USER_FIND] = {"user_find",
			"SELECT id, password_hash FROM users "
			"WHERE username = $1::text",
			1, REPEAT},
    /* Only over the hash it replaces: never undoes a password change. */
    [STMT_USER_REHASH] = {"user_rehash",
			  "UPDATE users SET password_hash = $2::text "
			  "WHERE id = $1::bigint AND password_hash = $3::text",
			  3, REPEAT},
    [STMT_USER_HASH] = {"user_hash",
			"SELECT password_hash FROM users "
			"WHERE id = $1::bigint",
			1, REPEAT},
    [STMT_USER_PASSWORD_SET] = {"user_password_set",
				"SELECT user_password_set($1::bigint, "
				"$2::text, $3::text)",
				3, 0},
    [STMT_USER_REVOKE_ALL] = {"user_revoke_all",
			      "SELECT user_revoke_all($1::bigint)", 1, REPEAT},
    [STMT_SESSION_CREATE] = {"session_create",
			     "SELECT session_create($1::bigint, "
			     "to_timestamp($2::bigint), $3::int)",
			     3, 0},
    /* $2 NULL: a legacy token (no jti). */
    [STMT_TOKEN_CHECK] = {"token_check",
			  "SELECT token_check($1::bigint, $2::bigint)", 2,
			  REPEAT},
    [STMT_TOKEN_CREATE] = {"token_create",
			   "SELECT status, id, created_us, expires_us "
			   "FROM token_create($1::bigint, $2::text, "
			   "to_timestamp($3::bigint), $4::int)",
			   4, 0},
    [STMT_TOKEN_LIST] = {"token_list",
			 "SELECT id, name, ts_us(created_at), "
			 "ts_us(expires_at), ts_us(last_used_at) FROM tokens "
			 "WHERE user_id = $1::bigint AND name IS NOT NULL "
			 "AND expires_at > now() ORDER BY id DESC",
			 1, REPEAT},
    [STMT_TOKEN_DELETE] = {"token_delete",
			   "DELETE FROM tokens WHERE id = $2::bigint "
			   "AND user_id = $1::bigint RETURNING id",
			   2, 0},
    /* No row: the user has $6 active tests already (schema 6). */
    [STMT_TEST_CREATE] = {"test_create",
			  "SELECT " TEST_COLS " FROM test_create($1::bigint, "
			  "$2::text, $3::text, $4::float8, $5::timestamptz, "
			  "$6::int)",
			  6, 0},
    [STMT_TEST_GET] = {"test_get",
		       "SELECT " TEST_COLS " FROM tests "
		       "WHERE id = $2::bigint AND user_id = $1::bigint",
		       2, REPEAT},
    /* One row more than asked for tells whether there is a next page. */
    [STMT_TEST_LIST] = {"test_list",
			"SELECT " TEST_COLS " FROM tests "
			"WHERE user_id = $1::bigint AND ($2::bigint IS NULL "
			"OR id < $2::bigint) ORDER BY id DESC "
			"LIMIT $3::int + 1",
			3, REPEAT},
    /* The test's columns (NULL for an unknown test), then the status. */
    [STMT_TEST_STOP] = {"test_stop",
			"SELECT " TEST_COLS ", s.status FROM test_end("
			"$1::bigint, $2::bigint, $3::timestamptz) s, "
			"LATERAL (SELECT (s.test).*) t",
			3, 0},
    [STMT_USAGE_ADD] = {"usage_add",
			"SELECT status, stored, above FROM usage_add("
			"$1::bigint, $2::bigint, $3::timestamptz[], "
			"$4::float8[])",
			4, BATCH | REPEAT},
    /* One row with NULL sample columns for a test without (more)
     * samples; no row at all for someone else's test. */
    [STMT_USAGE_LIST] = {"usage_list",
			 "SELECT ts_us(u.ts), u.cpu_usage, "
			 "u.cpu_usage > t.threshold FROM tests t "
			 "LEFT JOIN LATERAL usage_read(t.id, $3::timestamptz, "
			 "$4::int) u ON true "
			 "WHERE t.id = $2::bigint AND t.user_id = $1::bigint "
			 "ORDER BY u.ts",
			 4, REPEAT},
};

#define PIPELINE_MAX 64	      /* statements in one round trip */
#define RECONNECT_US 100000LL /* between attempts to reconnect */

struct conn {
	PGconn *pg;
	bool prepared;
	bool busy; /* a leader is using it (under db->mu) */
	bool down; /* the last attempt to connect failed (logged once) */
};

/* A statement waiting for its result, on the stack of its request thread. */
struct job {
	enum stmt s;
	const char *const *params;
	int64_t key;	  /* BATCH: the test it locks */
	int64_t deadline; /* mono_us: answer "unavailable" after this */
	PGresult *res;
	enum db_status st;
	enum { QUEUED, RUNNING, DONE } state; /* under db->mu */
	pthread_cond_t cv;		      /* its thread waits here */
	struct job *next;
};

struct db {
	char *url;
	int64_t wait_us; /* how long a statement waits for the database */
	pthread_mutex_t mu;
	struct job *head, **tail;
	_Atomic bool down; /* the last attempt to connect failed */
	int nconn;
	struct conn conn[];
};

/* libpq's notices (a WARNING a statement raised) as our log lines, not
 * in libpq's own style on stderr. */
static void
notice_log(void *arg, const char *message)
{
	(void)arg;
	log_msg(LOG_WARN, "database: %s", message);
}

PGconn *
db_connect(const char *url)
{
	/* Later keywords override what the URL says. */
	const char *keys[] = {"dbname", "connect_timeout", "options",
			      "application_name", NULL};
	const char *vals[] = {url, "5",
			      "-c statement_timeout=10s "
			      "-c idle_in_transaction_session_timeout=10s "
			      "-c TimeZone=UTC",
			      "grasshopper-tracker", NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (c)
		PQsetNoticeProcessor(c, notice_log, NULL);
	return c;
}

struct db *
db_new(const char *url, int connections, long wait_s)
{
	struct db *db =
	    xmalloc(sizeof *db + (size_t)connections * sizeof(struct conn));
	db->url = xstrdup(url);
	db->wait_us = wait_s * 1000000LL;
	pthread_mutex_init(&db->mu, NULL);
	db->head = NULL;
	db->tail = &db->head;
	db->nconn = connections;
	db->down = false;
	memset(db->conn, 0, (size_t)connections * sizeof(struct conn));
	return db;
}

void
db_free(struct db *db)
{
	if (!db)
		return;
	for (int i = 0; i < db->nconn; i++)
		PQfinish(db->conn[i].pg);
	pthread_mutex_destroy(&db->mu);
	free(db->url);
	free(db);
}

/* Log a failure of conn to stderr, on one line. */
static void
db_log(const char *what, PGconn *conn, PGresult *res)
{
	const char *msg =
	    res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
	char line[512];
	snprintf(line, sizeof line, "%s", msg ? msg : "");
	line[strcspn(line, "\n")] = '\0';
	log_msg(LOG_ERROR, "database: %s: %s", what, line);
}

/* Prepare every statement on c. Return 0 or -1 (logged). */
static int
conn_prepare(struct conn *c)
{
	for (int i = 0; i < STMT__COUNT; i++) {
		PGresult *r = PQprepare(c->pg, stmts[i].name, stmts[i].sql,
					stmts[i].nparams, NULL);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			db_log(stmts[i].name, c->pg, r);
		PQclear(r);
		if (!ok)
			return -1;
	}
	c->prepared = true;
	return 0;
}

static void
conn_drop(struct conn *c)
{
	PQfinish(c->pg);
	c->pg = NULL;
	c->prepared = false;
}

/* Has the server said anything since we last used the connection? While
 * idle it only speaks to say goodbye (restart, pg_terminate_backend), so
 * reconnect. Costs one poll(2). */
static bool
went_away(PGconn *conn)
{
	struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
	return p.fd < 0 || poll(&p, 1, 0) != 0;
}

/* Make sure c is connected with the statements prepared. Return 0, or -1
 * when the database cannot be reached (logged once per outage). */
static int
conn_ready(struct conn *c, const char *url)
{
	if (c->pg && c->prepared && PQstatus(c->pg) == CONNECTION_OK &&
	    !went_away(c->pg))
		return 0;
	conn_drop(c);
	c->pg = db_connect(url);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		if (!c->down)
			db_log("connect", c->pg, NULL);
		c->down = true;
		conn_drop(c);
		return -1;
	}
	if (conn_prepare(c)) {
		conn_drop(c);
		return -1;
	}
	if (c->down)
		log_msg(LOG_NOTE, "database: connected again");
	c->down = false;
	return 0;
}

/* What became of a statement in one pipeline. */
enum outcome {
	ANSWERED, /* st (and res) are its answer */
	AGAIN,	  /* not run, or rolled back: send it again */
};

/* The status for job j's failed result r; *again when running it again
 * may well succeed (an error means nothing of it was committed). */
static enum db_status
classify(struct conn *c, const struct job *j, PGresult *r, bool *again)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
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
		st = DB_UNAVAILABLE; /* statement timeout */
	}
	db_log(stmts[j->s].name, c->pg, r);
	return st;
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

/*
 * Run v[0..n) in one pipeline on c: the BATCH statements (first in v,
 * nb of them, in key order) in one transaction, then each other statement
 * in a transaction of its own. Set out[i] for each; ANSWERED ones have st and
 * res set. Return false when the connection broke (it is dropped then).
 */
static bool
pipeline(struct conn *c, struct job **v, int n, int nb, enum outcome *out)
{
	PGconn *pg = c->pg;
	int sent = 0;
	bool ok = PQenterPipelineMode(pg);
	for (; ok && sent < n; sent++) {
		const struct job *j = v[sent];
		ok = PQsendQueryPrepared(pg, stmts[j->s].name,
					 stmts[j->s].nparams, j->params, NULL,
					 NULL, 0);
		if (ok && sent >= nb - 1)
			ok = PQpipelineSync(pg);
	}
	for (int i = 0; i < n; i++)
		out[i] = AGAIN;

	bool broken = !ok;
	int i = 0;
	/* The batch: all its statements commit together, or none does. */
	if (nb > 0 && !broken) {
		bool all = true;
		for (; i < nb; i++) {
			PGresult *r = next_result(pg);
			if (!r) {
				broken = true;
				break;
			}
			ExecStatusType st = PQresultStatus(r);
			if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
				v[i]->res = r;
				continue;
			}
			all = false;
			if (st == PGRES_FATAL_ERROR) {
				bool again;
				v[i]->st = classify(c, v[i], r, &again);
				if (!again)
					out[i] =
					    ANSWERED; /* the one that failed */
			}
			PQclear(r); /* PIPELINE_ABORTED: after the failure */
		}
		int sync = broken ? -1 : next_sync(pg);
		broken = sync < 0;
		for (int k = 0; k < nb; k++) {
			if (sync == 1 && all) {
				out[k] = ANSWERED;
				v[k]->st = DB_OK;
			} else if (v[k]->res) {
				PQclear(v[k]->res); /* rolled back */
				v[k]->res = NULL;
			}
		}
		i = nb;
	}
	/* The others, one transaction each. */
	for (; i < n && !broken; i++) {
		struct job *j = v[i];
		PGresult *r = next_result(pg);
		int sync = r ? next_sync(pg) : -1;
		if (sync < 0) {
			PQclear(r);
			broken = true; /* the outcome is unknown */
			break;
		}
		ExecStatusType st = PQresultStatus(r);
		if ((st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) &&
		    sync == 1) {
			j->st = DB_OK;
			j->res = r;
			out[i] = ANSWERED;
			continue;
		}
		bool again = sync == 0; /* the commit failed: nothing done */
		if (st == PGRES_FATAL_ERROR)
			j->st = classify(c, j, r, &again);
		else
			j->st = DB_ERROR;
		PQclear(r);
		if (!again)
			out[i] = ANSWERED;
	}
	if (broken || !PQexitPipelineMode(pg)) {
		if (!c->down)
			db_log("connection lost", pg, NULL);
		conn_drop(c);
		/* What was sent may have run: only what is safe to repeat
		 * goes again; the rest is answered "unavailable". */
		for (int k = 0; k < n; k++) {
			if (out[k] == AGAIN &&
			    !(stmts[v[k]->s].flags & REPEAT)) {
				out[k] = ANSWERED;
				v[k]->st = DB_UNAVAILABLE;
			}
		}
		return false;
	}
	return true;
}

/* Mark j done and wake its thread (unless that is us). */
static void
finish(struct db *db, struct job *j, struct job *self)
{
	pthread_mutex_lock(&db->mu);
	j->state = DONE;
	if (j != self)
		pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&db->mu);
}

/* Batch statements first, in key (test id) order; the rest in arrival
 * order. Return how many batch statements there are. */
static int
order(struct job **v, int n)
{
	int nb = 0;
	for (int i = 0; i < n; i++) {
		if (!(stmts[v[i]->s].flags & BATCH))
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

/* Answer every job of v[0..n) on connection c: each waits until its
 * deadline for the database to come back (NOWAIT ones answer at once), and
 * what a failure elsewhere rolled back runs again. */
static void
conn_run(struct db *db, struct conn *c, struct job **v, int n, struct job *self)
{
	enum outcome out[PIPELINE_MAX];
	while (n > 0) {
		bool up = conn_ready(c, db->url) == 0;
		db->down = !up;
		bool lost = up && !pipeline(c, v, n, order(v, n), out);
		int64_t now = mono_us();
		int left = 0;
		for (int i = 0; i < n; i++) {
			struct job *j = v[i];
			bool answered = up && out[i] == ANSWERED;
			bool late = now >= j->deadline ||
				    (stmts[j->s].flags & NOWAIT && !up);
			if (!answered && !late) {
				v[left++] = j;
				continue;
			}
			if (!answered)
				j->st = DB_UNAVAILABLE;
			finish(db, j, self);
		}
		n = left;
		if (n > 0 && (!up || lost))
			usleep(RECONNECT_US);
	}
}

static struct conn *
idle_conn(struct db *db)
{
	for (int i = 0; i < db->nconn; i++)
		if (!db->conn[i].busy)
			return &db->conn[i];
	return NULL;
}

enum db_status
db_exec(struct db *db, enum stmt s, const char *const params[], PGresult **res)
{
	struct job j = {.s = s,
			.params = params,
			.state = QUEUED,
			.deadline = mono_us() + db->wait_us};
	if (stmts[s].flags & BATCH)
		j.key = strtoll(params[1], NULL, 10);

	pthread_mutex_lock(&db->mu);
	/* A health check does not queue behind statements that wait for the
	 * database; with a connection idle it tries for itself. */
	if ((stmts[s].flags & NOWAIT) && db->down && !idle_conn(db)) {
		pthread_mutex_unlock(&db->mu);
		*res = NULL;
		return DB_UNAVAILABLE;
	}
	pthread_cond_init(&j.cv, NULL);
	*db->tail = &j;
	db->tail = &j.next;
	while (j.state != DONE) {
		struct conn *c = NULL;
		/* Wait to be answered, or until a connection is idle while
		 * our job is still queued: then lead. */
		if (j.state != QUEUED || !(c = idle_conn(db))) {
			pthread_cond_wait(&j.cv, &db->mu);
			continue;
		}
		/* Take what is queued (ours among it, unless the queue is
		 * longer than a pipeline) and run it. */
		struct job *v[PIPELINE_MAX];
		int n = 0;
		while (db->head && n < PIPELINE_MAX) {
			v[n] = db->head;
			v[n++]->state = RUNNING;
			db->head = db->head->next;
		}
		if (!db->head)
			db->tail = &db->head;
		c->busy = true;
		pthread_mutex_unlock(&db->mu);
		conn_run(db, c, v, n, &j);
		pthread_mutex_lock(&db->mu);
		c->busy = false;
		/* The connection is idle: wake the first job still queued to
		 * lead (or lead again ourselves, if it is ours). */
		if (db->head && db->head != &j)
			pthread_cond_signal(&db->head->cv);
	}
	pthread_mutex_unlock(&db->mu);
	pthread_cond_destroy(&j.cv);
	*res = j.res;
	return j.st;
}
