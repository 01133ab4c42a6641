/*
 * One PostgreSQL connection of a worker: made on first use with the
 * service's timeouts, every statement of the catalogue prepared on it,
 * checked for a goodbye from the server before each round, and made again
 * after it broke.
 */
#include "db.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

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

void
db_log(const char *what, PGconn *pg, const PGresult *res)
{
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
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
		const struct statement *s = &statements[i];
		PGresult *r =
		    PQprepare(c->pg, s->name, s->sql, s->nparams, NULL);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			db_log(s->name, c->pg, r);
		PQclear(r);
		if (!ok)
			return -1;
	}
	c->prepared = true;
	return 0;
}

void
conn_close(struct conn *c)
{
	PQfinish(c->pg);
	c->pg = NULL;
	c->prepared = false;
}

void
conn_lost(struct conn *c)
{
	if (!c->down)
		db_log("connection lost", c->pg, NULL);
	conn_close(c);
}

/* Has the server said anything since we last used the connection? While
 * idle it only speaks to say goodbye (restart, pg_terminate_backend), so
 * reconnect. Costs one poll(2). */
static bool
went_away(PGconn *pg)
{
	struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
	return p.fd < 0 || poll(&p, 1, 0) != 0;
}

int
conn_ready(struct conn *c, const char *url)
{
	if (c->pg && c->prepared && PQstatus(c->pg) == CONNECTION_OK &&
	    !went_away(c->pg))
		return 0;
	conn_close(c);
	c->pg = db_connect(url);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		if (!c->down)
			db_log("connect", c->pg, NULL);
		c->down = true;
		conn_close(c);
		return -1;
	}
	if (conn_prepare(c)) {
		conn_close(c);
		return -1;
	}
	if (c->down)
		log_msg(LOG_NOTE, "database: connected again");
	c->down = false;
	return 0;
}
