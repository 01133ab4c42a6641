/*
 * The worker's PostgreSQL connection: every statement the service runs is
 * here, prepared once per connection, re-prepared after a reconnect.
 */
#include "tracker.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The columns of enum test_col, in order. */
#define TEST_COLS                                                              \
	"id, name, description, threshold, ts_us(start_time), "                \
	"ts_us(end_time), samples, cpu_sum, cpu_max, above_us"

static const struct {
	const char *name;
	const char *sql;
	int nparams;
} stmts[STMT__COUNT] = {
    [STMT_PING] = {"ping", "SELECT 1", 0},
    [STMT_USER_CREATE] = {"user_create",
			  "INSERT INTO users (username, password_hash, "
			  "email) VALUES ($1::text, $2::text, $3::text) "
			  "RETURNING id",
			  3},
    [STMT_USER_FIND] = {"user_find",
			"SELECT id, password_hash FROM users "
			"WHERE username = $1::text",
			1},
    [STMT_USER_REHASH] = {"user_rehash",
			  "UPDATE users SET password_hash = $2::text "
			  "WHERE id = $1::bigint",
			  2},
    [STMT_TEST_CREATE] = {"test_create",
			  "INSERT INTO tests (user_id, name, description, "
			  "threshold, start_time) VALUES ($1::bigint, "
			  "$2::text, $3::text, $4::float8, "
			  "$5::timestamptz) RETURNING " TEST_COLS,
			  5},
    [STMT_TEST_GET] = {"test_get",
		       "SELECT " TEST_COLS " FROM tests "
		       "WHERE id = $2::bigint AND user_id = $1::bigint",
		       2},
    /* One row more than asked for tells whether there is a next page. */
    [STMT_TEST_LIST] = {"test_list",
			"SELECT " TEST_COLS " FROM tests "
			"WHERE user_id = $1::bigint AND ($2::bigint IS NULL "
			"OR id < $2::bigint) ORDER BY id DESC "
			"LIMIT $3::int + 1",
			3},
    [STMT_TEST_STOP] = {"test_stop",
			"SELECT test_stop($1::bigint, $2::bigint, "
			"$3::timestamptz)",
			3},
    [STMT_USAGE_ADD] = {"usage_add",
			"SELECT status, stored, above FROM usage_add("
			"$1::bigint, $2::bigint, $3::timestamptz[], "
			"$4::float8[])",
			4},
    /* One row with NULL sample columns for a test without (more)
     * samples; no row at all for someone else's test. */
    [STMT_USAGE_LIST] = {"usage_list",
			 "SELECT ts_us(u.ts), u.cpu_usage, "
			 "u.cpu_usage > t.threshold FROM tests t "
			 "LEFT JOIN LATERAL (SELECT ts, cpu_usage FROM usage "
			 "WHERE test_id = t.id AND ($3::timestamptz IS NULL "
			 "OR ts > $3::timestamptz) ORDER BY ts "
			 "LIMIT $4::int) u ON true "
			 "WHERE t.id = $2::bigint AND t.user_id = $1::bigint "
			 "ORDER BY u.ts",
			 4},
};

struct db {
	char *url;
	PGconn *conn;
	bool prepared;
};

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
	return PQconnectdbParams(keys, vals, 1);
}

struct db *
db_new(const char *url)
{
	struct db *db = xmalloc(sizeof *db);
	db->url = xstrdup(url);
	db->conn = NULL;
	db->prepared = false;
	return db;
}

void
db_free(struct db *db)
{
	if (!db)
		return;
	PQfinish(db->conn);
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
	fprintf(stderr, "grasshopper-tracker[%d]: database: %s: %s\n",
		(int)getpid(), what, line);
}

/* Prepare every statement on the current connection. Return 0 or -1. */
static int
db_prepare(struct db *db)
{
	for (int i = 0; i < STMT__COUNT; i++) {
		PGresult *r = PQprepare(db->conn, stmts[i].name, stmts[i].sql,
					stmts[i].nparams, NULL);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			db_log(stmts[i].name, db->conn, r);
		PQclear(r);
		if (!ok)
			return -1;
	}
	db->prepared = true;
	return 0;
}

/* Has the server said anything since we last used the connection? While
 * idle it only speaks to say goodbye (restart, pg_terminate_backend), so
 * reconnect. Costs one poll(2). */
static bool
db_went_away(PGconn *conn)
{
	struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
	return p.fd < 0 || poll(&p, 1, 0) != 0;
}

/* Make sure there is a live connection with the statements prepared.
 * Return 0, or -1 when the database cannot be reached. */
static int
db_ready(struct db *db)
{
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK &&
	    !db_went_away(db->conn) && db->prepared)
		return 0;
	db->prepared = false;
	if (!db->conn) {
		db->conn = db_connect(db->url);
	} else {
		PQreset(db->conn);
	}
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db_log("connect", db->conn, NULL);
		return -1;
	}
	return db_prepare(db);
}

enum db_status
db_exec(struct db *db, enum stmt s, const char *const params[], PGresult **res)
{
	*res = NULL;
	if (db_ready(db))
		return DB_UNAVAILABLE;
	PGresult *r = PQexecPrepared(db->conn, stmts[s].name, stmts[s].nparams,
				     params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		*res = r;
		return DB_OK;
	}
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	enum db_status out = DB_ERROR;
	if (PQstatus(db->conn) != CONNECTION_OK) {
		out = DB_UNAVAILABLE; /* lost mid-statement: reset next time */
		db->prepared = false;
	} else if (state && strcmp(state, "23505") == 0) {
		out = DB_UNIQUE;
	} else if (state && strcmp(state, "23503") == 0) {
		out = DB_FOREIGN_KEY;
	} else if (state && (strcmp(state, "57014") == 0 ||   /* timeout */
			     strncmp(state, "57P", 3) == 0 || /* shutdown */
			     strncmp(state, "08", 2) == 0)) {
		out = DB_UNAVAILABLE;
	} else if (state && strcmp(state, "26000") == 0) {
		db->prepared = false; /* statements lost: prepare next time */
		out = DB_UNAVAILABLE;
	}
	if (out == DB_ERROR || out == DB_UNAVAILABLE)
		db_log(stmts[s].name, db->conn, r);
	PQclear(r);
	return out;
}
